"""What every operation of the simulated GraphQL API shares: its error type, the request
context, and the checks of credentials, model, tournament and round window."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tournament_sim.layout import TOURNAMENT_ID, SimState

NOT_AUTHENTICATED = "You must be authenticated to perform this action"
ROUND_NOT_OPEN = "Current round not open for submissions"


class GraphQLError(Exception):
    """An error the API reports in the response's `errors` list (HTTP 200)."""


@dataclass(frozen=True)
class RequestContext:
    sim_dir: Path
    base_url: str  # "http://host:port" as the client reached us; download/upload URLs are built on it
    authorization: str | None  # the raw Authorization header; never logged


Resolver = Callable[[RequestContext, SimState, dict[str, Any]], Any]


def round_is_open(state: SimState, now: dt.datetime | None = None) -> bool:
    now = now or dt.datetime.now(dt.UTC)
    opens = dt.datetime.fromisoformat(state.current.open_time)
    closes = dt.datetime.fromisoformat(state.current.close_staking_time)
    return opens <= now < closes


def require_auth(state: SimState, authorization: str | None) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    public_id, _, secret_key = token.partition("$")
    if scheme != "Token" or not public_id or not secret_key:
        raise GraphQLError(NOT_AUTHENTICATED)
    # compare_digest: no timing hints, even on a loopback toy
    good_id = hmac.compare_digest(public_id.encode(), state.public_id.encode())
    good_key = hmac.compare_digest(secret_key.encode(), state.secret_key.encode())
    if not (good_id and good_key):
        raise GraphQLError(f"{NOT_AUTHENTICATED} (the API key was not accepted)")


def require_model(state: SimState, model_id: Any) -> str:
    if model_id not in state.models.values():
        raise GraphQLError(f"model {model_id!r} is not one of this account's models ({sorted(state.models)})")
    return model_id


def model_name(state: SimState, model_id: str) -> str:
    return next(name for name, known in state.models.items() if known == model_id)


def require_tournament(variables: dict[str, Any]) -> None:
    tournament = variables.get("tournament")
    if tournament not in (None, TOURNAMENT_ID):
        raise GraphQLError(
            f"tournament {tournament} not found (the simulator runs tournament {TOURNAMENT_ID})"
        )

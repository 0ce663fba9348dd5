"""numerapi's `list_rounds(number=, target=, status=, limit=)` answered by the stand-in.

Every round from `first_round` to the current one is listed, newest first, with every field
numerapi 3.1.1's query asks for. Only the current round's window is real (sim_state.json); an
earlier round is dated as if rounds opened weekly before it, with the same window length, so its
status follows from those dates: OPEN (the current round, while it is open), RESOLVING, or
RESOLVED (past its resolve time). Rounds after the current one are not announced (no UPCOMING).
Each round carries the score configs and payout factor of sim_state.json.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from tournament_sim.graphql_common import GraphQLError, round_is_open
from tournament_sim.layout import TOURNAMENT_ID, SimState
from tournament_sim.score_configs import ScoreConfig

ROUND_STATUSES = ("UPCOMING", "OPEN", "RESOLVING", "RESOLVED")
ROUND_TARGET = "ender20"  # the stand-in's own label for what its rounds score
ROUND_SPACING = dt.timedelta(days=7)
SCORE_DELAY = dt.timedelta(days=3)  # first daily score after the round opens
RESOLVE_DELAY = dt.timedelta(days=33)  # 20 trading days of returns, plus the data delay
STAKE_THRESHOLD = "0"
_IDS = uuid.UUID("1b0d8f5e-52f6-4f38-9a1e-0c6a1d3b7e21")  # namespace of the stand-in's stable ids


def resolve_list_rounds(state: SimState, variables: dict[str, Any]) -> list[dict[str, Any]]:
    number, status, target, limit = _filters(state, variables)
    now = dt.datetime.now(dt.UTC)
    rounds = [round_info(state, n, now) for n in range(state.current.number, state.first_round - 1, -1)]
    rounds = [
        r
        for r in rounds
        if (number is None or r["number"] == number)
        and (status is None or round_status(r, state, now) == status)
        and (target is None or r["target"] == target)
    ]
    return rounds if limit is None else rounds[:limit]


def round_info(state: SimState, number: int, now: dt.datetime) -> dict[str, Any]:
    """Round `number` as numerapi's list_rounds query selects it (datetimes as ISO strings)."""
    opens = dt.datetime.fromisoformat(state.current.open_time) - ROUND_SPACING * (
        state.current.number - number
    )
    closes = opens + (
        dt.datetime.fromisoformat(state.current.close_staking_time)
        - dt.datetime.fromisoformat(state.current.open_time)
    )
    scores, resolves = opens + SCORE_DELAY, opens + RESOLVE_DELAY
    return {
        "id": str(uuid.uuid5(_IDS, f"round-{number}")),
        "tournament": TOURNAMENT_ID,
        "number": number,
        "target": ROUND_TARGET,
        "closeTime": closes.isoformat(),
        "closeStakingTime": closes.isoformat(),
        "openTime": opens.isoformat(),
        "scoreTime": scores.isoformat(),
        "resolveTime": resolves.isoformat(),
        "resolvedGeneral": resolves <= now,
        "resolvedStaking": resolves <= now,
        "payoutFactor": state.payout_factor,
        "stakeThreshold": STAKE_THRESHOLD,
        "dataDatestamp": int(opens.strftime("%Y%m%d")),
        "roundScoreConfigs": [
            _score_config(state, number, config, scores, resolves) for config in state.score_configs
        ],
    }


def round_status(round_: dict[str, Any], state: SimState, now: dt.datetime) -> str:
    if round_["number"] == state.current.number and round_is_open(state, now):
        return "OPEN"
    return "RESOLVED" if round_["resolvedGeneral"] else "RESOLVING"


def _score_config(
    state: SimState, number: int, config: ScoreConfig, scores: dt.datetime, resolves: dt.datetime
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(_IDS, f"round-{number}-{config.name}")),
        "scoreConfigId": str(uuid.uuid5(_IDS, f"score-{config.name}")),
        "roundNumberStart": state.first_round,
        "roundNumberEnd": None,
        "name": config.name,
        "version": 1,
        "displayName": config.display_name,
        "totalScoreDays": config.total_score_days,
        "returnsLagDays": 2,
        "dataDelayDays": 1,
        "universe": "main",
        "isCanonScore": config.is_payout,
        "isPayout": config.is_payout,
        "scoringStart": scores.isoformat(),
        "scoringEnd": resolves.isoformat(),
        "minMultiplier": config.min_multiplier,
        "maxMultiplier": config.max_multiplier,
        "defaultMultiplier": config.default_multiplier,
        "clipThreshold": config.clip_threshold,
        "stakeThreshold": None,
        "payoutFactor": None,
    }


def _filters(
    state: SimState, variables: dict[str, Any]
) -> tuple[int | None, str | None, str | None, int | None]:
    number, status, target, limit = (variables.get(k) for k in ("number", "status", "target", "limit"))
    if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
        raise GraphQLError(f"rounds: number must be an integer, got {number!r}")
    if number == 0:  # numerapi's alias of the current round
        number = state.current.number
    if status is not None and status not in ROUND_STATUSES:
        raise GraphQLError(f"rounds: status {status!r} is not a RoundStatus ({', '.join(ROUND_STATUSES)})")
    if target is not None and not isinstance(target, str):
        raise GraphQLError(f"rounds: target must be a string, got {target!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise GraphQLError(f"rounds: limit must be a non-negative integer, got {limit!r}")
    return number, status, target, limit

"""The NumeraiAPI resource: numerapi, pointed at the configured endpoint, with retries.

numerapi has no URL argument: the endpoint is the module global
`numerapi.base_api.API_TOURNAMENT_URL`, read on every call, so each call sets it first.
Transient failures (HTTP 5xx after numerapi's own retries surface as KeyError('data'),
connection errors, timeouts) are retried with exponential backoff; GraphQL errors (ValueError)
are not transient and fail at once with the API's message.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import dagster as dg
import requests
from pydantic import PrivateAttr

from numerai_assets.shared.settings import knob_default

T = TypeVar("T")
REAL_API_URL = "https://api-tournament.numer.ai"


class NumeraiAPIError(RuntimeError):
    """The Numerai API could not be used (unreachable, refused, or answered an error).

    `rejected` is True when the API answered with an error (the request certainly had no
    effect), False when it could not be reached or kept failing (the effect is unknown).
    """

    def __init__(self, message: str, rejected: bool = False):
        super().__init__(message)
        self.rejected = rejected


class ModelChoiceError(ValueError):
    """NUMERAI_MODEL_NAME names no model of the account, or is unset while the account has several."""


class NumeraiAPI(dg.ConfigurableResource):
    """Numerai's tournament API through numerapi. Credentials come from EnvVar, never from config text."""

    api_url: str | None = None
    public_id: str | None = None
    secret_key: str | None = None
    retries: int = knob_default("api_retries")
    backoff_s: float = knob_default("api_backoff_s")
    _sleep: Callable[[float], None] = PrivateAttr(default=time.sleep)

    @property
    def endpoint(self) -> str:
        return self.api_url or REAL_API_URL

    @property
    def has_credentials(self) -> bool:
        return bool(self.public_id and self.secret_key)

    def _client(self):
        import numerapi
        from numerapi import base_api

        base_api.API_TOURNAMENT_URL = self.endpoint
        return numerapi.NumerAPI(
            public_id=self.public_id or None,
            secret_key=self.secret_key or None,
            verbosity="warning",
            show_progress_bars=False,
        )

    def call(self, what: str, fn: Callable[..., T]) -> T:
        """Run `fn(client)` with retries on transient errors; `what` names it in errors and logs."""
        log = dg.get_dagster_logger()
        delay = self.backoff_s
        last: Exception | None = None
        for attempt in range(1, self.retries + 1):
            try:
                return fn(self._client())
            except ValueError as err:  # a GraphQL error: the API said no, retrying will not help
                raise NumeraiAPIError(
                    f"{what}: the Numerai API at {self.endpoint} answered: {err}", rejected=True
                ) from err
            except (
                KeyError,
                requests.ConnectionError,
                requests.Timeout,
                requests.HTTPError,
                requests.exceptions.ChunkedEncodingError,
            ) as err:
                if isinstance(err, requests.HTTPError) and not _is_server_error(err):
                    raise NumeraiAPIError(f"{what}: {err}", rejected=True) from err
                last = err
                if attempt < self.retries:
                    log.warning(
                        f"{what}: attempt {attempt}/{self.retries} failed ({_describe(err)}); retry in {delay:.1f}s"
                    )
                    self._sleep(delay)
                    delay *= 2
        raise NumeraiAPIError(
            f"{what}: the Numerai API at {self.endpoint} is unreachable or failing after {self.retries} attempts "
            f"(last error: {_describe(last)})"
        )

    # The calls the service makes. Each is one retried unit.

    def list_datasets(self, round_num: int | None = None) -> list[str]:
        return self.call("list datasets", lambda api: api.list_datasets(round_num))

    def current_round(self) -> int:
        number = self.call("get current round", lambda api: api.get_current_round())
        if number is None:
            raise NumeraiAPIError(f"get current round: {self.endpoint} reports no current round")
        return int(number)

    def round_exists(self, number: int) -> bool:
        """Whether the API knows round `number`: not after the current round, and its files are listed.

        False only when the API said so; unreachable or failing is a NumeraiAPIError (unknown, not no).
        Numbers below 1 are no rounds, and never sent (numerapi reads 0 as "the current round").
        """
        if number < 1 or number > self.current_round():
            return False
        try:
            return bool(self.list_datasets(number))
        except NumeraiAPIError as err:
            if err.rejected:  # the API answered that it has no such round
                return False
            raise

    def list_rounds(
        self, number: int | None = None, status: str | None = None, limit: int | None = None
    ) -> list[dict]:
        """numerapi's list_rounds: each round with its `roundScoreConfigs` and `payoutFactor`."""
        return self.call(
            "list_rounds", lambda api: api.list_rounds(number=number, status=status, limit=limit)
        )

    def round_close_time(self, number: int) -> dt.datetime:
        """When round `number` stops taking submissions (its closeStakingTime, else closeTime), UTC."""
        listed = [r for r in self.list_rounds(number=number) if r.get("number") == number]
        closes = (listed[0].get("closeStakingTime") or listed[0].get("closeTime")) if listed else None
        if not isinstance(closes, dt.datetime):
            raise NumeraiAPIError(f"list_rounds: {self.endpoint} gives no close time of round {number}")
        return closes if closes.tzinfo else closes.replace(tzinfo=dt.UTC)

    def round_open(self) -> bool:
        return self.call("check round open", lambda api: api.check_round_open())

    def models(self) -> dict[str, str]:
        if not self.has_credentials:
            raise NumeraiAPIError("list models: NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY are not set")
        return self.call("list models", lambda api: api.get_models())

    def download(self, filename: str, dest: Path, round_num: int | None = None) -> Path:
        """Download `filename` (e.g. "v5.2/train.parquet") to `dest`, atomically.

        Each attempt writes to a fresh unique name beside `dest` (so numerapi never resumes a
        stale `.temp` or skips a same-size old file) and only a complete download is renamed.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)

        def attempt(api) -> Path:
            part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
            try:
                api.download_dataset(filename, str(part), round_num=round_num)
                part.replace(dest)
            finally:
                for leftover in (part, Path(f"{part}.temp")):
                    leftover.unlink(missing_ok=True)
            return dest

        label = f"download {filename}" + (f" (round {round_num})" if round_num is not None else "")
        return self.call(label, attempt)

    def upload(self, csv_path: Path, model_id: str) -> str:
        if not self.has_credentials:
            raise NumeraiAPIError("upload: NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY are not set")
        return self.call(
            f"upload {Path(csv_path).name}",
            lambda api: api.upload_predictions(str(csv_path), model_id=model_id),
        )

    def upload_diagnostics(self, csv_path: Path, model_id: str) -> str:
        """Upload validation predictions (id, prediction) to Numerai's diagnostics; their id."""
        if not self.has_credentials:
            raise NumeraiAPIError("upload diagnostics: NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY are not set")
        return self.call(
            f"upload diagnostics {Path(csv_path).name}",
            lambda api: api.upload_diagnostics(str(csv_path), model_id=model_id),
        )

    def resolve_model(self, wanted: str | None) -> tuple[str, str]:
        """(name, id) of the account's model to act as: `wanted` (NUMERAI_MODEL_NAME), or the only one."""
        models = self.models()
        if wanted is not None:
            # Numerai shows model names in lower case; a name typed as shown elsewhere still matches.
            by_lower = {name.lower(): name for name in models}
            wanted = wanted if wanted in models else by_lower.get(wanted.lower(), wanted)
            if wanted not in models:
                raise ModelChoiceError(
                    f"NUMERAI_MODEL_NAME={wanted!r} is not a model of this account; it has: {sorted(models) or 'none'}"
                )
            return wanted, models[wanted]
        if len(models) == 1:
            [(name, model_id)] = models.items()
            return name, model_id
        raise ModelChoiceError(
            f"the account has {len(models)} models ({sorted(models)}): set NUMERAI_MODEL_NAME to the one to submit as"
        )


def _is_server_error(err: requests.HTTPError) -> bool:
    return err.response is not None and err.response.status_code >= 500


def _describe(err: Exception | None) -> str:
    if isinstance(err, KeyError):
        return "no data in the answer (HTTP 5xx or connection refused)"
    return f"{type(err).__name__}: {err}"

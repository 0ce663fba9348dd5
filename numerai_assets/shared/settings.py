"""All user settings, from environment variables prefixed NUMERAI_ (or a .env file).

Each setting is declared once, as a `Knob` (name, type, default, range, one line of doc): the
model's knobs in `model_core.knobs`, the service's below. `Settings` is built from those
declarations, the Dagster resources take their defaults from them (`knob_default`), and the
README's settings tables are generated from them (`numerai_assets.shared.settings_doc`).

Bad values fail when the code location loads, with a message naming the variable: types, ranges
and enumerations, loss mixes (parsed by the training code's own parser), and a credential left
empty while the other is set. Only the feature set waits for `features.json` (ingest checks it as
soon as that file is downloaded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from model_core import knobs as model_knobs
from model_core.knobs import Knob
from numerai_assets.shared.alert_knobs import ALERT_KNOBS

ENV_PREFIX = "NUMERAI_"

# The README's tables, in this order; a knob's `group` names its table.
GROUPS = {
    "api": "The Numerai API and the account",
    "data": "Data and storage",
    "execution": "Where steps run",
    "training": "Training knobs (defaults sized for the `demo` tournament on 2 CPU cores)",
    "diagnostics": "Ensemble, baseline and diagnostics",
    "automation": "Live rounds, schedule and backfills",
    "alerts": "Alerts and run limits",
}

SERVICE_KNOBS: tuple[Knob, ...] = (
    Knob(
        "api_url",
        str | None,
        None,
        "GraphQL endpoint (numerapi has no URL argument; we set its module global)",
        "api",
        shown="unset = the real API",
    ),
    Knob(
        "public_id",
        SecretStr | None,
        None,
        "API key id; with `NUMERAI_SECRET_KEY` or neither. Passed as `dagster.EnvVar`, never printed or stored",
        "api",
    ),
    Knob(
        "secret_key",
        SecretStr | None,
        None,
        "API key secret; with `NUMERAI_PUBLIC_ID` or neither. Passed as `dagster.EnvVar`, never printed or stored",
        "api",
    ),
    Knob("model_name", str | None, None, "which of the account's models to submit as", "api"),
    Knob(
        "api_retries",
        int,
        4,
        "attempts per API call on transient errors (5xx, connection, timeout)",
        "api",
        ge=1,
        le=20,
    ),
    Knob("api_backoff_s", float, 2.0, "first retry delay, doubled each attempt", "api", ge=0, le=300),
    Knob(
        "dataset_version",
        str,
        "latest",
        "`latest` (the newest version the API offers, resolved at each ingest) or a version such as `v5.2`",
        "data",
        pattern=r"^(latest|v\d+\.\d+)$",
    ),
    Knob("home", Path, Path(".numerai"), "where data, stores and the warehouse live", "data"),
    Knob(
        "executor",
        Literal["multiprocess", "in_process", "k8s"],
        "multiprocess",
        "`multiprocess`, `in_process`, `k8s` (dagster-k8s' `k8s_job_executor`: a pod per step)",
        "execution",
    ),
    Knob(
        "k8s_gpu_toleration",
        str,
        "nvidia.com/gpu",
        "toleration key added to fold pods under `k8s` (empty: none)",
        "execution",
    ),
    # A JSON object in the environment; kept as sorted (label, value) pairs so Settings stays hashable.
    Knob(
        "k8s_gpu_node_selector",
        Annotated[tuple[tuple[str, str], ...], NoDecode],
        (),
        'JSON object, node selector of fold pods under `k8s`, e.g. `{"gpu": "a100"}`',
        "execution",
        shown="empty",
    ),
    Knob(
        "fold_concurrency",
        int,
        1,
        "fold steps at once (the executor's `numerai/gpu` tag limit): the number of GPUs",
        "execution",
        ge=1,
        le=64,
    ),
    Knob(
        "baseline",
        bool,
        True,
        "train the example scripts' LightGBM (`baseline_lgbm`) in the weekly job",
        "diagnostics",
    ),
    Knob(
        "peer_ridge",
        bool,
        True,
        "train the peer ridge candidate (`baseline_peer_ridge`: a ridge regression on each stock's features "
        "and its nearest peers' mean features) in the weekly job",
        "diagnostics",
    ),
    Knob(
        "benchmark_model",
        str | None,
        None,
        "the benchmark column of `validation_benchmark_models.parquet` that BMC is measured against",
        "diagnostics",
        shown="first `*_ender20` column",
    ),
    Knob(
        "upload_diagnostics",
        bool,
        False,
        "the weekly job also uploads the test-block predictions to Numerai's own diagnostics "
        "(`numerai_diagnostics`; needs the API key; a failure never stops the job)",
        "diagnostics",
    ),
    Knob("round_poll_s", int, 60, "how often the round sensor asks the API", "automation", ge=5, le=3600),
    Knob(
        "training_cron",
        str,
        "0 6 * * 0",
        "the `weekly_training_schedule`, cron in UTC (Sundays 06:00)",
        "automation",
    ),
    Knob(
        "max_model_age_days",
        float,
        21.0,
        "live predictions of an older model version are refused by the check",
        "automation",
        gt=0,
    ),
    Knob(
        "min_benchmark_corr",
        float,
        0.1,
        "live predictions whose Spearman correlation with the round's live benchmark model is below this "
        "by more than 3 standard errors are refused by the check: a broken model or shifted columns (-1 = off)",
        "automation",
        ge=-1.0,
        le=1.0,
    ),
    Knob(
        "neutralize",
        float,
        0.0,
        "share of the submitted predictions' projection on the era's features removed (numerai-tools "
        "`neutralize`; 0 = off, 1 = fully feature-neutral): lower feature exposure for some CORR",
        "automation",
        ge=0.0,
        le=1.0,
    ),
    Knob(
        "backfill_eras_per_run",
        int,
        52,
        "eras per backfill run (the ensemble is loaded once per run)",
        "automation",
        ge=1,
        le=10_000,
    ),
)

# Every setting, table by table (within a table: the service's knobs, then the model's).
KNOBS: tuple[Knob, ...] = tuple(
    sorted(
        (*SERVICE_KNOBS, *ALERT_KNOBS, *model_knobs.KNOBS), key=lambda knob: list(GROUPS).index(knob.group)
    )
)
KNOBS_BY_NAME: dict[str, Knob] = {knob.name: knob for knob in KNOBS}


def knob_default(name: str) -> Any:
    """The declared default of setting `name` (what the Dagster resources use)."""
    return KNOBS_BY_NAME[name].default


def env_var(knob: Knob) -> str:
    return env_var_of(knob.name)


def env_var_of(name: str) -> str:
    """The environment variable of setting `name` ("public_id" -> "NUMERAI_PUBLIC_ID")."""
    return f"{ENV_PREFIX}{name.upper()}"


# The API key's two halves: both or neither.
CREDENTIALS = ("public_id", "secret_key")


def _has_value(value: object) -> bool:
    """A credential is given unless it is unset or empty (its value is never shown)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is not None and value != ""


class SettingsError(ValueError):
    """A NUMERAI_* variable has a bad value."""


class _SettingsRules(BaseSettings):
    """How Settings reads the environment and checks values beyond a knob's type and range."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True, case_sensitive=False
    )

    @field_validator(
        "max_stocks", "purge_gap", "benchmark_model", "model_name", mode="before", check_fields=False
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("k8s_gpu_node_selector", mode="before", check_fields=False)
    @classmethod
    def _node_selector_json(cls, value: object) -> object:
        example = 'a JSON object of strings such as {"nvidia.com/gpu.present": "true"}'
        if isinstance(value, str):
            if not value.strip():
                return ()
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise ValueError(f"not {example} ({err})") from None
        if isinstance(value, dict):
            if not all(isinstance(v, str) for v in value.values()):
                raise ValueError(f"not {example}")
            return tuple(sorted(value.items()))
        if isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) for p in value):
            return value
        raise ValueError(f"not {example}")

    @field_validator("training_cron", check_fields=False)
    @classmethod
    def _cron(cls, value: str) -> str:
        from numerai_assets.shared import dagster_private as private

        if not private.is_valid_cron_string(value):
            raise ValueError(f"{value!r} is not a cron expression (five fields, e.g. '0 6 * * 0')")
        return value

    @field_validator("api_url", "alert_ui_url", check_fields=False)
    @classmethod
    def _url_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None

    @field_validator("alert_webhook", mode="before", check_fields=False)
    @classmethod
    def _webhook_url(cls, value: object) -> object:
        # The message never repeats the value: a webhook URL carries its token.
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or raw == "":
            return None
        parts = urlsplit(str(raw))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// URL with a host (value not shown: it is a secret)"
            )
        return value

    @field_validator("loss", check_fields=False)
    @classmethod
    def _loss_parses(cls, value: str) -> str:
        # The training code's parser, so a mix that would fail inside a fold fails here, named.
        from model_core.loss_spec import parse_loss

        parse_loss(value)
        return value

    @field_validator("peer_ridge_ks", check_fields=False)
    @classmethod
    def _peer_ks_parse(cls, value: str) -> str:
        # The peer ridge's own parser and checks (positive, increasing), so a bad list fails here.
        from model_core.peer_ridge import PeerRidgeConfig, parse_ks

        PeerRidgeConfig(peer_ks=parse_ks(value))
        return value

    @model_validator(mode="before")
    @classmethod
    def _both_keys_or_neither(cls, data: Any) -> Any:
        # An empty variable is not a key: with the other key set it is a mistake, not a dry run.
        if not isinstance(data, dict):
            return data
        keys = {name: data.get(name) for name in CREDENTIALS}
        given = [name for name, value in keys.items() if _has_value(value)]
        if len(given) == 1:
            [missing] = [name for name in CREDENTIALS if name not in given]
            state = "unset" if keys[missing] is None else "empty"
            raise ValueError(
                f"{env_var_of(missing)} is {state} but {env_var_of(given[0])} is set: set both "
                "NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY, or neither (dry run)"
            )
        if not given:  # both unset or empty: a dry run
            data = {**data, **dict.fromkeys(CREDENTIALS)}
        return data

    @property
    def has_credentials(self) -> bool:
        return self.public_id is not None


def _field(knob: Knob) -> tuple[Any, Any]:
    bounds = {name: getattr(knob, name) for name in ("ge", "gt", "le", "lt", "pattern")}
    return knob.type, Field(
        knob.default, description=knob.doc, **{k: v for k, v in bounds.items() if v is not None}
    )


# One field per knob: NUMERAI_<NAME>, its type, default, range and doc from the declaration.
Settings = create_model(
    "Settings",
    __base__=_SettingsRules,
    __module__=__name__,
    __doc__="Every NUMERAI_* setting, one field per knob of `KNOBS`.",
    **{knob.name: _field(knob) for knob in KNOBS},
)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise SettingsError("; ".join(_problem(error) for error in err.errors())) from None


def _problem(error: dict) -> str:
    """One validation error as "NUMERAI_<NAME>: what is wrong"; never the value of a secret."""
    message = error["msg"].removeprefix("Value error, ")
    field = ".".join(str(p) for p in error["loc"])
    # A rule across settings (the keys) names its variables itself.
    return f"{env_var_of(field)}: {message}" if field else message

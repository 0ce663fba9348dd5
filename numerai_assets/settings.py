"""All user settings, from environment variables prefixed NUMERAI_ (or a .env file).

Bad values fail when the code location loads, with a message naming the variable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "NUMERAI_"


class SettingsError(ValueError):
    """A NUMERAI_* variable has a bad value."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True, case_sensitive=False
    )

    api_url: str | None = Field(None, description="Numerai GraphQL endpoint; unset = the real API")
    public_id: SecretStr | None = Field(None, description="API key id (secret; never printed)")
    secret_key: SecretStr | None = Field(None, description="API key secret (secret; never printed)")
    model_name: str | None = Field(None, description="which of the account's models to submit as")
    dataset_version: str = Field("v5.2", pattern=r"^v\d+\.\d+$")
    feature_set: str = "medium"
    home: Path = Path(".numerai")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda|cuda:\d+)$")
    executor: Literal["multiprocess", "in_process", "k8s"] = "multiprocess"
    k8s_gpu_toleration: str = Field(
        "nvidia.com/gpu", description="taint key the fold pods tolerate under k8s; empty = none"
    )
    # A JSON object in the environment; kept as sorted (label, value) pairs so Settings stays hashable.
    k8s_gpu_node_selector: Annotated[tuple[tuple[str, str], ...], NoDecode] = Field(
        (), description="fold pods' node selector under k8s, a JSON object; empty = none"
    )
    n_folds: int = Field(4, ge=1, le=32)
    api_retries: int = Field(4, ge=1, le=20, description="attempts per API call on transient errors")
    api_backoff_s: float = Field(2.0, ge=0, le=300, description="first retry delay; doubles each time")
    clean_eras_per_chunk: int = Field(2, ge=1, le=1000, description="eras decoded per read while cleaning")

    # Training knobs. Defaults are sized for the `demo` tournament on 2 CPU cores (minutes);
    # the README gives a GPU profile for the real dataset.
    max_epochs: int = Field(6, ge=1, le=1000)
    loss: str = Field("pearson", pattern=r"^(pearson|mse|sharpe|mix:.+)$")
    d_model: int = Field(64, ge=8, le=2048)
    n_layers: int = Field(2, ge=0, le=32)
    n_heads: int = Field(4, ge=1, le=64)
    temporal_lags: int = Field(8, ge=0, le=256)
    similarity_prior: Literal["bias", "knn", "none"] = "bias"
    cross_stock: bool = True
    peer_knn: int = Field(
        0, ge=0, le=1024, description="> 0: add the mean embedding of the k most similar stocks"
    )
    feature_dropout: float = Field(0.5, ge=0.0, lt=1.0)
    learning_rate: float = Field(1e-3, gt=0, le=1.0)
    eras_per_batch: int = Field(4, ge=1, le=256)
    patience: int = Field(2, ge=1, le=100)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    gradient_checkpointing: bool = False
    max_stocks: int | None = Field(
        None, ge=16, description="subsample stocks per training era (memory bound)"
    )
    test_eras: int = Field(52, ge=1, description="held-out eras at the end that no fold trains on")
    min_train_eras: int = Field(52, ge=1)
    purge_gap: int | None = Field(
        None, ge=0, description="eras between train and validation; default 8 or 16"
    )
    fold_concurrency: int = Field(1, ge=1, le=64, description="fold steps at once: the number of GPUs")
    seed: int = 0

    # Ensemble, diagnostics, baseline.
    ensemble_shrinkage: float = Field(
        0.5, ge=0.0, le=1.0, description="0 = weights fitted on out-of-fold CORR, 1 = equal weights"
    )
    baseline: bool = Field(True, description="train the example scripts' LightGBM beside the ensemble")
    baseline_estimators: int = Field(2000, ge=1, le=100_000, description="trees of the LightGBM baseline")
    benchmark_model: str | None = Field(None, description="benchmark column for BMC; default *_ender20")

    # Live rounds and automation.
    round_poll_s: int = Field(60, ge=5, le=3600, description="how often the round sensor asks the API")
    training_cron: str = Field("0 6 * * 0", description="weekly_training schedule, cron in UTC")
    max_model_age_days: float = Field(
        21.0, gt=0, description="live predictions from an older model version are refused"
    )
    backfill_eras_per_run: int = Field(52, ge=1, le=10_000, description="eras per backfill run")

    @field_validator("max_stocks", "purge_gap", "benchmark_model", "model_name", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("k8s_gpu_node_selector", mode="before")
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

    @field_validator("training_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(value):
            raise ValueError(f"{value!r} is not a cron expression (five fields, e.g. '0 6 * * 0')")
        return value

    @field_validator("api_url")
    @classmethod
    def _url_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None

    @model_validator(mode="after")
    def _both_keys_or_none(self) -> Settings:
        if (self.public_id is None) != (self.secret_key is None):
            raise ValueError("set both NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY, or neither (dry run)")
        return self

    @property
    def has_credentials(self) -> bool:
        return self.public_id is not None


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            field = ".".join(str(p) for p in error["loc"]) or "settings"
            name = f"{ENV_PREFIX}{field.upper()}" if field != "settings" else "NUMERAI_* settings"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("; ".join(problems)) from None

"""The ensemble, diagnostics and live knobs a user turns (NUMERAI_* variables), as a resource."""

import dagster as dg

from numerai_assets.settings import Settings


class DiagnosticsKnobs(dg.ConfigurableResource):
    ensemble_shrinkage: float = 0.5
    baseline_estimators: int = 2000
    benchmark_model: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "DiagnosticsKnobs":
        return cls(
            ensemble_shrinkage=settings.ensemble_shrinkage,
            baseline_estimators=settings.baseline_estimators,
            benchmark_model=settings.benchmark_model,
        )


class LiveKnobs(dg.ConfigurableResource):
    model_name: str | None = None  # NUMERAI_MODEL_NAME: which of the account's models to submit as
    max_model_age_days: float = 21.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "LiveKnobs":
        return cls(model_name=settings.model_name, max_model_age_days=settings.max_model_age_days)

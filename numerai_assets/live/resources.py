"""The live knobs a user turns (NUMERAI_* variables), as a resource."""

from __future__ import annotations

import dagster as dg

from numerai_assets.shared.settings import Settings, knob_default


class LiveKnobs(dg.ConfigurableResource):
    model_name: str | None = knob_default("model_name")  # which of the account's models to submit as
    max_model_age_days: float = knob_default("max_model_age_days")
    neutralize: float = knob_default("neutralize")  # of the submitted predictions, per era
    min_benchmark_corr: float = knob_default("min_benchmark_corr")
    benchmark_model: str | None = knob_default("benchmark_model")

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveKnobs:
        return cls(
            model_name=settings.model_name,
            max_model_age_days=settings.max_model_age_days,
            neutralize=settings.neutralize,
            min_benchmark_corr=settings.min_benchmark_corr,
            benchmark_model=settings.benchmark_model,
        )

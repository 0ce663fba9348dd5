"""The code location: `dagster dev -w workspace.yaml` or `dagster ... -m numerai_assets.definitions`."""

from __future__ import annotations

import dagster as dg

from numerai_assets.defs import features, ingest
from numerai_assets.defs.baselines import baseline_lgbm
from numerai_assets.defs.diagnostics import build_diagnostics_asset
from numerai_assets.defs.ensemble import build_ensemble_asset
from numerai_assets.defs.executor import fold_step_tags
from numerai_assets.defs.jobs import TRAINING_JOB, build_training_job
from numerai_assets.defs.resources import build_resources
from numerai_assets.defs.training import build_executor, build_training_assets
from numerai_assets.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            *dg.load_assets_from_modules([ingest, features]),
            *build_training_assets(settings.n_folds, fold_step_tags(settings)),
            build_ensemble_asset(settings.n_folds),
            baseline_lgbm,
            build_diagnostics_asset(settings.baseline),
        ],
        jobs=[build_training_job(settings.n_folds, settings.baseline)],
        resources=build_resources(settings),
        executor=build_executor(settings.executor, settings.fold_concurrency),
    )


defs = build_definitions(load_settings())


def training_job() -> dg.JobDefinition:
    """Module-level, so `dagster.reconstructable` can rebuild the job in each step process."""
    return defs.resolve_job_def(TRAINING_JOB)

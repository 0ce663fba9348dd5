"""The code location: `dagster dev -w workspace.yaml` or `dagster ... -m numerai_assets.definitions`."""

from __future__ import annotations

import dagster as dg

from numerai_assets.defs import features, ingest, live
from numerai_assets.defs.automation import build_round_sensor, build_training_schedule
from numerai_assets.defs.backfill import build_backfill_assets, build_backfill_job
from numerai_assets.defs.baselines import baseline_lgbm
from numerai_assets.defs.diagnostics import build_diagnostics_asset
from numerai_assets.defs.ensemble import build_ensemble_asset
from numerai_assets.defs.executor import fold_step_tags
from numerai_assets.defs.jobs import TRAINING_JOB, build_training_job
from numerai_assets.defs.resources import build_resources
from numerai_assets.defs.training import build_executor, build_training_assets
from numerai_assets.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    training = build_training_job(settings.n_folds, settings.baseline)
    return dg.Definitions(
        assets=[
            *dg.load_assets_from_modules([ingest, features, live]),
            *build_training_assets(settings.n_folds, fold_step_tags(settings)),
            build_ensemble_asset(settings.n_folds),
            baseline_lgbm,
            build_diagnostics_asset(settings.baseline),
            *build_backfill_assets(settings.backfill_eras_per_run),
        ],
        asset_checks=[live.live_predictions_are_submittable],
        jobs=[training, live.live_round_job, build_backfill_job()],
        schedules=[build_training_schedule(training, settings.training_cron)],
        sensors=[build_round_sensor(live.live_round_job, settings.round_poll_s)],
        resources=build_resources(settings),
        executor=build_executor(settings.executor, settings.fold_concurrency),
    )


defs = build_definitions(load_settings())


def training_job() -> dg.JobDefinition:
    """Module-level, so `dagster.reconstructable` can rebuild the job in each step process.

    Built from the settings of the moment (not the module's `defs`, made at first import), so the
    launching process and every step process plan the same job.
    """
    return build_definitions(load_settings()).resolve_job_def(TRAINING_JOB)

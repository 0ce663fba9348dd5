"""Stage 2, training: the fold plan, one transformer per fold, the LightGBM and peer ridge baselines, the weekly job."""

from __future__ import annotations

import dagster as dg

from numerai_assets.shared.executor import fold_step_tags
from numerai_assets.shared.failure_alerts import build_failure_alert_sensor
from numerai_assets.shared.settings import Settings
from numerai_assets.training.assets import baseline_lgbm, baseline_peer_ridge, build_training_assets
from numerai_assets.training.jobs import build_training_job, build_training_schedule
from numerai_assets.training.resources import TrainingKnobs

TRAINING_FAILURE_SENSOR = "weekly_training_failure_alert"


def build_defs(settings: Settings) -> dg.Definitions:
    job = build_training_job(settings.n_folds, settings.baseline, settings.refit_seeds, settings.peer_ridge)
    return dg.Definitions(
        assets=[
            *build_training_assets(settings.n_folds, fold_step_tags(settings)),
            baseline_lgbm,
            baseline_peer_ridge,
        ],
        jobs=[job],
        schedules=[build_training_schedule(job, settings.training_cron)],
        sensors=[build_failure_alert_sensor(TRAINING_FAILURE_SENSOR, job)],
        resources={"training": TrainingKnobs.from_settings(settings)},
    )

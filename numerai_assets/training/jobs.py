"""The weekly retrain: one job from ingest to diagnostics, and the schedule that starts it."""

import dagster as dg

from numerai_assets.ingest.assets import INGEST_ASSETS

TRAINING_JOB = "weekly_training"
TRAINING_SCHEDULE = "weekly_training_schedule"
# The scheduled run's console (the daemon's terminal under `make dev`, the demo's console) shows the
# assets' progress, as `numerai-pipeline train` does; Dagster's step bookkeeping (DEBUG) stays in
# the run's event log, which the UI shows.
SCHEDULED_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def training_selection(
    n_folds: int, with_baseline: bool, refit_seeds: int, with_peer_ridge: bool
) -> list[str]:
    """Ingest -> clean -> feature returns -> folds -> every fold model (+ the LightGBM and the peer
    ridge candidates, each when on) -> ensemble -> the choice -> the refits it needs -> the live
    model -> diagnostics (ours, then Numerai's when NUMERAI_UPLOAD_DIAGNOSTICS is on).

    The ensemble and diagnostics stages come later in the pipeline: their assets are named here,
    not imported (stages import only earlier stages).
    """
    fold_assets = [f"fold_model_{k}" for k in range(n_folds)]
    baseline = ["baseline_lgbm"] if with_baseline else []
    baseline += ["baseline_peer_ridge"] if with_peer_ridge else []
    refits = [f"refit_model_{k}" for k in range(refit_seeds)] + (["refit_lgbm"] if with_baseline else [])
    refits += ["refit_peer_ridge"] if with_peer_ridge else []
    return [
        *INGEST_ASSETS,
        "cv_folds",
        *fold_assets,
        "ensemble_weights",
        *baseline,
        "model_choice",
        *refits,
        "live_model",
        "validation_diagnostics",
        "numerai_diagnostics",
    ]


def build_training_job(n_folds: int, with_baseline: bool, refit_seeds: int, with_peer_ridge: bool):
    """The weekly retrain, as one run."""
    return dg.define_asset_job(
        TRAINING_JOB, selection=training_selection(n_folds, with_baseline, refit_seeds, with_peer_ridge)
    )


def build_training_schedule(job, cron: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=TRAINING_SCHEDULE,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        run_config=SCHEDULED_RUN_CONFIG,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Ingest -> training -> ensemble -> diagnostics, weekly (NUMERAI_TRAINING_CRON, UTC).",
    )

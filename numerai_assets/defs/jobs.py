import dagster as dg

from numerai_assets.runs import INGEST_ASSETS

TRAINING_JOB = "weekly_training"


def build_training_job(n_folds: int):
    """Ingest -> clean -> feature returns -> folds -> every fold model (the weekly retrain)."""
    fold_assets = [f"fold_model_{k}" for k in range(n_folds)]
    return dg.define_asset_job(TRAINING_JOB, selection=[*INGEST_ASSETS, "cv_folds", *fold_assets])

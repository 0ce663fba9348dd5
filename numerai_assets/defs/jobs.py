import dagster as dg

from numerai_assets.runs import INGEST_ASSETS

TRAINING_JOB = "weekly_training"


def training_selection(n_folds: int, with_baseline: bool) -> list[str]:
    """Ingest -> clean -> feature returns -> folds -> every fold model -> ensemble -> diagnostics."""
    fold_assets = [f"fold_model_{k}" for k in range(n_folds)]
    baseline = ["baseline_lgbm"] if with_baseline else []
    return [*INGEST_ASSETS, "cv_folds", *fold_assets, "ensemble_weights", *baseline, "validation_diagnostics"]


def build_training_job(n_folds: int, with_baseline: bool):
    """The weekly retrain, as one run."""
    return dg.define_asset_job(TRAINING_JOB, selection=training_selection(n_folds, with_baseline))

"""Glue between the fold assets and model_core: load the plan and the data, train, report."""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl

from model_core.era_store import EraStore
from numerai_assets.defs.training_resource import TrainingKnobs
from numerai_assets.home import HomeLayout


def load_fold_plan(layout: HomeLayout) -> dict:
    path = layout.cv_folds_path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no fold plan (materialise cv_folds first)")
    return json.loads(path.read_text())


def train_one_fold(fold_index: int, layout: HomeLayout, knobs: TrainingKnobs, log: Callable[[str], None]):
    """Train fold `fold_index` of the current plan; returns (TrainResult, model version, rows)."""
    from model_core.batches import EraBatches, TemporalContext
    from model_core.cv import FoldPlan
    from model_core.train import resolve_device, train_fold

    saved = load_fold_plan(layout)
    plan = FoldPlan.from_dict(saved["plan"])
    if fold_index >= len(plan.folds):
        raise ValueError(
            f"fold {fold_index} does not exist: the plan has {len(plan.folds)} folds (NUMERAI_N_FOLDS)"
        )
    fold = plan.folds[fold_index]
    store = EraStore(layout.root / saved["store"])
    context = None
    if knobs.temporal_lags > 0:
        returns = pl.read_parquet(layout.feature_returns_path)
        context = TemporalContext(returns, knobs.temporal_lags, all_eras=store.eras)
    common = {"eras_per_batch": knobs.eras_per_batch, "context": context}
    train = EraBatches(
        store,
        fold.train_eras,
        shuffle=True,
        seed=knobs.seed + fold_index,
        max_stocks=knobs.max_stocks,
        **common,
    )
    val = EraBatches(store, fold.validation_eras, **common)
    device = resolve_device(knobs.device, fold_index)
    log(
        f"fold {fold_index}: {len(fold.train_eras)} train eras ({train.rows:,} rows), "
        f"{len(fold.validation_eras)} validation eras, device {device}"
    )

    def report(epoch) -> None:
        log(
            f"fold {fold_index} epoch {epoch.epoch}: loss {epoch.train_loss:.4f}, "
            f"validation CORR {epoch.val_corr_mean:.4f} (sharpe {epoch.val_corr_sharpe:.2f}), "
            f"{epoch.rows_per_s:,.0f} rows/s{' *' if epoch.improved else ''}"
        )

    checkpoint = layout.model_dir(saved["model_version"]) / f"fold_{fold_index}.pt"
    result = train_fold(
        knobs.to_model_config(len(store.features)),
        knobs.to_train_config(),
        train,
        val,
        checkpoint,
        device,
        report,
    )
    return result, saved["model_version"], train.rows

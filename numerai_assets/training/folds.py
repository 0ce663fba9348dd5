"""The training stage's bookkeeping: a new model version's fold plan, and one fold trained.

`start_model_version` draws the purged folds over the era store's resolved eras and saves them
as the plan of a new model version (NUMERAI_HOME/training/cv_folds.json); `train_one_fold`
loads that plan and the data, trains one fold with model_core and reports its epochs.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable

import polars as pl

from model_core.atomic import write_text_atomic
from model_core.cv import CVConfig, FoldPlan
from model_core.era_store import EraStore
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import load_plan
from numerai_assets.training.resources import TrainingKnobs


def start_model_version(
    layout: HomeLayout, config: CVConfig, fixed: frozenset[str] = frozenset(), log=lambda _m: None
) -> tuple[str, FoldPlan]:
    """A new model version: its purged folds and held-out test eras, saved as the current plan.
    On a history too short for `config`, the knobs not in `fixed` shrink (logged)."""
    from model_core.cv import fit_to_history, make_folds

    store = EraStore(layout.clean_eras_current)
    eras = store.resolved_eras()
    # n_folds never shrinks here: the code location has one fold_model_k asset per fold.
    config, notes = fit_to_history(len(eras), config, fixed | {"n_folds"})
    for note in notes:
        log(f"short history: {note}")
    try:
        plan = make_folds(eras, config)
    except ValueError as err:
        knobs = ", ".join(f"NUMERAI_{name.upper()}" for name in sorted(fixed | {"n_folds"}))
        raise ValueError(f"{err}: {store.path} is too short for {knobs}; set them smaller") from None
    version = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    # Relative to NUMERAI_HOME, so the home can move (another machine, a container volume).
    store_path = str(store.path.relative_to(layout.root))
    saved = {"model_version": version, "store": store_path, "plan": plan.to_dict()}
    write_text_atomic(layout.cv_folds_path, json.dumps(saved, indent=2))
    return version, plan


def train_one_fold(fold_index: int, layout: HomeLayout, knobs: TrainingKnobs, log: Callable[[str], None]):
    """Train fold `fold_index` of the current plan; returns (TrainResult, model version, rows)."""
    from model_core.batches import EraBatches, TemporalContext
    from model_core.train import resolve_device, train_fold

    saved = load_plan(layout)
    plan = saved.plan
    if fold_index >= len(plan.folds):
        raise ValueError(
            f"fold {fold_index} does not exist: the plan has {len(plan.folds)} folds (NUMERAI_N_FOLDS)"
        )
    fold = plan.folds[fold_index]
    store = EraStore(saved.store_path)
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

    result = train_fold(
        knobs.to_model_config(len(store.features)),
        knobs.to_train_config(),
        train,
        val,
        saved.checkpoint(layout, fold_index),
        device,
        report,
    )
    return result, saved.model_version, train.rows

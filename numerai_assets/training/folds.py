"""The training stage's bookkeeping: a new model version's fold plan, and one fold trained.

`start_model_version` draws the purged folds over the era store's resolved eras and saves them
as the plan of a new model version (NUMERAI_HOME/training/cv_folds.json); `train_one_fold`
loads that plan and the data, trains one fold with model_core and reports its epochs.

A killed `train` resumes: when the current plan's version never finished (see
numerai_assets.shared.model_versions) and the same plan comes out of an era store with the same
content and the same CV settings, cv_folds keeps that version, so its fold checkpoints are reused
(a finished fold is not trained again, an unfinished one continues from its last epoch).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable

import polars as pl

from model_core.atomic import write_text_atomic
from model_core.cv import CVConfig, Fold, FoldPlan
from model_core.era_store import EraStore
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import load_plan, unfinished_plan
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
    fingerprint = store_fingerprint(store)
    cv_settings = json.loads(json.dumps(dataclasses.asdict(config)))
    version = _resumable(layout, fingerprint, cv_settings, plan)
    if version is not None:
        log(f"resuming model version {version}: it never finished, same era store and CV settings")
    else:
        version = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    # Relative to NUMERAI_HOME, so the home can move (another machine, a container volume).
    store_path = str(store.path.relative_to(layout.root))
    saved = {
        "model_version": version,
        "dataset_version": store.dataset_version,  # what the model is trained on, and reads live
        "store": store_path,
        "store_fingerprint": fingerprint,
        "cv_config": cv_settings,
        "plan": plan.to_dict(),
    }
    write_text_atomic(layout.cv_folds_path, json.dumps(saved, indent=2))
    log(f"model version {version}: trained on dataset version {store.dataset_version} ({store.path.name})")
    return version, plan


def store_fingerprint(store: EraStore) -> str:
    """The era store's content (manifest without its source paths, per-era table), hashed: a
    re-ingest of the same data publishes a new store directory with the same fingerprint."""
    manifest = {k: v for k, v in store.manifest.items() if k != "sources"}
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode())
    digest.update(json.dumps(store.era_table.to_dicts(), default=str).encode())
    return digest.hexdigest()


def _resumable(layout: HomeLayout, fingerprint: str, cv_settings: dict, plan: FoldPlan) -> str | None:
    """The unfinished current version when it was planned from the same store and settings."""
    saved = unfinished_plan(layout)
    if saved is None or saved.store_fingerprint != fingerprint or saved.cv_config != cv_settings:
        return None
    return saved.model_version if saved.plan.to_dict() == plan.to_dict() else None


@dataclasses.dataclass(frozen=True)
class FoldRun:
    """One fold trained: what its asset page shows (see fold_metadata)."""

    result: object  # model_core.train.TrainResult
    model_version: str
    rows: int  # training rows
    fold: Fold
    gap: int  # purged eras between the fold's training and validation eras
    model_config: object  # model_core.model.ModelConfig
    train_config: object  # model_core.train.TrainConfig
    batches: dict  # the batch knobs


def train_one_fold(
    fold_index: int, layout: HomeLayout, knobs: TrainingKnobs, log: Callable[[str], None]
) -> FoldRun:
    """Train fold `fold_index` of the current plan."""
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

    model_config, train_config = knobs.to_model_config(len(store.features)), knobs.to_train_config()
    checkpoint = saved.checkpoint(layout, fold_index)
    _log_resume(fold_index, checkpoint, model_config, train_config, log)
    result = train_fold(model_config, train_config, train, val, checkpoint, device, report)
    batches = {"eras_per_batch": knobs.eras_per_batch, "max_stocks": knobs.max_stocks, "device": str(device)}
    return FoldRun(
        result, saved.model_version, train.rows, fold, plan.gap, model_config, train_config, batches
    )


def _log_resume(fold_index: int, checkpoint, model_config, train_config, log) -> None:
    """Say what train_fold will do with an existing checkpoint of this version (a resumed run):
    it resumes one made with the same configs, and one that already stopped trains no epoch."""
    import torch

    if not checkpoint.exists():
        return
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    same = saved.get("model_config") == model_config.to_dict() and saved.get(
        "train_config"
    ) == dataclasses.asdict(train_config)
    if not same:
        log(f"fold {fold_index}: {checkpoint} was made with other settings; training from scratch")
    elif saved["epoch"] >= train_config.max_epochs or saved["bad_epochs"] >= train_config.patience:
        log(f"fold {fold_index}: reusing the finished checkpoint {checkpoint} ({saved['epoch']} epochs)")
    else:
        log(f"fold {fold_index}: resuming {checkpoint} after epoch {saved['epoch']}")

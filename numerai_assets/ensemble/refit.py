"""Glue for the refit assets (refit_model_k, refit_lgbm, refit_peer_ridge): the live models,
trained on every resolved era of the version's store.

The folds chose the settings and the epoch count (each fold checkpoint records its best epoch);
`model_choice` chose the candidate. A refit that the choice does not need is skipped (another
candidate was chosen, or the chosen blend gives this member no weight), so a week whose LightGBM
wins spends no time on transformer refits, and the other way round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from model_core.era_store import EraStore
from numerai_assets.ensemble.choice import load_choice
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import load_plan, temporal_context
from numerai_assets.training.resources import TrainingKnobs

REFIT_LGBM = "lgbm_refit.txt"
REFIT_PEER_RIDGE = "peer_ridge_refit.npz"
SHOWN = {"transformer": "transformer", "lgbm": "LightGBM", "peer_ridge": "peer ridge", "blend": "blend"}


def refit_checkpoint_name(seed_index: int) -> str:
    return f"refit_{seed_index}.pt"


@dataclasses.dataclass(frozen=True)
class Refit:
    model_version: str
    skipped: str | None  # why nothing was trained, or None
    eras: tuple[str, ...] = ()
    epochs: int = 0
    rows: int = 0
    path: Path | None = None
    result: object = None  # model_core.train.TrainResult of a transformer refit
    # A transformer refit's settings (shown on its asset page): configs, batch knobs, and the
    # folds' best epochs its epoch count came from.
    model_config: object = None
    train_config: object = None
    batches: dict | None = None
    fold_best_epochs: tuple[int, ...] = ()


def refit_transformer(
    seed_index: int, layout: HomeLayout, knobs: TrainingKnobs, log: Callable[[str], None]
) -> Refit:
    from model_core.batches import EraBatches
    from model_core.candidates import TRANSFORMER
    from model_core.refit import make_refit_plan
    from model_core.train import load_trained, resolve_device, train_fold

    saved = load_plan(layout)
    skipped = _not_needed(load_choice(layout, saved.model_version), TRANSFORMER, "transformer refit")
    if skipped:
        return Refit(saved.model_version, skipped=skipped)
    store = EraStore(saved.store_path)
    best_epochs = [load_trained(saved.checkpoint(layout, f.index))[1]["best_epoch"] for f in saved.plan.folds]
    plan = make_refit_plan(store.resolved_eras(), best_epochs, knobs.refit_seeds, knobs.seed)
    seed = plan.seeds[seed_index]
    batches = EraBatches(
        store,
        plan.eras,
        eras_per_batch=knobs.eras_per_batch,
        context=temporal_context(layout, store, knobs.temporal_lags),
        shuffle=True,
        seed=seed,
        max_stocks=knobs.max_stocks,
    )
    device = resolve_device(knobs.device, seed_index)
    log(
        f"refit {seed_index} (seed {seed}): {len(plan.eras)} resolved eras ({plan.eras[0]}..{plan.eras[-1]}, "
        f"{batches.rows:,} rows), {plan.epochs} epochs (the folds' median best {best_epochs}), device {device}"
    )
    config = dataclasses.replace(knobs.to_train_config(), max_epochs=plan.epochs, seed=seed)
    path = layout.model_dir(saved.model_version) / refit_checkpoint_name(seed_index)

    def report(epoch) -> None:
        log(
            f"refit {seed_index} epoch {epoch.epoch}/{plan.epochs}: loss {epoch.train_loss:.4f}, {epoch.rows_per_s:,.0f} rows/s"
        )

    model_config = knobs.to_model_config(len(store.features))
    result = train_fold(model_config, config, batches, None, path, device, report)
    knob_values = {
        "eras_per_batch": knobs.eras_per_batch,
        "max_stocks": knobs.max_stocks,
        "device": str(device),
    }
    return Refit(
        saved.model_version,
        None,
        plan.eras,
        plan.epochs,
        batches.rows,
        path,
        result,
        model_config,
        config,
        knob_values,
        tuple(best_epochs),
    )


def refit_lgbm(layout: HomeLayout, n_estimators: int, log: Callable[[str], None]) -> Refit:
    from model_core.baseline import BaselineConfig, save_lgbm, train_lgbm
    from model_core.candidates import LGBM

    def fit_and_save(store: EraStore, eras: tuple[str, ...], target: int, path: Path) -> None:
        save_lgbm(
            train_lgbm(store, eras, target, BaselineConfig(n_estimators=n_estimators, era_stride=1)), path
        )

    return _refit_side_candidate(layout, LGBM, REFIT_LGBM, f"{n_estimators} trees", fit_and_save, log)


def refit_peer_ridge(layout: HomeLayout, config, log: Callable[[str], None]) -> Refit:
    """The peer ridge for live (config: model_core.peer_ridge.PeerRidgeConfig), on every resolved era."""
    from model_core.candidates import PEER_RIDGE
    from model_core.peer_ridge import fit_peer_ridge, save_peer_ridge

    def fit_and_save(store: EraStore, eras: tuple[str, ...], target: int, path: Path) -> None:
        save_peer_ridge(fit_peer_ridge(store, eras, target, config), path)

    settings = f"peers {config.peer_ks}, hop {config.peer_hop}"
    return _refit_side_candidate(layout, PEER_RIDGE, REFIT_PEER_RIDGE, settings, fit_and_save, log)


def _refit_side_candidate(
    layout: HomeLayout,
    member: str,
    filename: str,
    settings: str,
    fit_and_save: Callable[[EraStore, tuple[str, ...], int, Path], None],
    log: Callable[[str], None],
) -> Refit:
    """A one-model candidate (LightGBM, peer ridge) refit on every resolved era of the version's
    store and saved as `filename` in the version's folder, unless the choice does not need it."""
    from model_core import schema

    saved = load_plan(layout)
    skipped = _not_needed(load_choice(layout, saved.model_version), member, f"{SHOWN[member]} refit")
    if skipped:
        return Refit(saved.model_version, skipped=skipped)
    store = EraStore(saved.store_path)
    eras = tuple(store.resolved_eras())
    log(f"{SHOWN[member]} refit: {len(eras)} resolved eras ({eras[0]}..{eras[-1]}), {settings}")
    path = layout.model_dir(saved.model_version) / filename
    fit_and_save(store, eras, store.target_index(schema.MAIN_TARGET), path)
    return Refit(saved.model_version, None, eras, 0, store.row_count(eras), path)


def _not_needed(choice, member: str, what: str) -> str | None:
    """Why the chosen candidate needs no `what` (None when it does)."""
    from model_core.candidates import BLEND

    if member in choice.members_used():
        return None
    if choice.candidate == BLEND:
        return f"the blend was chosen and gives the {SHOWN[member]} no weight: no {what} needed"
    return f"the {SHOWN[choice.candidate]} was chosen: no {what} needed"

"""Model versions on disk: the fold plan that starts one, and the `current` one the live path uses.

NUMERAI_HOME/training/cv_folds.json      the plan of the newest version (cv_folds)
NUMERAI_HOME/models/<version>/fold_k.pt  checkpoints (fold_model_k)
NUMERAI_HOME/models/<version>/ensemble.json  weights (ensemble_weights)
NUMERAI_HOME/models/current -> <version>  promoted by ensemble_weights, atomically
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl

from model_core.atomic import swap_symlink
from model_core.cv import FoldPlan
from model_core.era_store import EraStore
from numerai_assets.shared.home import HomeLayout


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    model_version: str
    store_path: Path
    plan: FoldPlan

    def checkpoint(self, layout: HomeLayout, fold_index: int) -> Path:
        return layout.model_dir(self.model_version) / f"fold_{fold_index}.pt"


def load_plan(layout: HomeLayout) -> TrainingPlan:
    path = layout.cv_folds_path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no fold plan (materialise cv_folds first)")
    saved = json.loads(path.read_text())
    store = layout.root / saved["store"]  # relative to the home (an absolute path stays absolute)
    return TrainingPlan(saved["model_version"], store, FoldPlan.from_dict(saved["plan"]))


def temporal_context(layout: HomeLayout, store: EraStore, lags: int):
    """The feature-return history the temporal encoder reads; None when it is switched off."""
    from model_core.batches import TemporalContext

    if lags == 0:
        return None
    path = layout.feature_returns_path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no feature returns (materialise feature_returns first)")
    return TemporalContext(pl.read_parquet(path), lags, all_eras=store.eras)


def current_version(layout: HomeLayout) -> str | None:
    link = layout.current_model_link
    return link.resolve().name if link.is_symlink() else None


def current_model_dir(layout: HomeLayout) -> Path:
    link = layout.current_model_link
    if not link.is_symlink():
        raise FileNotFoundError(
            f"{link}: no current model version (materialise the weekly_training job, or at least "
            "ensemble_weights, first)"
        )
    return link.resolve()


def promote(layout: HomeLayout, model_version: str) -> None:
    """Make `model_version` the current one: one atomic symlink swap, so a reader sees old or new."""
    if not (layout.model_dir(model_version) / "ensemble.json").exists():
        raise FileNotFoundError(f"{layout.model_dir(model_version)}: no ensemble.json to promote")
    swap_symlink(layout.current_model_link, model_version)

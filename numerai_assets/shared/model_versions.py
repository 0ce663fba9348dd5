"""Model versions on disk: the fold plan that starts one, and the `current` one the live path uses.

NUMERAI_HOME/training/cv_folds.json      the plan of the newest version (cv_folds)
NUMERAI_HOME/models/<version>/fold_k.pt  checkpoints (fold_model_k)
NUMERAI_HOME/models/<version>/ensemble.json  weights (ensemble_weights)
NUMERAI_HOME/models/current -> <version>  promoted by ensemble_weights, atomically

A version is *finished* once live_model completed it: its ensemble.json then names what predicts
live (`choice`). Until then cv_folds may resume it (a killed `train`: same era store content, same
CV settings), so its finished fold checkpoints are reused. A version that never got as far as
ensemble.json (never current) is removed once a newer version is promoted.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
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
    # What the plan was made from (absent in plans written before resuming existed): the era
    # store's content fingerprint and the CV settings; cv_folds resumes a version only when both match.
    store_fingerprint: str | None = None
    cv_config: dict | None = None
    dataset_version: str | None = None  # the era store's ("v5.3"); None in plans written before

    def checkpoint(self, layout: HomeLayout, fold_index: int) -> Path:
        return layout.model_dir(self.model_version) / f"fold_{fold_index}.pt"


def load_plan(layout: HomeLayout) -> TrainingPlan:
    path = layout.cv_folds_path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no fold plan (materialise cv_folds first)")
    saved = json.loads(path.read_text())
    store = layout.root / saved["store"]  # relative to the home (an absolute path stays absolute)
    return TrainingPlan(
        saved["model_version"],
        store,
        FoldPlan.from_dict(saved["plan"]),
        saved.get("store_fingerprint"),
        saved.get("cv_config"),
        saved.get("dataset_version"),
    )


# Version names: creation time (UTC) then a random suffix, so they sort by age.
_VERSION_NAME = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def is_finished(layout: HomeLayout, model_version: str) -> bool:
    """live_model completed the version: its ensemble.json names the chosen live candidate."""
    path = layout.model_dir(model_version) / "ensemble.json"
    if not path.exists():
        return False
    try:
        return bool(json.loads(path.read_text()).get("choice"))
    except (OSError, ValueError):
        return False


def unfinished_plan(layout: HomeLayout) -> TrainingPlan | None:
    """The current plan when its version never finished (a killed `train`), else None."""
    if not layout.cv_folds_path.exists():
        return None
    saved = load_plan(layout)
    return None if is_finished(layout, saved.model_version) else saved


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
    prune_abandoned(layout, model_version)


def prune_abandoned(layout: HomeLayout, current: str) -> list[str]:
    """Remove the versions older than `current` that never reached ensemble.json (so were never
    current and nothing reads them): what killed `train` runs left when no rerun resumed them."""
    models = layout.current_model_link.parent
    removed = []
    for folder in sorted(models.iterdir()) if models.is_dir() else []:
        name = folder.name
        if folder.is_symlink() or not folder.is_dir() or not _VERSION_NAME.match(name):
            continue
        if name < current and not (folder / "ensemble.json").exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(name)
    return removed

"""The yardstick: LightGBM with the parameters of Numerai's example scripts.

The example scripts downsample to every 4th era to fit in memory, because LightGBM copies a
numpy matrix to float32. Here LightGBM reads the era store block by block and bins as it goes,
so every era fits (`era_stride` 1) and the float32 copy never exists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import lightgbm as lgb
import numpy as np

from model_core import schema
from model_core.atomic import atomic_path
from model_core.era_store import EraStore
from model_core.knobs import default


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    n_estimators: int = default("baseline_estimators")
    learning_rate: float = 0.01
    max_depth: int = 5
    num_leaves: int = 31
    colsample_bytree: float = 0.1
    era_stride: int = 4  # every 4th era, as the example scripts do
    threads: int | None = None  # None: LightGBM's default (all cores)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_estimators < 1 or self.era_stride < 1:
            raise ValueError(
                f"n_estimators and era_stride must be >= 1, got {self.n_estimators}, {self.era_stride}"
            )


def training_eras(eras: Sequence[str], stride: int) -> list[str]:
    """Every `stride`-th era, counted back from the most recent so the latest data is kept."""
    return list(eras)[::-1][::stride][::-1]


def train_lgbm(store: EraStore, eras: Sequence[str], target_index: int, config: BaselineConfig):
    """A lightgbm.Booster trained on the strided eras, streamed from the store.

    LightGBM bins the data while it reads it, era block by era block (`EraRows`), so its
    working set is the binned matrix (about a byte per value), never a float32 copy of the set.
    """
    used = training_eras(eras, config.era_stride)
    slot: dict = {}  # the one era block held at a time
    rows = [EraRows(store, era, target_index, slot) for era in used]
    rows = [r for r in rows if len(r)]
    if not rows:
        raise ValueError(f"no rows with a known target in the {len(used)} eras given to the LightGBM")
    dataset = lgb.Dataset(rows, label=np.concatenate([r.target for r in rows]), free_raw_data=True)
    params = {
        "objective": "regression",
        "learning_rate": config.learning_rate,
        "max_depth": config.max_depth,
        "num_leaves": config.num_leaves,
        "colsample_bytree": config.colsample_bytree,
        "num_threads": config.threads or 0,  # 0: LightGBM's default (all cores)
        "seed": config.seed,
        "verbosity": -1,
    }
    return lgb.train(params, dataset, num_boost_round=config.n_estimators)


def predict_lgbm(model, features: np.ndarray) -> np.ndarray:
    """One era's predictions, float64 (N,); MISSING read as the neutral bin, as in training."""
    return np.asarray(model.predict(_as_float(features)), dtype=np.float64)


def _as_float(features: np.ndarray) -> np.ndarray:
    """int8 codes -> float32, MISSING -> the neutral value 2 (the example scripts' fill)."""
    out = features.astype(np.float32)
    out[features == schema.MISSING] = schema.FEATURE_NEUTRAL
    return out


class EraRows(lgb.Sequence):
    """One era's rows with a known target, as LightGBM's `Sequence` reads them: by row (for its
    bin sample) or by slice (to push the data), converted to floats one block at a time.

    LightGBM walks the eras in order, twice (sample, then push), so the era's int8 block is read
    from the store on first use and kept in a slot shared by all eras: one era in memory at a time.
    """

    batch_size = 4096

    def __init__(self, store: EraStore, era: str, target_index: int, slot: dict):
        data = store.era(era)
        self.keep = np.flatnonzero(~np.isnan(data.targets[:, target_index]))
        self.target = data.targets[self.keep, target_index].astype(np.float32)
        self.store, self.era, self.slot = store, era, slot

    def __len__(self) -> int:
        return self.keep.size

    def __getitem__(self, index):
        if self.slot.get("era") != self.era:
            self.slot.clear()
            self.slot.update(era=self.era, features=self.store.era(self.era).features[self.keep])
        # float64: LightGBM's sampler wants doubles; a batch is batch_size rows, never the set.
        return _as_float(self.slot["features"][index]).astype(np.float64)


def predict_eras(model, store: EraStore, eras: Sequence[str]) -> dict[str, np.ndarray]:
    """era -> (N,) predictions in the era's storage order."""
    return {era: predict_lgbm(model, store.era(era).features) for era in eras}


def fold_predictions(
    store: EraStore,
    plan,  # model_core.cv.FoldPlan
    target_index: int,
    config: BaselineConfig,
    log=lambda _message: None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(out-of-fold, test) predictions of the LightGBM candidate, made as the transformer's are:
    fold k's LightGBM trains on fold k's training eras and predicts its validation eras; the test
    block is predicted by one trained on everything before the test gap."""
    oof: dict[str, np.ndarray] = {}
    for fold in plan.folds:
        model = train_lgbm(store, fold.train_eras, target_index, config)
        oof |= predict_eras(model, store, fold.validation_eras)
        log(f"LightGBM fold {fold.index}: {len(fold.train_eras)} training eras")
    test: dict[str, np.ndarray] = {}
    if plan.test_eras:
        last = plan.folds[-1]
        model = train_lgbm(store, sorted({*last.train_eras, *last.validation_eras}), target_index, config)
        test = predict_eras(model, store, plan.test_eras)
        log(f"LightGBM test block: {len(plan.test_eras)} eras")
    return oof, test


def save_lgbm(model, path) -> None:
    """LightGBM's own text format (no pickle), written atomically."""
    with atomic_path(path) as tmp:
        model.save_model(str(tmp))


def load_lgbm(path):
    if not path.exists():
        raise FileNotFoundError(f"{path}: no LightGBM model here")
    return lgb.Booster(model_file=str(path))

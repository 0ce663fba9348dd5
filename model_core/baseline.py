"""The yardstick: LightGBM with the parameters of Numerai's example scripts.

Trained on every `era_stride`-th training era, as the example scripts downsample (every 4th era)
to fit in memory: the stacked matrix is int8, and LightGBM's own float32 copy of it is the peak.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from model_core.era_store import EraStore


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    n_estimators: int = 2000
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


def stack_eras(store: EraStore, eras: Sequence[str], target_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, F) int8 features and (rows,) float32 target of `eras`, rows with a NaN target dropped."""
    features, targets = [], []
    for era in eras:
        data = store.era(era)
        keep = ~np.isnan(data.targets[:, target_index])
        features.append(data.features[keep])
        targets.append(data.targets[keep, target_index])
    if not features:
        raise ValueError("no eras to train the baseline on")
    return np.concatenate(features), np.concatenate(targets)


def train_lgbm(store: EraStore, eras: Sequence[str], target_index: int, config: BaselineConfig):
    """A fitted lightgbm.LGBMRegressor on the strided eras."""
    import lightgbm as lgb

    features, target = stack_eras(store, training_eras(eras, config.era_stride), target_index)
    model = lgb.LGBMRegressor(
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        max_depth=config.max_depth,
        num_leaves=config.num_leaves,
        colsample_bytree=config.colsample_bytree,
        n_jobs=config.threads,
        random_state=config.seed,
        verbose=-1,
    )
    model.fit(features, target)
    return model


def predict_lgbm(model, features: np.ndarray) -> np.ndarray:
    """One era's predictions, float64 (N,)."""
    return np.asarray(model.predict(features.astype(np.float32)), dtype=np.float64)

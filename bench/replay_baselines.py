"""The models the service is judged against (bench/replay.py), trained on exactly the served
resolved eras and predicting each held-out live era:

- Numerai's example LightGBM (2,000 trees, lr 0.01, depth 5, 31 leaves, colsample 0.1) on `all`
  and on `medium`;
- the example scripts' "deep" LightGBM (30,000 trees, lr 0.001, depth 10, 1,024 leaves,
  colsample 0.1, 10,000 rows per leaf), with fewer trees at a proportionally larger learning rate
  when time forces it, and the rows per leaf scaled from the real train set to ours;
- a ridge (closed form with numpy on centred features; alpha picked on the last served eras).

LightGBM gets float32 copies of the int8 features only while it bins them (the example scripts
hold far more); the ridge streams era by era.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pandas as pd
from replay_data import LiveEra, Served

REAL_TRAIN_ROWS = 2_740_000  # the real v5.2 train.parquet, which the example scripts train on
DEEP_TREES = 30_000
DEEP_LEARNING_RATE = 0.001
DEEP_MIN_DATA_IN_LEAF = 10_000
RIDGE_LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # alpha = lambda x rows of the fit
RIDGE_VALIDATION_ERAS = 52  # alpha is chosen on the last served resolved eras ...
RIDGE_GAP = 8  # ... fitted on the eras before them less this purge gap (20-day targets overlap 4)
# LightGBM's OpenMP threads spin while they wait; on a machine shared with other jobs that made the
# example LightGBM 60x slower (2 threads, 2 busy cores). Passive waiting costs little when quiet.
OPENMP_WAIT = ("OMP_WAIT_POLICY", "PASSIVE")


def passive_openmp() -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE for this process (before LightGBM loads OpenMP) unless the
    caller chose a policy; True if this set it (then the service must not inherit it)."""
    name, value = OPENMP_WAIT
    if name in os.environ:
        return False
    os.environ[name] = value
    return True


@dataclasses.dataclass(frozen=True)
class Baseline:
    name: str
    feature_set: str
    kind: str  # "lgbm" or "ridge"
    params: tuple[tuple[str, object], ...] = ()

    @property
    def settings(self) -> dict[str, object]:
        return dict(self.params)

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params)


def example_lgbm(feature_set: str) -> Baseline:
    params = {
        "num_boost_round": 2000,
        "learning_rate": 0.01,
        "max_depth": 5,
        "num_leaves": 31,
        "feature_fraction": 0.1,  # colsample_bytree
    }
    return Baseline(f"LGBM {feature_set}", feature_set, "lgbm", tuple(params.items()))


def deep_lgbm(trees: int, rows: int) -> Baseline:
    """The deep parameters; `trees` < 30,000 raises the learning rate to keep trees x rate."""
    params = {
        "num_boost_round": trees,
        "learning_rate": round(DEEP_LEARNING_RATE * DEEP_TREES / trees, 6),
        "max_depth": 10,
        "num_leaves": 1024,
        "feature_fraction": 0.1,
        "min_data_in_leaf": max(20, round(DEEP_MIN_DATA_IN_LEAF * rows / REAL_TRAIN_ROWS)),
    }
    return Baseline("LGBM deep all", "all", "lgbm", tuple(params.items()))


RIDGE = Baseline(
    "ridge all",
    "all",
    "ridge",
    (
        ("alpha", "lambda x rows"),
        ("lambda", f"best of {'/'.join(f'{v:g}' for v in RIDGE_LAMBDAS)}"),
        (
            "chosen on",
            f"CORR of the last {RIDGE_VALIDATION_ERAS} served eras (fit before them less {RIDGE_GAP})",
        ),
        ("then", "refit on every served era"),
    ),
)


@dataclasses.dataclass
class Fitted:
    baseline: Baseline
    predictions: dict[int, pd.Series]  # round -> prediction per live id
    fit_s: float
    predict_s: float
    note: str = ""


def columns(served: Served, names: list[str]) -> np.ndarray:
    index = {name: k for k, name in enumerate(served.features)}
    return np.array([index[name] for name in names])


def run(
    baseline: Baseline, served: Served, live: list[LiveEra], sets: dict[str, list[str]], threads: int
) -> Fitted:
    cols = columns(served, sets[baseline.feature_set])
    fit = fit_lgbm if baseline.kind == "lgbm" else fit_ridge
    started = time.perf_counter()
    predict, note = fit(baseline, served, cols, threads)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    predictions = {era.round: pd.Series(predict(era.x[:, cols]), index=era.ids) for era in live}
    fitted = Fitted(baseline, predictions, fit_s, time.perf_counter() - started, note)
    print(f"[replay] {baseline.name}: fitted in {fit_s:.0f} s{f' ({note})' if note else ''}", flush=True)
    return fitted


def fit_lgbm(baseline: Baseline, served: Served, cols: np.ndarray, threads: int):
    import lightgbm as lgb

    settings = baseline.settings
    rounds = int(settings.pop("num_boost_round"))
    params = {"objective": "regression", "num_threads": threads, "verbosity": -1, **settings}
    features = served.x[:, cols].astype(np.float32)
    dataset = lgb.Dataset(features, label=served.y, params={"verbosity": -1}, free_raw_data=True)
    dataset.construct()  # binned: the float32 copy can go
    del features
    booster = lgb.train(params, dataset, num_boost_round=rounds)
    note = f"{settings['min_data_in_leaf']:,} rows per leaf" if "min_data_in_leaf" in settings else ""
    return (lambda x: booster.predict(x.astype(np.float32), num_threads=threads)), note


def fit_ridge(baseline: Baseline, served: Served, cols: np.ndarray, threads: int):
    """Ridge on features centred by their mean over the fit rows. Sums are gathered era by era;
    alpha = lambda x rows, lambda chosen by mean per-era CORR on the last RIDGE_VALIDATION_ERAS
    served eras (fitted on those before them less a purge gap), then refitted on every era."""
    from replay_scoring import era_corr

    slices = served.era_slices()
    n_val = min(RIDGE_VALIDATION_ERAS, len(slices) // 4)
    fit_part, val_part = slices[: len(slices) - n_val - RIDGE_GAP], slices[len(slices) - n_val :]
    head, rest = _Sums(len(cols)), _Sums(len(cols))
    for k, (_era, rows) in enumerate(slices):
        (head if k < len(fit_part) else rest).add(served.x[rows][:, cols], served.y[rows])
    scores = {}
    for lam in RIDGE_LAMBDAS:
        mean, weights = head.solve(lam)
        corrs = []
        for _era, rows in val_part:
            pred = (served.x[rows][:, cols] - mean) @ weights
            corrs.append(era_corr(pd.Series(pred), pd.Series(served.y[rows], name="target")))
        scores[lam] = float(np.mean(corrs))
    best = max(scores, key=scores.get)
    mean, weights = head.plus(rest).solve(best)
    note = f"lambda {best:g}: CORR {scores[best]:.4f} on {n_val} validation eras"
    return (lambda x: (x - mean) @ weights), note


class _Sums:
    """Sufficient statistics of a least-squares fit, in float64."""

    def __init__(self, n_features: int) -> None:
        self.n = 0
        self.sx = np.zeros(n_features)
        self.sy = 0.0
        self.sxx = np.zeros((n_features, n_features))
        self.sxy = np.zeros(n_features)

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        x, y = x.astype(np.float64), y.astype(np.float64)
        self.n += len(y)
        self.sx += x.sum(axis=0)
        self.sy += float(y.sum())
        self.sxx += x.T @ x
        self.sxy += x.T @ y

    def plus(self, other: _Sums) -> _Sums:
        out = _Sums(len(self.sx))
        out.n, out.sx, out.sy = self.n + other.n, self.sx + other.sx, self.sy + other.sy
        out.sxx, out.sxy = self.sxx + other.sxx, self.sxy + other.sxy
        return out

    def solve(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """(feature means, weights) of the ridge with alpha = lam x rows."""
        mean, y_mean = self.sx / self.n, self.sy / self.n
        cov = self.sxx - self.n * np.outer(mean, mean)
        cross = self.sxy - self.n * mean * y_mean
        weights = np.linalg.solve(cov + lam * self.n * np.eye(len(mean)), cross)
        if not np.isfinite(weights).all():
            raise ValueError(f"ridge: non-finite weights at lambda {lam}")
        return mean, weights

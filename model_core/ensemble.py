"""Blending fold models into one ensemble, and the weights of the blend.

Each fold model's scores of an era are ranked within the era before they are averaged: the
models' raw scales differ (and drift between retrains), while Numerai scores only the order
of the stocks, so a rank average is the scale-free blend.

The weights come from out-of-fold validation CORR only: a fold model's own training eras
would flatter it. With K of order 5 models and a few dozen validation eras each, the fitted
weights are noisy estimates, so they are shrunk towards equal weights (WeightConfig.shrinkage).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from model_core.knobs import default

WEIGHT_SUM_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class WeightConfig:
    shrinkage: float = default("ensemble_shrinkage")  # 0 = the fitted weights as they are, 1 = equal weights

    def __post_init__(self) -> None:
        if not 0.0 <= self.shrinkage <= 1.0:
            raise ValueError(f"WeightConfig.shrinkage must be in [0, 1], got {self.shrinkage}")


def rank_within_era(scores: np.ndarray) -> np.ndarray:
    """Percentile ranks in (0, 1], ties averaged: pandas `rank(pct=True, method="average")`.

    scores: (N,) of one era, no NaN (a NaN would get no rank and silently shift all others).
    """
    values = np.asarray(scores, dtype=np.float64)  # (N,)
    if values.ndim != 1:
        raise ValueError(f"scores must be 1-D (one era), got shape {values.shape}")
    if np.isnan(values).any():
        raise ValueError(
            f"scores contain {int(np.isnan(values).sum())} NaN of {values.size}: cannot rank them"
        )
    n = values.size
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]  # (N,) True where a run of ties begins
    first = np.flatnonzero(starts)  # 0-based start of each run
    end = np.r_[first[1:], n]  # exclusive end of each run
    average = (first + 1 + end) / 2.0  # mean of the 1-based ranks first+1 .. end
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = average[np.cumsum(starts) - 1]
    return ranks / n if n else ranks


def blend(per_model: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted mean of each model's within-era ranks of ONE era: (N,) in (0, 1].

    per_model: K arrays (N,), the same stocks in the same order; weights: K, >= 0, sum 1.
    """
    if len(per_model) == 0:
        raise ValueError("blend: no model predictions given")
    w = _check_weights(weights, len(per_model))
    shapes = {np.shape(p) for p in per_model}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"blend: every model's predictions must be the same 1-D shape, got {sorted(shapes)}")
    ranks = np.stack([rank_within_era(p) for p in per_model])  # (K, N)
    return w @ ranks  # (N,)


def equal_weights(k: int) -> np.ndarray:
    if k < 1:
        raise ValueError(f"equal_weights: need at least one model, got k={k}")
    return np.full(k, 1.0 / k)


def fit_ensemble_weights(oof_corrs: Sequence[Sequence[float]], config: WeightConfig) -> np.ndarray:
    """Ensemble weights (K,) from each fold model's per-era OUT-OF-FOLD validation CORR.

    Out-of-fold only: the eras a model was trained on would reward memorisation, not skill.
    (A fold's validation eras also pick its early-stopping epoch, so even these means are a
    little optimistic, and alike for every fold: one more reason to shrink.) The fitted part is each model's mean CORR (NaN
    eras ignored) clipped at 0, so a model with no edge gets no fitted weight rather than a
    negative one (a short-ranked model is never what we want to submit); it is normalised to sum
    1, or equal when no model has a positive mean. Means of a few dozen eras from K ~ 5 models
    are noisy, and weights fitted on noise overfit, so they are shrunk towards equal weights:
    w = (1 - s) * fitted + s / K. Every model keeps at least s / K; the result is >= 0, sums to 1.
    """
    k = len(oof_corrs)
    if k == 0:
        raise ValueError("fit_ensemble_weights: no fold models given")
    means = np.empty(k, dtype=np.float64)
    for i, corrs in enumerate(oof_corrs):
        values = np.asarray(corrs, dtype=np.float64)
        scored = values[~np.isnan(values)]
        if scored.size == 0:
            raise ValueError(
                f"fit_ensemble_weights: fold model {i} has no scored out-of-fold era "
                f"({values.size} eras, all NaN or none)"
            )
        means[i] = scored.mean()
    positive = np.clip(means, 0.0, None)
    fitted = positive / positive.sum() if positive.sum() > 0 else equal_weights(k)
    weights = (1.0 - config.shrinkage) * fitted + config.shrinkage / k
    return weights / weights.sum()  # exact sum 1 against rounding


def _check_weights(weights: Sequence[float], k: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (k,):
        raise ValueError(f"weights must have one entry per model ({k}), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be finite and non-negative, got {w.tolist()}")
    if abs(w.sum() - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise ValueError(f"weights must sum to 1 (within {WEIGHT_SUM_TOLERANCE}), got {w.sum()!r}")
    return w

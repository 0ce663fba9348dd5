"""Attention made readable: who reads whom, how sharply, and which past eras matter.

Inputs come from EraTransformer.attention_maps, averaged over heads by the caller and cut to
the real (unpadded) stocks of one era. An N x N map of 5,000 stocks says nothing to a person;
grouped by prediction decile it shows whether the high-scored stocks read each other, the
low-scored ones, or only themselves (the "attention reliance" question of DESIGN.md section 6).
"""

from __future__ import annotations

import numpy as np

TOP_TARGETS = 10  # attention_stats: share of a stock's attention held by its 10 most-read stocks


def cross_attention_by_decile(weights: np.ndarray, predictions: np.ndarray, bins: int = 10) -> np.ndarray:
    """(bins, bins): entry [i, j] = mean over the stocks of prediction decile i of the total
    attention they put on the stocks of decile j. Row i sums to 1 when the input rows do.

    weights: (N, N) row = the reading stock; predictions: (N,). Deciles are equal-count bins of
    the prediction order (ties broken by position), 0 = lowest predictions.
    """
    w = _square(weights)
    preds = np.asarray(predictions, dtype=np.float64)
    n = w.shape[0]
    if preds.shape != (n,):
        raise ValueError(f"predictions must be ({n},) to match the weights, got {preds.shape}")
    if bins < 1 or n < bins:
        raise ValueError(f"need 1 <= bins <= N stocks, got bins={bins}, N={n}")
    decile = np.empty(n, dtype=np.intp)
    decile[np.argsort(preds, kind="stable")] = np.arange(n) * bins // n  # (N,) 0..bins-1
    members = np.zeros((n, bins))  # (N, bins) one-hot
    members[np.arange(n), decile] = 1.0
    per_stock = w @ members  # (N, bins): attention each stock puts on each decile
    return (members.T @ per_stock) / members.sum(axis=0)[:, None]  # (bins, bins)


def attention_stats(weights: np.ndarray) -> dict[str, float]:
    """Summary of an (N, N) attention map, each row normalised to sum 1 first:

    self_share: mean attention a stock puts on itself (1 = the stocks ignore each other);
    entropy_ratio: mean row entropy / log N (1 = uniform over the era, 0 = one target; NaN for N=1);
    top10_share: mean share of a stock's attention held by its TOP_TARGETS most-read stocks.
    """
    w = _square(weights)
    n = w.shape[0]
    totals = w.sum(axis=1, keepdims=True)  # (N, 1)
    if (totals <= 0).any():
        raise ValueError(f"attention rows must have a positive sum; {int((totals <= 0).sum())} rows do not")
    p = w / totals  # (N, N)
    logs = np.log(np.where(p > 0, p, 1.0))  # 0 log 0 = 0
    entropy = -(p * logs).sum(axis=1)  # (N,) nats
    top = np.sort(p, axis=1)[:, -min(TOP_TARGETS, n) :]  # (N, <=10)
    return {
        "self_share": float(np.diag(p).mean()),
        "entropy_ratio": float(entropy.mean() / np.log(n)) if n > 1 else float("nan"),
        "top10_share": float(top.sum(axis=1).mean()),
    }


def temporal_attention_by_lag(weights: np.ndarray) -> np.ndarray:
    """(K,) attention on each lag, mean over heads; index 0 is lag 1, the most recent resolved era.

    weights: (H, K), e.g. attention_maps()["temporal"][e]. The order is the context's:
    TemporalContext.for_era builds rows with lag 1 FIRST (row k = lag k + 1) and the
    TemporalEncoder keeps it, so column k of the map is lag k + 1 (no reversal here).
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] < 1:
        raise ValueError(f"temporal attention must be (H, K) with H >= 1, got shape {w.shape}")
    return w.mean(axis=0)


def _square(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
        raise ValueError(f"attention weights must be a non-empty (N, N) matrix, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("attention weights must be finite and non-negative")
    return w

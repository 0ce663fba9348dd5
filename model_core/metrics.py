"""Per-era scores with Numerai's own functions (numerai-tools), never re-implemented here."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numerai_tools.scoring import numerai_corr


def era_numerai_corr(predictions: np.ndarray, target: np.ndarray) -> float:
    """Numerai's CORR of one era: rank-gaussianised predictions^1.5 vs centred target^1.5.

    Rows with a NaN target are left out; an era with fewer than 2 scored rows or constant
    predictions scores NaN (numerai-tools would warn or fail).
    """
    keep = ~np.isnan(target)
    if keep.sum() < 2 or np.ptp(predictions[keep]) == 0:
        return float("nan")
    index = pd.RangeIndex(int(keep.sum()))
    preds = pd.DataFrame({"prediction": predictions[keep].astype(np.float64)}, index=index)
    return float(
        numerai_corr(preds, pd.Series(target[keep].astype(np.float64), index=index, name="target")).iloc[0]
    )


def era_numerai_corrs(predictions: np.ndarray, target: np.ndarray) -> np.ndarray:
    """era_numerai_corr of each column of `predictions` (N, C) against one era's target, in one
    numerai-tools call (its scoring is column-wise): (C,), NaN for a constant column."""
    keep = ~np.isnan(target)
    out = np.full(predictions.shape[1], np.nan)
    varies = np.ptp(predictions[keep], axis=0) > 0 if keep.sum() >= 2 else np.zeros_like(out, dtype=bool)
    if not varies.any():
        return out
    index = pd.RangeIndex(int(keep.sum()))
    columns = predictions[keep][:, varies].astype(np.float64)
    preds = pd.DataFrame(columns, index=index, columns=[str(c) for c in np.flatnonzero(varies)])
    target_series = pd.Series(target[keep].astype(np.float64), index=index, name="target")
    out[varies] = numerai_corr(preds, target_series).to_numpy()
    return out


def summarise_corrs(corrs: np.ndarray | list[float]) -> dict[str, float]:
    """Mean, std, Sharpe (mean/std, ddof=0) and max drawdown of the cumulative per-era CORR."""
    values = np.asarray([c for c in corrs if not np.isnan(c)], dtype=np.float64)
    if values.size == 0:
        return {
            "mean": float("nan"),
            "std": float("nan"),
            "sharpe": float("nan"),
            "max_drawdown": float("nan"),
        }
    std = float(values.std())
    cumulative = np.cumsum(values)
    drawdown = float((np.maximum.accumulate(np.maximum(cumulative, 0)) - cumulative).max())
    return {
        "mean": float(values.mean()),
        "std": std,
        "sharpe": float(values.mean() / std) if std > 0 else float("nan"),
        "max_drawdown": drawdown,
    }

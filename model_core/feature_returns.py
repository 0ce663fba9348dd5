"""Feature returns: per era, the correlation of each feature with the target.

This is the "momentum" input of the temporal encoder (how each feature paid in recent resolved
eras) and a diagnostic of regime changes. MISSING values are left out of each feature's
correlation; a feature unavailable in an era gets NaN there.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from model_core import schema
from model_core.era_store import EraStore


def era_feature_correlations(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation of each feature column with `target` over its non-missing rows.

    features: (N, F) int8 with MISSING; target: (N,) float. Returns (F,) float32, NaN where a
    feature has fewer than 3 valid rows or no variance. Sums in float64 (one era at a time).
    """
    valid = (features != schema.MISSING).astype(np.float64)  # (N, F)
    x = np.where(features == schema.MISSING, 0, features).astype(np.float64)  # (N, F)
    y = np.nan_to_num(target.astype(np.float64))  # (N,)
    has_y = ~np.isnan(target)
    valid *= has_y[:, None]
    x *= has_y[:, None]
    n = valid.sum(axis=0)
    sx, sxx = x.sum(axis=0), (x * x).sum(axis=0)
    sy, syy = valid.T @ y, valid.T @ (y * y)
    sxy = x.T @ y
    cov = n * sxy - sx * sy
    var = (n * sxx - sx * sx) * (n * syy - sy * sy)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.sqrt(var)
    corr[(n < 3) | ~(var > 0)] = np.nan
    return corr.astype(np.float32)


def compute_feature_returns(
    store: EraStore,
    target: str = schema.MAIN_TARGET,
    progress: Callable[[str], None] | None = None,
) -> pl.DataFrame:
    """Era x feature correlations over the resolved eras of `store`: columns era + one per feature."""
    target_col = store.target_index(target)
    eras = store.resolved_eras()
    rows = np.full((len(eras), len(store.features)), np.nan, dtype=np.float32)
    for i, era in enumerate(eras):
        data = store.era(era)
        rows[i] = era_feature_correlations(data.features, data.targets[:, target_col])
        if progress and (i + 1) % 100 == 0:
            progress(f"feature returns: {i + 1}/{len(eras)} eras")
    frame = pl.DataFrame(rows, schema=store.features, orient="row")
    return frame.insert_column(0, pl.Series(schema.ERA, eras, dtype=pl.String))


def summarise_feature_returns(returns: pl.DataFrame, top: int = 10) -> pl.DataFrame:
    """Per feature: mean, std, Sharpe and lag-1 autocorrelation of its era returns (momentum)."""
    features = [c for c in returns.columns if c != schema.ERA]
    long = returns.unpivot(index=schema.ERA, on=features, variable_name="feature", value_name="corr")
    stats = (
        long.sort("feature", schema.ERA)
        .with_columns(pl.col("corr").shift(1).over("feature").alias("prev"))
        .group_by("feature")
        .agg(
            pl.col("corr").mean().alias("mean"),
            pl.col("corr").std().alias("std"),
            pl.corr("corr", "prev").alias("autocorr_lag1"),
        )
        .with_columns((pl.col("mean") / pl.col("std")).alias("sharpe"))
    )
    return stats.sort(pl.col("mean").abs(), descending=True).head(top)

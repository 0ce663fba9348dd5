"""Scores of the replay benchmark (bench/replay.py): per-era CORR and BMC with Numerai's own
functions, the summary of a series of eras, and the paired comparison of two models.

A difference smaller than two standard errors is a tie.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

TIE_SE = 2.0  # |mean difference| below this many standard errors: a tie


def era_corr(predictions: pd.Series, target: pd.Series) -> float:
    """Numerai's CORR of one era (`numerai_corr`); both indexed alike (by id)."""
    from numerai_tools.scoring import numerai_corr

    return float(numerai_corr(predictions.rename("prediction").to_frame(), target)["prediction"])


def era_scores(predictions: pd.Series, target: pd.Series, benchmark: pd.Series) -> tuple[float, float]:
    """(CORR, BMC) of one era: `numerai_corr` on the target, `correlation_contribution` against the
    benchmark model's predictions. All three are indexed by id; every id must be predicted."""
    from numerai_tools.scoring import correlation_contribution

    missing = target.index.difference(predictions.index)
    if len(missing):
        raise ValueError(f"{len(missing)} id(s) of the era have no prediction, e.g. {list(missing[:3])}")
    predictions = predictions.loc[target.index]
    frame = predictions.rename("prediction").to_frame()
    bmc = float(correlation_contribution(frame, benchmark.loc[target.index], target)["prediction"])
    return era_corr(predictions, target), bmc


@dataclasses.dataclass(frozen=True)
class Summary:
    mean: float
    std: float  # ddof 0, as model_core.metrics.summarise_corrs
    sharpe: float
    max_drawdown: float  # of the cumulative per-era series

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        x = np.asarray(values, dtype=np.float64)
        if x.size == 0 or np.isnan(x).any():
            raise ValueError(f"a summary needs per-era scores without NaN, got {values}")
        std = float(x.std())
        cumulative = np.cumsum(x)
        drawdown = float((np.maximum.accumulate(np.maximum(cumulative, 0)) - cumulative).max())
        return cls(float(x.mean()), std, float(x.mean() / std) if std > 0 else math.nan, drawdown)


@dataclasses.dataclass(frozen=True)
class Paired:
    """Per-era difference a - b over the same eras."""

    mean: float
    se: float
    n: int

    @classmethod
    def of(cls, a: list[float], b: list[float]) -> Paired:
        if len(a) != len(b) or not a:
            raise ValueError(f"paired difference: {len(a)} and {len(b)} eras")
        diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.nan
        return cls(float(diff.mean()), se, len(diff))

    @property
    def t(self) -> float:
        return self.mean / self.se if self.se > 0 else math.nan

    @property
    def verdict(self) -> str:
        if not self.se > 0 or abs(self.mean) < TIE_SE * self.se:
            return "tie"
        return "better" if self.mean > 0 else "worse"

    def text(self) -> str:
        return f"{self.mean:+.4f} ± {self.se:.4f}"

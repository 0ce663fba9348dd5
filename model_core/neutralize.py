"""Partial feature neutralisation of one era's predictions, with numerai-tools' `neutralize`.

Subtracting part of the predictions' least-squares projection on the era's features lowers their
feature exposure (and so the risk of a feature's payoff flipping) at some cost in CORR. Off by
default: on the validation eras of bench/tune.py, 0.1 cost 0.0017 CORR and 0.5 cost 0.0144
(bench/RESULTS.md); users who trade CORR for lower exposure turn it on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numerai_tools.scoring import neutralize

from model_core import schema
from model_core.ensemble import rank_within_era


def neutralize_era(predictions: np.ndarray, features: np.ndarray, proportion: float) -> np.ndarray:
    """predictions (N,) of one era less `proportion` of their projection on its features (N, F)
    int8 (missing as the middle bin), as within-era ranks in (0, 1]; proportion 0 returns them as
    they are."""
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"neutralisation proportion must be in [0, 1], got {proportion}")
    if proportion == 0.0:
        return predictions
    if features.ndim != 2 or features.shape[0] != predictions.shape[0]:
        raise ValueError(f"features must be (N={predictions.shape[0]}, F), got shape {features.shape}")
    x = features.astype(np.float64)  # one era: (N, F) float64 is small
    x[features == schema.MISSING] = schema.FEATURE_NEUTRAL
    frame = pd.DataFrame({schema.PREDICTION: np.asarray(predictions, dtype=np.float64)})
    neutral = neutralize(frame, pd.DataFrame(x), proportion)[schema.PREDICTION].to_numpy()
    return rank_within_era(neutral)

"""neutralize_era: exposure removed in proportion, ranks out, bad input refused."""

import numpy as np
import pytest

from model_core import schema
from model_core.diagnostics import era_max_feature_exposure
from model_core.neutralize import neutralize_era


def _era(n=400, f=6, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.integers(0, 5, size=(n, f)).astype(np.int8)
    features[rng.random((n, f)) < 0.05] = schema.MISSING
    predictions = features[:, 0] * 0.5 + rng.standard_normal(n)  # exposed to feature 0
    return predictions, features


def test_full_neutralisation_leaves_almost_no_exposure():
    predictions, features = _era()
    before = era_max_feature_exposure(predictions, features)
    half = neutralize_era(predictions, features, 0.5)
    full = neutralize_era(predictions, features, 1.0)
    assert before > 0.3
    assert era_max_feature_exposure(full, features) < 0.05  # ranks of the residual: near zero
    assert era_max_feature_exposure(full, features) < era_max_feature_exposure(half, features) < before
    assert full.min() > 0 and full.max() == 1.0 and len(np.unique(full)) == len(full)


def test_zero_proportion_changes_nothing_and_bad_input_is_refused():
    predictions, features = _era()
    assert neutralize_era(predictions, features, 0.0) is predictions
    with pytest.raises(ValueError, match="proportion must be in"):
        neutralize_era(predictions, features, 1.5)
    with pytest.raises(ValueError, match=r"features must be \(N=400"):
        neutralize_era(predictions, features[:10], 0.5)

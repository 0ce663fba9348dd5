import numpy as np

from model_core import schema
from model_core.feature_returns import era_feature_correlations


def test_correlations_match_numpy_on_valid_rows():
    rng = np.random.default_rng(3)
    features = rng.integers(0, 5, size=(200, 4)).astype(np.int8)
    target = rng.random(200)
    features[:20, 1] = schema.MISSING
    features[:, 3] = schema.MISSING  # unavailable this era
    corr = era_feature_correlations(features, target)
    assert np.isclose(corr[0], np.corrcoef(features[:, 0], target)[0, 1], atol=1e-6)
    assert np.isclose(corr[1], np.corrcoef(features[20:, 1], target[20:])[0, 1], atol=1e-6)
    assert np.isnan(corr[3])


def test_constant_feature_has_no_correlation():
    features = np.full((50, 1), 3, dtype=np.int8)
    assert np.isnan(era_feature_correlations(features, np.arange(50.0))[0])

import numpy as np
import pandas as pd
import pytest

from model_core.ensemble import (
    WeightConfig,
    blend,
    equal_weights,
    fit_ensemble_weights,
    rank_within_era,
)


def test_rank_matches_pandas_average_pct_rank_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=200).astype(np.float64)  # many ties
    expected = pd.Series(scores).rank(pct=True, method="average").to_numpy()
    ranks = rank_within_era(scores)
    assert ranks.dtype == np.float64
    np.testing.assert_allclose(ranks, expected)
    assert ranks.min() > 0 and ranks.max() <= 1.0
    np.testing.assert_allclose(rank_within_era(np.array([3.0, 1.0, 2.0])), [1.0, 1 / 3, 2 / 3])


def test_rank_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        rank_within_era(np.array([0.1, np.nan, 0.3]))


def test_blend_of_identical_models_is_their_rank():
    scores = np.random.default_rng(1).normal(size=50)
    np.testing.assert_allclose(blend([scores, scores, scores], [0.2, 0.3, 0.5]), rank_within_era(scores))


def test_blend_is_invariant_to_monotone_transforms_of_one_model():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=80), rng.normal(size=80)
    weights = [0.7, 0.3]
    blended = blend([a, b], weights)
    np.testing.assert_allclose(blend([np.exp(3 * a) + 10, b], weights), blended)
    expected = 0.7 * rank_within_era(a) + 0.3 * rank_within_era(b)
    np.testing.assert_allclose(blended, expected)
    assert blended.min() >= 0 and blended.max() <= 1


@pytest.mark.parametrize(
    ("per_model", "weights", "message"),
    [
        ([np.ones(3), np.ones(4)], [0.5, 0.5], "same 1-D shape"),
        ([np.ones(3), np.ones(3)], [1.0], "one entry per model"),
        ([np.ones(3), np.ones(3)], [1.5, -0.5], "non-negative"),
        ([np.ones(3), np.ones(3)], [0.5, 0.4], "sum to 1"),
        ([], [], "no model"),
    ],
)
def test_blend_validates_its_input(per_model, weights, message):
    with pytest.raises(ValueError, match=message):
        blend(per_model, weights)


def test_weights_are_non_negative_and_sum_to_one():
    rng = np.random.default_rng(3)
    oof = [rng.normal(mu, 0.02, size=30).tolist() for mu in (0.02, 0.01, -0.01, 0.03)]
    for shrinkage in (0.0, 0.3, 0.5, 1.0):
        w = fit_ensemble_weights(oof, WeightConfig(shrinkage=shrinkage))
        assert w.shape == (4,) and (w >= 0).all()
        assert np.isclose(w.sum(), 1.0)


def test_shrinkage_one_gives_equal_weights():
    oof = [[0.05, 0.04], [0.0, 0.01], [-0.02, -0.03]]
    np.testing.assert_allclose(fit_ensemble_weights(oof, WeightConfig(shrinkage=1.0)), equal_weights(3))


def test_negative_model_gets_only_the_shrinkage_share_and_better_model_gets_more():
    oof = [[0.03, np.nan, 0.01], [0.01, 0.01, 0.01], [-0.02, -0.01, -0.03]]  # means 0.02, 0.01, -0.02
    w = fit_ensemble_weights(oof, WeightConfig(shrinkage=0.4))
    assert np.isclose(w[2], 0.4 / 3)
    assert w[0] > w[1] > w[2]
    # fitted part (2/3, 1/3, 0), shrunk: 0.6 * fitted + 0.4 / 3
    np.testing.assert_allclose(w, 0.6 * np.array([2 / 3, 1 / 3, 0.0]) + 0.4 / 3)


def test_no_positive_model_gives_equal_weights():
    w = fit_ensemble_weights([[-0.01], [-0.02]], WeightConfig(shrinkage=0.0))
    np.testing.assert_allclose(w, [0.5, 0.5])


def test_weight_config_and_fit_validate():
    with pytest.raises(ValueError, match="shrinkage"):
        WeightConfig(shrinkage=1.5)
    with pytest.raises(ValueError, match="fold model 1"):
        fit_ensemble_weights([[0.01], [np.nan]], WeightConfig())
    with pytest.raises(ValueError, match="no fold models"):
        fit_ensemble_weights([], WeightConfig())
    with pytest.raises(ValueError, match="k=0"):
        equal_weights(0)

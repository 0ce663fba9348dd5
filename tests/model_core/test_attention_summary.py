import numpy as np
import pytest

from model_core.attention_summary import (
    attention_stats,
    cross_attention_by_decile,
    temporal_attention_by_lag,
)


def _row_stochastic(n, seed=0):
    w = np.random.default_rng(seed).random((n, n))
    return w / w.sum(axis=1, keepdims=True)


def test_decile_rows_sum_to_one_for_row_stochastic_input():
    n = 57  # not a multiple of 10: unequal deciles
    predictions = np.random.default_rng(1).normal(size=n)
    matrix = cross_attention_by_decile(_row_stochastic(n), predictions)
    assert matrix.shape == (10, 10)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)


def test_decile_summary_matches_a_loop():
    n, bins = 12, 3
    rng = np.random.default_rng(2)
    w = _row_stochastic(n, seed=3)
    predictions = rng.permutation(n).astype(float)
    decile = (predictions.argsort().argsort() * bins) // n  # 4 stocks per bin by prediction order
    expected = np.zeros((bins, bins))
    for i in range(bins):
        readers = np.flatnonzero(decile == i)
        for j in range(bins):
            read = np.flatnonzero(decile == j)
            expected[i, j] = np.mean([w[s, read].sum() for s in readers])
    np.testing.assert_allclose(cross_attention_by_decile(w, predictions, bins), expected)


def test_stocks_that_read_only_themselves_stay_on_the_diagonal():
    n = 30
    matrix = cross_attention_by_decile(np.eye(n), np.arange(n, dtype=float))
    np.testing.assert_allclose(matrix, np.eye(10))


def test_identity_attention_stats():
    stats = attention_stats(np.eye(20))
    assert stats["self_share"] == 1.0
    assert stats["entropy_ratio"] == 0.0
    assert stats["top10_share"] == 1.0


def test_uniform_attention_stats():
    n = 40
    stats = attention_stats(np.full((n, n), 1.0 / n))
    assert np.isclose(stats["self_share"], 1 / n)
    assert np.isclose(stats["entropy_ratio"], 1.0)
    assert np.isclose(stats["top10_share"], 10 / n)


def test_temporal_attention_is_the_head_mean_lag_1_first():
    weights = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])  # (H=2, K=3)
    np.testing.assert_allclose(temporal_attention_by_lag(weights), [0.4, 0.25, 0.35])


def test_attention_inputs_are_validated():
    with pytest.raises(ValueError, match=r"\(N, N\)"):
        attention_stats(np.ones((3, 4)))
    with pytest.raises(ValueError, match="bins"):
        cross_attention_by_decile(np.eye(5), np.arange(5.0), bins=10)
    with pytest.raises(ValueError, match="predictions"):
        cross_attention_by_decile(np.eye(20), np.arange(19.0))
    with pytest.raises(ValueError, match="positive sum"):
        attention_stats(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"\(H, K\)"):
        temporal_attention_by_lag(np.ones(4))

import numpy as np
import pandas as pd
import pytest
from numerai_tools.scoring import correlation_contribution, feature_neutral_corr

from model_core import schema
from model_core.diagnostics import (
    EraScores,
    era_churn_corr,
    era_contribution,
    era_feature_exposures,
    era_feature_neutral_corr,
    era_max_feature_exposure,
    rolling_sharpe,
    score_era,
    summarise_scores,
)
from model_core.metrics import era_numerai_corr

N, F = 300, 6


@pytest.fixture
def era():
    """One era: features with some missing values, a constant column, a partly unknown target."""
    rng = np.random.default_rng(0)
    features = rng.integers(0, 5, size=(N, F)).astype(np.int8)
    features[:20, 1] = schema.MISSING
    features[:, 5] = 2  # a feature unavailable this era
    target = rng.choice(schema.TARGET_VALUES_5, size=N)
    predictions = 0.5 * features[:, 0] + target * 2 + rng.normal(0, 1, size=N)
    target_with_nan = target.copy()
    target_with_nan[-15:] = np.nan
    return predictions, target_with_nan, features


def _filled(features):
    x = features.astype(np.float64)
    x[features == schema.MISSING] = schema.FEATURE_NEUTRAL
    return x


def test_exposures_are_pearson_with_each_filled_feature(era):
    predictions, _, features = era
    exposures = era_feature_exposures(predictions, features)
    x = _filled(features)
    expected = [np.corrcoef(predictions, x[:, j])[0, 1] for j in range(F - 1)]
    np.testing.assert_allclose(exposures[: F - 1], expected)
    assert exposures[F - 1] == 0.0  # the constant column
    assert np.isclose(era_max_feature_exposure(predictions, features), np.max(np.abs(expected)))


def test_exposures_of_constant_predictions_are_nan(era):
    _, _, features = era
    assert np.isnan(era_feature_exposures(np.ones(N), features)).all()
    assert np.isnan(era_max_feature_exposure(np.ones(N), features))


def test_fnc_is_numerai_tools_on_the_scored_rows(era):
    predictions, target, features = era
    keep = ~np.isnan(target)
    index = pd.RangeIndex(int(keep.sum()))
    expected = feature_neutral_corr(
        pd.DataFrame({"p": predictions[keep]}, index=index),
        pd.DataFrame(_filled(features)[keep], index=index),
        pd.Series(target[keep], index=index, name="target"),
    ).iloc[0]
    assert np.isclose(era_feature_neutral_corr(predictions, features, target), expected)


def test_fnc_is_nan_when_the_features_explain_the_predictions():
    rng = np.random.default_rng(1)
    features = rng.integers(0, 5, size=(100, 3)).astype(np.int8)
    features[:, 0] = rng.choice([0, 4], size=100)  # two values: its rank-gaussian is linear in it
    target = rng.choice(schema.TARGET_VALUES_5, size=100)
    assert np.isnan(era_feature_neutral_corr(features[:, 0].astype(float), features, target))


def test_contribution_is_numerai_tools_without_unknown_rows(era):
    predictions, target, _ = era
    rng = np.random.default_rng(2)
    reference = predictions + rng.normal(0, 2, size=N)
    reference[:10] = np.nan
    keep = ~np.isnan(reference) & ~np.isnan(target)
    index = pd.RangeIndex(int(keep.sum()))
    expected = correlation_contribution(
        pd.DataFrame({"p": predictions[keep]}, index=index),
        pd.Series(reference[keep], index=index, name="mm"),
        pd.Series(target[keep], index=index, name="target"),
    ).iloc[0]
    assert np.isclose(era_contribution(predictions, reference, target), expected)
    assert np.isnan(era_contribution(predictions, np.full(N, np.nan), target))


def _spearman(a, b):
    ranks = [pd.Series(v).rank(method="average").to_numpy() for v in (a, b)]
    return np.corrcoef(*ranks)[0, 1]


def test_churn_is_spearman_of_the_two_versions(era):
    predictions, _, _ = era
    previous = predictions**3 + np.random.default_rng(3).normal(0, 5, size=N)
    previous[:5] = np.nan
    assert np.isclose(era_churn_corr(predictions, previous), _spearman(predictions[5:], previous[5:]))
    assert era_churn_corr(predictions, np.exp(predictions)) == pytest.approx(1.0)
    assert np.isnan(era_churn_corr(np.array([1.0]), np.array([2.0])))
    with pytest.raises(ValueError, match="same 1-D shape"):
        era_churn_corr(predictions, predictions[:-1])


def test_rolling_sharpe_matches_a_loop():
    rng = np.random.default_rng(4)
    corrs = rng.normal(0.01, 0.02, size=40)
    corrs[[3, 10, 11, 25]] = np.nan
    window = 8
    got = rolling_sharpe(corrs, window)
    for t in range(len(corrs)):
        recent = [c for c in corrs[max(0, t - window + 1) : t + 1] if not np.isnan(c)]
        if len(recent) < 4:
            assert np.isnan(got[t])
        else:
            assert np.isclose(got[t], np.mean(recent) / np.std(recent))
    assert np.isnan(got[:3]).all() and not np.isnan(got[-1])
    with pytest.raises(ValueError, match="window"):
        rolling_sharpe(corrs, 2)


def test_score_era_runs_every_metric(era):
    predictions, target, features = era
    rng = np.random.default_rng(5)
    benchmark = predictions + rng.normal(0, 1, size=N)
    scores = score_era("0042", predictions, target, features, benchmark=benchmark, previous=predictions)
    assert scores.era == "0042"
    assert scores.corr == era_numerai_corr(predictions, target)
    assert scores.fnc == era_feature_neutral_corr(predictions, features, target)
    assert scores.bmc == era_contribution(predictions, benchmark, target)
    assert np.isnan(scores.mmc)  # no meta model given
    assert scores.max_feature_exposure == era_max_feature_exposure(predictions, features)
    assert scores.churn_corr == pytest.approx(1.0)


def test_summary_of_scores():
    nan = float("nan")
    scores = [
        EraScores("0001", 0.02, 0.01, 0.005, nan, 0.2, nan),
        EraScores("0002", -0.01, 0.03, nan, nan, 0.4, 0.9),
        EraScores("0003", 0.05, nan, 0.015, nan, 0.3, 0.7),
    ]
    summary = summarise_scores(scores)
    assert np.isclose(summary["corr_mean"], 0.02)
    assert np.isclose(summary["corr_sharpe"], 0.02 / np.std([0.02, -0.01, 0.05]))
    assert np.isclose(summary["corr_max_drawdown"], 0.01)
    assert np.isclose(summary["fnc_mean"], 0.02)
    assert np.isclose(summary["bmc_mean"], 0.01)
    assert np.isnan(summary["mmc_mean"])
    assert np.isclose(summary["max_feature_exposure_mean"], 0.3)
    assert np.isclose(summary["churn_corr_mean"], 0.8)
    assert np.isnan(summarise_scores([])["corr_mean"])


def test_bad_inputs_name_the_problem(era):
    predictions, target, features = era
    with pytest.raises(ValueError, match="NaN"):
        era_feature_exposures(np.full(N, np.nan), features)
    with pytest.raises(ValueError, match="features must be"):
        era_feature_exposures(predictions, features[:-1])
    with pytest.raises(ValueError, match="target has shape"):
        era_feature_neutral_corr(predictions, features, target[:-1])
    with pytest.raises(ValueError, match="reference has shape"):
        era_contribution(predictions, predictions[:-1], target)

"""Choosing the submitted candidate from out-of-fold figures, and the blend weight."""

import numpy as np
import pytest

from model_core.candidates import (
    BLEND,
    LGBM,
    TRANSFORMER,
    Choice,
    blend_era,
    candidate_predictions,
    choose_candidate,
    era_corrs,
    fit_blend_weight,
)
from model_core.ensemble import rank_within_era


def _eras(n_eras=30, n=200, seed=0):
    """targets, a predictive model (signal + noise) and a useless one (noise), per era."""
    rng = np.random.default_rng(seed)
    targets, good, noise = {}, {}, {}
    for e in range(n_eras):
        era = f"{e:04d}"
        signal = rng.normal(size=n)
        targets[era] = np.digitize(signal + rng.normal(0, 1.0, n), [-1, -0.3, 0.3, 1]) / 4
        good[era] = signal + rng.normal(0, 0.5, n)
        noise[era] = rng.normal(size=n)
    return targets, good, noise


def test_blend_weight_goes_to_the_model_that_predicts():
    targets, good, noise = _eras()
    assert fit_blend_weight(good, noise, targets) >= 0.9
    assert fit_blend_weight(noise, good, targets) <= 0.1


def test_blend_of_two_partial_models_beats_either():
    rng = np.random.default_rng(1)
    targets, a, b = {}, {}, {}
    for e in range(30):
        x, y = rng.normal(size=(2, 300))
        targets[f"{e:04d}"] = np.digitize(x + y + rng.normal(0, 1, 300), [-1, 0, 1]) / 3
        a[f"{e:04d}"], b[f"{e:04d}"] = x, y
    weight = fit_blend_weight(a, b, targets)
    assert 0.3 <= weight <= 0.7
    blended = candidate_predictions(a, b, weight)
    means = {name: np.mean(era_corrs(preds, targets)) for name, preds in blended.items()}
    assert means[BLEND] > max(means[TRANSFORMER], means[LGBM]) + 0.02


def test_blend_era_is_the_weighted_rank_mean():
    a, b = np.array([3.0, 1.0, 2.0]), np.array([10.0, 30.0, 20.0])
    np.testing.assert_allclose(blend_era(a, b, 0.25), 0.25 * rank_within_era(a) + 0.75 * rank_within_era(b))
    with pytest.raises(ValueError, match="blend weight"):
        blend_era(a, b, 1.5)


def test_choice_by_corr_by_sharpe_and_pinned():
    steady = [0.02] * 9 + [0.021]  # low mean, tiny spread
    bold = [0.10, -0.05] * 5  # higher mean, large spread
    choice = choose_candidate({TRANSFORMER: steady, LGBM: bold}, metric="corr")
    assert choice.candidate == LGBM and "best out-of-fold CORR" in choice.reason
    assert choose_candidate({TRANSFORMER: steady, LGBM: bold}, metric="sharpe").candidate == TRANSFORMER
    pinned = choose_candidate({TRANSFORMER: steady, LGBM: bold}, pinned=TRANSFORMER)
    assert pinned.candidate == TRANSFORMER and pinned.pinned and "pinned" in pinned.reason
    assert pinned.oof[LGBM]["eras"] == 10
    assert Choice.from_dict(pinned.to_dict()) == pinned


def test_bad_choice_arguments_are_named():
    with pytest.raises(ValueError, match="selection metric 'mean'"):
        choose_candidate({TRANSFORMER: [0.1]}, metric="mean")
    with pytest.raises(ValueError, match="pinned candidate 'lgbm'"):
        choose_candidate({TRANSFORMER: [0.1]}, pinned=LGBM)
    with pytest.raises(ValueError, match="candidates"):
        choose_candidate({"ridge": [0.1]})
    with pytest.raises(KeyError, match="0001"):
        era_corrs({"0000": np.zeros(3)}, {"0000": np.zeros(3), "0001": np.zeros(3)})

"""Choosing the submitted candidate from out-of-fold figures, and the blend weights."""

import numpy as np
import pytest

from model_core.candidates import (
    BLEND,
    LGBM,
    PEER_RIDGE,
    TRANSFORMER,
    Choice,
    blend_grid,
    blend_ranks,
    candidate_predictions,
    choose_candidate,
    era_corrs,
    fit_blend_weights,
    members_used,
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
    assert fit_blend_weights({TRANSFORMER: good, LGBM: noise}, targets)[TRANSFORMER] >= 0.9
    assert fit_blend_weights({TRANSFORMER: noise, LGBM: good}, targets)[TRANSFORMER] <= 0.1
    three = fit_blend_weights({TRANSFORMER: noise, LGBM: noise, PEER_RIDGE: good}, targets)
    assert three[PEER_RIDGE] >= 0.8 and sum(three.values()) == pytest.approx(1.0)


def test_blend_of_two_partial_models_beats_either():
    rng = np.random.default_rng(1)
    targets, a, b = {}, {}, {}
    for e in range(30):
        x, y = rng.normal(size=(2, 300))
        targets[f"{e:04d}"] = np.digitize(x + y + rng.normal(0, 1, 300), [-1, 0, 1]) / 3
        a[f"{e:04d}"], b[f"{e:04d}"] = x, y
    weights = fit_blend_weights({TRANSFORMER: a, LGBM: b}, targets)
    assert 0.3 <= weights[TRANSFORMER] <= 0.7
    blended = candidate_predictions({TRANSFORMER: a, LGBM: b}, weights)
    means = {name: np.mean(era_corrs(preds, targets)) for name, preds in blended.items()}
    assert means[BLEND] > max(means[TRANSFORMER], means[LGBM]) + 0.02


def test_blend_of_three_partial_models_weighs_each():
    """Three members, each seeing a third of the signal: the blend weighs all three and beats
    every member; the grid is the simplex in steps of 0.05."""
    rng = np.random.default_rng(2)
    targets, parts = {}, {TRANSFORMER: {}, LGBM: {}, PEER_RIDGE: {}}
    for e in range(30):
        x = rng.normal(size=(3, 300))
        targets[f"{e:04d}"] = np.digitize(x.sum(0) + rng.normal(0, 1, 300), [-1, 0, 1]) / 3
        for name, signal in zip(parts, x, strict=True):
            parts[name][f"{e:04d}"] = signal
    assert len(blend_grid(3)) == 231 and np.allclose(blend_grid(3).sum(1), 1.0)
    weights = fit_blend_weights(parts, targets)
    assert set(weights) == set(parts) and min(weights.values()) >= 0.2
    assert all(round(w * 20, 9) == round(w * 20) for w in weights.values())  # on the 0.05 grid
    means = {
        name: np.mean(era_corrs(p, targets)) for name, p in candidate_predictions(parts, weights).items()
    }
    assert means[BLEND] > max(means[n] for n in parts) + 0.05


def test_ties_go_to_the_weights_nearest_equal():
    targets, good, _ = _eras(n_eras=5)
    same = fit_blend_weights({TRANSFORMER: good, LGBM: good, PEER_RIDGE: good}, targets)
    # Every grid point blends the same ranks: all tie, and the most even one is taken.
    assert sorted(same.values()) == pytest.approx([0.3, 0.35, 0.35])


def test_blend_is_the_weighted_rank_mean():
    a, b, c = np.array([3.0, 1.0, 2.0]), np.array([10.0, 30.0, 20.0]), np.array([0.0, 2.0, 1.0])
    np.testing.assert_allclose(
        blend_ranks({TRANSFORMER: a, LGBM: b}, {TRANSFORMER: 0.25, LGBM: 0.75}),
        0.25 * rank_within_era(a) + 0.75 * rank_within_era(b),
    )
    weights = {TRANSFORMER: 0.5, LGBM: 0.0, PEER_RIDGE: 0.5}
    # A member with weight 0 is not needed (its refit is skipped).
    np.testing.assert_allclose(
        blend_ranks({TRANSFORMER: a, PEER_RIDGE: c}, weights),
        0.5 * rank_within_era(a) + 0.5 * rank_within_era(c),
    )
    assert members_used(BLEND, weights) == (TRANSFORMER, PEER_RIDGE)
    assert members_used(PEER_RIDGE, weights) == (PEER_RIDGE,)
    with pytest.raises(ValueError, match="sum to 1"):
        blend_ranks({TRANSFORMER: a, LGBM: b}, {TRANSFORMER: 0.5, LGBM: 1.0})
    with pytest.raises(ValueError, match="no predictions of"):
        blend_ranks({TRANSFORMER: a}, weights)


def test_an_old_choice_without_blend_weights_still_loads():
    old = {
        "candidate": BLEND,
        "metric": "corr",
        "pinned": False,
        "reason": "best out-of-fold CORR",
        "blend_weight": 0.6,
        "oof": {name: {"mean": 0.01, "eras": 3} for name in (TRANSFORMER, LGBM, BLEND)},
        "test": {},
        "oof_payout": {},
        "payout": None,
    }
    choice = Choice.from_dict(old)
    assert choice.blend_weights == pytest.approx({TRANSFORMER: 0.6, LGBM: 0.4})
    assert choice.members_used() == (TRANSFORMER, LGBM)


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
    weights = {TRANSFORMER: 0.45, LGBM: 0.1, PEER_RIDGE: 0.45}
    three = choose_candidate(
        {TRANSFORMER: steady, LGBM: bold, PEER_RIDGE: bold, BLEND: steady}, blend_weights=weights
    )
    assert three.candidate == LGBM  # ties with the peer ridge: the order of CANDIDATES decides
    assert three.blend_weights == weights and three.blend_weight == 0.45
    assert Choice.from_dict(three.to_dict()) == three


def test_bad_choice_arguments_are_named():
    with pytest.raises(ValueError, match="selection metric 'mean'"):
        choose_candidate({TRANSFORMER: [0.1]}, metric="mean")
    with pytest.raises(ValueError, match="pinned candidate 'lgbm'"):
        choose_candidate({TRANSFORMER: [0.1]}, pinned=LGBM)
    with pytest.raises(ValueError, match="candidates"):
        choose_candidate({"ridge": [0.1]})
    with pytest.raises(ValueError, match="blend members"):
        fit_blend_weights({LGBM: {}, PEER_RIDGE: {}}, {"0000": np.zeros(3)})
    with pytest.raises(KeyError, match="0001"):
        era_corrs({"0000": np.zeros(3)}, {"0000": np.zeros(3), "0001": np.zeros(3)})

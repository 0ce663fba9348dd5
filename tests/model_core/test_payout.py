"""The payout score, its settings read from a list_rounds round, CWMM, and the choice by payout."""

import math

import numpy as np
import pytest

from model_core.candidates import PAYOUT_MIN_ERAS, choose_candidate
from model_core.diagnostics import EraScores, score_era, summarise_scores
from model_core.payout import (
    DOCUMENTED_DEFAULTS,
    PayoutConfigError,
    PayoutSettings,
    payout_settings_from_round,
)

# The stand-in's multipliers (tournament_sim/score_configs.py), different from the defaults.
ROUND = PayoutSettings(0.75, 2.5, 0.1, 0.125, "round 1003")
HAND = 1e-5  # the hand arithmetic below carries 6 digits


def _config(name: str, is_payout: bool, multiplier: float, clip: float | None = 0.1) -> dict:
    return {"name": name, "isPayout": is_payout, "defaultMultiplier": multiplier, "clipThreshold": clip}


def test_payout_of_a_small_era_against_a_hand_computation():
    """Four stocks. Numerai's steps, by hand (norm.ppf(0.125) = -1.150349, ppf(0.375) = -0.318639):

    predictions [0.2, 0.9, 0.4, 0.6] -> percentile ranks [.125, .875, .375, .625]
      -> gaussianised g = [-1.150349, 1.150349, -0.318639, 0.318639]
    CORR: g^1.5 (sign kept) = [-1.233799, 1.233799, -0.179866, 0.179866];
      target [0.25, 1, 0.5, 0.25] centred [-0.25, 0.5, 0, -0.25], ^1.5 = [-0.125, 0.353553, 0, -0.125]
      (mean 0.025888); Pearson: 0.567956 / sqrt(3.109224 * 0.153568) = 0.821927
    MMC: meta model [0.1, 0.5, 0.3, 0.9] -> m = [-1.150349, 0.318639, -0.318639, 1.150349];
      g.m = 2.157926, m.m = 2.849668, g - 0.757256 m = [-0.279240, 0.909058, -0.077348, -0.552470];
      target x4 centred [-1, 2, 0, -1]; dot / 4 = 2.649826 / 4 = 0.662457
    CWMM: Pearson(meta model, g): centred meta [-.35, .05, -.15, .45];
      0.651323 / sqrt(0.35 * 2.849668) = 0.652177
    payout with CORR x0.05 + MMC x0.02, clip 0.1: 0.041096 + 0.013249 = 0.054346 (inside the clip);
    with the stand-in's CORR x0.75 + MMC x2.5: 0.616445 + 1.656143 = 2.27 -> clipped to 0.1.
    """
    predictions = np.array([0.2, 0.9, 0.4, 0.6])
    target = np.array([0.25, 1.0, 0.5, 0.25])
    meta_model = np.array([0.1, 0.5, 0.3, 0.9])
    features = np.full((4, 1), 2, dtype=np.int8)
    small = PayoutSettings(0.05, 0.02, 0.1, None, "hand")
    scores = score_era("0001", predictions, target, features, meta_model=meta_model, fnc=False, payout=small)
    assert scores.corr == pytest.approx(0.821927, abs=HAND)
    assert scores.mmc == pytest.approx(0.662457, abs=HAND)
    assert scores.cwmm == pytest.approx(0.652177, abs=HAND)
    assert scores.payout == pytest.approx(0.054346, abs=HAND)
    clipped = score_era("0001", predictions, target, features, meta_model=meta_model, fnc=False, payout=ROUND)
    assert clipped.payout == 0.1


def test_payout_is_clipped_both_ways_and_nan_without_mmc():
    # -0.8 x 0.75 + 0.1 x 2.5 = -0.35 -> -0.1; 0.02 x 0.75 + 0.004 x 2.5 = 0.025 stays
    payouts = ROUND.era_payouts([-0.8, 0.02, 0.03], [0.1, 0.004, math.nan])
    np.testing.assert_allclose(payouts[:2], [-0.1, 0.025])
    assert math.isnan(payouts[2])
    no_meta = score_era(
        "0001", np.array([0.1, 0.2, 0.3]), np.array([0.0, 0.5, 1.0]), np.full((3, 1), 2, np.int8)
    )
    assert math.isnan(no_meta.payout) and math.isnan(no_meta.cwmm) and not math.isnan(no_meta.corr)


def test_settings_from_a_round_follow_the_documented_rule():
    round_info = {
        "number": 1003,
        "payoutFactor": "0.125",
        "roundScoreConfigs": [
            _config("V2_CORR20", True, 0.75, 0.12),  # case-insensitive
            _config("corr60", False, 9.0),  # a CORR score that does not pay: ignored
            _config("mmc", True, 2.5, 0.1),  # the smaller clip wins
            _config("bmc", False, 0.0, None),
        ],
    }
    assert payout_settings_from_round(round_info) == ROUND
    assert ROUND.describe() == "CORR x0.75 + MMC x2.5, clip 0.1"
    assert DOCUMENTED_DEFAULTS.describe() == "CORR x0.5 + MMC x2, clip 0.05"
    assert DOCUMENTED_DEFAULTS.source == "documented defaults"


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        ([], "round 1003 has no roundScoreConfigs with isPayout"),
        (
            [_config("v2_corr20", False, 0.75), _config("mmc", False, 2.5)],
            "no roundScoreConfigs with isPayout",
        ),
        ([_config("v2_corr20", True, 0.75)], "round 1003 has no payout config for MMC"),
        ([_config("mmc", True, 2.5)], "no payout config for CORR"),
        (
            [_config("corr20", True, 1), _config("v2_corr20", True, 1), _config("mmc", True, 2)],
            "2 payout configs",
        ),
        ([_config("corr", True, 0.5, None), _config("mmc", True, 2, None)], "no clipThreshold"),
        ([_config("corr", True, None), _config("mmc", True, 2)], "'corr' has no defaultMultiplier"),
    ],
)
def test_a_round_that_does_not_say_how_it_pays_is_named(configs, message):
    with pytest.raises(PayoutConfigError, match=message):
        payout_settings_from_round({"number": 1003, "roundScoreConfigs": configs})


def test_summary_has_cwmm_and_the_payout_mean_and_sharpe():
    nan = math.nan
    scores = [
        EraScores("0001", 0.02, nan, nan, 0.01, 0.2, nan, cwmm=0.5, payout=0.03),
        EraScores("0002", 0.01, nan, nan, nan, 0.2, nan, cwmm=nan, payout=nan),
        EraScores("0003", 0.04, nan, nan, 0.02, 0.2, nan, cwmm=0.7, payout=0.01),
    ]
    summary = summarise_scores(scores)
    assert summary["cwmm_mean"] == pytest.approx(0.6)
    assert summary["payout_mean"] == pytest.approx(0.02)
    assert summary["payout_sharpe"] == pytest.approx(0.02 / 0.01)  # std (ddof 0) of [0.03, 0.01]


def _oof(n_eras: int, n_meta: int):
    """Two candidates over n_eras: lgbm has the better CORR, transformer the better MMC (hence
    payout) on the last n_meta eras, which alone have meta model values (as on Numerai)."""
    rng = np.random.default_rng(0)
    corrs = {
        "lgbm": 0.03 + 0.005 * rng.standard_normal(n_eras),
        "transformer": 0.02 + 0.005 * rng.standard_normal(n_eras),
    }
    mmcs = {name: np.full(n_eras, np.nan) for name in corrs}
    mmcs["lgbm"][n_eras - n_meta :] = -0.01
    mmcs["transformer"][n_eras - n_meta :] = 0.01
    return corrs, mmcs


def test_choice_by_payout_uses_the_eras_with_meta_model_values():
    corrs, mmcs = _oof(60, PAYOUT_MIN_ERAS)
    choice = choose_candidate(corrs, "payout", oof_mmcs=mmcs, payout=ROUND)
    assert choice.candidate == "transformer" and choice.metric == "payout"
    assert choice.oof_payout["transformer"]["eras"] == PAYOUT_MIN_ERAS
    assert choice.oof["lgbm"]["mean"] > choice.oof["transformer"]["mean"]  # CORR alone would differ
    assert "payout (CORR x0.75 + MMC x2.5, clip 0.1, round 1003)" in choice.reason
    assert choice.payout == ROUND.to_dict()


def test_choice_by_payout_falls_back_to_corr_with_too_few_meta_model_eras():
    corrs, mmcs = _oof(60, PAYOUT_MIN_ERAS - 1)
    choice = choose_candidate(corrs, "payout", oof_mmcs=mmcs, payout=ROUND)
    assert choice.candidate == "lgbm" and choice.metric == "corr"
    assert choice.reason.startswith(
        f"chosen by CORR, not payout: only {PAYOUT_MIN_ERAS - 1} out-of-fold eras have meta model values"
    )
    with pytest.raises(ValueError, match="needs every candidate's out-of-fold MMC"):
        choose_candidate(corrs, "payout")

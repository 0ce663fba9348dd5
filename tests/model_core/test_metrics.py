import numpy as np
import pandas as pd
from numerai_tools.scoring import numerai_corr

from model_core.metrics import era_numerai_corr, summarise_corrs


def test_era_corr_is_numerai_tools_on_the_scored_rows():
    rng = np.random.default_rng(0)
    target = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=300)
    preds = target + rng.normal(0, 1, size=300)
    target_with_nan = target.copy()
    target_with_nan[:30] = np.nan
    expected = numerai_corr(pd.DataFrame({"p": preds[30:]}), pd.Series(target[30:], name="t")).iloc[0]
    assert np.isclose(era_numerai_corr(preds, target_with_nan), expected)
    assert era_numerai_corr(np.ones(10), target[:10]) != era_numerai_corr(np.ones(10), target[:10])  # NaN


def test_summary_matches_hand_computation():
    corrs = [0.02, -0.01, 0.03, -0.04, 0.05]
    summary = summarise_corrs(corrs)
    assert np.isclose(summary["mean"], 0.01)
    assert np.isclose(summary["sharpe"], 0.01 / np.std(corrs))
    # cumulative 0.02, 0.01, 0.04, 0.00, 0.05: peak 0.04 then 0.00
    assert np.isclose(summary["max_drawdown"], 0.04)

"""Per-era diagnostics beyond CORR: feature exposure, FNC, BMC / MMC, CWMM, payout, churn,
rolling Sharpe.

Every function takes ONE era's numpy arrays, so callers stream eras and never hold the set:
predictions (N,) float without NaN, target (N,) float with NaN for unknown, features (N, F)
int8 with schema.MISSING. Numerai's own definitions come from numerai-tools (FNC from its
neutralisation steps, BMC / MMC through `correlation_contribution`, CORR through
metrics.era_numerai_corr); only what numerai-tools does not have (exposures, churn, rolling
Sharpe, CWMM from its ranking steps, the payout from model_core.payout) is computed here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numerai_tools.scoring import (
    correlation_contribution,
    gaussian,
    neutralize,
    numerai_corr,
    pearson_correlation,
    tie_kept_rank,
    variance_normalize,
)

from model_core import schema
from model_core.ensemble import rank_within_era
from model_core.metrics import era_numerai_corr, summarise_corrs
from model_core.payout import PayoutSettings

NEUTRAL_RESIDUAL_MIN_STD = 1e-9  # of gaussianised predictions (std 1): below, the features explain them
ROLLING_MIN_ERAS = 4  # fewer scored eras than this in a window: its Sharpe is noise, report NaN
NAN = float("nan")


@dataclasses.dataclass
class EraScores:
    era: str
    corr: float
    fnc: float
    bmc: float
    mmc: float
    max_feature_exposure: float
    churn_corr: float
    cwmm: float = NAN  # correlation with the meta model
    payout: float = NAN  # clip(corr * corr multiplier + mmc * mmc multiplier); NaN without MMC


def era_feature_exposures(predictions: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(F,) Pearson correlation of the predictions with each feature column.

    Missing values count as the neutral value 2 (what Numerai fills an unavailable feature
    with); a constant column has no exposure (0). Constant predictions have no defined
    correlation: all NaN, as their CORR is.
    """
    preds = _predictions(predictions)
    x = _features_as_float(features, preds.size)  # (N, F)
    n_features = x.shape[1]
    p = preds - preds.mean()  # (N,)
    p_norm = np.sqrt(p @ p)
    if preds.size < 2 or p_norm == 0:
        return np.full(n_features, NAN)
    x -= x.mean(axis=0)
    x_norm = np.sqrt(np.einsum("nf,nf->f", x, x))  # (F,)
    cov = p @ x  # (F,)
    safe = np.where(x_norm > 0, x_norm, 1.0)
    return np.where(x_norm > 0, cov / (p_norm * safe), 0.0)


def era_max_feature_exposure(predictions: np.ndarray, features: np.ndarray) -> float:
    """The largest absolute feature exposure: how much of the predictions one feature explains."""
    exposures = era_feature_exposures(predictions, features)
    if exposures.size == 0 or np.isnan(exposures).all():
        return NAN
    return float(np.nanmax(np.abs(exposures)))


def era_feature_neutral_corr(predictions: np.ndarray, features: np.ndarray, target: np.ndarray) -> float:
    """Numerai's FNC of one era (numerai-tools `feature_neutral_corr`, step by step): the CORR
    left after neutralising the predictions to every feature given. Rows with a NaN target are
    left out; missing features count as 2. NaN when fewer than 2 rows are scored, the
    predictions are constant, or the features explain the ranked predictions entirely (what is
    left is rounding noise, which numerai-tools would rescale and score).
    """
    preds = _predictions(predictions)
    x = _features_as_float(features, preds.size)  # (N, F)
    tgt = _target(target, preds.size)
    keep = ~np.isnan(tgt)
    if keep.sum() < 2 or np.ptp(preds[keep]) == 0:
        return NAN
    index = pd.RangeIndex(int(keep.sum()))  # sorted, as numerai-tools requires
    # feature_neutral_corr's own steps, written out only to look at the residual before it is
    # variance-normalised: a residual of rounding noise would be scaled up and scored.
    residual = neutralize(
        gaussian(tie_kept_rank(pd.DataFrame({schema.PREDICTION: preds[keep]}, index=index))),
        pd.DataFrame(x[keep], index=index),
    )
    if float(residual.iloc[:, 0].std()) < NEUTRAL_RESIDUAL_MIN_STD:
        return NAN
    neutral = numerai_corr(
        variance_normalize(residual), pd.Series(tgt[keep], index=index, name=schema.MAIN_TARGET)
    )
    return float(neutral.iloc[0])


def era_contribution(predictions: np.ndarray, reference: np.ndarray, target: np.ndarray) -> float:
    """Contribution of the predictions to the reference's CORR (numerai-tools
    `correlation_contribution`): BMC when the reference is the benchmark model, MMC when it is
    the meta model. Rows where the reference or the target is NaN are left out; NaN when fewer
    than 2 rows remain or either side is constant there.
    """
    preds = _predictions(predictions)
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != preds.shape:
        raise ValueError(f"reference has shape {ref.shape}, predictions {preds.shape}: one value per stock")
    tgt = _target(target, preds.size)
    keep = ~np.isnan(ref) & ~np.isnan(tgt)
    if keep.sum() < 2 or np.ptp(preds[keep]) == 0 or np.ptp(ref[keep]) == 0:
        return NAN
    index = pd.RangeIndex(int(keep.sum()))
    scores = correlation_contribution(
        pd.DataFrame({schema.PREDICTION: preds[keep]}, index=index),
        pd.Series(ref[keep], index=index, name="reference"),
        pd.Series(tgt[keep], index=index, name=schema.MAIN_TARGET),
    )
    return float(scores.iloc[0])


def era_meta_model_corr(predictions: np.ndarray, meta_model: np.ndarray) -> float:
    """CWMM of one era: numerai-tools has no function for it, so it is built from its steps as
    Numerai's diagnostics describe it: the Pearson correlation of the tie-kept-ranked,
    gaussianised predictions with the meta model. It needs no target. Rows where the meta model
    is NaN are left out; NaN when fewer than 2 rows remain or either side is constant there.
    """
    preds = _predictions(predictions)
    meta = np.asarray(meta_model, dtype=np.float64)
    if meta.shape != preds.shape:
        raise ValueError(f"meta model has shape {meta.shape}, predictions {preds.shape}: one value per stock")
    keep = ~np.isnan(meta)
    if keep.sum() < 2 or np.ptp(preds[keep]) == 0 or np.ptp(meta[keep]) == 0:
        return NAN
    index = pd.RangeIndex(int(keep.sum()))  # sorted, as numerai-tools requires
    ranked = gaussian(tie_kept_rank(pd.DataFrame({schema.PREDICTION: preds[keep]}, index=index)))
    return float(pearson_correlation(pd.Series(meta[keep], index=index), ranked[schema.PREDICTION]))


def era_churn_corr(predictions: np.ndarray, previous: np.ndarray) -> float:
    """Spearman correlation of this model version's predictions with the previous version's,
    for the same stocks of the same era: 1 = the retrain changed nothing in the ranking.

    Rows where either side is NaN (a stock the previous version did not score) are left out;
    NaN when fewer than 2 rows remain or either side is constant.
    """
    preds = np.asarray(predictions, dtype=np.float64)
    prev = np.asarray(previous, dtype=np.float64)
    if preds.ndim != 1 or prev.shape != preds.shape:
        raise ValueError(f"predictions {preds.shape} and previous {prev.shape} must be the same 1-D shape")
    keep = ~np.isnan(preds) & ~np.isnan(prev)
    if keep.sum() < 2 or np.ptp(preds[keep]) == 0 or np.ptp(prev[keep]) == 0:
        return NAN
    return float(np.corrcoef(rank_within_era(preds[keep]), rank_within_era(prev[keep]))[0, 1])


def rolling_sharpe(corrs: Sequence[float], window: int = 20) -> np.ndarray:
    """(T,) mean / std (ddof=0) of the per-era CORR over the trailing `window` eras.

    NaN eras in the window are skipped; a window with fewer than ROLLING_MIN_ERAS scored eras,
    or zero spread, is NaN (the first eras always are).
    """
    if window < ROLLING_MIN_ERAS:
        raise ValueError(f"rolling_sharpe: window must be >= {ROLLING_MIN_ERAS} eras, got {window}")
    values = np.asarray(corrs, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"corrs must be 1-D (one value per era), got shape {values.shape}")
    out = np.full(values.size, NAN)
    for t in range(values.size):
        recent = values[max(0, t - window + 1) : t + 1]
        recent = recent[~np.isnan(recent)]
        if recent.size >= ROLLING_MIN_ERAS and recent.std() > 0:
            out[t] = recent.mean() / recent.std()
    return out


def score_era(
    era: str,
    predictions: np.ndarray,
    target: np.ndarray,
    features: np.ndarray,
    benchmark: np.ndarray | None = None,
    meta_model: np.ndarray | None = None,
    previous: np.ndarray | None = None,
    fnc: bool = True,
    payout: PayoutSettings | None = None,
) -> EraScores:
    """Every per-era diagnostic of one era; a score whose input is not given is NaN (the payout
    needs the payout settings and the meta model).

    FNC neutralises to ALL the features given, the costly part: numerai-tools' least-squares
    fit of N x F (measured on 2 CPU cores, 5,000 stocks: ~0.3 s at 42 features, ~11 s at 780,
    ~60 s at 2,748). Pass a feature subset (e.g. the `medium` set) to bound it, or fnc=False
    to skip it (then NaN); the maximum exposure is taken over the features given.
    """
    corr = era_numerai_corr(_predictions(predictions), _target(target, len(predictions)))
    mmc = NAN if meta_model is None else era_contribution(predictions, meta_model, target)
    return EraScores(
        era=era,
        corr=corr,
        fnc=era_feature_neutral_corr(predictions, features, target) if fnc else NAN,
        bmc=NAN if benchmark is None else era_contribution(predictions, benchmark, target),
        mmc=mmc,
        max_feature_exposure=era_max_feature_exposure(predictions, features),
        churn_corr=NAN if previous is None else era_churn_corr(predictions, previous),
        cwmm=NAN if meta_model is None else era_meta_model_corr(predictions, meta_model),
        payout=NAN if payout is None else payout.era_payout(corr, mmc),
    )


def summarise_scores(scores: Sequence[EraScores]) -> dict[str, float]:
    """CORR mean / std / Sharpe / max drawdown, the payout's mean and Sharpe, and the mean of
    every other score (NaN eras ignored; NaN where no era has a value)."""
    corr = summarise_corrs([s.corr for s in scores])
    payout = summarise_corrs([s.payout for s in scores])
    return {
        "corr_mean": corr["mean"],
        "corr_std": corr["std"],
        "corr_sharpe": corr["sharpe"],
        "corr_max_drawdown": corr["max_drawdown"],
        "fnc_mean": _nan_mean([s.fnc for s in scores]),
        "bmc_mean": _nan_mean([s.bmc for s in scores]),
        "mmc_mean": _nan_mean([s.mmc for s in scores]),
        "max_feature_exposure_mean": _nan_mean([s.max_feature_exposure for s in scores]),
        "churn_corr_mean": _nan_mean([s.churn_corr for s in scores]),
        "cwmm_mean": _nan_mean([s.cwmm for s in scores]),
        "payout_mean": payout["mean"],
        "payout_sharpe": payout["sharpe"],
    }


def _nan_mean(values: Sequence[float]) -> float:
    array = np.asarray(values, dtype=np.float64)
    array = array[~np.isnan(array)]
    return float(array.mean()) if array.size else NAN


def _predictions(predictions: np.ndarray) -> np.ndarray:
    preds = np.asarray(predictions, dtype=np.float64)
    if preds.ndim != 1:
        raise ValueError(f"predictions must be 1-D (one era), got shape {preds.shape}")
    if np.isnan(preds).any():
        raise ValueError(f"predictions contain {int(np.isnan(preds).sum())} NaN of {preds.size}")
    return preds


def _target(target: np.ndarray, n: int) -> np.ndarray:
    tgt = np.asarray(target, dtype=np.float64)
    if tgt.shape != (n,):
        raise ValueError(f"target has shape {tgt.shape}, expected ({n},): one value per prediction")
    return tgt


def _features_as_float(features: np.ndarray, n: int) -> np.ndarray:
    """(N, F) float64 copy with MISSING -> the neutral value: the one float copy, one era only."""
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(f"features must be (N={n}, F), got shape {features.shape}")
    x = features.astype(np.float64)
    x[features == schema.MISSING] = schema.FEATURE_NEUTRAL
    return x

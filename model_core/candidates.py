"""The week's candidates compared out of fold, and the choice of the one that is submitted.

Candidates: the transformer ensemble, the example LightGBM, and their within-era rank blend.
Every figure that decides anything comes from out-of-fold eras: a fold model (or a fold's
LightGBM) scoring the validation eras it never trained on. The blend's weight is fitted on
those eras too, on a coarse grid (21 points: one number fitted on a few hundred eras barely
overfits), and the choice compares the candidates' out-of-fold means (or Sharpes, or payout
means). The held-out test block is scored for the report only and is never an argument of
anything here that decides: `choose_candidate` and `fit_blend_weight` do not see it.

By payout: the mean out-of-fold payout score (model_core.payout) over the out-of-fold eras that
have meta model values (Numerai's meta_model.parquet covers resolved validation eras only, so
the early folds have none). With fewer than PAYOUT_MIN_ERAS such eras a mean is too noisy to
decide on: the choice falls back to CORR over every out-of-fold era and its reason says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from model_core.atomic import atomic_path
from model_core.diagnostics import era_contribution
from model_core.ensemble import rank_within_era
from model_core.metrics import era_numerai_corr, summarise_corrs
from model_core.payout import PayoutSettings

TRANSFORMER, LGBM, BLEND = "transformer", "lgbm", "blend"
CANDIDATES = (TRANSFORMER, LGBM, BLEND)
SELECTION_METRICS = ("corr", "sharpe", "payout")
PAYOUT_MIN_ERAS = 20  # out-of-fold eras with meta model values needed to choose by payout
BLEND_GRID = 21  # weights 0, 0.05, ..., 1 on the transformer

EraPredictions = Mapping[str, np.ndarray]  # era -> (N,) scores in the era's storage order


@dataclasses.dataclass(frozen=True)
class Choice:
    """Which candidate is submitted, why, and every candidate's figures."""

    candidate: str
    metric: str  # "corr" | "sharpe" | "payout": what the choice maximised (after any fallback)
    pinned: bool  # a user pinned the candidate; the figures are still reported
    reason: str
    blend_weight: float  # weight of the transformer in the blend (1 - it on the LightGBM)
    oof: dict[str, dict[str, float]]  # candidate -> mean / std / sharpe / max_drawdown / eras
    test: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)  # report only
    # With NUMERAI_SELECTION_METRIC=payout: each candidate's out-of-fold payout figures (over the
    # eras with meta model values) and the payout settings used (PayoutSettings.to_dict()).
    oof_payout: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    payout: dict | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> Choice:
        return cls(**data)


def blend_era(transformer: np.ndarray, lgbm: np.ndarray, weight: float) -> np.ndarray:
    """One era's rank blend: weight on the transformer's within-era ranks, 1 - weight on the LightGBM's."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"blend weight must be in [0, 1], got {weight}")
    return weight * rank_within_era(transformer) + (1.0 - weight) * rank_within_era(lgbm)


def era_corrs(predictions: EraPredictions, targets: EraPredictions) -> list[float]:
    """numerai_corr per era, in sorted era order; every era of `targets` must be predicted."""
    missing = sorted(set(targets) - set(predictions))
    if missing:
        raise KeyError(f"no predictions for era(s) {missing[:5]}")
    return [era_numerai_corr(predictions[era], targets[era]) for era in sorted(targets)]


def era_mmcs(
    predictions: EraPredictions, targets: EraPredictions, meta_model: Mapping[str, np.ndarray]
) -> list[float]:
    """MMC per era (sorted era order, as era_corrs); NaN for an era the meta model does not cover."""
    return [
        era_contribution(predictions[era], meta_model[era], targets[era]) if era in meta_model else np.nan
        for era in sorted(targets)
    ]


def candidate_predictions(
    transformer: EraPredictions, lgbm: EraPredictions, weight: float
) -> dict[str, dict[str, np.ndarray]]:
    """The three candidates' predictions of the same eras."""
    eras = sorted(transformer)
    if sorted(lgbm) != eras:
        raise ValueError("the transformer and the LightGBM must predict the same eras")
    return {
        TRANSFORMER: dict(transformer),
        LGBM: dict(lgbm),
        BLEND: {era: blend_era(transformer[era], lgbm[era], weight) for era in eras},
    }


def fit_blend_weight(transformer: EraPredictions, lgbm: EraPredictions, targets: EraPredictions) -> float:
    """The grid weight on the transformer with the best mean out-of-fold CORR of the blend.

    Ranks are taken once per era; each grid point is then a cheap weighted sum. Ties go to the
    weight nearest 0.5 (the less extreme blend).
    """
    eras = sorted(targets)
    if not eras:
        raise ValueError("fit_blend_weight: no out-of-fold eras")
    ranks = [(rank_within_era(transformer[e]), rank_within_era(lgbm[e])) for e in eras]
    grid = np.linspace(0.0, 1.0, BLEND_GRID)
    means = []
    for w in grid:
        corrs = [
            era_numerai_corr(w * a + (1 - w) * b, targets[e]) for (a, b), e in zip(ranks, eras, strict=True)
        ]
        means.append(np.nanmean(corrs) if not np.all(np.isnan(corrs)) else -np.inf)
    means = np.asarray(means)
    best = np.flatnonzero(means >= means.max() - 1e-12)
    return float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])


def figures(corrs: Sequence[float]) -> dict[str, float]:
    summary = summarise_corrs(list(corrs))
    return {**summary, "eras": int(np.sum(~np.isnan(np.asarray(corrs, dtype=float))))}


def choose_candidate(
    oof_corrs: Mapping[str, Sequence[float]],
    metric: str = "corr",
    pinned: str | None = None,
    blend_weight: float = 0.5,
    oof_mmcs: Mapping[str, Sequence[float]] | None = None,
    payout: PayoutSettings | None = None,
) -> Choice:
    """The candidate with the best out-of-fold `metric` (or the pinned one), with the reason.

    metric "payout" needs each candidate's per-era MMC (`oof_mmcs`, NaN where the meta model has
    no values, aligned with `oof_corrs`) and the payout settings.
    """
    if metric not in SELECTION_METRICS:
        raise ValueError(f"selection metric {metric!r}: choose one of {SELECTION_METRICS}")
    unknown = sorted(set(oof_corrs) - set(CANDIDATES))
    if unknown or not oof_corrs:
        raise ValueError(f"candidates {unknown or '(none)'}: expected some of {CANDIDATES}")
    if pinned is not None and pinned not in oof_corrs:
        raise ValueError(f"pinned candidate {pinned!r} is not one of {sorted(oof_corrs)}")
    oof = {name: figures(corrs) for name, corrs in oof_corrs.items()}
    oof_payout, fallback = {}, ""
    if metric == "payout":
        if payout is None or oof_mmcs is None or set(oof_mmcs) != set(oof_corrs):
            raise ValueError(
                "selection by payout needs every candidate's out-of-fold MMC and the payout settings"
            )
        oof_payout = {
            name: figures(payout.era_payouts(oof_corrs[name], oof_mmcs[name])) for name in oof_corrs
        }
        eras = min(f["eras"] for f in oof_payout.values())
        if eras < PAYOUT_MIN_ERAS:
            fallback = (
                f"chosen by CORR, not payout: only {eras} out-of-fold eras have meta model values "
                f"(payout needs {PAYOUT_MIN_ERAS}); "
            )
            metric = "corr"
    table = oof_payout if metric == "payout" else oof
    key = "sharpe" if metric == "sharpe" else "mean"

    def score(name: str) -> float:
        value = table[name][key]
        return -np.inf if np.isnan(value) else value

    ranked = sorted(table, key=lambda name: (-score(name), CANDIDATES.index(name)))
    chosen = pinned or ranked[0]
    listing = ", ".join(f"{name} {table[name][key]:.4f}" for name in ranked)
    label = {"corr": "CORR", "sharpe": "CORR Sharpe"}.get(metric) or (
        f"payout ({payout.describe()}, {payout.source})" if payout is not None else "payout"
    )
    if pinned is not None:
        reason = f"pinned by the user (NUMERAI_CANDIDATE={pinned}); {fallback}out-of-fold {label}: {listing}"
    else:
        reason = f"{fallback}best out-of-fold {label} over {table[chosen]['eras']} eras: {listing}"
    return Choice(
        candidate=chosen,
        metric=metric,
        pinned=pinned is not None,
        reason=reason,
        blend_weight=float(blend_weight),
        oof=oof,
        oof_payout=oof_payout,
        payout=None if payout is None else payout.to_dict(),
    )


def save_era_predictions(path, predictions: EraPredictions) -> None:
    """era -> (N,) arrays as one .npz (numpy's own format, no pickle), written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{f"era_{era}": np.asarray(p, dtype=np.float64) for era, p in predictions.items()})


def load_era_predictions(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as saved:
        return {name.removeprefix("era_"): saved[name] for name in saved.files}

"""The week's candidates compared out of fold, and the choice of the one that is submitted.

Candidates: the transformer ensemble, the example LightGBM, the peer ridge (model_core.peer_ridge)
and the within-era rank blend of those of them that were trained (the blend's members).
Every figure that decides anything comes from out-of-fold eras: a fold model (or a fold's
LightGBM, a fold's ridge) scoring the validation eras it never trained on. The blend's weights
are fitted on those eras too, on a coarse simplex grid (steps of 0.05: 21 points for two
members, 231 for three; a few numbers fitted on a few hundred eras barely overfit), and the
choice compares the candidates' out-of-fold means (or Sharpes, or payout means). The held-out
test block is scored for the report only and is never an argument of anything here that
decides: `choose_candidate` and `fit_blend_weights` do not see it.

By payout: the mean out-of-fold payout score (model_core.payout) over the out-of-fold eras that
have meta model values (Numerai's meta_model.parquet covers resolved validation eras only, so
the early folds have none). With fewer than PAYOUT_MIN_ERAS such eras a mean is too noisy to
decide on: the choice falls back to CORR over every out-of-fold era and its reason says so.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from model_core.atomic import atomic_path
from model_core.diagnostics import era_contribution
from model_core.ensemble import rank_within_era
from model_core.metrics import era_numerai_corr, era_numerai_corrs, summarise_corrs
from model_core.payout import PayoutSettings

TRANSFORMER, LGBM, PEER_RIDGE, BLEND = "transformer", "lgbm", "peer_ridge", "blend"
CANDIDATES = (TRANSFORMER, LGBM, PEER_RIDGE, BLEND)  # also the order that breaks a tie
MEMBERS = (TRANSFORMER, LGBM, PEER_RIDGE)  # what a blend is made of (those that were trained)
SELECTION_METRICS = ("corr", "sharpe", "payout")
PAYOUT_MIN_ERAS = 20  # out-of-fold eras with meta model values needed to choose by payout
BLEND_STEPS = 20  # blend weights are multiples of 1/20 = 0.05, summing to 1

EraPredictions = Mapping[str, np.ndarray]  # era -> (N,) scores in the era's storage order


@dataclasses.dataclass(frozen=True)
class Choice:
    """Which candidate is submitted, why, and every candidate's figures."""

    candidate: str
    metric: str  # "corr" | "sharpe" | "payout": what the choice maximised (after any fallback)
    pinned: bool  # a user pinned the candidate; the figures are still reported
    reason: str
    blend_weight: float  # the transformer's weight in the blend (the warehouse's column, old readers)
    oof: dict[str, dict[str, float]]  # candidate -> mean / std / sharpe / max_drawdown / eras
    test: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)  # report only
    # With NUMERAI_SELECTION_METRIC=payout: each candidate's out-of-fold payout figures (over the
    # eras with meta model values) and the payout settings used (PayoutSettings.to_dict()).
    oof_payout: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    payout: dict | None = None
    blend_weights: dict[str, float] = dataclasses.field(default_factory=dict)  # member -> its weight

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> Choice:
        data = dict(data)
        if not data.get("blend_weights"):  # a choice.json written before the peer ridge
            data["blend_weights"] = legacy_blend_weights(data["blend_weight"], LGBM in data.get("oof", {}))
        return cls(**data)

    def members_used(self) -> tuple[str, ...]:
        return members_used(self.candidate, self.blend_weights)


def legacy_blend_weights(transformer_weight: float, with_lgbm: bool = True) -> dict[str, float]:
    """A blend recorded as one number, the transformer's weight: the rest was the LightGBM's."""
    if not with_lgbm:
        return {TRANSFORMER: 1.0}
    return {TRANSFORMER: float(transformer_weight), LGBM: 1.0 - float(transformer_weight)}


def members_used(candidate: str, blend_weights: Mapping[str, float]) -> tuple[str, ...]:
    """The members a candidate predicts with: itself, or the blend's members with a weight above
    0 (a member the blend gives no weight is neither refit nor loaded)."""
    if candidate != BLEND:
        return (candidate,)
    return tuple(name for name in MEMBERS if blend_weights.get(name, 0.0) > 0)


def blend_ranks(members: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """One era's rank blend: the weighted mean of the members' within-era ranks (weights >= 0,
    summing to 1; a member with weight 0 may be absent)."""
    values = np.asarray(list(weights.values()), dtype=np.float64)
    if values.size == 0 or values.min() < 0 or abs(values.sum() - 1.0) > 1e-9:
        raise ValueError(f"blend weights must be >= 0 and sum to 1, got {dict(weights)}")
    used = {name: w for name, w in weights.items() if w > 0}
    missing = sorted(set(used) - set(members))
    if missing:
        raise ValueError(f"blend weights {dict(weights)}: no predictions of {missing}")
    return sum(w * rank_within_era(members[name]) for name, w in used.items())


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


def _check_members(members: Mapping) -> list[str]:
    """The members' names in MEMBERS order; the transformer is always one."""
    unknown = sorted(set(members) - set(MEMBERS))
    if unknown or TRANSFORMER not in members:
        raise ValueError(f"blend members {sorted(members)}: expected the transformer and some of {MEMBERS}")
    return [name for name in MEMBERS if name in members]


def candidate_predictions(
    members: Mapping[str, EraPredictions], weights: Mapping[str, float]
) -> dict[str, dict[str, np.ndarray]]:
    """Every candidate's predictions of the same eras: each member's, and (with two members or
    more) their rank blend with `weights`."""
    names = _check_members(members)
    eras = sorted(members[TRANSFORMER])
    for name in names:
        if sorted(members[name]) != eras:
            raise ValueError(f"the {name} and the transformer must predict the same eras")
    out = {name: dict(members[name]) for name in names}
    if len(names) > 1:
        out[BLEND] = {era: blend_ranks({n: members[n][era] for n in names}, weights) for era in eras}
    return out


def blend_grid(n_members: int) -> np.ndarray:
    """Every weight vector on the simplex in steps of 1/BLEND_STEPS: (points, n_members)."""
    points = [
        counts
        for counts in itertools.product(range(BLEND_STEPS + 1), repeat=n_members)
        if sum(counts) == BLEND_STEPS
    ]
    return np.asarray(points, dtype=np.float64) / BLEND_STEPS


def fit_blend_weights(members: Mapping[str, EraPredictions], targets: EraPredictions) -> dict[str, float]:
    """The grid weights of the members with the best mean out-of-fold CORR of their rank blend.

    Ranks are taken once per era; an era's blends at every grid point are one matrix product,
    scored in one numerai-tools call. Ties go to the weights nearest equal (the least extreme
    blend). Only the eras of `targets` (the out-of-fold ones) are read.
    """
    names = _check_members(members)
    eras = sorted(targets)
    if not eras:
        raise ValueError("fit_blend_weights: no out-of-fold eras")
    grid = blend_grid(len(names))  # (points, members)
    corrs = np.empty((len(eras), len(grid)))
    for row, era in enumerate(eras):
        ranks = np.stack([rank_within_era(members[name][era]) for name in names], axis=1)  # (N, members)
        corrs[row] = era_numerai_corrs(ranks @ grid.T, targets[era])
    means = np.full(len(grid), -np.inf)
    scored = ~np.isnan(corrs).all(axis=0)
    means[scored] = np.nanmean(corrs[:, scored], axis=0)
    best = np.flatnonzero(means >= means.max() - 1e-12)
    spread = np.linalg.norm(grid[best] - 1.0 / len(names), axis=1)
    chosen = grid[best[np.argmin(spread)]]
    return {name: float(w) for name, w in zip(names, chosen, strict=True)}


def figures(corrs: Sequence[float]) -> dict[str, float]:
    summary = summarise_corrs(list(corrs))
    return {**summary, "eras": int(np.sum(~np.isnan(np.asarray(corrs, dtype=float))))}


def choose_candidate(
    oof_corrs: Mapping[str, Sequence[float]],
    metric: str = "corr",
    pinned: str | None = None,
    blend_weights: Mapping[str, float] | None = None,
    oof_mmcs: Mapping[str, Sequence[float]] | None = None,
    payout: PayoutSettings | None = None,
) -> Choice:
    """The candidate with the best out-of-fold `metric` (or the pinned one), with the reason.

    metric "payout" needs each candidate's per-era MMC (`oof_mmcs`, NaN where the meta model has
    no values, aligned with `oof_corrs`) and the payout settings. `blend_weights`: the blend's
    (fit_blend_weights), recorded with the choice.
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
        blend_weight=float((blend_weights or {}).get(TRANSFORMER, 1.0)),
        oof=oof,
        oof_payout=oof_payout,
        payout=None if payout is None else payout.to_dict(),
        blend_weights={name: float(w) for name, w in (blend_weights or {TRANSFORMER: 1.0}).items()},
    )


def save_era_predictions(path, predictions: EraPredictions) -> None:
    """era -> (N,) arrays as one .npz (numpy's own format, no pickle), written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{f"era_{era}": np.asarray(p, dtype=np.float64) for era, p in predictions.items()})


def load_era_predictions(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as saved:
        return {name.removeprefix("era_"): saved[name] for name in saved.files}

"""Glue for validation_diagnostics: score the current ensemble on the held-out test eras.

Every model is scored on the same eras by the same metrics: the fitted ensemble, the
equal-weight blend (the comparison the weights must beat), each fold model, and the LightGBM
baseline when its predictions for this model version exist. The ensemble's test predictions are
kept, so the next version can report its churn against them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from model_core import schema
from model_core.atomic import atomic_path
from model_core.era_store import EraStore
from model_core.feature_metadata import load_feature_metadata
from model_core.payout import DOCUMENTED_DEFAULTS, PayoutSettings
from numerai_assets.shared.home import BASELINE_PREDICTIONS, TEST_PREDICTIONS, HomeLayout
from numerai_assets.shared.model_versions import load_plan, temporal_context
from numerai_assets.shared.references import load_reference, load_scoring_references
from numerai_assets.shared.warehouse import Warehouse

IMPORTANCE_ERAS = 8  # permutation importance on the last few test eras: enough to rank groups
FNC_MODELS = ("ensemble", "baseline_lgbm")
ATTENTION_STOCKS = 1_000  # the attention maps take the math path: N x N per head


@dataclasses.dataclass
class Diagnostics:
    model_version: str
    eras: list[str]
    scores: dict[str, list]  # model name -> [EraScores] over `eras`
    summary: dict[str, dict[str, float]]
    weights: list[float]
    importance: dict[str, float]  # feature group -> drop in mean CORR when shuffled
    cross_attention: np.ndarray | None  # (10, 10) prediction deciles: reader x read
    attention_stats: dict[str, float]
    temporal_attention: np.ndarray | None  # (K,) lag 1 first
    attention_era: str
    # model -> {"corr", "corr_alone", "reliance"}: mean test CORR with the other stocks of the era
    # (explicit peers, cross-stock attention) and with each stock scored alone; {} when no model reads them
    reliance: dict[str, dict[str, float]]
    has_benchmark: bool
    has_meta_model: bool
    previous_version: str | None
    payout: PayoutSettings  # the multipliers behind every `payout` score


def diagnose_current(
    layout: HomeLayout,
    model_dir: Path,
    raw_dir: Path,
    benchmark: str | None,
    log: Callable[[str], None],
    payout: PayoutSettings = DOCUMENTED_DEFAULTS,
) -> Diagnostics:
    from model_core.diagnostics import score_era, summarise_scores
    from model_core.ensemble import blend
    from model_core.inference import Ensemble, EnsembleSpec
    from model_core.metrics import era_numerai_corr

    spec = EnsembleSpec.load(model_dir)
    plan = load_plan(layout)
    if plan.model_version != spec.model_version:
        raise ValueError(
            f"the current ensemble is {spec.model_version} but the fold plan is {plan.model_version}: "
            "materialise the fold models and ensemble_weights of the new plan first"
        )
    store = EraStore(plan.store_path)
    eras = [e for e in plan.plan.test_eras if e in set(store.eras)]
    target = store.target_index(schema.MAIN_TARGET)
    ensemble = Ensemble(model_dir, members="folds")  # the cross-validated models: honest on the test block
    context = temporal_context(layout, store, spec.temporal_lags)

    references = load_scoring_references(raw_dir, benchmark, eras)
    previous = _previous_predictions(layout, spec.previous_version, eras)
    baseline = load_reference(model_dir / BASELINE_PREDICTIONS, schema.PREDICTION, eras)

    names = ["ensemble", "equal_weight", *(f"fold_{k}" for k in range(len(spec.checkpoints)))]
    if baseline is not None:
        names.append("baseline_lgbm")
    scores: dict[str, list] = {name: [] for name in names}
    # Each stock scored alone as well (no peers, no attention), when a model reads the other stocks.
    reads_others = any(m.config.cross_stock or m.config.peer_knn > 0 for m in ensemble.models)
    alone = {name: [] for name in names if name.startswith(("ensemble", "fold_"))} if reads_others else None
    kept = []
    for i, era in enumerate(eras):
        data = store.era(era)
        ctx = None if context is None else context.for_era(era)
        members = ensemble.predict_members(data.features, ctx)
        predictions = {**_named(members, spec.weights), "equal_weight": blend(members, spec.equal_weights)}
        if baseline is not None:
            predictions["baseline_lgbm"] = baseline.values(data.ids)
        refs = {key: (None if ref is None else ref.values(data.ids)) for key, ref in references.items()}
        for name, values in predictions.items():
            scores[name].append(
                score_era(
                    era,
                    values,
                    data.targets[:, target],
                    data.features,
                    benchmark=refs["benchmark"],
                    meta_model=refs["meta_model"],
                    previous=None if previous is None or name != "ensemble" else previous.values(data.ids),
                    fnc=name in FNC_MODELS,  # the costly one (a least-squares fit per era and model)
                    payout=payout,
                )
            )
        if alone is not None:
            members_alone = ensemble.predict_members(data.features, ctx, cross_stock=False)
            for name, values in _named(members_alone, spec.weights).items():
                alone[name].append(era_numerai_corr(values, data.targets[:, target]))
        kept.append(
            pl.DataFrame({schema.ID: data.ids, schema.ERA: era, schema.PREDICTION: predictions["ensemble"]})
        )
        if (i + 1) % 10 == 0 or i + 1 == len(eras):
            log(f"scored {i + 1}/{len(eras)} test eras")
    _write_parquet(pl.concat(kept), model_dir / TEST_PREDICTIONS)

    groups = _feature_groups(raw_dir, store.features)
    importance = _importance(ensemble, store, eras[-IMPORTANCE_ERAS:], context, target, groups)
    attention = _attention(ensemble, store, eras[-1], context)
    return Diagnostics(
        model_version=spec.model_version,
        eras=eras,
        scores=scores,
        summary={name: summarise_scores(rows) for name, rows in scores.items()},
        weights=list(spec.weights),
        importance=importance,
        has_benchmark=references["benchmark"] is not None,
        has_meta_model=references["meta_model"] is not None,
        previous_version=spec.previous_version if previous is not None else None,
        payout=payout,
        attention_era=eras[-1],
        reliance=_reliance(scores, alone),
        **attention,
    )


def _named(members: list, weights) -> dict:
    """The weighted blend as `ensemble` and each member as `fold_k`."""
    from model_core.ensemble import blend

    return {"ensemble": blend(members, weights), **{f"fold_{k}": m for k, m in enumerate(members)}}


def _reliance(scores: dict[str, list], alone: dict[str, list[float]] | None) -> dict[str, dict[str, float]]:
    """How much CORR each model owes to the other stocks of the era: scored with them minus alone."""
    if alone is None:
        return {}
    out = {}
    for name, corrs in alone.items():
        corr = float(np.nanmean([s.corr for s in scores[name]]))
        corr_alone = float(np.nanmean(corrs))
        out[name] = {"corr": corr, "corr_alone": corr_alone, "reliance": corr - corr_alone}
    return out


def _previous_predictions(layout: HomeLayout, version: str | None, eras: list[str]):
    if version is None:
        return None
    return load_reference(layout.model_dir(version) / TEST_PREDICTIONS, schema.PREDICTION, eras)


def _feature_groups(raw_dir: Path, features: list[str]) -> dict[str, list[int]]:
    from model_core.importance import feature_groups

    metadata = load_feature_metadata(raw_dir / schema.FEATURES_JSON)
    return feature_groups(features, metadata.groups())


def _importance(ensemble, store: EraStore, eras: list[str], context, target: int, groups) -> dict[str, float]:
    """Mean over the eras of each group's permutation importance for the ensemble (per era, since
    each era has its own temporal context)."""
    from model_core.importance import permutation_importance

    if not groups:
        return {}
    totals = dict.fromkeys(groups, 0.0)
    for i, era in enumerate(eras):
        data = store.era(era)
        ctx = None if context is None else context.for_era(era)
        per_era = permutation_importance(
            lambda features, ctx=ctx: ensemble.predict(features, ctx),
            [(data.features, data.targets[:, target])],
            groups,
            seed=i,
        )
        for name, value in per_era.items():
            totals[name] += value / len(eras)
    return totals


def _attention(ensemble, store: EraStore, era: str, context) -> dict:
    """The heaviest-weighted fold model's attention on one era, summarised so a person can read it."""
    import torch

    from model_core.attention_summary import (
        attention_stats,
        cross_attention_by_decile,
        temporal_attention_by_lag,
    )
    from model_core.batches import live_batch
    from model_core.inference import predict_era

    model = ensemble.models[int(np.argmax(ensemble.spec.weights))]
    data = store.era(era)
    rows = np.arange(len(data.ids))
    if rows.size > ATTENTION_STOCKS:
        rows = np.sort(np.random.default_rng(0).choice(rows.size, ATTENTION_STOCKS, replace=False))
    features = data.features[rows]
    ctx = None if context is None or model.config.temporal_lags == 0 else context.for_era(era)
    batch = live_batch(features, ctx)
    with torch.no_grad():
        maps = model.attention_maps(batch.features, batch.mask, batch.context)
    temporal = maps.get("temporal")
    cross = None if "cross_stock" not in maps else maps["cross_stock"][0].mean(0).float().numpy()  # (N, N)
    return {
        "cross_attention": None
        if cross is None
        else cross_attention_by_decile(cross, predict_era(model, features, ctx)),
        "attention_stats": {} if cross is None else attention_stats(cross),
        "temporal_attention": None
        if temporal is None
        else temporal_attention_by_lag(temporal[0].float().numpy()),
    }


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp)


def record_diagnostics(warehouse: Warehouse, diagnostics: Diagnostics) -> None:
    """Every model's test-era scores (split 'test') and the model version's test summary."""
    rows = [
        {**vars(score), "model_version": diagnostics.model_version, "model": name, "split": "test"}
        for name, scores in diagnostics.scores.items()
        for score in scores
    ]
    warehouse.upsert_era_scores(rows)
    warehouse.upsert_model_version(
        diagnostics.model_version,
        test_eras=f"{diagnostics.eras[0]}..{diagnostics.eras[-1]}",
        ensemble_corr=diagnostics.summary["ensemble"]["corr_mean"],
        equal_weight_corr=diagnostics.summary["equal_weight"]["corr_mean"],
    )

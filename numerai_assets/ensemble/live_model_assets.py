"""The assets that make the week's live model: the candidate chosen out of fold, the refits it
needs (on every resolved era), and the completed, promoted version.

    fold_model_k ─► ensemble_weights ─┐                 ┌─► refit_model_k ────┐
    baseline_lgbm ────────────────────┼─► model_choice ─┼─► refit_lgbm ───────┼─► live_model
    baseline_peer_ridge ──────────────┘                 └─► refit_peer_ridge ─┘
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from model_core.payout import PayoutSettings
from numerai_assets.shared.executor import GPU_POOL, GPU_TAG
from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.payout_report import payout_metadata
from numerai_assets.shared.resources import DiagnosticsKnobs, NumeraiHome
from numerai_assets.shared.ui_metadata import era_span
from numerai_assets.shared.warehouse import Warehouse
from numerai_assets.training.resources import TrainingKnobs


def build_choice_asset(with_lgbm: bool, with_peer_ridge: bool) -> dg.AssetsDefinition:
    baselines = [
        *(["baseline_lgbm"] if with_lgbm else []),
        *(["baseline_peer_ridge"] if with_peer_ridge else []),
    ]

    @dg.asset(
        name="model_choice", group_name="ensemble", deps=["ensemble_weights", *baselines], kinds={"json"}
    )
    def model_choice(
        context: dg.AssetExecutionContext,
        numerai: NumeraiAPI,
        numerai_home: NumeraiHome,
        diagnostics: DiagnosticsKnobs,
        warehouse: Warehouse,
    ):
        """The candidate to submit (transformer ensemble, LightGBM, peer ridge or the rank blend of
        those trained, its weights fitted out of fold), by its out-of-fold CORR, Sharpe or payout
        (NUMERAI_SELECTION_METRIC) unless pinned (NUMERAI_CANDIDATE); the held-out test block is
        scored for the report only."""
        from numerai_assets.ensemble.choice import choose_for_version, record_choice
        from numerai_assets.shared.dataset_versions import planned_model_dataset_dir
        from numerai_assets.shared.payout_settings import current_payout_settings

        layout, metric = numerai_home.layout, diagnostics.selection_metric
        payout = current_payout_settings(numerai, context.log.warning) if metric == "payout" else None
        choice = choose_for_version(
            layout,
            metric,
            diagnostics.pinned_candidate,
            context.log.info,
            raw_dir=planned_model_dataset_dir(layout),
            payout=payout,
        )
        version = record_choice(layout, warehouse, choice)
        return dg.MaterializeResult(metadata=_choice_metadata(version, choice))

    return model_choice


def build_refit_asset(seed_index: int, extra_op_tags: Mapping[str, Any] | None = None) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"refit_model_{seed_index}",
        group_name="ensemble",
        deps=["model_choice"],
        kinds={"pytorch"},
        op_tags={GPU_TAG: "1", **(extra_op_tags or {})},
        pool=GPU_POOL,
        description=f"Transformer refit {seed_index} for live: every resolved era, the folds' epoch count.",
    )
    def refit_model(context: dg.AssetExecutionContext, numerai_home: NumeraiHome, training: TrainingKnobs):
        from numerai_assets.ensemble.refit import refit_transformer

        refit = refit_transformer(seed_index, numerai_home.layout, training, context.log.info)
        return dg.MaterializeResult(metadata=_refit_metadata(refit))

    return refit_model


@dg.asset(group_name="ensemble", deps=["model_choice"], kinds={"lightgbm"})
def refit_lgbm(context: dg.AssetExecutionContext, numerai_home: NumeraiHome, diagnostics: DiagnosticsKnobs):
    """The LightGBM for live: the example parameters on every resolved era (when the choice needs it)."""
    from numerai_assets.ensemble.refit import refit_lgbm as fit

    refit = fit(numerai_home.layout, diagnostics.baseline_estimators, context.log.info)
    return dg.MaterializeResult(metadata=_refit_metadata(refit))


@dg.asset(group_name="ensemble", deps=["model_choice"], kinds={"numpy"})
def refit_peer_ridge(
    context: dg.AssetExecutionContext, numerai_home: NumeraiHome, diagnostics: DiagnosticsKnobs
):
    """The peer ridge for live: fitted on every resolved era (when the choice needs it)."""
    from numerai_assets.ensemble.refit import refit_peer_ridge as fit

    refit = fit(numerai_home.layout, diagnostics.peer_ridge_config(), context.log.info)
    return dg.MaterializeResult(metadata=_refit_metadata(refit))


def build_live_model_asset(refit_seeds: int, with_lgbm: bool, with_peer_ridge: bool) -> dg.AssetsDefinition:
    refits = [
        *(f"refit_model_{k}" for k in range(refit_seeds)),
        *(["refit_lgbm"] if with_lgbm else []),
        *(["refit_peer_ridge"] if with_peer_ridge else []),
    ]

    @dg.asset(name="live_model", group_name="ensemble", deps=refits, kinds={"json"})
    def live_model(context: dg.AssetExecutionContext, numerai_home: NumeraiHome, training: TrainingKnobs):
        """What predicts live from now on: the chosen candidate made of the refits; promoted."""
        from numerai_assets.ensemble.live_model import complete_live_model

        spec = complete_live_model(numerai_home.layout, training.refit_seeds)
        context.log.info(
            f"model version {spec.model_version} is current; live: {spec.candidate} of the refits"
        )
        return dg.MaterializeResult(
            metadata={
                "model_version": spec.model_version,
                "candidate": spec.candidate,
                "reason": spec.choice["reason"],
                "live_checkpoints": ", ".join(spec.live_checkpoints) or "none",
                "lightgbm": spec.lgbm_model or "none",
                "peer_ridge": spec.peer_ridge_model or "none",
                "blend_weight_transformer": spec.blend_weight,
                "blend_weights": dg.MetadataValue.json(spec.member_weights()),
            }
        )

    return live_model


def build_live_model_assets(
    refit_seeds: int, with_lgbm: bool, with_peer_ridge: bool, fold_op_tags: Mapping[str, Any] | None
) -> list:
    refits = [build_refit_asset(k, fold_op_tags) for k in range(refit_seeds)]
    refits += [refit_lgbm] if with_lgbm else []
    refits += [refit_peer_ridge] if with_peer_ridge else []
    return [
        build_choice_asset(with_lgbm, with_peer_ridge),
        *refits,
        build_live_model_asset(refit_seeds, with_lgbm, with_peer_ridge),
    ]


def _choice_metadata(version: str, choice) -> dict:
    nan = float("nan")
    members = list(choice.blend_weights)  # the members trained this week, transformer first
    rows = [
        dg.TableRecord(
            {
                "candidate": name,
                "chosen": name == choice.candidate,
                "reason": choice.reason if name == choice.candidate else "",
                **{f"{m}_weight": round(_member_weight(name, m, choice.blend_weights), 4) for m in members},
                "oof_corr_mean": round(oof["mean"], 5),
                "oof_corr_sharpe": round(oof["sharpe"], 3),
                "oof_eras": oof["eras"],
                "test_corr_mean": round(choice.test.get(name, {}).get("mean", nan), 5),
                "test_corr_sharpe": round(choice.test.get(name, {}).get("sharpe", nan), 3),
                **_payout_cells(choice.oof_payout.get(name)),
            }
        )
        for name, oof in choice.oof.items()
    ]
    columns = {
        "candidate": "string",
        "chosen": "bool",
        "reason": "string",
        **{f"{m}_weight": "float" for m in members},
        "oof_corr_mean": "float",
        "oof_corr_sharpe": "float",
        "oof_eras": "int",
        "test_corr_mean": "float",
        "test_corr_sharpe": "float",
    }
    if choice.oof_payout:
        columns |= {"oof_payout_mean": "float", "oof_payout_sharpe": "float", "oof_payout_eras": "int"}
    return {
        "model_version": version,
        "candidate": choice.candidate,
        "reason": choice.reason,
        "metric": choice.metric,
        "pinned": choice.pinned,
        "blend_weight_transformer": choice.blend_weight,
        "blend_weights": dg.MetadataValue.json(dict(choice.blend_weights)),
        "candidates": dg.MetadataValue.table(rows, schema=dg.TableSchema.from_name_type_dict(columns)),
        **({} if choice.payout is None else payout_metadata(PayoutSettings(**choice.payout))),
        "note": "out-of-fold figures decide; the blend's weights are fitted on the out-of-fold eras too; "
        "test-block figures come from the cross-validated models (never trained on the test block) and are "
        "reported only; live uses refits on every resolved era",
    }


def _member_weight(candidate: str, member: str, blend_weights: dict) -> float:
    """`member`'s share in the candidate's rank blend: 1 or 0 for a member, its fitted weight in the blend."""
    from model_core.candidates import BLEND

    return blend_weights.get(member, 0.0) if candidate == BLEND else float(candidate == member)


def _payout_cells(figures: dict | None) -> dict:
    if figures is None:
        return {}
    return {
        "oof_payout_mean": round(figures["mean"], 5),
        "oof_payout_sharpe": round(figures["sharpe"], 3),
        "oof_payout_eras": figures["eras"],
    }


def _refit_metadata(refit) -> dict:
    if refit.skipped:
        return {"model_version": refit.model_version, "skipped": refit.skipped}
    meta = {
        "model_version": refit.model_version,
        "train_eras": era_span(refit.eras),
        "train_rows": refit.rows,
        "path": dg.MetadataValue.path(str(refit.path)),
    }
    if refit.result is not None:
        from numerai_assets.training.fold_metadata import refit_curve_and_tables

        meta |= {"epochs_run": refit.epochs, "device": refit.result.device}
        meta |= refit_curve_and_tables(
            refit.result, refit.train_config, refit.model_config, refit.batches, refit.fold_best_epochs
        )
    return meta

"""Training: the fold plan, one transformer per fold (GPU-tagged steps), and the example scripts'
LightGBM and the peer ridge on the same eras, so the diagnostics answer "is the transformer worth it?"."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from model_core.cv import FoldPlan
from numerai_assets.ingest.assets import clean_eras, feature_returns
from numerai_assets.shared.executor import GPU_POOL, GPU_TAG
from numerai_assets.shared.model_versions import load_plan
from numerai_assets.shared.resources import DiagnosticsKnobs, NumeraiHome
from numerai_assets.shared.ui_metadata import era_span, table
from numerai_assets.shared.warehouse import Warehouse
from numerai_assets.training.folds import start_model_version, train_one_fold
from numerai_assets.training.resources import TrainingKnobs

FOLD_COLUMNS = {
    "fold": "string",
    "train": "string",
    "train_eras": "int",
    "gap": "int",
    "validation": "string",
    "validation_eras": "int",
}


@dg.asset(group_name="training", deps=[clean_eras], kinds={"json"})
def cv_folds(context: dg.AssetExecutionContext, numerai_home: NumeraiHome, training: TrainingKnobs):
    """Purged expanding-window folds over the resolved eras + the held-out test eras; a new model version."""
    fixed = frozenset(training.fixed_cv)
    layout = numerai_home.layout
    version, plan = start_model_version(layout, training.to_cv_config(), fixed, context.log.info)
    context.log.info(
        f"model version {version}: {len(plan.folds)} folds, gap {plan.gap}, {len(plan.test_eras)} test eras"
    )
    dataset_version = load_plan(layout).dataset_version
    return dg.MaterializeResult(
        metadata={**_plan_metadata(version, plan), "dataset_version": dataset_version}
    )


def build_fold_asset(fold_index: int, extra_op_tags: Mapping[str, Any] | None = None) -> dg.AssetsDefinition:
    """`extra_op_tags`: the executor's per-step config (under k8s, the GPU pod of `fold_step_tags`)."""

    @dg.asset(
        name=f"fold_model_{fold_index}",
        group_name="training",
        deps=[cv_folds, feature_returns],
        kinds={"pytorch"},
        op_tags={GPU_TAG: "1", **(extra_op_tags or {})},
        pool=GPU_POOL,
        description=f"Transformer trained on fold {fold_index}: checkpoint, per-epoch table and curve, eras, settings.",
    )
    def fold_model(context: dg.AssetExecutionContext, numerai_home: NumeraiHome, training: TrainingKnobs):
        from numerai_assets.training.fold_metadata import fold_metadata

        run = train_one_fold(fold_index, numerai_home.layout, training, context.log.info)
        return dg.MaterializeResult(metadata=fold_metadata(run))

    return fold_model


def build_training_assets(n_folds: int, fold_op_tags: Mapping[str, Any] | None = None) -> list:
    return [cv_folds, *(build_fold_asset(k, fold_op_tags) for k in range(n_folds))]


@dg.asset(group_name="baselines", deps=[cv_folds], kinds={"lightgbm"})
def baseline_lgbm(
    context: dg.AssetExecutionContext,
    numerai_home: NumeraiHome,
    diagnostics: DiagnosticsKnobs,
    warehouse: Warehouse,
):
    """LightGBM (n_estimators=2000, learning_rate=0.01, max_depth=5, num_leaves=31,
    colsample_bytree=0.1) on every 4th era the ensemble could train on; its test-era predictions."""
    from numerai_assets.training.baseline import fit_baseline

    result = fit_baseline(numerai_home.layout, diagnostics.baseline_estimators, context.log.info)
    warehouse.upsert_era_scores(result.rows)
    return dg.MaterializeResult(
        metadata=_candidate_metadata(
            result,
            n_estimators=diagnostics.baseline_estimators,
            predictions=dg.MetadataValue.path(str(result.predictions_path)),
        )
    )


@dg.asset(group_name="baselines", deps=[cv_folds], kinds={"numpy"})
def baseline_peer_ridge(
    context: dg.AssetExecutionContext,
    numerai_home: NumeraiHome,
    diagnostics: DiagnosticsKnobs,
    warehouse: Warehouse,
):
    """The peer ridge candidate: a ridge regression on each stock's features and the mean features
    of its k nearest peers (NUMERAI_PEER_RIDGE_KS) and their own peers (NUMERAI_PEER_RIDGE_HOP), one per
    fold; out-of-fold and test-block predictions."""
    from numerai_assets.training.peer_ridge import fit_peer_ridge_candidate

    config = diagnostics.peer_ridge_config()
    result = fit_peer_ridge_candidate(numerai_home.layout, config, context.log.info)
    warehouse.upsert_era_scores(result.rows)
    return dg.MaterializeResult(
        metadata=_candidate_metadata(
            result,
            oof_eras=result.oof_eras,
            test_eras=result.test_eras,
            peer_ks=",".join(map(str, config.peer_ks)),
            peer_hop=config.peer_hop,
            ridge_lambda=config.ridge_lambda,
            oof_predictions=dg.MetadataValue.path(str(result.path)),
        )
    )


def _candidate_metadata(result, **extra) -> dict:
    """A side candidate's asset metadata: its test-block figures, what it trained on, its own extras."""
    return {
        "model_version": result.model_version,
        "corr_mean": dg.MetadataValue.float(result.summary["corr_mean"]),
        "corr_sharpe": dg.MetadataValue.float(result.summary["corr_sharpe"]),
        "train_eras": result.train_eras,
        "train_rows": result.train_rows,
        "seconds": round(result.seconds, 1),
        **extra,
    }


def _plan_metadata(version: str, plan: FoldPlan) -> dict:
    """The folds as a table, one row per fold and a last row for the held-out test block."""
    rows = [
        {
            "fold": str(f.index),
            "train": era_span(f.train_eras),
            "train_eras": len(f.train_eras),
            "gap": plan.gap,
            "validation": era_span(f.validation_eras),
            "validation_eras": len(f.validation_eras),
        }
        for f in plan.folds
    ]
    if plan.test_eras:
        rows.append(
            {
                "fold": "test",
                "gap": plan.gap,
                "validation": era_span(plan.test_eras),
                "validation_eras": len(plan.test_eras),
            }
        )
    return {
        "model_version": version,
        "folds": table(rows, FOLD_COLUMNS),
        "purge_gap": plan.gap,
        "test_eras": era_span(plan.test_eras),
        "folds_note": "row `test`: the held-out test block after the last fold and the gap; no fold trains "
        "or early-stops on it (validation_diagnostics scores it)",
    }

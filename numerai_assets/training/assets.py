"""Training: the fold plan, one transformer per fold (GPU-tagged steps), and the example scripts'
LightGBM on the same eras, so the diagnostics answer "is the transformer worth it?"."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from model_core.cv import FoldPlan
from numerai_assets.ingest.assets import clean_eras, feature_returns
from numerai_assets.shared.executor import GPU_POOL, GPU_TAG
from numerai_assets.shared.model_versions import load_plan
from numerai_assets.shared.resources import DiagnosticsKnobs, NumeraiHome
from numerai_assets.shared.warehouse import Warehouse
from numerai_assets.training.folds import start_model_version, train_one_fold
from numerai_assets.training.resources import TrainingKnobs


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
        description=f"Transformer trained on fold {fold_index}: checkpoint + per-epoch metrics.",
    )
    def fold_model(context: dg.AssetExecutionContext, numerai_home: NumeraiHome, training: TrainingKnobs):
        result, version, rows = train_one_fold(fold_index, numerai_home.layout, training, context.log.info)
        return dg.MaterializeResult(
            metadata={
                "model_version": version,
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                "stopped_early": result.stopped_early,
                "val_corr_mean": result.best_val_corr,
                "val_corr_sharpe": result.history[result.best_epoch - 1].val_corr_sharpe,
                "rows_per_s": round(sum(h.rows_per_s for h in result.history) / len(result.history), 1),
                "train_rows": rows,
                "device": result.device,
                "checkpoint": dg.MetadataValue.path(str(result.checkpoint)),
            }
        )

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
        metadata={
            "model_version": result.model_version,
            "corr_mean": dg.MetadataValue.float(result.summary["corr_mean"]),
            "corr_sharpe": dg.MetadataValue.float(result.summary["corr_sharpe"]),
            "train_eras": result.train_eras,
            "train_rows": result.train_rows,
            "n_estimators": diagnostics.baseline_estimators,
            "seconds": round(result.seconds, 1),
            "predictions": dg.MetadataValue.path(str(result.predictions_path)),
        }
    )


def _plan_metadata(version: str, plan: FoldPlan) -> dict:
    rows = [
        dg.TableRecord(
            {
                "fold": f.index,
                "train": f"{f.train_eras[0]}..{f.train_eras[-1]} ({len(f.train_eras)})",
                "validation": f"{f.validation_eras[0]}..{f.validation_eras[-1]} ({len(f.validation_eras)})",
            }
        )
        for f in plan.folds
    ]
    columns = {"fold": "int", "train": "string", "validation": "string"}
    return {
        "model_version": version,
        "folds": dg.MetadataValue.table(rows, schema=dg.TableSchema.from_name_type_dict(columns)),
        "purge_gap": plan.gap,
        "test_eras": f"{plan.test_eras[0]}..{plan.test_eras[-1]} ({len(plan.test_eras)})",
    }

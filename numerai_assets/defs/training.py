"""Training: the fold plan, one transformer per fold (GPU-tagged steps), the executor."""

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

import dagster as dg

from model_core.atomic import write_text_atomic
from model_core.era_store import EraStore
from numerai_assets.defs.executor import GPU_POOL, GPU_TAG
from numerai_assets.defs.executor import build_executor as build_executor  # re-exported
from numerai_assets.defs.features import clean_eras, feature_returns
from numerai_assets.defs.resources import NumeraiHome
from numerai_assets.defs.training_resource import TrainingKnobs
from numerai_assets.fold_training import train_one_fold


@dg.asset(group_name="training", deps=[clean_eras], kinds={"json"})
def cv_folds(context: dg.AssetExecutionContext, numerai_home: NumeraiHome, training: TrainingKnobs):
    """Purged expanding-window folds over the resolved eras + the held-out test eras; a new model version."""
    from model_core.cv import make_folds

    store = EraStore(numerai_home.layout.clean_eras_current)
    plan = make_folds(store.resolved_eras(), training.to_cv_config())
    version = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    # Relative to NUMERAI_HOME, so the home can move (another machine, a container volume).
    store_path = str(store.path.relative_to(numerai_home.layout.root))
    saved = {"model_version": version, "store": store_path, "plan": plan.to_dict()}
    write_text_atomic(numerai_home.layout.cv_folds_path, json.dumps(saved, indent=2))
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
    context.log.info(
        f"model version {version}: {len(plan.folds)} folds, gap {plan.gap}, {len(plan.test_eras)} test eras"
    )
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "folds": dg.MetadataValue.table(
                rows,
                schema=dg.TableSchema.from_name_type_dict(
                    {"fold": "int", "train": "string", "validation": "string"}
                ),
            ),
            "purge_gap": plan.gap,
            "test_eras": f"{plan.test_eras[0]}..{plan.test_eras[-1]} ({len(plan.test_eras)})",
        }
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

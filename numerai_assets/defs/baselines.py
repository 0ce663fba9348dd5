"""The example scripts' LightGBM on the same eras, so the diagnostics answer "is the transformer worth it?"."""

import dagster as dg

from numerai_assets.defs.knobs import DiagnosticsKnobs
from numerai_assets.defs.resources import NumeraiHome
from numerai_assets.defs.training import cv_folds
from numerai_assets.warehouse import Warehouse


@dg.asset(group_name="baselines", deps=[cv_folds], kinds={"lightgbm"})
def baseline_lgbm(
    context: dg.AssetExecutionContext,
    numerai_home: NumeraiHome,
    diagnostics: DiagnosticsKnobs,
    warehouse: Warehouse,
):
    """LightGBM (n_estimators=2000, learning_rate=0.01, max_depth=5, num_leaves=31,
    colsample_bytree=0.1) on every 4th era the ensemble could train on; its test-era predictions."""
    from numerai_assets.baseline_fit import fit_baseline

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

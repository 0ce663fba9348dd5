"""Ensemble weights from out-of-fold results only; the new version becomes the current one."""

import dagster as dg

from numerai_assets.shared.resources import DiagnosticsKnobs, NumeraiHome
from numerai_assets.shared.warehouse import Warehouse


def build_ensemble_asset(n_folds: int) -> dg.AssetsDefinition:
    @dg.asset(
        name="ensemble_weights",
        group_name="ensemble",
        deps=[f"fold_model_{k}" for k in range(n_folds)],
        kinds={"json"},
    )
    def ensemble_weights(
        context: dg.AssetExecutionContext,
        numerai_home: NumeraiHome,
        diagnostics: DiagnosticsKnobs,
        warehouse: Warehouse,
    ):
        """One weight per fold model: fitted on each fold's validation eras (never the test eras),
        non-negative, summing to one, shrunk toward equal weights. Promotes the model version."""
        from numerai_assets.ensemble.fit import fit_current_ensemble, record_fit

        layout = numerai_home.layout
        fit = fit_current_ensemble(
            layout, numerai_home.feature_set, diagnostics.ensemble_shrinkage, context.log.info
        )
        record_fit(warehouse, fit)
        spec = fit.spec
        context.log.info(
            f"model version {spec.model_version} is now current; weights "
            + ", ".join(f"fold_{k} {w:.3f}" for k, w in enumerate(spec.weights))
        )
        return dg.MaterializeResult(
            metadata=_metadata(fit, diagnostics.ensemble_shrinkage, layout.model_dir(spec.model_version))
        )

    return ensemble_weights


def _metadata(fit, shrinkage: float, model_dir) -> dict:
    spec = fit.spec
    weights = [
        dg.TableRecord(
            {
                "model": f"fold_{row['fold']}",
                "weight": round(row["weight"], 4),
                "oof_corr_mean": round(row["val_corr_mean"], 5),
                "oof_corr_sharpe": round(row["val_corr_sharpe"], 3),
            }
        )
        for row in fit.fold_rows
    ]
    columns = {"model": "string", "weight": "float", "oof_corr_mean": "float", "oof_corr_sharpe": "float"}
    return {
        "model_version": spec.model_version,
        "dataset_version": spec.dataset_version,
        "previous_version": spec.previous_version or "none",
        "shrinkage": shrinkage,
        "weights": dg.MetadataValue.table(weights, schema=dg.TableSchema.from_name_type_dict(columns)),
        **{f"weight_fold_{k}": float(w) for k, w in enumerate(spec.weights)},
        "path": dg.MetadataValue.path(str(model_dir)),
    }

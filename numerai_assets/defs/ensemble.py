"""Ensemble weights from out-of-fold results only; the new version becomes the current one."""

import datetime as dt

import dagster as dg

from numerai_assets.defs.knobs import DiagnosticsKnobs
from numerai_assets.defs.resources import NumeraiHome
from numerai_assets.warehouse import Warehouse


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
        from numerai_assets.ensemble_fit import fit_current_ensemble

        fit = fit_current_ensemble(
            numerai_home.layout, numerai_home.feature_set, diagnostics.ensemble_shrinkage, context.log.info
        )
        spec = fit.spec
        known = warehouse.query(
            "SELECT fold, device FROM fold_metrics WHERE model_version = ?", [spec.model_version]
        )
        devices = dict(zip(known["fold"].to_list(), known["device"].to_list(), strict=True))
        warehouse.upsert_fold_metrics([{**row, "device": devices.get(row["fold"])} for row in fit.fold_rows])
        warehouse.upsert_era_scores(fit.oof_scores)
        warehouse.upsert_model_version(
            spec.model_version,
            created_at=dt.datetime.fromisoformat(spec.created_at),
            n_folds=len(spec.weights),
            feature_set=spec.feature_set,
            weights=dict(zip((f"fold_{k}" for k in range(len(spec.weights))), spec.weights, strict=True)),
        )
        context.log.info(
            f"model version {spec.model_version} is now current; weights "
            + ", ".join(f"fold_{k} {w:.3f}" for k, w in enumerate(spec.weights))
        )
        return dg.MaterializeResult(
            metadata={
                "model_version": spec.model_version,
                "previous_version": spec.previous_version or "none",
                "shrinkage": diagnostics.ensemble_shrinkage,
                "weights": dg.MetadataValue.table(
                    [
                        dg.TableRecord(
                            {
                                "model": f"fold_{row['fold']}",
                                "weight": round(row["weight"], 4),
                                "oof_corr_mean": round(row["val_corr_mean"], 5),
                                "oof_corr_sharpe": round(row["val_corr_sharpe"], 3),
                            }
                        )
                        for row in fit.fold_rows
                    ],
                    schema=dg.TableSchema.from_name_type_dict(
                        {
                            "model": "string",
                            "weight": "float",
                            "oof_corr_mean": "float",
                            "oof_corr_sharpe": "float",
                        }
                    ),
                ),
                **{f"weight_fold_{k}": float(w) for k, w in enumerate(spec.weights)},
                "path": dg.MetadataValue.path(str(numerai_home.layout.model_dir(spec.model_version))),
            }
        )

    return ensemble_weights

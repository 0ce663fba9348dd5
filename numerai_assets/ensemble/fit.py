"""Glue for ensemble_weights: score each fold model on its own validation eras, fit, promote.

Only out-of-fold results go into the weights: fold k's model is scored on fold k's validation
eras (which it never trained on), and no test era is read at all, so the held-out test block
stays an honest estimate of the blend.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import numpy as np

from model_core.era_store import EraStore
from model_core.metrics import summarise_corrs
from model_core.schema import MAIN_TARGET
from numerai_assets.shared.home import OOF_TRANSFORMER, HomeLayout
from numerai_assets.shared.model_versions import current_version, load_plan, promote, temporal_context
from numerai_assets.shared.warehouse import Warehouse


@dataclasses.dataclass(frozen=True)
class EnsembleFit:
    spec: object  # model_core.inference.EnsembleSpec (torch-free import for the code location)
    oof_scores: list[dict]  # warehouse era_scores rows, split "oof"
    fold_rows: list[dict]  # warehouse fold_metrics rows


def fit_current_ensemble(
    layout: HomeLayout, feature_set: str, shrinkage: float, log: Callable[[str], None]
) -> EnsembleFit:
    from model_core.candidates import save_era_predictions
    from model_core.ensemble import WeightConfig, equal_weights, fit_ensemble_weights
    from model_core.inference import EnsembleSpec, predict_era
    from model_core.metrics import era_numerai_corr
    from model_core.train import load_trained

    plan = load_plan(layout)
    store = EraStore(plan.store_path)
    target = store.target_index(MAIN_TARGET)
    checkpoints, oof_corrs, oof_rows, fold_rows = [], [], [], []
    oof_predictions = {}  # era -> the scores of the fold model that validated on it
    context, lags = None, None
    for fold in plan.plan.folds:
        checkpoint = plan.checkpoint(layout, fold.index)
        if not checkpoint.exists():
            raise FileNotFoundError(
                f"{checkpoint}: fold {fold.index} is not trained (materialise fold_model_{fold.index})"
            )
        model, saved = load_trained(checkpoint)
        if lags is None:
            lags = model.config.temporal_lags
            context = temporal_context(layout, store, lags)
        corrs = []
        for era in fold.validation_eras:
            data = store.era(era)
            scores = predict_era(model, data.features, None if context is None else context.for_era(era))
            oof_predictions[era] = scores
            corrs.append(era_numerai_corr(scores, data.targets[:, target]))
            oof_rows.append({"model": f"fold_{fold.index}", "era": era, "split": "oof", "corr": corrs[-1]})
        summary = summarise_corrs(corrs)
        log(f"fold {fold.index}: out-of-fold CORR {summary['mean']:.4f} (sharpe {summary['sharpe']:.2f})")
        fold_rows.append(
            {
                "fold": fold.index,
                "best_epoch": saved["best_epoch"],
                "epochs_run": len(saved["history"]),
                "val_corr_mean": summary["mean"],
                "val_corr_sharpe": summary["sharpe"],
                "rows_per_s": float(np.mean([h["rows_per_s"] for h in saved["history"]])),
                "checkpoint": str(checkpoint),
            }
        )
        checkpoints.append(checkpoint.name)
        oof_corrs.append(corrs)

    weights = fit_ensemble_weights(oof_corrs, WeightConfig(shrinkage=shrinkage))
    for row, weight in zip(fold_rows, weights, strict=True):
        row["weight"] = float(weight)
    previous = current_version(layout)
    spec = EnsembleSpec(
        model_version=plan.model_version,
        checkpoints=checkpoints,
        weights=[float(w) for w in weights],
        equal_weights=[float(w) for w in equal_weights(len(checkpoints))],
        temporal_lags=int(lags or 0),
        feature_set=feature_set,
        features=list(store.features),
        dataset_version=store.dataset_version,
        previous_version=previous if previous != plan.model_version else None,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        oof={
            f"fold_{r['fold']}": {"mean": r["val_corr_mean"], "sharpe": r["val_corr_sharpe"]}
            for r in fold_rows
        },
    )
    spec.save(layout.model_dir(plan.model_version))
    save_era_predictions(layout.model_dir(plan.model_version) / OOF_TRANSFORMER, oof_predictions)
    promote(layout, plan.model_version)
    for row in [*oof_rows, *fold_rows]:
        row["model_version"] = plan.model_version
    return EnsembleFit(spec, oof_rows, fold_rows)


def record_fit(warehouse: Warehouse, fit: EnsembleFit) -> None:
    """The fit in the warehouse: fold metrics (keeping each fold's training device), the
    out-of-fold era scores, and the model version's row."""
    spec = fit.spec
    devices = warehouse.fold_devices(spec.model_version)
    warehouse.upsert_fold_metrics([{**row, "device": devices.get(row["fold"])} for row in fit.fold_rows])
    warehouse.upsert_era_scores(fit.oof_scores)
    warehouse.upsert_model_version(
        spec.model_version,
        created_at=dt.datetime.fromisoformat(spec.created_at),
        n_folds=len(spec.weights),
        feature_set=spec.feature_set,
        dataset_version=spec.dataset_version,
        weights=dict(zip((f"fold_{k}" for k in range(len(spec.weights))), spec.weights, strict=True)),
    )

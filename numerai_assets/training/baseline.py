"""Glue for baseline_lgbm, the LightGBM candidate: out-of-fold and test-block predictions."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from model_core import schema
from model_core.atomic import atomic_path
from model_core.era_store import EraStore
from numerai_assets.shared.home import BASELINE_PREDICTIONS, OOF_LGBM, TEST_LGBM, HomeLayout
from numerai_assets.shared.model_versions import TrainingPlan, load_plan


@dataclasses.dataclass(frozen=True)
class CandidateInputs:
    """What a side candidate (LightGBM, peer ridge) is fitted from: the week's fold plan, its
    era store, the main target's column and every era before the test gap."""

    plan: TrainingPlan
    store: EraStore
    target: int
    pre_gap_eras: list[str]  # the training eras of the model that predicts the test block


def candidate_inputs(layout: HomeLayout) -> CandidateInputs:
    plan = load_plan(layout)
    store = EraStore(plan.store_path)
    last = plan.plan.folds[-1]
    eras = sorted({*last.train_eras, *last.validation_eras})  # everything before the test gap
    return CandidateInputs(plan, store, store.target_index(schema.MAIN_TARGET), eras)


@dataclasses.dataclass(frozen=True)
class BaselineFit:
    model_version: str
    summary: dict[str, float]
    rows: list[dict]  # warehouse era_scores rows (baseline_lgbm on test, lgbm out of fold)
    train_eras: int
    train_rows: int
    seconds: float
    predictions_path: Path


def fit_baseline(layout: HomeLayout, n_estimators: int, log: Callable[[str], None]) -> BaselineFit:
    """The LightGBM candidate, made as the transformer's folds are: out-of-fold predictions from
    one LightGBM per fold (for the choice), test-block predictions from one trained on every era
    before the test gap (for the report). Every era, streamed: no 4th-era subsample."""
    from model_core.baseline import BaselineConfig, fold_predictions
    from model_core.candidates import save_era_predictions
    from model_core.diagnostics import summarise_scores

    started = time.perf_counter()
    inputs = candidate_inputs(layout)
    plan, store, target, eras = inputs.plan, inputs.store, inputs.target, inputs.pre_gap_eras
    log(f"LightGBM candidate: {len(plan.plan.folds)} folds + the test block, {n_estimators} trees")
    oof, test = fold_predictions(store, plan.plan, target, BaselineConfig(n_estimators=n_estimators), log)
    folder = layout.model_dir(plan.model_version)
    save_era_predictions(folder / OOF_LGBM, oof)
    save_era_predictions(folder / TEST_LGBM, test)
    frames, scores = [], test_block_scores(store, target, test)
    for era in plan.plan.test_eras:
        frames.append(
            pl.DataFrame({schema.ID: store.era(era).ids, schema.ERA: era, schema.PREDICTION: test[era]})
        )
    path = folder / BASELINE_PREDICTIONS
    with atomic_path(path) as tmp:
        pl.concat(frames).write_parquet(tmp)
    summary = summarise_scores(scores)
    log(f"LightGBM candidate: test CORR {summary['corr_mean']:.4f} (sharpe {summary['corr_sharpe']:.2f})")
    oof_rows = [
        {"model_version": plan.model_version, "model": "lgbm", "era": era, "split": "oof", "corr": corr}
        for era, corr in zip(sorted(oof), oof_corrs(store, target, oof), strict=True)
    ]
    return BaselineFit(
        model_version=plan.model_version,
        summary=summary,
        rows=[
            *(
                {**vars(s), "model_version": plan.model_version, "model": "baseline_lgbm", "split": "test"}
                for s in scores
            ),
            *oof_rows,
        ],
        train_eras=len(eras),
        train_rows=store.row_count(eras),
        seconds=time.perf_counter() - started,
        predictions_path=path,
    )


def test_block_scores(store: EraStore, target: int, test: dict) -> list:
    """model_core.diagnostics.score_era of each test-block era's predictions (era order)."""
    from model_core.diagnostics import score_era

    out = []
    for era in sorted(test):
        data = store.era(era)
        out.append(score_era(era, test[era], data.targets[:, target], data.features))
    return out


def oof_corrs(store: EraStore, target: int, predictions: dict) -> list[float]:
    """CORR of each out-of-fold era's predictions, in sorted era order."""
    from model_core.metrics import era_numerai_corr

    return [era_numerai_corr(predictions[e], store.era(e).targets[:, target]) for e in sorted(predictions)]

"""Glue for baseline_lgbm: train on the eras the ensemble could use, predict the test eras."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from model_core import schema
from model_core.atomic import atomic_path
from model_core.era_store import EraStore
from numerai_assets.home import HomeLayout
from numerai_assets.model_versions import load_plan
from numerai_assets.validation import BASELINE_PREDICTIONS


@dataclasses.dataclass(frozen=True)
class BaselineFit:
    model_version: str
    summary: dict[str, float]
    rows: list[dict]  # warehouse era_scores rows (model baseline_lgbm, split test)
    train_eras: int
    train_rows: int
    seconds: float
    predictions_path: Path


def fit_baseline(layout: HomeLayout, n_estimators: int, log: Callable[[str], None]) -> BaselineFit:
    from model_core.baseline import BaselineConfig, predict_lgbm, train_lgbm, training_eras
    from model_core.diagnostics import score_era, summarise_scores

    started = time.perf_counter()
    plan = load_plan(layout)
    store = EraStore(plan.store_path)
    target = store.target_index(schema.MAIN_TARGET)
    last = plan.plan.folds[-1]
    eras = sorted({*last.train_eras, *last.validation_eras})  # everything before the test gap
    config = BaselineConfig(n_estimators=n_estimators)
    used = training_eras(eras, config.era_stride)
    log(
        f"baseline LightGBM: {len(used)} of {len(eras)} eras (every {config.era_stride}th), {n_estimators} trees"
    )
    model = train_lgbm(store, eras, target, config)
    frames, scores = [], []
    for era in plan.plan.test_eras:
        data = store.era(era)
        predictions = predict_lgbm(model, data.features)
        scores.append(score_era(era, predictions, data.targets[:, target], data.features))
        frames.append(pl.DataFrame({schema.ID: data.ids, schema.ERA: era, schema.PREDICTION: predictions}))
    path = layout.model_dir(plan.model_version) / BASELINE_PREDICTIONS
    with atomic_path(path) as tmp:
        pl.concat(frames).write_parquet(tmp)
    summary = summarise_scores(scores)
    log(f"baseline LightGBM: test CORR {summary['corr_mean']:.4f} (sharpe {summary['corr_sharpe']:.2f})")
    return BaselineFit(
        model_version=plan.model_version,
        summary=summary,
        rows=[
            {**vars(s), "model_version": plan.model_version, "model": "baseline_lgbm", "split": "test"}
            for s in scores
        ],
        train_eras=len(used),
        train_rows=int(
            store.era_table.filter(pl.col(schema.ERA).is_in(used))
            .select((pl.col("row_end") - pl.col("row_start")).sum())
            .item()
        ),
        seconds=time.perf_counter() - started,
        predictions_path=path,
    )

"""Glue for the live path: predict a round's live era with the current ensemble, check the result.

The live era is scored by the same `Ensemble.predict` as the test eras and backfills. Its temporal
context is that of the era after the last one in the store: only eras whose targets are known
by then are read, the same rule as in training.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from model_core import schema
from model_core.atomic import atomic_path
from model_core.clean import clean_live_frame
from model_core.era_store import EraStore
from model_core.errors import DataContractError
from numerai_assets.ingest.fetch import live_era_labels
from numerai_assets.shared.dataset_versions import model_dataset_version
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import current_model_dir, temporal_context
from numerai_assets.shared.references import benchmark_column

# parquet key-value metadata of the live predictions file: the model version that made it and
# the dataset version of the live file it read
VERSION_KEY = b"numerai_model_version"
DATASET_VERSION_KEY = b"numerai_dataset_version"


@dataclasses.dataclass(frozen=True)
class LivePredictions:
    round_number: int
    model_version: str
    dataset_version: str  # of the live file read: the version the model was trained on
    path: Path
    rows: int
    seconds: float
    live_era: str


def predict_live(layout: HomeLayout, round_number: int, neutralize: float = 0.0) -> LivePredictions:
    """Predict round `round_number`'s live file (from raw_round) and write id, prediction to parquet;
    `neutralize` of the predictions' projection on the live features is removed first (0: none)."""
    from model_core.inference import Ensemble
    from model_core.neutralize import neutralize_era

    started = time.perf_counter()
    model_dir = current_model_dir(layout)
    dataset_version = model_dataset_version(model_dir)
    live_file = layout.round_dir(round_number, dataset_version) / schema.LIVE_FILE
    if not live_file.exists():
        raise FileNotFoundError(
            f"{live_file}: no {dataset_version} live file for round {round_number}, the version model "
            f"version {model_dir.name} was trained on (materialise raw_round first)"
        )
    ensemble = Ensemble(model_dir)
    # By name: the model's features, whatever else the file has; a missing one is an error naming it.
    ids, features = clean_live_frame(live_file, ensemble.spec.features)
    context = _live_temporal_context(layout, ensemble, dataset_version)
    predictions = neutralize_era(ensemble.predict(features, context), features, neutralize)
    path = layout.live_predictions_path(round_number)
    frame = pl.DataFrame({schema.ID: ids, schema.PREDICTION: predictions})
    table = frame.to_arrow().replace_schema_metadata(
        {VERSION_KEY: ensemble.model_version.encode(), DATASET_VERSION_KEY: dataset_version.encode()}
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return LivePredictions(
        round_number=round_number,
        model_version=ensemble.model_version,
        dataset_version=dataset_version,
        path=path,
        rows=frame.height,
        seconds=time.perf_counter() - started,
        live_era=", ".join(sorted(live_era_labels(live_file))),
    )


def _live_temporal_context(layout: HomeLayout, ensemble, dataset_version: str):
    """The temporal encoder's input for the live era (None when the model has none): the latest
    ingest's resolved eras, which must be of the model's dataset version and feature set."""
    if not ensemble.spec.temporal_lags:
        return None
    store = EraStore(layout.clean_eras_current)
    if store.dataset_version != dataset_version:
        raise ValueError(
            f"{store.path} holds {store.dataset_version}, model version {ensemble.model_version} was trained "
            f"on {dataset_version}: its temporal context must come from its own version; run the weekly training"
        )
    history = temporal_context(layout, store, ensemble.spec.temporal_lags)
    if history.features != ensemble.spec.features:
        raise ValueError(
            f"the feature returns in {layout.feature_returns_path} cover {len(history.features)} features, "
            f"model version {ensemble.model_version} reads {len(ensemble.spec.features)}: the feature set "
            "changed since it was trained (NUMERAI_FEATURE_SET); retrain first"
        )
    return history.for_era(schema.DATA_TYPE_LIVE, position=history.next_position)


def read_live_predictions(path: Path) -> tuple[pl.DataFrame, str | None]:
    """The predictions and the model version that made them."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no live predictions (materialise live_predictions first)")
    table = pq.read_table(path)
    version = (table.schema.metadata or {}).get(VERSION_KEY)
    return pl.from_arrow(table), None if version is None else version.decode()


def model_version_time(model_version: str) -> dt.datetime | None:
    """When a version was made: its name starts with the UTC time (cv_folds names it so)."""
    try:
        return dt.datetime.strptime(model_version[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def live_prediction_problems(
    predictions: pl.DataFrame,
    live_ids: Sequence[str],
    model_version: str | None,
    max_age_days: float,
    now: dt.datetime | None = None,
) -> list[str]:
    """Everything wrong with a live predictions frame; empty when it may be submitted."""
    problems = []
    if schema.ID not in predictions.columns or schema.PREDICTION not in predictions.columns:
        return [f"columns are {predictions.columns}, expected {schema.ID!r} and {schema.PREDICTION!r}"]
    ids = predictions[schema.ID]
    duplicated = ids.filter(ids.is_duplicated()).unique().to_list()
    if duplicated:
        problems.append(f"{len(duplicated)} ids appear more than once (e.g. {duplicated[:3]})")
    missing = set(live_ids) - set(ids.to_list())
    if missing:
        problems.append(f"{len(missing)} live ids have no prediction (e.g. {sorted(missing)[:3]})")
    extra = set(ids.to_list()) - set(live_ids)
    if extra:
        problems.append(f"{len(extra)} ids are not in the live file (e.g. {sorted(extra)[:3]})")
    values = predictions[schema.PREDICTION].cast(pl.Float64).to_numpy()
    if np.isnan(values).any():
        problems.append(f"{int(np.isnan(values).sum())} predictions are NaN")
    finite = values[~np.isnan(values)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        problems.append(f"predictions outside [0, 1]: min {finite.min():.4g}, max {finite.max():.4g}")
    if finite.size and np.ptp(finite) == 0:
        problems.append(f"predictions are constant ({finite[0]:.4g})")
    made = None if model_version is None else model_version_time(model_version)
    if made is None:
        problems.append(f"the model version {model_version!r} does not say when it was trained")
    else:
        age = ((now or dt.datetime.now(dt.UTC)) - made).total_seconds() / 86_400
        if age > max_age_days:
            problems.append(
                f"model version {model_version} is {age:.1f} days old, over the limit of {max_age_days:g} "
                "(NUMERAI_MAX_MODEL_AGE_DAYS): retrain first"
            )
    return problems


@dataclasses.dataclass(frozen=True)
class BenchmarkCorr:
    column: str
    corr: float  # Spearman over the ids both files have; NaN when it could not be measured
    rows: int
    unmeasured: str = ""  # why not, then

    def shown(self) -> float | str:
        return self.unmeasured or round(self.corr, 4)


def live_benchmark_corr(
    predictions: pl.DataFrame, layout: HomeLayout, round_number: int, column: str | None
) -> BenchmarkCorr | None:
    """How the live predictions rank the stocks against the round's live benchmark model (the
    `*_ender20` column unless NUMERAI_BENCHMARK_MODEL names one); None when the round has no
    live benchmark file. A benchmark file that cannot be used is reported, not held against the
    predictions: it is Numerai's file, not the model, that is wrong then."""
    path = predicted_round_dir(layout, round_number) / schema.LIVE_BENCHMARKS_FILE
    if not path.exists():
        return None
    try:
        column = benchmark_column(path, column)
        bench = pl.read_parquet(path, columns=[schema.ID, column])
    except (DataContractError, pl.exceptions.PolarsError, OSError) as err:
        return BenchmarkCorr(column or "?", float("nan"), 0, f"{path.name} unusable: {err}")
    both = predictions.join(bench, on=schema.ID, how="inner").drop_nulls()
    if both.height < 3:
        return BenchmarkCorr(
            column, float("nan"), both.height, f"{both.height} live ids have a {column} value"
        )
    ranks = both.select(pl.col(schema.PREDICTION).rank(), pl.col(column).rank()).to_numpy()
    if (ranks.std(axis=0) == 0).any():  # constant predictions (their own problem) or benchmark
        return BenchmarkCorr(column, float("nan"), both.height, "constant values: no correlation")
    return BenchmarkCorr(column, float(np.corrcoef(ranks.T)[0, 1]), both.height)


BENCHMARK_CORR_MARGIN_SE = 3  # below the bar by more than this many standard errors of a correlation


def benchmark_floor(threshold: float, rows: int) -> float:
    """The correlation under which the check refuses: the bar less 3 standard errors (1/sqrt(n-1)
    for a rank correlation near 0), so a weak model on a small round is not refused for noise,
    while a model fed shifted columns (about 0 on thousands of stocks) is."""
    return threshold - BENCHMARK_CORR_MARGIN_SE / np.sqrt(max(rows - 1, 1))


def benchmark_problem(bench: BenchmarkCorr | None, threshold: float) -> list[str]:
    """The check's complaint when the predictions clearly disagree with the live benchmark model."""
    if bench is None or not bench.corr < benchmark_floor(threshold, bench.rows):  # NaN: not measured
        return []
    return [
        f"Spearman correlation with the live benchmark model {bench.column} is {bench.corr:.3f} over "
        f"{bench.rows} ids, more than {BENCHMARK_CORR_MARGIN_SE} standard errors below "
        f"NUMERAI_MIN_BENCHMARK_CORR={threshold:g}: a broken model or shifted feature columns?"
    ]


def predicted_round_dir(layout: HomeLayout, round_number: int) -> Path:
    """The round's live files of the dataset version its live predictions were made from."""
    path = layout.live_predictions_path(round_number)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no live predictions (materialise live_predictions first)")
    version = (pq.read_schema(path).metadata or {}).get(DATASET_VERSION_KEY)
    if version is None:
        raise DataContractError(
            f"{path}: does not record its dataset version (made before versions were recorded): "
            "materialise live_predictions again"
        )
    return layout.round_dir(round_number, version.decode())


def live_ids(layout: HomeLayout, round_number: int) -> list[str]:
    """The ids of the live file the round's predictions were made from."""
    live_file = predicted_round_dir(layout, round_number) / schema.LIVE_FILE
    return pl.read_parquet(live_file, columns=[schema.ID])[schema.ID].to_list()

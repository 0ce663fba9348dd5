"""Cleaning: raw tournament parquet -> an era store of int8 features and float32 targets.

Rules (explicit, so a user can reason about what the model sees):
- a null feature value becomes MISSING (-1), its own category;
- a feature that is 2 on every row of an era was not available in that era (that is how the
  files encode it): the whole era's column becomes MISSING, not a fake "neutral" signal;
- a feature value outside 0..4 is an error naming the column and era;
- `target` must be present and non-null on every train/validation row; aux targets may be null
  (NaN); target values outside [0, 1] are errors;
- rows whose data_type is neither train nor validation (unresolved validation eras) are kept for
  prediction but their era is marked unresolved and its targets are NaN; in an era that mixes
  both, only the scored rows are kept.

Work is streamed a few eras at a time with polars, so memory is bounded by one chunk, whatever
the size of the files.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from model_core import raw_files, schema
from model_core.atomic import publish_dir, staging_dir
from model_core.era_store import EraStats, EraStore, EraStoreWriter
from model_core.errors import DataContractError
from model_core.feature_metadata import load_feature_metadata

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class CleanConfig:
    feature_set: str = "medium"
    eras_per_chunk: int = 16  # bounded memory: one chunk of eras is in memory at a time


@dataclasses.dataclass(frozen=True)
class CleanSummary:
    rows: int
    eras: int
    resolved_eras: int
    features: int
    targets: int
    missing_share: float
    unavailable_feature_eras: int
    seconds: float


def build_era_store(
    raw_dir: Path, link: Path, config: CleanConfig = CleanConfig(), progress: Progress | None = None
) -> tuple[EraStore, CleanSummary]:
    """Clean a dataset version's train + validation files and publish the store at `link` (a symlink).

    The store is built in a staging directory and published only when complete, so a crash or a
    bad file leaves the previous store untouched.
    """
    raw_dir = Path(raw_dir)
    metadata = load_feature_metadata(raw_dir / schema.FEATURES_JSON)
    features = metadata.features(config.feature_set)
    sources = [raw_dir / schema.TRAIN_FILE, raw_dir / schema.VALIDATION_FILE]
    with staging_dir(Path(link).parent, prefix="store") as staged:
        summary = clean_files(sources, features, metadata.targets, staged, progress, config)
        final = publish_dir(staged, Path(link))
    return EraStore(final), summary


def clean_files(
    sources: Sequence[Path],
    features: list[str],
    targets: list[str],
    out_dir: Path,
    progress: Progress | None = None,
    config: CleanConfig = CleanConfig(),
) -> CleanSummary:
    """Clean `sources` (train, then validation; disjoint eras) into an era store at `out_dir`."""
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    plans = [_plan_file(Path(p), features) for p in sources]
    present_targets = [t for t in targets if all(t in plan.columns for plan in plans)]
    writer = EraStoreWriter(
        out_dir,
        features,
        present_targets,
        metadata={"sources": [str(p) for p in sources], "missing_value": schema.MISSING},
    )
    seen_eras: set[str] = set()
    for plan in plans:
        overlap = seen_eras.intersection(plan.eras)
        if overlap:
            raise DataContractError(
                f"{plan.path}: era(s) {sorted(overlap)[:3]} also appear in an earlier file"
            )
        seen_eras.update(plan.eras)
        for i in range(0, len(plan.eras), config.eras_per_chunk):
            chunk = plan.eras[i : i + config.eras_per_chunk]
            frame = _clean_chunk(plan, chunk, features, present_targets)
            for era_frame in frame.partition_by(schema.ERA, maintain_order=True):
                _append_era(writer, plan.path, era_frame, features, present_targets)
            say(f"{plan.path.name}: cleaned eras {chunk[0]}..{chunk[-1]} ({i + len(chunk)}/{len(plan.eras)})")
    writer.close()
    stats = writer.era_stats
    return CleanSummary(
        rows=writer.n_rows,
        eras=len(stats),
        resolved_eras=sum(s.resolved for s in stats),
        features=len(features),
        targets=len(present_targets),
        missing_share=sum(s.missing_cells for s in stats) / max(1, writer.n_rows * len(features)),
        unavailable_feature_eras=sum(s.unavailable_features for s in stats),
        seconds=time.perf_counter() - started,
    )


def clean_live_frame(path: Path, features: list[str]) -> tuple[pl.Series, np.ndarray]:
    """The live file, cleaned by the same rules: ids and (N, F) int8 features. One era, whatever its label."""
    raw_files.inspect_parquet(path, required=(schema.ID,))
    lazy = pl.scan_parquet(path).with_columns(pl.lit("live").alias(schema.ERA))
    raw_files.check_feature_dtypes(path, lazy, features)
    raw_files.check_unique_ids(path, lazy)
    frame = (
        lazy.select(schema.ID, schema.ERA, *features)
        .with_columns(_out_of_range(features).alias("_bad"))
        .with_columns(_feature_exprs(features))
        .collect()
    )
    if frame.height == 0:
        raise DataContractError(f"{path}: the live file has no rows")
    if frame["_bad"].any():
        _raise_out_of_range(path, lazy, "live", features)
    return frame[schema.ID], _to_int8(frame, features)


@dataclasses.dataclass(frozen=True)
class _FilePlan:
    path: Path
    lazy: pl.LazyFrame
    columns: list[str]
    eras: list[str]


def _plan_file(path: Path, features: list[str]) -> _FilePlan:
    required = (schema.ID, schema.ERA, schema.DATA_TYPE, schema.MAIN_TARGET)
    summary = raw_files.inspect_parquet(path, required=required)
    raw = pl.scan_parquet(path)
    lazy = raw.with_columns(_era_expr(path, raw))
    raw_files.check_feature_dtypes(path, lazy, features)
    raw_files.check_unique_ids(path, lazy)
    eras = raw_files.era_row_counts(path, lazy)[schema.ERA].to_list()
    return _FilePlan(path=path, lazy=lazy, columns=summary.columns, eras=eras)


def _era_expr(path: Path, lazy: pl.LazyFrame) -> pl.Expr:
    """Era labels as the zero-padded strings of the contract, whatever integer type a file used."""
    dtype = lazy.collect_schema()[schema.ERA]
    if dtype == pl.String:
        return pl.col(schema.ERA)
    if dtype.is_integer():
        return pl.col(schema.ERA).cast(pl.String).str.zfill(4)
    raise DataContractError(f"{path}: column {schema.ERA} has dtype {dtype}, expected strings like '0001'")


def _feature_exprs(features: list[str]) -> list[pl.Expr]:
    """Null -> MISSING; a feature that is 2 on every row of its era -> MISSING for that era."""
    return [
        pl.when(pl.col(f).is_null() | (pl.col(f) == schema.FEATURE_NEUTRAL).all().over(schema.ERA))
        .then(pl.lit(schema.MISSING))
        .otherwise(pl.col(f))
        .cast(pl.Int8)
        .alias(f)
        for f in features
    ]


def _out_of_range(features: list[str]) -> pl.Expr:
    return pl.any_horizontal(
        [(pl.col(f) < schema.FEATURE_MIN) | (pl.col(f) > schema.FEATURE_MAX) for f in features]
    ).fill_null(False)


def _raise_out_of_range(path: Path, lazy: pl.LazyFrame, era: str, features: list[str]) -> None:
    """Rare path: find which column broke the 0..4 rule, to name it."""
    raw = lazy.filter(pl.col(schema.ERA) == era).select(features).collect()
    for feature in features:
        if raw.select(_out_of_range([feature])).to_series().any():
            raise DataContractError(f"{path}: column {feature} has values outside 0..4 in era {era}")
    raise DataContractError(f"{path}: feature values outside 0..4 in era {era}")


def _clean_chunk(plan: _FilePlan, eras: list[str], features: list[str], targets: list[str]) -> pl.DataFrame:
    scored = pl.col(schema.DATA_TYPE).is_in(schema.SCORED_DATA_TYPES)
    frame = (
        plan.lazy.filter(pl.col(schema.ERA).is_in(eras))
        # in an era that mixes scored and unresolved rows, keep the scored ones
        .filter(scored | ~scored.any().over(schema.ERA))
        .with_columns(
            _out_of_range(features).alias("_bad"),
            pl.sum_horizontal([pl.col(f).is_null() for f in features]).alias("_nulls"),
            scored.alias("_scored"),
        )
        .with_columns(_feature_exprs(features))
        .select(schema.ID, schema.ERA, schema.DATA_TYPE, "_scored", "_nulls", "_bad", *features, *targets)
        .collect()
    )
    if frame["_bad"].any():
        _raise_out_of_range(plan.path, plan.lazy, frame.filter(pl.col("_bad"))[schema.ERA][0], features)
    return frame


def _append_era(
    writer: EraStoreWriter, path: Path, frame: pl.DataFrame, features: list[str], targets: list[str]
) -> None:
    era = frame[schema.ERA][0]
    resolved = bool(frame["_scored"].all())
    target_values = frame.select(targets).cast(pl.Float32)
    if resolved:
        _check_targets(path, era, target_values)
    data_types = frame[schema.DATA_TYPE].unique().to_list()
    features_i8 = _to_int8(frame, features)
    targets_f32 = target_values.to_numpy().astype(np.float32, copy=False)
    if not resolved:
        targets_f32 = np.full_like(targets_f32, np.nan)
    stats = EraStats(
        era=era,
        data_type=data_types[0] if len(data_types) == 1 else "mixed",
        resolved=resolved,
        row_start=0,
        row_end=0,
        missing_values=int(frame["_nulls"].sum()),
        unavailable_features=int((features_i8 == schema.MISSING).all(axis=0).sum()),
        missing_cells=int((features_i8 == schema.MISSING).sum()),
    )
    writer.append(frame[schema.ID], features_i8, targets_f32, stats)


def _check_targets(path: Path, era: str, targets: pl.DataFrame) -> None:
    null_main = targets[schema.MAIN_TARGET].null_count()
    if null_main:
        raise DataContractError(
            f"{path}: column {schema.MAIN_TARGET} has {null_main} null value(s) in era {era}"
        )
    for name in targets.columns:
        column = targets[name].drop_nulls().drop_nans()
        if column.len() and (column.min() < 0.0 or column.max() > 1.0):
            raise DataContractError(f"{path}: column {name} has values outside [0, 1] in era {era}")


def _to_int8(frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    return np.ascontiguousarray(frame.select(features).to_numpy(), dtype=np.int8)

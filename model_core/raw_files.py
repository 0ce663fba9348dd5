"""Checks of raw tournament parquet files before anything reads them in earnest."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from model_core import schema
from model_core.errors import DataContractError


@dataclasses.dataclass(frozen=True)
class ParquetSummary:
    path: Path
    rows: int
    columns: list[str]
    bytes: int


def inspect_parquet(
    path: Path, required: list[str] | tuple[str, ...] = (schema.ID, schema.ERA)
) -> ParquetSummary:
    """Read only the footer: a missing, truncated or column-short file fails here, naming the file."""
    path = Path(path)
    if not path.exists():
        raise DataContractError(f"{path}: file not found")
    try:
        meta = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataContractError(
            f"{path}: not a readable parquet file (truncated or corrupt?): {err}"
        ) from None
    columns = meta.schema_arrow.names
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataContractError(f"{path}: missing column(s) {', '.join(missing)}")
    return ParquetSummary(path=path, rows=meta.metadata.num_rows, columns=columns, bytes=path.stat().st_size)


def check_feature_dtypes(path: Path, lazy: pl.LazyFrame, features: list[str]) -> None:
    """Features must be integer columns (int8 in the real files); a float or string one is an error."""
    file_schema = lazy.collect_schema()
    missing = [f for f in features if f not in file_schema]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataContractError(f"{path}: missing feature column(s) {shown}")
    for feature in features:
        if not file_schema[feature].is_integer():
            raise DataContractError(
                f"{path}: column {feature} has dtype {file_schema[feature]}, expected integers 0..4"
            )


def check_unique_ids(path: Path, lazy: pl.LazyFrame) -> None:
    """Ids are unique per stock per era and, in the real files, across the whole file."""
    dupes = (
        lazy.select(schema.ID, schema.ERA)
        .filter(pl.col(schema.ID).is_duplicated())
        .head(3)
        .collect(engine="streaming")
    )
    if dupes.height:
        example = ", ".join(f"{r[schema.ID]} (era {r[schema.ERA]})" for r in dupes.iter_rows(named=True))
        raise DataContractError(f"{path}: duplicate ids in column {schema.ID}, e.g. {example}")
    nulls = lazy.select(pl.col(schema.ID).null_count()).collect().item()
    if nulls:
        raise DataContractError(f"{path}: {nulls} row(s) with a null {schema.ID}")


def era_row_counts(path: Path, lazy: pl.LazyFrame) -> pl.DataFrame:
    """Rows per era, in era order; an empty or null era label is an error naming the file."""
    counts = (
        lazy.group_by(schema.ERA).agg(pl.len().alias("rows")).sort(schema.ERA).collect(engine="streaming")
    )
    if counts.height == 0:
        raise DataContractError(f"{path}: no rows")
    bad = counts.filter(pl.col(schema.ERA).is_null() | (pl.col(schema.ERA).str.strip_chars() == ""))
    if bad.height:
        raise DataContractError(f"{path}: {bad['rows'].sum()} row(s) with an empty or null {schema.ERA}")
    return counts

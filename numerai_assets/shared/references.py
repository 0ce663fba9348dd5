"""Reference predictions to score against: Numerai's benchmark model, the meta model, an older version.

Each is a parquet file with `id`, `era` and a prediction column. They are looked up by id for the
eras being scored; a stock missing from the reference gets NaN, which the metrics leave out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from model_core import schema
from model_core.errors import DataContractError


class ReferenceLookup:
    """id -> value for a set of eras, from one column of a parquet file."""

    def __init__(self, path: Path, column: str, eras: Sequence[str]):
        self.path, self.column = Path(path), column
        names = pl.scan_parquet(self.path).collect_schema().names()
        for needed in (schema.ID, schema.ERA, column):
            if needed not in names:
                raise DataContractError(f"{self.path}: no column {needed!r} (columns: {names[:8]})")
        frame = (
            pl.scan_parquet(self.path)
            .filter(pl.col(schema.ERA).is_in(list(eras)))
            .select(schema.ID, pl.col(column).cast(pl.Float64))
            .collect()
        )
        self._values = dict(zip(frame[schema.ID].to_list(), frame[column].to_list(), strict=True))

    def __len__(self) -> int:
        return len(self._values)

    def values(self, ids: Sequence[str]) -> np.ndarray | None:
        """The reference for these ids (NaN where it has none); None when it covers none of them."""
        out = np.array([self._values.get(i) for i in ids], dtype=np.float64)
        return None if np.isnan(out).all() else out


def benchmark_column(path: Path, wanted: str | None) -> str:
    """The benchmark model to score BMC against: `wanted`, or the first `*_ender20` column, or the first."""
    names = [n for n in pl.scan_parquet(path).collect_schema().names() if n not in (schema.ID, schema.ERA)]
    names = [n for n in names if n != schema.DATA_TYPE]
    if wanted is not None:
        if wanted not in names:
            raise DataContractError(
                f"{path}: no benchmark column {wanted!r} (NUMERAI_BENCHMARK_MODEL); has {names}"
            )
        return wanted
    if not names:
        raise DataContractError(f"{path}: no benchmark model columns")
    return next((n for n in names if n.endswith("_ender20")), names[0])


def load_reference(path: Path, column: str, eras: Sequence[str]) -> ReferenceLookup | None:
    """A lookup when the file exists and covers some of the eras, else None (the metric is skipped)."""
    if not Path(path).exists():
        return None
    lookup = ReferenceLookup(path, column, eras)
    return lookup if len(lookup) else None


def load_scoring_references(raw_dir: Path, benchmark: str | None, eras: Sequence[str]) -> dict:
    """{"benchmark": lookup or None, "meta_model": lookup or None} from the raw dataset's files:
    BMC is scored against the first, MMC against the second, where they cover the eras."""
    bench_path = Path(raw_dir) / schema.VALIDATION_BENCHMARKS_FILE
    return {
        "benchmark": load_reference(bench_path, benchmark_column(bench_path, benchmark), eras)
        if bench_path.exists()
        else None,
        "meta_model": load_reference(Path(raw_dir) / schema.META_MODEL_FILE, schema.META_MODEL_COLUMN, eras),
    }

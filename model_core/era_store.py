"""The cleaned data on disk: int8 features and float32 targets, one contiguous block per era.

    STORE/
      manifest.json   features, targets, row count, rules, sources
      features.i8     (rows, features) int8, C order; MISSING (-1) where a value is null or the
                      feature was unavailable in that era
      targets.f32     (rows, targets) float32; NaN where a target is null or unresolved
      eras.parquet    one row per era: era, data_type, resolved, row_start, row_end, stats
      ids.parquet     id and era of every row, in storage order

The reader fetches one era's block with a positioned read, so an era costs its own bytes and
nothing else: training and scoring stream era by era without ever holding the set (let alone a
float32 copy), and the process's memory stays flat however many eras it has read.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from model_core import schema

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FEATURES_BIN = "features.i8"
TARGETS_BIN = "targets.f32"
ERAS_TABLE = "eras.parquet"
IDS_TABLE = "ids.parquet"


@dataclasses.dataclass(frozen=True)
class EraSlice:
    """One era of the store, read from disk (its own arrays: nothing else of the store is held)."""

    era: str
    data_type: str
    resolved: bool
    ids: list[str]
    features: np.ndarray  # (N, F) int8
    targets: np.ndarray  # (N, T) float32


@dataclasses.dataclass
class EraStats:
    era: str
    data_type: str
    resolved: bool
    row_start: int
    row_end: int
    missing_values: int  # nulls in the source
    unavailable_features: int  # features that were all 2 (not available) in this era
    missing_cells: int  # MISSING values after cleaning (nulls + unavailable columns)


class EraStoreWriter:
    """Appends eras in order. Used by the cleaner inside a staging directory."""

    def __init__(self, path: Path, features: list[str], targets: list[str], metadata: dict):
        self.path = Path(path)
        self.features, self.targets, self.metadata = features, targets, metadata
        self._features_out: BinaryIO = open(self.path / FEATURES_BIN, "wb")  # noqa: SIM115
        self._targets_out: BinaryIO = open(self.path / TARGETS_BIN, "wb")  # noqa: SIM115
        self._ids: list[pl.DataFrame] = []
        self._eras: list[EraStats] = []
        self.n_rows = 0

    def append(
        self,
        ids: pl.Series,
        features: np.ndarray,
        targets: np.ndarray,
        stats: EraStats,
    ) -> None:
        n = features.shape[0]
        assert features.shape == (n, len(self.features)) and features.dtype == np.int8
        assert targets.shape == (n, len(self.targets)) and targets.dtype == np.float32
        self._features_out.write(np.ascontiguousarray(features).tobytes())
        self._targets_out.write(np.ascontiguousarray(targets).tobytes())
        self._ids.append(pl.DataFrame({schema.ID: ids, schema.ERA: [stats.era] * n}))
        stats.row_start, stats.row_end = self.n_rows, self.n_rows + n
        self._eras.append(stats)
        self.n_rows += n

    @property
    def era_stats(self) -> list[EraStats]:
        return list(self._eras)

    def close(self) -> None:
        self._features_out.close()
        self._targets_out.close()
        ids = (
            pl.concat(self._ids)
            if self._ids
            else pl.DataFrame(schema={schema.ID: pl.String, schema.ERA: pl.String})
        )
        ids.write_parquet(self.path / IDS_TABLE)
        eras = pl.DataFrame([dataclasses.asdict(s) for s in self._eras], schema=_ERA_SCHEMA)
        eras.write_parquet(self.path / ERAS_TABLE)
        manifest = {
            "format": FORMAT_VERSION,
            "features": self.features,
            "targets": self.targets,
            "rows": self.n_rows,
            "eras": len(self._eras),
            **self.metadata,
        }
        (self.path / MANIFEST).write_text(json.dumps(manifest, indent=2))


_ERA_SCHEMA = {
    "era": pl.String,
    "data_type": pl.String,
    "resolved": pl.Boolean,
    "row_start": pl.Int64,
    "row_end": pl.Int64,
    "missing_values": pl.Int64,
    "unavailable_features": pl.Int64,
    "missing_cells": pl.Int64,
}


class EraStore:
    """Read side, era by era."""

    def __init__(self, path: Path):
        self.path = Path(path).resolve()
        manifest_path = self.path / MANIFEST
        if not manifest_path.exists():
            raise FileNotFoundError(f"{self.path}: no cleaned data here (materialise clean_eras first)")
        self.manifest = json.loads(manifest_path.read_text())
        self.features: list[str] = self.manifest["features"]
        self.targets: list[str] = self.manifest["targets"]
        self.n_rows: int = self.manifest["rows"]
        # The dataset version the store was cleaned from ("v5.3"); None for stores written before
        # versions were recorded.
        self.dataset_version: str | None = self.manifest.get("dataset_version")
        self.era_table = pl.read_parquet(self.path / ERAS_TABLE)
        self._rows = {row["era"]: row for row in self.era_table.iter_rows(named=True)}
        self._ids: pl.DataFrame | None = None

    @property
    def eras(self) -> list[str]:
        return list(self._rows)

    def resolved_eras(self) -> list[str]:
        """Eras whose main target is known (data_type train or validation)."""
        return [era for era, row in self._rows.items() if row["resolved"]]

    def row_count(self, eras: list[str] | tuple[str, ...]) -> int:
        """Rows (stocks) in `eras`, from the era table alone."""
        return sum(self._rows[era]["row_end"] - self._rows[era]["row_start"] for era in eras)

    def era(self, era: str) -> EraSlice:
        if era not in self._rows:
            raise KeyError(f"era {era!r} is not in {self.path}")
        row = self._rows[era]
        rows = slice(row["row_start"], row["row_end"])
        if self._ids is None:
            self._ids = pl.read_parquet(self.path / IDS_TABLE)
        return EraSlice(
            era=era,
            data_type=row["data_type"],
            resolved=row["resolved"],
            ids=self._ids[schema.ID][rows].to_list(),
            features=_read_rows(self.path / FEATURES_BIN, np.int8, len(self.features), rows),
            targets=_read_rows(self.path / TARGETS_BIN, np.float32, len(self.targets), rows),
        )

    def target_index(self, target: str) -> int:
        if target not in self.targets:
            raise KeyError(f"target {target!r} is not in {self.path}; it has {self.targets}")
        return self.targets.index(target)

    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())


def _read_rows(path: Path, dtype: type, width: int, rows: slice) -> np.ndarray:
    """Rows `rows` of a (rows, width) binary array, read from disk into a fresh array.

    A positioned read rather than a memory map: a pass over the whole store (an epoch, the
    feature returns) would otherwise leave every page it touched mapped into the process, and
    its resident memory would grow to the size of the store.
    """
    n = rows.stop - rows.start
    if n == 0 or width == 0:
        return np.zeros((n, width), dtype=dtype)
    itemsize = np.dtype(dtype).itemsize
    values = np.fromfile(path, dtype=dtype, count=n * width, offset=rows.start * width * itemsize)
    if values.size != n * width:
        raise ValueError(f"{path}: truncated (wanted rows {rows.start}..{rows.stop})")
    return values.reshape(n, width)

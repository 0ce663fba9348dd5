"""Parquet output of the simulator: the files' schemas, row-group buffering, atomic publication.

Files carry pandas metadata making `id` the index, as the real Numerai files do.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from model_core import schema

if TYPE_CHECKING:
    from tournament_sim.simulation import EraBlock

COMPRESSION = "zstd"  # what the real files use; small and fast to read


@dataclasses.dataclass(frozen=True)
class FileSchemas:
    """The schemas of the files, and how one era becomes a table of each."""

    data: pa.Schema
    benchmarks: pa.Schema
    meta_model: pa.Schema
    oracle: pa.Schema

    @classmethod
    def build(cls, features: list[str], targets: list[str], benchmark_models: tuple[str, ...]) -> FileSchemas:
        keys = [(schema.ID, pa.string()), (schema.ERA, pa.string())]
        return cls(
            data=_id_indexed(
                [*keys, (schema.DATA_TYPE, pa.string())]
                + [(name, pa.int8()) for name in features]
                + [(name, pa.float32()) for name in targets]
            ),
            benchmarks=_id_indexed(keys + [(name, pa.float32()) for name in benchmark_models]),
            meta_model=_id_indexed(
                [*keys, (schema.DATA_TYPE, pa.string()), (schema.META_MODEL_COLUMN, pa.float32())]
            ),
            oracle=pa.schema([*keys, (schema.PREDICTION, pa.float32())]),
        )

    def data_table(self, block: EraBlock, era: str) -> pa.Table:
        n = len(block.ids)
        null_masks: dict[int, np.ndarray] = {}
        for feature, row in zip(*block.null_cells, strict=True):
            null_masks.setdefault(int(feature), np.zeros(n, dtype=bool))[row] = True
        missing = block.missing_features
        features = [
            pa.nulls(n, pa.int8())
            if missing is not None and missing[k]
            else pa.array(values, mask=null_masks.get(k))
            for k, values in enumerate(block.features)
        ]
        targets = [pa.array(values, from_pandas=True) for values in block.targets]  # NaN -> null
        columns = [*_keys(block, era), pa.repeat(block.data_type, n), *features, *targets]
        return pa.Table.from_arrays(columns, schema=self.data)

    def benchmarks_table(self, block: EraBlock, era: str) -> pa.Table:
        return pa.Table.from_arrays([*_keys(block, era), *block.benchmarks], schema=self.benchmarks)

    def meta_model_table(self, block: EraBlock, era: str) -> pa.Table:
        columns = [*_keys(block, era), pa.repeat(block.data_type, len(block.ids)), block.meta_model]
        return pa.Table.from_arrays(columns, schema=self.meta_model)

    def oracle_table(self, block: EraBlock, era: str) -> pa.Table:
        return pa.Table.from_arrays([*_keys(block, era), block.oracle], schema=self.oracle)


def _keys(block: EraBlock, era: str) -> list[pa.Array]:
    return [pa.array(block.ids, pa.string()), pa.repeat(era, len(block.ids))]


def _id_indexed(fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    """A schema with the pandas metadata of the real files: pandas reads `id` as the index."""
    plain = pa.schema(fields)
    frame = plain.empty_table().to_pandas().set_index(schema.ID)
    return plain.with_metadata(pa.Schema.from_pandas(frame, preserve_index=True).metadata)


class RowGroupWriter:
    """Writes one parquet file era by era, `eras_per_group` eras per row group: one group per era
    would bloat the footer at full scale, one for the whole file would hold it all in memory. The
    file only appears under its name once complete."""

    def __init__(self, path: Path, file_schema: pa.Schema, eras_per_group: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.eras_per_group = path, eras_per_group
        self._tmp = path.with_name(f".{path.name}.tmp")
        self._writer = pq.ParquetWriter(self._tmp, file_schema, compression=COMPRESSION)
        self._buffer: list[pa.Table] = []

    def add(self, table: pa.Table) -> None:
        self._buffer.append(table)
        if len(self._buffer) >= self.eras_per_group:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            table = pa.concat_tables(self._buffer)
            self._buffer = []
            self._writer.write_table(table, row_group_size=table.num_rows)

    def __enter__(self) -> RowGroupWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self._flush()
        finally:
            self._writer.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def write_table(path: Path, table: pa.Table) -> None:
    publish(path, lambda tmp: pq.write_table(table, tmp, compression=COMPRESSION))


def publish(path: Path, write: Callable[[Path], object]) -> None:
    """`write` a temporary sibling of `path`, then rename it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

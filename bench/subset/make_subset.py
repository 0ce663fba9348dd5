"""A full-width subset (100 eras x 4,800 stocks x 2,748 int8 features) for the memory comparison."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

rng = np.random.default_rng(0)
F, eras, n = 2748, 100, 4800
names = [f"feature_{i:04d}" for i in range(F)]
schema = pa.schema(
    [("id", pa.string()), ("era", pa.string()), ("data_type", pa.string())]
    + [(f, pa.int8()) for f in names]
    + [("target", pa.float32())]
)
with pq.ParquetWriter("/tmp/subset/train.parquet", schema, compression="zstd") as w:
    for g in range(0, eras, 20):
        rows = 20 * n
        cols = [
            pa.array([f"n{g:04d}{i:011x}" for i in range(rows)]),
            pa.array([f"{g + i // n + 1:04d}" for i in range(rows)]),
            pa.array(["train"] * rows),
        ]
        x = rng.integers(0, 5, size=(rows, F), dtype=np.int8)
        cols += [pa.array(x[:, j]) for j in range(F)]
        cols.append(pa.array(rng.choice([0, 0.25, 0.5, 0.75, 1.0], size=rows).astype(np.float32)))
        w.write_table(pa.Table.from_arrays(cols, schema=schema))
Path("/tmp/subset/features.json").write_text(
    json.dumps({"feature_sets": {"all": names}, "targets": ["target"]})
)

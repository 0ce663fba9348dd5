"""Our cleaner on the subset: `python bench/subset/clean_subset.py ERAS_PER_CHUNK`."""

import json
import shutil
import sys
import time
from pathlib import Path

from model_core.clean import CleanConfig, clean_files

names = json.loads(Path("/tmp/subset/features.json").read_text())["feature_sets"]["all"]
out = Path("/tmp/subset/store")
shutil.rmtree(out, ignore_errors=True)
out.mkdir()
t = time.time()
s = clean_files(
    [Path("/tmp/subset/train.parquet")],
    names,
    ["target"],
    out,
    config=CleanConfig(eras_per_chunk=int(sys.argv[1])),
)
print("ours", s.rows, round(time.time() - t, 1), "s")

"""The example scripts way on the subset: pandas read_parquet of the features, cast to float32."""

import json
import time
from pathlib import Path

import pandas as pd

names = json.loads(Path("/tmp/subset/features.json").read_text())["feature_sets"]["all"]
t = time.time()
df = pd.read_parquet("/tmp/subset/train.parquet", columns=["era", "target", *names])
df[names] = df[names].astype("float32")
print("pandas", len(df), round(time.time() - t, 1), "s")

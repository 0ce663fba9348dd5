"""Hand-made raw tournament files for cleaning tests: small enough to reason about row by row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

FEATURES = ["feature_alpha", "feature_beta", "feature_gamma"]
TARGETS = ["target", "target_ender_20", "target_jasper_60"]


def raw_frame(
    eras: list[str], rows_per_era: int = 10, data_type: str = "train", seed: int = 0
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(eras) * rows_per_era
    frame = {
        "id": [f"n{seed:03d}{i:012x}" for i in range(n)],
        "era": [e for e in eras for _ in range(rows_per_era)],
        "data_type": [data_type] * n,
    }
    for feature in FEATURES:
        frame[feature] = np.tile(np.arange(rows_per_era) % 5, len(eras)).astype(np.int8)
        rng.shuffle(frame[feature])
    target = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=n).astype(np.float32)
    frame["target"] = target
    frame["target_ender_20"] = target
    frame["target_jasper_60"] = rng.choice([0.0, 0.5, 1.0], size=n).astype(np.float32)
    return pl.DataFrame(frame).with_columns([pl.col(f).cast(pl.Int8) for f in FEATURES])


def write_dataset(raw_dir: Path, train: pl.DataFrame, validation: pl.DataFrame) -> Path:
    raw_dir.mkdir(parents=True, exist_ok=True)
    train.write_parquet(raw_dir / "train.parquet")
    validation.write_parquet(raw_dir / "validation.parquet")
    feature_sets = {"small": FEATURES[:2], "medium": FEATURES, "all": FEATURES, "serenity": FEATURES[2:]}
    (raw_dir / "features.json").write_text(json.dumps({"feature_sets": feature_sets, "targets": TARGETS}))
    return raw_dir

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


def store_from_frame(tmp_path: Path, data: pl.DataFrame, validation_eras: int):
    """An era store cleaned from `data` (one target, every feature_* column in `all`): its last
    `validation_eras` eras written as validation.parquet, the rest as train.parquet."""
    from model_core.clean import CleanConfig, build_era_store

    cut = sorted(data["era"].unique())[-validation_eras]
    data = data.with_columns(pl.lit("train").alias("data_type"))
    raw = tmp_path / "raw"
    raw.mkdir()
    data.filter(pl.col("era") < cut).write_parquet(raw / "train.parquet")
    data.filter(pl.col("era") >= cut).with_columns(pl.lit("validation").alias("data_type")).write_parquet(
        raw / "validation.parquet"
    )
    names = [c for c in data.columns if c.startswith("feature_")]
    (raw / "features.json").write_text(json.dumps({"feature_sets": {"all": names}, "targets": ["target"]}))
    return build_era_store(raw, tmp_path / "clean" / "current", CleanConfig(feature_set="all"))[0]

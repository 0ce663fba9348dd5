"""Data of the replay benchmark (bench/replay.py): the simulated tournament (generated once per
scale and seed, cached), its replay, the served resolved eras the baselines train on, the live
eras they predict, and the held-out answers.

Features stay int8 (nulls -> 2, the example scripts' neutral value); targets float32.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from model_core import schema
from tournament_sim.generate import generate_tournament
from tournament_sim.layout import STATE_FILE, round_file
from tournament_sim.replay import ReplayManifest, answers_path, make_replay

GENERATED_FILE = "generated.json"  # written last in a cached source: how long it took


# The version the recorded results (bench/RESULTS.md) were measured on: its v5.2 files are
# byte-identical to those of before v5.3 existed, so a cached source and new runs stay comparable.
REPLAY_DATA_VERSION = "v5.2"


def ensure_source(
    work: Path, scale: str, seed: int, data_version: str = REPLAY_DATA_VERSION
) -> tuple[Path, float, bool]:
    """The generated tournament for (scale, seed, version) under `work`: (path, generation
    seconds, cached). Generated into a temporary sibling and renamed, so a cache is complete or
    absent. A v5.2 source keeps the name it had before there were versions (the same files)."""
    name = f"source-{scale}-{seed}" + ("" if data_version == REPLAY_DATA_VERSION else f"-{data_version}")
    path = work / name
    marker = path / GENERATED_FILE
    if marker.is_file() and (path / STATE_FILE).is_file():
        return path, json.loads(marker.read_text())["seconds"], True
    tmp = work / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
    print(f"[replay] generating the {scale!r} tournament, seed {seed}, {data_version}", flush=True)
    started = time.perf_counter()
    generate_tournament(tmp, scale, seed, data_version=data_version)
    seconds = time.perf_counter() - started
    (tmp / GENERATED_FILE).write_text(json.dumps({"scale": scale, "seed": seed, "seconds": seconds}))
    tmp.rename(path)
    return path, seconds, False


def fresh_replay(
    source: Path, replay_dir: Path, holdout: int, unresolved: int, live_era_label: str
) -> tuple[ReplayManifest, float]:
    """A new replay (uploads and rounds of an earlier run are removed with the old one)."""
    shutil.rmtree(replay_dir, ignore_errors=True)
    started = time.perf_counter()
    manifest = make_replay(source, replay_dir, holdout, unresolved, live_era_label)
    return manifest, time.perf_counter() - started


def feature_sets(replay_dir: Path) -> dict[str, list[str]]:
    features_json = replay_dir / dataset_version(replay_dir) / schema.FEATURES_JSON
    return json.loads(features_json.read_text())[schema.FEATURE_SETS_KEY]


def _int8_features(frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    return (
        frame.select(pl.col(features).fill_null(schema.FEATURE_NEUTRAL))
        .to_numpy()
        .astype(np.int8, copy=False)
    )


@dataclasses.dataclass
class Served:
    """Every served era with a known `target` (train + resolved validation), in era order."""

    features: list[str]  # column order of x: features.json's `all`
    x: np.ndarray  # (rows, F) int8
    y: np.ndarray  # (rows,) float32
    eras: np.ndarray  # (rows,) era label of each row
    era_list: list[str]

    def era_slices(self) -> list[tuple[str, slice]]:
        starts = np.flatnonzero(np.r_[True, self.eras[1:] != self.eras[:-1]])
        ends = np.r_[starts[1:], len(self.eras)]
        return [(str(self.eras[s]), slice(int(s), int(e))) for s, e in zip(starts, ends, strict=True)]


def load_served(replay_dir: Path, manifest: ReplayManifest) -> Served:
    features = feature_sets(replay_dir)["all"]
    version = replay_dir / dataset_version(replay_dir)
    files = [version / schema.TRAIN_FILE, version / schema.VALIDATION_FILE]
    frame = (
        pl.concat([pl.scan_parquet(f).select(schema.ERA, schema.MAIN_TARGET, *features) for f in files])
        .filter(pl.col(schema.MAIN_TARGET).is_not_null())
        .collect()
    )
    eras = frame[schema.ERA].to_numpy()
    if (eras[1:] < eras[:-1]).any():
        raise ValueError(f"{replay_dir}: served rows are not in era order")
    found = sorted(set(eras.tolist()))
    if found != manifest.resolved_eras:
        raise ValueError(
            f"{replay_dir}: the served eras with a target ({found[0]}..{found[-1]}, {len(found)}) are not "
            f"the manifest's resolved eras ({len(manifest.resolved_eras)})"
        )
    y = frame[schema.MAIN_TARGET].to_numpy().astype(np.float32)
    x = _int8_features(frame, features)
    return Served(features, x, y, eras, found)


def dataset_version(replay_dir: Path) -> str:
    return json.loads((replay_dir / STATE_FILE).read_text())["dataset_version"]


@dataclasses.dataclass
class LiveEra:
    """One held-out round as the service sees it: the live file's ids and int8 features."""

    round: int
    era: str  # the true era (from the manifest)
    ids: pd.Index
    x: np.ndarray  # (n, F) int8 in the order of `Served.features`


def load_live(replay_dir: Path, manifest: ReplayManifest, features: list[str]) -> list[LiveEra]:
    """The live file of each held-out round, of the version `load_served` reads."""
    out = []
    version = dataset_version(replay_dir)
    for number, era in sorted(manifest.rounds.items(), key=lambda item: int(item[0])):
        frame = pl.read_parquet(round_file(replay_dir, int(number), version, schema.LIVE_FILE))
        ids = pd.Index(frame[schema.ID].to_list(), name=schema.ID)
        out.append(LiveEra(int(number), era, ids, _int8_features(frame, features)))
    return out


def load_answers(replay_dir: Path) -> pd.DataFrame:
    """round, id (index), era, target, benchmark models, meta model, oracle."""
    return pd.read_parquet(answers_path(replay_dir)).set_index(schema.ID)


def benchmark_column(manifest: ReplayManifest) -> str:
    """The column BMC is measured against: the first `*_ender20` benchmark (the service's default)."""
    for name in manifest.benchmark_models:
        if name.endswith("_ender20"):
            return name
    raise ValueError(f"no *_ender20 benchmark model among {manifest.benchmark_models}")

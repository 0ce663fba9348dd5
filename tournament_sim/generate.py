"""Generate a simulated Numerai tournament (one dataset version's files, its live rounds, the
oracle, the state), or add another dataset version to one.

    state = generate_tournament(Path("/tmp/sim"), "demo", seed=0, data_version="v5.2")
    add_version(Path("/tmp/sim"), "v5.3")  # the same tournament, now offering v5.2 and v5.3

`Simulation` (simulation.py) assembles the eras; this module streams them era by era into parquet
files laid out as `layout.py` describes, buffering at most one row group, so even the full-size
data set (6.6M rows x 3,555 features) stays within a few GB of memory.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from model_core import schema
from tournament_sim.layout import (
    ORACLE_DIR,
    Recipe,
    SimState,
    load_state,
    offered_versions,
    round_file,
    round_window,
    save_state,
)
from tournament_sim.parquet_out import FileSchemas, RowGroupWriter, publish, write_table
from tournament_sim.scale import SCALES, Scale, resolve_scale
from tournament_sim.simulation import DATA_TYPE_UNRESOLVED, EraBlock, Simulation
from tournament_sim.versions import LATEST_VERSION, resolve_version
from tournament_sim.world import TARGETS

# Importable from here as before the split into scale.py and simulation.py.
__all__ = [
    "DATA_TYPE_UNRESOLVED",
    "LIVE_ERA_LABELS",
    "SCALES",
    "Scale",
    "Simulation",
    "add_version",
    "generate_tournament",
    "resolve_scale",
]

LIVE_ERA_LABELS = ("number", "X")  # how a live file labels its era: "0803"-style, or "X"

Progress = Callable[[str], None]


def generate_tournament(
    out_dir: Path,
    scale: str | Scale = "tiny",
    seed: int = 0,
    *,
    data_version: str = LATEST_VERSION,
    live_era_label: str = "number",
    models: dict[str, str] | None = None,
    first_round: int = 1000,
    window_minutes: float = 60.0,
    progress: Progress | None = None,
) -> SimState:
    """Write a whole simulated tournament of one dataset version under `out_dir` (see layout.py)
    and return its state: round `first_round` is open, rounds up to `first_round + n_rounds - 1`
    have live files. `add_version` adds the other versions of the same tournament."""
    scale = resolve_scale(scale)
    version = resolve_version(data_version)
    if live_era_label not in LIVE_ERA_LABELS:
        raise ValueError(f"live_era_label {live_era_label!r}: choose one of {LIVE_ERA_LABELS}")
    models = default_models(seed) if models is None else dict(models)
    if not models:
        raise ValueError("models: the account needs at least one model (name -> id)")
    out_dir = Path(out_dir)
    sim = Simulation(scale, seed, data_version=version.name)
    write_version(out_dir, sim, first_round, live_era_label, progress, with_oracle=True)
    state = SimState(
        dataset_version=version.name,
        first_round=first_round,
        last_round=first_round + scale.n_rounds - 1,
        current=round_window(first_round, window_minutes),
        models=models,
        recipe=Recipe(scale=scale.to_record(), seed=seed, live_era_label=live_era_label),
    )
    save_state(out_dir, state)
    return state


def add_version(sim_dir: Path, data_version: str, progress: Progress | None = None) -> SimState:
    """Write another dataset version of the tournament in `sim_dir`: its world redrawn from the
    recipe in sim_state.json (same eras, ids and targets, the same values for the features the
    versions share), with the round files of every generated round. The current round, the models
    and the uploads stay as they are; `dataset_version` becomes the newest version offered."""
    sim_dir = Path(sim_dir)
    version = resolve_version(data_version)
    state = load_state(sim_dir)
    if state.recipe is None:
        raise ValueError(
            f"{sim_dir}: sim_state.json does not record the scale and seed the tournament was drawn "
            "from (a replay, or generated before versions could be added): generate it again"
        )
    offered = offered_versions(sim_dir)
    if version.name in offered:
        raise ValueError(f"{sim_dir}: already offers {version.name} (offered versions: {', '.join(offered)})")
    recipe = state.recipe
    sim = Simulation(Scale.from_record(recipe.scale), recipe.seed, data_version=version.name)
    write_version(sim_dir, sim, state.first_round, recipe.live_era_label, progress, with_oracle=False)
    state = load_state(sim_dir)  # again: advance-round may have run in another process meanwhile
    state.dataset_version = offered_versions(sim_dir)[-1]
    save_state(sim_dir, state)
    return state


def write_version(
    out_dir: Path,
    sim: Simulation,
    first_round: int,
    live_era_label: str,
    progress: Progress | None,
    *,
    with_oracle: bool,
) -> None:
    """The files of `sim`'s dataset version: DIR/<version>/, its round files, and the oracle if
    `with_oracle` (the versions share it). features.json comes last: the stand-in offers a version
    only once all its files are there."""
    scale, version, report = sim.scale, sim.version, progress or (lambda _message: None)
    version_dir = out_dir / version.name
    version_dir.mkdir(parents=True, exist_ok=True)
    feature_sets = sim.feature_sets()
    targets = [spec.name for spec in TARGETS]
    schemas = FileSchemas.build(feature_sets["all"], targets, version.benchmark_models)
    n_eras = {
        schema.DATA_TYPE_TRAIN: scale.n_train_eras,
        schema.DATA_TYPE_VALIDATION: scale.n_validation_eras,
    }
    with contextlib.ExitStack() as stack:

        def writer(path: Path, file_schema: pa.Schema) -> RowGroupWriter:
            return stack.enter_context(RowGroupWriter(path, file_schema, scale.row_group_eras))

        data = {
            schema.DATA_TYPE_TRAIN: writer(version_dir / schema.TRAIN_FILE, schemas.data),
            schema.DATA_TYPE_VALIDATION: writer(version_dir / schema.VALIDATION_FILE, schemas.data),
        }
        oracle = {
            split: writer(out_dir / ORACLE_DIR / f"{split}.parquet", schemas.oracle)
            for split in (data if with_oracle else ())
        }
        benchmarks = writer(version_dir / schema.VALIDATION_BENCHMARKS_FILE, schemas.benchmarks)
        meta_model = writer(version_dir / schema.META_MODEL_FILE, schemas.meta_model)
        for block in sim.eras():
            era = schema.era_label(block.number)
            if block.data_type == schema.DATA_TYPE_LIVE:
                number = first_round + block.number - scale.last_validation_era - 1
                live_era = era if live_era_label == "number" else "X"
                write_live_round(out_dir, number, version.name, block, live_era, schemas, with_oracle)
                report(f"{version.name} live: round {number} (era {era})")
                continue
            is_train = block.data_type == schema.DATA_TYPE_TRAIN
            split = schema.DATA_TYPE_TRAIN if is_train else schema.DATA_TYPE_VALIDATION
            data[split].add(schemas.data_table(block, era))
            if with_oracle:
                oracle[split].add(schemas.oracle_table(block, era))
            if not is_train:
                benchmarks.add(schemas.benchmarks_table(block, era))
                if block.meta_model is not None:
                    meta_model.add(schemas.meta_model_table(block, era))
            index = block.number - (0 if is_train else scale.n_train_eras)
            if index % max(1, n_eras[split] // 10) == 0 or index == n_eras[split]:
                report(f"{version.name} {split}: era {index:04d}/{n_eras[split]:04d}")
    features_json = json.dumps({schema.FEATURE_SETS_KEY: feature_sets, schema.TARGETS_KEY: targets})
    publish(version_dir / schema.FEATURES_JSON, lambda tmp: tmp.write_text(features_json))


def default_models(seed: int) -> dict[str, str]:
    """Two account models with ids that are uuids drawn from the seed."""
    rng = np.random.default_rng([seed, 0x6D6F64656C])  # a stream of its own ("model")
    return {name: str(uuid.UUID(bytes=rng.bytes(16), version=4)) for name in ("sim_model", "sim_model_b")}


def write_live_round(
    out_dir: Path,
    number: int,
    version: str,
    block: EraBlock,
    live_era: str,
    schemas: FileSchemas,
    with_oracle: bool,
) -> None:
    """One live round of one version: the live era (labelled `live_era`), its benchmarks, and the
    oracle if `with_oracle` (whose era column keeps the true era number)."""
    write_table(round_file(out_dir, number, version, schema.LIVE_FILE), schemas.data_table(block, live_era))
    write_table(
        round_file(out_dir, number, version, schema.LIVE_BENCHMARKS_FILE),
        schemas.benchmarks_table(block, live_era),
    )
    if with_oracle:
        write_table(
            out_dir / ORACLE_DIR / f"live_{number}.parquet",
            schemas.oracle_table(block, schema.era_label(block.number)),
        )

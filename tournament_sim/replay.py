"""Walk-forward replay of a simulated tournament: hold out its last resolved eras as live rounds.

    manifest = make_replay(Path("/tmp/sim"), Path("/tmp/replay"), holdout=40)

From a generated tournament (`generate.py`), the last `holdout` resolved validation eras become
rounds `first_round`, `first_round + 1`, ... (one live era each, targets null), and the served
dataset is everything before the first of them (the cut), as Numerai's files looked then:

- train eras as they are; validation eras before the cut, where the last `unresolved` eras have
  null targets and data_type "test" (not resolved yet), and a target with a longer horizon is
  null in as many more eras as it needs beyond the 20-day one (8 more for a 60-day target);
- `validation_benchmark_models.parquet` cut at the same era, `meta_model.parquet` kept for the
  resolved served eras only;
- nothing after the cut: the source's eras after the held-out block, its live rounds and its
  oracle are not copied.

Every dataset version the source offers is replayed alike (they share eras and ids): each gets
its served files under `DIR/<version>/` and its live files under `DIR/rounds/<n>/<version>/`.

The held-out answers (id, round, true era, `target`, the benchmark models of every version, the
meta model, the oracle) go to `DIR/answers/`, which the stand-in never serves (`graphql_api.download_path` hands
out dataset and round files only). The output follows `layout.py`, so `sim serve DIR` and
`sim advance-round DIR` work on it unchanged. Files are read one row group at a time (never as a
whole, never as floats) and written atomically; `sim_state.json` is written last, so a replay
interrupted halfway cannot be served.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from model_core import schema
from tournament_sim.generate import DATA_TYPE_UNRESOLVED, LIVE_ERA_LABELS
from tournament_sim.layout import (
    ORACLE_DIR,
    STATE_FILE,
    SimState,
    load_state,
    offered_versions,
    round_file,
    round_window,
    save_state,
    write_text_atomic,
)
from tournament_sim.parquet_out import RowGroupWriter, publish, write_table

ANSWERS_DIR = "answers"  # never served: see graphql_api.download_path
ANSWERS_FILE = "answers.parquet"
MANIFEST_FILE = "replay.json"
ROUND = "round"
ORACLE_COLUMN = "oracle"
MAIN_HORIZON = schema.ERAS_PER_HORIZON[20]
ERAS_PER_GROUP = 20  # eras per row group of the rewritten files, as the generator writes them


@dataclasses.dataclass(frozen=True)
class ReplayManifest:
    """What a replay holds; written to DIR/answers/replay.json."""

    source: str
    holdout: int
    unresolved: int
    live_era_label: str
    cut_era: str  # the first held-out era: nothing from it on is served
    served_eras: list[str]  # train + validation eras of the served files, in order
    resolved_eras: list[str]  # served eras whose `target` is known
    unresolved_eras: list[str]  # served eras with null targets (data_type "test")
    rounds: dict[str, str]  # round number -> the true era of its live file
    first_round: int
    last_round: int
    benchmark_models: list[str]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def load(cls, replay_dir: Path) -> ReplayManifest:
        return cls(**json.loads((Path(replay_dir) / ANSWERS_DIR / MANIFEST_FILE).read_text()))


@dataclasses.dataclass(frozen=True)
class ServedVersion:
    """Where one dataset version of the replay is read from and written to."""

    src: Path  # SOURCE/<version>
    dst: Path  # OUT/<version>
    out_dir: Path  # OUT, whose rounds/<n>/<version>/ get the held-out eras
    version: str

    def round_file(self, number: int, name: str) -> Path:
        return round_file(self.out_dir, number, self.version, name)


def make_replay(
    source_dir: Path,
    out_dir: Path,
    holdout: int = 40,
    unresolved: int = MAIN_HORIZON,
    live_era_label: str = "number",
    first_round: int | None = None,
    window_minutes: float = 60.0,
) -> ReplayManifest:
    """Write the replay of the tournament in `source_dir` to `out_dir` (absent or empty)."""
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    if live_era_label not in LIVE_ERA_LABELS:
        raise ValueError(f"live_era_label {live_era_label!r}: choose one of {LIVE_ERA_LABELS}")
    if holdout < 1 or unresolved < 0:
        raise ValueError(f"holdout {holdout} must be >= 1 and unresolved {unresolved} >= 0")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: not empty; a replay is written into a fresh directory")
    state = load_state(source_dir)
    first_round = state.first_round if first_round is None else first_round
    versions = offered_versions(source_dir)
    if not versions:
        raise FileNotFoundError(f"{source_dir}: no dataset version (no v<major>.<minor>/features.json)")
    # The versions share eras, ids and targets: the newest one tells which eras to hold out.
    src = source_dir / versions[-1]
    validation_eras, resolved = _validation_eras(src / schema.VALIDATION_FILE)
    held = resolved[-holdout:]
    served_validation = [era for era in validation_eras if era < held[0]]
    if len(resolved) < holdout or len(served_validation) <= unresolved:
        raise ValueError(
            f"{src / schema.VALIDATION_FILE}: {len(resolved)} resolved validation eras cannot give "
            f"{holdout} held-out eras and still serve more than {unresolved} validation eras before them"
        )
    targets = json.loads((src / schema.FEATURES_JSON).read_text())[schema.TARGETS_KEY]
    # A target of horizon h eras is unknown in the last `unresolved + h - 4` served eras.
    null_eras = {name: _last(served_validation, unresolved + _extra_eras(name)) for name in targets}
    unresolved_eras = _last(served_validation, unresolved)
    resolved_served = [era for era in served_validation if era not in unresolved_eras]
    rounds = {era: first_round + k for k, era in enumerate(held)}
    benchmark_models: dict[str, None] = {}  # ordered, in case two versions share a benchmark
    for version in versions:
        served = ServedVersion(source_dir / version, out_dir / version, out_dir, version)
        served.dst.mkdir(parents=True, exist_ok=True)
        for name in (schema.FEATURES_JSON, schema.TRAIN_FILE):
            publish(served.dst / name, lambda tmp, path=served.src / name: shutil.copyfile(path, tmp))
        _write_validation(served, rounds, null_eras, unresolved_eras, live_era_label)
        benchmark_models.update(dict.fromkeys(_write_benchmarks(served, rounds, live_era_label)))
        meta = served.src / schema.META_MODEL_FILE
        if meta.is_file():
            _copy_eras(meta, served.dst / schema.META_MODEL_FILE, set(resolved_served))
    train_eras = _eras(src / schema.TRAIN_FILE)
    manifest = ReplayManifest(
        source=str(source_dir.resolve()),
        holdout=holdout,
        unresolved=unresolved,
        live_era_label=live_era_label,
        cut_era=held[0],
        served_eras=train_eras + served_validation,
        resolved_eras=train_eras + resolved_served,
        unresolved_eras=sorted(unresolved_eras),
        rounds={str(number): era for era, number in rounds.items()},
        first_round=first_round,
        last_round=first_round + holdout - 1,
        benchmark_models=list(benchmark_models),
    )
    _write_answers(source_dir, versions, out_dir, rounds)
    write_text_atomic(out_dir / ANSWERS_DIR / MANIFEST_FILE, manifest.to_json())
    save_state(
        out_dir,
        SimState(
            dataset_version=versions[-1],
            first_round=first_round,
            last_round=manifest.last_round,
            current=round_window(first_round, window_minutes),
            models=dict(state.models),
            public_id=state.public_id,
            secret_key=state.secret_key,
        ),
    )
    return manifest


def answers_path(replay_dir: Path) -> Path:
    return Path(replay_dir) / ANSWERS_DIR / ANSWERS_FILE


# ---------------------------------------------------------------------------------------------
# Reading


def _row_groups(path: Path, columns: list[str] | None = None) -> Iterator[pa.Table]:
    parquet = pq.ParquetFile(path)
    for index in range(parquet.metadata.num_row_groups):
        yield parquet.read_row_group(index, columns=columns)


def _eras(path: Path) -> list[str]:
    return sorted(
        {era for group in _row_groups(path, [schema.ERA]) for era in group[schema.ERA].unique().to_pylist()}
    )


def _validation_eras(path: Path) -> tuple[list[str], list[str]]:
    """(every era of the file, those with data_type validation and a non-null `target`), sorted."""
    every, resolved = set(), set()
    for group in _row_groups(path, [schema.ERA, schema.DATA_TYPE, schema.MAIN_TARGET]):
        every.update(group[schema.ERA].unique().to_pylist())
        scored = pc.and_(
            pc.equal(group[schema.DATA_TYPE], schema.DATA_TYPE_VALIDATION),
            pc.is_valid(group[schema.MAIN_TARGET]),
        )
        resolved.update(group.filter(scored)[schema.ERA].unique().to_pylist())
    return sorted(every), sorted(resolved)


def _last(eras: list[str], n: int) -> set[str]:
    return set(eras[max(0, len(eras) - n) :]) if n > 0 else set()


def _extra_eras(target: str) -> int:
    return schema.target_horizon_eras(target) - MAIN_HORIZON


def _complete_eras(path: Path, columns: list[str] | None = None) -> Iterator[tuple[str, pa.Table]]:
    """(era, all its rows) in file order, one row group read at a time; an era split across row
    groups is held back until a row group without it (or the end) shows it is complete."""
    pending: dict[str, list[pa.Table]] = {}
    for group in _row_groups(path, columns):
        eras = group[schema.ERA].unique().to_pylist()
        for era in [e for e in pending if e not in eras]:
            yield era, pa.concat_tables(pending.pop(era))
        for era in eras:
            pending.setdefault(era, []).append(group.filter(pc.equal(group[schema.ERA], era)))
    for era, parts in pending.items():
        yield era, pa.concat_tables(parts)


# ---------------------------------------------------------------------------------------------
# Writing


def _set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), values)


def _live_table(table: pa.Table, era: str) -> pa.Table:
    """One held-out era as a live file: data_type live, targets null, era labelled `era`."""
    n = table.num_rows
    table = _set_column(table, schema.ERA, pa.repeat(pa.scalar(era, pa.string()), n))
    table = _set_column(table, schema.DATA_TYPE, pa.repeat(pa.scalar(schema.DATA_TYPE_LIVE, pa.string()), n))
    for field in table.schema:
        if schema.is_target(field.name):
            table = _set_column(table, field.name, pa.nulls(n, field.type))
    return table


def _served_table(
    table: pa.Table, era: str, null_eras: dict[str, set[str]], unresolved_eras: set[str]
) -> pa.Table:
    """A served validation era: targets not known by the cut are null; unresolved eras are "test"."""
    n = table.num_rows
    for name, eras in null_eras.items():
        if era in eras:
            table = _set_column(table, name, pa.nulls(n, table.schema.field(name).type))
    if era in unresolved_eras:
        unresolved = pa.repeat(pa.scalar(DATA_TYPE_UNRESOLVED, pa.string()), n)
        table = _set_column(table, schema.DATA_TYPE, unresolved)
    return table


def _live_label(era: str, live_era_label: str) -> str:
    return era if live_era_label == "number" else "X"


def _write_validation(
    version: ServedVersion,
    rounds: dict[str, int],
    null_eras: dict[str, set[str]],
    unresolved_eras: set[str],
    live_era_label: str,
) -> None:
    path = version.src / schema.VALIDATION_FILE
    cut = min(rounds)
    file_schema = pq.ParquetFile(path).schema_arrow
    with RowGroupWriter(version.dst / schema.VALIDATION_FILE, file_schema, ERAS_PER_GROUP) as served:
        for era, table in _complete_eras(path):
            if era < cut:
                served.add(_served_table(table, era, null_eras, unresolved_eras))
            elif era in rounds:
                live = _live_table(table, _live_label(era, live_era_label))
                write_table(version.round_file(rounds[era], schema.LIVE_FILE), live)


def _write_benchmarks(version: ServedVersion, rounds: dict[str, int], live_era_label: str) -> list[str]:
    path = version.src / schema.VALIDATION_BENCHMARKS_FILE
    if not path.is_file():
        return []
    cut = min(rounds)
    file_schema = pq.ParquetFile(path).schema_arrow
    with RowGroupWriter(
        version.dst / schema.VALIDATION_BENCHMARKS_FILE, file_schema, ERAS_PER_GROUP
    ) as served:
        for era, table in _complete_eras(path):
            if era < cut:
                served.add(table)
            elif era in rounds:
                label = pa.repeat(pa.scalar(_live_label(era, live_era_label), pa.string()), table.num_rows)
                write_table(
                    version.round_file(rounds[era], schema.LIVE_BENCHMARKS_FILE),
                    _set_column(table, schema.ERA, label),
                )
    return [name for name in file_schema.names if name not in (schema.ID, schema.ERA)]


def _copy_eras(path: Path, target: Path, eras: set[str]) -> None:
    keep = pa.array(sorted(eras), pa.string())
    file_schema = pq.ParquetFile(path).schema_arrow
    with RowGroupWriter(target, file_schema, eras_per_group=1) as out:  # a group per source group
        for group in _row_groups(path):
            kept = group.filter(pc.is_in(group[schema.ERA], value_set=keep))
            if kept.num_rows:
                out.add(kept)


def _held_out_rows(path: Path, rounds: dict[str, int], columns: list[str] | None = None) -> pa.Table | None:
    """The held-out eras' rows of `path` (those columns; default all), or None without the file."""
    if not path.is_file():
        return None
    keep = pa.array(sorted(rounds), pa.string())
    parts = [g.filter(pc.is_in(g[schema.ERA], value_set=keep)) for g in _row_groups(path, columns)]
    return pa.concat_tables(parts)


def _write_answers(source_dir: Path, versions: list[str], out_dir: Path, rounds: dict[str, int]) -> None:
    """answers.parquet: round, id, era (the true one), target, the benchmark models (of every
    version), the meta model and the oracle's prediction of every held-out row, sorted by round
    and id. The versions share ids, targets and the meta model: those come from the newest."""
    newest = source_dir / versions[-1]
    keys = [schema.ID, schema.ERA]
    answers = _held_out_rows(newest / schema.VALIDATION_FILE, rounds, [*keys, schema.MAIN_TARGET])
    era_round = pa.array([rounds[era] for era in answers[schema.ERA].to_pylist()], pa.int32())
    answers = answers.add_column(0, ROUND, era_round)
    oracle = _held_out_rows(source_dir / ORACLE_DIR / f"{schema.DATA_TYPE_VALIDATION}.parquet", rounds)
    meta = _held_out_rows(newest / schema.META_MODEL_FILE, rounds, [*keys, schema.META_MODEL_COLUMN])
    benchmarks = [
        _held_out_rows(source_dir / v / schema.VALIDATION_BENCHMARKS_FILE, rounds) for v in versions
    ]
    extras = [
        *benchmarks,
        meta,
        None if oracle is None else oracle.rename_columns({schema.PREDICTION: ORACLE_COLUMN}),
    ]
    for extra in extras:
        if extra is not None:
            # era, and a benchmark two versions share, are in the answers already
            known = [
                name for name in extra.column_names if name != schema.ID and name in answers.column_names
            ]
            extra = extra.drop_columns(known).replace_schema_metadata(None)
            answers = answers.join(extra, schema.ID, join_type="left outer")
    order = pc.sort_indices(answers, [(ROUND, "ascending"), (schema.ID, "ascending")])
    write_table(answers_path(out_dir), answers.take(order).replace_schema_metadata(None))


def is_replay(replay_dir: Path) -> bool:
    return (Path(replay_dir) / ANSWERS_DIR / MANIFEST_FILE).is_file() and (
        Path(replay_dir) / STATE_FILE
    ).is_file()

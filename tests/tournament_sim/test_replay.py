"""The walk-forward replay: served files stop at the cut, held-out eras become live rounds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numerapi
import polars as pl
import pyarrow.parquet as pq
import pytest
import requests

from model_core import schema
from tournament_sim.generate import DATA_TYPE_UNRESOLVED, add_version, generate_tournament
from tournament_sim.layout import ORACLE_DIR, load_state, offered_versions, round_file
from tournament_sim.replay import ANSWERS_DIR, MANIFEST_FILE, ReplayManifest, answers_path, make_replay
from tournament_sim.server import SimServer, advance_round
from tournament_sim.versions import VERSIONS

VERSION = "v5.2"  # the checks below read this one; the source offers v5.2 and v5.3
NEWER = "v5.3"
HOLDOUT = 3
UNRESOLVED = 4
FIRST_ROUND = 2000


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("source")
    generate_tournament(out, "tiny", seed=5, data_version=VERSION)
    add_version(out, NEWER)
    return out


@pytest.fixture(scope="module", params=["number", "X"])
def replay(request: pytest.FixtureRequest, source: Path, tmp_path_factory) -> tuple[Path, ReplayManifest]:
    out = tmp_path_factory.mktemp(f"replay-{request.param}") / "replay"
    manifest = make_replay(source, out, HOLDOUT, UNRESOLVED, request.param, first_round=FIRST_ROUND)
    return out, manifest


def served_files(replay_dir: Path) -> list[Path]:
    return sorted((replay_dir / VERSION).glob("*.parquet"))


def source_validation(source: Path) -> pl.DataFrame:
    return pl.read_parquet(source / VERSION / schema.VALIDATION_FILE)


def resolved_source_eras(source: Path) -> list[str]:
    frame = source_validation(source).filter(
        (pl.col(schema.DATA_TYPE) == schema.DATA_TYPE_VALIDATION) & pl.col(schema.MAIN_TARGET).is_not_null()
    )
    return sorted(frame[schema.ERA].unique().to_list())


def test_nothing_at_or_after_the_cut_is_served(source: Path, replay) -> None:
    replay_dir, manifest = replay
    held = resolved_source_eras(source)[-HOLDOUT:]
    assert manifest.cut_era == held[0]
    held_ids = set(source_validation(source).filter(pl.col(schema.ERA).is_in(held))[schema.ID].to_list())
    for path in served_files(replay_dir):
        frame = pl.read_parquet(path, columns=[schema.ID, schema.ERA])
        assert frame[schema.ERA].max() < manifest.cut_era, path.name
        assert not held_ids & set(frame[schema.ID].to_list()), path.name
    assert not (replay_dir / ORACLE_DIR).exists()  # the oracle would tell the future
    assert sorted(p.name for p in (replay_dir / "rounds").iterdir()) == [
        str(FIRST_ROUND + k) for k in range(HOLDOUT)
    ]


def test_the_last_served_eras_are_not_resolved_yet(source: Path, replay) -> None:
    replay_dir, manifest = replay
    served = pl.read_parquet(replay_dir / VERSION / schema.VALIDATION_FILE)
    eras = sorted(served[schema.ERA].unique().to_list())
    last = eras[-UNRESOLVED:]
    assert manifest.unresolved_eras == last
    targets = [c for c in served.columns if schema.is_target(c)]
    tail = served.filter(pl.col(schema.ERA).is_in(last))
    assert tail.select(pl.col(targets).is_null().all()).row(0) == (True,) * len(targets)
    assert set(tail[schema.DATA_TYPE].to_list()) == {DATA_TYPE_UNRESOLVED}
    head = served.filter(~pl.col(schema.ERA).is_in(last))
    assert head[schema.MAIN_TARGET].null_count() == 0
    assert set(head[schema.DATA_TYPE].to_list()) == {schema.DATA_TYPE_VALIDATION}
    # A 60-day target resolves 8 eras later than the 20-day one.
    late = served.filter(pl.col(schema.ERA).is_in(eras[-UNRESOLVED - 8 :]))
    assert late["target_ender_60"].null_count() == late.height
    assert served.filter(pl.col(schema.ERA) < eras[-UNRESOLVED - 8])["target_ender_60"].null_count() == 0
    assert manifest.resolved_eras[-1] < last[0]
    meta = pl.read_parquet(replay_dir / VERSION / schema.META_MODEL_FILE)
    assert meta[schema.ERA].max() == manifest.resolved_eras[-1]
    train = pq.read_table(replay_dir / VERSION / schema.TRAIN_FILE)
    assert train.equals(pq.read_table(source / VERSION / schema.TRAIN_FILE))


def test_live_files_hold_one_held_out_era_without_targets(source: Path, replay) -> None:
    replay_dir, manifest = replay
    answers = pl.read_parquet(answers_path(replay_dir))
    for number, era in manifest.rounds.items():
        live = pl.read_parquet(round_file(replay_dir, int(number), VERSION, schema.LIVE_FILE))
        label = era if manifest.live_era_label == "number" else "X"
        assert set(live[schema.ERA].to_list()) == {label}
        assert set(live[schema.DATA_TYPE].to_list()) == {schema.DATA_TYPE_LIVE}
        targets = [c for c in live.columns if schema.is_target(c)]
        assert live.select(pl.col(targets).is_null().all()).row(0) == (True,) * len(targets)
        expected = answers.filter(pl.col("round") == int(number))
        assert sorted(live[schema.ID].to_list()) == expected[schema.ID].to_list()
        assert set(expected[schema.ERA].to_list()) == {era}
        benchmarks = pl.read_parquet(
            round_file(replay_dir, int(number), VERSION, schema.LIVE_BENCHMARKS_FILE)
        )
        assert benchmarks[schema.ID].to_list() == live[schema.ID].to_list()
        assert set(benchmarks[schema.ERA].to_list()) == {label}


def test_every_version_is_replayed_on_the_same_eras_and_rows(replay) -> None:
    replay_dir, manifest = replay
    assert offered_versions(replay_dir) == [VERSION, NEWER]
    assert load_state(replay_dir).dataset_version == NEWER
    assert manifest.benchmark_models == [
        *VERSIONS[VERSION].benchmark_models,
        *VERSIONS[NEWER].benchmark_models,
    ]
    for name in (schema.VALIDATION_FILE, schema.META_MODEL_FILE):
        older, newer = (pl.read_parquet(replay_dir / version / name) for version in (VERSION, NEWER))
        assert newer.select(older.columns).equals(older), name  # v5.3 only adds columns
    for number in manifest.rounds:
        older, newer = (
            pl.read_parquet(round_file(replay_dir, int(number), version, schema.LIVE_FILE))
            for version in (VERSION, NEWER)
        )
        assert newer.select(older.columns).equals(older), number


def test_answers_are_the_source_targets(source: Path, replay) -> None:
    replay_dir, manifest = replay
    answers = pl.read_parquet(answers_path(replay_dir))
    truth = source_validation(source).select(schema.ID, schema.ERA, schema.MAIN_TARGET)
    joined = answers.join(truth, on=schema.ID, suffix="_source")
    held_rows = truth.filter(pl.col(schema.ERA).is_in(list(manifest.rounds.values())))
    assert joined.height == answers.height == held_rows.height
    assert (joined[schema.ERA] == joined["era_source"]).all()
    assert (joined[schema.MAIN_TARGET] == joined["target_source"]).all()
    assert answers[schema.MAIN_TARGET].null_count() == 0
    for column in [*manifest.benchmark_models, schema.META_MODEL_COLUMN, "oracle"]:
        assert answers[column].null_count() == 0, column
    saved = json.loads((replay_dir / ANSWERS_DIR / MANIFEST_FILE).read_text())
    assert ReplayManifest(**saved) == manifest


def test_the_stand_in_serves_the_replay_and_never_the_answers(replay, tmp_path: Path) -> None:
    replay_dir = Path(shutil.copytree(replay[0], tmp_path / "replay"))  # rounds advance: a private copy
    manifest = replay[1]
    state = load_state(replay_dir)
    assert (state.first_round, state.last_round) == (FIRST_ROUND, FIRST_ROUND + HOLDOUT - 1)
    assert state.current.number == FIRST_ROUND
    real_url = numerapi.base_api.API_TOURNAMENT_URL
    with SimServer(replay_dir) as server:
        numerapi.base_api.API_TOURNAMENT_URL = server.url
        try:
            api = numerapi.NumerAPI(verbosity="critical", show_progress_bars=False)
            api.token = None
            listed = api.list_datasets()
            assert not [name for name in listed if "answer" in name or "replay" in name]
            for k in range(HOLDOUT):
                live = tmp_path / f"live_{k}.parquet"
                api.download_dataset(schema.dataset_file(VERSION, schema.LIVE_FILE), str(live))
                era = manifest.rounds[str(FIRST_ROUND + k)]
                assert pl.read_parquet(live)[schema.ID].sort().to_list() == sorted(
                    pl.read_parquet(answers_path(replay_dir)).filter(pl.col(schema.ERA) == era)[schema.ID]
                )
                if k < HOLDOUT - 1:
                    advance_round(replay_dir)
            with pytest.raises(ValueError, match="no live file"):
                advance_round(replay_dir)
            for path in (
                f"{ANSWERS_DIR}/answers.parquet",
                f"{ANSWERS_DIR}/{MANIFEST_FILE}",
                f"{VERSION}/../{ANSWERS_DIR}/answers.parquet",
                f"rounds/../{ANSWERS_DIR}/answers.parquet",
                f"rounds/{FIRST_ROUND}/../../{ANSWERS_DIR}/answers.parquet",
            ):
                assert requests.get(f"{server.url}/files/{path}", timeout=5).status_code == 404, path
        finally:
            numerapi.base_api.API_TOURNAMENT_URL = real_url


def test_eras_split_across_row_groups_are_kept_whole(source: Path, tmp_path: Path) -> None:
    """The replay reads one row group at a time: an era spread over two groups must stay whole."""
    split = Path(shutil.copytree(source, tmp_path / "split"))
    for name in (schema.VALIDATION_FILE, schema.VALIDATION_BENCHMARKS_FILE):
        table = pq.read_table(source / VERSION / name)
        pq.write_table(table, split / VERSION / name, row_group_size=37)
    whole = make_replay(source, tmp_path / "whole", HOLDOUT)
    pieces = make_replay(split, tmp_path / "pieces", HOLDOUT)
    assert without_source(whole) == without_source(pieces)
    for number in whole.rounds:
        for name in (schema.LIVE_FILE, schema.LIVE_BENCHMARKS_FILE):
            a = pq.read_table(round_file(tmp_path / "whole", int(number), VERSION, name))
            b = pq.read_table(round_file(tmp_path / "pieces", int(number), VERSION, name))
            assert a.equals(b), (number, name)
    for name in (schema.VALIDATION_FILE, schema.VALIDATION_BENCHMARKS_FILE):
        a = pq.read_table(tmp_path / "whole" / VERSION / name)
        b = pq.read_table(tmp_path / "pieces" / VERSION / name)
        assert a.equals(b), name
    assert pq.read_table(answers_path(tmp_path / "whole")).equals(
        pq.read_table(answers_path(tmp_path / "pieces"))
    )


def without_source(manifest: ReplayManifest) -> dict:
    return {k: v for k, v in vars(manifest).items() if k != "source"}


def test_bad_requests_are_refused(source: Path, tmp_path: Path) -> None:
    resolved = len(resolved_source_eras(source))
    with pytest.raises(ValueError, match="held-out eras"):
        make_replay(source, tmp_path / "a", holdout=resolved)
    with pytest.raises(ValueError, match="live_era_label"):
        make_replay(source, tmp_path / "b", live_era_label="date")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "old").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        make_replay(source, tmp_path / "c")

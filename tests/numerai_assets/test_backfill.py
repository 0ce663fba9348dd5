"""Era backfills: real Dagster runs (and a real backfill through the CLI) on the tiny tournament.

The trained home's eras: 0001..0060 train, 0061..0076 validation (benchmark and meta model from
0061; held-out test eras 0069..0076), 0077..0080 unresolved (no target yet).
"""

import collections
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster._core.instance import InstanceRef
from polars.testing import assert_frame_equal

from model_core.era_store import EraStore
from numerai_assets import cli
from numerai_assets.cli.backfills import select_eras
from numerai_assets.cli.runs import PID_TAG
from numerai_assets.shared import dagster_private as private
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import current_version
from numerai_assets.shared.warehouse import Warehouse
from tests.numerai_assets.code_location_runs import assert_runs_belong_to_the_location
from tests.numerai_assets.tiny import tiny_definitions, tiny_env

BIN = Path(sys.executable).parent
ASSETS = ["era_predictions", "era_scores"]
ERAS = [f"{n:04d}" for n in range(58, 65)]  # 7 eras across train / validation
PER_RUN = 3
NO_API = "http://127.0.0.1:9"
CLOSE = {"check_exact": False, "rel_tol": 1e-9, "abs_tol": 1e-12}  # same numbers, up to float noise


def _register_eras(instance: dg.DagsterInstance, home: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """What clean_eras does for its store (the trained home was built in another instance)."""
    eras = [*EraStore(home / "clean_eras" / "current").eras, *extra]
    instance.add_dynamic_partitions("numerai_era", eras)
    return eras


def _scores(home: Path, eras=ERAS) -> pl.DataFrame:
    """The ensemble's warehouse rows of `eras`, in era order."""
    version = current_version(HomeLayout(home))
    return (
        Warehouse(path=str(HomeLayout(home).warehouse_path))
        .era_scores_frame(version)
        .filter((pl.col("model") == "ensemble") & pl.col("era").is_in(list(eras)))
        .sort("era")
    )


def _materialize(home: Path, instance, tags=None, partition_key=None, raise_on_error=True):
    defs, resources = tiny_definitions(home, NO_API, None, backfill_eras_per_run=PER_RUN)
    return dg.materialize(
        list(defs.assets),
        resources=resources,
        instance=instance,
        selection=ASSETS,
        tags=tags,
        partition_key=partition_key,
        raise_on_error=raise_on_error,
    )


def _range(first: str, last: str) -> dict[str, str]:
    return {private.ASSET_PARTITION_RANGE_START_TAG: first, private.ASSET_PARTITION_RANGE_END_TAG: last}


@pytest.fixture(scope="module")
def cli_backfill(trained, tmp_path_factory):
    """`numerai-pipeline backfill --eras 0058:0064 --wait` with no daemon, N=3, as a user runs it."""
    root = tmp_path_factory.mktemp("cli_backfill")
    home = Path(shutil.copytree(trained.home, root / "home", symlinks=True))
    dagster_home = root / "dagster"
    dagster_home.mkdir()
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        _register_eras(instance, home)
    env = _cli_env(
        NUMERAI_HOME=str(home),
        NUMERAI_API_URL=NO_API,
        NUMERAI_EXECUTOR="in_process",
        NUMERAI_BACKFILL_ERAS_PER_RUN=str(PER_RUN),
        # no API here: each run's payout-settings lookup fails fast and falls back to the defaults
        NUMERAI_API_BACKOFF_S="0.01",
        DAGSTER_HOME=str(dagster_home),
    )
    done = _backfill(["--eras", f"{ERAS[0]}:{ERAS[-1]}", "--wait"], env, root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return home, dagster_home, done.stdout


def test_cli_backfill_runs_each_era_once_in_ceil_n_over_n_runs(cli_backfill):
    home, dagster_home, stdout = cli_backfill
    assert "no dagster-daemon is running: running the backfill here" in stdout
    assert "] 3/3 runs" in stdout and "completed_success, 3/3 runs succeeded (here)" in stdout
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        [backfill] = instance.get_backfills()
        assert backfill.status.value == "COMPLETED_SUCCESS" and backfill.title == "eras 0058..0064"
        runs = instance.get_runs(dg.RunsFilter(tags={private.BACKFILL_ID_TAG: backfill.backfill_id}))
        assert len(runs) == 3 == -(-len(ERAS) // PER_RUN)
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        assert_runs_belong_to_the_location(instance, runs, "__ASSET_JOB")  # the UI lists them there
        assert all(run.tags[PID_TAG] for run in runs)  # run here: a killed backfill's run is told apart
        ranges = {
            run.run_id: (
                run.tags[private.ASSET_PARTITION_RANGE_START_TAG],
                run.tags[private.ASSET_PARTITION_RANGE_END_TAG],
            )
            for run in runs
        }
        assert sorted(ranges.values()) == [("0058", "0060"), ("0061", "0063"), ("0064", "0064")]
        for asset in ASSETS:
            records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
            assert collections.Counter(r.partition_key for r in records) == dict.fromkeys(ERAS, 1), asset
            for record in records:  # each era by the run whose range holds it
                first, last = ranges[record.run_id]
                assert first <= record.partition_key <= last
        latest = instance.fetch_materializations(dg.AssetKey("era_scores"), limit=1).records[0]
        metadata = latest.asset_materialization.metadata
        assert metadata["backfilled_eras"].value == len(ERAS)
        assert metadata["plots"].value.count("data:image/png;base64,") == 3  # cumulative, bars, rolling
        assert metadata["model_version"].value == current_version(HomeLayout(home))
        # In place on the asset page: the backfilled range's per-era table and its CORR chart.
        per_era = [r.data for r in metadata["per_era_scores"].value.records]
        assert [row["era"] for row in per_era] == ERAS and {row["split"] for row in per_era} == {"backfill"}
        assert len(metadata["corr_chart"].value) < 1000
        assert metadata["corr_chart"].value.startswith("![backfilled CORR](data:image/svg+xml,")

    scores = _scores(home)
    assert [row["CORR20"] for row in per_era] == pytest.approx(scores["corr"].to_list(), abs=1e-5)
    assert scores["era"].to_list() == ERAS and set(scores["split"]) == {"backfill"}
    assert scores["corr"].is_not_null().all() and scores["fnc"].is_null().all()
    has_bmc = dict(zip(scores["era"], scores["bmc"].is_not_null(), strict=True))
    assert has_bmc == {era: era >= "0061" for era in ERAS}  # the benchmark covers validation eras only
    version = current_version(HomeLayout(home))
    for era in ERAS:
        frame = pl.read_parquet(HomeLayout(home).era_predictions_path(version, era))
        assert frame.columns == ["id", "era", "prediction"] and set(frame["era"]) == {era}


def test_backfill_scores_equal_materialising_eras_one_by_one(cli_backfill, trained, tmp_path, instance):
    eras = ERAS  # across the three runs' boundaries, train and validation eras
    backfilled_home = cli_backfill[0]
    home = Path(shutil.copytree(trained.home, tmp_path / "home", symlinks=True))
    _register_eras(instance, home)
    for era in eras:
        _materialize(home, instance, partition_key=era)
    columns = ["era", "split", "corr", "bmc", "mmc", "max_feature_exposure"]
    one_by_one = _scores(home, eras).select(columns)
    assert one_by_one["era"].to_list() == eras and one_by_one["bmc"].is_not_null().sum() == 4
    assert_frame_equal(one_by_one, _scores(backfilled_home, eras).select(columns), **CLOSE)
    version = current_version(HomeLayout(home))
    for era in eras:
        paths = [HomeLayout(h).era_predictions_path(version, era) for h in (home, backfilled_home)]
        assert_frame_equal(pl.read_parquet(paths[0]), pl.read_parquet(paths[1]), **CLOSE)


def test_running_again_overwrites_one_row_per_era(cli_backfill, tmp_path, instance):
    home = Path(shutil.copytree(cli_backfill[0], tmp_path / "home", symlinks=True))
    _register_eras(instance, home)
    before = _scores(home)
    version = current_version(HomeLayout(home))
    path = HomeLayout(home).era_predictions_path(version, ERAS[0])
    mtime = path.stat().st_mtime_ns

    _materialize(home, instance, tags=_range(ERAS[0], ERAS[-1]))
    after = _scores(home)
    assert after["era"].to_list() == ERAS  # still one row per era
    assert (after["written_at"] > before["written_at"]).all()
    assert_frame_equal(after.drop("written_at"), before.drop("written_at"), **CLOSE)
    assert path.stat().st_mtime_ns > mtime


def test_an_era_missing_from_the_data_fails_alone(trained_home, instance):
    # 0081 is registered (say, by an older ingest) but the current data has no such era.
    _register_eras(instance, trained_home, extra=("0081",))
    result = _materialize(trained_home, instance, tags=_range("0075", "0081"), raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith(
        "1 era(s) could not be backfilled (0081); the other 6 era(s) of this run were written"
    )
    assert "0081: not in the era store" in message

    written = ["0075", "0076", "0077", "0078", "0079", "0080"]
    for asset in ASSETS:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
        assert sorted(r.partition_key for r in records) == written, asset
    version = current_version(HomeLayout(trained_home))
    assert all(HomeLayout(trained_home).era_predictions_path(version, e).exists() for e in written)
    assert not HomeLayout(trained_home).era_predictions_path(version, "0081").exists()

    scores = _scores(trained_home, [*written, "0081"])
    assert scores["era"].to_list() == written
    rows = {row["era"]: row for row in scores.iter_rows(named=True)}
    # Held-out test eras keep validation_diagnostics' row (with FNC); unresolved eras have no CORR.
    assert rows["0075"]["split"] == "test" and rows["0075"]["fnc"] is not None
    for era in ("0077", "0078", "0079", "0080"):
        assert rows[era]["split"] == "backfill" and rows[era]["corr"] is None
        assert rows[era]["max_feature_exposure"] is not None


def test_select_eras_is_inclusive_and_names_unregistered_eras():
    registered = [f"{n:04d}" for n in range(1, 81)]
    assert select_eras(registered, "0010:0012") == ["0010", "0011", "0012"]
    assert select_eras(registered, "0080") == ["0080"]
    with pytest.raises(ValueError, match=r"2 era\(s\) not registered as numerai_era partitions: 0081..0082"):
        select_eras(registered, "0079:0082")
    with pytest.raises(ValueError, match="0012:0010 is reversed"):
        select_eras(registered, "0012:0010")
    with pytest.raises(ValueError, match="'0010:last' is not an era"):
        select_eras(registered, "0010:last")
    with pytest.raises(ValueError, match="materialise clean_eras first"):
        select_eras([], "0001:0002")


def test_cli_names_unregistered_eras_in_one_line(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("NUMERAI_HOME", str(trained.home))
    with dg.DagsterInstance.get() as instance:
        _register_eras(instance, trained.home)
    assert cli.main(["backfill", "--eras", "0070:0090"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --eras 0070:0090: 10 era(s) not registered as numerai_era partitions: 0081..0090 "
        "(registered: 0001..0080); ingest data that has them first (numerai-pipeline ingest)"
    ]


def test_round_backfill_downloads_past_live_files_through_the_stand_in(
    trained_home, tournament, tournament_state, server, tmp_path
):
    """Rounds the service missed: `backfill --rounds A:B --wait` fetches and predicts each one."""
    from tournament_sim.rounds import advance_round
    from tournament_sim.server import list_submissions

    first = tournament_state.current.number
    advance_round(tournament)
    advance_round(tournament)  # first and first + 1 are past rounds now
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    env = _cli_env(
        NUMERAI_HOME=str(trained_home),
        NUMERAI_API_URL=server.url,
        NUMERAI_EXECUTOR="in_process",
        DAGSTER_HOME=str(dagster_home),
    )
    rounds = f"{first}:{first + 1}"
    done = _backfill(["--rounds", rounds, "--wait"], env, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    layout = HomeLayout(trained_home)
    for number in (first, first + 1):
        live = pl.read_parquet(layout.round_dir(number, "v5.3") / "live.parquet")
        source = pl.read_parquet(tournament / "rounds" / str(number) / "v5.3" / "live.parquet")
        assert live["id"].to_list() == source["id"].to_list()  # the historical file, as served
        predicted = pl.read_parquet(layout.live_predictions_path(number))
        assert set(predicted["id"]) == set(source["id"])
    downloaded = [path for _, path, _, status in server.request_log if status in (200, 206)]
    for number in (first, first + 1):
        assert any(f"rounds/{number}/v5.3/live.parquet" in path for path in downloaded), downloaded
    assert list_submissions(tournament) == []  # past rounds are predicted, never uploaded
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        [backfill] = instance.get_backfills()
        assert (
            backfill.status.value == "COMPLETED_SUCCESS" and backfill.title == f"rounds {first}..{first + 1}"
        )
        runs = instance.get_runs(dg.RunsFilter(tags={private.BACKFILL_ID_TAG: backfill.backfill_id}))
        assert sorted(run.tags["dagster/partition"] for run in runs) == [str(first), str(first + 1)]
        assert_runs_belong_to_the_location(instance, runs, "__ASSET_JOB")


def test_round_backfill_of_rounds_the_api_does_not_know_adds_no_partition(
    trained_home, tournament_state, server, tmp_path
):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    env = _cli_env(NUMERAI_HOME=str(trained_home), NUMERAI_API_URL=server.url, DAGSTER_HOME=str(dagster_home))
    future = tournament_state.current.number + 50
    done = _backfill(["--rounds", f"{future}:{future + 1}", "--wait"], env, tmp_path)
    assert done.returncode != 0
    assert f"{future}, {future + 1} not round(s) of the Numerai API" in done.stderr
    assert "Traceback" not in done.stderr
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        assert instance.get_dynamic_partitions("numerai_round") == []
        assert instance.get_backfills() == []


def _cli_env(**numerai: str) -> dict[str, str]:
    """This process's environment without NUMERAI_* / DAGSTER_*, plus the tiny knobs and `numerai`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMERAI_", "DAGSTER_"))}
    return env | tiny_env(**numerai)


def _backfill(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`numerai-pipeline backfill ARGS` as a user runs it."""
    return subprocess.run(
        [str(BIN / "numerai-pipeline"), "backfill", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

"""The documented commands, run as a user runs them: subprocesses against the stand-in."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from numerai_assets.cli.runs import fail_dead_cli_runs
from tests.numerai_assets.code_location_runs import (
    assert_runs_belong_to_the_location,
    assert_the_ui_can_reexecute,
    ui_workspace,
)

BIN = Path(sys.executable).parent


def _env(tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMERAI_")}
    env.update(NUMERAI_HOME=str(tmp_path / "home"), DAGSTER_HOME=str(tmp_path / "dagster"), **extra)
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_ingest_command_records_runs_in_the_persistent_instance(tmp_path, server, tournament_state):
    env = _env(tmp_path, NUMERAI_API_URL=server.url, NUMERAI_FEATURE_SET="small")
    done = _run([str(BIN / "numerai-pipeline"), "ingest"], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "== ingestion summary ==" in done.stdout
    assert f"round {tournament_state.current.number}:" in done.stdout
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            for asset in ("raw_dataset", "clean_eras", "feature_returns", "raw_round"):
                assert instance.get_latest_materialization_event(dg.AssetKey(asset)) is not None, asset
            assert instance.get_dynamic_partitions("numerai_round") == [str(tournament_state.current.number)]
            # runs of the location's asset job (the UI's "Materialize"), listed and re-executable there
            runs = instance.get_runs()
            assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            assert_runs_belong_to_the_location(instance, runs, "__ASSET_JOB")
            assert [sorted(k.to_user_string() for k in r.asset_selection) for r in runs] == [
                ["raw_round"],
                ["clean_eras", "feature_returns", "raw_dataset"],
            ]
            with ui_workspace(instance) as workspace:
                assert_the_ui_can_reexecute(workspace, runs)
    finally:
        del os.environ["DAGSTER_HOME"]


def test_plain_dagster_cli_materialises_against_any_endpoint(tmp_path, server):
    env = _env(tmp_path, NUMERAI_API_URL=server.url)
    args = [str(BIN / "dagster"), "asset", "materialize", "-m", "numerai_assets.definitions"]
    done = _run([*args, "--select", "raw_dataset,clean_eras"], env, Path.cwd())
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "home" / "clean_eras" / "current" / "manifest.json").exists()


def test_unreachable_api_is_a_one_line_error(tmp_path):
    env = _env(
        tmp_path, NUMERAI_API_URL="http://127.0.0.1:9", NUMERAI_API_RETRIES="2", NUMERAI_API_BACKOFF_S="0"
    )
    done = _run([str(BIN / "numerai-pipeline"), "ingest"], env, tmp_path)
    assert done.returncode == 2
    assert "error: list datasets: the Numerai API at http://127.0.0.1:9 is unreachable" in done.stderr
    assert not (tmp_path / "home" / "raw").exists()


def test_sim_commands_generate_and_advance(tmp_path):
    sim = tmp_path / "sim"
    cli = str(BIN / "numerai-pipeline")
    env = _env(tmp_path)
    options = ["--scale", "tiny", "--seed", "3", "--live-era", "X"]
    done = _run([cli, "sim", "generate", str(sim), *options], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (sim / "v5.3" / "train.parquet").exists() and (
        sim / "rounds" / "1000" / "v5.3" / "live.parquet"
    ).exists()
    done = _run([cli, "sim", "advance-round", str(sim)], env, tmp_path)
    assert done.returncode == 0 and "round 1001 is open" in done.stdout


def _live_env(tmp_path, trained_home, server, state, **extra) -> dict[str, str]:
    from tests.numerai_assets.tiny import tiny_env

    env = _env(tmp_path, **tiny_env(), NUMERAI_API_URL=server.url, NUMERAI_API_BACKOFF_S="0.01", **extra)
    env["NUMERAI_HOME"] = str(trained_home)
    return env


def test_submit_and_status_commands(tmp_path, trained_home, server, tournament, tournament_state):
    from tournament_sim.server import list_submissions

    cli = str(BIN / "numerai-pipeline")
    creds = {
        "NUMERAI_PUBLIC_ID": tournament_state.public_id,
        "NUMERAI_SECRET_KEY": tournament_state.secret_key,
        "NUMERAI_MODEL_NAME": "sim_model",
    }
    env = _live_env(tmp_path, trained_home, server, tournament_state, **creds)
    done = _run([cli, "submit"], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    current = tournament_state.current.number
    [landed] = list_submissions(tournament)
    assert f"round {current}: uploaded" in done.stdout and landed["submission_id"] in done.stdout

    again = _run([cli, "submit"], env, tmp_path)
    assert again.returncode == 0 and "already submitted" in again.stdout
    assert len(list_submissions(tournament)) == 1

    status = _run([cli, "status"], env, tmp_path)
    assert status.returncode == 0, status.stderr[-3000:]
    assert f"{current} (open for submissions)" in status.stdout
    assert f"round {current} as sim_model: uploaded, submission {landed['submission_id']}" in status.stdout
    assert "next training" in status.stdout and "model version" in status.stdout
    assert tournament_state.secret_key not in done.stdout + done.stderr + status.stdout + status.stderr
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            runs = instance.get_runs()
            assert {r.job_name for r in runs} == {"live_round"} and len(runs) == 2  # both in the UI
            assert_runs_belong_to_the_location(instance, runs, "live_round")  # ...under the live_round job
            assert {r.tags["dagster/partition"] for r in runs} == {str(current)}
            assert all(r.tags["numerai/cli_pid"] for r in runs)  # dead-run detection still works
            with ui_workspace(instance) as workspace:
                reexecuted = assert_the_ui_can_reexecute(workspace, runs)
            # A UI re-execution inherits the tags of the dead `submit` process; started by a
            # daemon's run worker, it is not taken for a dead command's run.
            run = instance.get_run_by_id(reexecuted[0])
            assert run.tags["numerai/cli_pid"] == runs[0].tags["numerai/cli_pid"]
            start = dg.DagsterEvent(event_type_value="PIPELINE_START", job_name=run.job_name)
            instance.report_dagster_event(start, run_id=run.run_id)
            assert fail_dead_cli_runs(instance) == []
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        del os.environ["DAGSTER_HOME"]


def test_submit_without_an_open_round_is_a_one_line_error(
    tmp_path, trained_home, server, tournament, tournament_state
):
    from tournament_sim.rounds import close_round

    close_round(tournament)
    done = _run(
        [str(BIN / "numerai-pipeline"), "submit"],
        _live_env(tmp_path, trained_home, server, tournament_state),
        tmp_path,
    )
    assert done.returncode == 2 and "error: no round is open for submissions now" in done.stderr


def test_killed_between_upload_and_ledger_then_rerun_does_not_upload_again(
    tmp_path, trained_home, server, tournament, tournament_state
):
    """A real kill: the upload lands, the process dies before its ledger write, the rerun refuses."""
    import signal
    import time

    import duckdb

    from tournament_sim.server import FaultConfig, list_submissions

    creds = {
        "NUMERAI_PUBLIC_ID": tournament_state.public_id,
        "NUMERAI_SECRET_KEY": tournament_state.secret_key,
        "NUMERAI_MODEL_NAME": "sim_model",
    }
    env = _live_env(tmp_path, trained_home, server, tournament_state, **creds)
    warehouse = str(trained_home / "warehouse.duckdb")
    server.set_faults(FaultConfig(delay_s=2.0, fail_paths=("upload",)))  # time to step in mid-upload
    child = subprocess.Popen([str(BIN / "numerai-pipeline"), "submit"], env=env, cwd=tmp_path)
    holder = None
    try:
        deadline = time.monotonic() + 240
        while holder is None and time.monotonic() < deadline and child.poll() is None:
            try:  # hold the warehouse's write lock as soon as the ledger says "uploading"
                con = duckdb.connect(warehouse)
                row = con.execute("SELECT status FROM submissions").fetchone()
                if row == ("uploading",):
                    holder = con
                else:
                    con.close()
            except duckdb.Error:
                pass  # the child is writing, or the table does not exist yet
            time.sleep(0.05)
        assert holder is not None, "never saw the ledger row at 'uploading'"
        while not list_submissions(tournament) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list_submissions(tournament)) == 1  # it landed at Numerai...
        child.send_signal(signal.SIGKILL)  # ...and the process dies before its ledger write
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        if holder is not None:
            holder.close()
    server.set_faults(FaultConfig())
    rerun = _run([str(BIN / "numerai-pipeline"), "submit"], env, tmp_path)
    assert rerun.returncode == 2 and "may or may not have reached Numerai" in rerun.stderr
    assert len(list_submissions(tournament)) == 1
    forced = _run([str(BIN / "numerai-pipeline"), "submit", "--force"], env, tmp_path)
    assert forced.returncode == 0 and "uploaded" in forced.stdout
    assert len(list_submissions(tournament)) == 2  # only because a person said so


def _error_lines(done: subprocess.CompletedProcess) -> list[str]:
    """The CLI's error lines (Dagster may warn first, e.g. about a missing dagster.yaml); no traceback."""
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def _round_partitions(dagster_home: str) -> list[str]:
    os.environ["DAGSTER_HOME"] = dagster_home
    try:
        with dg.DagsterInstance.get() as instance:
            return instance.get_dynamic_partitions("numerai_round")
    finally:
        del os.environ["DAGSTER_HOME"]


def test_submit_for_a_round_the_api_does_not_know_leaves_no_partition(tmp_path, server):
    cli = str(BIN / "numerai-pipeline")
    env = _env(tmp_path, NUMERAI_API_URL=server.url, NUMERAI_API_BACKOFF_S="0.01")
    negative = _run([cli, "submit", "--round", "-5"], env, tmp_path)
    assert negative.returncode == 2
    assert _error_lines(negative) == ["error: --round -5: round numbers start at 1; nothing submitted"]
    assert server.request_log == []  # refused before any API call
    unknown = _run([cli, "submit", "--round", "9999"], env, tmp_path)
    assert unknown.returncode == 2
    [line] = _error_lines(unknown)
    assert line.startswith(f"error: round 9999 is not a round of the Numerai API at {server.url}")
    assert _round_partitions(env["DAGSTER_HOME"]) == []


def test_unknown_feature_set_stops_ingest_before_the_large_files(tmp_path, server):
    env = _env(tmp_path, NUMERAI_API_URL=server.url, NUMERAI_FEATURE_SET="nonexistent")
    done = _run([str(BIN / "numerai-pipeline"), "ingest"], env, tmp_path)
    assert done.returncode == 2
    [line] = _error_lines(done)
    assert line.startswith(
        "error: NUMERAI_FEATURE_SET: 'nonexistent' is not a feature set of v5.3/features.json"
    )
    assert "which offers: " in line and ", medium, " in line
    downloads = [path for _, path, _, _ in server.request_log if "/files/" in path]
    assert downloads and all(path.endswith("/features.json") for path in downloads), downloads


def test_sim_serve_on_a_busy_port_is_a_one_line_error(tmp_path, server, tournament):
    done = _run(
        [str(BIN / "numerai-pipeline"), "sim", "serve", str(tournament), "--port", str(server.port)],
        _env(tmp_path),
        tmp_path,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: port {server.port} on 127.0.0.1 is already in use; stop what holds it or pick another port\n"
    )

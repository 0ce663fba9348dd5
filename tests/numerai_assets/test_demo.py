"""`numerai-pipeline demo` (what `make demo` runs) on the tiny tournament, as a user runs it: its
runs belong to the code location, the weekly schedule's tick and the round sensor's ticks and
cursor are in the instance, and the `make dev` command it prints points the sensor at the
stand-in, never at Numerai."""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from numerai_assets.cli.runs import PID_TAG
from numerai_assets.live.round_cursor import RoundCursor
from tests.numerai_assets.code_location_runs import (
    assert_runs_belong_to_the_location,
    assert_the_ui_can_reexecute,
    round_sensor_ticks,
    training_schedule_ticks,
    ui_workspace,
)
from tests.numerai_assets.test_cli import BIN, _env
from tests.numerai_assets.tiny import tiny_env


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo at tiny scale (a few minutes): its directory, stdout and environment."""
    root = tmp_path_factory.mktemp("demo")
    # The tiny model is too weak for the live benchmark check on 100 ids: turned off here.
    env = _env(root, **tiny_env(NUMERAI_MIN_BENCHMARK_CORR="-1"))
    done = subprocess.run(
        [str(BIN / "numerai-pipeline"), "demo", "--dir", "demo", "--scale", "tiny"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root, done.stdout, env


def _instance(dagster_home: Path):
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    try:
        return dg.DagsterInstance.get()
    finally:
        del os.environ["DAGSTER_HOME"]


@pytest.mark.slow
def test_the_demo_runs_belong_to_the_code_location_and_its_sensor(demo):
    root, stdout, _ = demo
    assert "[demo] the stand-in received 2 submissions: rounds [1000, 1001]" in stdout
    assert "[schedule] weekly_training_schedule's tick of " in stdout
    assert "\n== ingestion summary ==\n" in stdout and "\n== training summary ==\n" in stdout
    with _instance(root / "demo" / "dagster") as instance:
        runs = instance.get_runs(ascending=True)
        assert [r.job_name for r in runs] == ["weekly_training", "live_round", "live_round"]
        assert all(r.status == dg.DagsterRunStatus.SUCCESS and r.tags[PID_TAG] for r in runs)
        training, *live = runs
        assert_runs_belong_to_the_location(instance, [training], "weekly_training")
        assert_runs_belong_to_the_location(instance, live, "live_round")
        # requested by the weekly schedule's tick: its tags (the schedule's runs tab lists it)
        assert training.tags["dagster/schedule_name"] == "weekly_training_schedule"
        # requested by the sensor: its tags, its run keys (the sensor's runs tab lists them)
        assert [r.tags["dagster/sensor_name"] for r in live] == ["round_open_sensor"] * 2
        assert [r.tags["dagster/run_key"] for r in live] == ["round-1000", "round-1001"]
        with ui_workspace(instance) as workspace:
            cursor, ticks = round_sensor_ticks(workspace, instance)
            assert RoundCursor.parse(cursor).requested == 1001
            assert [t.status.value for t in ticks] == ["SUCCESS", "SKIPPED", "SUCCESS"]
            assert [list(t.run_ids) for t in ticks] == [[live[0].run_id], [], [live[1].run_id]]
            assert ticks[1].skip_reason == "round 1000 is open and was submitted"
            # One tick of the schedule, at its latest cron time, with the training run: its page
            # lists them; the schedule stays running, as its code declares.
            running, [tick] = training_schedule_ticks(workspace, instance)
            assert running and tick.status.value == "SUCCESS" and list(tick.run_ids) == [training.run_id]
            scheduled = dt.datetime.fromtimestamp(tick.timestamp, dt.UTC)
            assert training.tags[".dagster/scheduled_execution_time"] == scheduled.isoformat()
            assert training.tags["dagster/tick"] == str(tick.tick_id)
            assert scheduled.weekday() == 6 and (scheduled.hour, scheduled.minute) == (6, 0)  # cron 0 6 * * 0
            assert dt.timedelta(0) <= dt.datetime.now(dt.UTC) - scheduled <= dt.timedelta(days=7)
            assert_the_ui_can_reexecute(workspace, runs)


@pytest.mark.slow
def test_the_printed_make_dev_points_the_sensor_at_the_stand_in(demo, monkeypatch):
    """The printed commands, run as printed from the same directory: the stand-in serves again,
    and the round sensor of `make dev`'s environment asks it, seeing the demo's cursor."""
    from numerai_assets.cli.round_sensor import tick_round_sensor

    root, stdout, env = demo
    [url] = re.findall(r"\[demo\] Numerai API stand-in at (\S+)", stdout)
    port = url.rsplit(":", 1)[1]
    serve, dev = [line.strip() for line in stdout.splitlines() if line.endswith((" &", " make dev"))]
    work = root.resolve() / "demo"
    cli = str(BIN / "numerai-pipeline")
    assert shlex.split(serve) == [cli, "sim", "serve", str(work / "sim"), "--port", port, "&"]
    assert (
        dev == f"NUMERAI_API_URL={url} DAGSTER_HOME={work / 'dagster'} NUMERAI_HOME={work / 'home'} make dev"
    )
    said = stdout.replace("\n[demo] ", " ")
    assert "the round sensor and the weekly schedule ask that stand-in, never Numerai" in said

    server = subprocess.Popen(shlex.split(serve)[:-1], env=env, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert "simulated Numerai API at" in server.stdout.readline()
        monkeypatch.chdir(root)
        for name in [n for n in os.environ if n.startswith("NUMERAI_")]:
            monkeypatch.delenv(name)
        # make dev's environment: the printed variables (the tiny knobs, and a short sensor
        # interval so the tick need not wait the default minute after the demo's last one)
        for name, value in tiny_env(NUMERAI_ROUND_POLL_S="5").items():
            monkeypatch.setenv(name, value)
        for assignment in shlex.split(dev)[:-2]:
            monkeypatch.setenv(*assignment.split("=", 1))
        with dg.DagsterInstance.get() as instance:
            tick = tick_round_sensor(instance)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert tick.receipts == [] and tick.skip_message == "round 1001 is open and was submitted"

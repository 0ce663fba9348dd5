"""A trained tiny home and its Dagster instance, served by a real `dagster-webserver`, opened in
headless Chromium (Debian's `chromium`, driven by Playwright). `make test-ui` runs these; the
default `make test` leaves them out (they need the browser, which `make test-ui` installs)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from tests.numerai_assets.tiny import tiny_env
from tournament_sim.generate import generate_tournament
from tournament_sim.layout import load_state
from tournament_sim.rounds import advance_round
from tournament_sim.server import SimServer

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("NUMERAI_UI_CHROMIUM", "/usr/bin/chromium")
# The flags a closed network needs: without them Chromium keeps dialling Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WEBSERVER_START_S = 120
BACKFILL_ERAS = "0061:0068"  # validation eras the benchmark and the meta model cover, then the test block


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        [str(BIN / "numerai-pipeline"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (
        f"numerai-pipeline {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


@pytest.fixture(scope="session")
def ui_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The weekly job (the weekly schedule's tick, as the demo plays it) and one submitted round
    (`numerai-pipeline submit`) in one instance, then the next round, submitted by the round
    sensor's run."""
    root = tmp_path_factory.mktemp("ui")
    tournament = root / "tournament"
    generate_tournament(tournament, "tiny", seed=7)
    state = load_state(tournament)
    with SimServer(tournament) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMERAI_")}
        env |= tiny_env(
            NUMERAI_HOME=str(root / "home"),
            NUMERAI_API_URL=server.url,
            NUMERAI_PUBLIC_ID=state.public_id,
            NUMERAI_SECRET_KEY=state.secret_key,
            NUMERAI_MODEL_NAME=next(iter(state.models)),
        )
        env["DAGSTER_HOME"] = str(root / "dagster")
        Path(env["DAGSTER_HOME"]).mkdir()
        (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        _tick_training_schedule(env, root)
        _cli(["submit"], env, root)
        _cli(["backfill", "--eras", BACKFILL_ERAS, "--wait"], env, root)  # era_scores' tables
        # The next round opens; the round sensor's tick (as the daemon's) requests and runs it.
        advance_round(tournament)
        _tick_round_sensor(env, root)
        yield env


def _tick_training_schedule(env: dict[str, str], cwd: Path) -> None:
    """The weekly schedule's tick at its latest cron time through the instance (as the daemon's
    scheduler records it), and its weekly_training run, in a process of its own."""
    code = (
        "import dagster as dg\n"
        "from numerai_assets.cli.runs import training_summary\n"
        "from numerai_assets.cli.schedule_tick import tick_training_schedule\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    [result] = tick_training_schedule(instance).results\n"
        "    training_summary(result)\n"
    )
    _python(code, env, cwd, "the weekly schedule's tick")


def _tick_round_sensor(env: dict[str, str], cwd: Path) -> None:
    """One evaluation of the round sensor through the instance, in a process of its own."""
    code = (
        "import dagster as dg\n"
        "from numerai_assets.cli.round_sensor import tick_round_sensor\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    assert len(tick_round_sensor(instance).receipts) == 1\n"
    )
    # The tiny model may disagree with the next round's live benchmark: the page, not the check, is tested.
    _python(code, env | {"NUMERAI_MIN_BENCHMARK_CORR": "-1"}, cwd, "the round sensor's tick")


def _python(code: str, env: dict[str, str], cwd: Path, what: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{what}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="session")
def cli_runs(ui_env) -> dict[str, list]:
    """The runs the commands above started, by job name, newest first."""
    import dagster as dg

    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = ui_env["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            runs: dict[str, list] = {}
            for run in instance.get_runs():
                runs.setdefault(run.job_name, []).append(run)
            return runs
    finally:
        if saved is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = saved


@pytest.fixture(scope="session")
def webserver(ui_env, tmp_path_factory) -> Iterator[str]:
    """`dagster dev` (what `make dev` runs: the webserver and the daemon, which launches queued
    runs and backfills) on the repository's workspace, against the instance the CLI wrote."""
    port = _free_port()
    log = tmp_path_factory.mktemp("webserver") / "dagster-dev.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            env=ui_env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its webserver, daemon and code servers: stopped together
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/server_info", process, log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WEBSERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError(
        f"dagster dev did not answer {url} in {WEBSERVER_START_S} s:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium; a missing browser is an error that says how to get it, never a skip."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM}: no Chromium here; `make test-ui` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, webserver):
    context = browser.new_context(base_url=webserver, viewport={"width": 1600, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(60_000)
    _dismiss_welcome(opened)
    try:
        yield opened
    finally:
        context.close()


def _dismiss_welcome(page) -> None:
    """A fresh browser profile gets Dagster's one-time welcome dialog over every page; skip it
    once (the choice is kept in the context's local storage)."""
    page.goto("/runs")
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=15_000)
    except PlaywrightTimeout:  # no dialog this time: nothing to dismiss
        return
    skip.click()
    skip.wait_for(state="hidden")

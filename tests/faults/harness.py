"""What the fault tests share: the real `numerai-pipeline` started in its own session and
SIGKILLed (with every process it started) at a chosen point; digests of the published data;
the temporaries a home holds; the runs of the Dagster instance in DAGSTER_HOME."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg

from numerai_assets.cli.runs import PID_TAG
from tests.numerai_assets.test_cli import BIN, _env
from tests.numerai_assets.test_ingest_assets import _digests
from tests.numerai_assets.tiny import tiny_env

CLI = str(BIN / "numerai-pipeline")
# Every temporary of the service is a hidden name with one of these endings (model_core.atomic,
# NumeraiAPI.download, numerapi's resume file).
TEMPORARY_SUFFIXES = (".staging", ".tmp", ".lock", ".link", ".part", ".temp")


def cli_env(tmp_path: Path, api_url: str, **extra: str) -> dict[str, str]:
    """The CLI's environment: the tiny knobs, NUMERAI_HOME and DAGSTER_HOME under `tmp_path`."""
    return _env(tmp_path, **tiny_env(NUMERAI_API_URL=api_url, NUMERAI_API_BACKOFF_S="0.01", **extra))


class Killable:
    """`numerai-pipeline <args>` in a session of its own, its output (stdout and stderr) collected."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [CLI, *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            encoding="utf-8",
            errors="replace",  # the reader must never stop: a full pipe would block the child
            start_new_session=True,  # the kill takes whatever it started too
        )
        self.pid = self.proc.pid
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def kill_when(self, point: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
        """SIGKILL the process group as soon as `point()` holds (polled every 5 ms)."""
        deadline = time.monotonic() + timeout_s
        try:
            while not point():
                assert self.proc.poll() is None, f"it ended before {what}:\n{self.output[-3000:]}"
                assert time.monotonic() < deadline, f"not {what} within {timeout_s} s:\n{self.output[-3000:]}"
                time.sleep(0.005)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self._reader.join(timeout=30)
            self.proc.stdout.close()
        assert self.proc.returncode == -signal.SIGKILL


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def published(home: Path) -> dict[str, str]:
    """sha256 of every file of the current data: raw version, era store, returns, round downloads."""
    digests = {}
    for link in _links(home):
        digests |= {f"{link.relative_to(home)}/{name}": d for name, d in _digests(link.resolve()).items()}
    returns = home / "features" / "feature_returns.parquet"
    digests["features/feature_returns.parquet"] = hashlib.sha256(returns.read_bytes()).hexdigest()
    return digests


def targets(home: Path) -> dict[str, str]:
    """Where each published symlink points."""
    return {str(p.relative_to(home)): os.readlink(p) for p in _links(home)}


def _links(home: Path) -> list[Path]:
    """The published symlinks: the raw versions and `raw/current`, the era store, each round's
    download of each dataset version."""
    links = [
        *(home / "raw").glob("[!.]*"),
        home / "clean_eras" / "current",
        *(home / "rounds").glob("[0-9]*/v*"),
    ]
    return [p for p in links if p.is_symlink()]


def temporaries(home: Path) -> list[str]:
    """Every staging directory, temporary file and lock under `home` (none once the runs ended)."""
    return sorted(
        str(p.relative_to(home))
        for p in home.rglob(".*")
        if p.name.endswith(TEMPORARY_SUFFIXES) or ".staging" in p.name
    )


@contextlib.contextmanager
def dagster_instance(env: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    """The persistent instance the CLI wrote to (the test process's own DAGSTER_HOME restored after)."""
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            yield instance
    finally:
        if saved is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = saved


def run_statuses(env: dict[str, str]) -> list[tuple[str | None, dg.DagsterRunStatus]]:
    """(pid of the CLI process that ran it, status) of every run in the instance, oldest first."""
    with dagster_instance(env) as instance:
        records = instance.get_run_records()
    return [(r.dagster_run.tags.get(PID_TAG), r.dagster_run.status) for r in reversed(records)]

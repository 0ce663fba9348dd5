"""A `numerai-pipeline train` killed mid-training, then run again: the same model version is
completed from its checkpoints, and the killed run is marked failed in the instance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import torch

from tests.numerai_assets.tiny import tiny_env

BIN = Path(sys.executable).parent


def _env(tmp_path: Path, api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMERAI_", "DAGSTER_"))}
    env |= tiny_env(
        NUMERAI_API_URL=api_url,
        NUMERAI_HOME=str(tmp_path / "home"),
        NUMERAI_FOLD_CONCURRENCY="1",  # fold 0, then fold 1: the kill lands in fold 1
        NUMERAI_MAX_EPOCHS="3",
    )
    env["DAGSTER_HOME"] = str(tmp_path / "dagster")
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def _history(checkpoint: Path) -> list[dict]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["history"]


@pytest.mark.slow
def test_killed_train_resumes_the_same_model_version(tmp_path, server):
    env = _env(tmp_path, server.url)
    home = Path(env["NUMERAI_HOME"])
    cli = [str(BIN / "numerai-pipeline"), "train"]
    # Its own session, so the kill takes the step processes of the multiprocess executor too.
    killed = subprocess.Popen(
        cli,
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not list((home / "models").glob("*/fold_1.pt")):  # fold 0 done, fold 1 has an epoch
            assert killed.poll() is None, "train ended before it could be killed"
            assert time.monotonic() < deadline, "no fold_1 checkpoint within 240 s"
            time.sleep(0.05)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    version = json.loads((home / "training" / "cv_folds.json").read_text())["model_version"]
    assert not (home / "models" / "current").exists()
    fold_0 = home / "models" / version / "fold_0.pt"
    fold_0_before = _history(fold_0)
    fold_1_first_epoch = _history(home / "models" / version / "fold_1.pt")[0]

    done = subprocess.run(
        cli, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert f"resuming model version {version}" in output
    assert "fold 0: reusing the finished checkpoint" in output
    assert (home / "models" / "current").resolve().name == version
    assert json.loads((home / "models" / version / "ensemble.json").read_text())["choice"]
    assert _history(fold_0) == fold_0_before  # not trained again
    assert _history(home / "models" / version / "fold_1.pt")[0] == fold_1_first_epoch  # continued
    assert sorted(p.name for p in (home / "models").iterdir()) == sorted([version, "current"])

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            runs = instance.get_runs()  # newest first
            assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
            assert str(killed.pid) == runs[1].tags["numerai/cli_pid"]
            assert f"run {runs[1].run_id} (weekly_training) was left STARTED" in output
    finally:
        del os.environ["DAGSTER_HOME"]


def test_promotion_prunes_older_versions_that_never_reached_an_ensemble(tmp_path):
    from numerai_assets.shared.home import HomeLayout
    from numerai_assets.shared.model_versions import promote

    layout = HomeLayout(tmp_path)
    killed, finished, newest, later = (
        "20260101T000000Z-aaaaaa",
        "20260102T000000Z-bbbbbb",
        "20260103T000000Z-cccccc",
        "20260104T000000Z-dddddd",
    )
    for name in (killed, finished, newest, later):
        layout.model_dir(name).mkdir(parents=True)
        (layout.model_dir(name) / "fold_0.pt").write_bytes(b"")
    for name in (finished, newest):
        (layout.model_dir(name) / "ensemble.json").write_text("{}")
    promote(layout, newest)
    assert layout.current_model_link.resolve().name == newest
    # the killed one goes; a promoted one stays (churn reads it); a newer one may be training
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(
        [finished, newest, later, "current"]
    )

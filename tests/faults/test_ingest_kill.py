"""`numerai-pipeline ingest` SIGKILLed after a good ingest, during the download or during
clean_eras, then run again: the good data stayed current and byte-identical through the kill,
the rerun removes the dead run's staging (nothing is left), and the killed run, left STARTED,
is marked FAILURE by the next command."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from tests.faults.harness import Killable, published, run_cli, run_statuses, targets, temporaries
from tournament_sim.server import FaultConfig


def _staged(folder: Path, pattern: str, holding: str = "") -> list[Path]:
    """Staging directories of `folder` matching `pattern` (that already hold a file `holding`)."""
    return [p for p in folder.glob(pattern) if not holding or (p / holding).exists()]


def _kill_rerun_and_check(env: dict[str, str], cwd: Path, kill_point, staging_glob: str) -> None:
    home = Path(env["NUMERAI_HOME"])
    good, links = published(home), targets(home)
    before = run_statuses(env)
    killed = Killable(["ingest"], env, cwd)
    kill_point(killed)

    [staging] = home.glob(staging_glob)  # the kill landed mid-step: its staging is still there
    assert published(home) == good
    assert targets(home)["clean_eras/current"] == links["clean_eras/current"]
    assert run_statuses(env)[len(before)] == (str(killed.pid), dg.DagsterRunStatus.STARTED)

    rerun = run_cli(["ingest"], env, cwd)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output[-3000:]
    assert f"removed {staging}, left by a run that died" in output
    assert temporaries(home) == []
    after = run_statuses(env)
    assert after[len(before)] == (str(killed.pid), dg.DagsterRunStatus.FAILURE)
    assert f"was left STARTED: the process that ran this run (pid {killed.pid}" in output
    assert [status for _, status in after[len(before) + 1 :]] == [dg.DagsterRunStatus.SUCCESS] * 2
    raw = {name: digest for name, digest in published(home).items() if name.startswith("raw/")}
    assert raw == {name: digest for name, digest in good.items() if name.startswith("raw/")}


def test_killed_during_the_download(ingested_env, tmp_path, server):
    home = Path(ingested_env["NUMERAI_HOME"])
    good_raw = targets(home)["raw/v5.3"]
    # every download waits 1 s: the kill lands while train.parquet is being fetched
    server.set_faults(FaultConfig(delay_s=1.0, fail_paths=("download",)))

    def after_features_json(killed: Killable) -> None:
        killed.kill_when(
            lambda: _staged(home / "raw", ".v5.3-*.staging", holding="features.json"),
            "features.json in the download's staging",
        )
        server.set_faults(FaultConfig())
        assert targets(home)["raw/v5.3"] == good_raw  # not even re-published

    _kill_rerun_and_check(ingested_env, tmp_path, after_features_json, "raw/.v5.3-*.staging")


def test_killed_during_clean_eras(ingested_env, tmp_path):
    home = Path(ingested_env["NUMERAI_HOME"])

    def mid_cleaning(killed: Killable) -> None:
        # "cleaned 2/60 eras": some eras are in the new store's staging, most are still to come
        killed.kill_when(
            lambda: (
                "clean_eras - train.parquet: cleaned " in killed.output
                and _staged(home / "clean_eras", ".current-*.staging")
            ),
            "clean_eras half way",
        )

    _kill_rerun_and_check(ingested_env, tmp_path, mid_cleaning, "clean_eras/.current-*.staging")

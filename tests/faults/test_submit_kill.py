"""`numerai-pipeline submit` SIGKILLed while it downloads the round's live file, then run again:
the round is uploaded exactly once, the dead run's staging is removed, and the killed run is
marked FAILURE beside the rerun's SUCCESS. (A kill between the upload and the ledger write is
tests/numerai_assets/test_cli.py::test_killed_between_upload_and_ledger_then_rerun_does_not_upload_again.)"""

from __future__ import annotations

import dagster as dg
import pytest

from tests.faults.harness import Killable, run_cli, run_statuses, temporaries
from tests.numerai_assets.test_cli import _live_env, _round_partitions
from tournament_sim.server import FaultConfig, list_submissions


@pytest.mark.slow  # the session's trained home (the whole weekly job) when it is not built yet
def test_killed_during_the_live_download(tmp_path, trained_home, server, tournament, tournament_state):
    credentials = {
        "NUMERAI_PUBLIC_ID": tournament_state.public_id,
        "NUMERAI_SECRET_KEY": tournament_state.secret_key,
        "NUMERAI_MODEL_NAME": "sim_model",
    }
    env = _live_env(tmp_path, trained_home, server, tournament_state, **credentials)
    number = tournament_state.current.number
    rounds = trained_home / "rounds" / str(number)  # the round's downloads, one per dataset version
    # every download waits 1 s: the kill lands while the live file is being fetched
    server.set_faults(FaultConfig(delay_s=1.0, fail_paths=("download",)))
    killed = Killable(["submit"], env, tmp_path)
    killed.kill_when(lambda: list(rounds.glob(".v5.3-*.staging")), "the live file's staging")
    server.set_faults(FaultConfig())

    [staging] = rounds.glob(".v5.3-*.staging")
    assert not (rounds / "v5.3").exists()
    assert list_submissions(tournament) == []
    assert run_statuses(env) == [(str(killed.pid), dg.DagsterRunStatus.STARTED)]

    rerun = run_cli(["submit"], env, tmp_path)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output[-3000:]
    [landed] = list_submissions(tournament)  # exactly one upload for the round
    assert f"round {number}: uploaded" in output and landed["submission_id"] in output
    assert f"removed {staging}, left by a run that died" in output
    assert temporaries(trained_home) == []
    [(pid, status), (_, rerun_status)] = run_statuses(env)
    assert (pid, status, rerun_status) == (
        str(killed.pid),
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.SUCCESS,
    )
    assert f"was left STARTED: the process that ran this run (pid {killed.pid}" in output
    assert _round_partitions(env["DAGSTER_HOME"]) == [str(number)]

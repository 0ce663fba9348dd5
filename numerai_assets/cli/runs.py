"""Runs of the command line in the persistent instance: ingest, train, and the tags that tell a
dead command's runs. Each run belongs to the code location (`numerai_assets.cli.code_location`),
so the UI lists it under its job and can re-execute it; it executes in this process tree."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg

from numerai_assets.cli.code_location import code_location, metadata_values, run_here, user_message
from numerai_assets.ingest.assets import INGEST_ASSETS
from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.partitions import add_missing_partitions, round_partitions
from numerai_assets.training.jobs import TRAINING_JOB


def persistent_instance(numerai_home: Path) -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME; when unset, NUMERAI_HOME/dagster (created) so runs are kept."""
    if not os.environ.get("DAGSTER_HOME"):
        home = (Path(numerai_home) / "dagster").resolve()
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    instance = dg.DagsterInstance.get()
    fail_dead_cli_runs(instance)
    return instance


# Tags on every run this CLI launches in its own process: which process runs it, so a later
# command can tell a run whose process was killed (left STARTED for ever) from one still going.
PID_TAG = "numerai/cli_pid"
HOST_TAG = "numerai/cli_host"
PROCESS_START_TAG = "numerai/cli_process_start"  # /proc start time: a reused pid is not the same process


def cli_run_tags() -> dict[str, str]:
    """The launching process, as run tags (see `fail_dead_cli_runs`)."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    start = _process_start(os.getpid())
    return tags | ({PROCESS_START_TAG: start} if start else {})


def fail_dead_cli_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs our CLI launched on this host whose process is gone (killed, crashed
    machine): Dagster would show them STARTED for ever. Runs launched by the daemon, a run worker,
    the UI or another host carry no tags of ours here, and are left alone. Returns their ids."""
    active = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=active)):
        tags = run.tags
        if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
            continue
        if run.parent_run_id is not None:
            # A re-execution (from the UI, or a retry) inherits its parent's tags, ours included,
            # but the daemon runs it: this CLI never starts one.
            continue
        pid = int(tags[PID_TAG])
        if _alive(pid, tags.get(PROCESS_START_TAG)):
            continue
        message = (
            f"the process that ran this run (pid {pid} on {tags[HOST_TAG]}) is gone, killed or crashed; "
            "marked failed by the next numerai-pipeline command"
        )
        instance.report_run_failed(run, message)
        print(
            f"[instance] run {run.run_id} ({run.job_name}) was left {run.status.value}: {message}", flush=True
        )
        failed.append(run.run_id)
    return failed


def _alive(pid: int, start: str | None) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc here: the pid exists, which is all we can tell
    return fields[0] != "Z" and (start is None or fields[19] == start)  # Z: killed, not yet reaped


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None where unknown."""
    fields = _proc_stat(pid)
    return None if fields is None else fields[19]


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: state, ppid, ... (field 3 onwards), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def materialize_selection(
    workspace,
    selection: list[str],
    partition_key: str | None = None,
    log_level: str = "INFO",
):
    """Materialise `selection` (asset names) as a run of the code location's implicit asset job
    (what the UI's "Materialize" launches), in this process; raises on failure.

    workspace: `code_location.code_location(instance)`. The console shows the assets' own
    progress (INFO); Dagster's step bookkeeping (DEBUG) stays in the instance's event log,
    visible in the UI. A failed step raises `RunFailedError` with what its own error said.
    """
    from numerai_assets.shared import dagster_private as private

    result = run_here(
        workspace,
        private.IMPLICIT_ASSET_JOB_NAME,
        asset_selection=selection,
        partition_key=partition_key,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        tags=cli_run_tags(),
    )
    if not result.success:
        errors = [user_message(e.event_specific_data.error) for e in result.get_step_failure_events()]
        raise RunFailedError("; ".join(errors) or f"run {result.run_id} failed: see the Dagster UI")
    return result


def ingest(defs: dg.Definitions, instance: dg.DagsterInstance, with_round: bool = True) -> dict[str, dict]:
    """raw_dataset -> clean_eras -> feature_returns, and the current round's live file.

    Returns each asset's materialisation metadata (plain values) for a summary.
    """
    summary: dict[str, dict] = {}
    with code_location(instance) as workspace:
        result = materialize_selection(workspace, list(INGEST_ASSETS))
        for name in INGEST_ASSETS:
            summary[name] = metadata_values(result, name)
        api: NumeraiAPI = defs.resources["numerai"]
        if with_round and not api.round_open():
            summary["raw_round"] = {"skipped": "no round is open for submissions now"}
        elif with_round:
            round_number = api.current_round()
            add_missing_partitions(instance, round_partitions.name, [str(round_number)])
            result = materialize_selection(workspace, ["raw_round"], partition_key=str(round_number))
            summary["raw_round"] = metadata_values(result, "raw_round")
    return summary


def train(instance: dg.DagsterInstance, log_level: str = "INFO", workspace=None) -> dict[str, dict]:
    """The weekly training job (ingest -> folds -> diagnostics), a run of the code location's
    `weekly_training` with its executor, in this process; returns each asset's metadata.

    The multiprocess executor runs each step (each fold) in its own process, as under the daemon.
    `workspace`: an open `code_location(instance)` to reuse (else one is opened for this run).
    """
    if workspace is None:
        with code_location(instance) as opened:
            return train(instance, log_level, opened)
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    return training_summary(run_here(workspace, TRAINING_JOB, run_config=run_config, tags=cli_run_tags()))


def training_summary(result) -> dict[str, dict]:
    """Each asset's metadata (plain values) of a finished weekly_training run's `result`;
    TrainingRunError, naming the failed steps and their errors, when it failed."""
    if not result.success:
        failures = [
            f"{e.step_key}: {e.event_specific_data.error.message.strip()}"
            for e in result.get_step_failure_events()
        ]
        raise TrainingRunError(
            f"run {result.run_id} failed: " + ("; ".join(failures) or "see the Dagster UI")
        )
    summary = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        summary[materialization.asset_key.to_user_string()] = {
            k: getattr(v, "value", v) for k, v in materialization.metadata.items()
        }
    return summary


class RunFailedError(RuntimeError):
    """A run the command started failed; the message carries the failed steps' own errors."""


class TrainingRunError(RunFailedError):
    """A step of the training run failed; the message names it and carries its error."""

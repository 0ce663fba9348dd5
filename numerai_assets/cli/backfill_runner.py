"""Taking a recorded backfill to its end: following the dagster-daemon, or doing its part here.

`launch_backfill(wait=True)` follows the backfill to its end with a progress bar. When no daemon
is running (a plain shell, cron, CI), it does the daemon's two jobs itself, for this one backfill
only:
- the backfill daemon's iteration (`dagster._daemon.backfill.execute_backfill_jobs`, the very
  function the daemon calls with the requested backfills), which plans the runs, creates them
  with the backfill's tags and submits them to the instance's run coordinator, and later marks
  the backfill complete from what the runs materialised;
- the run queue's job: each run it queued is executed in this process by the run worker's own
  entry point (`dagster._grpc.impl.core_execute_run`, what `dagster api execute_run` calls).
Both are private Dagster functions, but they are the least private way that leaves exactly what
the daemon leaves: the same backfill row and status, runs created by Dagster's own planner (the
partition ranges of the backfill policy) with the backfill tag, their event logs and asset
materialisations. Public APIs cannot do it: `execute_job` / `materialize` create runs outside any
backfill, and the GraphQL `launchPartitionBackfill` only records the row (like
`numerai_assets.cli.backfills.create_backfill` does) and leaves the rest to a daemon.
Like every private Dagster name, they come through `numerai_assets.shared.dagster_private`.

Dagster is imported inside functions so `numerai-pipeline --help` stays fast.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from numerai_assets.cli.backfill_report import BackfillError, _runs
from numerai_assets.cli.code_location import code_location

if TYPE_CHECKING:
    import dagster as dg

POLL_S = 2.0  # how often --wait looks at a backfill the daemon runs
DAEMON_SILENT_S = 90.0  # as numerai_assets.backfill.launch.DAEMON_SILENT_S: no heartbeat for longer, stopped

LOGGER = logging.getLogger("numerai.backfill")


def daemon_running(instance: dg.DagsterInstance) -> bool:
    """Whether a dagster-daemon serves this instance (numerai_assets.backfill.launch.daemon_running)."""
    from numerai_assets.backfill.launch import daemon_running as running

    return running(instance)


def follow_backfill(instance: dg.DagsterInstance, backfill_id: str, tick: Callable[[], None]) -> bool:
    """Poll until the backfill ends; if the daemon stops meanwhile, finish it here. Returns
    whether this process had to run it."""
    while not _finished(instance, backfill_id):
        tick()
        if not daemon_running(instance):
            LOGGER.warning("the dagster-daemon stopped: running the rest of backfill %s here", backfill_id)
            run_backfill_here(instance, backfill_id, tick)
            return True
        time.sleep(POLL_S)
    return False


def run_backfill_here(instance: dg.DagsterInstance, backfill_id: str, tick: Callable[[], None]) -> None:
    """Play the daemon's part for one backfill in this process until it ends (see the module doc)."""
    from dagster import DagsterRunStatus

    from numerai_assets.shared import dagster_private as private

    with code_location(instance) as workspace:
        while not _finished(instance, backfill_id):
            backfill = instance.get_backfill(backfill_id)
            for error in private.execute_backfill_jobs(workspace, LOGGER, [backfill]):
                if error is not None:
                    LOGGER.warning("backfill %s: %s", backfill_id, error.message.strip())
            queued = _runs(instance, backfill_id, [DagsterRunStatus.QUEUED])
            for run in queued:
                tick()
                _execute_queued_run(instance, run)
            tick()
            if not queued:  # runs launched elsewhere are still going, or the next iteration decides
                time.sleep(0.2 if not _runs(instance, backfill_id, _in_progress_statuses()) else POLL_S)


def _execute_queued_run(instance: dg.DagsterInstance, run) -> None:
    """Dequeue and execute one run here, as the run queue daemon and the run worker would."""
    from dagster import DagsterEvent, DagsterEventType

    from numerai_assets.cli.runs import cli_run_tags
    from numerai_assets.shared import dagster_private as private

    # This process runs it: if it dies, the next command tells the run apart and marks it failed.
    instance.add_run_tags(run.run_id, cli_run_tags())
    # The run queue daemon's dequeue step: QUEUED -> STARTING.
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.PIPELINE_STARTING.value, job_name=run.job_name),
        run_id=run.run_id,
    )
    run = instance.get_run_by_id(run.run_id)
    for _event in private.core_execute_run(
        private.recon_job_from_origin(run.job_code_origin), run, instance, inject_env_vars=False
    ):
        pass


def _in_progress_statuses():
    from dagster import DagsterRunStatus

    return [
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.QUEUED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.STARTED,
        DagsterRunStatus.CANCELING,
    ]


def _finished(instance: dg.DagsterInstance, backfill_id: str) -> bool:
    from numerai_assets.shared import dagster_private as private

    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise BackfillError(f"backfill {backfill_id} is not in this Dagster instance")
    return backfill.status in private.BULK_ACTION_TERMINAL_STATUSES

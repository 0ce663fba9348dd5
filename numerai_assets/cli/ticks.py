"""What the round sensor's and the weekly schedule's ticks through the instance share.

Dagster's sensor and scheduler iterations (`round_sensor.tick_round_sensor`,
`schedule_tick.tick_training_schedule`) record a tick, create its runs and submit them to the
instance's run coordinator, which queues them; under `make dev` the daemon's run queue would then
start them. Without a daemon, `execute_queued_run` takes one such run (QUEUED -> STARTING, the run
queue's dequeue step) and executes it in this process (`code_location.execute_here`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg


class RunNotQueuedError(RuntimeError):
    """A tick's run was started by the instance's run coordinator, not queued for this process."""


def execute_queued_run(instance: dg.DagsterInstance, run_id: str):
    """Take the queued run `run_id` and execute it here; its `JobExecutionResult`."""
    import dagster as dg

    from numerai_assets.cli.code_location import execute_here
    from numerai_assets.cli.runs import cli_run_tags

    run = instance.get_run_by_id(run_id)
    if run.status != dg.DagsterRunStatus.QUEUED:
        raise RunNotQueuedError(
            f"run {run_id} is {run.status.value}, not queued: this instance's run coordinator started it; "
            "follow it in the UI"
        )
    instance.add_run_tags(run_id, cli_run_tags())  # this process runs it: a dead one is told apart
    # The run queue daemon's dequeue step: QUEUED -> STARTING.
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.PIPELINE_STARTING.value, job_name=run.job_name),
        run_id=run_id,
    )
    return execute_here(instance, instance.get_run_by_id(run_id))


def latest_tick(instance: dg.DagsterInstance, instigator):
    """The newest recorded tick of a sensor or schedule of the workspace, or None."""
    ticks = instance.get_ticks(instigator.get_remote_origin_id(), instigator.selector_id, limit=1)
    return ticks[0] if ticks else None

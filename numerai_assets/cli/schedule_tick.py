"""The weekly schedule's latest tick, recorded through the instance as the daemon's scheduler does.

`tick_training_schedule` plays what a dagster-daemon serving the instance since just before the
schedule's latest cron time would have done at that time. The schedule's instigator state is
written as running since a second before that time (its status as the daemon reads it: declared
in code, the schedule's default_status RUNNING, unless a stored one says otherwise), then one
iteration of Dagster's own scheduler (`dagster._scheduler.scheduler.launch_scheduled_runs`) runs
over the code location's workspace: it finds that cron time due, records a tick for it, evaluates
the schedule in the code server and creates the run with the schedule's tags and run config,
queued in the instance's run queue. The schedule's page in the UI lists the tick and its run.
The run queue's part is then done here (`ticks.execute_queued_run`).

The schedule stays running afterwards, as its code declares: a daemon (`make dev`) carries on from
the recorded iteration and ticks at the next cron time, never again at this one.

Dagster is imported inside functions so `numerai-pipeline --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import TYPE_CHECKING

from numerai_assets.training.jobs import TRAINING_SCHEDULE

if TYPE_CHECKING:
    import dagster as dg

LOGGER = logging.getLogger("numerai.schedule")


class ScheduleTickError(RuntimeError):
    """The schedule's tick was not recorded here, or it failed; the message says which and why."""


@dataclasses.dataclass
class ScheduleTick:
    tick_time: dt.datetime  # the cron time the tick is for, in the schedule's timezone
    run_ids: list[str]
    results: list  # the `JobExecutionResult` of each run, executed here


def tick_training_schedule(instance: dg.DagsterInstance, workspace=None) -> ScheduleTick:
    """weekly_training_schedule's tick at its latest cron time through the instance, then its run, here.

    workspace: an open `code_location.code_location(instance)` to reuse (else one is opened).
    Raises ScheduleTickError when a daemon serves the instance (it runs the schedule itself), when
    the schedule is stopped there, when no new tick was recorded (one for that time exists) or
    when its evaluation failed; RunNotQueuedError when the instance's run coordinator started the
    run itself. The runs' own failures are in their results (`runs.training_summary` raises them).
    """
    from numerai_assets.cli.backfill_runner import daemon_running
    from numerai_assets.cli.code_location import code_location, location_and_repository
    from numerai_assets.cli.ticks import execute_queued_run, latest_tick
    from numerai_assets.shared import dagster_private as private

    if workspace is None:
        with code_location(instance) as opened:
            return tick_training_schedule(instance, opened)
    if daemon_running(instance):
        raise ScheduleTickError(
            f"a dagster-daemon serves this Dagster instance: it runs {TRAINING_SCHEDULE} itself"
        )
    _location, repository = location_and_repository(workspace)
    schedule = repository.get_schedule(TRAINING_SCHEDULE)
    stored = instance.get_instigator_state(schedule.get_remote_origin_id(), schedule.selector_id)
    current = schedule.get_current_instigator_state(stored)  # what the daemon's scheduler reads
    if not current.is_running:
        raise ScheduleTickError(
            f"{TRAINING_SCHEDULE} is stopped in this Dagster instance: start it on its page in the UI"
        )
    tick_time = next(schedule.execution_time_iterator(time.time(), ascending=False))
    running_since = current.with_data(
        private.ScheduleInstigatorData(schedule.cron_schedule, start_timestamp=tick_time.timestamp() - 1)
    )
    if stored is None:
        instance.add_instigator_state(running_since)
    else:
        instance.update_instigator_state(running_since)
    before = latest_tick(instance, schedule)
    for error in private.launch_scheduled_runs(
        workspace, LOGGER, end_datetime_utc=dt.datetime.now(dt.UTC), iteration_times={}
    ):
        if error is not None:
            LOGGER.warning("scheduler iteration: %s", error.message.strip())
    tick = latest_tick(instance, schedule)
    if tick is None or (before is not None and tick.tick_id == before.tick_id):
        raise ScheduleTickError(
            f"{TRAINING_SCHEDULE} was not evaluated at {tick_time:%Y-%m-%d %H:%M %Z} "
            "(no new tick in the instance: it has ticked at that time already)"
        )
    if tick.status != private.TickStatus.SUCCESS:
        why = tick.error.message.strip() if tick.error else tick.skip_reason or "see its page in the UI"
        raise ScheduleTickError(f"{TRAINING_SCHEDULE}'s tick is {tick.status.value}: {why}")
    print(
        f"[schedule] {TRAINING_SCHEDULE}'s tick of {tick_time:%Y-%m-%d %H:%M %Z} (cron "
        f"'{schedule.cron_schedule}'): run {', '.join(tick.run_ids)} queued, executed here",
        flush=True,
    )
    results = [execute_queued_run(instance, run_id) for run_id in tick.run_ids]
    return ScheduleTick(tick_time, list(tick.run_ids), results)

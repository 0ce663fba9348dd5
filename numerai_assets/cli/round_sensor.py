"""The round sensor evaluated through the instance, as the daemon does, on a machine without one.

`tick_round_sensor` runs one iteration of Dagster's own sensor daemon
(`dagster._daemon.sensor.execute_sensor_iteration`) over the code location's workspace: the tick,
its cursor, skip reason and requested runs are recorded in the instance exactly as the daemon
records them (the sensor's page in the UI lists them), the runs are created with the sensor's tags
and its run-key rule (a round already requested is not requested again), and they are queued in
the instance's run queue. The run queue's part is then done here: each queued run of the tick is
taken and executed in this process (`ticks.execute_queued_run`).

The daemon evaluates a sensor at most once per its minimum interval (NUMERAI_ROUND_POLL_S); so
does this, waiting out what is left of it. It runs every sensor of the location that is due, as
the daemon's iteration does, and executes the runs of the round sensor's tick.

Dagster is imported inside functions so `numerai-pipeline --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import dagster as dg

from numerai_assets.cli.live_runs import LiveRunError, live_receipt
from numerai_assets.live.sensor import ROUND_SENSOR

LOGGER = logging.getLogger("numerai.sensor")


@dataclasses.dataclass
class SensorTick:
    cursor: str | None  # the sensor's cursor after the tick (the last round it requested)
    skip_message: str | None  # why nothing was requested, when nothing was
    receipts: list[dict]  # the submission metadata of each run the tick requested
    run_ids: list[str]


def tick_round_sensor(instance: dg.DagsterInstance, workspace=None) -> SensorTick:
    """One evaluation of round_open_sensor through the instance, then its requested runs, here.

    workspace: an open `code_location.code_location(instance)` to reuse (else one is opened).
    Raises LiveRunError when a daemon serves the instance (it evaluates the sensor itself), when
    the sensor is stopped there, when its evaluation failed, or when a requested run failed.
    """
    from numerai_assets.cli.backfill_runner import daemon_running
    from numerai_assets.cli.code_location import code_location
    from numerai_assets.cli.ticks import latest_tick
    from numerai_assets.shared import dagster_private as private

    if workspace is None:
        with code_location(instance) as opened:
            return tick_round_sensor(instance, opened)
    if daemon_running(instance):
        raise LiveRunError(
            "a dagster-daemon serves this Dagster instance: it evaluates the round sensor itself"
        )
    sensor = _round_sensor(workspace)
    state = instance.get_instigator_state(sensor.get_remote_origin_id(), sensor.selector_id)
    if not sensor.get_current_instigator_state(state).is_running:
        raise LiveRunError(
            f"{ROUND_SENSOR} is stopped in this Dagster instance: start it on its page in the UI"
        )
    _wait_out_interval(state, sensor.min_interval_seconds)
    before = latest_tick(instance, sensor)
    for error in private.execute_sensor_iteration(
        workspace, LOGGER, threadpool_executor=None, submit_threadpool_executor=None
    ):
        if error is not None:
            LOGGER.warning("sensor daemon iteration: %s", error.message.strip())
    tick = latest_tick(instance, sensor)
    if tick is None or (before is not None and tick.tick_id == before.tick_id):
        raise LiveRunError(f"{ROUND_SENSOR} was not evaluated (no new tick in the instance)")
    if tick.status == private.TickStatus.FAILURE:
        message = tick.error.message.strip() if tick.error else "see its page in the UI"
        raise LiveRunError(f"{ROUND_SENSOR}: the evaluation failed: {message}")
    receipts = [_execute_requested_run(instance, run_id) for run_id in tick.run_ids]
    return SensorTick(tick.cursor, tick.skip_reason, receipts, list(tick.run_ids))


def _round_sensor(workspace):
    from numerai_assets.cli.code_location import location_and_repository

    _location, repository = location_and_repository(workspace)
    return repository.get_sensor(ROUND_SENSOR)


def _wait_out_interval(state, interval_s: int | None) -> None:
    """Sleep until the sensor's minimum interval has passed since its last tick (the daemon's rule)."""
    data = state.instigator_data if state is not None else None
    last = max(
        getattr(data, "last_tick_timestamp", None) or 0, getattr(data, "last_tick_start_timestamp", None) or 0
    )
    left = (interval_s or 0) - (time.time() - last) if last else 0
    if left > 0:
        print(
            f"[sensor] next evaluation in {left:.0f}s (the sensor's interval, NUMERAI_ROUND_POLL_S)",
            flush=True,
        )
        time.sleep(left)


def _execute_requested_run(instance: dg.DagsterInstance, run_id: str) -> dict:
    """The run queue's part for one run the tick queued: take it, execute it here; its receipt."""
    from numerai_assets.cli.ticks import execute_queued_run

    run = instance.get_run_by_id(run_id)
    partition = run.tags.get("dagster/partition")
    print(
        f"[sensor] run requested: run_key {run.tags.get('dagster/run_key')}, partition {partition}",
        flush=True,
    )
    return live_receipt(execute_queued_run(instance, run_id), int(partition))

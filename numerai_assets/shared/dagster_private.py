"""The one door to Dagster's private API (`dagster._...`): every such name we use, and why.

Nothing else in `numerai_assets` imports `dagster._`; code that needs one of these names writes
`from numerai_assets.shared import dagster_private as private` (inside the function that needs it)
and uses `private.<name>`. Each name is imported only when first used: some of them load Dagster's
daemon, which the code location itself never needs.

Private names change between Dagster releases without notice. They were checked against the
dagster version pinned in constraints.txt; `tests/numerai_assets/test_dagster_private.py` fails,
naming this module, when another version is installed, and checks that every name below still
resolves. Before moving the pin: read each entry's reason again
against the new release (a public API may exist by then), and run the backfill and status tests.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> (the private module it comes from, why no public API does it)
PRIVATE_NAMES: dict[str, tuple[str, str]] = {
    # Settings: NUMERAI_TRAINING_CRON is checked when the code location loads.
    "is_valid_cron_string": (
        "dagster._utils.schedules",
        "the cron check itself; public ScheduleDefinition runs it only while building a schedule, "
        "raising its own error (and warning) instead of answering yes or no",
    ),
    # `numerai-pipeline status`: when the weekly training runs next.
    "cron_string_iterator": (
        "dagster._utils.schedules",
        "no public API gives the next tick of a cron schedule",
    ),
    # Run tags Dagster sets on backfill runs; it exports no constants for them.
    "BACKFILL_ID_TAG": (
        "dagster._core.storage.tags",
        "the tag ('dagster/backfill') naming a run's backfill; not exported publicly",
    ),
    "PARTITION_NAME_TAG": (
        "dagster._core.storage.tags",
        "the tag ('dagster/partition') of a single-partition run; not exported publicly",
    ),
    "ASSET_PARTITION_RANGE_START_TAG": (
        "dagster._core.storage.tags",
        "the first partition of a multi-partition (range) run; not exported publicly",
    ),
    "ASSET_PARTITION_RANGE_END_TAG": (
        "dagster._core.storage.tags",
        "the last partition of a multi-partition (range) run; not exported publicly",
    ),
    # Run retries (run_retries in dagster.yaml): the round sensor leaves a failed live run that
    # Dagster will re-execute to Dagster, and the failure alert says a retry follows.
    "WILL_RETRY_TAG": (
        "dagster._core.storage.tags",
        "the tag ('dagster/will_retry') Dagster sets on a failed run it will retry; not exported publicly",
    ),
    "AUTO_RETRY_RUN_ID_TAG": (
        "dagster._core.storage.tags",
        "the tag ('dagster/auto_retry_run_id') naming the retry of a failed run; not exported publicly",
    ),
    # Recording a backfill as the UI's "Launch backfill" does (numerai_assets.cli.backfills).
    "PartitionBackfill": (
        "dagster._core.execution.backfill",
        "the backfill row the UI records; publicly only the GraphQL launchPartitionBackfill makes one",
    ),
    "BULK_ACTION_TERMINAL_STATUSES": (
        "dagster._core.execution.backfill",
        "the statuses in which a backfill has ended; not exported publicly",
    ),
    "PartitionRangeSelector": (
        "dagster._core.definitions.selector",
        "a range of partition keys, as PartitionBackfill takes them; no public equivalent",
    ),
    "PartitionsSelector": (
        "dagster._core.definitions.selector",
        "the ranges of one asset, as PartitionBackfill takes them; no public equivalent",
    ),
    "PartitionsByAssetSelector": (
        "dagster._core.definitions.selector",
        "asset -> its partition ranges, as PartitionBackfill takes them; no public equivalent",
    ),
    "make_new_backfill_id": (
        "dagster._core.utils",
        "backfill ids in the form the UI makes (short, lowercase); no public function",
    ),
    # Doing the daemon's part for one backfill when no daemon runs (numerai_assets.cli.backfill_runner).
    "get_daemon_statuses": (
        "dagster._daemon.controller",
        "whether a dagster-daemon serves the instance (its heartbeats); no public API reads them",
    ),
    "BackfillDaemon": (
        "dagster._daemon.daemon",
        "the backfill daemon's type, whose heartbeat says a daemon runs backfills",
    ),
    "QueuedRunCoordinatorDaemon": (
        "dagster._daemon.run_coordinator.queued_run_coordinator_daemon",
        "the run queue daemon's type, whose heartbeat says queued runs will start",
    ),
    "execute_backfill_jobs": (
        "dagster._daemon.backfill",
        "the backfill daemon's own iteration (plans, creates and submits the runs, then closes the "
        "backfill); public execute_job / materialize make runs outside any backfill",
    ),
    "WorkspaceProcessContext": (
        "dagster._core.workspace.context",
        "the workspace execute_backfill_jobs reads the code location from",
    ),
    "ModuleTarget": (
        "dagster._core.workspace.load_target",
        "the code location (module numerai_assets.definitions) that workspace loads",
    ),
    "core_execute_run": (
        "dagster._grpc.impl",
        "the run worker's entry point (what `dagster api execute_run` calls) for a queued run",
    ),
    "recon_job_from_origin": (
        "dagster._utils.hosted_user_process",
        "the job of a run rebuilt from its code origin, as the run worker does",
    ),
    # Runs of the command line that belong to the code location (numerai_assets.cli.code_location):
    # created from the workspace's job with its origins, as the UI and the daemon create them.
    "JobSubsetSelector": (
        "dagster._core.definitions.selector",
        "names the location's job (and asset subset) to fetch from the code server; public "
        "materialize / execute_job create runs with no code-location origin, so the UI lists them "
        "under no job and cannot re-execute them",
    ),
    "execute_run": (
        "dagster._core.execution.api",
        "executes a run created beforehand (with its origins) in this process; public execute_job "
        "executes only a run it creates itself, without the origin",
    ),
    "ReconstructableRepository": (
        "dagster._core.definitions.reconstruct",
        "rebuilds any job of the code location, the implicit asset job included, from a function "
        "of the module in each step process; public reconstructable / build_reconstructable_job "
        "take a job function and refuse the implicit asset job's reserved name",
    ),
    "ReconstructableJob": (
        "dagster._core.definitions.reconstruct",
        "its process-wide cache of the last job it rebuilt (lru_cache on get_definition and "
        "get_repository_definition, keyed on code pointer and job name, not on the environment), "
        "emptied before each run so the job is rebuilt from the settings of now; no public API clears it",
    ),
    "IMPLICIT_ASSET_JOB_NAME": (
        "dagster._core.definitions.assets.job.asset_job",
        "the name of the implicit asset job, which the UI's 'Materialize' launches; not exported",
    ),
    # The demo and `tick_round_sensor`: the round sensor evaluated through the instance.
    "execute_sensor_iteration": (
        "dagster._daemon.sensor",
        "one iteration of the sensor daemon (a recorded tick, the cursor, runs created with the "
        "sensor's tags and run-key rule); public build_sensor_context/evaluate_tick record nothing",
    ),
    "TickStatus": (
        "dagster._core.scheduler.instigation",
        "the status of a recorded sensor or schedule tick (success, skipped, failure); not exported",
    ),
    # The demo and `tick_training_schedule`: the weekly schedule's tick through the instance.
    "launch_scheduled_runs": (
        "dagster._scheduler.scheduler",
        "one iteration of the scheduler daemon (a recorded tick for each due cron time, runs "
        "created with the schedule's tags and queued); public build_schedule_context and "
        "evaluate_tick record nothing",
    ),
    "ScheduleInstigatorData": (
        "dagster._core.scheduler.instigation",
        "a schedule's stored state data (the time it runs from, which bounds the cron times the "
        "scheduler launches); publicly only the UI's start/stop mutations write it, from now",
    ),
}


def __getattr__(name: str) -> Any:
    """`dagster_private.<name>`: imported from its private module on first use."""
    if name not in PRIVATE_NAMES:
        raise AttributeError(f"{__name__} has no {name!r}: add it to PRIVATE_NAMES with the reason")
    module, _why = PRIVATE_NAMES[name]
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

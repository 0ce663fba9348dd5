"""`numerai-pipeline backfill`: a real Dagster backfill of partitions, in the persistent instance.

`launch_backfill` records what the UI's "Materialize -> choose partitions -> Launch backfill"
records: a `PartitionBackfill` row in the instance (it is listed on the UI's backfills page). The
dagster-daemon's backfill loop then turns it into runs, each tagged `dagster/backfill=<id>`: for
eras, ceil(n / NUMERAI_BACKFILL_ERAS_PER_RUN) runs, each over a range of eras
(`BackfillPolicy.multi_run`).

`wait=True` follows the backfill to its end with a progress bar. When no daemon is running (a
plain shell, cron, CI), it does the daemon's two jobs itself, for this one backfill only:
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
backfill, and the GraphQL `launchPartitionBackfill` only records the row (like this module does)
and leaves the rest to a daemon.

Nothing here imports torch; Dagster is imported inside functions so `--help` stays fast.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import dagster as dg

ERA_PARTITIONS = "numerai_era"  # numerai_assets.defs.partitions.era_partitions
ERA_ASSETS = ("era_predictions", "era_scores")  # numerai_assets.defs.backfill
ROUND_PARTITIONS = "numerai_round"  # numerai_assets.defs.partitions.round_partitions
# A past round's live file and predictions (submission is left out: Numerai takes uploads for
# the open round only, which the round sensor or `numerai-pipeline submit` handles).
ROUND_ASSETS = ("raw_round", "live_predictions")
CODE_MODULE = "numerai_assets.definitions"
CODE_LOCATION = "numerai"  # as in workspace.yaml, so the runs belong to the location the UI shows
# The runs' console stays quiet (the progress bar, then one line per failed run, say it all); their
# event logs keep everything, in the UI.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
LAUNCHED_BY_TAG = "numerai/launched_by"
POLL_S = 2.0  # how often --wait looks at a backfill the daemon runs
DAEMON_SILENT_S = 90.0  # a daemon with no heartbeat for longer is taken as stopped
UI_PATH = "/runs/b/{backfill_id}"

LOGGER = logging.getLogger("numerai.backfill")


class BackfillError(RuntimeError):
    """A backfill could not be launched, or it ended with failed runs (the message says which)."""


@dataclasses.dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    partitions: str  # "0575..0626", or one key
    error: str | None  # the first failed step's message


@dataclasses.dataclass(frozen=True)
class BackfillReport:
    backfill_id: str
    status: str  # the BulkActionStatus value, e.g. COMPLETED_SUCCESS; REQUESTED when not waited on
    partitions: dict[str, list[str]]  # asset -> partition keys targeted
    runs: list[RunSummary]  # runs of the backfill so far, oldest first
    ran_here: bool  # True when this process did the daemon's part
    daemon_running: bool
    error: str | None = None  # the backfill's own error (planning, not a run), first line

    @property
    def succeeded(self) -> bool:
        return self.status == "COMPLETED_SUCCESS"


# ---- selecting partitions -------------------------------------------------------------------


def select_eras(registered: Sequence[str], spec: str) -> list[str]:
    """The registered eras of `spec` ("0575:0700", inclusive, or one era "0575"), in registered order.

    Every era number of the range must be registered as a `numerai_era` partition; otherwise a
    ValueError names the ones that are not.
    """
    first, _, last = spec.partition(":")
    first, last = first.strip(), (last.strip() if last else first.strip())
    for label in (first, last):
        if not label.isdigit():
            raise ValueError(f"--eras {spec!r}: {label!r} is not an era number (e.g. --eras 0575:0700)")
    lo, hi = int(first), int(last)
    if lo > hi:
        raise ValueError(f"--eras {spec!r}: the range is empty ({first} comes after {last})")
    if not registered:
        raise ValueError(
            f"no {ERA_PARTITIONS} partitions are registered in this Dagster instance: "
            "materialise clean_eras first (numerai-pipeline ingest)"
        )
    numbers = {int(era): era for era in registered if era.isdigit()}
    absent = [n for n in range(lo, hi + 1) if n not in numbers]
    if absent:
        width = max(len(first), len(last), 4)
        raise ValueError(
            f"--eras {spec}: {len(absent)} era(s) not registered as {ERA_PARTITIONS} partitions: "
            f"{_number_ranges(absent, width)} (registered: {_number_ranges(sorted(numbers), width)}); "
            "ingest data that has them first (numerai-pipeline ingest)"
        )
    return [era for era in registered if era.isdigit() and lo <= int(era) <= hi]


def select_rounds(spec: str) -> list[str]:
    """Round numbers of `spec` ("1001:1004", inclusive, or one round "1001") as partition keys."""
    first, _, last = spec.partition(":")
    first, last = first.strip(), (last.strip() if last else first.strip())
    for label in (first, last):
        if not label.isdigit():
            raise ValueError(f"--rounds {spec!r}: {label!r} is not a round number (e.g. --rounds 1001:1004)")
    lo, hi = int(first), int(last)
    if lo > hi:
        raise ValueError(f"--rounds {spec!r}: the range is empty ({first} comes after {last})")
    return [str(n) for n in range(lo, hi + 1)]


def _number_ranges(numbers: Sequence[int], width: int) -> str:
    """[1, 2, 3, 7] -> '0001..0003, 0007'."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = [f"{a:0{width}d}" if a == b else f"{a:0{width}d}..{b:0{width}d}" for a, b in spans]
    return ", ".join(text[:8]) + (f", ... ({len(spans)} ranges)" if len(spans) > 8 else "")


def _key_ranges(keys: Sequence[str], ordered: Sequence[str]) -> list[tuple[str, str]]:
    """Contiguous runs of `keys` in the partitions' own order, as (first, last) pairs."""
    wanted, ranges, start, prev = set(keys), [], None, None
    for key in ordered:
        if key in wanted:
            start = key if start is None else start
            prev = key
        elif start is not None:
            ranges.append((start, prev))
            start = None
    if start is not None:
        ranges.append((start, prev))
    return ranges


# ---- launching --------------------------------------------------------------------------------


def launch_backfill(
    instance: dg.DagsterInstance,
    asset_graph,
    eras: list[str] | None,
    *,
    rounds: list[str] | None = None,
    wait: bool,
    eras_per_run: int,
    out: TextIO = sys.stdout,
) -> BackfillReport:
    """Record a backfill of the era assets over `eras` (keys already checked by `select_eras`);
    with `wait`, follow it to the end (running it here when no daemon runs), else return at once.

    asset_graph: the code location's asset graph (`Definitions.resolve_asset_graph()`).
    """
    # One backfill may target several partitioned groups (asset -> its keys); each adds its assets,
    # a title part and its expected number of runs.
    partitions: dict[str, list[str]] = {}
    titles: list[str] = []
    expected_runs = 0
    if eras:
        partitions.update({asset: list(eras) for asset in ERA_ASSETS})
        titles.append(f"eras {eras[0]}..{eras[-1]}")
        expected_runs += math.ceil(len(eras) / eras_per_run)
    if rounds:
        partitions.update({asset: list(rounds) for asset in ROUND_ASSETS})
        titles.append(f"rounds {rounds[0]}..{rounds[-1]}")
        expected_runs += len(rounds)  # no backfill policy: a run per round
    if not partitions:
        raise ValueError("nothing to backfill: give --eras or --rounds")
    title = ", ".join(titles)
    backfill_id = create_backfill(instance, asset_graph, partitions, title)
    out.write(
        f"backfill {backfill_id}: {title}, {sum(len(v) for v in partitions.values())} asset partitions "
        f"of {', '.join(partitions)} in {expected_runs} run(s) (UI: {UI_PATH.format(backfill_id=backfill_id)})\n"
    )
    daemon = daemon_running(instance)
    ran_here = False
    if wait:
        progress = Progress(out, expected_runs)
        if daemon:
            out.write("following the dagster-daemon's progress\n")
            ran_here = follow_backfill(instance, backfill_id, lambda: progress.update(instance, backfill_id))
        else:
            out.write("no dagster-daemon is running: running the backfill here\n")
            run_backfill_here(instance, backfill_id, lambda: progress.update(instance, backfill_id))
            ran_here = True
        progress.update(instance, backfill_id)
        progress.finish()
    elif daemon:
        out.write("the dagster-daemon runs it: see the UI's backfills page\n")
    else:
        out.write(
            "no dagster-daemon is running: the backfill waits in the instance until one starts "
            "(dagster dev, or dagster-daemon run); or rerun with --wait to run it here\n"
        )
    return report(instance, backfill_id, partitions, ran_here, daemon)


def create_backfill(
    instance: dg.DagsterInstance,
    asset_graph,
    partitions: Mapping[str, Sequence[str]],
    title: str,
) -> str:
    """Add a REQUESTED asset backfill of `partitions` (asset -> keys) to the instance, as the UI does."""
    import dagster as dg
    from dagster._core.definitions.partitions.context import partition_loading_context
    from dagster._core.definitions.selector import (
        PartitionRangeSelector,
        PartitionsByAssetSelector,
        PartitionsSelector,
    )
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._time import get_current_timestamp

    selectors = []
    for asset, keys in partitions.items():
        key = dg.AssetKey(asset)
        partitions_def = asset_graph.get(key).partitions_def
        ordered = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
        unknown = sorted(set(keys) - set(ordered))
        if unknown:
            raise ValueError(f"{asset}: partitions {unknown[:10]} are not registered in this instance")
        ranges = [PartitionRangeSelector(start=a, end=b) for a, b in _key_ranges(keys, ordered)]
        selectors.append(
            PartitionsByAssetSelector(asset_key=key, partitions=PartitionsSelector(ranges=ranges))
        )
    with partition_loading_context(dynamic_partitions_store=instance):  # dynamic keys live there
        backfill = PartitionBackfill.from_partitions_by_assets(
            backfill_id=make_new_backfill_id(),
            asset_graph=asset_graph,
            backfill_timestamp=get_current_timestamp(),
            tags={LAUNCHED_BY_TAG: "numerai-pipeline"},
            dynamic_partitions_store=instance,
            partitions_by_assets=selectors,
            title=title,
            description=None,
            run_config=RUN_CONFIG,
        )
    instance.add_backfill(backfill)
    return backfill.backfill_id


def daemon_running(instance: dg.DagsterInstance) -> bool:
    """Whether a dagster-daemon serves this instance: the backfill daemon (and the run queue's,
    when the instance queues runs) heart-beat within the last DAEMON_SILENT_S seconds."""
    from dagster._daemon.controller import get_daemon_statuses
    from dagster._daemon.daemon import BackfillDaemon
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    statuses = get_daemon_statuses(
        instance,
        [BackfillDaemon.daemon_type(), QueuedRunCoordinatorDaemon.daemon_type()],
        ignore_errors=True,
        heartbeat_tolerance_seconds=DAEMON_SILENT_S,
    )
    return all(status.healthy is not False for status in statuses.values()) and any(
        status.healthy for status in statuses.values()
    )


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
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.backfill import execute_backfill_jobs

    target = ModuleTarget(
        module_name=CODE_MODULE, attribute=None, working_directory=None, location_name=CODE_LOCATION
    )
    with WorkspaceProcessContext(instance, target, code_server_log_level="WARNING") as workspace:
        while not _finished(instance, backfill_id):
            backfill = instance.get_backfill(backfill_id)
            for error in execute_backfill_jobs(workspace, LOGGER, [backfill]):
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
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._grpc.impl import core_execute_run
    from dagster._utils.hosted_user_process import recon_job_from_origin

    # The run queue daemon's dequeue step: QUEUED -> STARTING.
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.PIPELINE_STARTING.value, job_name=run.job_name),
        run_id=run.run_id,
    )
    run = instance.get_run_by_id(run.run_id)
    for _event in core_execute_run(
        recon_job_from_origin(run.job_code_origin), run, instance, inject_env_vars=False
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


def _runs(instance: dg.DagsterInstance, backfill_id: str, statuses=None) -> list:
    """The backfill's runs, oldest first."""
    from dagster import RunsFilter
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    found = instance.get_runs(filters=RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}, statuses=statuses))
    return list(reversed(found))


def _finished(instance: dg.DagsterInstance, backfill_id: str) -> bool:
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES

    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise BackfillError(f"backfill {backfill_id} is not in this Dagster instance")
    return backfill.status in BULK_ACTION_TERMINAL_STATUSES


# ---- reporting --------------------------------------------------------------------------------


class Progress:
    """`[#####.....] 3/8 runs` on one line, rewritten in place (\\r) when it changes."""

    WIDTH = 30

    def __init__(self, out: TextIO, expected_runs: int):
        self.out, self.expected = out, expected_runs
        self.last = ""

    def update(self, instance: dg.DagsterInstance, backfill_id: str) -> None:
        runs = _runs(instance, backfill_id)
        done = sum(run.is_finished for run in runs)
        failed = sum(run.is_failure_or_canceled for run in runs)
        total = max(self.expected, len(runs), 1)
        filled = round(self.WIDTH * done / total)
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} runs"
        if failed:
            line += f", {failed} failed"
        if line != self.last:
            self.out.write("\r" + line)
            self.out.flush()
            self.last = line

    def finish(self) -> None:
        if self.last:
            self.out.write("\n")
            self.out.flush()


def report(
    instance: dg.DagsterInstance,
    backfill_id: str,
    partitions: dict[str, list[str]],
    ran_here: bool,
    daemon: bool,
) -> BackfillReport:
    backfill = instance.get_backfill(backfill_id)
    runs = [_summary(instance, run) for run in _runs(instance, backfill_id)]
    error = backfill.error.message.strip().splitlines()[0] if backfill.error else None
    return BackfillReport(backfill_id, backfill.status.value, partitions, runs, ran_here, daemon, error)


def _summary(instance: dg.DagsterInstance, run) -> RunSummary:
    from dagster import DagsterEventType
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
        PARTITION_NAME_TAG,
    )

    tags = run.tags
    if ASSET_PARTITION_RANGE_START_TAG in tags:
        first, last = tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]
        partitions = first if first == last else f"{first}..{last}"
    else:
        partitions = tags.get(PARTITION_NAME_TAG, "")
    error = None
    if run.is_failure_or_canceled:
        failures = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_FAILURE).records
        for record in failures[:1]:
            data = record.event_log_entry.dagster_event.step_failure_data
            cause = data.error
            while cause.cause is not None and cause.cls_name == "DagsterExecutionStepExecutionError":
                cause = cause.cause  # the user code's own error, not Dagster's wrapper
            described = data.user_failure_data.description if data.user_failure_data else None
            error = (described or cause.message.strip()).replace("\n", " ")
        error = error or f"run {run.status.value.lower()} (see the Dagster UI)"
    return RunSummary(run.run_id, run.status.value, partitions, error)


def summary_line(result: BackfillReport) -> str:
    done = sum(run.status == "SUCCESS" for run in result.runs)
    where = "here" if result.ran_here else "by the dagster-daemon"
    return (
        f"backfill {result.backfill_id}: {result.status.lower()}, {done}/{len(result.runs)} runs "
        f"succeeded ({where})"
    )


def failure_message(result: BackfillReport) -> str:
    """One line naming every failed run, its partitions and why."""
    failed = [run for run in result.runs if run.error is not None]
    parts = [f"run {run.run_id[:8]} ({run.partitions}): {run.error}" for run in failed]
    if result.error:
        parts.insert(0, result.error)
    return f"backfill {result.backfill_id} ended {result.status}: " + (
        "; ".join(parts) or "see the Dagster UI's backfills page"
    )


def check_succeeded(result: BackfillReport) -> None:
    if result.status not in ("COMPLETED_SUCCESS", "REQUESTED"):
        raise BackfillError(failure_message(result).replace("\n", " "))


def backfill_command(
    eras_spec: str | None, wait: bool, out: TextIO = sys.stdout, rounds_spec: str | None = None
) -> BackfillReport:
    """`numerai-pipeline backfill`: settings from NUMERAI_*, the instance in DAGSTER_HOME (or
    NUMERAI_HOME/dagster); raises BackfillError when a waited-on backfill did not succeed."""
    from numerai_assets.definitions import build_definitions
    from numerai_assets.defs.partitions import add_missing_partitions
    from numerai_assets.runs import persistent_instance
    from numerai_assets.settings import load_settings

    settings = load_settings()
    instance = persistent_instance(settings.home)
    eras = select_eras(instance.get_dynamic_partitions(ERA_PARTITIONS), eras_spec) if eras_spec else None
    rounds = select_rounds(rounds_spec) if rounds_spec else None
    if rounds:  # past rounds the sensor never saw (the service was down): known to the API by number
        add_missing_partitions(instance, ROUND_PARTITIONS, rounds)
    asset_graph = build_definitions(settings).resolve_asset_graph()
    result = launch_backfill(
        instance,
        asset_graph,
        eras,
        rounds=rounds,
        wait=wait,
        eras_per_run=settings.backfill_eras_per_run,
        out=out,
    )
    if wait:
        out.write(summary_line(result) + "\n")
    check_succeeded(result)
    return result

"""What a backfill did: its runs, the progress bar while it goes, and the lines the command prints.

`BackfillReport` (with a `RunSummary` per run) is what `launch_backfill` returns, read back from
the instance: the backfill's status and, for each of its runs, the partitions it covered and the
first failed step's message; `Progress` is the bar `--wait` rewrites while the runs go.
`check_succeeded` turns a failed backfill into one `BackfillError` line naming every failed run.
`BackfillError` lives here, below the launch and the runner, because both raise it (the command
re-exports it as `numerai_assets.cli.backfills.BackfillError`, what the CLI catches).

Dagster is imported inside functions so `numerai-pipeline --help` stays fast.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import dagster as dg


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


def _runs(instance: dg.DagsterInstance, backfill_id: str, statuses=None) -> list:
    """The backfill's runs, oldest first."""
    from dagster import RunsFilter

    from numerai_assets.shared import dagster_private as private

    found = instance.get_runs(
        filters=RunsFilter(tags={private.BACKFILL_ID_TAG: backfill_id}, statuses=statuses)
    )
    return list(reversed(found))


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

    from numerai_assets.shared import dagster_private as private

    tags = run.tags
    if private.ASSET_PARTITION_RANGE_START_TAG in tags:
        first = tags[private.ASSET_PARTITION_RANGE_START_TAG]
        last = tags[private.ASSET_PARTITION_RANGE_END_TAG]
        partitions = first if first == last else f"{first}..{last}"
    else:
        partitions = tags.get(private.PARTITION_NAME_TAG, "")
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

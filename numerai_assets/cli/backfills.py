"""`numerai-pipeline backfill`: a real Dagster backfill of partitions, in the persistent instance.

`launch_backfill` records what the UI's "Materialize -> choose partitions -> Launch backfill"
records: a `PartitionBackfill` row in the instance (it is listed on the UI's backfills page). The
dagster-daemon's backfill loop then turns it into runs, each tagged `dagster/backfill=<id>`: for
eras, ceil(n / NUMERAI_BACKFILL_ERAS_PER_RUN) runs, each over a range of eras
(`BackfillPolicy.multi_run`).

`wait=True` follows the backfill to its end with a progress bar. When no daemon is running (a
plain shell, cron, CI), it does the daemon's part itself, for this one backfill only.

The command is split by concept:
- `numerai_assets.cli.partition_ranges`: which eras and rounds `--eras` / `--rounds` select;
- this module: `launch_backfill` (recording through `numerai_assets.backfill.launch`, which the
  UI's `launch_era_backfill` job records with too), `take_to_end`, and the commands (`--id`
  takes a backfill recorded elsewhere, the UI's say, to its end);
- `numerai_assets.cli.backfill_runner`: following the daemon, or doing its part here (how, and why
  with private Dagster functions, is told there);
- `numerai_assets.cli.backfill_report`: the report of the runs, the progress bar, `BackfillError`.
Their public names are importable from here too, as before the split.

Nothing here imports torch; Dagster is imported inside functions so `--help` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from numerai_assets.cli.backfill_report import (
    BackfillError,
    BackfillReport,
    Progress,
    RunSummary,
    check_succeeded,
    failure_message,
    report,
    summary_line,
)
from numerai_assets.cli.backfill_runner import (
    DAEMON_SILENT_S,
    LOGGER,
    POLL_S,
    daemon_running,
    follow_backfill,
    run_backfill_here,
)
from numerai_assets.cli.code_location import CODE_LOCATION, CODE_MODULE
from numerai_assets.cli.partition_ranges import (
    ERA_ASSETS,
    ERA_PARTITIONS,
    ROUND_ASSETS,
    ROUND_PARTITIONS,
    select_eras,
    select_rounds,
)

if TYPE_CHECKING:
    import dagster as dg

__all__ = [
    "CODE_LOCATION",
    "CODE_MODULE",
    "DAEMON_SILENT_S",
    "ERA_ASSETS",
    "ERA_PARTITIONS",
    "LOGGER",
    "POLL_S",
    "ROUND_ASSETS",
    "ROUND_PARTITIONS",
    "UI_PATH",
    "BackfillError",
    "BackfillReport",
    "Progress",
    "RunSummary",
    "backfill_command",
    "check_succeeded",
    "create_backfill",
    "daemon_running",
    "failure_message",
    "follow_backfill",
    "launch_backfill",
    "report",
    "resume_command",
    "run_backfill_here",
    "select_eras",
    "select_rounds",
    "summary_line",
    "take_to_end",
]

UI_PATH = "/runs/b/{backfill_id}"


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
    description: str | None = None,
) -> BackfillReport:
    """Record a backfill of the era assets over `eras` (keys already checked by `select_eras`);
    with `wait`, follow it to the end (running it here when no daemon runs), else return at once.

    asset_graph: the code location's asset graph (`Definitions.resolve_asset_graph()`).
    description: what the backfill page shows beside the title (the eras' splits).
    """
    from numerai_assets.backfill.launch import era_title, expected_runs, record_backfill

    # One backfill may target several partitioned groups (asset -> its keys); each adds its assets,
    # a title part and its expected number of runs.
    partitions: dict[str, list[str]] = {}
    titles: list[str] = []
    runs = 0
    if eras:
        partitions.update({asset: list(eras) for asset in ERA_ASSETS})
        titles.append(era_title(eras))
        runs += expected_runs(eras, instance.get_dynamic_partitions(ERA_PARTITIONS), eras_per_run)
    if rounds:
        partitions.update({asset: list(rounds) for asset in ROUND_ASSETS})
        titles.append(f"rounds {rounds[0]}..{rounds[-1]}")
        runs += len(rounds)  # no backfill policy: a run per round
    if not partitions:
        raise ValueError("nothing to backfill: give --eras or --rounds")
    title = ", ".join(titles)
    backfill_id = record_backfill(
        instance, asset_graph, partitions, title, launched_by="numerai-pipeline", description=description
    )
    out.write(
        f"backfill {backfill_id}: {title}, {sum(len(v) for v in partitions.values())} asset partitions "
        f"of {', '.join(partitions)} in {runs} run(s) (UI: {UI_PATH.format(backfill_id=backfill_id)})\n"
    )
    ran_here, daemon = take_to_end(instance, backfill_id, runs, wait, out)
    return report(instance, backfill_id, partitions, ran_here, daemon)


def take_to_end(
    instance: dg.DagsterInstance, backfill_id: str, runs: int, wait: bool, out: TextIO
) -> tuple[bool, bool]:
    """With `wait`, follow a recorded backfill to its end (doing the daemon's part here when no
    daemon runs); without, say who will run it. Returns (ran here, a daemon runs)."""
    daemon = daemon_running(instance)
    ran_here = False
    if wait:
        progress = Progress(out, runs)
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
    return ran_here, daemon


def create_backfill(
    instance: dg.DagsterInstance,
    asset_graph,
    partitions: Mapping[str, Sequence[str]],
    title: str,
) -> str:
    """Add a REQUESTED asset backfill of `partitions` (asset -> keys) to the instance, as the UI does."""
    from numerai_assets.backfill.launch import record_backfill

    return record_backfill(instance, asset_graph, partitions, title, launched_by="numerai-pipeline")


# ---- the command -------------------------------------------------------------------------


def _require_known_rounds(api, rounds: list[str]) -> None:
    """A partition is permanent: add one only for a round the API confirmed."""
    unknown = [r for r in rounds if not api.round_exists(int(r))]
    if unknown:
        raise BackfillError(
            f"--rounds: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} "
            f"not round(s) of the Numerai API at {api.endpoint}; nothing backfilled"
        )


def backfill_command(
    eras_spec: str | None,
    wait: bool,
    out: TextIO = sys.stdout,
    rounds_spec: str | None = None,
) -> BackfillReport:
    """`numerai-pipeline backfill`: settings from NUMERAI_*, the instance in DAGSTER_HOME (or
    NUMERAI_HOME/dagster); raises BackfillError when a waited-on backfill did not succeed."""
    from numerai_assets.cli.runs import persistent_instance
    from numerai_assets.definitions import build_definitions
    from numerai_assets.shared.partitions import add_missing_partitions
    from numerai_assets.shared.settings import load_settings

    settings = load_settings()
    instance = persistent_instance(settings.home)
    eras, description = _select_eras(instance, settings.home, eras_spec, out) if eras_spec else (None, None)
    rounds = select_rounds(rounds_spec) if rounds_spec else None
    defs = build_definitions(settings)
    if rounds:  # past rounds the sensor never saw (the service was down): known to the API by number
        _require_known_rounds(defs.resources["numerai"], rounds)
        add_missing_partitions(instance, ROUND_PARTITIONS, rounds)
    asset_graph = defs.resolve_asset_graph()
    result = launch_backfill(
        instance,
        asset_graph,
        eras,
        rounds=rounds,
        wait=wait,
        eras_per_run=settings.backfill_eras_per_run,
        out=out,
        description=description,
    )
    if wait:
        out.write(summary_line(result) + "\n")
    check_succeeded(result)
    return result


def _select_eras(instance, home, spec: str, out: TextIO) -> tuple[list[str], str]:
    """The eras of `--eras` (the UI job's grammar), their splits as the backfill's description,
    and a warning line when some are in-sample for the current model version."""
    from numerai_assets.backfill.splits import load_era_splits
    from numerai_assets.shared.home import HomeLayout

    registered = instance.get_dynamic_partitions(ERA_PARTITIONS)
    if not registered:  # the grammar's own message: what to materialise first
        select_eras(registered, spec)
    splits = load_era_splits(HomeLayout(home))
    eras = select_eras(registered, spec, splits=splits.splits)
    warning = splits.in_sample_warning(eras)
    if warning:
        out.write(f"warning: {warning}\n")
    return eras, splits.summary(eras)


def resume_command(backfill_id: str, out: TextIO = sys.stdout) -> BackfillReport:
    """`numerai-pipeline backfill --id ID`: take a recorded backfill (one launched from the UI's
    launch_era_backfill job, say) to its end: follow the daemon, or do its part here."""
    from numerai_assets.cli.runs import persistent_instance
    from numerai_assets.shared.settings import load_settings

    instance = persistent_instance(load_settings().home)
    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        known = ", ".join(b.backfill_id for b in instance.get_backfills(limit=5)) or "none"
        raise BackfillError(
            f"--id {backfill_id}: no such backfill in this Dagster instance (latest: {known})"
        )
    out.write(f"backfill {backfill_id}: {backfill.title or 'untitled'} ({backfill.status.value.lower()})\n")
    ran_here, daemon = take_to_end(instance, backfill_id, 0, True, out)
    result = report(instance, backfill_id, {}, ran_here, daemon)
    out.write(summary_line(result) + "\n")
    check_succeeded(result)
    return result

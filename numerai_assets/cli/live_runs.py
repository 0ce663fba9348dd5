"""Live runs from the command line: submit the current round, status; the round sensor's
evaluation through the instance is `numerai_assets.cli.round_sensor.tick_round_sensor`.

Everything goes through the persistent Dagster instance and the code location, so a run started
here shows in the UI under the live_round job, beside the ones the daemon starts, and the round
sensor's run key rule holds for both.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from numerai_assets.live.assets import LIVE_JOB
from numerai_assets.shared.numerai_api import NumeraiAPI, NumeraiAPIError
from numerai_assets.shared.partitions import add_missing_partitions, round_partitions
from numerai_assets.training.jobs import TRAINING_SCHEDULE


class LiveRunError(RuntimeError):
    """The live run failed or its check stopped the file; the message says which and why."""


def submit(
    defs: dg.Definitions, instance: dg.DagsterInstance, round_number: int | None = None, force: bool = False
) -> dict:
    """Run the live job for `round_number` (default: the open round); returns the submission metadata."""
    api: NumeraiAPI = defs.resources["numerai"]
    if round_number is None:
        if not api.round_open():
            raise LiveRunError("no round is open for submissions now; nothing to submit")
        round_number = api.current_round()
    else:
        _require_known_round(api, round_number)
    # Only now: a partition is permanent, so it is added for a round the API confirmed.
    add_missing_partitions(instance, round_partitions.name, [str(round_number)])
    from numerai_assets.cli.code_location import code_location

    with code_location(instance) as workspace:
        return run_live_job(workspace, round_number, force, tags={"numerai/started_by": "cli"})


def _require_known_round(api: NumeraiAPI, round_number: int) -> None:
    """--round N must be a round the API knows; a number below 1 is refused without asking it."""
    if round_number < 1:
        raise LiveRunError(f"--round {round_number}: round numbers start at 1; nothing submitted")
    if not api.round_exists(round_number):
        raise LiveRunError(
            f"round {round_number} is not a round of the Numerai API at {api.endpoint}; nothing submitted "
            "(without --round: the open round)"
        )


def run_live_job(
    workspace,
    round_number: int,
    force: bool,
    tags: dict | None = None,
) -> dict:
    """One live_round run of the code location for the partition, in this process (the job's
    executor is in-process: the live window is short); the submission's metadata.

    workspace: `code_location.code_location(instance)`.
    """
    from numerai_assets.cli.code_location import run_here
    from numerai_assets.cli.runs import cli_run_tags

    result = run_here(
        workspace,
        LIVE_JOB,
        partition_key=str(round_number),
        run_config={"ops": {"submission": {"config": {"force": force}}}},
        tags={**(tags or {}), **cli_run_tags()},
    )
    return live_receipt(result, round_number)


def live_receipt(result, round_number: int) -> dict:
    """The submission's metadata of a finished live_round run; LiveRunError when a check stopped
    the file or a step failed, naming them."""
    problems = [
        f"check {e.check_name}: {e.description}" for e in result.get_asset_check_evaluations() if not e.passed
    ]
    failures = [
        f"{e.step_key}: {_innermost(e.event_specific_data.error)}" for e in result.get_step_failure_events()
    ]
    if problems or failures or not result.success:
        raise LiveRunError(
            f"round {round_number}, run {result.run_id}: "
            + "; ".join(problems + failures or ["see the Dagster UI"])
        )
    [event] = result.asset_materializations_for_node("submission")
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def _innermost(error) -> str:
    """The user's own exception under Dagster's wrapper, as one line."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1] if error.message.strip() else error.cls_name


def status(defs: dg.Definitions, settings) -> list[tuple[str, str]]:
    """What a user asks first: the round, the last submission, the model, the next retrain."""
    from numerai_assets.live.predict import model_version_time
    from numerai_assets.shared import dagster_private as private
    from numerai_assets.shared.home import HomeLayout
    from numerai_assets.shared.model_versions import current_version
    from numerai_assets.shared.warehouse import Warehouse

    api: NumeraiAPI = defs.resources["numerai"]
    try:
        is_open = api.round_open()
        round_text = (
            f"{api.current_round()} (open for submissions)" if is_open else "none open for submissions"
        )
    except NumeraiAPIError as err:
        round_text = f"unknown ({err})"
    layout = HomeLayout(settings.home.resolve())
    warehouse: Warehouse = defs.resources["warehouse"]
    last = warehouse.last_submission() if layout.warehouse_path.exists() else None
    submission_text = (
        "none yet"
        if last is None
        else f"round {last['round']} as {last['model_name']}: {last['status']}"
        + (f", submission {last['submission_id']}" if last.get("submission_id") else "")
        + f" ({last['finished_at'] or last['started_at']:%Y-%m-%d %H:%M:%S} UTC)"
    )
    version = current_version(layout)
    made = model_version_time(version) if version else None
    version_text = "none (run `numerai-pipeline train`)" if version is None else version
    if made is not None:
        version_text += f" (trained {(dt.datetime.now(dt.UTC) - made).days} days ago)"
    data_text = _dataset_version_text(layout, version)
    schedule = defs.resolve_schedule_def(TRAINING_SCHEDULE)
    upcoming = next(
        private.cron_string_iterator(dt.datetime.now(dt.UTC).timestamp(), schedule.cron_schedule, "UTC")
    )
    return [
        ("current round", round_text),
        ("last submission", submission_text),
        ("model version", version_text),
        ("dataset version", data_text),
        ("next training", f"{upcoming:%Y-%m-%d %H:%M} UTC (cron '{schedule.cron_schedule}')"),
        ("NUMERAI_HOME", str(layout.root)),
    ]


def _dataset_version_text(layout, model_version: str | None) -> str:
    """The version live files are read in (the current model's) and the one last ingested."""
    from numerai_assets.shared.dataset_versions import (
        DatasetVersionError,
        ingested_version,
        model_dataset_version,
    )

    try:
        ingested = ingested_version(layout)
    except DatasetVersionError:
        ingested = "none"
    if model_version is None:
        return f"ingested {ingested}"
    try:
        trained_on = model_dataset_version(layout.model_dir(model_version))
    except DatasetVersionError:
        trained_on = "not recorded (retrain)"
    return f"{trained_on} (the current model's, live reads it); ingested {ingested}"

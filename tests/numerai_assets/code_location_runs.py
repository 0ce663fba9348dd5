"""What the Dagster UI needs of a run to list it under its job and sensor and to re-execute it,
checked on real runs: the workspace the UI loads (workspace.yaml, its code server started here)
and the UI's own GraphQL re-execution mutation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster_graphql.client.query import LAUNCH_PIPELINE_REEXECUTION_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from numerai_assets.shared import dagster_private as private

WORKSPACE_YAML = Path(__file__).resolve().parents[2] / "workspace.yaml"
LOCATION = "numerai"  # workspace.yaml's location_name


@contextmanager
def ui_workspace(instance: dg.DagsterInstance) -> Iterator:
    """The workspace `dagster dev -w workspace.yaml` and the webserver load, over `instance`."""
    target = WorkspaceFileTarget(paths=[str(WORKSPACE_YAML)])
    with private.WorkspaceProcessContext(instance, target, code_server_log_level="WARNING") as workspace:
        yield workspace


def assert_runs_belong_to_the_location(
    instance: dg.DagsterInstance, runs: Iterable[dg.DagsterRun], job_name: str
) -> None:
    """Each run has the code location's origins, and the UI's query of the job's runs (job name
    and repository label, as the job's Runs tab and the overview's timeline ask) finds it."""
    for run in runs:
        origin = run.remote_job_origin
        assert origin is not None, f"run {run.run_id} ({run.job_name}) has no code-location origin"
        assert (origin.location_name, origin.job_name, run.job_name) == (LOCATION, job_name, job_name)
        assert run.job_code_origin is not None and run.job_code_origin.job_name == job_name
        label = f"{origin.repository_origin.repository_name}@{LOCATION}"
        listed = instance.get_runs(dg.RunsFilter(job_name=job_name, tags={".dagster/repository": label}))
        assert run.run_id in {r.run_id for r in listed}


def assert_the_ui_can_reexecute(workspace, runs: Iterable[dg.DagsterRun]) -> list[str]:
    """The UI's re-execution of each run (its GraphQL mutation, as the Re-execute button sends it)
    succeeds: the run's origin resolves in workspace.yaml's location. The new runs only wait in the
    instance's run queue (no daemon here). Returns their ids."""
    context = workspace.create_request_context()
    launched = []
    for run in runs:
        origin = run.remote_job_origin
        repository = context.get_code_location(origin.location_name).get_repository(
            origin.repository_origin.repository_name
        )
        assert repository.has_job(run.job_name), run.job_name
        variables = {"reexecutionParams": {"parentRunId": run.run_id, "strategy": "ALL_STEPS"}}
        answer = execute_dagster_graphql(context, LAUNCH_PIPELINE_REEXECUTION_MUTATION, variables)
        result = answer.data["launchPipelineReexecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        assert (
            result["run"]["parentRunId"] == run.run_id and result["run"]["pipeline"]["name"] == run.job_name
        )
        launched.append(result["run"]["runId"])
    return launched


def round_sensor_ticks(workspace, instance: dg.DagsterInstance):
    """(cursor, ticks oldest first) of round_open_sensor, looked up as the UI's sensor page does."""
    sensor = _repository(workspace).get_sensor("round_open_sensor")
    state = instance.get_instigator_state(sensor.get_remote_origin_id(), sensor.selector_id)
    ticks = instance.get_ticks(sensor.get_remote_origin_id(), sensor.selector_id)
    return state.instigator_data.cursor, list(reversed(ticks))


def training_schedule_ticks(workspace, instance: dg.DagsterInstance):
    """(whether it runs, ticks oldest first) of weekly_training_schedule, as the UI's schedule page
    looks them up (the stored state and ticks of the schedule's origin and selector)."""
    schedule = _repository(workspace).get_schedule("weekly_training_schedule")
    stored = instance.get_instigator_state(schedule.get_remote_origin_id(), schedule.selector_id)
    ticks = instance.get_ticks(schedule.get_remote_origin_id(), schedule.selector_id)
    return schedule.get_current_instigator_state(stored).is_running, list(reversed(ticks))


def _repository(workspace):
    [repository] = workspace.create_request_context().get_code_location(LOCATION).get_repositories().values()
    return repository

"""Runs that belong to the code location: created as the UI and the daemon create them, run here.

The Dagster UI lists a run under its job (and under the sensor or schedule that asked for it), on
the overview's timeline, and offers to re-execute it, only when the run carries the origin of a
code location of its workspace: `remote_job_origin` (location `numerai`, repository, job) and
`job_code_origin` (how a run worker rebuilds the job). `dagster.materialize` and `execute_job`
make runs without it: the UI shows them under Runs only, "Manually launched". So every run the
command line starts (train, submit, ingest, the demo, the sensor's runs) goes this way:

1. `code_location(instance)` opens the workspace of workspace.yaml's only code location (module
   `numerai_assets.definitions`, location `numerai`) as the daemon and `dagster job launch` do: a
   code server subprocess loads the module with this process's environment (its settings);
2. `create_run` creates the run from that location's job (or asset selection), as `dagster job
   launch` and the sensor daemon create theirs: the location's job and plan snapshots, both
   origins, status NOT_STARTED (not QUEUED: a running daemon's run queue leaves it alone);
3. `execute_here` executes it in this process, as `execute_job` does after creating its own run,
   with the job rebuilt from the settings of the moment (`definitions.definitions_from_settings`): the
   job's executor applies (the multiprocess executor runs each step in its own process), the run's
   logs reach this console, and the result says which step failed and why.

The workspace, run creation from a remote job and `execute_run` are private Dagster names (no
public API creates a run with a code-location origin); they come through
`numerai_assets.shared.dagster_private`. Dagster is imported inside functions (`--help` stays fast).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg

CODE_MODULE = "numerai_assets.definitions"
CODE_LOCATION = "numerai"  # as in workspace.yaml: the location the UI shows
DEFINITIONS_NOW = "definitions_from_settings"  # in CODE_MODULE: the definitions of the settings of now


class CodeLocationError(RuntimeError):
    """The code location did not load in the code server; the message carries its error."""


@contextmanager
def code_location(instance: dg.DagsterInstance) -> Iterator[Any]:
    """The workspace of the `numerai` code location (a `WorkspaceProcessContext`), over `instance`."""
    from numerai_assets.shared import dagster_private as private

    target = private.ModuleTarget(
        module_name=CODE_MODULE, attribute=None, working_directory=None, location_name=CODE_LOCATION
    )
    with private.WorkspaceProcessContext(instance, target, code_server_log_level="WARNING") as workspace:
        yield workspace


def location_and_repository(workspace):
    request = workspace.create_request_context()
    if not request.has_code_location(CODE_LOCATION):
        error = request.get_code_location_error(CODE_LOCATION)
        raise CodeLocationError(
            f"the code location {CODE_LOCATION!r} ({CODE_MODULE}) did not load: "
            + (error.to_string().strip() if error else "no such location")
        )
    location = request.get_code_location(CODE_LOCATION)
    [repository] = location.get_repositories().values()
    return location, repository


def create_run(
    workspace,
    job_name: str,
    *,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    asset_selection: Sequence[str] | None = None,
    partition_key: str | None = None,
) -> dg.DagsterRun:
    """A NOT_STARTED run of the location's `job_name` (restricted to `asset_selection`, asset
    names, when given), with the location's snapshots and both origins, as the daemon creates one."""
    import dagster as dg

    from numerai_assets.shared import dagster_private as private

    location, repository = location_and_repository(workspace)
    keys = frozenset(dg.AssetKey(name) for name in asset_selection) if asset_selection else None
    selector = private.JobSubsetSelector(
        location_name=location.name,
        repository_name=repository.name,
        job_name=job_name,
        op_selection=None,
        asset_selection=keys,
    )
    remote_job = location.get_job(selector)
    run_config = dict(run_config or {})
    plan = location.get_execution_plan(
        remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=workspace.instance
    )
    partition = {private.PARTITION_NAME_TAG: partition_key} if partition_key is not None else {}
    return workspace.instance.create_run(
        job_name=job_name,
        run_id=None,
        run_config=run_config,
        status=dg.DagsterRunStatus.NOT_STARTED,
        tags={**(remote_job.run_tags or {}), **(tags or {}), **partition},
        root_run_id=None,
        parent_run_id=None,
        step_keys_to_execute=None,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        job_snapshot=remote_job.job_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        asset_selection=keys,
        asset_check_selection=None,
        resolved_op_selection=remote_job.resolved_op_selection,
        op_selection=None,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_graph=repository.asset_graph,
    )


def execute_here(instance: dg.DagsterInstance, run: dg.DagsterRun):
    """Execute a NOT_STARTED or STARTING run in this process; its `JobExecutionResult`.

    The job is rebuilt from the settings of the moment (not from the module's `defs`, made when
    it was first imported), so this process and every step process plan the same job.
    """
    from numerai_assets.shared import dagster_private as private

    # Dagster keeps the last job it rebuilt, process-wide, keyed on the code pointer and job name:
    # after NUMERAI_* changed (a test's new stand-in, a long-lived process), the next run of the
    # same job would get the job of the old settings. Forgotten here, so each run rebuilds it.
    private.ReconstructableJob.get_definition.cache_clear()
    private.ReconstructableJob.get_repository_definition.cache_clear()
    definitions = private.ReconstructableRepository.for_module(CODE_MODULE, DEFINITIONS_NOW, os.getcwd())
    job = definitions.get_reconstructable_job(run.job_name)
    return private.execute_run(job, run, instance, raise_on_error=False)


def run_here(workspace, job_name: str, **create) -> Any:
    """`create_run` then `execute_here`: the result, whether the run succeeded or not."""
    return execute_here(workspace.instance, create_run(workspace, job_name, **create))


def user_message(error) -> str:
    """What the user's own exception said (as `str(exception)`), from a step failure's error:
    the innermost cause under Dagster's wrappers, its class name left out."""
    while error.cause is not None:
        error = error.cause
    text = error.message.strip()
    _qualified, sep, message = text.partition(f"{error.cls_name}: ")
    return message.strip() if sep else (text or error.cls_name)


def metadata_values(result, asset: str) -> dict:
    """The materialisation metadata of `asset` in `result`, as plain values."""
    [event] = result.asset_materializations_for_node(asset)
    return {key: getattr(value, "value", value) for key, value in event.metadata.items()}

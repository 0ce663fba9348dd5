"""Running asset selections through Dagster into the persistent instance (so they show in the UI)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from numerai_assets.ingest.assets import INGEST_ASSETS
from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.partitions import add_missing_partitions, round_partitions


def persistent_instance(numerai_home: Path) -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME; when unset, NUMERAI_HOME/dagster (created) so runs are kept."""
    if not os.environ.get("DAGSTER_HOME"):
        home = (Path(numerai_home) / "dagster").resolve()
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def materialize_selection(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: list[str],
    partition_key: str | None = None,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    """Materialise `selection` (asset names) with the code location's resources, raising on failure.

    The console shows the assets' own progress (INFO); Dagster's step bookkeeping (DEBUG) stays in
    the instance's event log, visible in the UI.
    """
    assets = list(defs.assets or [])
    result = dg.materialize(
        assets,
        instance=instance,
        resources=defs.resources,
        selection=selection,
        partition_key=partition_key,
        raise_on_error=True,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    return result


def ingest(defs: dg.Definitions, instance: dg.DagsterInstance, with_round: bool = True) -> dict[str, dict]:
    """raw_dataset -> clean_eras -> feature_returns, and the current round's live file.

    Returns each asset's materialisation metadata (plain values) for a summary.
    """
    summary: dict[str, dict] = {}
    result = materialize_selection(defs, instance, list(INGEST_ASSETS))
    for name in INGEST_ASSETS:
        summary[name] = _metadata_values(result, name)
    api: NumeraiAPI = defs.resources["numerai"]
    if with_round and not api.round_open():
        summary["raw_round"] = {"skipped": "no round is open for submissions now"}
    elif with_round:
        round_number = api.current_round()
        add_missing_partitions(instance, round_partitions.name, [str(round_number)])
        result = materialize_selection(defs, instance, ["raw_round"], partition_key=str(round_number))
        summary["raw_round"] = _metadata_values(result, "raw_round")
    return summary


def _metadata_values(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {key: getattr(value, "value", value) for key, value in event.metadata.items()}


def train(instance: dg.DagsterInstance, log_level: str = "INFO") -> dict[str, dict]:
    """The weekly training job (ingest -> folds) with the configured executor, into `instance`.

    Goes through `reconstructable` so the multiprocess executor can run each step (each fold) in
    its own process, as the daemon would; returns each asset's materialisation metadata.
    """
    from numerai_assets import definitions

    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    job = dg.reconstructable(definitions.training_job)
    with dg.execute_job(job, instance=instance, run_config=run_config) as result:
        if not result.success:
            failures = [
                f"{e.step_key}: {e.event_specific_data.error.message.strip()}"
                for e in result.get_step_failure_events()
            ]
            raise TrainingRunError(
                f"run {result.run_id} failed: " + ("; ".join(failures) or "see the Dagster UI")
            )
        summary = {}
        for event in result.get_asset_materialization_events():
            materialization = event.event_specific_data.materialization
            summary[materialization.asset_key.to_user_string()] = {
                k: getattr(v, "value", v) for k, v in materialization.metadata.items()
            }
        return summary


class TrainingRunError(RuntimeError):
    """A step of the training run failed; the message names it and carries its error."""

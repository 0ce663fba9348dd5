"""The code location: `dagster dev -w workspace.yaml` or `dagster ... -m numerai_assets.definitions`."""

from __future__ import annotations

import dagster as dg

from numerai_assets import backfill, diagnostics, ensemble, ingest, live, training
from numerai_assets.shared.executor import build_executor
from numerai_assets.shared.resources import build_resources
from numerai_assets.shared.settings import Settings, load_settings

STAGES = (ingest, training, ensemble, diagnostics, live, backfill)  # in pipeline order


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every stage's assets, checks, jobs, schedules, sensors and own resources, and the shared ones."""
    shared = dg.Definitions(
        resources=build_resources(settings),
        executor=build_executor(settings.executor, settings.fold_concurrency),
    )
    return dg.Definitions.merge(shared, *(stage.build_defs(settings) for stage in STAGES))


defs = build_definitions(load_settings())


def definitions_from_settings() -> dg.Definitions:
    """The code location's definitions of the settings of the moment: what the command line
    executes its runs with (`numerai_assets.cli.code_location`), here and in each step process.

    Built afresh (not the module's `defs`, made at first import), so the launching process and
    every step process plan the same job even where the environment changed since that import.
    """
    return build_definitions(load_settings())

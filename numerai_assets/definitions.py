"""The code location: `dagster dev -w workspace.yaml` or `dagster ... -m numerai_assets.definitions`."""

from __future__ import annotations

import dagster as dg

from numerai_assets.defs import features, ingest
from numerai_assets.defs.resources import build_resources
from numerai_assets.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingest, features]),
        resources=build_resources(settings),
    )


defs = build_definitions(load_settings())

"""Resources, built from Settings. Secrets go through dagster.EnvVar so they never appear in
config, the UI or run storage; when they are unset the service runs without credentials."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from numerai_assets.defs.knobs import DiagnosticsKnobs, LiveKnobs
from numerai_assets.defs.training_resource import TrainingKnobs
from numerai_assets.home import HomeLayout
from numerai_assets.numerai_api import NumeraiAPI
from numerai_assets.settings import Settings
from numerai_assets.warehouse import Warehouse


class NumeraiHome(dg.ConfigurableResource):
    """The service's files under NUMERAI_HOME, and the data choices that shape them."""

    home: str = ".numerai"
    dataset_version: str = "v5.2"
    feature_set: str = "medium"
    clean_eras_per_chunk: int = 2

    @property
    def layout(self) -> HomeLayout:
        return HomeLayout(Path(self.home).resolve())


def _secret(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "numerai": NumeraiAPI(
            api_url=settings.api_url,
            public_id=_secret("NUMERAI_PUBLIC_ID"),
            secret_key=_secret("NUMERAI_SECRET_KEY"),
            retries=settings.api_retries,
            backoff_s=settings.api_backoff_s,
        ),
        "numerai_home": NumeraiHome(
            home=str(settings.home),
            dataset_version=settings.dataset_version,
            feature_set=settings.feature_set,
            clean_eras_per_chunk=settings.clean_eras_per_chunk,
        ),
        "training": TrainingKnobs.from_settings(settings),
        "diagnostics": DiagnosticsKnobs.from_settings(settings),
        "live": LiveKnobs.from_settings(settings),
        "warehouse": Warehouse(path=str(HomeLayout(Path(settings.home).resolve()).warehouse_path)),
    }

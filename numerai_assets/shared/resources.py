"""The resources every stage uses, built from Settings: the API, the home, the warehouse, the
diagnostics knobs, the alert webhook. (A stage's own knobs are its own resource: `training`, `live`.)

Secrets go through dagster.EnvVar so they never appear in config, the UI or run storage; when
they are unset the service runs without credentials.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from numerai_assets.shared.alerts import AlertWebhook
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.settings import Settings, knob_default
from numerai_assets.shared.warehouse import Warehouse


class NumeraiHome(dg.ConfigurableResource):
    """The service's files under NUMERAI_HOME, and the data choices that shape them."""

    home: str = str(knob_default("home"))
    dataset_version: str = knob_default("dataset_version")
    feature_set: str = knob_default("feature_set")
    clean_eras_per_chunk: int = knob_default("clean_eras_per_chunk")

    @property
    def layout(self) -> HomeLayout:
        return HomeLayout(Path(self.home).resolve())


class DiagnosticsKnobs(dg.ConfigurableResource):
    """The ensemble, baseline (LightGBM, peer ridge) and diagnostics knobs a user turns (NUMERAI_* variables)."""

    ensemble_shrinkage: float = knob_default("ensemble_shrinkage")
    baseline_estimators: int = knob_default("baseline_estimators")
    peer_ridge_ks: str = knob_default("peer_ridge_ks")
    peer_ridge_lambda: float = knob_default("peer_ridge_lambda")
    peer_ridge_hop: int = knob_default("peer_ridge_hop")
    benchmark_model: str | None = knob_default("benchmark_model")
    selection_metric: str = knob_default("selection_metric")
    candidate: str = knob_default("candidate")
    upload_diagnostics: bool = knob_default("upload_diagnostics")  # to Numerai's own diagnostics
    model_name: str | None = knob_default("model_name")  # the account's model they are uploaded for

    @classmethod
    def from_settings(cls, settings: Settings) -> DiagnosticsKnobs:
        return cls(**{name: getattr(settings, name) for name in cls.model_fields})

    def peer_ridge_config(self):  # -> model_core.peer_ridge.PeerRidgeConfig
        from model_core.peer_ridge import PeerRidgeConfig, parse_ks

        return PeerRidgeConfig(
            peer_ks=parse_ks(self.peer_ridge_ks),
            ridge_lambda=self.peer_ridge_lambda,
            peer_hop=self.peer_ridge_hop,
        )

    @property
    def pinned_candidate(self) -> str | None:
        """The candidate the user pinned (NUMERAI_CANDIDATE), None for `auto`."""
        return None if self.candidate == "auto" else self.candidate


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
        "diagnostics": DiagnosticsKnobs.from_settings(settings),
        "warehouse": Warehouse(path=str(HomeLayout(Path(settings.home).resolve()).warehouse_path)),
        # The webhook URL holds a token: EnvVar, like the API key (unset: no alerts).
        "alerts": AlertWebhook(url=_secret("NUMERAI_ALERT_WEBHOOK"), ui_url=settings.alert_ui_url),
    }

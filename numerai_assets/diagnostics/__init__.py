"""Stage 4, diagnostics: the current ensemble, its blends and the baseline scored on the held-out test eras; optionally by Numerai too."""

from __future__ import annotations

import dagster as dg

from numerai_assets.diagnostics.assets import build_diagnostics_asset, numerai_diagnostics
from numerai_assets.shared.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[build_diagnostics_asset(settings.baseline), numerai_diagnostics])

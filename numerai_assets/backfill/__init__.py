"""Stage 6, backfill: the current ensemble's predictions and scores for any range of past eras."""

from __future__ import annotations

import dagster as dg

from numerai_assets.backfill.assets import build_backfill_assets, build_backfill_job
from numerai_assets.backfill.launcher import build_launch_job
from numerai_assets.shared.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    per_run = settings.backfill_eras_per_run
    return dg.Definitions(
        assets=build_backfill_assets(per_run), jobs=[build_backfill_job(), build_launch_job(per_run)]
    )

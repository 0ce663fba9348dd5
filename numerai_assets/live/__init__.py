"""Stage 5, live: when a round opens, predict its live era, check the file, upload it once."""

from __future__ import annotations

import dagster as dg

from numerai_assets.live.assets import (
    live_predictions,
    live_predictions_are_submittable,
    live_round_job,
    submission,
)
from numerai_assets.live.resources import LiveKnobs
from numerai_assets.live.sensor import build_round_sensor
from numerai_assets.shared.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[live_predictions, submission],
        asset_checks=[live_predictions_are_submittable],
        jobs=[live_round_job],
        sensors=[build_round_sensor(live_round_job, settings.round_poll_s)],
        resources={"live": LiveKnobs.from_settings(settings)},
    )

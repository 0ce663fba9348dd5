"""Stage 5, live: when a round opens, predict its live era, check the file, upload it once."""

from __future__ import annotations

import dagster as dg

from numerai_assets.live.assets import (
    build_live_round_job,
    live_predictions,
    live_predictions_are_submittable,
    submission,
)
from numerai_assets.live.resources import LiveKnobs
from numerai_assets.live.sensor import build_round_sensor
from numerai_assets.shared.failure_alerts import build_failure_alert_sensor
from numerai_assets.shared.settings import Settings

LIVE_FAILURE_SENSOR = "live_round_failure_alert"


def build_defs(settings: Settings) -> dg.Definitions:
    job = build_live_round_job(settings.live_max_runtime_minutes, settings.live_max_retries)
    return dg.Definitions(
        assets=[live_predictions, submission],
        asset_checks=[live_predictions_are_submittable],
        jobs=[job],
        sensors=[
            build_round_sensor(job, settings),
            build_failure_alert_sensor(LIVE_FAILURE_SENSOR, job, partition_label="round"),
        ],
        resources={"live": LiveKnobs.from_settings(settings)},
    )

"""The knobs of alerts and run limits (NUMERAI_ALERT_*, the live run's limits, the round sensor's
patience), declared like every other knob and listed in the README's settings tables by
`numerai_assets.shared.settings`, which merges them into `KNOBS`."""

from __future__ import annotations

from pydantic import SecretStr

from model_core.knobs import Knob

ALERT_KNOBS: tuple[Knob, ...] = (
    Knob(
        "alert_webhook",
        SecretStr | None,
        None,
        'Slack-compatible webhook URL (`{"text": ...}` POSTs) for failed runs and late rounds; a secret: '
        "passed as `dagster.EnvVar`, logged as scheme and host only",
        "alerts",
        shown="unset = no alerts",
    ),
    Knob(
        "alert_late_minutes",
        int,
        15,
        "alert when the open round has no upload this many minutes before it closes (0 = never)",
        "alerts",
        ge=0,
        le=7 * 24 * 60,
    ),
    Knob(
        "alert_ui_url",
        str | None,
        None,
        "the Dagster UI's address as users reach it (e.g. `https://numerai.example.com`), for run links in alerts",
        "alerts",
        shown="unset = the run's path only",
    ),
    Knob(
        "sensor_max_api_failures",
        int,
        3,
        "the round sensor skips a tick the API failed, and marks its tick failed from this many in a row",
        "alerts",
        ge=1,
        le=1000,
    ),
    Knob(
        "live_max_runtime_minutes",
        int,
        45,
        "a `live_round` run still going after this long is stopped and failed (`dagster/max_runtime`; "
        "needs run monitoring, as in deploy/dagster.yaml)",
        "alerts",
        ge=1,
        le=7 * 24 * 60,
    ),
    Knob(
        "live_max_retries",
        int,
        1,
        "Dagster re-executes a failed `live_round` run this many times (`dagster/max_retries`; needs "
        "`run_retries` in dagster.yaml); the round sensor's own retries come after",
        "alerts",
        ge=0,
        le=10,
    ),
)

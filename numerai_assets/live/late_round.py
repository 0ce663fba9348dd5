"""The round sensor's late-round alert: the open round has no upload and closes soon.

Checked on each tick while a round is open and NUMERAI_ALERT_WEBHOOK is set: the ledger first
(no API call once the round is uploaded), then the round's close time from the API's round list.
Within NUMERAI_ALERT_LATE_MINUTES of the close the alert goes out once per round (the sensor's
cursor remembers it; a webhook that is down is tried again next tick). A check that cannot be
made (the API or the warehouse failing) is logged and never stops the sensor.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import dagster as dg

from numerai_assets.live.resources import LiveKnobs
from numerai_assets.live.round_cursor import RoundCursor
from numerai_assets.shared.alerts import AlertWebhook
from numerai_assets.shared.numerai_api import NumeraiAPI, NumeraiAPIError
from numerai_assets.shared.warehouse import Warehouse
from numerai_assets.shared.warehouse_schema import WarehouseError


@dataclasses.dataclass(frozen=True)
class LateCheck:
    """What the check reads: the sensor's resources and the limit."""

    numerai: NumeraiAPI
    warehouse: Warehouse
    alerts: AlertWebhook
    live: LiveKnobs
    late_minutes: int


def check_late_round(
    context: dg.SensorEvaluationContext, check: LateCheck, state: RoundCursor, number: int, job_name: str
) -> RoundCursor:
    """The cursor after the check: `late_alerted=number` once the alert was delivered."""
    if not check.alerts.enabled or check.late_minutes == 0 or state.late_alerted == number:
        return state
    try:
        if check.warehouse.round_handled(number, check.live.model_name):
            return state
        closes = check.numerai.round_close_time(number)
    except (NumeraiAPIError, WarehouseError) as err:
        context.log.warning(
            f"round {number}: could not tell whether it is late ({err}); next tick tries again"
        )
        return state
    left = closes - dt.datetime.now(dt.UTC)
    if left > dt.timedelta(minutes=check.late_minutes):
        return state
    runs = context.instance.get_runs(
        dg.RunsFilter(job_name=job_name, tags={"dagster/partition": str(number)})
    )
    text = late_text(number, closes, left, check, runs)
    numerai = check.numerai
    if check.alerts.send(text, secrets=(numerai.public_id, numerai.secret_key), log=context.log):
        context.log.warning(f"round {number} is not submitted and closes at {closes:%H:%M} UTC: alert sent")
        return state.replace(late_alerted=number)
    return state


def late_text(number: int, closes: dt.datetime, left: dt.timedelta, check: LateCheck, runs) -> str:
    minutes = max(0, int(left.total_seconds() // 60))
    model = check.live.model_name or "the account's model"
    if runs:  # newest first
        last = runs[0]
        run_line = (
            f"live runs of round {number}: {len(runs)}; the last is {last.status.value}: "
            f"run {last.run_id}: {check.alerts.run_link(last.run_id)}"
        )
    else:
        run_line = f"no live run of round {number} was started (is the daemon running?)"
    return "\n".join(
        [
            f"numerai: round {number} is NOT SUBMITTED and closes in {minutes} min "
            f"({closes.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)",
            f"the ledger has no upload of round {number} by {model}",
            run_line,
            "`numerai-pipeline submit` uploads the open round by hand",
        ]
    )

"""The round-open sensor: it starts each round's live run (and retries a failed one while the round
is open), alerts when the open round is about to close unsubmitted, and marks its tick failed
once the API has failed NUMERAI_SENSOR_MAX_API_FAILURES ticks in a row."""

import dagster as dg

from numerai_assets.live.late_round import LateCheck, check_late_round
from numerai_assets.live.resources import LiveKnobs
from numerai_assets.live.round_cursor import RoundCursor
from numerai_assets.shared.alerts import AlertWebhook
from numerai_assets.shared.failure_alerts import retry_pending
from numerai_assets.shared.numerai_api import NumeraiAPI, NumeraiAPIError
from numerai_assets.shared.partitions import round_partitions
from numerai_assets.shared.settings import Settings
from numerai_assets.shared.warehouse import Warehouse

ROUND_SENSOR = "round_open_sensor"
MAX_ROUND_ATTEMPTS = 3  # live runs per round while it is open: the first, then retries of a failure


class RoundSensorAPIError(RuntimeError):
    """The Numerai API failed NUMERAI_SENSOR_MAX_API_FAILURES ticks in a row: the tick fails."""


def round_run_key(round_number: int, attempt: int = 1) -> str:
    """One run per round and attempt: Dagster drops a second request with the same run key."""
    return f"round-{round_number}" if attempt == 1 else f"round-{round_number}-attempt-{attempt}"


def _retry_request(instance: dg.DagsterInstance, job_name: str, number: int) -> dg.RunRequest | str:
    """For a round already requested: a retry when every run of it failed, else why not.

    A failed live run (the API down for all its retries, say) must not cost the round while its
    window is open. Retrying cannot upload twice: the ledger, not the run, decides that. A run
    Dagster's own run retries will re-execute is left to them (two live runs at once never).
    """
    runs = instance.get_runs(dg.RunsFilter(job_name=job_name, tags={"dagster/partition": str(number)}))
    if any(run.status == dg.DagsterRunStatus.SUCCESS for run in runs):
        return f"round {number} is open and was submitted"
    if any(not run.is_finished for run in runs) or not runs:
        return f"round {number} is open and its live run is under way"
    if any(retry_pending(run) for run in runs):
        return f"round {number}: its live run failed and Dagster's run retries start it again"
    if len(runs) >= MAX_ROUND_ATTEMPTS:
        return f"round {number}: all {len(runs)} live runs failed; see the runs in the UI (no more retries)"
    return dg.RunRequest(run_key=round_run_key(number, len(runs) + 1), partition_key=str(number))


def _api_failed(state: RoundCursor, err: NumeraiAPIError, max_failures: int) -> dg.SensorResult:
    """Below the limit a skip that says which failure this is; at the limit the tick fails."""
    failures = state.api_failures + 1
    if failures >= max_failures:
        raise RoundSensorAPIError(
            f"the Numerai API failed {failures} ticks in a row (NUMERAI_SENSOR_MAX_API_FAILURES="
            f"{max_failures}); every tick fails until it answers again. Last error: {err}"
        )
    return dg.SensorResult(
        skip_reason=f"the Numerai API failed (tick {failures} in a row; the tick is marked failed at "
        f"{max_failures}), will ask again next tick: {err}",
        cursor=state.replace(api_failures=failures).dump(),
    )


def _skip(state: RoundCursor, message: str) -> dg.SensorResult:
    return dg.SensorResult(skip_reason=message, cursor=state.dump())


def build_round_sensor(job, settings: Settings) -> dg.SensorDefinition:
    max_failures = settings.sensor_max_api_failures

    @dg.sensor(
        name=ROUND_SENSOR,
        job=job,
        minimum_interval_seconds=settings.round_poll_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Asks the API for the round number and whether it is open (no downloads); "
        "a newly opened round gets its partition and one live run (retried while the round is "
        "open if it failed). Alerts when the open round is still unsubmitted "
        "NUMERAI_ALERT_LATE_MINUTES before it closes; fails its tick after "
        "NUMERAI_SENSOR_MAX_API_FAILURES API failures in a row.",
    )
    def round_open_sensor(
        context: dg.SensorEvaluationContext,
        numerai: NumeraiAPI,
        warehouse: Warehouse,
        alerts: AlertWebhook,
        live: LiveKnobs,
    ):
        state = RoundCursor.parse(context.cursor)
        try:
            is_open = numerai.round_open()
            number = numerai.current_round() if is_open else None
        except NumeraiAPIError as err:  # the daemon keeps running: skip, or fail the tick at the limit
            return _api_failed(state, err, max_failures)
        state = state.replace(api_failures=0)
        if number is None:
            last = state.requested or "none"
            return _skip(state, f"no round is open for submissions (last round requested: {last})")
        late = LateCheck(numerai, warehouse, alerts, live, settings.alert_late_minutes)
        state = check_late_round(context, late, state, number, job.name)
        if state.requested is not None and state.requested >= number:
            retry = _retry_request(context.instance, job.name, number)
            if isinstance(retry, str):
                return _skip(state, retry)
            context.log.warning(f"round {number}: its live run failed; requesting {retry.run_key}")
            return dg.SensorResult(run_requests=[retry], cursor=state.dump())
        context.log.info(f"round {number} is open: requesting its live run")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=round_run_key(number), partition_key=str(number))],
            dynamic_partitions_requests=[round_partitions.build_add_request([str(number)])],
            cursor=state.replace(requested=number).dump(),
        )

    return round_open_sensor

"""The round-open sensor: it starts each round's live run (and retries a failed one while the round is open)."""

import dagster as dg

from numerai_assets.shared.numerai_api import NumeraiAPI, NumeraiAPIError
from numerai_assets.shared.partitions import round_partitions

ROUND_SENSOR = "round_open_sensor"
MAX_ROUND_ATTEMPTS = 3  # live runs per round while it is open: the first, then retries of a failure


def round_run_key(round_number: int, attempt: int = 1) -> str:
    """One run per round and attempt: Dagster drops a second request with the same run key."""
    return f"round-{round_number}" if attempt == 1 else f"round-{round_number}-attempt-{attempt}"


def _retry_request(instance: dg.DagsterInstance, job_name: str, number: int) -> dg.RunRequest | str:
    """For a round already requested: a retry when every run of it failed, else why not.

    A failed live run (the API down for all its retries, say) must not cost the round while its
    window is open. Retrying cannot upload twice: the ledger, not the run, decides that.
    """
    runs = instance.get_runs(dg.RunsFilter(job_name=job_name, tags={"dagster/partition": str(number)}))
    if any(run.status == dg.DagsterRunStatus.SUCCESS for run in runs):
        return f"round {number} is open and was submitted"
    if any(not run.is_finished for run in runs) or not runs:
        return f"round {number} is open and its live run is under way"
    if len(runs) >= MAX_ROUND_ATTEMPTS:
        return f"round {number}: all {len(runs)} live runs failed; see the runs in the UI (no more retries)"
    return dg.RunRequest(run_key=round_run_key(number, len(runs) + 1), partition_key=str(number))


def build_round_sensor(job, interval_s: int) -> dg.SensorDefinition:
    @dg.sensor(
        name=ROUND_SENSOR,
        job=job,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Asks the API for the round number and whether it is open (no downloads); "
        "a newly opened round gets its partition and one live run (retried while the round is "
        "open if it failed).",
    )
    def round_open_sensor(context: dg.SensorEvaluationContext, numerai: NumeraiAPI):
        try:
            is_open = numerai.round_open()
            number = numerai.current_round() if is_open else None
        except NumeraiAPIError as err:  # the daemon must keep running: report and try next tick
            return dg.SkipReason(f"the Numerai API failed, will ask again next tick: {err}")
        last = context.cursor
        if number is None:
            return dg.SkipReason(f"no round is open for submissions (last round requested: {last or 'none'})")
        if last is not None and int(last) >= number:
            retry = _retry_request(context.instance, job.name, number)
            if isinstance(retry, str):
                return dg.SkipReason(retry)
            context.log.warning(f"round {number}: its live run failed; requesting {retry.run_key}")
            return dg.SensorResult(run_requests=[retry], cursor=last)
        context.log.info(f"round {number} is open: requesting its live run")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=round_run_key(number), partition_key=str(number))],
            dynamic_partitions_requests=[round_partitions.build_add_request([str(number)])],
            cursor=str(number),
        )

    return round_open_sensor

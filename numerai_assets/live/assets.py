"""A round's live path: raw_round -> live_predictions (gated by a blocking check) -> submission."""

import dagster as dg

from numerai_assets.ingest.assets import raw_round
from numerai_assets.live.resources import LiveKnobs
from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.partitions import round_partitions
from numerai_assets.shared.resources import NumeraiHome
from numerai_assets.shared.warehouse import Warehouse

LIVE_JOB = "live_round"


@dg.asset(group_name="live", partitions_def=round_partitions, deps=[raw_round], kinds={"parquet"})
def live_predictions(
    context: dg.AssetExecutionContext, numerai_home: NumeraiHome, warehouse: Warehouse, live: LiveKnobs
):
    """The current ensemble's predictions of the round's live era (ids and values in (0, 1]),
    partially feature-neutralised when NUMERAI_NEUTRALIZE is set."""
    from numerai_assets.live.predict import predict_live

    result = predict_live(numerai_home.layout, int(context.partition_key), live.neutralize)
    warehouse.upsert_round(result.round_number, result.live_era, result.rows)
    context.log.info(
        f"round {result.round_number}: {result.rows} live predictions by model version "
        f"{result.model_version} ({result.dataset_version} live file) in {result.seconds:.1f}s"
    )
    return dg.MaterializeResult(
        metadata={
            "round": result.round_number,
            "model_version": result.model_version,
            "dataset_version": result.dataset_version,
            "rows": result.rows,
            "live_era": result.live_era,
            "neutralized": live.neutralize,
            "seconds": round(result.seconds, 2),
            "path": dg.MetadataValue.path(str(result.path)),
        }
    )


@dg.asset_check(asset=live_predictions, blocking=True, description="Nothing bad reaches submission.")
def live_predictions_are_submittable(
    context: dg.AssetCheckExecutionContext, numerai_home: NumeraiHome, live: LiveKnobs
):
    """Every live id once, values in [0, 1], no NaN, not constant, a recent enough model version,
    in rough agreement with the round's live benchmark model (when the round has its file)."""
    from numerai_assets.live import predict

    layout = numerai_home.layout
    key = context.partition_key if context.has_partition_key else context.run.tags["dagster/partition"]
    round_number = int(key)
    frame, version = predict.read_live_predictions(layout.live_predictions_path(round_number))
    problems = predict.live_prediction_problems(
        frame, predict.live_ids(layout, round_number), version, live.max_model_age_days
    )
    bench = predict.live_benchmark_corr(frame, layout, round_number, live.benchmark_model)
    problems += predict.benchmark_problem(bench, live.min_benchmark_corr)
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "round": round_number,
            "partition": key,  # the run's round partition: the check itself is not partitioned
            "model_version": version or "unknown",
            "benchmark_corr": "no live benchmark file" if bench is None else bench.shown(),
            "benchmark_model": "none" if bench is None else bench.column,
            "problems": "; ".join(problems) or "none",
        },
        description=f"round {round_number}: "
        + ("; ".join(problems) or f"{frame.height} predictions ready to submit"),
    )


class SubmissionConfig(dg.Config):
    force: bool = False  # upload even when the ledger says this round was already submitted


@dg.asset(group_name="live", partitions_def=round_partitions, deps=[live_predictions], kinds={"csv"})
def submission(
    context: dg.AssetExecutionContext,
    config: SubmissionConfig,
    numerai: NumeraiAPI,
    numerai_home: NumeraiHome,
    warehouse: Warehouse,
    live: LiveKnobs,
):
    """The validated CSV, uploaded once per round and model (a dry run without credentials)."""
    from numerai_assets.live.submit import submit_round

    receipt = submit_round(
        numerai,
        warehouse,
        numerai_home.layout,
        int(context.partition_key),
        live.model_name,
        config.force,
        context.log.info,
    )
    return dg.MaterializeResult(
        metadata={
            "round": receipt.round_number,
            "status": receipt.status,
            "dry_run": receipt.status == "dry_run",
            "model_name": receipt.model_name,
            "model_id": receipt.model_id,
            "submission_id": receipt.submission_id or "none",
            "rows": receipt.rows,
            "sha256": receipt.sha256,
            "model_version": receipt.model_version,
            "path": dg.MetadataValue.path(str(receipt.path)),
        }
    )


# Documented run tags: the run monitoring daemon stops a run past max_runtime (seconds), the run
# retry daemon re-executes a failed one up to max_retries times (from the failed step on).
MAX_RUNTIME_TAG = "dagster/max_runtime"
MAX_RETRIES_TAG = "dagster/max_retries"


def live_run_tags(max_runtime_minutes: int, max_retries: int) -> dict[str, str]:
    """On the job, not on the sensor's RunRequests: a run launched from the UI or the CLI must end
    within the round's window too."""
    tags = {MAX_RUNTIME_TAG: str(max_runtime_minutes * 60)}
    return tags | ({MAX_RETRIES_TAG: str(max_retries)} if max_retries else {})


def build_live_round_job(max_runtime_minutes: int, max_retries: int):
    return dg.define_asset_job(
        LIVE_JOB,
        selection=dg.AssetSelection.assets(raw_round, live_predictions, submission),
        # In one process: the live window is short and three small steps need no process each.
        executor_def=dg.in_process_executor,
        tags=live_run_tags(max_runtime_minutes, max_retries),
        description="A round's live file -> predictions -> checked -> uploaded (the round sensor "
        "starts it); stopped past NUMERAI_LIVE_MAX_RUNTIME_MINUTES.",
    )

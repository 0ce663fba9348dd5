"""Run-failure sensors that send an alert (numerai_assets.shared.alerts) when a job's run fails.

Each stage registers one for its job (the live round, the weekly training). The text names the
job, the partition (the round), every failed step with its error's first line, the run id and
where it is in the UI; the whole error is in the UI, and nothing secret goes out (the alert
resource scrubs the API key and the webhook URL from every text).
"""

from __future__ import annotations

import dagster as dg

from numerai_assets.shared.alerts import AlertWebhook, first_line
from numerai_assets.shared.numerai_api import NumeraiAPI

PARTITION_TAG = "dagster/partition"  # documented run tag of a single-partition run


def will_be_retried(run: dg.DagsterRun) -> bool:
    """Whether Dagster's run retries (run_retries in dagster.yaml) re-execute this failed run."""
    from numerai_assets.shared import dagster_private as private

    return run.tags.get(private.WILL_RETRY_TAG) == "true"


def retry_pending(run: dg.DagsterRun) -> bool:
    """A failed run Dagster will re-execute and whose retry has not been started yet."""
    from numerai_assets.shared import dagster_private as private

    return will_be_retried(run) and private.AUTO_RETRY_RUN_ID_TAG not in run.tags


def _innermost_error(error) -> str:
    """The user's own exception under Dagster's wrappers, as one line."""
    while error.cause is not None:
        error = error.cause
    if not error.message.strip():
        return error.cls_name
    line = first_line(error.message)
    qualified, _, rest = line.partition(": ")  # "package.module.SomeError: text" -> "SomeError: text"
    return f"{error.cls_name}: {rest}" if rest and qualified.endswith(error.cls_name) else line


def _failed_checks(context: dg.RunFailureSensorContext) -> list[tuple[str, str]]:
    """(check name, its description) of each check of the run that did not pass: a blocking one
    (`live_predictions_are_submittable`) fails the run with a generic error, the reason is here."""
    records = context.instance.get_records_for_run(
        context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    return [
        (e.check_name, first_line(e.description or "no description")) for e in evaluations if not e.passed
    ]


def failure_text(
    context: dg.RunFailureSensorContext, alerts: AlertWebhook, partition_label: str | None
) -> str:
    """The alert for one failed run (plain text, Slack renders it as is)."""
    run = context.dagster_run
    partition = run.tags.get(PARTITION_TAG)
    what = f"{partition_label} {partition}" if partition_label and partition else run.job_name
    lines = [f"numerai: {what} FAILED (job {run.job_name})"]
    lines += [f"failed check {name}: {why}" for name, why in _failed_checks(context)]
    steps = context.get_step_failure_events()
    for event in steps:
        lines.append(f"failed step {event.step_key}: {_innermost_error(event.event_specific_data.error)}")
    if not steps:  # the run itself failed: its time limit, a crashed worker, a terminated run
        lines.append(f"run failure: {first_line(context.failure_event.message or 'no message')}")
    if will_be_retried(run):
        lines.append("Dagster retries the run (dagster/max_retries)")
    lines.append(f"run {run.run_id}: {alerts.run_link(run.run_id)}")
    return "\n".join(lines)


def build_failure_alert_sensor(name: str, job, partition_label: str | None = None) -> dg.SensorDefinition:
    """A sensor that posts `failure_text` for each failed run of `job` (none when no webhook is set)."""

    @dg.run_failure_sensor(
        name=name,
        monitored_jobs=[job],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Posts an alert to NUMERAI_ALERT_WEBHOOK when a {job.name} run fails "
        "(job, round, failed step, error, run link); does nothing while the webhook is unset.",
    )
    def _alert_on_failure(context: dg.RunFailureSensorContext, alerts: AlertWebhook, numerai: NumeraiAPI):
        run_id = context.dagster_run.run_id
        if not alerts.enabled:
            context.log.info(f"run {run_id} failed; NUMERAI_ALERT_WEBHOOK is not set: no alert")
            return
        text = failure_text(context, alerts, partition_label)
        if alerts.send(text, secrets=(numerai.public_id, numerai.secret_key), log=context.log):
            context.log.info(f"run {run_id} failed: alert sent")
        else:  # already logged by send; the sensor goes on, the run's failure is in the UI anyway
            context.log.warning(f"run {run_id} failed: the alert could not be delivered")

    return _alert_on_failure

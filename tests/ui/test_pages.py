"""What a user reads in the Dagster UI after a tick of the weekly schedule, `numerai-pipeline
submit`, an era backfill and a tick of the round sensor, as rendered by a real browser: the asset
graph, the diagnostics, a fold model, the folds, the backfilled eras, the weekly job and its run,
the weekly schedule's tick and run, the live job's runs, the round sensor and its run, the era
backfill launched from its Launchpad, the alert sensors."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect

# The UI loads its data after the page: wait for it (the first query of a fresh webserver is slow).
expect.set_options(timeout=45_000)

# Set to a folder (e.g. docs/ui) to keep a screenshot of every page the tests open.
SCREENSHOTS = os.environ.get("NUMERAI_UI_SCREENSHOTS")


def _shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=False)


def test_asset_graph_shows_every_stage(page: Page):
    page.goto("/asset-groups")
    expect(page.get_by_text("Global asset lineage").first).to_be_visible()
    for group in ("ingest", "features", "training", "ensemble", "diagnostics", "live", "backfill"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    _shot(page, "asset-graph")


def test_training_group_lists_the_materialised_folds(page: Page):
    page.goto("/locations/numerai/asset-groups/training")
    for asset in ("cv_folds", "fold_model_0", "fold_model_1"):
        expect(page.get_by_text(asset, exact=True).first).to_be_visible()
    _shot(page, "training-group")


def _inline_chart(page: Page, alt: str):
    """The chart drawn in place in the metadata table (not behind "[Show Markdown]"), loaded."""
    chart = page.locator(f"table img[alt='{alt}']")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("src", re.compile(r"^data:image/svg\+xml,"))
    assert chart.evaluate("img => img.complete && img.naturalWidth > 0"), f"{alt}: the image did not load"
    return chart


def _table_header(page: Page, column: str):
    header = page.locator("table th", has_text=re.compile(f"^{re.escape(column)}$")).first
    expect(header).to_be_visible()
    return header


def test_validation_diagnostics_shows_its_figures(page: Page):
    page.goto("/assets/validation_diagnostics")
    expect(page.get_by_text("validation_diagnostics").first).to_be_visible()
    # The latest materialisation's metadata, as the asset page lists it.
    for key in ("corr_mean", "corr_sharpe", "per_era_scores"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    for column in ("CORR20", "payout", "FNC"):  # the per-era table, drawn in place
        _table_header(page, column)
    _inline_chart(page, "cumulative CORR").scroll_into_view_if_needed()
    _shot(page, "validation-diagnostics")


def test_fold_model_shows_its_training(page: Page):
    page.goto("/assets/fold_model_0")
    for key in ("best_epoch", "epochs_run", "training_curve", "epochs", "settings", "train_eras"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    for column in ("train_loss", "val_corr_mean", "learning_rate"):  # the per-epoch table
        _table_header(page, column)
    _inline_chart(page, "fold 0 training curve").scroll_into_view_if_needed()
    _shot(page, "fold-model-0")


def test_era_scores_shows_the_backfilled_eras(page: Page):
    page.goto("/assets/era_scores")
    expect(page.get_by_text("per_era_scores", exact=True).first).to_be_visible()
    for column in ("split", "CORR20", "MMC", "CWMM", "BMC", "payout"):
        _table_header(page, column)
    expect(page.locator("table td", has_text=re.compile("^0068$")).first).to_be_visible()
    _inline_chart(page, "backfilled CORR").scroll_into_view_if_needed()
    _shot(page, "era-scores")


def test_cv_folds_shows_the_folds_table(page: Page):
    page.goto("/assets/cv_folds")
    for column in ("train", "train_eras", "gap", "validation", "validation_eras"):
        _table_header(page, column)
    expect(page.locator("table td", has_text=re.compile("^test$")).first).to_be_visible()


def test_weekly_training_job_page(page: Page, cli_runs):
    page.goto("/locations/numerai/jobs/weekly_training")
    expect(page.get_by_text("weekly_training").first).to_be_visible()
    for group in ("ingest", "training"):  # the job's graph, by asset group
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    _shot(page, "weekly-training-job")
    # The run the weekly schedule's tick started is the job's run (it has the code location's origin).
    [run] = cli_runs["weekly_training"]
    page.goto("/locations/numerai/jobs/weekly_training/runs")
    expect(page.get_by_text(run.run_id[:8]).first).to_be_visible()
    expect(page.get_by_text("No runs")).to_have_count(0)
    _shot(page, "weekly-training-runs")


def test_weekly_training_schedule_page_lists_its_tick_and_run(page: Page, cli_runs):
    page.goto("/locations/numerai/schedules/weekly_training_schedule")
    expect(page.get_by_text("weekly_training_schedule").first).to_be_visible()
    # The latest tick and the tick history: the schedule's tick requested the training run.
    [run] = cli_runs["weekly_training"]
    expect(page.get_by_text("1 run requested").first).to_be_visible()
    expect(page.locator("table td", has_text=run.run_id[:8]).first).to_be_visible()  # the tick's Result
    expect(page.get_by_text("Schedule has never run")).to_have_count(0)
    _shot(page, "weekly-training-schedule")
    page.get_by_text("Run history", exact=True).click()  # the page's Tick history | Run history tabs
    expect(page.get_by_text(run.run_id[:8]).first).to_be_visible()
    _shot(page, "weekly-training-schedule-runs")


def test_live_round_job_lists_the_submitted_rounds(page: Page, cli_runs):
    page.goto("/locations/numerai/jobs/live_round/runs")
    runs = cli_runs["live_round"]  # `submit`'s run, then the sensor's
    assert len(runs) == 2
    for run in runs:
        expect(page.get_by_text(run.run_id[:8]).first).to_be_visible()
    _shot(page, "live-round-runs")


def test_round_sensor_page(page: Page, cli_runs):
    page.goto("/locations/numerai/sensors/round_open_sensor")
    expect(page.get_by_text("round_open_sensor").first).to_be_visible()
    _shot(page, "round-sensor")
    # The run the sensor's tick requested is on the sensor's runs tab; `submit`'s run is not.
    [by_sensor] = [r for r in cli_runs["live_round"] if r.tags.get("dagster/sensor_name")]
    [by_submit] = [r for r in cli_runs["live_round"] if r is not by_sensor]
    page.get_by_role("button", name="Runs", exact=True).click()  # the page's Evaluations | Runs switch
    expect(page.get_by_text(by_sensor.run_id[:8]).first).to_be_visible()
    expect(page.get_by_text(by_submit.run_id[:8])).to_have_count(0)
    _shot(page, "round-sensor-runs")


def test_runs_list_the_commands_runs(page: Page):
    page.goto("/runs")
    # The schedule's tick and `submit` each started runs in this instance: the list is not empty.
    expect(page.get_by_text("Success").first).to_be_visible()
    _shot(page, "runs")


def test_launch_era_backfill_launchpad_opens_with_a_valid_example(page: Page):
    """The era backfill in one action: the job's Launchpad, its default config filled in."""
    page.goto("/locations/numerai/jobs/launch_era_backfill/playground")
    for text in ("record_era_backfill", "last 4"):  # the default config, in the config editor
        expect(page.get_by_text(text).first).to_be_visible()
    expect(page.get_by_role("button", name="Launch Run")).to_be_enabled()
    _shot(page, "launch-era-backfill")


def test_alert_sensors_and_the_round_sensor_say_what_they_watch(page: Page):
    for name in ("live_round_failure_alert", "weekly_training_failure_alert"):
        page.goto(f"/locations/numerai/sensors/{name}")
        expect(page.get_by_text(name).first).to_be_visible()
        expect(page.get_by_text("NUMERAI_ALERT_WEBHOOK", exact=False).first).to_be_visible()
    page.goto("/locations/numerai/sensors/round_open_sensor")
    expect(page.get_by_text("NUMERAI_SENSOR_MAX_API_FAILURES", exact=False).first).to_be_visible()
    _shot(page, "alert-sensors")


def test_live_round_job_says_its_time_limit(page: Page):
    page.goto("/locations/numerai/jobs/live_round")
    expect(page.get_by_text("NUMERAI_LIVE_MAX_RUNTIME_MINUTES", exact=False).first).to_be_visible()
    _shot(page, "live-round-job")


def test_an_era_range_backfill_is_launched_from_the_launchpad_in_one_click(page: Page):
    """One click on the Launchpad's default config: the launch run succeeds and the backfill it
    recorded is listed with its eras (run by a daemon, or `numerai-pipeline backfill --id`)."""
    page.goto("/locations/numerai/jobs/launch_era_backfill/playground")
    launch = page.get_by_role("button", name="Launch Run")
    expect(launch).to_be_enabled()
    launch.click()
    page.wait_for_url("**/runs/**")
    # The daemon of `dagster dev` dequeues the run; it records the backfill and succeeds.
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=180_000)
    _shot(page, "launch-era-backfill-run")
    # The run's output links the backfill it recorded; its page lists the backfilled assets.
    backfill_path = page.get_by_text(re.compile(r"^/runs/b/\w+$")).first.inner_text()
    page.goto(backfill_path)
    expect(page.get_by_text("era_scores").first).to_be_visible()
    _shot(page, "era-backfill")

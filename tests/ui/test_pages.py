"""What a user reads in the Dagster UI after `numerai-pipeline train` and `submit` and a tick of
the round sensor, as rendered by a real browser: the asset graph, the diagnostics, a fold model,
the weekly job and its run, the live job's runs, the round sensor and its run."""

from __future__ import annotations

import os
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


def test_validation_diagnostics_shows_its_figures(page: Page):
    page.goto("/assets/validation_diagnostics")
    expect(page.get_by_text("validation_diagnostics").first).to_be_visible()
    # The latest materialisation's metadata, as the asset page lists it.
    for key in ("corr_mean", "corr_sharpe"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    _shot(page, "validation-diagnostics")


def test_fold_model_shows_its_training(page: Page):
    page.goto("/assets/fold_model_0")
    for key in ("best_epoch", "epochs_run"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    _shot(page, "fold-model-0")


def test_weekly_training_job_page(page: Page, cli_runs):
    page.goto("/locations/numerai/jobs/weekly_training")
    expect(page.get_by_text("weekly_training").first).to_be_visible()
    for group in ("ingest", "training"):  # the job's graph, by asset group
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    _shot(page, "weekly-training-job")
    # The run `numerai-pipeline train` started is the job's run (it has the code location's origin).
    [run] = cli_runs["weekly_training"]
    page.goto("/locations/numerai/jobs/weekly_training/runs")
    expect(page.get_by_text(run.run_id[:8]).first).to_be_visible()
    expect(page.get_by_text("No runs")).to_have_count(0)
    _shot(page, "weekly-training-runs")


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
    # `train` and `submit` each started runs in this instance: the list is not empty.
    expect(page.get_by_text("Success").first).to_be_visible()
    _shot(page, "runs")

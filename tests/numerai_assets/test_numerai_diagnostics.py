"""numerai_diagnostics in the weekly job: the test-block predictions uploaded through the real
numerapi client to the stand-in on 127.0.0.1, on a private copy of the trained home; off by
default; a failure is a status and a warning, never a failed run."""

from __future__ import annotations

import types

import dagster as dg
import numerapi.utils
import pandas as pd
import polars as pl
import pytest

from numerai_assets.shared.home import DIAGNOSTICS_CSV, TEST_PREDICTIONS, HomeLayout
from numerai_assets.shared.model_versions import current_model_dir
from numerai_assets.shared.warehouse import Warehouse
from tests.numerai_assets.tiny import tiny_definitions
from tournament_sim.server import FaultConfig, list_diagnostics

MODEL = "sim_model_b"  # the account holds two models: the service must be told which
ASSET = dg.AssetKey("numerai_diagnostics")


def _run_weekly_tail(home, server, state, instance, **overrides):
    """The weekly job, as scheduled, with only numerai_diagnostics selected (the rest is trained)."""
    defs, _ = tiny_definitions(home, server.url, state, **overrides)
    job = defs.resolve_job_def("weekly_training")
    result = job.execute_in_process(instance=instance, asset_selection=[ASSET], raise_on_error=False)
    [event] = result.asset_materializations_for_node("numerai_diagnostics")
    return result, {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def _stored_ids(home) -> list[tuple]:
    warehouse = Warehouse(path=str(HomeLayout(home).warehouse_path))
    rows = warehouse.query("SELECT model_version, model_name, diagnostics_id, rows FROM numerai_diagnostics")
    return rows.rows()


def _logs(instance, result) -> list[dg.EventLogEntry]:
    return [entry for entry in instance.all_logs(result.run_id) if entry.user_message]


def test_the_upload_lands_on_the_stand_in_with_the_test_block_rows_and_the_id_is_stored(
    trained_home, tournament, tournament_state, server, instance
):
    result, meta = _run_weekly_tail(
        trained_home, server, tournament_state, instance, upload_diagnostics=True, model_name=MODEL
    )
    assert result.success
    assert meta["status"] == "uploaded" and meta["model_name"] == MODEL
    [landed] = list_diagnostics(tournament)
    assert landed["diagnostics_id"] == meta["diagnostics_id"] and landed["model_name"] == MODEL
    assert landed["model_id"] == tournament_state.models[MODEL]

    model_dir = current_model_dir(HomeLayout(trained_home))
    expected = pl.read_parquet(model_dir / TEST_PREDICTIONS).to_pandas()
    uploaded = pd.read_csv(tournament / landed["path"])
    assert list(uploaded.columns) == ["id", "prediction"]
    assert landed["rows"] == meta["rows"] == len(expected) == len(uploaded)
    assert uploaded["id"].tolist() == expected["id"].tolist()
    assert uploaded["prediction"].to_numpy() == pytest.approx(expected["prediction"].to_numpy(), abs=1e-9)
    assert meta["path"] == str(model_dir / DIAGNOSTICS_CSV)
    assert _stored_ids(trained_home) == [(model_dir.name, MODEL, meta["diagnostics_id"], len(expected))]

    again, meta_again = _run_weekly_tail(
        trained_home, server, tournament_state, instance, upload_diagnostics=True, model_name=MODEL
    )
    assert again.success and meta_again["status"] == "already_uploaded"
    assert meta_again["diagnostics_id"] == meta["diagnostics_id"]
    assert len(list_diagnostics(tournament)) == 1  # the same version is not uploaded twice


def test_off_by_default_nothing_is_asked_or_written(
    trained, trained_home, tournament_state, server, instance
):
    assert trained.metadata["numerai_diagnostics"] == {"status": "off"}  # in the weekly job, as run
    result, meta = _run_weekly_tail(trained_home, server, tournament_state, instance)
    assert result.success and meta == {"status": "off"}
    assert server.request_log == [] and list_diagnostics(server.sim_dir) == []
    assert not (current_model_dir(HomeLayout(trained_home)) / DIAGNOSTICS_CSV).exists()
    assert _stored_ids(trained_home) == []


@pytest.mark.parametrize("fail_paths", [("upload",), ("graphql", "upload")])
def test_an_api_failure_is_a_failed_status_and_the_job_succeeds(
    trained_home, tournament, tournament_state, server, instance, monkeypatch, fail_paths
):
    # numerapi waits 5 s then 10 s between its own retries of a 5xx; not here
    monkeypatch.setattr(numerapi.utils, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    server.set_faults(FaultConfig(error_rate=1.0, fail_paths=fail_paths))
    result, meta = _run_weekly_tail(
        trained_home, server, tournament_state, instance, upload_diagnostics=True, model_name=MODEL
    )
    assert result.success
    assert meta["status"].startswith("failed: ") and "Numerai API" in meta["status"]
    assert any(status == 500 for *_, status in server.request_log)
    assert list_diagnostics(tournament) == [] and _stored_ids(trained_home) == []
    logs = _logs(instance, result)
    assert any(e.level == 30 and "Numerai diagnostics not uploaded" in e.user_message for e in logs)
    assert not any(tournament_state.secret_key in e.user_message for e in logs)

    server.set_faults(FaultConfig())  # the next run, with the API back, uploads
    healed, meta = _run_weekly_tail(
        trained_home, server, tournament_state, instance, upload_diagnostics=True, model_name=MODEL
    )
    assert healed.success and meta["status"] == "uploaded" and len(list_diagnostics(tournament)) == 1


@pytest.mark.parametrize(
    ("with_key", "model_name", "reason"),
    [
        (False, MODEL, "no API key (NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY are not set)"),
        (True, None, "the account has 2 models"),
        (True, "nope", "NUMERAI_MODEL_NAME='nope' is not a model of this account"),
    ],
)
def test_no_key_or_no_model_is_a_failed_status_not_a_failed_run(
    trained_home, tournament, tournament_state, server, instance, with_key, model_name, reason
):
    state = tournament_state if with_key else None
    result, meta = _run_weekly_tail(
        trained_home, server, state, instance, upload_diagnostics=True, model_name=model_name
    )
    assert result.success and meta["status"].startswith(f"failed: {reason}")
    assert list_diagnostics(tournament) == [] and _stored_ids(trained_home) == []

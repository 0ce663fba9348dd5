"""numerapi's `upload_diagnostics` against the stand-in: diagnosticsUploadAuth, the PUT and
createDiagnostics, with the real client on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numerapi
import pandas as pd
import pytest
import requests

from model_core import schema
from tests.conftest import FAKE_MODELS
from tournament_sim.server import FaultConfig, SimServer, close_round, list_diagnostics, list_submissions

MODEL = "sim_model_2"
CREATE_DIAGNOSTICS = """
    mutation($filename: String! $tournament: Int! $modelId: String) {
        createDiagnostics(filename: $filename tournament: $tournament modelId: $modelId) { id }
    }"""
CREATE_SUBMISSION = """
    mutation($filename: String! $tournament: Int! $modelId: String) {
        create_submission(filename: $filename tournament: $tournament modelId: $modelId) { id }
    }"""
UPLOAD_AUTH = """
    query($filename: String! $tournament: Int! $modelId: String) {
        {operation}(filename: $filename tournament: $tournament modelId: $modelId) { filename url }
    }"""


def client(credentials: tuple[str, str]) -> numerapi.NumerAPI:
    return numerapi.NumerAPI(*credentials, verbosity="critical", show_progress_bars=False)


def validation_csv(sim_dir: Path, path: Path) -> Path:
    ids = pd.read_parquet(sim_dir / schema.DEFAULT_DATASET_VERSION / schema.VALIDATION_FILE).index
    frame = pd.DataFrame({schema.ID: ids, schema.PREDICTION: [(i % 10 + 1) / 11 for i in range(len(ids))]})
    frame.to_csv(path, index=False)
    return path


def test_upload_diagnostics_lands_under_the_tournament_dir_and_is_listed(
    sim_server: SimServer, sim_dir: Path, sim_credentials: tuple[str, str], tmp_path: Path
) -> None:
    api = client(sim_credentials)
    model_id = FAKE_MODELS[MODEL]
    csv_path = validation_csv(sim_dir, tmp_path / "validation_predictions.csv")
    close_round(sim_dir)  # diagnostics do not wait for an open round
    first = api.upload_diagnostics(str(csv_path), model_id=model_id)
    second = api.upload_diagnostics(df=pd.read_csv(csv_path), model_id=model_id)
    records = list_diagnostics(sim_dir)
    assert [record["diagnostics_id"] for record in records] == [first, second] and first != second
    record = records[0]
    stored = sim_dir / record["path"]
    assert stored == sim_dir / "diagnostics" / f"{first}.csv"
    assert stored.read_bytes() == csv_path.read_bytes()
    assert record["sha256"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert (record["model_id"], record["model_name"], record["rows"]) == (model_id, MODEL, 40)
    assert not list(sim_dir.joinpath("diagnostics", "pending").rglob("*.csv"))  # accepted, not left waiting
    assert list_submissions(sim_dir) == []  # a diagnostics upload is no submission
    operations = [operation for _, _, operation, _ in sim_server.request_log]
    assert operations.count("diagnosticsUploadAuth") == operations.count("createDiagnostics") == 2


def test_diagnostics_need_the_key_a_model_of_the_account_and_a_valid_file(
    sim_server: SimServer, sim_dir: Path, sim_credentials: tuple[str, str], tmp_path: Path
) -> None:
    good = validation_csv(sim_dir, tmp_path / "good.csv")
    with pytest.raises(ValueError, match="authenticated"):
        client((sim_credentials[0], "wrong")).upload_diagnostics(str(good), model_id=FAKE_MODELS[MODEL])
    with pytest.raises(ValueError, match="not one of this account's models"):
        client(sim_credentials).upload_diagnostics(str(good), model_id="00000000-0000-0000-0000-000000000000")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,prediction\nn1,1.5\n")
    with pytest.raises(ValueError, match=r"diagnostics upload line 2: prediction 1.5 is outside \[0, 1\]"):
        client(sim_credentials).upload_diagnostics(str(bad), model_id=FAKE_MODELS[MODEL])
    assert list_diagnostics(sim_dir) == []


def test_a_diagnostics_upload_and_a_submission_upload_are_not_interchangeable(
    sim_server: SimServer, sim_dir: Path, sim_credentials: tuple[str, str], tmp_path: Path
) -> None:
    api = client(sim_credentials)
    model_id = FAKE_MODELS[MODEL]
    variables = {"filename": "never_put.csv", "tournament": 8, "modelId": model_id}
    with pytest.raises(ValueError, match="file not found"):
        api.raw_query(CREATE_DIAGNOSTICS, variables, authorization=True)
    csv_path = validation_csv(sim_dir, tmp_path / "p.csv")
    for auth, create in (
        ("diagnosticsUploadAuth", CREATE_SUBMISSION),
        ("submission_upload_auth", CREATE_DIAGNOSTICS),
    ):
        query = UPLOAD_AUTH.replace("{operation}", auth)
        handed = api.raw_query(query, {**variables, "filename": "p.csv"}, authorization=True)["data"][auth]
        assert requests.put(handed["url"], data=csv_path.read_bytes(), timeout=10).status_code == 200
        with pytest.raises(ValueError, match="file not found"):
            api.raw_query(create, {**variables, "filename": handed["filename"]}, authorization=True)
    assert list_diagnostics(sim_dir) == [] and list_submissions(sim_dir) == []


def test_a_failed_put_shows_up_at_create_diagnostics(
    sim_server: SimServer, sim_dir: Path, sim_credentials: tuple[str, str], tmp_path: Path
) -> None:
    sim_server.set_faults(FaultConfig(error_rate=1.0, fail_paths=("upload",)))
    csv_path = validation_csv(sim_dir, tmp_path / "p.csv")
    with pytest.raises(ValueError, match="file not found"):  # numerapi ignores the PUT's status
        client(sim_credentials).upload_diagnostics(str(csv_path), model_id=FAKE_MODELS[MODEL])
    assert ("PUT", 500) in {(method, status) for method, _, _, status in sim_server.request_log}
    assert list_diagnostics(sim_dir) == []

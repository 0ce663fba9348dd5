"""The simulated API, driven by the real numerapi client on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numerapi
import pandas as pd
import pytest
import requests

from model_core import schema
from tests.conftest import FAKE_CURRENT_ROUND, FAKE_FIRST_ROUND, FAKE_LAST_ROUND, FAKE_MODELS
from tournament_sim.layout import STATE_FILE, round_file
from tournament_sim.rounds import reopen_round
from tournament_sim.server import (
    FaultConfig,
    PortInUseError,
    SimServer,
    advance_round,
    close_round,
    list_submissions,
)

VERSION = schema.DEFAULT_DATASET_VERSION
CREATE_SUBMISSION = """
    mutation($filename: String! $tournament: Int! $modelId: String) {
        create_submission(filename: $filename tournament: $tournament modelId: $modelId) { id }
    }"""
GET_MODELS = "query { account { models { id name tournament } } }"
CURRENT_ROUND = {"query": "query { rounds(tournament: 8 number: 0) { number } }"}


def client(credentials: tuple[str, str] | None = None) -> numerapi.NumerAPI:
    public_id, secret_key = credentials or ("", "")
    api = numerapi.NumerAPI(
        public_id or None, secret_key or None, verbosity="critical", show_progress_bars=False
    )
    if credentials is None:
        api.token = None  # ignore NUMERAI_* variables or a .env the developer may have
    return api


def live_file(sim_dir: Path, number: int) -> Path:
    return round_file(sim_dir, number, VERSION, schema.LIVE_FILE)


def write_predictions(sim_dir: Path, path: Path, number: int = FAKE_CURRENT_ROUND) -> Path:
    ids = pd.read_parquet(live_file(sim_dir, number)).index
    frame = pd.DataFrame({schema.ID: ids, schema.PREDICTION: [(i % 10) / 10 for i in range(len(ids))]})
    frame.to_csv(path, index=False)
    return path


# -- data ------------------------------------------------------------------------------------------


def test_list_datasets_names_every_served_file(sim_server: SimServer) -> None:
    names = set(client().list_datasets())
    expected = {
        schema.dataset_file(VERSION, name)
        for name in (*schema.REQUIRED_DATASET_FILES, *schema.OPTIONAL_DATASET_FILES, schema.LIVE_FILE)
    }
    assert names == expected | {schema.dataset_file(VERSION, schema.LIVE_BENCHMARKS_FILE)}
    assert set(client().list_datasets(round_num=FAKE_FIRST_ROUND)) == names
    with pytest.raises(ValueError, match="round 999 not found"):
        client().list_datasets(round_num=999)


@pytest.mark.parametrize("name", [schema.TRAIN_FILE, schema.VALIDATION_FILE, schema.FEATURES_JSON])
def test_download_dataset_is_byte_identical(
    sim_server: SimServer, sim_dir: Path, tmp_path: Path, name: str
) -> None:
    dest = client().download_dataset(schema.dataset_file(VERSION, name), str(tmp_path / name))
    assert Path(dest).read_bytes() == (sim_dir / VERSION / name).read_bytes()


def test_live_file_follows_the_requested_round(sim_server: SimServer, sim_dir: Path, tmp_path: Path) -> None:
    live_name = schema.dataset_file(VERSION, schema.LIVE_FILE)
    current = client().download_dataset(live_name, str(tmp_path / "current.parquet"))
    older = client().download_dataset(live_name, str(tmp_path / "older.parquet"), round_num=FAKE_FIRST_ROUND)
    assert Path(current).read_bytes() == live_file(sim_dir, FAKE_CURRENT_ROUND).read_bytes()
    assert Path(older).read_bytes() == live_file(sim_dir, FAKE_FIRST_ROUND).read_bytes()
    # round 102 is generated but not open yet: the API must not leak it
    with pytest.raises(ValueError, match="not found"):
        client().download_dataset(live_name, str(tmp_path / "future.parquet"), round_num=FAKE_LAST_ROUND)
    with pytest.raises(ValueError, match="not found"):
        client().download_dataset(f"{VERSION}/secret.parquet", str(tmp_path / "x.parquet"))


def test_download_resumes_a_partial_temp_file(sim_server: SimServer, sim_dir: Path, tmp_path: Path) -> None:
    source = (sim_dir / VERSION / schema.TRAIN_FILE).read_bytes()
    dest = tmp_path / "train.parquet"
    Path(f"{dest}.temp").write_bytes(source[:1000])  # what an interrupted download leaves behind
    client().download_dataset(schema.dataset_file(VERSION, schema.TRAIN_FILE), str(dest))
    assert dest.read_bytes() == source
    assert any(method == "GET" and status == 206 for method, _, _, status in sim_server.request_log)


def test_parquet_filters_read_through_http_ranges(sim_server: SimServer, tmp_path: Path) -> None:
    # numerapi's `filters` path reads the remote file with fsspec: HEAD + `bytes=N-M` ranges
    dest = client().download_dataset(
        schema.dataset_file(VERSION, schema.TRAIN_FILE),
        str(tmp_path / "era1.parquet"),
        filters=[(schema.ERA, "==", schema.era_label(1))],
    )
    assert set(pd.read_parquet(dest)[schema.ERA]) == {schema.era_label(1)}


# -- rounds ----------------------------------------------------------------------------------------


def test_round_opens_closes_and_advances(sim_server: SimServer, sim_dir: Path, tmp_path: Path) -> None:
    api = client()
    assert api.get_current_round() == FAKE_CURRENT_ROUND
    assert api.check_round_open()
    close_round(sim_dir)
    assert not api.check_round_open()
    with pytest.raises(ValueError, match="not open"):
        api.get_current_round()
    # A closed round opened again (the replay bench, after a training longer than the window).
    assert reopen_round(sim_dir) == FAKE_CURRENT_ROUND
    assert api.check_round_open()
    assert api.get_current_round() == FAKE_CURRENT_ROUND
    close_round(sim_dir)
    assert advance_round(sim_dir, window_minutes=30) == FAKE_LAST_ROUND
    assert api.check_round_open()
    assert api.get_current_round() == FAKE_LAST_ROUND
    dest = api.download_dataset(
        schema.dataset_file(VERSION, schema.LIVE_FILE), str(tmp_path / "live.parquet")
    )
    assert Path(dest).read_bytes() == live_file(sim_dir, FAKE_LAST_ROUND).read_bytes()


def test_advance_past_the_last_generated_round_fails(sim_server: SimServer, sim_dir: Path) -> None:
    advance_round(sim_dir)
    with pytest.raises(ValueError, match=rf"round {FAKE_LAST_ROUND + 1}.*last_round={FAKE_LAST_ROUND}"):
        advance_round(sim_dir)


# -- account -----------------------------------------------------------------------------------------


def test_get_models_needs_the_right_key(sim_server: SimServer, sim_credentials: tuple[str, str]) -> None:
    assert client(sim_credentials).get_models() == FAKE_MODELS
    with pytest.raises(ValueError, match="authenticated"):
        client((sim_credentials[0], "wrong")).get_models()
    with pytest.raises(ValueError, match="authenticated"):
        client().raw_query(GET_MODELS, authorization=False)  # no Authorization header at all


# -- submissions -----------------------------------------------------------------------------------


def test_upload_predictions_is_stored_and_recorded(
    sim_server: SimServer, sim_dir: Path, sim_credentials: tuple[str, str], tmp_path: Path
) -> None:
    api = client(sim_credentials)
    model_id = FAKE_MODELS["sim_model"]
    csv_path = write_predictions(sim_dir, tmp_path / "predictions.csv")
    first = api.upload_predictions(str(csv_path), model_id=model_id)
    second = api.upload_predictions(df=pd.read_csv(csv_path), model_id=model_id)  # a re-submission
    records = list_submissions(sim_dir)
    assert [record["submission_id"] for record in records] == [first, second]
    record = records[0]
    stored = sim_dir / record["path"]
    assert stored.parent == sim_dir / "uploads" / str(FAKE_CURRENT_ROUND) / model_id
    assert stored.read_bytes() == csv_path.read_bytes()
    assert record["sha256"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert (record["round"], record["model_name"], record["rows"]) == (FAKE_CURRENT_ROUND, "sim_model", 15)


def test_create_submission_without_upload_fails(
    sim_server: SimServer, sim_credentials: tuple[str, str]
) -> None:
    variables = {"filename": "never_put.csv", "tournament": 8, "modelId": FAKE_MODELS["sim_model"]}
    with pytest.raises(ValueError, match="file not found"):
        client(sim_credentials).raw_query(CREATE_SUBMISSION, variables, authorization=True)


def test_submission_checks(
    sim_server: SimServer, sim_dir: Path, sim_credentials: tuple[str, str], tmp_path: Path
) -> None:
    api = client(sim_credentials)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,score\nn1,0.5\n")
    with pytest.raises(ValueError, match="prediction"):
        api.upload_predictions(str(bad), model_id=FAKE_MODELS["sim_model"])
    good = write_predictions(sim_dir, tmp_path / "good.csv")
    with pytest.raises(ValueError, match="not one of this account's models"):
        api.upload_predictions(str(good), model_id="00000000-0000-0000-0000-000000000000")
    close_round(sim_dir)
    with pytest.raises(ValueError, match="not open"):
        api.upload_predictions(str(good), model_id=FAKE_MODELS["sim_model"])
    assert list_submissions(sim_dir) == []


# -- faults ----------------------------------------------------------------------------------------


def test_one_server_error_is_absorbed_by_numerapis_retry(sim_server: SimServer) -> None:
    sim_server.set_faults(FaultConfig(fail_first=1))
    assert client().get_current_round() == FAKE_CURRENT_ROUND  # numerapi waits 5 s, then retries
    assert [status for *_, status in sim_server.request_log] == [500, 200]


@pytest.mark.slow
def test_persistent_server_errors_surface_as_key_error(sim_server: SimServer) -> None:
    sim_server.set_faults(FaultConfig(fail_first=5))
    with pytest.raises(KeyError, match="data"):  # after 3 tries and 15 s of numerapi's back-off
        client().get_current_round()


def test_delay_and_faults_per_request_kind(
    sim_server: SimServer, sim_dir: Path, sim_credentials: tuple[str, str], tmp_path: Path
) -> None:
    sim_server.set_faults(FaultConfig(delay_s=0.3))
    started = time.monotonic()
    client().get_current_round()
    assert time.monotonic() - started >= 0.3
    sim_server.set_faults(FaultConfig(fail_first=1, fail_paths=("download",)))
    with pytest.raises(requests.HTTPError):  # numerapi does not retry downloads
        client().download_dataset(
            schema.dataset_file(VERSION, schema.FEATURES_JSON), str(tmp_path / "f.json")
        )
    # numerapi ignores the PUT's status: a failed upload shows up at create_submission
    sim_server.set_faults(FaultConfig(error_rate=1.0, fail_paths=("upload",)))
    csv_path = write_predictions(sim_dir, tmp_path / "predictions.csv")
    with pytest.raises(ValueError, match="file not found"):
        client(sim_credentials).upload_predictions(str(csv_path), model_id=FAKE_MODELS["sim_model"])


def test_bad_requests_do_not_take_the_server_down(sim_server: SimServer, sim_dir: Path) -> None:
    url = sim_server.url
    assert requests.post(url, data=b"{not json", timeout=5).status_code == 400
    assert requests.post(url, json=["no", "query"], timeout=5).status_code == 400
    assert requests.get(f"{url}/files/{STATE_FILE}", timeout=5).status_code == 404
    assert requests.get(f"{url}/files/oracle/example.parquet", timeout=5).status_code == 404
    assert requests.put(f"{url}/uploads/1/not-a-model/x.csv", data=b"x", timeout=5).status_code == 404
    with pytest.raises(ValueError, match="unsupported by the simulator: leaderboard"):
        client().raw_query("query { leaderboard { username } }")
    state_text = (sim_dir / STATE_FILE).read_text()
    (sim_dir / STATE_FILE).write_text("{ broken")
    broken = requests.post(f"{url}/graphql", json=CURRENT_ROUND, timeout=5)
    assert broken.status_code == 500 and "JSONDecodeError" in broken.json()["error"]
    (sim_dir / STATE_FILE).write_text(state_text)
    answer = requests.post(f"{url}/graphql", json=CURRENT_ROUND, timeout=5)  # "/graphql" works as "/" does
    assert answer.json()["data"]["rounds"][0]["number"] == FAKE_CURRENT_ROUND


def test_verbose_log_never_shows_the_key(
    sim_dir: Path,
    sim_credentials: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    with SimServer(sim_dir, verbose=True) as server:
        monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", server.url)
        client(sim_credentials).get_models()
        with pytest.raises(ValueError, match="authenticated"):
            client((sim_credentials[0], "a-wrong-secret")).get_models()
    err = capsys.readouterr().err
    assert "account" in err
    assert sim_credentials[1] not in err and "a-wrong-secret" not in err


def test_serve_forever_stops_on_sigterm(sim_dir: Path) -> None:
    code = f"from tournament_sim.server import serve_forever; serve_forever({str(sim_dir)!r}, 0)"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2]
    )
    try:
        line = process.stdout.readline()
        url = line.split()[4]
        assert requests.get(f"{url}/health", timeout=5).json() == {"status": "ok"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)


def test_a_busy_port_is_named_not_a_raw_os_error(sim_server: SimServer, sim_dir: Path) -> None:
    with pytest.raises(PortInUseError, match=rf"^port {sim_server.port} on 127.0.0.1 is already in use"):
        SimServer(sim_dir, sim_server.port)

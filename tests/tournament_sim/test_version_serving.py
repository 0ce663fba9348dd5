"""Several dataset versions behind the stand-in: a version added between two weekly runs, driven
by the real numerapi client on 127.0.0.1, and the `sim` commands that make and add versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numerapi
import pandas as pd
import polars as pl
import pytest
import requests

from model_core import schema
from tournament_sim.generate import add_version, generate_tournament
from tournament_sim.layout import load_state, offered_versions, round_file
from tournament_sim.rounds import advance_round
from tournament_sim.server import SimServer, list_submissions
from tournament_sim.versions import QUANTUM_SET

OLD, NEW = "v5.2", "v5.3"
DATASET_FILES = (*schema.REQUIRED_DATASET_FILES, *schema.OPTIONAL_DATASET_FILES)
ROUND_FILES = (*schema.ROUND_FILES, *schema.OPTIONAL_ROUND_FILES)
BIN = Path(sys.executable).parent


def client(credentials: tuple[str, str] | None = None) -> numerapi.NumerAPI:
    api = numerapi.NumerAPI(*(credentials or (None, None)), verbosity="critical", show_progress_bars=False)
    if credentials is None:
        api.token = None  # ignore NUMERAI_* variables or a .env the developer may have
    return api


def listed(versions: tuple[str, ...]) -> set[str]:
    return {schema.dataset_file(v, name) for v in versions for name in (*DATASET_FILES, *ROUND_FILES)}


def upload_one(sim_dir: Path, tmp_path: Path) -> str:
    """A submission for the current round, as the service makes one."""
    state = load_state(sim_dir)
    live = round_file(sim_dir, state.current.number, state.dataset_version, schema.LIVE_FILE)
    ids = pd.read_parquet(live).index
    csv = tmp_path / "predictions.csv"
    pd.DataFrame({schema.ID: ids, schema.PREDICTION: [(i % 10) / 10 for i in range(len(ids))]}).to_csv(
        csv, index=False
    )
    api = client((state.public_id, state.secret_key))
    return api.upload_predictions(str(csv), model_id=state.models["sim_model"])


def test_a_version_added_between_two_runs_is_listed_and_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = tmp_path / "sim"
    first = generate_tournament(sim, "tiny", seed=3, data_version=OLD).first_round
    with SimServer(sim) as server:
        monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", server.url)
        api = client()
        assert set(api.list_datasets()) == listed((OLD,))
        submission = upload_one(sim, tmp_path)  # last week's run
        current = advance_round(sim)
        before = load_state(sim)

        added = add_version(sim, NEW)  # while the stand-in serves

        assert (added.current, added.models, added.last_round) == (
            before.current,
            before.models,
            before.last_round,
        )
        assert added.dataset_version == NEW and offered_versions(sim) == [OLD, NEW]
        assert [r["submission_id"] for r in list_submissions(sim)] == [submission]
        assert set(api.list_datasets()) == listed((OLD, NEW))
        assert set(api.list_datasets(round_num=first)) == listed((OLD, NEW))  # earlier rounds too
        quantum = set(pl.read_parquet_schema(sim / NEW / schema.TRAIN_FILE)) - set(
            pl.read_parquet_schema(sim / OLD / schema.TRAIN_FILE)
        )
        assert len(quantum) == load_state(sim).recipe.scale["n_quantum"]
        for version in (OLD, NEW):
            name = schema.dataset_file(version, schema.LIVE_FILE)
            dest = Path(api.download_dataset(name, str(tmp_path / f"{version}-live.parquet")))
            assert dest.read_bytes() == round_file(sim, current, version, schema.LIVE_FILE).read_bytes()
            assert (quantum <= set(pl.read_parquet_schema(dest))) == (version == NEW)
            older = Path(
                api.download_dataset(name, str(tmp_path / f"{version}-old.parquet"), round_num=first)
            )
            assert older.read_bytes() == round_file(sim, first, version, schema.LIVE_FILE).read_bytes()
        features = api.download_dataset(f"{NEW}/{schema.FEATURES_JSON}", str(tmp_path / "features.json"))
        assert QUANTUM_SET in json.loads(Path(features).read_text())[schema.FEATURE_SETS_KEY]
        with pytest.raises(
            ValueError, match=r"version 'v9\.9' is not offered \(offered versions: v5\.2, v5\.3\)"
        ):
            api.download_dataset("v9.9/live.parquet", str(tmp_path / "nine.parquet"))
        for path in ("v9.9/train.parquet", f"rounds/{current}/v9.9/live.parquet", "oracle/train.parquet"):
            assert requests.get(f"{server.url}/files/{path}", timeout=5).status_code == 404, path
        upload_one(sim, tmp_path)  # this week's run submits as before
        assert len(list_submissions(sim)) == 2


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMERAI_")}
    command = [str(BIN / "numerai-pipeline"), "sim", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_sim_generate_and_add_version_commands(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    done = run_cli(["generate", str(sim), "--data-version", OLD], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert offered_versions(sim) == [OLD] and f"{sim}: {OLD}," in done.stdout
    done = run_cli(["add-version", str(sim), "--data-version", NEW], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert offered_versions(sim) == [OLD, NEW] and "offers v5.2, v5.3" in done.stdout
    again = run_cli(["add-version", str(sim), "--data-version", NEW], tmp_path)
    assert again.returncode == 2 and "error: " in again.stderr and "already offers v5.3" in again.stderr
    default = run_cli(["generate", str(tmp_path / "default")], tmp_path)
    assert default.returncode == 0, default.stderr[-3000:]
    assert offered_versions(tmp_path / "default") == [NEW]


def test_sim_generate_names_the_versions_it_writes(tmp_path: Path) -> None:
    done = run_cli(["generate", str(tmp_path / "sim"), "--data-version", "v9.9"], tmp_path)
    assert done.returncode == 2
    assert "--data-version: invalid choice: 'v9.9' (choose from 'v5.2', 'v5.3')" in done.stderr
    assert not (tmp_path / "sim").exists()

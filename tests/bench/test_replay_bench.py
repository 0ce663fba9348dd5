"""The replay benchmark end to end on the tiny tournament: the real CLI against the real stand-in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tournament_sim.layout import load_state
from tournament_sim.uploads import list_submissions

ROOT = Path(__file__).resolve().parents[2]
HOLDOUT = 2
# The service sized for the tiny tournament (76 resolved eras): seconds per fold, one process.
TINY_SERVICE = {
    "NUMERAI_N_FOLDS": "1",
    "NUMERAI_TEST_ERAS": "4",
    "NUMERAI_MIN_TRAIN_ERAS": "12",
    "NUMERAI_MAX_EPOCHS": "1",
    "NUMERAI_D_MODEL": "16",
    "NUMERAI_N_LAYERS": "1",
    "NUMERAI_N_HEADS": "2",
    "NUMERAI_TEMPORAL_LAGS": "4",
    "NUMERAI_ERAS_PER_BATCH": "8",
    "NUMERAI_DEVICE": "cpu",
    "NUMERAI_BASELINE": "false",
    "NUMERAI_EXECUTOR": "in_process",
}


@pytest.mark.slow
def test_tiny_replay_submits_every_round_once_and_scores_every_era(tmp_path: Path) -> None:
    env_args = [arg for key, value in TINY_SERVICE.items() for arg in ("--env", f"{key}={value}")]
    command = [
        sys.executable, str(ROOT / "bench" / "replay.py"), "--scale", "tiny", "--seeds", "3",
        "--holdout", str(HOLDOUT), "--work", str(tmp_path), "--models", "ridge", "--no-results",
        *env_args,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    replay_dir = tmp_path / "tiny-seed3" / "replay"
    state = load_state(replay_dir)
    rounds = list(range(state.first_round, state.first_round + HOLDOUT))
    assert state.current.number == rounds[-1]
    submitted = [(r["round"], r["model_name"]) for r in list_submissions(replay_dir)]
    assert sorted(submitted) == [(n, next(iter(state.models))) for n in rounds]  # each round exactly once

    seed = json.loads((tmp_path / "replay-tiny.json").read_text())["seeds"]["3"]
    assert seed["rounds"] == rounds
    scores = {m["name"]: m for m in seed["models"]}
    assert set(scores) == {"service (ensemble)", "ridge all", "benchmark", "oracle"}
    for model in scores.values():
        assert len(model["corr"]) == len(model["bmc"]) == HOLDOUT
        assert all(value is not None for value in model["corr"] + model["bmc"]), model["name"]
    service = seed["service"]
    assert service["env"] == TINY_SERVICE
    assert sorted(int(n) for n in service["submit_s"]) == rounds
    # The weekly job's printed test block was found and read.
    assert service["test_eras"] and service["test_block"]["ensemble"]["corr mean"] is not None
    # The candidates it printed: the transformer and the peer ridge (NUMERAI_PEER_RIDGE is on by
    # default, the LightGBM off here), blended with weights that sum to 1.
    assert set(service["candidates"]) == {"transformer", "peer_ridge", "blend"}
    assert set(service["blend_weights"]) == {"transformer", "peer_ridge"}
    assert sum(service["blend_weights"].values()) == pytest.approx(1.0, abs=0.011)
    assert "## Walk-forward replay on the tiny tournament" in done.stdout
    assert "tie" in done.stdout or "better" in done.stdout or "worse" in done.stdout

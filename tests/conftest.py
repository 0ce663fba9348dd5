"""Shared fixtures: a tiny simulated tournament and the loopback API serving it.

`build_fake_sim_dir` writes a hand-made directory in the generator's layout, so these tests do
not depend on the generator; swap its body for the real generator once that exists.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numerapi.base_api
import numpy as np
import pandas as pd
import pytest

from model_core import schema
from tournament_sim.layout import (
    DIAGNOSTICS_DIR,
    STATE_FILE,
    UPLOADS_DIR,
    SimState,
    load_state,
    round_file,
    round_window,
    save_state,
)
from tournament_sim.server import SimServer

FAKE_FIRST_ROUND = 100
FAKE_CURRENT_ROUND = 101
FAKE_LAST_ROUND = 102  # generated but not open yet: advance_round can open it once
FAKE_FEATURES = ("feature_alpha", "feature_beta", "feature_gamma")
FAKE_MODELS = {
    "sim_model": "5f0c8e2a-1d3b-4c6e-9a7f-0b1c2d3e4f50",
    "sim_model_2": "6a1d9f3b-2e4c-4d7f-8b6a-1c2d3e4f5061",
}


def _frame(rng: np.random.Generator, eras: list[int], rows_per_era: int, data_type: str) -> pd.DataFrame:
    n = len(eras) * rows_per_era
    ids = [f"n{value:015x}" for value in rng.integers(0, 16**15, size=n)]
    frame = pd.DataFrame(
        {
            schema.ERA: [schema.era_label(era) for era in eras for _ in range(rows_per_era)],
            schema.DATA_TYPE: data_type,
            **{name: rng.integers(0, 5, size=n).astype("int8") for name in FAKE_FEATURES},
        },
        index=pd.Index(ids, name=schema.ID),
    )
    if data_type != schema.DATA_TYPE_LIVE:
        frame[schema.MAIN_TARGET] = rng.choice(schema.TARGET_VALUES_5, size=n)
    return frame


def build_fake_sim_dir(path: Path) -> Path:
    """A few-kilobyte tournament: 3 train eras, 2 validation eras, live files for rounds 100-102."""
    rng = np.random.default_rng(0)
    version_dir = Path(path) / schema.DEFAULT_DATASET_VERSION
    version_dir.mkdir(parents=True, exist_ok=True)
    features = {
        schema.FEATURE_SETS_KEY: {name: list(FAKE_FEATURES) for name in schema.STANDARD_FEATURE_SETS},
        schema.TARGETS_KEY: [schema.MAIN_TARGET],
    }
    (version_dir / schema.FEATURES_JSON).write_text(json.dumps(features))
    _frame(rng, [1, 2, 3], 20, schema.DATA_TYPE_TRAIN).to_parquet(version_dir / schema.TRAIN_FILE)
    validation = _frame(rng, [4, 5], 20, schema.DATA_TYPE_VALIDATION)
    validation.to_parquet(version_dir / schema.VALIDATION_FILE)
    benchmarks = pd.DataFrame({"v52_lgbm_ender20": rng.random(len(validation))}, index=validation.index)
    benchmarks.to_parquet(version_dir / schema.VALIDATION_BENCHMARKS_FILE)
    meta = pd.DataFrame({schema.META_MODEL_COLUMN: rng.random(len(validation))}, index=validation.index)
    meta.to_parquet(version_dir / schema.META_MODEL_FILE)
    for number in range(FAKE_FIRST_ROUND, FAKE_LAST_ROUND + 1):
        live = _frame(rng, [6], 15, schema.DATA_TYPE_LIVE)
        live_file = round_file(path, number, schema.DEFAULT_DATASET_VERSION, schema.LIVE_FILE)
        live_file.parent.mkdir(parents=True, exist_ok=True)
        live.to_parquet(live_file)
        live_benchmarks = pd.DataFrame({"v52_lgbm_ender20": rng.random(len(live))}, index=live.index)
        live_benchmarks.to_parquet(live_file.with_name(schema.LIVE_BENCHMARKS_FILE))
    state = SimState(
        dataset_version=schema.DEFAULT_DATASET_VERSION,
        first_round=FAKE_FIRST_ROUND,
        last_round=FAKE_LAST_ROUND,
        current=round_window(FAKE_CURRENT_ROUND, window_minutes=24 * 60),
        models=dict(FAKE_MODELS),
    )
    save_state(path, state)
    return Path(path)


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake_sim_dir(tmp_path_factory.mktemp("sim"))


@pytest.fixture
def sim_server(sim_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    """The API on 127.0.0.1 for one test; numerapi points at it for that test only.

    The directory is shared by the session, so the round state and the uploads a test makes are
    undone afterwards: every test starts at the same round with no submissions.
    """
    state_before = (sim_dir / STATE_FILE).read_text()
    running = SimServer(sim_dir).start()
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", running.url)
    try:
        yield running
    finally:
        running.stop()
        (sim_dir / STATE_FILE).write_text(state_before)
        shutil.rmtree(sim_dir / UPLOADS_DIR, ignore_errors=True)
        shutil.rmtree(sim_dir / DIAGNOSTICS_DIR, ignore_errors=True)


@pytest.fixture
def sim_credentials(sim_dir: Path) -> tuple[str, str]:
    state = load_state(sim_dir)
    return state.public_id, state.secret_key


# Registered here, at the root, and nowhere else: a session fixture imported into two conftest
# files would be built twice.
from tests.tiny_fixtures import (  # noqa: E402, F401 (fixtures)
    api,
    home,
    instance,
    server,
    tiny_tournament,
    tournament,
    tournament_state,
    trained,
    trained_home,
)

"""The simulated tournament's data: the Numerai layout, and data that behaves like Numerai's."""

from __future__ import annotations

import json
import math
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_core import schema
from tournament_sim import layout
from tournament_sim.generate import (
    DATA_TYPE_UNRESOLVED,
    SCALES,
    Scale,
    Simulation,
    generate_tournament,
)
from tournament_sim.versions import VERSIONS
from tournament_sim.world import BELL_5, BELL_7

TINY = SCALES["tiny"]
FIRST_ROUND = 1000
VERSION = "v5.2"  # these tests pin v5.2 down; tests/tournament_sim/test_versions.py covers v5.3
BENCHMARK_MODELS = VERSIONS[VERSION].benchmark_models


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    generate_tournament(out, "tiny", seed=0, data_version=VERSION, first_round=FIRST_ROUND)
    return out


@pytest.fixture(scope="module")
def sim_dir_x(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same seed, live eras labelled "X"."""
    out = tmp_path_factory.mktemp("sim_x")
    generate_tournament(
        out, "tiny", seed=0, data_version=VERSION, live_era_label="X", first_round=FIRST_ROUND
    )
    return out


@pytest.fixture(scope="module")
def train(sim_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(sim_dir / VERSION / schema.TRAIN_FILE)


@pytest.fixture(scope="module")
def validation(sim_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(sim_dir / VERSION / schema.VALIDATION_FILE)


@pytest.fixture(scope="module")
def feature_sets(sim_dir: Path) -> dict:
    return json.loads((sim_dir / VERSION / schema.FEATURES_JSON).read_text())


def features_of(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if schema.is_feature(c)]


def targets_of(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if schema.is_target(c)]


def live_rounds() -> range:
    return range(FIRST_ROUND, FIRST_ROUND + TINY.n_rounds)


def test_file_layout(sim_dir: Path) -> None:
    files = {str(p.relative_to(sim_dir)) for p in sim_dir.rglob("*") if p.is_file()}
    expected = {
        f"{VERSION}/{name}" for name in (schema.FEATURES_JSON, schema.TRAIN_FILE, schema.VALIDATION_FILE)
    }
    expected |= {f"{VERSION}/{schema.VALIDATION_BENCHMARKS_FILE}", f"{VERSION}/{schema.META_MODEL_FILE}"}
    expected |= {f"{layout.ORACLE_DIR}/train.parquet", f"{layout.ORACLE_DIR}/validation.parquet"}
    for number in live_rounds():
        expected |= {f"{layout.ROUNDS_DIR}/{number}/{VERSION}/{schema.LIVE_FILE}"}
        expected |= {f"{layout.ROUNDS_DIR}/{number}/{VERSION}/{schema.LIVE_BENCHMARKS_FILE}"}
        expected |= {f"{layout.ORACLE_DIR}/live_{number}.parquet"}
    assert files == expected | {layout.STATE_FILE}


def test_features_json(feature_sets: dict, train: pl.DataFrame) -> None:
    sets = feature_sets[schema.FEATURE_SETS_KEY]
    assert set(sets) == {*schema.STANDARD_FEATURE_SETS, *schema.FEATURE_GROUPS}
    assert sets["all"] == features_of(train)
    assert (len(sets["small"]), len(sets["medium"]), len(sets["all"])) == (10, 20, 40)
    assert set(sets["small"]) < set(sets["medium"]) < set(sets["all"])
    assert sorted(f for group in schema.FEATURE_GROUPS for f in sets[group]) == sorted(sets["all"])
    assert all(re.fullmatch(r"feature_[a-z]+_[a-z]+", name) for name in sets["all"])
    assert feature_sets[schema.TARGETS_KEY] == targets_of(train)
    assert schema.MAIN_TARGET in feature_sets[schema.TARGETS_KEY]


def test_dtypes_and_id_index(sim_dir: Path, train: pl.DataFrame, validation: pl.DataFrame) -> None:
    arrow = pq.read_schema(sim_dir / VERSION / schema.TRAIN_FILE)
    assert arrow.field(schema.ID).type == pa.string() and arrow.field(schema.ERA).type == pa.string()
    assert {arrow.field(f).type for f in features_of(train)} == {pa.int8()}
    assert {arrow.field(t).type for t in targets_of(train)} == {pa.float32()}
    frame = pd.read_parquet(sim_dir / VERSION / schema.TRAIN_FILE)
    assert frame.index.name == schema.ID and schema.ID not in frame.columns
    live = [pl.read_parquet(layout.round_file(sim_dir, n, VERSION, schema.LIVE_FILE)) for n in live_rounds()]
    ids = pl.concat([f.select(schema.ID) for f in (train, validation, *live)])[schema.ID]
    assert ids.n_unique() == len(ids)
    assert ids.str.contains(r"^n[0-9a-f]{15}$").all()
    assert train[schema.ERA].unique().sort().to_list() == [schema.era_label(e) for e in range(1, 61)]
    assert (train[schema.DATA_TYPE] == schema.DATA_TYPE_TRAIN).all()
    assert validation[schema.ERA].min() == "0061" and validation[schema.ERA].max() == "0080"


def test_row_groups_hold_several_eras(sim_dir: Path) -> None:
    metadata = pq.ParquetFile(sim_dir / VERSION / schema.TRAIN_FILE).metadata
    assert metadata.num_row_groups == math.ceil(TINY.n_train_eras / TINY.row_group_eras)


def test_features_are_equal_bins_within_each_era(train: pl.DataFrame) -> None:
    features = features_of(train)
    values = train.select(features).to_numpy()
    assert values.min() == 0 and values.max() == 4
    for _, era in train.group_by(schema.ERA):
        counts = np.stack([np.bincount(era[f].to_numpy(), minlength=5) for f in features])
        constant = counts.max(axis=1) == len(era)
        assert (counts[constant, 2] == len(era)).all()  # a missing feature is all 2, never another value
        assert np.abs(counts[~constant] - len(era) / 5).max() <= 2


def test_all_two_feature_eras_exist(train: pl.DataFrame) -> None:
    all_two = train.group_by(schema.ERA).agg((pl.col(features_of(train)) == 2).all())
    assert all_two.select(pl.sum_horizontal(pl.exclude(schema.ERA))).sum().item() > 0


def test_nulls_only_in_validation_and_live(
    sim_dir: Path, train: pl.DataFrame, validation: pl.DataFrame
) -> None:
    features = features_of(train)
    assert train.select(features).null_count().sum_horizontal().item() == 0
    assert validation.select(features).null_count().sum_horizontal().item() > 0
    live = pl.concat(
        [pl.read_parquet(layout.round_file(sim_dir, n, VERSION, schema.LIVE_FILE)) for n in live_rounds()]
    )
    assert live.select(features).null_count().sum_horizontal().item() < 0.01 * live.height * len(features)


def test_target_bins_and_bell_proportions(train: pl.DataFrame) -> None:
    target = train[schema.MAIN_TARGET].to_numpy()
    shares = [np.mean(target == value) for value in schema.TARGET_VALUES_5]
    assert np.isin(target, schema.TARGET_VALUES_5).all()
    assert np.allclose(shares, BELL_5, atol=0.01)
    cyrusd = train["target_cyrusd_20"].drop_nulls().to_numpy()
    sevenths = np.round(cyrusd * 6)
    assert np.allclose(cyrusd * 6, sevenths, atol=1e-5)
    assert np.allclose(np.bincount(sevenths.astype(int), minlength=7) / len(cyrusd), BELL_7, atol=0.02)


def test_main_target_is_ender_20_and_never_null_where_scored(
    train: pl.DataFrame, validation: pl.DataFrame
) -> None:
    for frame in (train, validation):
        scored = frame.filter(pl.col(schema.DATA_TYPE).is_in(schema.SCORED_DATA_TYPES))
        assert scored[schema.MAIN_TARGET].null_count() == 0
        assert scored[schema.MAIN_TARGET].equals(scored["target_ender_20"])


def test_aux_targets_start_late_and_60_day_targets_resolve_late(
    train: pl.DataFrame, validation: pl.DataFrame
) -> None:
    first_era = train.filter(pl.col(schema.ERA) == "0001")
    assert first_era["target_jasper_20"].null_count() == first_era.height
    assert first_era["target_ender_60"].null_count() < first_era.height
    assert train.filter(pl.col(schema.ERA) > "0020")["target_jasper_20"].null_count() < 0.01 * train.height
    resolved = validation.filter(pl.col(schema.DATA_TYPE) == schema.DATA_TYPE_VALIDATION)
    last_resolved = resolved.filter(pl.col(schema.ERA) == resolved[schema.ERA].max())
    assert last_resolved["target_ender_60"].null_count() == last_resolved.height
    assert last_resolved[schema.MAIN_TARGET].null_count() == 0


def test_unresolved_validation_eras(validation: pl.DataFrame) -> None:
    eras = validation.group_by(schema.ERA).agg(pl.col(schema.DATA_TYPE).unique()).sort(schema.ERA)
    data_types = [values.to_list() for values in eras[schema.DATA_TYPE]]
    assert data_types[: -TINY.n_unresolved_eras] == [[schema.DATA_TYPE_VALIDATION]] * 16
    assert data_types[-TINY.n_unresolved_eras :] == [[DATA_TYPE_UNRESOLVED]] * TINY.n_unresolved_eras
    unresolved = validation.filter(pl.col(schema.DATA_TYPE) != schema.DATA_TYPE_VALIDATION)
    assert unresolved.select(targets_of(validation)).null_count().sum_horizontal().item() == (
        unresolved.height * len(targets_of(validation))
    )


@pytest.mark.parametrize("label", ["number", "X"])
def test_live_files_hold_one_era_labelled_as_asked(label: str, sim_dir: Path, sim_dir_x: Path) -> None:
    directory = sim_dir if label == "number" else sim_dir_x
    for offset, number in enumerate(live_rounds()):
        live = pl.read_parquet(layout.round_file(directory, number, VERSION, schema.LIVE_FILE))
        expected = schema.era_label(TINY.n_train_eras + TINY.n_validation_eras + 1 + offset)
        assert live[schema.ERA].unique().to_list() == [expected if label == "number" else "X"]
        assert (live[schema.DATA_TYPE] == schema.DATA_TYPE_LIVE).all()
        assert live.select(targets_of(live)).null_count().sum_horizontal().item() == live.height * 8
        benchmarks = pl.read_parquet(
            layout.round_file(directory, number, VERSION, schema.LIVE_BENCHMARKS_FILE)
        )
        assert benchmarks[schema.ID].to_list() == live[schema.ID].to_list()
        oracle = pl.read_parquet(directory / layout.ORACLE_DIR / f"live_{number}.parquet")
        assert oracle[schema.ID].to_list() == live[schema.ID].to_list()


def test_benchmarks_and_meta_model(sim_dir: Path, validation: pl.DataFrame) -> None:
    benchmarks = pd.read_parquet(sim_dir / VERSION / schema.VALIDATION_BENCHMARKS_FILE)
    assert benchmarks.index.name == schema.ID
    assert list(benchmarks.columns) == [schema.ERA, *BENCHMARK_MODELS]
    assert benchmarks.index.tolist() == validation[schema.ID].to_list()
    meta = pd.read_parquet(sim_dir / VERSION / schema.META_MODEL_FILE)
    resolved = validation.filter(pl.col(schema.DATA_TYPE) == schema.DATA_TYPE_VALIDATION)
    assert meta.index.tolist() == resolved[schema.ID].to_list()
    for frame, columns in ((benchmarks, BENCHMARK_MODELS), (meta, [schema.META_MODEL_COLUMN])):
        values = frame[list(columns)].to_numpy()
        assert frame[list(columns)].dtypes.eq(np.float32).all()
        assert values.min() > 0 and values.max() < 1


def per_era_corr(predictions: np.ndarray, target: np.ndarray, eras: np.ndarray) -> np.ndarray:
    return np.array([np.corrcoef(predictions[eras == e], target[eras == e])[0, 1] for e in np.unique(eras)])


def test_oracle_corr_is_about_a_tenth(sim_dir: Path, train: pl.DataFrame) -> None:
    oracle = pl.read_parquet(sim_dir / layout.ORACLE_DIR / "train.parquet")
    assert oracle.schema[schema.PREDICTION] == pl.Float32
    joined = train.select(schema.ID, schema.ERA, schema.MAIN_TARGET).join(oracle, on=[schema.ID, schema.ERA])
    assert joined.height == train.height
    corr = per_era_corr(*(joined[c].to_numpy() for c in (schema.PREDICTION, schema.MAIN_TARGET, schema.ERA)))
    assert 0.05 < corr.mean() < 0.15


def test_oracle_corr_over_a_long_history() -> None:
    """Tiny is too small to pin the calibration down; 574 eras of ~900 stocks do."""
    scale = Scale(10, 2, 5, 574, 20, 4, (800, 1000), n_rounds=1, row_group_eras=20)
    corr = [np.corrcoef(b.oracle, b.targets[0])[0, 1] for b in Simulation(scale, 0).eras() if b.number <= 574]
    assert 0.07 < np.mean(corr) < 0.14


def test_overlapping_targets_leak_across_neighbouring_eras() -> None:
    """Unpurged CV must leak: era t and t+1 share 3 of 4 target weeks for the same latent stock."""
    blocks = [b for b in Simulation(TINY, 0).eras() if b.data_type == schema.DATA_TYPE_TRAIN]

    def same_stock_corr(lag: int) -> float:
        pairs = []
        for now, later in zip(blocks, blocks[lag:], strict=False):
            _, rows_now, rows_later = np.intersect1d(now.stock, later.stock, return_indices=True)
            pairs.append(np.stack([now.targets[0][rows_now], later.targets[0][rows_later]]))
        return float(np.corrcoef(np.concatenate(pairs, axis=1))[0, 1])

    assert same_stock_corr(1) > 0.5
    assert abs(same_stock_corr(8)) < 0.2


def test_deterministic_per_seed(tmp_path: Path, sim_dir: Path, sim_dir_x: Path) -> None:
    train_file = Path(VERSION) / schema.TRAIN_FILE
    assert (sim_dir / train_file).read_bytes() == (sim_dir_x / train_file).read_bytes()
    oracle_file = Path(layout.ORACLE_DIR) / "validation.parquet"
    assert (sim_dir / oracle_file).read_bytes() == (sim_dir_x / oracle_file).read_bytes()
    generate_tournament(tmp_path, "tiny", seed=1, data_version=VERSION)
    assert (tmp_path / train_file).read_bytes() != (sim_dir / train_file).read_bytes()


def test_sim_state(sim_dir: Path) -> None:
    state = layout.load_state(sim_dir)
    assert (state.dataset_version, state.first_round, state.last_round) == (VERSION, 1000, 1002)
    assert state.current.number == 1000 and state.current.open_time < state.current.close_staking_time
    assert set(state.models) == {"sim_model", "sim_model_b"}
    assert all(uuid.UUID(model_id).version == 4 for model_id in state.models.values())


def test_models_and_rounds_as_asked(tmp_path: Path) -> None:
    state = generate_tournament(
        tmp_path, "tiny", data_version=VERSION, models={"mine": "m-1"}, first_round=7, window_minutes=5
    )
    assert layout.load_state(tmp_path) == state
    assert (state.models, state.first_round, state.last_round) == ({"mine": "m-1"}, 7, 9)
    assert (layout.round_file(tmp_path, 9, VERSION, schema.LIVE_FILE)).exists()


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'huge'.*demo.*full.*tiny"):
        generate_tournament(tmp_path, "huge")
    with pytest.raises(ValueError, match=r"'Y'"):
        generate_tournament(tmp_path, "tiny", live_era_label="Y")
    with pytest.raises(ValueError, match="n_small"):
        Scale(10, 20, 5, 60, 20, 4, (80, 120), n_rounds=1, row_group_eras=10)

"""Dataset versions of the simulated tournament: v5.3's files, and v5.2's left as they were.

The stand-in serving several versions, add-version on a served tournament and the command line
are in test_version_serving.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from model_core import schema
from tournament_sim.generate import SCALES, add_version, generate_tournament
from tournament_sim.layout import STATE_FILE, load_state, offered_versions, round_file
from tournament_sim.versions import QUANTUM_SET, VERSIONS

TINY = SCALES["tiny"]
FIRST_ROUND = 1000
OLD, NEW = "v5.2", "v5.3"


@pytest.fixture(scope="module")
def v53_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated as v5.3 (the default)."""
    out = tmp_path_factory.mktemp("v53")
    generate_tournament(out, "tiny", seed=0, first_round=FIRST_ROUND)
    return out


@pytest.fixture(scope="module")
def both_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tournament generated as v5.2, then v5.3 added."""
    out = tmp_path_factory.mktemp("both")
    generate_tournament(out, "tiny", seed=0, data_version=OLD, first_round=FIRST_ROUND)
    add_version(out, NEW)
    return out


def read_sets(sim_dir: Path, version: str) -> dict[str, list[str]]:
    return json.loads((sim_dir / version / schema.FEATURES_JSON).read_text())[schema.FEATURE_SETS_KEY]


def rounds() -> range:
    return range(FIRST_ROUND, FIRST_ROUND + TINY.n_rounds)


def test_generate_writes_v53_by_default_and_records_how(v53_dir: Path) -> None:
    state = load_state(v53_dir)
    assert offered_versions(v53_dir) == [NEW] and state.dataset_version == NEW
    assert state.recipe is not None and (state.recipe.seed, state.recipe.live_era_label) == (0, "number")
    assert state.recipe.scale == TINY.to_record()
    for number in rounds():
        for name in (schema.LIVE_FILE, schema.LIVE_BENCHMARKS_FILE):
            assert round_file(v53_dir, number, NEW, name).is_file()


def test_v53_features_json_adds_the_quantum_set(both_dir: Path) -> None:
    old, new = read_sets(both_dir, OLD), read_sets(both_dir, NEW)
    quantum = new[QUANTUM_SET]
    assert len(quantum) == TINY.n_quantum
    assert set(new) == set(old) | {QUANTUM_SET}
    assert new["all"] == old["all"] + quantum
    assert len(set(new["all"])) == len(new["all"])  # new names, none colliding
    assert not set(quantum) & set(new["medium"]) and not set(quantum) & set(new["small"])
    assert all(new[name] == old[name] for name in (*schema.STANDARD_FEATURE_SETS[:2], *schema.FEATURE_GROUPS))
    assert all(re.fullmatch(r"feature_[a-z]+_[a-z]+", name) for name in quantum)
    train = pl.read_parquet(both_dir / NEW / schema.TRAIN_FILE)
    assert [c for c in train.columns if schema.is_feature(c)] == new["all"]
    assert all(train.schema[name] == pl.Int8 for name in quantum)


def test_quantum_features_are_null_before_their_start_era_and_values_after(both_dir: Path) -> None:
    quantum = read_sets(both_dir, NEW)[QUANTUM_SET]
    files = [both_dir / NEW / schema.TRAIN_FILE, both_dir / NEW / schema.VALIDATION_FILE]
    frame = pl.concat([pl.read_parquet(f, columns=[schema.ERA, schema.DATA_TYPE, *quantum]) for f in files])
    nulls = frame.group_by(schema.ERA).agg(pl.col(quantum).is_null().mean()).sort(schema.ERA)
    share = nulls.select(quantum).to_numpy()
    era = nulls[schema.ERA].cast(pl.Int32).to_numpy()
    start = TINY.quantum_from
    assert 0.3 * TINY.n_train_eras < start - 1 < 0.5 * TINY.n_train_eras
    assert (share[era < start] == 1).all()
    assert (share[(era >= start) & (era <= TINY.n_train_eras)] == 0).all()
    assert (share[era > TINY.n_train_eras] < 0.05).all()  # validation: the odd scattered null only
    values = frame.filter(pl.col(schema.ERA).cast(pl.Int32) >= start).select(quantum)
    assert values.min_horizontal().min() == schema.FEATURE_MIN and values.max_horizontal().max() == 4
    for number in rounds():
        live = pl.read_parquet(round_file(both_dir, number, NEW, schema.LIVE_FILE), columns=quantum)
        assert live.null_count().sum_horizontal().item() < 0.05 * live.height * len(quantum)


def test_quantum_features_are_as_informative_as_the_others(both_dir: Path) -> None:
    """Drawn from the same feature model on the same world: they predict the oracle alike."""
    sets = read_sets(both_dir, NEW)
    train = pl.read_parquet(both_dir / NEW / schema.TRAIN_FILE).filter(
        pl.col(schema.ERA).cast(pl.Int32) >= TINY.quantum_from
    )
    oracle = pl.read_parquet(both_dir / "oracle" / "train.parquet")
    joined = train.join(oracle, on=[schema.ID, schema.ERA])

    def mean_abs_corr(features: list[str]) -> float:
        corr = joined.select(pl.corr(name, schema.PREDICTION) for name in features).row(0)
        return float(np.mean(np.abs(corr)))

    older = [name for name in sets["all"] if name not in sets[QUANTUM_SET]]
    assert mean_abs_corr(sets[QUANTUM_SET]) > 0.5 * mean_abs_corr(older) > 0.02


def test_each_version_has_its_own_benchmark_columns(both_dir: Path) -> None:
    for version in (OLD, NEW):
        expected = [schema.ERA, *VERSIONS[version].benchmark_models]
        files = [both_dir / version / schema.VALIDATION_BENCHMARKS_FILE]
        files += [round_file(both_dir, n, version, schema.LIVE_BENCHMARKS_FILE) for n in rounds()]
        for path in files:
            frame = pd.read_parquet(path)
            assert list(frame.columns) == expected and frame.index.name == schema.ID, path
            values = frame[expected[1:]].to_numpy()
            assert ((values > 0) & (values < 1)).all(), path
    assert VERSIONS[NEW].benchmark_models == ("v53_lgbm_ender20", "v53_lgbm_ender60")


def test_v53_shares_ids_targets_and_feature_values_with_v52(both_dir: Path) -> None:
    old_columns = pl.read_parquet_schema(both_dir / OLD / schema.TRAIN_FILE)
    for name in (schema.TRAIN_FILE, schema.VALIDATION_FILE):
        old = pl.read_parquet(both_dir / OLD / name)
        new = pl.read_parquet(both_dir / NEW / name, columns=list(old_columns))
        assert new.equals(old), name
    for number in rounds():
        old = pl.read_parquet(round_file(both_dir, number, OLD, schema.LIVE_FILE))
        new = pl.read_parquet(round_file(both_dir, number, NEW, schema.LIVE_FILE), columns=old.columns)
        assert new.equals(old), number
    meta = [pl.read_parquet(both_dir / version / schema.META_MODEL_FILE) for version in (OLD, NEW)]
    assert meta[0].equals(meta[1])


def digests(sim_dir: Path, version: str) -> dict[str, str]:
    paths = [*(sim_dir / version).iterdir()]
    paths += [round_file(sim_dir, n, version, name) for n in rounds() for name in schema.ROUND_FILES]
    return {str(p.relative_to(sim_dir)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_an_added_version_is_the_version_generated_directly(v53_dir: Path, both_dir: Path) -> None:
    assert digests(both_dir, NEW) == digests(v53_dir, NEW)
    for name in ("train.parquet", "validation.parquet", f"live_{FIRST_ROUND}.parquet"):
        assert (both_dir / "oracle" / name).read_bytes() == (v53_dir / "oracle" / name).read_bytes()


def test_v52_does_not_depend_on_which_version_came_first(tmp_path: Path, both_dir: Path) -> None:
    generate_tournament(tmp_path, "tiny", seed=0, data_version=NEW, first_round=FIRST_ROUND)
    add_version(tmp_path, OLD)
    assert load_state(tmp_path).dataset_version == NEW  # the newest, whatever was added last
    assert digests(tmp_path, OLD) == digests(both_dir, OLD)


def test_add_version_refuses_what_it_cannot_do(tmp_path: Path, both_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"already offers v5\.3 \(offered versions: v5\.2, v5\.3\)"):
        add_version(both_dir, NEW)
    with pytest.raises(ValueError, match=r"unknown dataset version 'v9\.9'.*v5\.2, v5\.3"):
        add_version(both_dir, "v9.9")
    with pytest.raises(ValueError, match=r"unknown dataset version 'v9\.9'"):
        generate_tournament(tmp_path / "new", "tiny", data_version="v9.9")
    # A state written before versions could be added loads, and cannot be redrawn.
    old = tmp_path / "old"
    generate_tournament(old, "tiny", seed=0, data_version=OLD)
    raw = json.loads((old / STATE_FILE).read_text())
    del raw["recipe"]
    (old / STATE_FILE).write_text(json.dumps(raw))
    assert load_state(old).recipe is None and load_state(old).dataset_version == OLD
    with pytest.raises(ValueError, match="does not record the scale and seed"):
        add_version(old, NEW)
    assert offered_versions(old) == [OLD]


def test_offered_versions_are_the_complete_ones_in_numeric_order(tmp_path: Path) -> None:
    for name in ("v5.10", "v5.9", "v5.2", "v6.0", "latest", "v5.x"):
        (tmp_path / name).mkdir()
        if name != "v6.0":  # no features.json: being written
            (tmp_path / name / schema.FEATURES_JSON).write_text("{}")
    assert offered_versions(tmp_path) == ["v5.2", "v5.9", "v5.10"]

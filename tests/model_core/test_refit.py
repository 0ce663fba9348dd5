"""Refit for live: every resolved era, never an unresolved one, for the epochs the folds chose."""

import numpy as np
import polars as pl
import pytest

from model_core.batches import EraBatches
from model_core.model import ModelConfig
from model_core.refit import RefitPlan, make_refit_plan, refit_epochs
from model_core.train import TrainConfig, learning_rate, load_trained, train_fold
from tests.model_core.test_train import N_FEATURES, _planted_store


def test_refit_plan_takes_every_resolved_era_and_the_median_epoch():
    resolved = [f"{e:04d}" for e in range(30, 0, -1)]
    plan = make_refit_plan(resolved, [3, 7, 5, 2], n_seeds=2, seed=10)
    assert plan.eras == tuple(sorted(resolved)) and plan.epochs == 4 and plan.seeds == (10, 11)
    assert RefitPlan.from_dict(plan.to_dict()) == plan
    assert refit_epochs([4]) == 4 and refit_epochs([1, 2]) == 2
    with pytest.raises(ValueError, match="best epoch"):
        refit_epochs([0, 0])
    with pytest.raises(ValueError, match="seeds"):
        make_refit_plan(resolved, [3], n_seeds=0, seed=0)


def test_refit_never_trains_on_an_unresolved_era(tmp_path):
    """A store whose last eras are unresolved (null targets): the refit plan leaves them out."""
    import json

    from model_core.clean import CleanConfig, build_era_store

    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(0)
    frames = []
    for era in range(1, 31):
        unresolved = era > 26
        frame = {f"feature_{i:02d}": rng.integers(0, 5, 60).astype(np.int8) for i in range(N_FEATURES)}
        frame |= {
            "id": [f"n{era:04d}{i:011x}" for i in range(60)],
            "era": f"{era:04d}",
            "data_type": "test" if unresolved else "validation",
            "target": [None] * 60 if unresolved else (rng.integers(0, 5, 60) / 4).tolist(),
        }
        frames.append(pl.DataFrame(frame, schema_overrides={"target": pl.Float32}))
    data = pl.concat(frames)
    data.filter(pl.col("era") <= "0010").with_columns(pl.lit("train").alias("data_type")).write_parquet(
        raw / "train.parquet"
    )
    data.filter(pl.col("era") > "0010").write_parquet(raw / "validation.parquet")
    names = [f"feature_{i:02d}" for i in range(N_FEATURES)]
    (raw / "features.json").write_text(json.dumps({"feature_sets": {"all": names}, "targets": ["target"]}))
    store, _ = build_era_store(raw, tmp_path / "clean" / "current", CleanConfig(feature_set="all"))
    plan = make_refit_plan(store.resolved_eras(), [2], n_seeds=1, seed=0)
    assert plan.eras[-1] == "0026" and not {"0027", "0028", "0029", "0030"} & set(plan.eras)


def test_a_refit_runs_exactly_the_chosen_epochs_on_the_schedule_of_the_folds(tmp_path):
    store = _planted_store(tmp_path)
    eras = store.resolved_eras()
    config = ModelConfig(n_features=N_FEATURES, d_model=16, n_heads=2, n_layers=0, temporal_lags=0)
    train = TrainConfig(max_epochs=3, learning_rate=3e-3, patience=1, seed=1)
    reports = []
    batches = EraBatches(store, eras, eras_per_batch=5, shuffle=True, seed=1)
    result = train_fold(config, train, batches, None, tmp_path / "refit.pt", progress=reports.append)
    # patience 1 would stop a fold run at the first flat epoch; a refit has no validation to stop on
    assert result.epochs_run == 3 and result.best_epoch == 3 and not result.stopped_early
    assert all(r.improved for r in reports)
    model, meta = load_trained(tmp_path / "refit.pt")
    assert meta["best_epoch"] == 3 and not model.training
    # The schedule is a function of the epoch alone: the same rates whatever max_epochs is.
    rates = [learning_rate(train, e, 0.5) for e in range(3)]
    longer = TrainConfig(max_epochs=30, learning_rate=3e-3, patience=1, seed=1)
    assert rates == [learning_rate(longer, e, 0.5) for e in range(3)]
    assert rates[0] < rates[1] and rates[2] < rates[1]

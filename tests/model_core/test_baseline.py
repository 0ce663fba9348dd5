"""The LightGBM candidate: streamed from the era store, it learns what LightGBM on the matrix learns."""

import lightgbm as lgb
import numpy as np

from model_core import schema
from model_core.baseline import (
    BaselineConfig,
    fold_predictions,
    load_lgbm,
    predict_lgbm,
    save_lgbm,
    train_lgbm,
)
from model_core.cv import CVConfig, make_folds
from model_core.metrics import era_numerai_corr
from tests.model_core.test_train import _planted_store

CONFIG = BaselineConfig(n_estimators=60, learning_rate=0.1, era_stride=1, threads=1)


def test_streamed_training_matches_lightgbm_on_the_stacked_matrix(tmp_path):
    store = _planted_store(tmp_path)
    eras = store.resolved_eras()
    target = store.target_index(schema.MAIN_TARGET)
    streamed = train_lgbm(store, eras[:30], target, CONFIG)
    parts = [store.era(e) for e in eras[:30]]
    matrix = np.concatenate([p.features for p in parts]).astype(np.float32)
    labels = np.concatenate([p.targets[:, target] for p in parts])
    params = {
        "objective": "regression",
        "learning_rate": 0.1,
        "max_depth": CONFIG.max_depth,
        "num_leaves": CONFIG.num_leaves,
        "colsample_bytree": CONFIG.colsample_bytree,
        "num_threads": 1,
        "seed": 0,
        "verbosity": -1,
    }
    reference = lgb.train(params, lgb.Dataset(matrix, label=labels), num_boost_round=60)
    held_out = store.era(eras[35])
    ours = predict_lgbm(streamed, held_out.features)
    np.testing.assert_allclose(ours, reference.predict(held_out.features.astype(np.float32)), rtol=1e-6)
    assert era_numerai_corr(ours, held_out.targets[:, target]) > 0.3


def test_fold_predictions_cover_each_validation_era_and_the_test_block(tmp_path):
    store = _planted_store(tmp_path)
    plan = make_folds(store.resolved_eras(), CVConfig(n_folds=2, gap_eras=2, test_eras=5, min_train_eras=10))
    target = store.target_index(schema.MAIN_TARGET)
    oof, test = fold_predictions(store, plan, target, CONFIG)
    assert sorted(oof) == sorted(e for f in plan.folds for e in f.validation_eras)
    assert sorted(test) == list(plan.test_eras)
    for era, predictions in {**oof, **test}.items():
        assert predictions.shape == (len(store.era(era).ids),)
    assert np.mean([era_numerai_corr(oof[e], store.era(e).targets[:, target]) for e in oof]) > 0.3


def test_saved_model_predicts_the_same(tmp_path):
    store = _planted_store(tmp_path)
    eras = store.resolved_eras()
    model = train_lgbm(store, eras[:20], store.target_index(schema.MAIN_TARGET), CONFIG)
    save_lgbm(model, tmp_path / "lgbm.txt")
    features = store.era(eras[-1]).features
    np.testing.assert_array_equal(
        predict_lgbm(load_lgbm(tmp_path / "lgbm.txt"), features), predict_lgbm(model, features)
    )

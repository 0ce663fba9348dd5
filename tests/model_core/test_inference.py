"""The one inference function and the ensemble: loading, the shared stock graph, the rank blend."""

import dataclasses

import numpy as np
import pytest
import torch

from model_core.ensemble import blend
from model_core.inference import Ensemble, EnsembleSpec, predict_era
from model_core.model import EraTransformer, ModelConfig
from model_core.train import TrainConfig

N_FEATURES, LAGS = 12, 3


def _save(folder, name, config, seed):
    torch.manual_seed(seed)
    model = EraTransformer(config)
    torch.save(
        {
            "best_model": model.state_dict(),
            "model_config": config.to_dict(),
            "train_config": dataclasses.asdict(TrainConfig()),
            "history": [],
            "best_epoch": 1,
            "best_val_corr": 0.0,
        },
        folder / name,
    )
    return model.eval()


@pytest.fixture
def ensemble_dir(tmp_path):
    base = ModelConfig(n_features=N_FEATURES, d_model=16, n_heads=2, n_layers=1, temporal_lags=LAGS)
    configs = [base, base, dataclasses.replace(base, similarity_prior="knn", knn=4)]
    models = [_save(tmp_path, f"fold_{k}.pt", c, seed=k) for k, c in enumerate(configs)]
    EnsembleSpec(
        model_version="20261125T000000Z-abcdef",
        checkpoints=[f"fold_{k}.pt" for k in range(3)],
        weights=[0.5, 0.3, 0.2],
        equal_weights=[1 / 3] * 3,
        temporal_lags=LAGS,
        feature_set="medium",
        features=[f"feature_{i}" for i in range(N_FEATURES)],
    ).save(tmp_path)
    return tmp_path, models


def _era(seed=0, n=40):
    rng = np.random.default_rng(seed)
    features = rng.integers(-1, 5, size=(n, N_FEATURES)).astype(np.int8)
    context = rng.normal(0, 0.02, size=(LAGS, N_FEATURES)).astype(np.float32)
    context[-1] = np.nan  # history too short at that lag
    return features, context


def test_members_with_a_shared_graph_equal_each_model_alone(ensemble_dir):
    folder, models = ensemble_dir
    features, context = _era()
    ensemble = Ensemble(folder)
    assert ensemble.model_version == "20261125T000000Z-abcdef" and len(ensemble.models) == 3
    members = ensemble.predict_members(features, context)
    for model, scores in zip(models, members, strict=True):
        np.testing.assert_allclose(scores, predict_era(model, features, context), rtol=0, atol=1e-6)
    assert not np.allclose(members[0], members[2])  # the k-NN model got its own graph


def test_predict_is_the_weighted_rank_blend_in_unit_interval(ensemble_dir):
    folder, _ = ensemble_dir
    features, context = _era(1)
    ensemble = Ensemble(folder)
    predictions = ensemble.predict(features, context)
    np.testing.assert_allclose(
        predictions, blend(ensemble.predict_members(features, context), [0.5, 0.3, 0.2])
    )
    assert predictions.shape == (40,) and predictions.min() > 0 and predictions.max() <= 1
    assert np.ptp(predictions) > 0


def test_a_model_with_a_temporal_encoder_needs_its_context(ensemble_dir):
    _, models = ensemble_dir
    features, _ = _era()
    with pytest.raises(ValueError, match="lags of context"):
        predict_era(models[0], features, None)
    with pytest.raises(ValueError, match="no rows"):
        predict_era(models[0], features[:0], None)


def test_a_folder_without_an_ensemble_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialise ensemble_weights"):
        EnsembleSpec.load(tmp_path)


def _live_version(folder, candidate, weights=None):
    """Refits (two new checkpoints), a LightGBM and a peer ridge on random data, `candidate` chosen."""
    import lightgbm as lgb

    from model_core.baseline import save_lgbm
    from model_core.peer_ridge import PeerRidge, save_peer_ridge

    base = ModelConfig(n_features=N_FEATURES, d_model=16, n_heads=2, n_layers=1, temporal_lags=LAGS)
    refits = [_save(folder, f"refit_{s}.pt", base, seed=10 + s) for s in range(2)]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=(300, N_FEATURES)).astype(np.float32)
    booster = lgb.train(
        {"objective": "regression", "verbosity": -1, "num_threads": 1},
        lgb.Dataset(x, label=x[:, 0] - x[:, 1] + rng.normal(0, 1, 300)),
        num_boost_round=5,
    )
    save_lgbm(booster, folder / "lgbm.txt")
    ridge = PeerRidge(rng.normal(size=N_FEATURES * 3), (4, 10), 1.0, N_FEATURES)
    save_peer_ridge(ridge, folder / "peer_ridge.npz")
    spec = dataclasses.replace(
        EnsembleSpec.load(folder),
        candidate=candidate,
        live_checkpoints=["refit_0.pt", "refit_1.pt"],
        lgbm_model="lgbm.txt",
        peer_ridge_model="peer_ridge.npz",
        blend_weight=0.5,
        blend_weights=weights or {"transformer": 0.5, "lgbm": 0.2, "peer_ridge": 0.3},
    )
    spec.save(folder)
    return refits, booster, ridge


@pytest.mark.parametrize("candidate", ["transformer", "lgbm", "peer_ridge", "blend"])
def test_live_members_are_the_chosen_candidate_of_the_refits(ensemble_dir, candidate):
    from model_core.ensemble import rank_within_era
    from model_core.peer_ridge import predict

    folder, folds = ensemble_dir
    refits, booster, ridge = _live_version(folder, candidate)
    features, context = _era(2)
    refit_rank = blend([predict_era(m, features, context) for m in refits], [0.5, 0.5])
    lgbm = rank_within_era(booster.predict(np.where(features < 0, 2, features).astype(np.float32)))
    peers = rank_within_era(predict(ridge, features))
    expected = {
        "transformer": refit_rank,
        "lgbm": lgbm,
        "peer_ridge": peers,
        "blend": 0.5 * rank_within_era(refit_rank) + 0.2 * lgbm + 0.3 * peers,
    }[candidate]
    np.testing.assert_allclose(Ensemble(folder).predict(features, context), expected, atol=1e-6)
    # The cross-validated fold models stay what the diagnostics score.
    cv = Ensemble(folder, members="folds")
    np.testing.assert_allclose(
        cv.predict(features, context),
        blend([predict_era(m, features, context) for m in folds], [0.5, 0.3, 0.2]),
        atol=1e-6,
    )


def test_a_blend_loads_only_the_members_it_weighs(ensemble_dir):
    from model_core.ensemble import rank_within_era
    from model_core.peer_ridge import predict

    folder, _ = ensemble_dir
    refits, _, ridge = _live_version(folder, "blend", {"transformer": 0.4, "lgbm": 0.0, "peer_ridge": 0.6})
    (folder / "lgbm.txt").unlink()  # its refit was skipped: weight 0
    features, context = _era(3)
    ensemble = Ensemble(folder)
    assert ensemble.lgbm is None and ensemble.peer_ridge is not None
    refit_rank = blend([predict_era(m, features, context) for m in refits], [0.5, 0.5])
    np.testing.assert_allclose(
        ensemble.predict(features, context),
        0.4 * rank_within_era(refit_rank) + 0.6 * rank_within_era(predict(ridge, features)),
        atol=1e-6,
    )


def test_an_ensemble_json_written_before_the_peer_ridge_still_loads(ensemble_dir):
    """No peer_ridge_model, no blend_weights: the blend is the transformer's blend_weight and the
    LightGBM the rest, as it was."""
    import json

    from model_core.ensemble import rank_within_era

    folder, _ = ensemble_dir
    refits, booster, _ = _live_version(folder, "blend")
    saved = json.loads((folder / "ensemble.json").read_text())
    for key in ("peer_ridge_model", "blend_weights"):
        del saved[key]
    saved["blend_weight"] = 0.7
    (folder / "ensemble.json").write_text(json.dumps(saved))
    spec = EnsembleSpec.load(folder)
    assert spec.member_weights() == pytest.approx({"transformer": 0.7, "lgbm": 0.3})
    features, context = _era(4)
    refit_rank = blend([predict_era(m, features, context) for m in refits], [0.5, 0.5])
    lgbm = booster.predict(np.where(features < 0, 2, features).astype(np.float32))
    np.testing.assert_allclose(
        Ensemble(folder).predict(features, context),
        0.7 * rank_within_era(refit_rank) + 0.3 * rank_within_era(lgbm),
        atol=1e-6,
    )

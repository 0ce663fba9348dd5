"""The peer ridge candidate: its columns, its streamed fit, its folds and its file."""

import tracemalloc
import warnings
import weakref

import numpy as np
import polars as pl
import pytest
import torch

from model_core import schema
from model_core.cv import CVConfig, make_folds
from model_core.era_store import TARGETS_BIN, EraStore
from model_core.layers import nearest_stocks
from model_core.metrics import era_numerai_corr
from model_core.peer_ridge import (
    PeerRidgeConfig,
    design,
    fit_peer_ridge,
    fold_predictions,
    load_peer_ridge,
    parse_ks,
    predict,
    save_peer_ridge,
)
from tests.model_core.rawdata import store_from_frame
from tests.model_core.test_train import _planted_store

CONFIG = PeerRidgeConfig(peer_ks=(5, 20), ridge_lambda=0.1, peer_hop=10)
PLAN = CVConfig(n_folds=2, gap_eras=2, test_eras=5, min_train_eras=10)


def _sector_store(tmp_path, n_eras=30, sectors=6, per_sector=25, seed=0) -> EraStore:
    """A market that pays for the peers' state: the stocks of a sector share a profile (8
    features), each era every sector has a state, and a stock's own `state` feature is that state
    plus a lot of noise; the target follows the sector's state. The mean state feature of the
    stocks most alike (the sector) says more than the stock's own."""
    rng = np.random.default_rng(seed)
    profiles = rng.integers(0, 5, size=(sectors, 8))
    n = sectors * per_sector
    frames = []
    for era in range(1, n_eras + 1):
        sector = np.repeat(np.arange(sectors), per_sector)
        profile = np.where(rng.random((n, 8)) < 0.1, rng.integers(0, 5, (n, 8)), profiles[sector])
        state = rng.normal(size=sectors)[sector]
        noisy = np.clip(np.round(2 + state + rng.normal(0, 2.5, n)), 0, 4)
        target = np.digitize(state + rng.normal(0, 0.3, n), [-1.0, -0.3, 0.3, 1.0]) / 4
        frame = {f"feature_p{i}": profile[:, i].astype(np.int8) for i in range(8)}
        frame |= {"feature_state": noisy.astype(np.int8), "id": [f"n{era:04d}{i:06x}" for i in range(n)]}
        frames.append(pl.DataFrame(frame | {"era": f"{era:04d}", "target": target}))
    return store_from_frame(tmp_path, pl.concat(frames), validation_eras=5)


def test_design_columns_are_the_features_and_the_peers_means():
    rng = np.random.default_rng(0)
    features = rng.integers(0, 5, size=(40, 6)).astype(np.int8)
    features[3, 2] = schema.MISSING
    z = design(features, (3, 10))
    assert z.shape == (40, 6 * 3) and z.dtype == np.float32
    x = features.astype(np.float32) - 2
    x[3, 2] = 0.0  # MISSING reads as the neutral bin
    np.testing.assert_array_equal(z[:, :6], x)
    assert z[3, 2] == 0.0
    neighbours, _, _ = nearest_stocks(
        torch.from_numpy(features)[None], torch.ones(1, 40, dtype=torch.bool), 10
    )
    neighbours = neighbours[0].numpy()  # most similar first
    np.testing.assert_allclose(z[:, 6:12], x[neighbours[:, :3]].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(z[:, 12:], x[neighbours].mean(axis=1), rtol=1e-6)
    read_only = features.copy()  # as a live file's columns may come
    read_only.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about arrays it may not write to
        np.testing.assert_array_equal(design(read_only, (3, 10)), z)


def test_the_hop_block_is_the_peers_own_peer_means():
    rng = np.random.default_rng(1)
    features = rng.integers(0, 5, size=(50, 4)).astype(np.int8)
    z = design(features, (3, 10), peer_hop=6)
    assert z.shape == (50, 4 * 4)
    np.testing.assert_array_equal(z[:, :12], design(features, (3, 10)))  # the other blocks as before
    neighbours, _, _ = nearest_stocks(
        torch.from_numpy(features)[None], torch.ones(1, 50, dtype=torch.bool), 10
    )
    neighbours = neighbours[0].numpy()
    x = features.astype(np.float32) - 2
    six = x[neighbours[:, :6]].mean(axis=1)  # each stock's own 6-peer mean
    np.testing.assert_allclose(z[:, 12:], six[neighbours[:, :6]].mean(axis=1), rtol=1e-5, atol=1e-6)
    # An era smaller than the hop averages the peers it has, as the k blocks do.
    small = design(features[:4], (2,), peer_hop=100)
    assert small.shape == (4, 12) and np.isfinite(small).all()


def test_an_era_smaller_than_the_largest_k_averages_the_peers_it_has():
    features = np.array([[0, 4], [1, 3], [2, 2], [4, 0], [-1, 1]], dtype=np.int8)
    z = design(features, (2, 100))
    assert z.shape == (5, 6) and np.isfinite(z).all()
    x = np.where(features == schema.MISSING, 0, features - 2).astype(np.float32)
    others = (x.sum(axis=0) - x) / 4  # every other stock of the era
    np.testing.assert_allclose(z[:, 4:], others, rtol=1e-6)
    lone = design(features[:1], (2, 100))  # one stock: no peers, their columns stay neutral
    np.testing.assert_array_equal(lone, [[-2, 2, 0, 0, 0, 0]])


def test_the_streamed_fit_is_the_ridge_on_the_stacked_centred_eras(tmp_path):
    store = _planted_store(tmp_path, n_eras=12, stocks=60)
    target = store.target_index(schema.MAIN_TARGET)
    eras = store.resolved_eras()[:8]
    model = fit_peer_ridge(store, eras, target, CONFIG)
    zs, ys = [], []
    for era in eras:
        data = store.era(era)
        z = design(data.features, CONFIG.peer_ks, CONFIG.peer_hop).astype(np.float64)
        zs.append(z - z.mean(axis=0))
        ys.append(data.targets[:, target] - data.targets[:, target].mean())
    z, y = np.concatenate(zs), np.concatenate(ys)
    gram = z.T @ z
    p = gram.shape[0]
    expected = np.linalg.solve(gram + np.eye(p) * CONFIG.ridge_lambda * np.trace(gram) / p, z.T @ y)
    np.testing.assert_allclose(model.beta, expected, rtol=1e-4, atol=1e-7)
    assert model.n_features == len(store.features) and model.peer_ks == CONFIG.peer_ks
    assert model.beta.shape == (len(store.features) * 4,)  # own, two ks, the hop


def test_out_of_sample_corr_is_positive(tmp_path):
    planted = _planted_store(tmp_path)
    target = planted.target_index(schema.MAIN_TARGET)
    eras = planted.resolved_eras()
    model = fit_peer_ridge(planted, eras[:30], target, CONFIG)
    corrs = [
        era_numerai_corr(predict(model, planted.era(e).features), planted.era(e).targets[:, target])
        for e in eras[32:]
    ]
    assert np.mean(corrs) > 0.3


def test_the_peers_means_add_what_a_stocks_own_row_misses(tmp_path):
    store = _sector_store(tmp_path)
    target = store.target_index(schema.MAIN_TARGET)
    eras = store.resolved_eras()

    def held_out_corr(config):
        model = fit_peer_ridge(store, eras[:20], target, config)
        return np.mean(
            [
                era_numerai_corr(predict(model, store.era(e).features), store.era(e).targets[:, target])
                for e in eras[22:]
            ]
        )

    own_only = held_out_corr(
        PeerRidgeConfig(peer_ks=(1,), ridge_lambda=0.1, peer_hop=0)
    )  # one peer: barely any
    with_peers = held_out_corr(PeerRidgeConfig(peer_ks=(10, 24), ridge_lambda=0.1, peer_hop=0))
    assert with_peers > own_only + 0.1 and with_peers > 0.3


def test_fold_predictions_are_each_folds_own_ridge(tmp_path):
    store = _planted_store(tmp_path, n_eras=30, stocks=60)
    target = store.target_index(schema.MAIN_TARGET)
    plan = make_folds(store.resolved_eras(), PLAN)
    logged = []
    oof, test = fold_predictions(store, plan, target, CONFIG, logged.append)
    assert sorted(oof) == sorted(e for f in plan.folds for e in f.validation_eras)
    assert sorted(test) == list(plan.test_eras)
    assert len(logged) == len(plan.folds) + 1
    # The one pass over the eras gives what fitting each fold's training eras alone gives.
    for fold in plan.folds:
        model = fit_peer_ridge(store, fold.train_eras, target, CONFIG)
        for era in fold.validation_eras:
            np.testing.assert_allclose(
                oof[era], predict(model, store.era(era).features), rtol=1e-5, atol=1e-8
            )
    last = plan.folds[-1]
    model = fit_peer_ridge(store, sorted({*last.train_eras, *last.validation_eras}), target, CONFIG)
    for era in plan.test_eras:
        np.testing.assert_allclose(test[era], predict(model, store.era(era).features), rtol=1e-5, atol=1e-8)


def _scramble(store: EraStore, eras, seed: int) -> None:
    """Permute the targets of `eras` within each era, on disk."""
    rng = np.random.default_rng(seed)
    targets = np.memmap(store.path / TARGETS_BIN, dtype=np.float32, mode="r+").reshape(-1, len(store.targets))
    for era in eras:
        row = store.era_table.filter(pl.col("era") == era).row(0, named=True)
        block = targets[row["row_start"] : row["row_end"]]
        block[:] = block[rng.permutation(len(block))]
    targets.flush()


def test_fold_predictions_never_read_the_targets_of_the_eras_they_predict(tmp_path):
    store = _planted_store(tmp_path, n_eras=30, stocks=60)
    target = store.target_index(schema.MAIN_TARGET)
    plan = make_folds(store.resolved_eras(), PLAN)
    oof, test = fold_predictions(store, plan, target, CONFIG)
    # The last fold's validation eras: no fold trains on them, the test block's ridge does.
    _scramble(store, plan.folds[-1].validation_eras, seed=1)
    oof_after, test_after = fold_predictions(store, plan, target, CONFIG)
    assert oof_after.keys() == oof.keys()
    for era in oof:
        np.testing.assert_array_equal(oof_after[era], oof[era])
    assert any(not np.array_equal(test_after[e], test[e]) for e in test)  # the check can fail
    # The test block's targets are read by nothing at all.
    _scramble(store, plan.test_eras, seed=2)
    oof_last, test_last = fold_predictions(store, plan, target, CONFIG)
    for era in oof:
        np.testing.assert_array_equal(oof_last[era], oof[era])
    for era in test:
        np.testing.assert_array_equal(test_last[era], test_after[era])


class _CountingStore:
    """An EraStore that counts the era slices alive at once (freed slices stop counting)."""

    def __init__(self, store: EraStore):
        self.store, self.alive, self.most = store, 0, 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    def era(self, era: str):
        data = self.store.era(era)
        self.alive += 1
        self.most = max(self.most, self.alive)
        weakref.finalize(data, self._freed)
        return data

    def _freed(self) -> None:
        self.alive -= 1


def test_the_fit_streams_one_era_at_a_time(tmp_path):
    store = _planted_store(tmp_path, n_eras=40, stocks=150)
    target = store.target_index(schema.MAIN_TARGET)
    eras = store.resolved_eras()
    counting = _CountingStore(store)
    tracemalloc.start()
    fit_peer_ridge(counting, eras, target, CONFIG)
    fold_predictions(counting, make_folds(eras, PLAN), target, CONFIG)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert counting.most == 1
    # One era's design is 150 x 48 float32 (29 kB); the set's would be 40 times that.
    whole_set = sum(len(store.era(e).ids) for e in eras) * len(store.features) * 4 * 4
    assert peak < whole_set / 4, (peak, whole_set)


def test_a_saved_model_predicts_the_same_and_bad_files_are_named(tmp_path):
    store = _planted_store(tmp_path, n_eras=12, stocks=60)
    target = store.target_index(schema.MAIN_TARGET)
    model = fit_peer_ridge(store, store.resolved_eras()[:8], target, CONFIG)
    path = tmp_path / "peer_ridge.npz"
    save_peer_ridge(model, path)
    loaded = load_peer_ridge(path, n_features=len(store.features))
    assert (loaded.peer_ks, loaded.ridge_lambda, loaded.n_features, loaded.peer_hop) == (
        CONFIG.peer_ks,
        0.1,
        model.n_features,
        10,
    )
    features = store.era(store.resolved_eras()[-1]).features
    np.testing.assert_array_equal(predict(loaded, features), predict(model, features))
    with pytest.raises(FileNotFoundError, match=r"nothing\.npz"):
        load_peer_ridge(tmp_path / "nothing.npz")
    with pytest.raises(
        ValueError, match=f"peer_ridge.npz: the peer ridge was fitted on {model.n_features} features"
    ):
        load_peer_ridge(path, n_features=model.n_features + 1)
    with pytest.raises(ValueError, match="fitted on"):
        predict(model, features[:, :-1])
    # A model saved before the hop block existed (no peer_hop in the file) loads as one without it.
    np.savez(
        tmp_path / "older.npz",
        beta=model.beta[: model.n_features * 3],
        peer_ks=np.asarray(CONFIG.peer_ks),
        ridge_lambda=0.1,
        n_features=model.n_features,
    )
    older = load_peer_ridge(tmp_path / "older.npz")
    assert older.peer_hop == 0 and predict(older, features).shape == (len(features),)
    np.savez(tmp_path / "other.npz", beta=model.beta)
    with pytest.raises(ValueError, match=r"other\.npz: not a peer ridge model"):
        load_peer_ridge(tmp_path / "other.npz")


def test_bad_settings_are_named():
    assert parse_ks(" 30, 100,300 ") == (30, 100, 300)
    default = PeerRidgeConfig()
    assert (default.peer_ks, default.ridge_lambda, default.peer_hop) == ((30, 100, 300), 3.0, 10)
    with pytest.raises(ValueError, match="integers separated by commas"):
        parse_ks("30;100")
    for ks in [(), (0, 10), (100, 30), (30, 30)]:
        with pytest.raises(ValueError, match="strictly increasing"):
            PeerRidgeConfig(peer_ks=ks)
    with pytest.raises(ValueError, match="lambda"):
        PeerRidgeConfig(ridge_lambda=0.0)
    with pytest.raises(ValueError, match="peer hop -1"):
        PeerRidgeConfig(peer_hop=-1)

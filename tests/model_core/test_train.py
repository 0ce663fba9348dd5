"""The training loop on a store with a planted signal: it learns, it stops, it resumes exactly."""

import dataclasses

import numpy as np
import polars as pl
import pytest
import torch

from model_core.batches import EraBatches
from model_core.model import EraTransformer, ModelConfig
from model_core.train import TrainConfig, load_trained, resolve_device, train_fold
from tests.model_core.rawdata import store_from_frame

N_FEATURES = 12


def _planted_store(tmp_path, n_eras=40, stocks=150, seed=0):
    """target = binned(feature_0 - feature_3 + noise): a signal any working model finds."""
    rng = np.random.default_rng(seed)
    frames = []
    for era in range(1, n_eras + 1):
        features = np.stack(
            [rng.permutation(np.arange(stocks) * 5 // stocks) for _ in range(N_FEATURES)], axis=1
        )
        signal = features[:, 0] - features[:, 3] + rng.normal(0, 2.0, stocks)
        target = np.digitize(signal, np.quantile(signal, [0.05, 0.25, 0.75, 0.95])) / 4
        frame = {f"feature_{i:02d}": features[:, i].astype(np.int8) for i in range(N_FEATURES)}
        frame |= {"id": [f"n{era:04d}{i:011x}" for i in range(stocks)], "era": f"{era:04d}", "target": target}
        frames.append(pl.DataFrame(frame))
    return store_from_frame(tmp_path, pl.concat(frames), validation_eras=10)


@pytest.fixture
def planted(tmp_path):
    store = _planted_store(tmp_path)
    eras = store.resolved_eras()
    train = EraBatches(store, eras[:30], eras_per_batch=5, shuffle=True, seed=1)
    val = EraBatches(store, eras[30:], eras_per_batch=5)
    return train, val


MODEL = ModelConfig(
    n_features=N_FEATURES, d_model=16, n_heads=2, n_layers=1, temporal_lags=0, feature_dropout=0.1
)
TRAIN = TrainConfig(max_epochs=4, learning_rate=3e-3, patience=4, seed=3)


def test_learns_the_planted_signal(planted, tmp_path):
    train, val = planted
    reports = []
    result = train_fold(MODEL, TRAIN, train, val, tmp_path / "fold.pt", progress=reports.append)
    assert result.best_val_corr > 0.15, [r.val_corr_mean for r in reports]
    assert [r.epoch for r in reports] == list(range(1, result.epochs_run + 1))
    assert all(r.rows_per_s > 0 and np.isfinite(r.train_loss) for r in reports)
    model, meta = load_trained(tmp_path / "fold.pt")
    assert meta["best_epoch"] == result.best_epoch and not model.training


class _Killed(Exception):
    pass


def test_killed_and_resumed_training_ends_where_an_uninterrupted_one_does(planted, tmp_path):
    train, val = planted
    whole = train_fold(MODEL, TRAIN, train, val, tmp_path / "whole.pt")

    def kill_after_second_epoch(report):
        if report.epoch == 2:
            raise _Killed

    with pytest.raises(_Killed):
        train_fold(MODEL, TRAIN, train, val, tmp_path / "resumed.pt", progress=kill_after_second_epoch)
    resumed = train_fold(MODEL, TRAIN, train, val, tmp_path / "resumed.pt")
    assert resumed.epochs_run == whole.epochs_run and resumed.best_epoch == whole.best_epoch
    assert [h.val_corr_mean for h in resumed.history] == pytest.approx(
        [h.val_corr_mean for h in whole.history]
    )
    a = torch.load(tmp_path / "whole.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed.pt", weights_only=True)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_early_stopping_stops_after_patience(planted, tmp_path):
    train, val = planted
    # learning rate 0: the weights never change, so no epoch after the first can improve
    config = dataclasses.replace(TRAIN, max_epochs=6, patience=2, learning_rate=0.0)
    result = train_fold(MODEL, config, train, val, tmp_path / "fold.pt")
    assert result.stopped_early
    assert (result.best_epoch, result.epochs_run) == (1, 3)


def test_bf16_and_checkpointing_train_on_cpu(planted, tmp_path):
    train, val = planted
    config = dataclasses.replace(TRAIN, max_epochs=1, precision="bf16", gradient_checkpointing=True)
    result = train_fold(MODEL, config, train, val, tmp_path / "fold.pt")
    assert np.isfinite(result.history[0].train_loss)


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="fp16"):
        TrainConfig(precision="fp8")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_trains_on_cuda_with_mixed_precision(planted, tmp_path, precision):
    train, val = planted
    config = dataclasses.replace(TRAIN, precision=precision)
    result = train_fold(MODEL, config, train, val, tmp_path / "fold.pt", device=resolve_device("cuda"))
    assert result.device.startswith("cuda") and result.best_val_corr > 0.15


def test_peer_cache_gives_the_peers_the_model_would_find(planted):
    from model_core.layers import nearest_stocks
    from model_core.train import PeerCache

    train, _ = planted
    cache = PeerCache(k=7)
    config = dataclasses.replace(MODEL, cross_stock=False, peer_knn=7)
    torch.manual_seed(0)
    model = EraTransformer(config).eval()
    for epoch in range(2):  # the second pass reads the cache (other batches: the order is shuffled)
        train.set_epoch(epoch)
        for batch in train:
            index, ok = cache.for_batch(batch)
            expected_index, expected_ok, _ = nearest_stocks(batch.features, batch.mask, 7)
            assert torch.equal(ok, expected_ok) and torch.equal(index[ok], expected_index[ok])
            with torch.no_grad():
                assert torch.allclose(
                    model(batch.features, batch.mask, peers=(index, ok)), model(batch.features, batch.mask)
                )
    assert len(cache.eras) == len(train.eras)
    assert PeerCache(k=7, enabled=False).for_batch(batch) is None

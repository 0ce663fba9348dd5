import tracemalloc

import numpy as np
import polars as pl
import pytest
import torch

from model_core import schema
from model_core.batches import EraBatches, TemporalContext, known_eras, live_batch
from model_core.clean import CleanConfig, build_era_store
from model_core.era_store import EraStore
from model_core.feature_returns import compute_feature_returns
from tests.model_core.rawdata import raw_frame, write_dataset
from tournament_sim.generate import generate_tournament

HORIZON = schema.ERAS_PER_HORIZON[20]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> EraStore:
    """The tiny simulated tournament: ~80 eras of ~100 stocks, the last few unresolved."""
    path = tmp_path_factory.mktemp("sim")
    generate_tournament(path / "sim", "tiny", seed=0, data_version=schema.DEFAULT_DATASET_VERSION)
    built, _ = build_era_store(path / "sim" / schema.DEFAULT_DATASET_VERSION, path / "clean", CleanConfig())
    assert len(built.resolved_eras()) < len(built.eras)  # the tests below rely on unresolved eras
    return built


@pytest.fixture(scope="module")
def returns(store: EraStore) -> pl.DataFrame:
    return compute_feature_returns(store)


def _era_sizes(store: EraStore, eras: list[str]) -> list[int]:
    return [len(store.era(e).ids) for e in eras]


def test_batches_copy_store_rows_and_pad_with_missing(store):
    eras = store.resolved_eras()[:10]
    targets = ["target", "target_jasper_60"]
    loader = EraBatches(store, eras, eras_per_batch=4, targets=targets)
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    assert [b.eras for b in batches] == [eras[:4], eras[4:8], eras[8:]]
    assert loader.rows == sum(_era_sizes(store, eras)) == sum(b.rows for b in batches)
    columns = [store.target_index(t) for t in targets]
    for batch in batches:
        width = max(_era_sizes(store, batch.eras))
        e = len(batch.eras)
        assert batch.features.shape == (e, width, len(store.features)) and batch.features.dtype == torch.int8
        assert batch.mask.shape == (e, width) and batch.mask.dtype == torch.bool
        assert batch.targets.shape == (e, width, 2) and batch.targets.dtype == torch.float32
        assert batch.context is None
        for i, era in enumerate(batch.eras):
            data = store.era(era)
            n = len(data.ids)
            np.testing.assert_array_equal(batch.features[i, :n].numpy(), data.features)
            np.testing.assert_array_equal(batch.targets[i, :n].numpy(), data.targets[:, columns])
            assert batch.mask[i, :n].all() and not batch.mask[i, n:].any()
            assert (batch.features[i, n:] == schema.MISSING).all()
            assert torch.isnan(batch.targets[i, n:]).all()
    # the tiny eras differ in size, so some batch really was padded
    assert any(not b.mask.all() for b in batches)


def test_batches_never_hold_a_float_copy_of_the_set(store):
    eras = store.eras
    store.era(eras[0])  # the id table loads once per store; not the loader's memory
    float_set_bytes = store.n_rows * len(store.features) * 4
    largest = max(_era_sizes(store, eras))
    tracemalloc.start()  # numpy allocations are traced; the batch tensors are numpy-backed
    try:
        for batch in EraBatches(store, eras, eras_per_batch=2):
            assert batch.features.dtype == torch.int8 and len(batch.eras) <= 2
            del batch
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a few eras of int8 features, float targets and ids, with slack: far below the float32 set
    assert peak < float_set_bytes / 4, (peak, float_set_bytes)
    assert peak < 4 * largest * (len(store.features) + 4 * len(store.targets) + 200) + 100_000


def test_shuffle_is_reproducible_per_seed_and_epoch_and_differs_across_epochs(store):
    eras = store.resolved_eras()

    def orders(loader: EraBatches, epochs: int) -> list[list[str]]:
        return [[e for b in loader for e in b.eras] for _ in range(epochs)]

    first = orders(EraBatches(store, eras, shuffle=True, seed=7), 3)
    again = orders(EraBatches(store, eras, shuffle=True, seed=7), 3)
    other_seed = orders(EraBatches(store, eras, shuffle=True, seed=8), 1)
    assert first == again
    assert all(sorted(order) == sorted(eras) for order in first)
    assert first[0] != first[1] != first[2] and first[0] != other_seed[0]
    resumed = EraBatches(store, eras, shuffle=True, seed=7)
    resumed.set_epoch(2)
    assert orders(resumed, 1)[0] == first[2]
    assert orders(EraBatches(store, eras), 2) == [eras, eras]  # no shuffle: the given order


def test_max_stocks_subsamples_rows_of_the_era_reproducibly(store):
    era = store.resolved_eras()[3]
    data = store.era(era)
    loader = EraBatches(store, [era], max_stocks=20, shuffle=True, seed=1)
    first, second = next(iter(loader)), next(iter(loader))
    assert first.features.shape[1] == 20 and first.mask.all() and loader.rows == 20
    # each drawn row is a real row of the era, in storage order, with its own targets
    full = data.features.tolist()
    picked = [full.index(row) for row in first.features[0].tolist()]
    assert picked == sorted(picked)
    np.testing.assert_array_equal(first.targets[0, :, 0].numpy(), data.targets[picked, 0])
    assert not torch.equal(first.features, second.features)  # a new draw each epoch
    replay = EraBatches(store, [era], max_stocks=20, shuffle=True, seed=1)
    assert torch.equal(next(iter(replay)).features, first.features)


def test_unknown_target_and_era_are_named(store):
    with pytest.raises(KeyError, match=r"target 'target_nope' is not in .*; it has \['target'"):
        EraBatches(store, store.eras[:2], targets=["target", "target_nope"])
    with pytest.raises(KeyError, match=r"eras not in the store .*\['9999'\]"):
        EraBatches(store, ["0001", "9999"])


def test_known_eras_rule():
    # predicting position 10 with a 4-era target: era 5 is known (5 + 4 + 1 <= 10), era 6 is not
    assert known_eras(10, 4, 3) == [5, 4, 3]
    assert known_eras(6, 4, 3) == [1, 0]  # history too short: only what exists
    assert known_eras(4, 4, 3) == []
    assert known_eras(10, 4, 0) == []
    for p in range(30):
        for q in known_eras(p, HORIZON, 8):
            assert q + HORIZON + 1 <= p and q >= 0
    with pytest.raises(ValueError, match="must be >= 0"):
        known_eras(10, -1, 3)


def _returns_of(returns: pl.DataFrame, era: str) -> np.ndarray:
    return returns.filter(pl.col(schema.ERA) == era).drop(schema.ERA).to_numpy()[0]


def _expected_context(returns: pl.DataFrame, all_eras: list[str], position: int, lags: int, horizon: int):
    rows = {era: i for i, era in enumerate(returns[schema.ERA].to_list())}
    values = returns.drop(schema.ERA).to_numpy()
    expected = np.full((lags, values.shape[1]), np.nan, dtype=np.float32)
    for lag, q in enumerate(known_eras(position, horizon, lags)):
        if all_eras[q] in rows:
            expected[lag] = values[rows[all_eras[q]]]
    return expected


def test_context_of_every_era_uses_only_resolved_eras_known_at_that_time(store, returns):
    lags = 6
    resolved = set(store.resolved_eras())
    all_eras = store.eras
    context = TemporalContext(returns, lags=lags, horizon_eras=HORIZON, all_eras=all_eras)
    # every era, unresolved validation eras included, goes through the loader with its context
    loader = EraBatches(store, all_eras, eras_per_batch=5, context=context)
    seen = 0
    for batch in loader:
        assert batch.context.shape == (len(batch.eras), lags, len(store.features))
        for i, era in enumerate(batch.eras):
            p = all_eras.index(era)
            got = batch.context[i].numpy()
            np.testing.assert_array_equal(got, _expected_context(returns, all_eras, p, lags, HORIZON))
            for lag in range(lags):
                q = p - HORIZON - 1 - lag
                if q < 0:
                    assert np.isnan(got[lag]).all()  # history too short
                else:
                    # the row is exactly that era's feature returns, and that era was resolved
                    assert all_eras[q] in resolved
                    np.testing.assert_array_equal(got[lag], _returns_of(returns, all_eras[q]))
            seen += 1
    assert seen == len(all_eras)
    first = context.for_era(all_eras[0])
    assert np.isnan(first).all()


def test_context_never_carries_an_unresolved_era(store, returns):
    """With no horizon the most recent lags of the live era land on the unresolved eras: NaN rows."""
    all_eras = store.eras
    resolved = set(store.resolved_eras())
    lags = len(all_eras) - len(resolved) + 2
    context = TemporalContext(returns, lags=lags, horizon_eras=0, all_eras=all_eras)
    assert context.next_position == len(all_eras)
    live = context.for_era("X", position=len(all_eras))  # live era: last known position + 1
    lagged = [all_eras[q] for q in known_eras(len(all_eras), 0, lags)]
    assert any(era not in resolved for era in lagged) and any(era in resolved for era in lagged)
    for lag, era in enumerate(lagged):
        if era in resolved:
            np.testing.assert_array_equal(live[lag], _returns_of(returns, era))
        else:
            assert np.isnan(live[lag]).all()


def test_unresolved_era_in_the_middle_is_a_nan_row(tmp_path):
    train = raw_frame([schema.era_label(i) for i in range(1, 9)], seed=0)
    validation = pl.concat(
        [
            raw_frame(["0009"], data_type="test", seed=1),  # not resolved, yet older eras follow
            raw_frame(["0010", "0011"], data_type="validation", seed=2),
        ]
    )
    store, _ = build_era_store(write_dataset(tmp_path / "raw", train, validation), tmp_path / "clean")
    returns = compute_feature_returns(store)
    assert "0009" not in returns[schema.ERA].to_list()
    context = TemporalContext(returns, lags=3, horizon_eras=1, all_eras=store.eras)
    got = context.for_era("X", position=context.next_position)  # positions 9, 8, 7: 0010, 0009, 0008
    np.testing.assert_array_equal(got[0], _returns_of(returns, "0010"))
    assert np.isnan(got[1]).all()
    np.testing.assert_array_equal(got[2], _returns_of(returns, "0008"))
    # without all_eras the positions would slide over the gap: the store's eras must be given
    with pytest.raises(KeyError, match="pass its position explicitly"):
        TemporalContext(returns, lags=3, horizon_eras=1).for_era("0009")
    with pytest.raises(ValueError, match="is at position 2, not 5"):
        context.for_era("0003", position=5)


def test_live_batch_with_explicit_position(store, returns):
    context = TemporalContext(returns, lags=4, all_eras=store.eras)
    features = store.era(store.eras[-1]).features.copy()
    ctx = context.for_era("X", position=len(store.eras))
    batch = live_batch(features, ctx)
    n, f = features.shape
    assert batch.features.shape == (1, n, f) and batch.features.dtype == torch.int8
    assert batch.mask.all() and batch.targets.shape == (1, n, 1) and torch.isnan(batch.targets).all()
    assert batch.context.shape == (1, 4, f)
    np.testing.assert_array_equal(batch.context[0].numpy(), ctx)
    # live at position len(eras): lag 1 is the era HORIZON + 1 before it
    np.testing.assert_array_equal(ctx[0], _returns_of(returns, store.eras[-HORIZON - 1]))
    assert live_batch(features, None).context is None
    with pytest.raises(ValueError, match="2-D int8"):
        live_batch(features.astype(np.float32), None)
    with pytest.raises(ValueError, match="context must be"):
        live_batch(features, ctx[:, :3])


def test_batch_moves_to_a_device(store):
    batch = next(iter(EraBatches(store, store.eras[:2])))
    moved = batch.to(torch.device("cpu"))
    assert moved.eras == batch.eras and torch.equal(moved.features, batch.features)


def test_context_must_match_the_store_features(store, returns):
    context = TemporalContext(returns.select(returns.columns[:5]), lags=2, all_eras=store.eras)
    with pytest.raises(ValueError, match="do not match the store"):
        EraBatches(store, store.eras, context=context)

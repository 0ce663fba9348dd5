import dataclasses
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model_core import layers, schema
from model_core.losses import pearson_per_era
from model_core.model import EraTransformer, ModelConfig

N_FEATURES = 24
LAGS = 3
MODES = {
    "bias": {"similarity_prior": "bias"},
    "knn": {"similarity_prior": "knn"},
    "none": {"similarity_prior": "none"},
    "isab-bias": {"similarity_prior": "bias", "inducing_points": 4},
    "isab-knn": {"similarity_prior": "knn", "inducing_points": 4},
    "isab-none": {"similarity_prior": "none", "inducing_points": 4},
    "peers": {"similarity_prior": "none", "peer_knn": 4},
}


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: one thread is as fast, and immune to the 10-50x OpenMP barrier stalls seen when
    # another process shares the 2 cores of these machines.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(seed: int = 0, **overrides) -> EraTransformer:
    torch.manual_seed(seed)
    # The cross-stock, temporal architecture these tests probe, whatever the service's defaults.
    options = {
        "n_features": N_FEATURES,
        "d_model": 32,
        "n_layers": 2,
        "temporal_lags": LAGS,
        "knn": 4,
        "cross_stock": True,
        "peer_knn": 0,
    }
    model = EraTransformer(ModelConfig(**{**options, **overrides}))
    return model.eval()


def make_eras(n_eras: int, n_stocks: int, seed: int = 0, n_features: int = N_FEATURES):
    g = torch.Generator().manual_seed(seed)
    features = torch.randint(
        schema.MISSING, schema.FEATURE_MAX + 1, (n_eras, n_stocks, n_features), generator=g
    )
    context = torch.randn(n_eras, LAGS, n_features, generator=g) * 0.05
    return features.to(torch.int8), torch.ones(n_eras, n_stocks, dtype=torch.bool), context


@pytest.mark.parametrize("mode", MODES)
def test_padding_does_not_change_the_scores_of_real_stocks(mode):
    model = make_model(**MODES[mode])
    features, mask, context = make_eras(2, 10)
    mask[1, 7:] = False  # the second era has 7 real stocks
    scores = model(features, mask, context)
    # Pad to 16 rows with junk (even out-of-range codes: padding may hold anything).
    junk = torch.randint(-100, 100, (2, 6, N_FEATURES), dtype=torch.int8)
    padded = model(
        torch.cat([features, junk], 1), torch.cat([mask, torch.zeros(2, 6, dtype=torch.bool)], 1), context
    )
    assert torch.isfinite(padded).all()
    torch.testing.assert_close(padded[:, :10][mask], scores[mask], atol=1e-5, rtol=1e-5)
    assert (padded[:, 10:] == 0).all() and (padded[1, 7:] == 0).all()


@pytest.mark.parametrize("mode", MODES)
def test_an_era_without_real_stocks_gives_zeros_not_nan(mode):
    model = make_model(**MODES[mode]).train()
    features, mask, context = make_eras(2, 6)
    mask[1] = False
    scores = model(features, mask, context)
    scores.sum().backward()
    assert torch.isfinite(scores).all() and (scores[1] == 0).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("mode", MODES)
def test_scores_are_equivariant_to_the_order_of_stocks(mode):
    model = make_model(**MODES[mode])
    features, mask, context = make_eras(1, 14, seed=1)
    mask[0, [3, 9]] = False  # padding interleaved with real stocks
    perm = torch.randperm(14, generator=torch.Generator().manual_seed(5))
    scores = model(features, mask, context)
    permuted = model(features[:, perm], mask[:, perm], context)
    torch.testing.assert_close(permuted, scores[:, perm], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_without_cross_stock_each_stock_is_scored_as_if_alone(mode):
    model = make_model(**MODES[mode])
    features, mask, context = make_eras(1, 9, seed=2)
    alone = torch.cat([model(features[:, i : i + 1], mask[:, i : i + 1], context) for i in range(9)], 1)
    per_row = model(features, mask, context, cross_stock=False)
    torch.testing.assert_close(per_row, alone, atol=1e-5, rtol=1e-5)
    # Change every other stock: stock 0's score stays without cross-stock mixing, moves with it.
    others = features.clone()
    others[:, 1:] = torch.randint(0, 5, others[:, 1:].shape, dtype=torch.int8)
    changed = model(others, mask, context, cross_stock=False)
    assert torch.equal(changed[0, 0], per_row[0, 0])
    assert not torch.allclose(model(others, mask, context)[0, 0], model(features, mask, context)[0, 0])


def test_config_cross_stock_false_is_the_per_row_model():
    features, mask, context = make_eras(1, 9, seed=2)
    per_row = make_model(cross_stock=False)
    full = make_model(cross_stock=True)
    full.load_state_dict(per_row.state_dict())
    torch.testing.assert_close(
        per_row(features, mask, context), full(features, mask, context, cross_stock=False)
    )


def test_the_regime_context_changes_scores_and_is_ignored_without_lags():
    features, mask, context = make_eras(2, 8, seed=3)
    model = make_model()
    scores = model(features, mask, context)
    assert not torch.allclose(model(features, mask, context * -3.0), scores)
    assert torch.isfinite(model(features, mask, context[:, :1])).all()  # fewer resolved eras than K
    with_nan = context.clone()
    with_nan[0, 1] = float("nan")  # a lag without any feature return
    with_nan[1, :, :5] = float("nan")
    assert torch.isfinite(model(features, mask, with_nan)).all()
    with pytest.raises(ValueError, match="context"):
        model(features, mask, None)
    no_lags = make_model(temporal_lags=0)
    reference = no_lags(features, mask)
    torch.testing.assert_close(no_lags(features, mask, context), reference)
    torch.testing.assert_close(no_lags(features, mask, torch.randn(2, 5, N_FEATURES)), reference)


def test_the_temporal_encoder_is_causal_in_time():
    encoder = make_model(dropout=0.0).temporal
    context = torch.randn(1, LAGS, N_FEATURES) * 0.05
    newer = context.clone()
    newer[0, 0] = 0.3  # lag 1, the most recent resolved era
    before, after = encoder(context), encoder(newer)
    torch.testing.assert_close(after[0, 1:], before[0, 1:])  # older lags' tokens cannot see it
    assert not torch.allclose(after[0, 0], before[0, 0])


def test_missing_has_its_own_embedding():
    model = make_model(similarity_prior="none")
    features, mask, context = make_eras(1, 6, seed=4)
    features[0, 0, :3] = 2
    missing = features.clone()
    missing[0, 0, :3] = schema.MISSING  # the similarity counts MISSING as 2: only the embedding differs
    assert not torch.allclose(model(missing, mask, context)[0, 0], model(features, mask, context)[0, 0])
    rows = model.embed.weight.view(N_FEATURES, layers.N_VALUES, -1)
    assert not torch.allclose(rows[:, 0], rows[:, 1 + 2])  # row of MISSING vs row of value 2


def test_feature_dropout_only_in_training():
    features, mask, context = make_eras(1, 12, seed=5)
    model = make_model(feature_dropout=0.5, dropout=0.0)
    torch.testing.assert_close(model(features, mask, context), model(features, mask, context))
    model.train()
    assert not torch.allclose(model(features, mask, context), model(features, mask, context))
    no_dropout = make_model(feature_dropout=0.0, dropout=0.0).train()
    torch.testing.assert_close(
        no_dropout(features, mask, context), no_dropout.eval()(features, mask, context)
    )


@pytest.mark.parametrize("mode", ["bias", "knn", "isab-bias"])
def test_bf16_autocast_trains_with_finite_grads(mode):
    model = make_model(**MODES[mode]).train()
    features, mask, context = make_eras(2, 16, seed=6)
    mask[1, 12:] = False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model(features, mask, context)
    assert scores.dtype == torch.float32
    (scores.square().sum()).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if mode.endswith("bias"):
        assert model.blocks[0].mix.scale.grad != 0


@pytest.mark.parametrize("mode", ["bias", "knn", "isab-bias"])
def test_checkpointing_gives_the_same_grads(mode):
    features, mask, context = make_eras(2, 12, seed=7)
    mask[0, 10:] = False
    grads = []
    for checkpointing in (False, True):
        model = make_model(**MODES[mode], checkpointing=checkpointing).train()
        torch.manual_seed(11)  # the same feature dropout and dropout draws
        model(features, mask, context).square().sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-6, rtol=1e-5, msg=name)


def test_the_prior_scale_gets_the_gradient_of_the_math_path():
    model = make_model(similarity_prior="bias", feature_dropout=0.0, dropout=0.0).train()
    with torch.no_grad():
        for block in model.blocks:
            block.mix.scale.fill_(1.7)
    features, mask, context = make_eras(2, 12, seed=8)
    mask[1, 9:] = False
    weights = torch.randn(2, 12, 1)
    fused = (model(features, mask, context) * weights).sum()
    fused.backward()
    fused_grads = [b.mix.scale.grad.clone() for b in model.blocks]
    model.zero_grad()
    for block in model.blocks:
        block.mix.attn.record = True  # explicit softmax: autograd differentiates the bias itself
    exact = (model(features, mask, context) * weights).sum()
    exact.backward()
    torch.testing.assert_close(fused, exact)
    for block, grad in zip(model.blocks, fused_grads, strict=True):
        torch.testing.assert_close(grad, block.mix.scale.grad, rtol=1e-3, atol=1e-6)


def test_embedding_backward_matches_torch():
    emb = layers.FeatureEmbedding(7, 5)
    features = torch.randint(schema.MISSING, 5, (2, 9, 7), dtype=torch.int8)
    out = emb(features)
    grad = torch.randn_like(out)
    out.backward(grad)
    index = features.view(18, 7).long() + emb.offsets.long()
    reference = F.embedding_bag(index, emb.weight, mode="sum") / np.sqrt(7)
    torch.testing.assert_close(out.view(18, 5), reference)
    mine, emb.weight.grad = emb.weight.grad, None
    reference.backward(grad.view(18, 5))
    torch.testing.assert_close(mine, emb.weight.grad)


def _numpy_similarity(features: np.ndarray) -> np.ndarray:
    x = np.where(features == schema.MISSING, 2, features).astype(float)
    x -= x.mean(0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cos = x @ x.T
    np.fill_diagonal(cos, np.nan)
    z = (cos - np.nanmean(cos, 1, keepdims=True)) / np.nanstd(cos, 1, keepdims=True)
    np.fill_diagonal(z, 0.0)
    return z


def test_similarity_is_the_z_scored_centred_cosine_of_the_real_stocks(monkeypatch):
    monkeypatch.setattr(layers, "SIM_BLOCK", 4)  # several row blocks
    features, mask, _ = make_eras(1, 13, seed=9, n_features=40)
    mask[0, 10:] = False
    sim = layers.stock_similarity(features, mask)[0].numpy()
    np.testing.assert_allclose(sim[:10, :10], _numpy_similarity(features[0, :10].numpy()), atol=1e-5)
    assert (sim[10:] == 0).all() and (sim[:, 10:] == 0).all()
    knn = layers.knn_mask(features, mask, k=3)[0].numpy()
    expected = np.argsort(-np.where(np.eye(10, dtype=bool), -np.inf, sim[:10, :10]), axis=1)[:, :3]
    for i in range(10):
        assert set(np.flatnonzero(knn[i])) == {i, *expected[i]}
    assert (knn[10:] == np.eye(13, dtype=bool)[10:]).all()  # padding rows: themselves only
    index, ok, _ = layers.nearest_stocks(features, mask, k=3)
    assert ok[0, :10].all() and not ok[0, 10:].any()
    assert all(set(index[0, i].tolist()) == set(expected[i]) for i in range(10))


def test_attention_maps_are_distributions_over_real_stocks():
    for mode in ("bias", "knn", "isab-bias", "per-row"):
        model = make_model(**MODES.get(mode, {"cross_stock": False}))
        features, mask, context = make_eras(2, 8, seed=10)
        mask[1, 6:] = False
        maps = model.attention_maps(features, mask, context)
        cross = maps["cross_stock"]
        assert cross.shape == (2, 4, 8, 8) and maps["temporal"].shape == (2, 4, LAGS)
        assert maps["temporal_encoder"].shape == (2, 4, LAGS, LAGS)
        torch.testing.assert_close(cross.sum(-1)[mask[:, None].expand(-1, 4, -1)], torch.ones(2 * 4 * 8 - 8))
        torch.testing.assert_close(maps["temporal"].sum(-1), torch.ones(2, 4))
        if mode == "knn":  # k = 4 neighbours and self
            assert ((cross[0] > 0).sum(-1) == 5).all()
        assert not model.training and not any(m.record for m in model.modules() if hasattr(m, "record"))


def test_config_round_trips_through_a_weights_only_checkpoint():
    config = ModelConfig(n_features=5, similarity_prior="knn", inducing_points=8, n_outputs=3)
    buffer = io.BytesIO()
    torch.save({"config": config.to_dict(), "state": EraTransformer(config).state_dict()}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert ModelConfig.from_dict(loaded["config"]) == config
    EraTransformer(ModelConfig.from_dict(loaded["config"])).load_state_dict(loaded["state"])
    with pytest.raises(ValueError, match="unknown fields"):
        ModelConfig.from_dict({**config.to_dict(), "width": 3})
    with pytest.raises(ValueError, match="similarity_prior"):
        dataclasses.replace(config, similarity_prior="graph")
    with pytest.raises(ValueError, match="multiple of n_heads"):
        ModelConfig(n_features=5, d_model=30, n_heads=4)


def test_bad_inputs_say_what_is_wrong():
    model = make_model()
    features, mask, context = make_eras(1, 4)
    with pytest.raises(ValueError, match=r"values must be 0..4"):
        model(features.masked_fill(features == 4, 5), mask, context)
    with pytest.raises(ValueError, match="features: expected"):
        model(features[..., :-1], mask, context)
    with pytest.raises(ValueError, match="mask"):
        model(features, mask[:, :3], context)
    scores = make_model(n_outputs=2)(features.long(), mask, context)
    assert scores.shape == (1, 4, 2) and scores.dtype == torch.float32


# ---------------------------------------------------------------- learning sanity check


def _peer_eras(g: torch.Generator, n_eras: int, n_stocks: int = 64, n_features: int = 16):
    """target = rank of feature_0 + the mean feature_0 of the 5 most similar stocks (cosine)."""
    features = torch.randint(0, 5, (n_eras, n_stocks, n_features), generator=g).to(torch.int8)
    mask = torch.ones(n_eras, n_stocks, dtype=torch.bool)
    sim = layers.stock_similarity(features, mask)  # same ordering as the raw cosine within a row
    sim.diagonal(dim1=1, dim2=2).fill_(-np.inf)
    own = features[..., 0].float()
    peers = own.gather(1, sim.topk(5, dim=2).indices.flatten(1)).view(n_eras, n_stocks, 5).mean(2)
    target = (own + peers).argsort(1).argsort(1).float() / (n_stocks - 1)
    return features, mask, target, own


def _residual(x: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    # what is left of x (E, N) after a per-era regression on the stock's own feature_0
    own, x = own - own.mean(1, keepdim=True), x - x.mean(1, keepdim=True)
    return x - (x * own).sum(1, keepdim=True) / own.square().sum(1, keepdim=True) * own


def _train_on_peer_eras(**overrides) -> tuple[float, float]:
    model = make_model(
        seed=0, n_features=16, temporal_lags=0, feature_dropout=0.0, dropout=0.0, knn=8, **overrides
    ).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        features, mask, target, _ = _peer_eras(g, 8)
        loss = -pearson_per_era(model(features, mask)[..., 0], target, mask).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    features, mask, target, own = _peer_eras(torch.Generator().manual_seed(99), 32)
    with torch.no_grad():
        scores = model.eval()(features, mask)[..., 0]
    corr = pearson_per_era(scores, target, mask).mean().item()
    # The peer part: what the scores know about the target beyond the stock's own feature_0.
    peer_corr = pearson_per_era(_residual(scores, own), _residual(target, own), mask).mean().item()
    return corr, peer_corr


@pytest.mark.parametrize("mode", ["bias", "knn", "isab-bias", "peers"])
def test_the_prior_finds_the_peers(mode):
    corr, peer_corr = _train_on_peer_eras(**MODES[mode])
    assert corr > 0.2
    assert peer_corr > 0.3  # ~0.65 here; a per-row model cannot exceed ~0 (next test)


def test_a_per_row_model_cannot_see_the_peers():
    corr, peer_corr = _train_on_peer_eras(cross_stock=False)
    assert corr > 0.2 and abs(peer_corr) < 0.1

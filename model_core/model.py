"""The era transformer: scores every stock of an era from its features, its peers and the regime.

    features (E, N, F) int8 ──► FeatureEmbedding ──► x (E, N, D)
    context (E, K, F) feature returns of the last K resolved eras ──► TemporalEncoder ──► regime (E, K, D)
    n_layers x CrossSectionBlock: x += StockAttention(x; similarity prior)   across the era's stocks
                                  x += Attention(x, regime)                  stocks read the regime
                                  x += MLP(x)
    ──► LayerNorm ──► Linear ──► scores (E, N, n_outputs)

DESIGN.md section 6 explains the parts; layers.py holds the blocks. Plain learned attention
ignored the other stocks in our experiment, so the cross-sectional attention carries an explicit
similarity graph (L2GMOM) and `cross_stock=False` scores every stock as if it were alone in its
era, which is how "attention reliance" is measured.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from model_core import schema
from model_core.knobs import default
from model_core.layers import (
    Attention,
    FeatureEmbedding,
    InducedStockAttention,
    StockAttention,
    StockGraph,
    knn_mask,
    nearest_stocks,
    stock_similarity,
)

SIMILARITY_PRIORS = ("bias", "knn", "none")
PRIOR_SCALE_INIT = 1.0  # logit bias per standard deviation of similarity, learned from there


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    n_features: int
    d_model: int = default("d_model")
    n_heads: int = default("n_heads")
    n_layers: int = default("n_layers")  # cross-sectional layers
    temporal_lags: int = default("temporal_lags")  # K; 0 switches the temporal encoder off
    temporal_layers: int = 1
    # False: no attention across stocks (a per-row model; the ablation)
    cross_stock: bool = default("cross_stock")
    similarity_prior: str = default("similarity_prior")  # "bias" | "knn" | "none" (see layers.StockAttention)
    knn: int = 16
    inducing_points: int = 0  # > 0: ISAB-style attention through that many learned points
    # training only: each (stock, feature) value -> MISSING
    feature_dropout: float = default("feature_dropout")
    dropout: float = 0.1  # residual / MLP dropout; attention dropout is always 0 (fused SDPA)
    n_outputs: int = 1  # one score per target when > 1
    checkpointing: bool = False  # gradient checkpointing around each cross-sectional block
    # > 0: each stock's input also gets the mean embedding of its k most similar stocks
    peer_knn: int = default("peer_knn")

    def __post_init__(self) -> None:
        problems = []
        if self.n_features < 1:
            problems.append(f"n_features={self.n_features} must be >= 1")
        if self.d_model < 1 or self.n_heads < 1 or self.d_model % self.n_heads:
            problems.append(f"d_model={self.d_model} must be a positive multiple of n_heads={self.n_heads}")
        if self.n_layers < 0 or self.temporal_lags < 0 or self.inducing_points < 0:
            problems.append("n_layers, temporal_lags and inducing_points must be >= 0")
        if self.temporal_lags > 0 and self.temporal_layers < 1:
            problems.append(f"temporal_layers={self.temporal_layers} must be >= 1 when temporal_lags > 0")
        if self.similarity_prior not in SIMILARITY_PRIORS:
            problems.append(f"similarity_prior={self.similarity_prior!r} is not one of {SIMILARITY_PRIORS}")
        if self.peer_knn < 0:
            problems.append(f"peer_knn={self.peer_knn} must be >= 0")
        if self.knn < 1:
            problems.append(f"knn={self.knn} must be >= 1")
        for name in ("feature_dropout", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name}={getattr(self, name)} must be in [0, 1)")
        if self.n_outputs < 1:
            problems.append(f"n_outputs={self.n_outputs} must be >= 1")
        if problems:
            raise ValueError("ModelConfig: " + "; ".join(problems))

    def to_dict(self) -> dict:
        """Plain types only, so checkpoints load with torch.load(weights_only=True)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ModelConfig: unknown fields {unknown}; known: {sorted(known)}")
        if "n_features" not in d:
            raise ValueError("ModelConfig: n_features is required")
        return cls(**d)


class MLP(nn.Module):
    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.proj = nn.Linear(4 * d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class TemporalBlock(nn.Module):
    """Pre-norm causal self-attention over the lags, then an MLP."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.d_model)
        self.attn = Attention(config.d_model, config.n_heads)
        self.ln_mlp = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config.d_model, config.dropout)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, causal: Tensor) -> Tensor:
        # x (E, K, D), causal (K, K) bool
        x = x + self.drop(self.attn(self.ln_attn(x), attn_mask=causal))
        return x + self.mlp(self.ln_mlp(x))


class TemporalEncoder(nn.Module):
    """The regime: the last K resolved eras' feature returns -> K context tokens.

    Which eras are resolved is decided by whoever builds `context` (gap >= target horizon + lag);
    the model only ever sees that tensor, so it cannot look further. Lag 1 (most recent) comes
    first; token i attends to lags >= i (itself and older eras): causal in time.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.value = nn.Linear(config.n_features, config.d_model)
        self.missing = nn.Linear(config.n_features, config.d_model, bias=False)  # NaN -> 0 + this flag
        self.ln_in = nn.LayerNorm(config.d_model)  # feature returns are ~0.01: let LN set the scale
        self.lag = nn.Parameter(torch.randn(config.temporal_lags, config.d_model) * 0.02)  # (K, D)
        self.blocks = nn.ModuleList(TemporalBlock(config) for _ in range(config.temporal_layers))
        self.ln_out = nn.LayerNorm(config.d_model)

    def forward(self, context: Tensor) -> Tensor:
        # context (E, K, F) float, NaN allowed -> (E, K, D)
        K = context.shape[1]
        missing = torch.isnan(context)
        x = self.value(context.nan_to_num(0.0)) + self.missing(missing.to(context.dtype))
        x = self.ln_in(x) + self.lag[:K]  # (E, K, D)
        causal = torch.ones(K, K, dtype=torch.bool, device=context.device).triu()
        for block in self.blocks:
            x = block(x, causal)
        return self.ln_out(x)


class CrossSectionBlock(nn.Module):
    """Pre-norm: mixing across the era's stocks, reading the regime, then a per-stock MLP."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d, h = config.d_model, config.n_heads
        self.ln_mix = nn.LayerNorm(d)
        if config.inducing_points > 0:
            self.mix = InducedStockAttention(
                d, h, config.inducing_points, config.similarity_prior, PRIOR_SCALE_INIT
            )
        else:
            self.mix = StockAttention(d, h, config.similarity_prior, PRIOR_SCALE_INIT)
        self.ln_regime = nn.LayerNorm(d) if config.temporal_lags > 0 else None
        self.regime = Attention(d, h) if config.temporal_lags > 0 else None
        self.ln_mlp = nn.LayerNorm(d)
        self.mlp = MLP(d, config.dropout)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, graph: StockGraph, regime: Tensor | None, cross_stock: bool) -> Tensor:
        # x (E, N, D), regime (E, K, D) -> (E, N, D)
        x = x + self.drop(self.mix(self.ln_mix(x), graph, cross_stock))
        if self.regime is not None:
            x = x + self.drop(self.regime(self.ln_regime(x), regime))
        return x + self.mlp(self.ln_mlp(x))


class EraTransformer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = FeatureEmbedding(config.n_features, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.temporal = TemporalEncoder(config) if config.temporal_lags > 0 else None
        self.blocks = nn.ModuleList(CrossSectionBlock(config) for _ in range(config.n_layers))
        # Explicit peers (DESIGN.md section 6): the mean embedding of the k most similar stocks.
        self.peer_proj = nn.Linear(config.d_model, config.d_model) if config.peer_knn > 0 else None
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.n_outputs)
        self.apply(self._init_weights)
        # nanoGPT: residual projections scaled down with depth so the stream starts near identity.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * max(1, config.n_layers)))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(
        self,
        features: Tensor,  # (E, N, F) int8 or int64, 0..4 or MISSING (-1)
        mask: Tensor,  # (E, N) bool, True = a real stock
        context: Tensor | None = None,  # (E, K, F) float feature returns, lag 1 first; NaN allowed
        cross_stock: bool | None = None,  # False: every stock scored as if alone in its era
        graph: StockGraph | None = None,  # from `stock_graph` of these inputs (shared by an ensemble)
        peers: tuple[Tensor, Tensor] | None = None,  # `nearest_stocks(...)[:2]` of these inputs, if known
    ) -> Tensor:  # (E, N, n_outputs) float32; padding rows are 0
        cross = self.config.cross_stock if cross_stock is None else cross_stock
        features, mask = self._check_inputs(features, mask)
        regime = self._regime(context, features.shape[0])  # (E, K, D) or None
        # The graph comes from the raw features: feature dropout regularises the embedding, not the
        # peers, and the raw graph is the same in training and inference.
        if not cross:
            graph = StockGraph(mask)
        elif graph is None:
            graph = self._stock_graph(features, mask)
        # Peers are their own switch: a per-row model (config cross_stock=False) may still read
        # its explicit peers; only the reliance probe (cross_stock=False here) takes them away.
        if self.peer_proj is None or cross_stock is False:
            peers = None
        elif peers is None:
            with torch.no_grad():
                peers = nearest_stocks(features, mask, self.config.peer_knn)[:2]  # from the raw features
        if self.training and self.config.feature_dropout > 0:
            dropped = torch.rand(features.shape, device=features.device) < self.config.feature_dropout
            features = features.masked_fill(dropped, schema.MISSING)
        x = self.drop(self.embed(features))  # (E, N, D)
        if peers is not None:
            x = x + self.peer_proj(_peer_mean(x, *peers))
        for block in self.blocks:
            if self.config.checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, graph, regime, cross, use_reentrant=False)
            else:
                x = block(x, graph, regime, cross)
        scores = self.head(self.ln_f(x)).float()  # (E, N, n_outputs)
        return scores.masked_fill(~mask[..., None], 0.0)

    def _check_inputs(self, features: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        n_features = self.config.n_features
        if features.dim() != 3 or features.shape[2] != n_features:
            raise ValueError(f"features: expected (E, N, {n_features}), got {tuple(features.shape)}")
        if mask.shape != features.shape[:2]:
            raise ValueError(f"mask: expected {tuple(features.shape[:2])}, got {tuple(mask.shape)}")
        if features.dtype.is_floating_point or features.dtype == torch.bool:
            raise ValueError(f"features: expected int8 or int64 codes, got {features.dtype}")
        mask = mask.bool()
        if features.numel() and mask.any():

            def out_of_range(x: Tensor) -> bool:
                lo, hi = x.aminmax()
                return bool(lo < schema.MISSING or hi > schema.FEATURE_MAX)

            # The cheap pass over everything first; padding may hold anything, so only the real
            # stocks' values can be an error.
            if out_of_range(features) and out_of_range(features[mask]):
                lo, hi = features[mask].aminmax()
                raise ValueError(
                    f"features: values must be {schema.FEATURE_MIN}..{schema.FEATURE_MAX} or MISSING "
                    f"({schema.MISSING}); found {int(lo)}..{int(hi)}"
                )
        # Padding rows become MISSING: valid indices, and nothing of theirs can leak anywhere.
        features = features.to(torch.int8)
        if not mask.all():
            features = features.masked_fill(~mask[..., None], schema.MISSING)
        return features, mask

    def _regime(self, context: Tensor | None, n_eras: int) -> Tensor | None:
        if self.temporal is None:
            return None  # the temporal encoder is off: context is ignored
        K, n_features = self.config.temporal_lags, self.config.n_features
        shape = None if context is None else tuple(context.shape)
        if shape is None or len(shape) != 3 or shape[::2] != (n_eras, n_features) or not 1 <= shape[1] <= K:
            raise ValueError(
                f"context: the model has temporal_lags={K}, so it needs the feature returns of the last "
                f"resolved eras, shaped ({n_eras}, 1..{K}, {n_features}); got {shape} "
                "(or build the model with temporal_lags=0)"
            )
        return self.temporal(context.float())

    @property
    def graph_key(self) -> tuple:
        """What the stock graph depends on besides the inputs: models with equal keys can share one."""
        cfg = self.config
        return (cfg.similarity_prior, cfg.n_layers == 0, cfg.inducing_points > 0, cfg.knn)

    @torch.no_grad()
    def stock_graph(self, features: Tensor, mask: Tensor) -> StockGraph:
        """The era's stock graph (the similarity prior), built once and passed to `forward(graph=)`
        of every model with the same `graph_key`: at 6,900 stocks it is half of a fold's inference."""
        return self._stock_graph(*self._check_inputs(features, mask))

    def _stock_graph(self, features: Tensor, mask: Tensor) -> StockGraph:
        cfg, graph = self.config, StockGraph(mask)
        if cfg.similarity_prior == "none" or cfg.n_layers == 0:
            return graph
        if cfg.inducing_points > 0:
            graph.neighbours, graph.neighbour_ok, graph.neighbour_sim = nearest_stocks(
                features, mask, cfg.knn
            )
        elif cfg.similarity_prior == "bias":
            graph.sim = stock_similarity(features, mask)[:, None]  # (E, 1, N, N): broadcast over heads
            if not graph.key_ok.all():
                key_bias = torch.zeros(mask.shape, device=mask.device).masked_fill(~graph.key_ok, -math.inf)
                graph.key_bias = key_bias[:, None, None, :]  # (E, 1, 1, N)
        else:
            graph.attn_mask = knn_mask(features, mask, cfg.knn)[:, None]  # (E, 1, N, N) bool
        return graph

    @torch.no_grad()
    def attention_maps(
        self, features: Tensor, mask: Tensor, context: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Attention weights of the last layer, for plots (eval mode, math path: small eras only).

        "cross_stock" (E, H, N, N): who each stock reads (through the inducing points: the two
        stages composed, with the write stage averaged over heads; the k-NN message is left out);
        "temporal" (E, H, K): the real stocks' mean attention over the regime tokens;
        "temporal_encoder" (E, H, K, K).
        """
        was_training = self.training
        self.eval()
        recorders = [m for m in self.modules() if isinstance(m, Attention)]
        for m in recorders:
            m.record, m.weights = True, None
        try:
            self(features, mask, context)
        finally:
            for m in recorders:
                m.record = False
            self.train(was_training)
        maps: dict[str, Tensor] = {}
        real = mask.bool().float()
        if self.blocks:
            last = self.blocks[-1]
            E, N = real.shape
            if not self.config.cross_stock:  # the per-row model: every stock reads itself only
                cross = torch.eye(N, device=real.device).expand(E, self.config.n_heads, N, N)
            elif isinstance(last.mix, InducedStockAttention):
                cross = last.mix.read.weights @ last.mix.write.weights.mean(1, keepdim=True)
            else:
                cross = last.mix.attn.weights
            maps["cross_stock"] = cross * real[:, None, :, None] * real[:, None, None, :]
            if last.regime is not None:
                per_stock = last.regime.weights * real[:, None, :, None]  # (E, H, N, K)
                maps["temporal"] = per_stock.sum(2) / real.sum(1).clamp_min(1)[:, None, None]
        if self.temporal is not None:
            maps["temporal_encoder"] = self.temporal.blocks[-1].attn.weights
        for m in recorders:
            m.weights = None
        return maps

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _peer_mean(x: Tensor, neighbours: Tensor, ok: Tensor) -> Tensor:
    """Mean of each stock's neighbours' rows of x: x (E, N, D), neighbours / ok (E, N, k) -> (E, N, D).

    As one (N, N) @ (N, D) product per era with the k weights of each row scattered in: a gather
    of (E, N, k, D) rows and its backward cost 6x more at N = 2,200, k = 100.
    """
    E, N, _ = x.shape
    weights = ok.to(x.dtype) / ok.sum(-1, keepdim=True).clamp_min(1).to(x.dtype)  # (E, N, k)
    dense = torch.zeros(E, N, N, dtype=x.dtype, device=x.device).scatter_add_(2, neighbours, weights)
    return dense @ x

"""Building blocks of the era transformer: feature embedding, stock similarity, attention.

Shapes: E eras, N stocks per era (padded), F features, D model width, H heads, K lags,
M inducing points, k neighbours.

CPU attention goes through `scaled_dot_product_attention` with attention-dropout 0 and masks that
do not require grad: that keeps the fused (flash) kernel, O(N) memory per query block. A mask
that requires grad, or dropout_p > 0, silently switches to the math path: N x N logits per head,
about 5x the time and +1.2 GB per layer for one 5,000-stock era.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_core import schema

N_VALUES = schema.N_FEATURE_VALUES + 1  # 0..4 and MISSING, each with its own embedding row


# ----------------------------------------------------------------------------- feature embedding


class _BagSum(torch.autograd.Function):
    """Sum of table rows per stock, with a CPU backward that groups cells by table row.

    torch's own embedding_bag backward on CPU sorts the N*F cell indices (~1.2 s for 5,000 x 2,748);
    here a stable radix argsort of the int8 values per feature (numpy, ~0.1 s) orders the cells by
    table row, and one more embedding_bag over the incoming gradient sums each row's bag.
    """

    @staticmethod
    def forward(ctx, index: Tensor, values: Tensor, weight: Tensor) -> Tensor:
        # index (B, F) int32 table rows; values (B, F) int8 (the same cells, for the sort); weight (F*V, D)
        ctx.save_for_backward(index, values)
        ctx.n_rows = weight.shape[0]
        return F.embedding_bag(index, weight, mode="sum")  # (B, D)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:
        index, values = ctx.saved_tensors
        n_stocks = values.shape[0]
        # Within each feature, stocks sorted by value: the flat order runs over table rows f*V + v.
        order = np.argsort(values.T.numpy(), axis=1, kind="stable")  # (F, B) int64
        rows = torch.from_numpy(order).view(-1)
        counts = torch.bincount(index.view(-1), minlength=ctx.n_rows)  # cells per table row
        offsets = torch.cumsum(counts, 0) - counts
        grad_weight = F.embedding_bag(rows, grad.float().reshape(n_stocks, -1), offsets, mode="sum")
        return None, None, grad_weight


class FeatureEmbedding(nn.Module):
    """One learned vector per (feature, value) pair, MISSING its own value, summed over features.

    A gather-sum (EmbeddingBag), so 2,748 features cost N*F*D adds and no (N, F, D) tensor. Scaled
    by 1/sqrt(F) so the sum has unit scale whatever the feature set.
    """

    def __init__(self, n_features: int, d_model: int):
        super().__init__()
        self.n_features = n_features
        self.weight = nn.Parameter(torch.randn(n_features * N_VALUES, d_model))
        offsets = torch.arange(n_features, dtype=torch.int32) * N_VALUES - schema.MISSING
        self.register_buffer("offsets", offsets, persistent=False)  # (F,) MISSING -> row f*V

    def forward(self, features: Tensor) -> Tensor:
        # features (E, N, F) int8 in MISSING..4 -> (E, N, D) float32
        E, N, n_features = features.shape
        flat = features.reshape(E * N, n_features)
        index = flat + self.offsets  # (E*N, F) int32 (type promotion: one pass)
        with torch.autocast(features.device.type, enabled=False):  # sum 2,748 terms in fp32
            if features.device.type == "cpu" and torch.is_grad_enabled() and self.weight.requires_grad:
                out = _BagSum.apply(index, flat, self.weight)
            else:
                out = F.embedding_bag(index, self.weight, mode="sum")
        return (out / math.sqrt(n_features)).view(E, N, -1)


# ----------------------------------------------------------------------------- stock similarity
#
# The prior is the explicit graph of L2GMOM: cosine similarity of the stocks' raw feature rows,
# centred by the era's feature means, within the era, no targets (DESIGN.md section 6 measured that
# the mean features of the most similar stocks carry a peer effect). Rows are z-scored over the
# other real stocks: raw cosines shrink with the number of features (~1/sqrt(F) between unrelated
# stocks), so a logit bias on them would need a scale that depends on the feature set.
# Computed in row blocks, without grad and outside autocast; padding never enters a mean.

SIM_BLOCK = 1024  # rows per block: (block, N) temporaries instead of (N, N) ones


def _int_dot(a: Tensor, bt: Tensor) -> Tensor:
    # (R, F) @ (F, N) of int8 values -2..2 -> float32, exact: sums of a few thousand products of
    # small integers are exact in fp32 (and tf32). Not torch._int_mm: 3.5x faster than fp32 on a
    # CPU with VNNI, but 46x slower on one without (AVX2 only, as our 2-core machines are).
    return a.float() @ bt.float()


def _similarity_blocks(features: Tensor, mask: Tensor):
    """Yields (start, z) with z (R, N) float32 z-scored similarities of rows start..start+R of one era.

    features (N, F) int8 (MISSING counts as the neutral 2), mask (N,) bool. Self and padding get 0.
    """
    N = features.shape[0]
    # Shift to -2..2 (MISSING and padding -> 0): small exact integers for an int8 GEMM.
    x = torch.where((features == schema.MISSING) | ~mask[:, None], 0, features - 2).to(torch.int8)
    xt = x.T.contiguous()  # (F, N)
    xf = x.float()
    mu = xf.sum(0) / mask.sum().clamp_min(1)  # (F,) era means over the real stocks
    a = xf @ mu  # (N,) x_i . mu
    mu2 = mu @ mu
    norm2 = xf.square().sum(1) - 2 * a + mu2  # (N,) |x_i - mu|^2
    inv = norm2.clamp_min(1e-6).rsqrt() * mask  # 0 on padding
    del xf
    padded = not bool(mask.all())
    n_other = (mask.sum() - 1).clamp_min(1).float()
    for start in range(0, N, SIM_BLOCK):
        rows = slice(start, min(N, start + SIM_BLOCK))
        # (x_i - mu) . (x_j - mu) / |x_j - mu|: the cosine up to a factor per row, which the row's
        # z-score removes anyway. Padding columns -> 0 (inv_j = 0), so they drop out of the sums.
        c = _int_dot(x[rows], xt)  # (R, N) x_i . x_j
        c.sub_(a[None, :]).add_((mu2 - a[rows])[:, None]).mul_(inv[None, :])
        c.diagonal(offset=start).zero_()  # self is not a peer (it is in the residual stream)
        mean = c.sum(1, keepdim=True) / n_other  # over the other real stocks
        var = torch.linalg.vector_norm(c, dim=1, keepdim=True).square() / n_other - mean.square()
        c.sub_(mean).div_(var.clamp_min(0).sqrt().clamp_min(1e-6))
        c.diagonal(offset=start).zero_()
        if padded:
            c.mul_(mask[None, :]).mul_(mask[rows, None])
        yield start, c


def _graph_input(fn):
    # The graph is data, not a function of the weights: no grad, float32 even under autocast.
    @functools.wraps(fn)
    def wrapped(features: Tensor, mask: Tensor, *args, **kwargs):
        with torch.no_grad(), torch.autocast(features.device.type, enabled=False):
            return fn(features, mask, *args, **kwargs)

    return wrapped


def _top_similar(z: Tensor, mask: Tensor, start: int, k: int):
    # z (R, N) block of one era -> topk over the other real stocks (values -inf where none is left)
    z = z.masked_fill(~mask[None, :], -math.inf)
    z.diagonal(offset=start).fill_(-math.inf)
    return z.topk(k, dim=1)


@_graph_input
def stock_similarity(features: Tensor, mask: Tensor) -> Tensor:
    """(E, N, F) int8, (E, N) bool -> (E, N, N) float32 z-scored similarity; 0 for self and padding."""
    E, N, _ = features.shape
    out = torch.zeros(E, N, N, device=features.device)
    for e in range(E):
        for start, z in _similarity_blocks(features[e], mask[e]):
            out[e, start : start + z.shape[0]] = z
    return out


@_graph_input
def knn_mask(features: Tensor, mask: Tensor, k: int) -> Tensor:
    """(E, N, N) bool: each stock's k most similar real stocks, plus itself (padding: itself only)."""
    E, N, _ = features.shape
    out = torch.zeros(E, N, N, dtype=torch.bool, device=features.device)
    for e in range(E):
        for start, z in _similarity_blocks(features[e], mask[e]):
            top = _top_similar(z, mask[e], start, max(1, min(k, N - 1)))
            out[e, start : start + z.shape[0]].scatter_(1, top.indices, True)
    # In eras with fewer than k + 1 real stocks topk also picks padding or self: dropped here.
    out &= mask[:, :, None] & mask[:, None, :]
    return out | torch.eye(N, dtype=torch.bool, device=features.device)


@_graph_input
def nearest_stocks(features: Tensor, mask: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """The k most similar real stocks of every stock, for the sparse message of the ISAB variant.

    Returns neighbours (E, N, k) long, ok (E, N, k) bool, z-scored similarity (E, N, k) float32.
    """
    E, N, _ = features.shape
    k = max(1, min(k, N - 1))
    index = torch.zeros(E, N, k, dtype=torch.long, device=features.device)
    value = torch.full((E, N, k), -math.inf, device=features.device)
    for e in range(E):
        for start, z in _similarity_blocks(features[e], mask[e]):
            rows = slice(start, start + z.shape[0])
            value[e, rows], index[e, rows] = _top_similar(z, mask[e], start, k)  # (values, indices)
    ok = torch.isfinite(value) & mask[:, :, None]
    return index.masked_fill(~ok, 0), ok, value.masked_fill(~ok, 0.0)


# ----------------------------------------------------------------------------- attention


def _prior_bias(sim: Tensor, scale: Tensor, key_bias: Tensor | None) -> Tensor:
    # sim (E, 1, N, N) * scale + key_bias (E, 1, 1, N) in one pass over N x N
    return sim * scale if key_bias is None else torch.addcmul(key_bias, sim, scale)


class _PriorScaleGrad(torch.autograd.Function):
    """Identity on the attention output; its backward gives the prior's scale its gradient.

    The fused CPU kernel has no gradient for attn_mask, and a mask that requires grad falls back
    to the math path. So the mask is built from a detached scale and the scale's gradient,
    sum(grad_out * d out / d scale), is taken by a central difference of two forward-only fused
    calls in fp32 (error O(eps^2), checked against autograd on the math path in the tests).
    """

    EPS = 1e-2

    @staticmethod
    def forward(ctx, out, scale, q, k, v, sim, key_bias):
        ctx.save_for_backward(scale, q, k, v, sim, key_bias)
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad_out):
        scale, q, k, v, sim, key_bias = ctx.saved_tensors
        grad_scale = None
        if ctx.needs_input_grad[1]:
            eps = _PriorScaleGrad.EPS
            with torch.no_grad(), torch.autocast(q.device.type, enabled=False):
                qf, kf, vf = q.float(), k.float(), v.float()

                def attend(s: Tensor) -> Tensor:
                    return F.scaled_dot_product_attention(qf, kf, vf, attn_mask=_prior_bias(sim, s, key_bias))

                grad_scale = (grad_out.float() * (attend(scale + eps) - attend(scale - eps))).sum() / (
                    2 * eps
                )
        return grad_out, grad_scale, None, None, None, None, None


def _heads(x: Tensor, n_heads: int) -> Tensor:
    # (B, L, D) -> (B, H, L, D/H)
    B, L, D = x.shape
    return x.view(B, L, n_heads, D // n_heads).transpose(1, 2)


def _merge(x: Tensor) -> Tensor:
    # (B, H, L, D/H) -> (B, L, D)
    B, H, L, Dh = x.shape
    return x.transpose(1, 2).reshape(B, L, H * Dh)


def _explicit_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """The math path, for diagnostics only: returns the output and the (B, H, Lq, Lk) weights."""
    logits = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        logits = logits.masked_fill(~attn_mask, -math.inf)
    elif attn_mask is not None:
        logits = logits + attn_mask
    weights = logits.softmax(-1)
    return (weights @ v.float()).to(v.dtype), weights


class Attention(nn.Module):
    """Multi-head attention of x over y (self-attention when y is None); dropout-free for SDPA."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.record = False  # diagnostics: keep the last attention weights (math path)
        self.weights: Tensor | None = None

    def forward(self, x: Tensor, y: Tensor | None = None, attn_mask: Tensor | None = None) -> Tensor:
        # x (B, Lq, D), y (B, Lk, D); attn_mask bool (True = may attend) or float, broadcastable to
        # (B, H, Lq, Lk)
        k, v = self.kv(x if y is None else y).chunk(2, dim=-1)
        q, k, v = (_heads(t, self.n_heads) for t in (self.q(x), k, v))  # (B, H, L, Dh)
        if self.record:
            out, self.weights = _explicit_attention(q, k, v, attn_mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(_merge(out))  # (B, Lq, D)

    def single(self, x: Tensor) -> Tensor:
        """Each row attending to itself alone (softmax over one key = 1): proj(v(x))."""
        d = x.shape[-1]
        return self.proj(F.linear(x, self.kv.weight[d:], self.kv.bias[d:]))


class StockGraph:
    """Per-forward structure of the era's stocks, shared by every cross-sectional layer.

    key_ok (E, N): keys a stock may attend to (the real stocks; every row if an era has none, so
    no softmax row is empty). Full attention uses `mask` (bool) or `sim` + `key_bias` (bias prior);
    inducing-point attention uses `neighbours` / `neighbour_ok` / `neighbour_sim` (sparse k-NN).
    """

    def __init__(self, mask: Tensor):
        self.mask = mask  # (E, N) real stocks
        self.key_ok = mask | ~mask.any(1, keepdim=True)  # (E, N)
        self.attn_mask: Tensor | None = self.key_ok[:, None, None, :]  # (E, 1, 1, N) bool
        self.sim: Tensor | None = None  # (E, 1, N, N) float32 standardised similarity
        self.key_bias: Tensor | None = None  # (E, 1, 1, N) 0 / -inf; None when no stock is padding
        self.neighbours: Tensor | None = None  # (E, N, k) long
        self.neighbour_ok: Tensor | None = None  # (E, N, k) bool
        self.neighbour_sim: Tensor | None = None  # (E, N, k) float32


class StockAttention(nn.Module):
    """Self-attention across the stocks of an era, with the similarity prior on its logits.

    prior "bias": logits += scale * z-scored cosine similarity (scale learned, one per layer, shared
    by the heads so the N x N bias is broadcast, not copied). "knn": attention restricted to the k
    most similar stocks and self. "none": plain learned attention (it learned to ignore the other
    stocks in our experiment: DESIGN.md section 6).
    """

    def __init__(self, d_model: int, n_heads: int, prior: str, prior_scale: float = 1.0):
        super().__init__()
        self.attn = Attention(d_model, n_heads)
        self.prior = prior
        self.scale = nn.Parameter(torch.tensor(prior_scale)) if prior == "bias" else None

    def forward(self, x: Tensor, graph: StockGraph, cross_stock: bool = True) -> Tensor:
        # x (E, N, D) -> (E, N, D)
        if not cross_stock:
            return self.attn.single(x)
        if self.scale is None or graph.sim is None:
            return self.attn(x, attn_mask=graph.attn_mask)
        a = self.attn
        k, v = a.kv(x).chunk(2, dim=-1)
        q, k, v = (_heads(t, a.n_heads) for t in (a.q(x), k, v))  # (E, H, N, Dh)
        if a.record:  # math path: autograd reaches the scale directly (the tests' reference)
            out, a.weights = _explicit_attention(q, k, v, _prior_bias(graph.sim, self.scale, graph.key_bias))
        else:
            bias = _prior_bias(graph.sim, self.scale.detach(), graph.key_bias).to(q.dtype)  # (E, 1, N, N)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            out = _PriorScaleGrad.apply(
                out, self.scale, q.detach(), k.detach(), v.detach(), graph.sim, graph.key_bias
            )
        return a.proj(_merge(out))


class InducedStockAttention(nn.Module):
    """ISAB-style mixing for large eras: O(N*M) through M learned points, never N x N.

    The stocks write into M inducing points, then read them back. The similarity prior enters as a
    sparse message from each stock's k most similar stocks (softmax of scale * z-scored similarity
    over them for "bias", their plain mean for "knn"): an N x N bias would defeat the purpose.
    """

    def __init__(self, d_model: int, n_heads: int, n_points: int, prior: str, prior_scale: float = 1.0):
        super().__init__()
        self.points = nn.Parameter(torch.randn(n_points, d_model) / math.sqrt(d_model))  # (M, D)
        self.write = Attention(d_model, n_heads)
        self.ln_points = nn.LayerNorm(d_model)
        self.read = Attention(d_model, n_heads)
        self.prior = prior
        if prior != "none":
            self.message = nn.Linear(d_model, d_model)
            self.message_proj = nn.Linear(d_model, d_model)
        self.scale = nn.Parameter(torch.tensor(prior_scale)) if prior == "bias" else None

    def forward(self, x: Tensor, graph: StockGraph, cross_stock: bool = True) -> Tensor:
        # x (E, N, D) -> (E, N, D)
        E, N, D = x.shape
        if not cross_stock:  # each stock as its own era of one: the same module on (E*N, 1, D)
            return self._induce(x.reshape(E * N, 1, D), None).view(E, N, D)
        out = self._induce(x, graph.key_ok[:, None, None, :])
        if self.prior != "none" and graph.neighbours is not None:
            out = out + self._neighbour_message(x, graph)
        return out

    def _induce(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        points = self.points.expand(x.shape[0], -1, -1)  # (E, M, D)
        summary = self.ln_points(points + self.write(points, x, attn_mask))  # (E, M, D)
        return self.read(x, summary)  # (E, N, D)

    def _neighbour_message(self, x: Tensor, graph: StockGraph) -> Tensor:
        E, N, D = x.shape
        k = graph.neighbours.shape[2]
        v = self.message(x)  # (E, N, D)
        gathered = v.gather(1, graph.neighbours.reshape(E, N * k, 1).expand(-1, -1, D)).view(E, N, k, D)
        ok = graph.neighbour_ok  # (E, N, k)
        logits = graph.neighbour_sim * (self.scale if self.scale is not None else 0.0)  # "knn": plain mean
        # A stock without neighbours (padding, an era of one) gets no message, and no NaN from an
        # all -inf softmax row: its row stays finite and is zeroed by `* ok`.
        weights = logits.masked_fill(~ok & ok.any(-1, keepdim=True), -math.inf).softmax(-1) * ok
        return self.message_proj((weights.unsqueeze(-1).to(gathered.dtype) * gathered).sum(2))

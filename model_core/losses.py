"""Training losses over eras: per-era Pearson (the default), MSE, negative Sharpe, weighted mixes.

Every loss takes scores, targets and mask shaped (E, N), or (E, N, T) for one score per target
(scores (E, N, 1) against targets (E, N) is fine too). Padding stocks (mask False) and NaN targets
are left out, per era and target; each loss is computed per era, averaged over the eras where it
is defined, then over the targets that have any. All reductions are in float32 whatever the
autocast dtype of the scores: a bf16 sum over 5,000 stocks keeps 3 significant digits.

Undefined cases are rules, not errors: an era needs 2 valid rows and a target that varies to have
a correlation, 1 valid row for MSE; a batch where nothing is defined gives a zero loss (still
connected to the graph, zero gradient) so one degenerate batch does not stop a training loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

# The names, the config and its parser need no torch (settings validate a loss at load with them).
from model_core.loss_spec import LossConfig, parse_loss

VAR_EPS = 1e-12  # floor of a sum of squared deviations, so constant scores give corr 0, not NaN
SHARPE_EPS = 1e-3  # added to the std of the per-era correlations (they are ~0.01-0.05 apart)

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def _prepare(scores: Tensor, targets: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    # -> scores, targets (E, N, T) float32 with 0 outside `valid`, valid (E, N, T) bool
    if scores.dim() == 3 and targets.dim() == 2 and scores.shape[2] == 1:
        scores = scores[..., 0]
    if scores.shape != targets.shape or scores.dim() not in (2, 3):
        raise ValueError(
            f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)}: expected (E, N[, T]) both"
        )
    if mask.shape != scores.shape[:2]:
        raise ValueError(f"mask {tuple(mask.shape)}: expected (E, N) = {tuple(scores.shape[:2])}")
    s, t = scores.float(), targets.float()
    if s.dim() == 2:
        s, t = s[..., None], t[..., None]
    valid = mask.bool()[..., None] & ~torch.isnan(t)
    return torch.where(valid, s, 0.0), torch.where(valid, t, 0.0), valid


def _pearson(s: Tensor, t: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    # (E, N, T) -> correlation (E, T), finite everywhere (safe to backprop), and where it is defined
    n = valid.sum(1)  # (E, T)
    s_c = torch.where(valid, s - s.sum(1, keepdim=True) / n.clamp_min(1)[:, None], 0.0)
    t_c = torch.where(valid, t - t.sum(1, keepdim=True) / n.clamp_min(1)[:, None], 0.0)
    var_s, var_t = s_c.square().sum(1), t_c.square().sum(1)
    corr = (s_c * t_c).sum(1) * torch.rsqrt(var_s.clamp_min(VAR_EPS) * var_t.clamp_min(VAR_EPS))
    return corr, (n >= 2) & (var_t > VAR_EPS)


def _average(per_era: Tensor, defined: Tensor) -> Tensor:
    # (E, T) -> scalar: mean over defined eras per target, then over targets with any defined era
    count = defined.sum(0)  # (T,)
    per_target = torch.where(defined, per_era, 0.0).sum(0) / count.clamp_min(1)
    has = count > 0
    if not has.any():
        return per_era.sum() * 0.0
    return per_target[has].mean()


def _drop_target_axis(x: Tensor, targets: Tensor) -> Tensor:
    # (E, T) -> (E,) when the inputs had no target axis
    return x[:, 0] if targets.dim() == 2 else x


def pearson_per_era(scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Pearson correlation of scores and targets within each era: (E,) or (E, T); NaN where undefined."""
    corr, defined = _pearson(*_prepare(scores, targets, mask))
    return _drop_target_axis(corr.masked_fill(~defined, math.nan), targets)


def pearson_loss(scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Minus the mean over eras of the per-era Pearson correlation (the default loss)."""
    corr, defined = _pearson(*_prepare(scores, targets, mask))
    return -_average(corr, defined)


def mse_loss(scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over each era's valid rows, averaged over eras (small eras weigh as much)."""
    s, t, valid = _prepare(scores, targets, mask)
    n = valid.sum(1)  # (E, T)
    per_era = (s - t).square().sum(1) / n.clamp_min(1)
    return _average(per_era, n >= 1)


def sharpe_loss(scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Minus mean / (std + SHARPE_EPS) of the per-era correlations; std with ddof=1 (as pandas).

    A Sharpe needs 2 eras: for a target with a single defined era in the batch the loss falls back
    to minus that era's correlation (= pearson_loss), so a one-era batch still trains. Batches of
    several eras are what make this loss differ from pearson_loss.
    """
    corr, defined = _pearson(*_prepare(scores, targets, mask))
    count = defined.sum(0)  # (T,)
    c = torch.where(defined, corr, 0.0)
    mean = c.sum(0) / count.clamp_min(1)
    var = torch.where(defined, corr - mean, 0.0).square().sum(0) / (count - 1).clamp_min(1)
    sharpe = mean / ((var + VAR_EPS).sqrt() + SHARPE_EPS)
    per_target = torch.where(count >= 2, sharpe, mean)
    has = count > 0
    if not has.any():
        return corr.sum() * 0.0
    return -per_target[has].mean()


LOSSES: dict[str, LossFn] = {"pearson": pearson_loss, "mse": mse_loss, "sharpe": sharpe_loss}


class WeightedLoss:
    """sum(weight * loss(scores, targets, mask)) over the config's losses."""

    def __init__(self, config: LossConfig):
        self.config = config
        self.parts = [(LOSSES[name], float(w)) for name, w in config.weights.items()]

    def __call__(self, scores: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        total = None
        for fn, weight in self.parts:
            term = weight * fn(scores, targets, mask)
            total = term if total is None else total + term
        return total

    def __repr__(self) -> str:
        return f"WeightedLoss({self.config.weights})"


def make_loss(name_or_config: str | LossConfig) -> WeightedLoss:
    """The loss function (scores, targets, mask) -> scalar for a name, a "mix:..." spec or a config."""
    config = name_or_config if isinstance(name_or_config, LossConfig) else parse_loss(name_or_config)
    return WeightedLoss(config)

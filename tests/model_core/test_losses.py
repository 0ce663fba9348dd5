import math

import numpy as np
import pytest
import torch

from model_core.losses import (
    SHARPE_EPS,
    LossConfig,
    make_loss,
    mse_loss,
    pearson_loss,
    pearson_per_era,
    sharpe_loss,
)


def hand_made(seed: int = 0, n_eras: int = 4, n_stocks: int = 12, n_targets: int | None = None):
    """Eras with padding (mask False), NaN targets and junk scores on the padding rows."""
    rng = np.random.default_rng(seed)
    shape = (n_eras, n_stocks) if n_targets is None else (n_eras, n_stocks, n_targets)
    scores = rng.standard_normal(shape)
    targets = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=shape)
    mask = np.ones((n_eras, n_stocks), dtype=bool)
    mask[1, 8:] = False
    mask[2, 5:] = False
    targets[0, :3] = np.nan
    targets[3, 10] = np.nan
    scores[~mask] = 1e6  # padding may hold anything
    return scores, targets, mask


def valid_rows(scores, targets, mask, era, target=None):
    s, t = (
        (scores[era], targets[era]) if target is None else (scores[era, :, target], targets[era, :, target])
    )
    keep = mask[era] & ~np.isnan(t)
    return s[keep], t[keep]


def numpy_corrs(scores, targets, mask, target=None):
    out = []
    for era in range(len(mask)):
        s, t = valid_rows(scores, targets, mask, era, target)
        out.append(np.corrcoef(s, t)[0, 1] if len(t) >= 2 and t.std() > 0 else np.nan)
    return np.array(out)


def as_tensors(*arrays):
    return [torch.tensor(a) for a in arrays]


def test_pearson_per_era_is_np_corrcoef_on_the_valid_rows():
    scores, targets, mask = hand_made()
    corrs = pearson_per_era(*as_tensors(scores, targets, mask))
    assert corrs.dtype == torch.float32 and corrs.shape == (4,)
    np.testing.assert_allclose(corrs.numpy(), numpy_corrs(scores, targets, mask), rtol=1e-5, atol=1e-6)
    loss = pearson_loss(*as_tensors(scores, targets, mask))
    assert math.isclose(loss.item(), -numpy_corrs(scores, targets, mask).mean(), rel_tol=1e-5)


def test_undefined_eras_are_left_out():
    scores, targets, mask = hand_made()
    targets[1] = 0.5  # constant target: no correlation
    mask[2, 1:] = False  # one valid row
    corrs = pearson_per_era(*as_tensors(scores, targets, mask)).numpy()
    assert np.isnan(corrs[1]) and np.isnan(corrs[2])
    expected = numpy_corrs(scores, targets, mask)[[0, 3]].mean()
    assert math.isclose(pearson_loss(*as_tensors(scores, targets, mask)).item(), -expected, rel_tol=1e-5)


def test_mse_is_per_era_then_averaged():
    scores, targets, mask = hand_made(1)
    expected = np.mean(
        [np.mean((s - t) ** 2) for s, t in (valid_rows(scores, targets, mask, e) for e in range(4))]
    )
    assert math.isclose(mse_loss(*as_tensors(scores, targets, mask)).item(), expected, rel_tol=1e-5)


def test_sharpe_is_mean_over_std_of_the_era_correlations():
    scores, targets, mask = hand_made(2, n_eras=6)
    corrs = numpy_corrs(scores, targets, mask)
    expected = -corrs.mean() / (corrs.std(ddof=1) + SHARPE_EPS)
    assert math.isclose(sharpe_loss(*as_tensors(scores, targets, mask)).item(), expected, rel_tol=1e-4)


def test_sharpe_of_a_single_era_falls_back_to_pearson():
    scores, targets, mask = hand_made(3)
    args = as_tensors(scores[:1], targets[:1], mask[:1])
    assert math.isclose(sharpe_loss(*args).item(), pearson_loss(*args).item(), rel_tol=1e-6)
    targets[1:] = np.nan  # several eras, only one defined: the same rule
    args = as_tensors(scores, targets, mask)
    assert math.isclose(sharpe_loss(*args).item(), pearson_loss(*args).item(), rel_tol=1e-6)


def test_several_targets_average_over_the_targets_that_have_values():
    scores, targets, mask = hand_made(4, n_targets=3)
    targets[..., 2] = np.nan  # an aux target with no value in this batch
    corrs = pearson_per_era(*as_tensors(scores, targets, mask))
    assert corrs.shape == (4, 3) and torch.isnan(corrs[:, 2]).all()
    per_target = [numpy_corrs(scores, targets, mask, t) for t in range(2)]
    np.testing.assert_allclose(corrs[:, :2].numpy().T, per_target, rtol=1e-5, atol=1e-6)
    expected = -np.mean([c.mean() for c in per_target])
    assert math.isclose(pearson_loss(*as_tensors(scores, targets, mask)).item(), expected, rel_tol=1e-5)
    mse = np.mean(
        [
            np.mean(
                [
                    np.mean((s - t) ** 2)
                    for s, t in (valid_rows(scores, targets, mask, e, k) for e in range(4))
                ]
            )
            for k in range(2)
        ]
    )
    assert math.isclose(mse_loss(*as_tensors(scores, targets, mask)).item(), mse, rel_tol=1e-5)


def test_losses_reduce_in_fp32_and_backprop_finite_grads():
    scores, targets, mask = hand_made(5)
    scores[~mask] = 0.0
    s = torch.tensor(scores, dtype=torch.bfloat16, requires_grad=True)
    t, m = torch.tensor(targets), torch.tensor(mask)
    for name in ("pearson", "mse", "sharpe", "mix:pearson=0.5,sharpe=0.5"):
        loss = make_loss(name)(s[..., None], t, m)  # (E, N, 1) scores against (E, N) targets
        assert loss.dtype == torch.float32
        (grad,) = torch.autograd.grad(loss, s)
        assert torch.isfinite(grad).all() and (grad[~m] == 0).all()
    constant = torch.zeros(4, 12, requires_grad=True)  # e.g. a model at init: corr 0, grads finite
    loss = pearson_loss(constant, t, m)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(constant.grad).all()


def test_nothing_defined_gives_a_zero_loss_with_a_graph():
    scores = torch.randn(2, 5, requires_grad=True)
    targets = torch.full((2, 5), float("nan"))
    for fn in (pearson_loss, mse_loss, sharpe_loss):
        loss = fn(scores, targets, torch.ones(2, 5, dtype=torch.bool))
        loss.backward()
        assert loss.item() == 0.0 and (scores.grad == 0).all()


def test_make_loss_parses_names_and_mixes():
    scores, targets, mask = as_tensors(*hand_made(6))
    pearson = pearson_loss(scores, targets, mask)
    mse = mse_loss(scores, targets, mask)
    assert make_loss("pearson")(scores, targets, mask) == pearson
    mixed = make_loss("mix:pearson=0.7, mse=0.3")(scores, targets, mask)
    assert math.isclose(mixed.item(), 0.7 * pearson.item() + 0.3 * mse.item(), rel_tol=1e-6)
    assert make_loss(LossConfig({"sharpe": 2.0}))(scores, targets, mask) == 2.0 * sharpe_loss(
        scores, targets, mask
    )
    assert LossConfig().weights == {"pearson": 1.0}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("huber", "unknown loss 'huber'; choose from pearson, mse, sharpe"),
        ("mix:pearson=0.7,huber=0.3", "bad term 'huber=0.3'"),
        ("mix:pearson", "bad term 'pearson'"),
        ("mix:pearson=abc", "bad term"),
        ("mix:pearson=1,pearson=2", "each name once"),
        ("mix:pearson=inf", "bad term"),
    ],
)
def test_make_loss_errors_name_the_choices(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make_loss(spec)


def test_loss_config_validates_names_and_shapes_are_checked():
    with pytest.raises(ValueError, match="unknown loss"):
        LossConfig({"pearsn": 1.0})
    with pytest.raises(ValueError, match="no loss"):
        LossConfig({})
    with pytest.raises(ValueError, match="mask"):
        pearson_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="targets"):
        pearson_loss(torch.zeros(2, 3, 2), torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool))

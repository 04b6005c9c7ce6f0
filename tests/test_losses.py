"""Every loss against PyTorch in float64 (value, input gradient, target gradient where
PyTorch has one; 1e-10), for every reduction, plus stability and the error rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import convprop as cp
import convprop.functional as F
from convprop import nn

TOL = 1e-10
REDUCTIONS = ["mean", "sum", "none"]


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def compare(loss, tloss, x: np.ndarray, target, grad_target: bool = False,
            tol: float = TOL) -> None:
    """Value and gradients of ``loss(x, target)`` against ``tloss`` (PyTorch)."""
    xc = cp.Tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    if grad_target:
        tc = cp.Tensor(target, requires_grad=True)
        tt = torch.tensor(target, requires_grad=True)
    else:
        tc, tt = target, torch.as_tensor(target)
    lc, lt = loss(xc, tc), tloss(xt, tt)
    assert lc.shape == tuple(lt.shape)
    assert lc.dtype == np.float64
    np.testing.assert_allclose(lc.data, lt.detach().numpy(), rtol=0, atol=tol)
    g = rand(*lc.shape, seed=7) if lc.ndim else np.array(1.3)
    lc.backward(g)
    lt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=0, atol=tol)
    if grad_target:
        np.testing.assert_allclose(tc.grad, tt.grad.numpy(), rtol=0, atol=tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_and_l1_match_torch(reduction: str) -> None:
    x, y = rand(4, 3, 2), rand(4, 3, 2, seed=1)
    y[0, 0, 0] = x[0, 0, 0]  # |x - y| at its kink
    compare(nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction), x, y, True)
    compare(nn.L1Loss(reduction=reduction), torch.nn.L1Loss(reduction=reduction), x, y, True)


def test_mse_sum_is_the_founding_documents_loss() -> None:
    o, y = rand(5), rand(5, seed=1)
    assert nn.MSELoss(reduction="sum")(o, y).item() == pytest.approx(np.sum((o - y) ** 2),
                                                                       rel=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2, 3), (5,)])
def test_cross_entropy_and_nll_match_torch(reduction: str, shape: tuple[int, ...]) -> None:
    x = rand(*shape) * 3
    c = shape[1] if len(shape) > 1 else shape[0]
    t_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    t = np.random.default_rng(2).integers(0, c, t_shape)
    weight = np.linspace(0.5, 2.0, c)
    for kwargs in (dict(), dict(weight=weight)):
        compare(nn.CrossEntropyLoss(reduction=reduction, **kwargs),
                torch.nn.CrossEntropyLoss(reduction=reduction,
                                          **{k: torch.tensor(v) for k, v in kwargs.items()}),
                x, t)
        logp = torch.log_softmax(torch.tensor(x), dim=1 if len(shape) > 1 else 0).numpy()
        compare(nn.NLLLoss(reduction=reduction, **kwargs),
                torch.nn.NLLLoss(reduction=reduction,
                                 **{k: torch.tensor(v) for k, v in kwargs.items()}),
                logp, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_ignore_index_matches_torch(reduction: str) -> None:
    x = rand(6, 4)
    t = np.array([0, 3, -100, 2, 1, 7])
    t[5] = 1
    t2 = np.array([0, 5, 5, 2, 1, 3])
    weight = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    compare(nn.CrossEntropyLoss(reduction=reduction),
            torch.nn.CrossEntropyLoss(reduction=reduction), x, t)
    compare(nn.CrossEntropyLoss(weight=weight.numpy(), ignore_index=5, reduction=reduction),
            torch.nn.CrossEntropyLoss(weight=weight, ignore_index=5, reduction=reduction), x, t2)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_mean_loss_with_every_target_ignored_has_zero_gradient_like_torch(name: str) -> None:
    # torch: the loss is 0/0 = nan but the input gradient is all zeros (not nan)
    x = rand(2, 3)
    t = np.array([-100, -100])
    xc = cp.Tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    lc = getattr(F, name)(xc, t)
    lt = getattr(torch.nn.functional, name)(xt, torch.tensor(t))
    assert np.isnan(lc.item()) and np.isnan(lt.item())
    lc.backward()
    lt.backward()
    np.testing.assert_array_equal(xc.grad, xt.grad.numpy())
    assert np.all(xc.grad == 0)


def test_cross_entropy_targets_may_be_tensors_and_logits_huge() -> None:
    x = np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]])
    t = np.array([2, 1])
    ref = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t)).item()
    for target in (t, cp.Tensor(t), t.tolist(), cp.Tensor(t.astype(np.float64))):
        loss = F.cross_entropy(x, target)
        assert np.isfinite(loss.item())
        assert loss.item() == pytest.approx(ref, rel=1e-14)


def test_cross_entropy_float32_stays_float32() -> None:
    x = cp.Tensor(rand(4, 3).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(x, np.array([0, 1, 2, 0]))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_torch(reduction: str) -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(0.01, 0.99, (5, 3))
    y = rng.uniform(0, 1, (5, 3))
    compare(nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction), p, y, True)
    w = rng.uniform(0.5, 2, (1, 3))
    compare(nn.BCELoss(weight=w, reduction=reduction),
            torch.nn.BCELoss(weight=torch.tensor(w), reduction=reduction), p, y, True)


def test_bce_keeps_the_input_dtype_with_a_float64_weight() -> None:
    # torch returns the input's dtype; a float64 weight must not promote the loss
    p = np.full((2, 3), 0.3, np.float32)
    y = np.ones((2, 3), np.float32)
    w = np.ones(3)
    for reduction in REDUCTIONS:
        xc = cp.Tensor(p, requires_grad=True)
        yc = cp.Tensor(y, requires_grad=True)
        loss = F.binary_cross_entropy(xc, yc, weight=w, reduction=reduction)
        ref = torch.nn.functional.binary_cross_entropy(
            torch.tensor(p), torch.tensor(y), weight=torch.tensor(w), reduction=reduction)
        assert loss.dtype == np.float32 and ref.dtype == torch.float32
        np.testing.assert_allclose(loss.data, ref.numpy(), rtol=1e-6)
        loss.sum().backward()
        assert xc.grad.dtype == np.float32 and yc.grad.dtype == np.float32


def test_bce_clamps_its_logs_like_torch() -> None:
    p = np.array([0.0, 1.0, 1e-300, 0.5])
    y = np.array([1.0, 0.0, 1.0, 0.5])
    compare(nn.BCELoss(reduction="none"), torch.nn.BCELoss(reduction="none"), p, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_matches_torch(reduction: str) -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(0, 4, (5, 3))
    z[0] = [800.0, -800.0, 0.0]  # stable at any magnitude
    y = rng.uniform(0, 1, (5, 3))
    compare(nn.BCEWithLogitsLoss(reduction=reduction),
            torch.nn.BCEWithLogitsLoss(reduction=reduction), z, y, True)
    w, pw = rng.uniform(0.5, 2, (5, 1)), rng.uniform(0.5, 3, (3,))
    compare(nn.BCEWithLogitsLoss(weight=w, pos_weight=pw, reduction=reduction),
            torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w), pos_weight=torch.tensor(pw),
                                       reduction=reduction), z, y, True)


def test_loss_reprs_match_torch() -> None:
    for name in ("MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
                 "BCEWithLogitsLoss"):
        assert repr(getattr(nn, name)()) == repr(getattr(torch.nn, name)())


# ------------------------------------------------------------------ errors
def test_cross_entropy_target_out_of_range_is_a_clear_error() -> None:
    x = cp.Tensor(rand(3, 4), requires_grad=True)
    with pytest.raises(IndexError, match=r"target 4 at position \(1,\).*4 classes"):
        F.cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="target -1"):
        nn.CrossEntropyLoss()(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"target 9 at position \(0, 1\)"):
        nn.NLLLoss()(rand(2, 3, 2), np.array([[0, 9], [1, 2]]))
    assert x.grad is None


def test_class_target_shape_and_type_errors() -> None:
    with pytest.raises(ValueError, match=r"shape \(3,\).*got \(3, 5\)"):
        F.cross_entropy(rand(3, 4), rand(3, 5))
    with pytest.raises(ValueError, match="integer class indices"):
        F.cross_entropy(rand(3, 4), np.array([0.5, 1.0, 2.0]))
    with pytest.raises(ValueError, match="weight must have shape"):
        F.cross_entropy(rand(3, 4), np.array([0, 1, 2]), weight=np.ones(3))


def test_elementwise_loss_errors() -> None:
    with pytest.raises(ValueError, match=r"input shape \(3, 1\) and target shape \(3,\)"):
        nn.MSELoss()(rand(3, 1), rand(3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.BCELoss()(np.array([0.5, 1.5]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="reduction"):
        nn.L1Loss(reduction="average")
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(rand(2), rand(2), reduction="avg")


def test_fused_losses_pass_finite_difference_checks() -> None:
    x = cp.Tensor(rand(4, 3, 2), requires_grad=True)
    t = np.array([[0, 2], [1, 1], [2, 0], [0, -100]])
    cp.gradcheck(lambda z: F.cross_entropy(z, t, weight=np.array([1.0, 2.0, 0.5])), x)
    cp.gradcheck(lambda z: F.nll_loss(z, t, reduction="sum"), x)
    y = cp.Tensor(np.random.default_rng(3).uniform(0, 1, (4, 3, 2)), requires_grad=True)
    cp.gradcheck(lambda z, w: F.binary_cross_entropy_with_logits(z, w, pos_weight=np.ones(2) * 2),
                 x, y)
    p = cp.Tensor(np.random.default_rng(4).uniform(0.1, 0.9, (4, 3, 2)), requires_grad=True)
    cp.gradcheck(lambda z, w: F.binary_cross_entropy(z, w), p, y)
    cp.gradcheck(lambda z, w: F.mse_loss(z, w, reduction="sum"), x, y)

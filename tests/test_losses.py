"""Every loss against PyTorch in float64 (value, input gradient, target gradient where
PyTorch has one; 1e-10), for every reduction, plus stability and the error rules."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import needs_torch, torch  # parity tests skip without it; the rest runs

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


@needs_torch
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


@needs_torch
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


@needs_torch
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


@needs_torch
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


@needs_torch
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


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_torch(reduction: str) -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(0.01, 0.99, (5, 3))
    y = rng.uniform(0, 1, (5, 3))
    compare(nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction), p, y, True)
    w = rng.uniform(0.5, 2, (1, 3))
    compare(nn.BCELoss(weight=w, reduction=reduction),
            torch.nn.BCELoss(weight=torch.tensor(w), reduction=reduction), p, y, True)


@needs_torch
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


@needs_torch
def test_bce_clamps_its_logs_like_torch() -> None:
    p = np.array([0.0, 1.0, 1e-300, 0.5])
    y = np.array([1.0, 0.0, 1.0, 0.5])
    compare(nn.BCELoss(reduction="none"), torch.nn.BCELoss(reduction="none"), p, y)


@needs_torch
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


@needs_torch
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


# ------------------------------------------------- the wider set of losses
def check(fc, ft, args: list, grads: list[bool], tol: float = TOL) -> None:
    """``fc(*args)`` against ``ft(*args)`` (float64): value, and the gradient of every
    argument marked in ``grads``; the others are passed as constants."""
    cargs, targs = [], []
    for a, g in zip(args, grads):
        if g:
            cargs.append(cp.Tensor(a, requires_grad=True))
            targs.append(torch.tensor(a, requires_grad=True))
        else:
            cargs.append(a)
            targs.append(torch.as_tensor(a))
    lc, lt = fc(*cargs), ft(*targs)
    assert lc.shape == tuple(lt.shape) and lc.dtype == np.float64
    np.testing.assert_allclose(lc.data, lt.detach().numpy(), rtol=0, atol=tol)
    g = rand(*lc.shape, seed=7) if lc.ndim else np.array(1.3)
    lc.backward(g)
    lt.backward(torch.tensor(g))
    for c, t, want in zip(cargs, targs, grads):
        if want:  # (a relative 1e-13 too, for the 1e9-sized gradients of a tiny variance)
            np.testing.assert_allclose(c.grad, t.grad.numpy(), rtol=1e-13, atol=tol)


def both(name: str, **kwargs):
    """The convprop and torch modules ``name(**kwargs)``; array kwargs become tensors."""
    tk = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    return getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**tk)


def signs(*shape: int, seed: int = 2) -> np.ndarray:
    return np.where(np.random.default_rng(seed).random(shape) < 0.5, -1.0, 1.0)


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_match_torch(reduction: str) -> None:
    x, y = rand(4, 3, 2), rand(4, 3, 2, seed=1) * 2
    y[0, 0, :] = x[0, 0, :] + [1.0, -0.5]  # at the edge of the quadratic zones
    for name, kw in (("SmoothL1Loss", {}), ("SmoothL1Loss", dict(beta=0.5)),
                     ("SmoothL1Loss", dict(beta=0.0)), ("HuberLoss", {}),
                     ("HuberLoss", dict(delta=0.5))):
        check(*both(name, reduction=reduction, **kw), [x, y], [True, True])
    w = np.abs(rand(4, 3, 2, seed=3))
    for name in ("mse_loss", "l1_loss"):
        check(lambda a, b, name=name: getattr(F, name)(a, b, reduction=reduction, weight=w),
              lambda a, b, name=name: getattr(torch.nn.functional, name)(
                  a, b, reduction=reduction, weight=torch.tensor(w)),
              [x, y], [True, True])
    check(lambda a, b: F.huber_loss(a, b, reduction, 0.7, weight=w),
          lambda a, b: torch.nn.functional.huber_loss(a, b, reduction, 0.7,
                                                      weight=torch.tensor(w)),
          [x, y], [True, True])


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
def test_kl_div_matches_torch(reduction: str) -> None:
    rng = np.random.default_rng(0)
    logq = np.log(rng.dirichlet(np.ones(5), 4))
    p = rng.dirichlet(np.ones(5), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(*both("KLDivLoss", reduction=reduction), [logq, p], [True, True])
        check(*both("KLDivLoss", reduction=reduction, log_target=True), [logq, np.log(p)],
              [True, True])
        p[0, 0] = 0.0  # 0 log 0 = 0 in the loss
        check(*both("KLDivLoss", reduction=reduction), [logq, p], [True, False])


def test_kl_div_batchmean_is_the_kl_divergence() -> None:
    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(np.ones(4), 3), rng.dirichlet(np.ones(4), 3)
    loss = F.kl_div(np.log(q), p, reduction="batchmean").item()
    assert loss == pytest.approx(np.mean(np.sum(p * np.log(p / q), axis=1)), rel=1e-13)
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(np.log(q), p)


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_poisson_and_gaussian_nll_match_torch(reduction: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (4, 3))
    counts = rng.poisson(3, (4, 3)).astype(np.float64)
    counts[0, :] = [0.0, 1.0, 2.0]
    for kw in ({}, dict(full=True), dict(log_input=False), dict(log_input=False, full=True,
                                                               eps=1e-3)):
        inp = x if kw.get("log_input", True) else np.abs(x) + 0.1
        check(*both("PoissonNLLLoss", reduction=reduction, **kw), [inp, counts], [True, True])
    mu, y = rand(4, 3), rand(4, 3, seed=1)
    for var in (np.abs(rand(4, 3, seed=2)) + 0.1, np.abs(rand(4, seed=2)) + 0.1,
                np.abs(rand(4, 1, seed=2)) + 0.1, np.abs(rand(1, 3, seed=2)),
                np.array([[1e-9, 0.5, 2.0]] * 4)):
        for kw in ({}, dict(full=True, eps=1e-3)):
            check(*both("GaussianNLLLoss", reduction=reduction, **kw), [mu, y, var],
                  [True, True, True])
    check(lambda a, b: F.gaussian_nll_loss(a, b, 0.5, reduction=reduction),
          lambda a, b: torch.nn.functional.gaussian_nll_loss(a, b, 0.5, reduction=reduction),
          [mu, y], [True, True])
    check(*both("GaussianNLLLoss", reduction=reduction), [mu, y[:1], np.ones((4, 3))],
          [True, True, True])


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_losses_match_torch(reduction: str) -> None:
    x = rand(4, 5)
    t = signs(4, 5)
    t[0, 0] = 0.0  # neither label: both terms, as torch
    x[1, 1], t[1, 1] = 1.0, -1.0  # exactly at the margin
    for kw in ({}, dict(margin=0.5)):
        check(*both("HingeEmbeddingLoss", reduction=reduction, **kw), [x, t], [True, False])
    check(*both("SoftMarginLoss", reduction=reduction), [x, signs(4, 5)], [True, False])
    x1, x2, y = rand(6), rand(6, seed=1), signs(6)
    for kw in ({}, dict(margin=0.3)):
        check(*both("MarginRankingLoss", reduction=reduction, **kw), [x1, x2, y],
              [True, True, True])
    check(*both("MarginRankingLoss", reduction=reduction), [rand(3, 1), rand(1, 4), signs(3, 4)],
          [True, True, True])
    a, b = rand(5, 4), rand(5, 4, seed=1)
    b[0] = 2 * a[0]
    for kw in ({}, dict(margin=0.2), dict(margin=-0.5)):
        check(*both("CosineEmbeddingLoss", reduction=reduction, **kw), [a, b, signs(5)],
              [True, True, False])
    check(*both("CosineEmbeddingLoss", reduction=reduction), [a[0], b[1], np.array(-1.0)],
          [True, True, False])


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multiclass_margin_losses_match_torch(reduction: str) -> None:
    x = rand(5, 4)
    t = np.array([0, 3, 1, 1, 2])
    w = np.array([0.5, 1.0, 2.0, 1.5])
    for kw in ({}, dict(p=2), dict(margin=0.3), dict(p=2, margin=2.0, weight=w)):
        check(*both("MultiMarginLoss", reduction=reduction, **kw), [x, t], [True, False])
    check(*both("MultiMarginLoss", reduction=reduction), [x[0], np.array(2)], [True, False])
    check(*both("MultiMarginLoss", reduction=reduction), [x[0], np.array([2])], [True, False])
    mt = np.array([[3, 0, -1, 1], [0, 1, 2, 3], [-1, 2, 0, 0], [1, 1, -1, 3], [2, -1, -1, -1]])
    check(*both("MultiLabelMarginLoss", reduction=reduction), [x, mt], [True, False])
    check(*both("MultiLabelMarginLoss", reduction=reduction), [x[0], mt[0]], [True, False])
    for target in (np.array(0), np.array(-1)):  # a scalar input: one class
        check(*both("MultiLabelMarginLoss", reduction=reduction), [np.array(0.3), target],
              [True, False])
        check(*both("MultiMarginLoss", reduction=reduction), [np.array(0.3), np.array(0)],
              [True, False])
    y = (rand(5, 4, seed=3) > 0).astype(np.float64)
    for kw in ({}, dict(weight=w)):
        check(*both("MultiLabelSoftMarginLoss", reduction=reduction, **kw), [x, y],
              [True, True])
    check(*both("MultiLabelSoftMarginLoss", reduction=reduction), [x[0], y[0]], [True, True])


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_triplet_margin_loss_matches_torch(reduction: str) -> None:
    a, p, n = rand(6, 4), rand(6, 4, seed=1), rand(6, 4, seed=2)
    n[0] = p[0] + 0.01  # swap picks d(p, n) here
    for kw in ({}, dict(margin=0.5, p=1.0), dict(p=3.0, swap=True), dict(swap=True, eps=0.0),
               dict(p=float("inf"), margin=2.0)):
        check(*both("TripletMarginLoss", reduction=reduction, **kw), [a, p, n],
              [True, True, True])
    check(*both("TripletMarginLoss", reduction=reduction), [a[0], p[0], n[0]], [True, True, True])


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2, 3), (5,)])
def test_cross_entropy_label_smoothing_and_probability_targets(reduction, shape) -> None:
    x = rand(*shape) * 3
    c = shape[1] if len(shape) > 1 else shape[0]
    t_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    t = np.random.default_rng(2).integers(0, c, t_shape)
    if t.ndim:
        t.flat[0] = -100
    w = np.linspace(0.5, 2.0, c)
    probs = np.moveaxis(np.random.default_rng(3).dirichlet(np.ones(c), t_shape), -1,
                        1 if len(shape) > 1 else 0)
    for kw in (dict(label_smoothing=0.1), dict(label_smoothing=0.25, weight=w),
               dict(label_smoothing=1.0, weight=w)):
        check(*both("CrossEntropyLoss", reduction=reduction, **kw), [x, t], [True, False])
    for kw in ({}, dict(weight=w), dict(label_smoothing=0.2), dict(label_smoothing=0.3, weight=w)):
        check(*both("CrossEntropyLoss", reduction=reduction, **kw), [x, probs], [True, True])


@needs_torch
def test_class_weights_are_buffers_in_the_state_dict() -> None:
    w = np.array([1.0, 2.0, 0.5])
    for name in ("CrossEntropyLoss", "NLLLoss", "MultiMarginLoss", "MultiLabelSoftMarginLoss",
                 "BCELoss", "BCEWithLogitsLoss"):
        ours, theirs = both(name, weight=w)
        sd = ours.state_dict()
        assert list(sd) == list(theirs.state_dict()) == ["weight"], name
        np.testing.assert_array_equal(sd["weight"], w)
        assert list(both(name)[0].state_dict()) == [], name
        ours.load_state_dict({"weight": torch.tensor([3.0, 2.0, 1.0])})
        np.testing.assert_array_equal(ours.weight.data, [3.0, 2.0, 1.0])
        assert ours.float().weight.dtype == np.float32
    ours, theirs = both("BCEWithLogitsLoss", pos_weight=w)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["pos_weight"]
    loss = nn.CrossEntropyLoss(weight=cp.Tensor(w))
    assert dict(loss.named_buffers())["weight"] is loss.weight


ALL_LOSSES = ["L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss",
              "SmoothL1Loss", "HuberLoss", "KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss",
              "HingeEmbeddingLoss", "MarginRankingLoss", "SoftMarginLoss", "MultiMarginLoss",
              "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "CosineEmbeddingLoss",
              "TripletMarginLoss"]
LOSS_FUNCTIONS = ["l1_loss", "mse_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
                  "binary_cross_entropy_with_logits", "smooth_l1_loss",
                  "huber_loss", "kl_div", "poisson_nll_loss", "gaussian_nll_loss",
                  "hinge_embedding_loss", "margin_ranking_loss", "soft_margin_loss",
                  "multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss",
                  "cosine_embedding_loss", "triplet_margin_loss"]


@needs_torch
def test_loss_signatures_and_reprs_are_torchs() -> None:
    for name in ALL_LOSSES:
        ours = inspect.signature(getattr(nn, name).__init__).parameters
        theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
        assert [(p, v.default, v.kind) for p, v in ours.items()] == [
            (p, v.default, v.kind) for p, v in theirs.items()], name
        assert repr(getattr(nn, name)(reduction="sum")) == repr(
            getattr(torch.nn, name)(reduction="sum"))
    for name in LOSS_FUNCTIONS:
        ours = inspect.signature(getattr(F, name)).parameters
        theirs = inspect.signature(getattr(torch.nn.functional, name)).parameters
        assert [(p, v.default) for p, v in ours.items()] == [
            (p, v.default) for p, v in theirs.items()], name


def test_legacy_size_average_and_reduce_map_to_reduction() -> None:
    x, t = rand(4, 3), np.array([0, 1, 2, 1])
    for size_average, reduce, expected in ((False, None, "sum"), (None, False, "none"),
                                           (True, True, "mean")):
        with pytest.warns(UserWarning, match=f"reduction='{expected}'"):
            loss = nn.CrossEntropyLoss(size_average=size_average, reduce=reduce)
        assert loss.reduction == expected
        with pytest.warns(UserWarning):
            got = F.cross_entropy(x, t, None, size_average, -100, reduce)
        np.testing.assert_allclose(got.data, F.cross_entropy(x, t, reduction=expected).data)


def test_new_losses_pass_finite_difference_checks() -> None:
    rng = np.random.default_rng(9)

    def var(*shape):
        return cp.Tensor(rng.standard_normal(shape), requires_grad=True)

    x, y = var(4, 3), var(4, 3)
    cp.gradcheck(lambda a, b: F.smooth_l1_loss(a, b, beta=0.7), x, y)
    cp.gradcheck(lambda a, b: F.huber_loss(a, b, delta=0.4), x, y)
    p = cp.Tensor(rng.dirichlet(np.ones(3), 4), requires_grad=True)
    cp.gradcheck(lambda a, b: F.kl_div(a, b, reduction="batchmean"), x, p)
    cp.gradcheck(lambda a, b: F.kl_div(a, b, reduction="sum", log_target=True), x, y)
    counts = cp.Tensor(rng.poisson(3, (4, 3)) + 1.5, requires_grad=True)
    cp.gradcheck(lambda a, b: F.poisson_nll_loss(a, b, full=True), x, counts)
    v = cp.Tensor(rng.uniform(0.5, 2, (4,)), requires_grad=True)
    cp.gradcheck(lambda a, b, s: F.gaussian_nll_loss(a, b, s, full=True), x, y, v)
    t = signs(4, 3)
    cp.gradcheck(lambda a: F.hinge_embedding_loss(a, t, margin=0.3), x)
    cp.gradcheck(lambda a: F.soft_margin_loss(a, t, reduction="sum"), x)
    cp.gradcheck(lambda a, b: F.margin_ranking_loss(a, b, cp.Tensor(t), margin=0.1), x, y)
    labels = np.array([0, 2, 1, 2])
    cp.gradcheck(lambda a: F.multi_margin_loss(a, labels, p=2, margin=2.0,
                                               weight=np.array([1.0, 2.0, 0.5])), x)
    cp.gradcheck(lambda a: F.multilabel_margin_loss(a, np.array([[0, 2, -1]] * 4)), x)
    cp.gradcheck(lambda a, b: F.multilabel_soft_margin_loss(a, b, weight=np.ones(3) * 2), x, p)
    cp.gradcheck(lambda a, b: F.cosine_embedding_loss(a, b, signs(4), margin=-1.0), x, y)
    z = var(4, 3)
    for kw in (dict(), dict(p=1.5, swap=True), dict(p=float("inf"))):
        cp.gradcheck(lambda a, b, c, kw=kw: F.triplet_margin_loss(a, b, c, margin=3.0, **kw),
                     x, y, z)
    cp.gradcheck(lambda a, b: F.cross_entropy(a, b, weight=np.array([1.0, 2.0, 0.5]),
                                              label_smoothing=0.2), x, p)
    cp.gradcheck(lambda a: F.cross_entropy(a, labels, label_smoothing=0.3), x)


# ---------------------------------------------------- errors of the new losses
def test_regression_loss_parameter_errors() -> None:
    with pytest.raises(ValueError, match="beta must be >= 0, got -1"):
        F.smooth_l1_loss(rand(2), rand(2), beta=-1.0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        nn.SmoothL1Loss(beta=-0.5)
    with pytest.raises(ValueError, match="delta must be > 0, got 0"):
        F.huber_loss(rand(2), rand(2), delta=0.0)
    with pytest.raises(ValueError, match="delta must be > 0"):
        nn.HuberLoss(delta=-1.0)
    with pytest.raises(ValueError, match=r"weight must have the input's shape \(2,\)"):
        F.huber_loss(rand(2), rand(2), weight=np.ones(3))
    with pytest.raises(ValueError, match=r"weight must have the input's shape \(2,\)"):
        F.mse_loss(rand(2), rand(2), weight=np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"input shape \(3,\) and target shape \(2,\)"):
        nn.SmoothL1Loss()(rand(3), rand(2))


def test_kl_div_reduction_error() -> None:
    with pytest.raises(ValueError, match="batchmean"):
        F.kl_div(rand(2), rand(2), reduction="average")
    with pytest.raises(ValueError, match="reduction"):
        nn.HuberLoss(reduction="batchmean")
    assert nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"


def test_gaussian_nll_errors() -> None:
    with pytest.raises(ValueError, match="var has negative entries"):
        F.gaussian_nll_loss(rand(3), rand(3), -np.ones(3))
    with pytest.raises(ValueError, match="var has negative entries"):
        F.gaussian_nll_loss(rand(3), rand(3), -1.0)
    with pytest.raises(ValueError, match=r"var of shape \(2,\) does not fit the input \(3, 2\)"):
        nn.GaussianNLLLoss()(rand(3, 2), rand(3, 2), np.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        nn.GaussianNLLLoss(reduction="avg")
    with pytest.raises(TypeError):
        nn.GaussianNLLLoss(True)  # keyword-only, as torch


def test_margin_loss_shape_errors() -> None:
    with pytest.raises(ValueError, match="same number of dimensions"):
        F.margin_ranking_loss(rand(3), rand(3, 1), np.ones(3))
    with pytest.raises(ValueError, match="target must be 0-D or 1-D"):
        F.cosine_embedding_loss(rand(3, 4), rand(3, 4), np.ones((3, 1)))
    with pytest.raises(ValueError, match="must have equal shapes"):
        F.cosine_embedding_loss(rand(3, 4), rand(3, 5), np.ones(3))
    with pytest.raises(ValueError, match=r"input shape \(3,\) and target shape \(2,\)"):
        F.soft_margin_loss(rand(3), np.ones(2))


def test_multiclass_margin_errors() -> None:
    with pytest.raises(ValueError, match="p must be 1 or 2, got 3"):
        F.multi_margin_loss(rand(3, 4), np.array([0, 1, 2]), p=3)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="weight must be 1-D"):
        nn.MultiMarginLoss(weight=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.multi_margin_loss(rand(3, 4), np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(IndexError, match="target 4 is out of range for 4 classes"):
        F.multi_margin_loss(rand(3, 4), np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="needs 3 class indices"):
        F.multi_margin_loss(rand(3, 4), np.array([0, 1]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.multi_margin_loss(rand(3, 4), np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"must be \(N, C\), \(C,\) or a scalar"):
        F.multi_margin_loss(rand(2, 3, 4), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"must be \(N, C\), \(C,\) or a scalar"):
        F.multilabel_margin_loss(rand(2, 3, 4), np.zeros((2, 3, 4), dtype=np.int64))
    with pytest.raises(IndexError, match="target 4 is out of range"):
        F.multilabel_margin_loss(rand(2, 4), np.array([[0, 4, -1, 0], [1, -1, 9, 9]]))
    with pytest.raises(ValueError, match=r"target must have the input's shape \(2, 4\)"):
        F.multilabel_margin_loss(rand(2, 4), np.array([0, 1]))
    with pytest.raises(ValueError, match="class axis"):
        F.multilabel_soft_margin_loss(np.array(1.0), np.array(1.0))


def test_triplet_errors() -> None:
    with pytest.raises(ValueError, match="margin must be > 0, got 0"):
        F.triplet_margin_loss(rand(2, 3), rand(2, 3), rand(2, 3), margin=0.0)
    with pytest.raises(ValueError, match="margin must be > 0"):
        nn.TripletMarginLoss(margin=-1.0)
    with pytest.raises(ValueError, match="same number of dimensions"):
        F.triplet_margin_loss(rand(2, 3), rand(2, 3), rand(3))
    with pytest.raises(ValueError, match="p must be > 0"):
        F.triplet_margin_loss(rand(2, 3), rand(2, 3), rand(2, 3), p=0)


def test_cross_entropy_new_argument_errors() -> None:
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        F.cross_entropy(rand(3, 4), np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=-0.1)
    with pytest.raises(TypeError, match="class-probability targets must be floating"):
        F.cross_entropy(rand(3, 4), np.ones((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="ignore_index is not supported"):
        F.cross_entropy(rand(3, 4), np.full((3, 4), 0.25), ignore_index=1)


@needs_torch
def test_losses_over_an_empty_batch_match_torch() -> None:
    x, t = np.zeros((0, 5)), np.zeros(0, dtype=np.int64)
    for reduction in REDUCTIONS:
        cases = [("cross_entropy", (x, t), dict(label_smoothing=0.1)), ("cross_entropy", (x, x), {}),
                 ("nll_loss", (x, t), {}), ("gaussian_nll_loss", (x, x, np.ones((0, 5))), {}),
                 ("triplet_margin_loss", (x, x, x), {}), ("cosine_embedding_loss", (x, x, t * 1.0), {})]
        cases += [(n, (x, x), {}) for n in ("mse_loss", "smooth_l1_loss", "huber_loss", "kl_div",
                                            "soft_margin_loss", "multilabel_soft_margin_loss",
                                            "poisson_nll_loss", "hinge_embedding_loss")]
        for name, args, kw in cases:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours = getattr(F, name)(*args, reduction=reduction, **kw)
                ref = getattr(torch.nn.functional, name)(*map(torch.tensor, args),
                                                         reduction=reduction, **kw)
            assert ours.shape == tuple(ref.shape), name
            np.testing.assert_array_equal(ours.data, ref.numpy(), err_msg=name)
    assert np.isnan(F.kl_div(x, x, reduction="batchmean").item())


@needs_torch
@settings(max_examples=40)
@given(n=st.integers(1, 4), c=st.integers(1, 5), extra=st.lists(st.integers(1, 3), max_size=2),
       reduction=st.sampled_from(REDUCTIONS), smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       weighted=st.booleans(), probs=st.booleans(), seed=st.integers(0, 2**16))
def test_cross_entropy_matches_torch_on_drawn_cases(n, c, extra, reduction, smoothing, weighted,
                                                    probs, seed) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, (n, c, *extra))
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    if weighted:
        kw["weight"] = rng.uniform(0.1, 2.0, c)
    if probs:
        target = np.moveaxis(rng.dirichlet(np.ones(c), (n, *extra)), -1, 1)
    else:
        target = rng.integers(0, c, (n, *extra))
        target[rng.random(target.shape) < 0.2] = -100
    check(*both("CrossEntropyLoss", **kw), [x, target], [True, probs])


def test_new_losses_keep_float32() -> None:
    x32 = rand(3, 4).astype(np.float32)
    y32 = np.abs(rand(3, 4, seed=1)).astype(np.float32)
    lab = np.array([0, 3, 1])
    calls = [lambda a: F.smooth_l1_loss(a, y32), lambda a: F.huber_loss(a, y32),
             lambda a: F.kl_div(a, y32, reduction="batchmean"), lambda a: F.poisson_nll_loss(a, y32),
             lambda a: F.gaussian_nll_loss(a, y32, np.ones(3)),
             lambda a: F.hinge_embedding_loss(a, y32), lambda a: F.soft_margin_loss(a, y32),
             lambda a: F.margin_ranking_loss(a, y32, y32), lambda a: F.multi_margin_loss(a, lab),
             lambda a: F.multilabel_margin_loss(a, np.zeros((3, 4), dtype=np.int64)),
             lambda a: F.multilabel_soft_margin_loss(a, y32, weight=np.ones(4)),
             lambda a: F.cosine_embedding_loss(a, y32, np.ones(3)),
             lambda a: F.triplet_margin_loss(a, y32, -y32),
             lambda a: F.cross_entropy(a, lab, weight=np.ones(4), label_smoothing=0.1),
             lambda a: F.cross_entropy(a, y32), lambda a: F.mse_loss(a, y32, weight=np.ones((3, 4)))]
    for i, call in enumerate(calls):
        xc = cp.Tensor(x32, requires_grad=True)
        loss = call(xc)
        loss.backward()
        assert loss.dtype == np.float32 and xc.grad.dtype == np.float32, i

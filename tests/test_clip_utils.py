"""nn.utils: gradient clipping and parameters as one vector, against PyTorch in float64,
with a finite-difference check of parameters_to_vector's gradient and the error rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracle import torch  # noqa: E402  (the real module, or a skip on first use)

import convprop as cp
from convprop import nn
from convprop.gradcheck import gradcheck

SHAPES = [(3, 4), (5,), (2, 1, 3), ()]


def twin_params(seed: int = 0, with_grads=(0, 1, 3), dtype=np.float64):
    """Parameters in both libraries with the same data and gradients (index 2 has none)."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for i, shape in enumerate(SHAPES):
        data = rng.standard_normal(shape).astype(dtype)
        p = nn.Parameter(data)
        t = torch.nn.Parameter(torch.from_numpy(data.copy()))
        if i in with_grads:
            g = rng.standard_normal(shape).astype(dtype)
            p.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
        ours.append(p)
        theirs.append(t)
    return ours, theirs


def assert_same_grads(ours, theirs, atol=1e-12):
    for p, t in zip(ours, theirs):
        if t.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=0, atol=atol)


@pytest.mark.parametrize("norm_type", [2.0, 1, math.inf, "inf", -math.inf, 0.5, 3.0, 0])
@pytest.mark.parametrize("max_norm", [0.3, 1e3])  # clipping, and a coefficient clamped to 1
def test_clip_grad_norm_matches_torch(norm_type, max_norm) -> None:
    ours, theirs = twin_params()
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=float(norm_type))
    assert isinstance(total, cp.Tensor) and total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-13)
    assert_same_grads(ours, theirs)
    if total.item() > max_norm and norm_type != 0:  # clipped: their norm is now max_norm
        again = nn.utils.clip_grad_norm_(ours, 1e9, norm_type=norm_type).item()
        assert again == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_of_one_tensor_a_generator_and_float32() -> None:
    ours, theirs = twin_params(dtype=np.float32)
    total = nn.utils.clip_grad_norm_(ours[0], 0.1)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs[0], 0.1)
    assert total.dtype == np.float32 and ours[0].grad.dtype == np.float32
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-6)
    assert_same_grads(ours, theirs, atol=1e-7)
    gen_total = nn.utils.clip_grad_norm_((p for p in ours), 0.1)
    assert gen_total.item() == pytest.approx(
        torch.nn.utils.clip_grad_norm_((t for t in theirs), 0.1).item(), rel=1e-6)


def test_clip_grad_norm_without_gradients_returns_zero_and_warns_on_an_empty_generator() -> None:
    ours, _ = twin_params(with_grads=())
    total = nn.utils.clip_grad_norm_(ours, 1.0)
    assert total.item() == 0.0 and total.dtype == np.float32
    with pytest.warns(UserWarning, match="empty generator"):
        nn.utils.clip_grad_norm_((p for p in []), 1.0)


def test_clip_grad_norm_nonfinite() -> None:
    ours, theirs = twin_params()
    ours[0].grad[0, 0] = np.nan
    theirs[0].grad[0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    # nothing was scaled by the refused call
    np.testing.assert_array_equal(ours[1].grad, theirs[1].grad.numpy())
    total = nn.utils.clip_grad_norm_(ours, 1.0)  # torch scales by the nan norm anyway
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert math.isnan(total.item()) and math.isnan(ttotal.item())
    assert np.isnan(ours[1].grad).all() and torch.isnan(theirs[1].grad).all()


@pytest.mark.parametrize("norm_type", [2.0, 1.5, math.inf])
def test_get_total_norm_and_clip_grads_with_norm_match_torch(norm_type) -> None:
    ours, theirs = twin_params()
    grads = [p.grad for p in ours if p.grad is not None]
    total = nn.utils.get_total_norm(grads, norm_type)
    ttotal = torch.nn.utils.get_total_norm([t.grad for t in theirs if t.grad is not None],
                                           norm_type)
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-13)
    assert nn.utils.get_total_norm(cp.tensor(grads[0])).item() == pytest.approx(
        torch.nn.utils.get_total_norm(theirs[0].grad).item(), rel=1e-13)
    assert nn.utils.get_total_norm([]).item() == 0.0
    nn.utils.clip_grads_with_norm_(ours, 0.25, total)
    torch.nn.utils.clip_grads_with_norm_(theirs, 0.25, ttotal)
    assert_same_grads(ours, theirs)


@pytest.mark.parametrize("clip_value", [0.5, 2])
def test_clip_grad_value_matches_torch(clip_value) -> None:
    ours, theirs = twin_params()
    assert nn.utils.clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    assert_same_grads(ours, theirs, atol=0)
    assert max(np.abs(p.grad).max() for p in ours if p.grad is not None) <= clip_value
    single, tsingle = twin_params()
    nn.utils.clip_grad_value_(single[1], 0.1)
    torch.nn.utils.clip_grad_value_(tsingle[1], 0.1)
    assert_same_grads(single, tsingle, atol=0)


def test_parameters_to_vector_and_back_match_torch() -> None:
    ours, theirs = twin_params()
    vec = nn.utils.parameters_to_vector(ours)
    tvec = torch.nn.utils.parameters_to_vector(theirs)
    np.testing.assert_array_equal(vec.data, tvec.detach().numpy())
    assert vec.shape == (12 + 5 + 6 + 1,)
    # its gradient splits back into the parameters' shapes, as torch's does
    w = np.random.default_rng(3).standard_normal(vec.shape)
    (vec * cp.tensor(w)).sum().backward()
    (tvec * torch.from_numpy(w)).sum().backward()
    for p, t in zip(ours, theirs):
        assert p.grad.shape == p.shape
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=0, atol=1e-12)
    new = np.arange(vec.shape[0], dtype=np.float64)
    arrays = [p.data for p in ours]
    nn.utils.vector_to_parameters(cp.tensor(new), ours)
    torch.nn.utils.vector_to_parameters(torch.from_numpy(new), theirs)
    for p, t, a in zip(ours, theirs, arrays):
        np.testing.assert_array_equal(p.data, t.detach().numpy())
        assert p.data is a  # written in place
    np.testing.assert_array_equal(nn.utils.parameters_to_vector(ours).data, new)


def test_parameters_to_vector_gradcheck() -> None:
    rng = np.random.default_rng(4)
    a = cp.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = cp.tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda x, y: nn.utils.parameters_to_vector([x, y]) ** 2, a, b)


def test_parameters_to_vector_with_a_model() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(model.parameters())
    assert vec.shape == (sum(p.data.size for p in model.parameters()),)


# ------------------------------------------------------------------ errors
def test_utils_errors_are_clear() -> None:
    ours, _ = twin_params()
    with pytest.raises(ValueError, match="norm_type must be a number, got 'two'"):
        nn.utils.clip_grad_norm_(ours, 1.0, norm_type="two")
    with pytest.raises(ValueError, match="max_norm must be a number"):
        nn.utils.clip_grad_norm_(ours, None)
    with pytest.raises(ValueError, match="clip_value must be a number"):
        nn.utils.clip_grad_value_(ours, "big")
    with pytest.raises(TypeError, match="parameters must be Tensors, got ndarray"):
        nn.utils.clip_grad_norm_([np.ones(2)], 1.0)
    with pytest.raises(ValueError, match="got no parameters"):
        nn.utils.parameters_to_vector([])
    with pytest.raises(TypeError, match="expected a convprop Tensor for vec, but got: ndarray"):
        nn.utils.vector_to_parameters(np.ones(24), ours)
    with pytest.raises(ValueError, match=r"one entry per parameter element \(24\), got shape \(23,\)"):
        nn.utils.vector_to_parameters(cp.tensor(np.ones(23)), ours)
    with pytest.raises(ValueError, match="must be 1-D"):
        nn.utils.vector_to_parameters(cp.tensor(np.ones((4, 6))), ours)

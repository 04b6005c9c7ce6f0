"""``F.pad`` in all four modes: values and gradients against the naive loops and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import pad_ref, pad_ref_vjp

import convprop as cp
import convprop.functional as F

torch = pytest.importorskip("torch")
tF = torch.nn.functional

MODES = ("constant", "reflect", "replicate", "circular")


@st.composite
def pad_cases(draw):
    """A shape, PyTorch's flat pad for 1-3 trailing axes, a mode and a fill value."""
    mode = draw(st.sampled_from(MODES))
    k = draw(st.integers(1, 3))  # padded axes
    lead = draw(st.integers(0, 2))
    shape = tuple(draw(st.integers(1, 3)) for _ in range(lead)) + tuple(
        draw(st.integers(1, 5)) for _ in range(k))
    flat = []
    for size in reversed(shape[lead:]):  # last axis first
        for _ in range(2):
            if mode == "constant":  # negative entries crop, keeping >= 0 cells
                lo = -(size - 1) // 2
                flat.append(draw(st.integers(lo, 3)))
            elif mode == "reflect":
                flat.append(draw(st.integers(0, min(3, size - 1))))
            elif mode == "circular":
                flat.append(draw(st.integers(0, min(3, size))))
            else:
                flat.append(draw(st.integers(0, 3)))
    value = draw(st.sampled_from([0.0, 1.5, -2.0]))
    return shape, tuple(flat), mode, value, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=150)
@given(pad_cases())
def test_pad_matches_reference_and_torch(case):
    shape, pad, mode, value, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x0 = x.copy()
    xt = cp.tensor(x, requires_grad=True)
    y = F.pad(xt, pad, mode=mode, value=value)
    want = pad_ref(x, pad, mode, value)
    np.testing.assert_array_equal(y.data, want)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_allclose(xt.grad, pad_ref_vjp(x, g, pad, mode), rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(x, x0)

    # PyTorch accepts the non-constant modes only for 1-3 padded axes plus 1 or 2 more
    if mode != "constant" and not 1 <= len(shape) - len(pad) // 2 <= 2:
        return
    tx = torch.tensor(x, requires_grad=True)
    ty = tF.pad(tx, pad, mode=mode, value=value) if mode == "constant" else tF.pad(tx, pad, mode)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("mode", MODES)
def test_pad_keeps_float32(mode):
    x = cp.tensor(np.arange(12, dtype=np.float32).reshape(1, 3, 4), requires_grad=True)
    y = F.pad(x, (1, 2, 1, 0), mode=mode)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("mode", MODES)
def test_pad_output_is_a_new_array(mode):
    """Padding never hands back (a view of) its input's array, even when nothing is added."""
    x = cp.tensor(np.arange(6.0).reshape(2, 3))
    for pad in [(0, 0), (1, 1), (-1, 0) if mode == "constant" else (0, 1)]:
        y = F.pad(x, pad, mode=mode)
        assert not np.shares_memory(y.data, x.data), pad


def test_pad_circular_full_width_and_reflect_edge():
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(F.pad(x, (3, 3), "circular").data,
                                  [[1, 2, 3, 1, 2, 3, 1, 2, 3]])
    np.testing.assert_array_equal(F.pad(x, (2, 2), "reflect").data, [[3, 2, 1, 2, 3, 2, 1]])
    np.testing.assert_array_equal(F.pad(x, (2, 1), "replicate").data, [[1, 1, 1, 2, 3, 3]])


def test_pad_gradient_counts_every_copy():
    """Reflect copies interior cells: their gradient is 1 + number of copies."""
    x = cp.tensor(np.zeros(4), requires_grad=True)
    F.pad(x, (2, 2), "reflect").sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 3, 3, 1])
    x = cp.tensor(np.zeros(3), requires_grad=True)
    F.pad(x, (2, 1), "replicate").sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 1, 2])


def test_pad_nan_propagates():
    x = np.array([[np.nan, 1.0, np.inf]])
    for mode in MODES:
        y = F.pad(x, (1, 1), mode).data
        np.testing.assert_array_equal(y, pad_ref(x, (1, 1), mode))

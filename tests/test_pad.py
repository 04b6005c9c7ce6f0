"""``F.pad`` in all four modes: values and gradients against the naive loops and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import tF, torch  # noqa: E402  (torch, or a skip on first use)
from reference import pad_ref, pad_ref_vjp

import convprop as cp
import convprop.functional as F
from convprop import nn

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

MODES = ("constant", "reflect", "replicate", "circular")


@st.composite
def pad_cases(draw):
    """A shape, PyTorch's flat pad for 1-3 trailing axes (negative entries crop, in every
    mode), a mode and a fill value."""
    mode = draw(st.sampled_from(MODES))
    k = draw(st.integers(1, 3))  # padded axes
    lead = draw(st.integers(0, 2))
    shape = tuple(draw(st.integers(1, 3)) for _ in range(lead)) + tuple(
        draw(st.integers(1, 5)) for _ in range(k))
    flat = []
    for size in reversed(shape[lead:]):  # last axis first
        crop = draw(st.integers(-(size - 1) // 2, 0))  # keep >= 1 cell
        grow = {"constant": 3, "replicate": 3, "reflect": min(3, size - 1),
                "circular": min(3, size + crop)}[mode]
        pair = [crop, draw(st.integers(0, grow))]
        if draw(st.booleans()):
            pair.reverse()
        flat += pair
    value = draw(st.sampled_from([0.0, 1.5, -2.0]))
    return shape, tuple(flat), mode, value, draw(st.integers(0, 2**31 - 1))


def reference(x: np.ndarray, pad: tuple, mode: str, g: np.ndarray | None = None) -> np.ndarray:
    """The naive loops of ``reference.py``; circular padding crops first and wraps what is
    left (PyTorch's order), so it is built here as a crop followed by the loops."""
    if mode != "circular" or min(pad) >= 0:
        return pad_ref(x, pad, mode) if g is None else pad_ref_vjp(x, g, pad, mode)
    crop = tuple(min(p, 0) for p in pad)
    grow = tuple(max(p, 0) for p in pad)
    kept = pad_ref(x, crop)
    if g is None:
        return pad_ref(kept, grow, mode)
    return pad_ref_vjp(x, pad_ref_vjp(kept, g, grow, mode), crop)


@settings(max_examples=150)
@given(pad_cases())
def test_pad_matches_reference_and_torch(case):
    shape, pad, mode, value, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x0 = x.copy()
    xt = cp.tensor(x, requires_grad=True)
    y = F.pad(xt, pad, mode=mode, value=value)
    want = pad_ref(x, pad, mode, value) if mode == "constant" else reference(x, pad, mode)
    np.testing.assert_array_equal(y.data, want)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_allclose(xt.grad, reference(x, pad, mode, g), rtol=1e-13, atol=1e-13)
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


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pad", [(-1, 2), (2, -1), (-3, 0), (-4, 0), (-2, -2), (-4, 1), (1, -3)])
def test_negative_pad_crops_like_torch_in_every_mode(mode, pad):
    x = np.random.default_rng(0).standard_normal((2, 3, 5))
    try:
        want = tF.pad(torch.from_numpy(x), pad, mode=mode).numpy()
    except RuntimeError:
        with pytest.raises(ValueError):
            F.pad(x, pad, mode=mode)
        return
    np.testing.assert_array_equal(F.pad(x, pad, mode=mode).data, want)
    cp.gradcheck(lambda t: F.pad(t, pad, mode=mode), cp.tensor(x, requires_grad=True))


def test_circular_pad_wraps_what_the_crop_leaves():
    x = np.arange(5.0)[None]
    np.testing.assert_array_equal(F.pad(x, (-1, 2), "circular").data, [[1, 2, 3, 4, 1, 2]])
    np.testing.assert_array_equal(F.pad(x, (2, -2), "circular").data, [[1, 2, 0, 1, 2]])
    np.testing.assert_array_equal(F.pad(x, (-1, 2), "reflect").data, [[1, 2, 3, 4, 3, 2]])


@pytest.mark.parametrize("mode,pad,match", [
    ("reflect", (5, 0), "must be smaller than the input size"),
    ("reflect", (-5, 0), "at least 1 must remain"),
    ("replicate", (-3, -2), "at least 1 must remain"),
    ("circular", (-6, 0), "removes more than the input holds"),
    ("circular", (-1, 5), "would wrap around more than once"),
    ("constant", (-6, 0), "removes more than the input holds"),
])
def test_pad_amount_errors(mode, pad, match):
    with pytest.raises(ValueError, match=match):
        F.pad(np.zeros((1, 1, 5)), pad, mode=mode)


def test_pad_argument_errors():
    with pytest.raises(ValueError, match="padding mode must be one of"):
        F.pad(np.zeros((1, 3)), (1, 1), mode="wrap")
    with pytest.raises(ValueError, match="even length"):
        F.pad(np.zeros((1, 3)), (1,))
    with pytest.raises(ValueError, match="only 2 dims"):
        F.pad(np.zeros((1, 3)), (1, 1, 1, 1, 1, 1))
    with pytest.raises(TypeError, match="sequence of ints"):
        F.pad(np.zeros((1, 3)), (1.5, 1))


# ------------------------------------------------------------------ padding layers
LAYERS = [
    ("ZeroPad", (2,)), ("ZeroPad", ((1, -1, 2, 0, 0, 1),)), ("ConstantPad", (1, 2.5)),
    ("ConstantPad", ((2, -1, 0, 1, 1, 0), -1.0)), ("ReflectionPad", (1,)),
    ("ReflectionPad", ((2, -1, 0, 1, 1, 0),)), ("ReplicationPad", (3,)),
    ("ReplicationPad", ((-1, 2, 1, 0, 0, 2),)), ("CircularPad", (2,)),
    ("CircularPad", ((1, -1, 0, 2, 1, 1),)),
]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind,args", LAYERS)
def test_padding_layers_match_torch(nd, kind, args):
    if isinstance(args[0], tuple):
        args = (args[0][: 2 * nd],) + args[1:]
    layer = getattr(nn, f"{kind}{nd}d")(*args)
    tlayer = getattr(torch.nn, f"{kind}{nd}d")(*args)
    assert repr(layer) == repr(tlayer)
    rng = np.random.default_rng(nd)
    for shape in ((2, 3) + (4, 5, 3)[:nd], (3,) + (4, 5, 3)[:nd], (0, 3) + (4, 5, 3)[:nd]):
        if kind == "ReflectionPad" and shape[0] == 0 and nd == 3:
            continue  # PyTorch's 3-D reflection refuses an empty batch
        x = rng.standard_normal(shape)
        xc, xt = cp.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yc, yt = layer(xc), tlayer(xt)
        np.testing.assert_array_equal(yc.data, yt.detach().numpy())
        g = rng.standard_normal(yc.shape)
        yc.backward(g)
        yt.backward(torch.from_numpy(g))
        np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=0, atol=1e-13)


def test_padding_layer_errors():
    with pytest.raises(ValueError, match=r"ReflectionPad2d expects input \(C, H, W\)"):
        nn.ReflectionPad2d(1)(np.zeros((2, 2, 3, 3, 3)))
    with pytest.raises(TypeError, match="padding must be an int or a tuple of 4 ints"):
        nn.ZeroPad2d((1, 2))
    with pytest.raises(ValueError, match=r"ReflectionPad1d\(3, 3\).*smaller than the input"):
        nn.ReflectionPad1d(3)(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="pads 3 trailing dims"):
        nn.ConstantPad3d(1, 0.0)(np.zeros((2, 2)))

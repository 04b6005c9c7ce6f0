"""Pooling beyond the basics: ``ceil_mode``, ``return_indices`` and max unpooling, adaptive
max pooling, LP pooling and empty batches; against naive loops, finite differences
and PyTorch (float64, forward, input gradients and indices)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from oracle import tF, torch  # noqa: E402  (torch, or a skip on first use)
from test_nn_layers import check_parity  # noqa: E402

import convprop as cp
import convprop.functional as F
from convprop import nn

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

TOL = 1e-10
SIZES = (7, 6, 5)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def compare(fn, tfn, x: np.ndarray, indices: bool = False, seed: int = 1) -> None:
    """Same forward (and indices), same input gradient, in float64."""
    xc, xt = cp.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yc, yt = fn(xc), tfn(xt)
    if indices:
        (yc, ic), (yt, it) = yc, yt
        assert ic.dtype == np.int64
        np.testing.assert_array_equal(ic.data, it.numpy())
    assert yc.shape == tuple(yt.shape)
    np.testing.assert_allclose(yc.data, yt.detach().numpy(), rtol=0, atol=TOL)
    g = rand(*yc.shape, seed=seed)
    yc.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=0, atol=TOL)


# ------------------------------------------------------------------ window sweeps
def sweep(nd: int):
    """Every (kernel, stride, padding, dilation) with kernels 1-3, strides 1-3, legal padding."""
    for k, s, p, d in itertools.product((1, 2, 3), (1, 2, 3), (0, 1), (1, 2)):
        if 2 * p <= k:
            yield k, s, p, d


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool_with_indices_matches_torch(nd: int, ceil_mode: bool) -> None:
    fn, tfn = getattr(F, f"max_pool{nd}d"), getattr(tF, f"max_pool{nd}d")
    checked = 0
    for k, s, p, d in sweep(nd):
        for size in ((4, 5), (5,), (4,))[nd - 1]:
            x = rand(2, 2, *(size,) * nd, seed=k * 7 + s)
            args = (k, s, p, d, ceil_mode, True)
            try:
                tfn(torch.from_numpy(x), *args)
            except RuntimeError:  # the window does not fit: convprop refuses it too
                with pytest.raises(ValueError):
                    fn(x, *args)
                continue
            compare(lambda t, a=args: fn(t, *a), lambda t, a=args: tfn(t, *a), x, indices=True)
            checked += 1
    assert checked > 20


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_ceil_mode_matches_torch(nd: int, ceil_mode: bool, count_include_pad: bool) -> None:
    fn, tfn = getattr(F, f"avg_pool{nd}d"), getattr(tF, f"avg_pool{nd}d")
    for k, s, p, d in sweep(nd):
        if d > 1:
            continue
        for size in ((4, 5), (5,), (4,))[nd - 1]:
            x = rand(2, 2, *(size,) * nd, seed=k + s)
            args = (k, s, p, ceil_mode, count_include_pad)
            compare(lambda t, a=args: fn(t, *a), lambda t, a=args: tfn(t, *a), x)
    if nd > 1:  # divisor_override with a partial last window
        x = rand(1, 2, *(5,) * nd)
        args = (3, 2, 1, True, count_include_pad, 4)
        compare(lambda t: fn(t, *args), lambda t: tfn(t, *args), x)


def naive_pool2d(x: np.ndarray, k: int, s: int, p: int, ceil_mode: bool, kind: str,
                 include_pad: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Loops straight from PyTorch's definition: output size with the ceil rule, each
    window clipped to the input (and, for the average's divisor, to the padding)."""
    n, c, h, w = x.shape

    def out_size(length: int) -> int:
        o = (math.ceil if ceil_mode else math.floor)((length + 2 * p - k) / s) + 1
        return o - 1 if ceil_mode and (o - 1) * s >= length + p else o

    oh, ow = out_size(h), out_size(w)
    y, idx = np.empty((n, c, oh, ow)), np.zeros((n, c, oh, ow), dtype=np.int64)
    for i, j in itertools.product(range(oh), range(ow)):
        r0, q0 = i * s - p, j * s - p
        r1, q1 = min(r0 + k, h + p), min(q0 + k, w + p)
        pool = (r1 - r0) * (q1 - q0)
        rows = range(max(r0, 0), min(r1, h))
        cols = range(max(q0, 0), min(q1, w))
        for ni, ci in itertools.product(range(n), range(c)):
            cells = [(x[ni, ci, r, q], r * w + q) for r in rows for q in cols]
            if kind == "max":
                best, where = -np.inf, cells[0][1]
                for v, at in cells:
                    if v > best:
                        best, where = v, at
                y[ni, ci, i, j], idx[ni, ci, i, j] = best, where
            else:
                y[ni, ci, i, j] = sum(v for v, _ in cells) / (pool if include_pad else len(cells))
    return y, idx


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 3, 1), (2, 3, 1), (4, 3, 2)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pooling_matches_naive_loops(k: int, s: int, p: int, ceil_mode: bool) -> None:
    x = np.random.default_rng(k + s).integers(-3, 4, (2, 2, 7, 6)).astype(np.float64)  # ties
    y, idx = F.max_pool2d(x, k, s, p, ceil_mode=ceil_mode, return_indices=True)
    y_ref, idx_ref = naive_pool2d(x, k, s, p, ceil_mode, "max")
    np.testing.assert_array_equal(y.data, y_ref)
    np.testing.assert_array_equal(idx.data, idx_ref)
    for include in (True, False):
        np.testing.assert_allclose(
            F.avg_pool2d(x, k, s, p, ceil_mode, include).data,
            naive_pool2d(x, k, s, p, ceil_mode, "avg", include)[0], rtol=0, atol=1e-13)


@settings(max_examples=40)
@given(k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2), h=st.integers(1, 7),
       w=st.integers(1, 7), seed=st.integers(0, 100), ceil_mode=st.booleans())
def test_pooling_matches_naive_loops_on_random_windows(k, s, p, h, w, seed, ceil_mode) -> None:
    assume(2 * p <= k and h + 2 * p >= k and w + 2 * p >= k)
    x = np.random.default_rng(seed).integers(-3, 4, (1, 2, h, w)).astype(np.float64)
    y, idx = F.max_pool2d(x, k, s, p, ceil_mode=ceil_mode, return_indices=True)
    y_ref, idx_ref = naive_pool2d(x, k, s, p, ceil_mode, "max")
    np.testing.assert_array_equal(y.data, y_ref)
    np.testing.assert_array_equal(idx.data, idx_ref)
    for include in (True, False):
        np.testing.assert_allclose(
            F.avg_pool2d(x, k, s, p, ceil_mode, include).data,
            naive_pool2d(x, k, s, p, ceil_mode, "avg", include)[0], rtol=0, atol=1e-13)


def test_max_pool_indices_with_ties_nan_and_padding_match_torch() -> None:
    x = np.random.default_rng(5).integers(0, 2, (2, 2, 6, 7)).astype(np.float64)
    x[0, 0, 0, :3] = np.nan
    x[1, 1, :2, :2] = -np.inf  # a window of -inf next to the padding: the first real cell
    for args in ((2,), (3, 2, 1), (3, 2, 1, 1, True), (2, 1, 1, 2, True)):
        compare(lambda t, a=args: F.max_pool2d(t, *a, return_indices=True),
                lambda t, a=args: tF.max_pool2d(t, *a, return_indices=True), x, indices=True)


# ------------------------------------------------------------------ max unpooling
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (2, 1, 0)])
def test_max_unpool_matches_torch(nd: int, k: int, s: int, p: int) -> None:
    x = rand(2, 3, *SIZES[:nd])
    y, idx = getattr(F, f"max_pool{nd}d")(x, k, s, p, return_indices=True)
    _, tidx = getattr(tF, f"max_pool{nd}d")(torch.from_numpy(x), k, s, p, return_indices=True)
    fn, tfn = getattr(F, f"max_unpool{nd}d"), getattr(tF, f"max_unpool{nd}d")
    for size in (None, x.shape[2:], x.shape):
        try:
            tfn(torch.from_numpy(y.data), tidx, k, s, p, size)
        except RuntimeError:  # the default size is smaller than the pooled input: an index is out
            with pytest.raises(ValueError, match="outside the output plane"):
                fn(y, idx, k, s, p, size)
            continue
        compare(lambda t, o=size: fn(t, idx, k, s, p, o),
                lambda t, o=size: tfn(t, tidx, k, s, p, o), y.data)
    layer = getattr(nn, f"MaxUnpool{nd}d")(k, s, p)
    tlayer = getattr(torch.nn, f"MaxUnpool{nd}d")(k, s, p)
    assert repr(layer) == repr(tlayer)
    compare(lambda t: layer(t, idx, x.shape[2:]), lambda t: tlayer(t, tidx, x.shape[2:]), y.data)
    compare(lambda t: layer(t, idx[0], x.shape[2:]), lambda t: tlayer(t, tidx[0], x.shape[2:]),
            y.data[0])  # unbatched


def test_max_pool_then_unpool_round_trip_through_modules() -> None:
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    x = rand(1, 2, 4, 4)
    y, idx = pool(x)
    back = unpool(y, idx)
    assert back.shape == x.shape
    np.testing.assert_array_equal(back.data[back.data != 0], y.data.reshape(-1)[
        np.argsort(idx.data.reshape(2, -1) + np.arange(2)[:, None] * 16, axis=None)])


def test_max_unpool_errors() -> None:
    y, idx = F.max_pool2d(rand(1, 1, 4, 4), 2, return_indices=True)
    with pytest.raises(ValueError, match="indices must have the input's shape"):
        F.max_unpool2d(y, idx.data[..., :1], 2)
    with pytest.raises(TypeError, match="indices must be integers"):
        F.max_unpool2d(y, idx.data.astype(float), 2)
    with pytest.raises(ValueError, match="dim 0 must be between 2 and 6"):
        F.max_unpool2d(y, idx, 2, output_size=(6, 4))
    with pytest.raises(ValueError, match="output_size must be 2 or 4 ints"):
        F.max_unpool2d(y, idx, 2, output_size=(4,))
    with pytest.raises(ValueError, match="outside the output plane"):
        F.max_unpool2d(y, idx.data + 100, 2)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        F.max_unpool2d(y, idx, 2, padding=-1)
    with pytest.raises(ValueError, match=r"output size would be \(-1,\); reduce padding"):
        F.max_unpool1d(np.zeros((1, 1, 1)), np.zeros((1, 1, 1), dtype=np.int64), 1, padding=1)
    with pytest.raises(ValueError, match=r"MaxUnpool2d.*\(2, 2\)"):
        nn.MaxUnpool2d(2)(y.data[0, 0], idx.data[0, 0])


# --------------------------------------------------------------- adaptive max pooling
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("out", [1, 2, 3, 5])
def test_adaptive_max_pool_matches_torch(nd: int, out: int) -> None:
    x = rand(2, 3, *SIZES[:nd])
    x[0, 0].flat[:3] = np.nan
    x[1, 1].flat[2:6] = 1.0  # ties
    fn, tfn = getattr(F, f"adaptive_max_pool{nd}d"), getattr(tF, f"adaptive_max_pool{nd}d")
    compare(lambda t: fn(t, out, True), lambda t: tfn(t, out, True), x, indices=True)
    compare(lambda t: fn(t, out), lambda t: tfn(t, out), x[1])  # unbatched
    layer = getattr(nn, f"AdaptiveMaxPool{nd}d")(out, return_indices=True)
    tlayer = getattr(torch.nn, f"AdaptiveMaxPool{nd}d")(out, return_indices=True)
    assert repr(layer) == repr(tlayer)
    compare(layer, tlayer, x, indices=True)


def test_adaptive_max_pool_keeps_none_axes_and_checks_sizes() -> None:
    x = rand(1, 2, 5, 4)
    compare(lambda t: F.adaptive_max_pool2d(t, (None, 3)),
            lambda t: tF.adaptive_max_pool2d(t, (None, 3)), x)
    with pytest.raises(ValueError, match="output sizes must be positive"):
        F.adaptive_max_pool2d(x, (0, 3))
    with pytest.raises(ValueError, match="output_size must be an int or 2 ints"):
        F.adaptive_max_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match="input must have 4 dims"):
        F.adaptive_max_pool2d(rand(5, 4), 2)


# ------------------------------------------------------------------------ LP pooling
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("p", [1, 2, 3.5])
@pytest.mark.parametrize("k,s,ceil_mode", [(2, None, False), (3, 2, True), (2, 1, False)])
def test_lp_pool_matches_torch(nd: int, p: float, k: int, s, ceil_mode: bool) -> None:
    x = np.random.default_rng(2).random((2, 3, *SIZES[:nd])) + 0.1
    layer = getattr(nn, f"LPPool{nd}d")(p, k, s, ceil_mode)
    tlayer = getattr(torch.nn, f"LPPool{nd}d")(p, k, s, ceil_mode)
    assert repr(layer) == repr(tlayer)
    check_parity(layer, tlayer, x)
    check_parity(layer, tlayer, x[0])


def test_lp_pool_zero_window_has_zero_gradient_and_odd_power_nan_like_torch() -> None:
    x = rand(1, 1, 6)
    x[0, 0, :2] = 0.0
    compare(lambda t: F.lp_pool1d(t, 2, 2), lambda t: tF.lp_pool1d(t, 2, 2), x)
    y = F.lp_pool1d(x, 3, 2).data
    np.testing.assert_array_equal(np.isnan(y), tF.lp_pool1d(torch.from_numpy(x), 3, 2).isnan().numpy())


def test_lp_pool_errors() -> None:
    with pytest.raises(ValueError, match="norm_type must be non-zero"):
        F.lp_pool2d(rand(1, 1, 4, 4), 0, 2)
    with pytest.raises(TypeError, match="norm_type must be a number"):
        F.lp_pool2d(rand(1, 1, 4, 4), "2", 2)


# ------------------------------------------------------------- modules and gradchecks
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_pool_modules_with_ceil_mode_and_indices_match_torch(nd: int) -> None:
    for kind, kwargs in (("Max", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
                         ("Max", dict(kernel_size=2, ceil_mode=True, return_indices=True)),
                         ("Avg", dict(kernel_size=3, stride=2, ceil_mode=True)),
                         ("Avg", dict(kernel_size=2, stride=2, padding=1, ceil_mode=True,
                                      count_include_pad=False))):
        layer = getattr(nn, f"{kind}Pool{nd}d")(**kwargs)
        tlayer = getattr(torch.nn, f"{kind}Pool{nd}d")(**kwargs)
        assert repr(layer) == repr(tlayer)
        compare(layer, tlayer, rand(2, 3, *SIZES[:nd]), indices=kwargs.get("return_indices", False))
        compare(layer, tlayer, rand(3, *SIZES[:nd]), indices=kwargs.get("return_indices", False))


def test_pooling_gradchecks() -> None:
    x = cp.tensor(rand(1, 2, 5, 6), requires_grad=True)  # distinct values: no ties
    cp.gradcheck(lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True), x)
    cp.gradcheck(lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True), x)
    cp.gradcheck(lambda t: F.avg_pool2d(t, 2, 2, 1, ceil_mode=True, count_include_pad=False), x)
    cp.gradcheck(lambda t: F.adaptive_max_pool2d(t, (2, 4)), x)
    cp.gradcheck(lambda t: F.lp_pool2d(t * t + 0.5, 2.5, 2, ceil_mode=True), x)
    _, idx = F.max_pool2d(x, 2, return_indices=True)
    y = cp.tensor(rand(1, 2, 2, 3), requires_grad=True)
    cp.gradcheck(lambda t: F.max_unpool2d(t, idx, 2, output_size=(5, 6)), y)


def test_ceil_mode_window_that_fits_only_past_the_end() -> None:
    """A dilated window longer than the input, accepted by PyTorch in ceil_mode because its
    start lies inside the input; without ceil_mode it is an error."""
    x = rand(1, 1, 4)
    compare(lambda t: F.max_pool1d(t, 3, 2, 0, 2, True), lambda t: tF.max_pool1d(t, 3, 2, 0, 2, True), x)
    with pytest.raises(ValueError, match=r"dilated kernel 5 \(3 taps, dilation 2\) is larger "
                                         r"than the input's length 4"):
        F.max_pool1d(x, 3, 2, 0, 2, False)


def test_pool_arguments_as_pytorch_spells_them() -> None:
    """One-element sequences stand for every axis, an empty stride means the kernel size,
    and a negative divisor is a divisor (only 0 is refused), as in PyTorch."""
    x = rand(1, 2, 6, 6)
    for args in (((3, 3), (1,), (1,), True, False, 2), ((2, 2), (), (0,), False, True, -2),
                 ((4,), (2, 2), (2,), True, True, None)):
        compare(lambda t, a=args: F.avg_pool2d(t, *a), lambda t, a=args: tF.avg_pool2d(t, *a), x)
    compare(lambda t: F.max_pool2d(t, (3,), (), (1,), (1,)),
            lambda t: tF.max_pool2d(t, (3,), (), (1,), (1,)), x)
    with pytest.raises(ValueError, match="divisor_override must be a non-zero int"):
        F.avg_pool2d(x, 2, divisor_override=0)


def test_pool_rule_errors() -> None:
    with pytest.raises(TypeError, match="ceil_mode must be a bool"):
        F.max_pool2d(rand(1, 1, 4, 4), 2, ceil_mode=1.5)
    with pytest.raises(ValueError, match="only the batch may be empty"):
        F.max_pool2d(rand(1, 0, 4, 4), 2)
    with pytest.raises(ValueError, match="only the batch may be empty"):
        F.adaptive_max_pool2d(rand(1, 0, 4, 4), 2)


# ----------------------------------------------------------------------- empty batches
EMPTY = [
    ("max_pool2d", (2,), {}), ("max_pool2d", (3, 2, 1), dict(ceil_mode=True, return_indices=True)),
    ("avg_pool1d", (2,), {}), ("avg_pool3d", (2, 1, 1), dict(ceil_mode=True)),
    ("adaptive_avg_pool2d", ((2, 3),), {}), ("adaptive_max_pool2d", (2,), dict(return_indices=True)),
    ("lp_pool2d", (2, 2), {}), ("max_pool3d", (2,), {}), ("adaptive_max_pool1d", (3,), {}),
]


@pytest.mark.parametrize("name,args,kwargs", EMPTY)
def test_empty_batch_pools_like_torch(name: str, args: tuple, kwargs: dict) -> None:
    nd = int(name[-2])
    x = rand(0, 3, *SIZES[:nd])
    fn, tfn = getattr(F, name), getattr(tF, name)
    compare(lambda t: fn(t, *args, **kwargs), lambda t: tfn(t, *args, **kwargs), x,
            indices=kwargs.get("return_indices", False))


def test_empty_batch_unpools_like_torch() -> None:
    y, idx = F.max_pool2d(rand(0, 2, 4, 4), 2, return_indices=True)
    _, tidx = tF.max_pool2d(torch.zeros(0, 2, 4, 4, dtype=torch.float64), 2, return_indices=True)
    compare(lambda t: F.max_unpool2d(t, idx, 2), lambda t: tF.max_unpool2d(t, tidx, 2), y.data)


@pytest.mark.parametrize("op", [
    lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True),
    lambda t: F.max_pool2d(t, 2, return_indices=True)[0],
    lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda t: F.adaptive_max_pool2d(t, 3),
    lambda t: F.lp_pool2d(t * t, 2, 2),
    lambda t: F.max_unpool2d(*F.max_pool2d(t, 2, return_indices=True), 2),
])
def test_pooling_keeps_float32(op) -> None:
    x = cp.tensor(rand(2, 3, 6, 6).astype(np.float32), requires_grad=True)
    y = op(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_with_indices_spellings_match_torch(nd: int) -> None:
    x = rand(2, 3, *SIZES[:nd])
    name = f"max_pool{nd}d_with_indices"
    compare(lambda t: getattr(F, name)(t, 3, 2, 1, ceil_mode=True),
            lambda t: getattr(tF, name)(t, 3, 2, 1, ceil_mode=True), x, indices=True)
    name = f"adaptive_max_pool{nd}d_with_indices"
    compare(lambda t: getattr(F, name)(t, 2), lambda t: getattr(tF, name)(t, 2), x, indices=True)

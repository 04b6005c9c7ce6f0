"""The fast paths added for speed, each against its slow twin or PyTorch.

Every branch here is a choice a kernel makes by shape or size (flat im2col with
or without the overlap-add input gradient, the transposed weight product, the
disjoint-window fold, scratch-buffer layouts), so each is forced both ways and
held to the same answer.  Nothing here times anything.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import torch  # noqa: E402  (the real module, or a skip on first use)

import convprop
from convprop import _windows, kernels
from convprop.functional import conv2d, max_pool2d
from convprop.kernels import ConvSpec
from convprop.kernels import numpy as reference
from convprop.kernels.numpy import _common, depthwise, flat


def _rel(a, ref):
    ref = np.asarray(ref, np.float64)
    scale = np.abs(ref).max() if ref.size else 0.0
    err = np.abs(np.asarray(a, np.float64) - ref).max() if ref.size else 0.0
    return err / scale if scale else err


def _torch_conv(x, w, b, gy, **kw):
    nd = x.ndim - 2
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = getattr(torch.nn.functional, f"conv{nd}d")(tx, tw, tb, **kw)
    ty.backward(torch.tensor(gy))
    return ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


def _convprop(x, w, b, gy, name, dtype=np.float64, **kw):
    nd = x.ndim - 2
    cx, cw, cb = (convprop.Tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b))
    with kernels.use_backend("numpy"), kernels.force(name, strict=True):
        y = getattr(convprop.functional, f"conv{nd}d")(cx, cw, cb, **kw)
        y.backward(gy.astype(dtype))
    return y.data, cx.grad, cw.grad, cb.grad


def _case(n, c, o, size, kernel, groups=1, seed=0, **kw):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + size)
    w = rng.standard_normal((o, c // groups) + kernel)
    b = rng.standard_normal(o)
    out = getattr(torch.nn.functional, f"conv{len(size)}d")(
        torch.tensor(x), torch.tensor(w), None, groups=groups, **kw).shape
    gy = rng.standard_normal(tuple(out))
    return x, w, b, gy


@pytest.mark.parametrize("fold_cost", [1e-9, 1e9], ids=["fold", "as-forward"])
@pytest.mark.parametrize(
    "n,c,o,size,kernel,groups,kw",
    [
        (3, 2, 6, (9, 11), (5, 3), 1, dict(padding=2)),
        (2, 4, 6, (10, 9), (3, 3), 2, dict(padding=1, dilation=2)),
        (2, 3, 4, (6, 5, 7), (3, 2, 3), 1, dict(padding=1)),
        (2, 6, 4, (20,), (4,), 2, dict(padding=3, dilation=3)),
        (1, 1, 3, (7, 7), (7, 7), 1, dict(padding=0)),
    ],
)
def test_flat_both_input_gradients_match_torch(monkeypatch, fold_cost, n, c, o, size, kernel,
                                               groups, kw):
    """The flat path's two input gradients (overlap-add and forward-on-padded-gy)."""
    monkeypatch.setattr(_common, "FOLD_COST", fold_cost)
    x, w, b, gy = _case(n, c, o, size, kernel, groups, **kw)
    ref = _torch_conv(x, w, b, gy, groups=groups, **kw)
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        got = _convprop(x, w, b, gy, "flat", dtype, groups=groups, **kw)
        for g, r in zip(got, ref):
            assert g.dtype == dtype and g.shape == r.shape
            assert _rel(g, r) <= tol


def test_flat_chunks_and_saved_state(monkeypatch):
    """Several batch chunks (columns not kept), and the kept columns -- and the overlap-add
    input gradient's rows of gy -- released by the weight gradient."""
    x, w, b, gy = _case(5, 3, 4, (8, 7), (3, 3), padding=1)
    ref = _torch_conv(x, w, b, gy, padding=1)
    monkeypatch.setattr(_common, "CHUNK_BYTES", 1)
    monkeypatch.setattr(_common, "CACHE_BYTES", 1)
    for g, r in zip(_convprop(x, w, b, gy, "flat", padding=1), ref):
        assert _rel(g, r) <= 1e-10
    monkeypatch.undo()
    monkeypatch.setattr(_common, "FOLD_COST", 1e-9)  # the overlap-add input gradient
    spec = ConvSpec.of(x.shape, w.shape, 1, 1, 1, 1, np.float64, bias=True)
    y, saved = flat.FLAT.forward(spec, x, w, b, save=True)
    assert isinstance(saved, flat.FlatSaved) and saved.cols and saved.gy_rows is None
    dx = flat.FLAT.input_grad(spec, gy, w, saved)
    assert saved.gy_rows is not None
    dw, db = flat.FLAT.weight_grad(spec, x, gy, saved)
    assert saved.cols is None and saved.gy_rows is None
    for got, r in zip((y, dx, dw, db), ref):
        assert _rel(got, r) <= 1e-10


@pytest.mark.parametrize("depth", [1, 1 << 30], ids=["split", "whole"])
@pytest.mark.parametrize(
    "n,c,o,size,kernel,groups,kw",
    [
        (2, 4, 6, (9, 11), (5, 3), 2, dict(padding=2)),
        (2, 3, 4, (10, 9), (3, 3), 1, dict(padding=1, dilation=2)),
        (2, 3, 4, (6, 5, 7), (3, 2, 3), 1, dict(padding=1)),
    ],
)
def test_flat_split_columns_match_torch(monkeypatch, depth, n, c, o, size, kernel, groups, kw):
    """Columns of the trailing taps only, one product per leading tap (the forward without
    a cache, the input gradient), against copying every tap."""
    monkeypatch.setattr(flat, "SPLIT_MIN_DEPTH", depth)
    monkeypatch.setattr(_common, "FOLD_COST", 1e9)  # the input gradient as a correlation
    x, w, b, gy = _case(n, c, o, size, kernel, groups, **kw)
    ref = _torch_conv(x, w, b, gy, groups=groups, **kw)
    conv = getattr(convprop.functional, f"conv{len(size)}d")
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        with kernels.use_backend("numpy"), kernels.force("flat", strict=True), convprop.no_grad():
            y = conv(convprop.Tensor(x.astype(dtype)), convprop.Tensor(w.astype(dtype)),
                     convprop.Tensor(b.astype(dtype)), groups=groups, **kw)
        assert y.dtype == dtype and _rel(y.data, ref[0]) <= tol
        for g, r in zip(_convprop(x, w, b, gy, "flat", dtype, groups=groups, **kw), ref):
            assert g.dtype == dtype and _rel(g, r) <= tol


@pytest.mark.parametrize("limit", [0, 1 << 30], ids=["direct", "transposed"])
def test_weight_product_orientations_agree(monkeypatch, limit):
    monkeypatch.setattr(_common, "TRANSPOSED_PRODUCT_MAX", limit)
    rng = np.random.default_rng(5)
    g, cols = rng.standard_normal((2, 3, 50)), rng.standard_normal((2, 7, 50))
    got = _common.weight_product(g, cols)
    assert got.shape == (2, 3, 7) and got.flags.c_contiguous
    np.testing.assert_allclose(got, np.einsum("gok,gck->goc", g, cols), rtol=1e-12)
    x, w, b, gy = _case(2, 4, 5, (9, 8), (3, 3), padding=1)
    ref = _torch_conv(x, w, b, gy, padding=1)
    for name in ("gemm", "flat"):
        assert _rel(_convprop(x, w, b, gy, name, padding=1)[2], ref[2]) <= 1e-10


def test_depthwise_row_blocks_and_saved_state(monkeypatch):
    """Blocks of one row and of all rows; the forward's channel-major copy of the input and
    the input gradient's copy of gy are left for the weight gradient, which releases them."""
    x, w, b, gy = _case(3, 6, 6, (9, 10), (3, 3), groups=6, padding=1, dilation=1)
    ref = _torch_conv(x, w, b, gy, padding=1, groups=6)
    for limit in (1, 1 << 30):
        monkeypatch.setattr(depthwise, "ROW_BLOCK_BYTES", limit)
        for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
            for g, r in zip(_convprop(x, w, b, gy, "depthwise", dtype, padding=1, groups=6), ref):
                assert _rel(g, r) <= tol
    spec = ConvSpec.of(x.shape, w.shape, 1, 1, 1, 6, np.float64, bias=True)
    algo = depthwise.DEPTHWISE
    y, saved = algo.forward(spec, x, w, b, save=True)
    assert isinstance(saved, depthwise.DepthwiseSaved)
    assert saved.x_rows is not None and saved.gy_rows is None
    dw, db = algo.weight_grad(spec, x, gy, saved)
    assert saved.x_rows is None and saved.gy_rows is None
    assert _rel(y, ref[0]) <= 1e-10 and _rel(dw, ref[2]) <= 1e-10 and _rel(db, ref[3]) <= 1e-10
    y, saved = algo.forward(spec, x, w, b, save=True)
    dx = algo.input_grad(spec, gy, w, saved)
    assert saved.x_rows is not None and saved.gy_rows is not None
    assert _rel(dx, ref[1]) <= 1e-10
    dw, db = algo.weight_grad(spec, x, gy, saved)
    assert saved.x_rows is None and saved.gy_rows is None
    assert _rel(dw, ref[2]) <= 1e-10 and _rel(db, ref[3]) <= 1e-10


def test_flat_windows_and_fold_are_adjoint():
    """<windows(x), c> == <x, fold(c)>, and each window element is the tap it names."""
    rng = np.random.default_rng(6)
    spatial, kernel, dilation = (5, 6), (2, 3), (2, 1)
    offsets, q = _windows.flat_taps(spatial, kernel, dilation)
    rows = rng.standard_normal((3, 2 * 30))
    length = 30 + q
    view = _windows.flat_windows(rows, spatial, kernel, dilation, length)
    assert view.shape == (3, 2, 3, length) and not view.flags.writeable
    assert view[1, 1, 2, 4] == rows[1, 4 + offsets[5]]
    cols = rng.standard_normal(view.shape)
    folded = _windows.flat_fold_add(np.zeros_like(rows), cols, spatial, kernel, dilation)
    assert np.isclose(np.sum(view * cols), np.sum(rows * folded))
    with pytest.raises(ValueError):
        _windows.flat_windows(rows, spatial, kernel, dilation, length + 1)


@pytest.mark.parametrize(
    "kernel,stride,dilation,disjoint",
    [((2, 2), (2, 2), (1, 1), True), ((2, 3), (3, 3), (1, 1), True),
     ((2, 2), (3, 3), (2, 1), True), ((3, 3), (2, 2), (1, 1), False),
     ((2, 2), (2, 2), (2, 2), False)],
)
def test_fold_add_disjoint_fast_path_matches_per_tap(kernel, stride, dilation, disjoint):
    assert _windows.disjoint(kernel, stride, dilation) == disjoint
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 11, 10))
    view = _windows.windows(x, kernel, stride, dilation)
    cols = rng.standard_normal(view.shape)
    want = np.zeros_like(x)
    for tap, index in _windows.window_taps(kernel, stride, dilation, view.shape[4:]):
        want[(slice(None), slice(None)) + index] += cols[(slice(None), slice(None)) + tap]
    base = rng.standard_normal(x.shape)
    got = _windows.fold_add(base.copy(), cols, kernel, stride, dilation)
    np.testing.assert_allclose(got, base + want, rtol=1e-12, atol=1e-12)
    if not disjoint:
        with pytest.raises(ValueError, match="disjoint"):
            _windows.windows(x, kernel, stride, dilation, writeable=True)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (2, 2, 1), (3, 3, 1), (3, 2, 1)])
def test_max_pool_backward_disjoint_and_overlapping_match_torch(k, s, p):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 9, 8))
    x[0, 0, :2, :2] = 1.5  # ties: the first maximum takes the gradient
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, k, s, p)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    cx = convprop.Tensor(x, requires_grad=True)
    y = max_pool2d(cx, k, s, p)
    y.backward(g)
    np.testing.assert_allclose(y.data, ty.detach().numpy())
    np.testing.assert_allclose(cx.grad, tx.grad.numpy())


def _plan(x_shape, w_shape, **kw):
    spec = ConvSpec.of(x_shape, w_shape, kw.get("stride", 1), kw.get("padding", 0), 1, 1,
                       np.float32)
    return spec, reference.choose(spec)


def test_chooser_sends_short_columns_to_flat():
    assert _plan((64, 1, 28, 28), (6, 1, 5, 5))[1].names == ("flat",) * 3
    assert _plan((8, 72, 16, 16), (72, 72, 3, 3))[1].forward.name == "gemm"
    assert _plan((8, 4, 66), (8, 4, 3))[1].names == ("gemm",) * 3  # 1-D: GEMM
    x, w, b, gy = _case(2, 3, 4, (9, 9), (3, 3), padding=1)
    got = conv2d(convprop.Tensor(x), convprop.Tensor(w), convprop.Tensor(b), padding=1)
    assert _rel(got.data, _torch_conv(x, w, b, gy, padding=1)[0]) <= 1e-10


def test_gemm_layers_plan_stride1_input_gradients_on_flat(monkeypatch):
    """The chooser, and only the chooser, hands a GEMM layer's input gradient to flat."""
    assert reference.flat_input_grad_worthwhile(_plan((1, 1, 16, 16), (1, 1, 3, 3))[0])  # 256/196
    assert not reference.flat_input_grad_worthwhile(_plan((1, 1, 9, 9), (1, 1, 3, 3))[0])  # 81/49
    assert not reference.flat_input_grad_worthwhile(
        _plan((1, 1, 16, 16), (1, 1, 3, 3), stride=2)[0])  # stride 2
    assert not reference.flat_input_grad_worthwhile(_plan((1, 1, 66), (1, 1, 3))[0])  # 1-D
    calls = []
    original = flat.FLAT.input_grad
    monkeypatch.setattr(flat.FLAT, "input_grad",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    x, w, b, gy = _case(2, 72, 8, (14, 14), (3, 3), padding=1)  # 72 * 9 taps: too long for flat
    spec, plan = _plan((2, 72, 14, 14), (8, 72, 3, 3), padding=1)
    assert plan.names == ("gemm", "flat", "gemm")
    cx, cw, cb = (convprop.Tensor(a, requires_grad=True) for a in (x, w, b))
    with kernels.use_backend("numpy"):
        y = conv2d(cx, cw, cb, padding=1)
        y.backward(gy)
    assert calls == [1]
    want = _torch_conv(x, w, b, gy, padding=1)
    for got, ref in zip((y.data, cx.grad, cw.grad, cb.grad), want):
        assert _rel(got, ref) <= 1e-10
    with kernels.use_backend("numpy"), kernels.force("gemm"):  # a forced GEMM: GEMM's own dx
        conv2d(cx, cw, cb, padding=1).backward(gy)
    assert calls == [1]

"""Every convolution algorithm, forced, against PyTorch: forward and all three gradients.

Each algorithm of :data:`convprop.kernels.ALGORITHMS` runs every shape it
supports (stride, dilation, groups, asymmetric padding, odd sizes, N = 0 and
N = 1 where it supports them) in float64 (relative error <= 1e-10 against
PyTorch float64) and in float32 (<= 1e-4 against the float64 answer).  The
chooser's decisions, the strict/fallback behaviour of ``force``, the
forward-to-backward cache and the Winograd transforms are checked too.
Nothing here times anything.
"""

from __future__ import annotations

import numpy as np
import pytest

import convprop
from convprop import kernels
from convprop.functional import conv1d, conv2d, conv3d, conv_transpose2d
from convprop.kernels import _pool, winograd

torch = pytest.importorskip("torch")

CONV = {1: conv1d, 2: conv2d, 3: conv3d}

# (n, c, o, size, kernel, stride, padding, dilation, groups)
SHAPES = [
    (2, 4, 6, (9, 8), (3, 3), 1, 1, 1, 1),
    (2, 5, 7, (16, 13), (3, 3), 1, ((1, 0), (2, 1)), 1, 1),
    (1, 3, 4, (11,), (3,), 1, 1, 1, 1),
    (2, 3, 4, (6, 7, 5), (3, 3, 3), 1, 1, 1, 1),
    (0, 3, 4, (8, 8), (3, 3), 1, 1, 1, 1),
    (2, 6, 4, (9, 8), (1, 1), 1, 0, 1, 1),
    (3, 6, 4, (9, 7), (1, 1), 2, 0, 1, 2),
    (2, 4, 6, (25,), (1,), 3, 1, 1, 1),
    (1, 6, 6, (10, 9), (3, 3), 1, 1, 1, 6),
    (0, 6, 6, (10, 9), (3, 3), 1, 1, 1, 6),
    (0, 4, 4, (12,), (3,), 2, 1, 1, 4),
    (0, 6, 4, (9, 8), (1, 1), 2, 0, 1, 1),
    (0, 3, 4, (40,), (9,), 1, 4, 1, 1),
    (2, 6, 6, (11, 10), (3, 2), 2, 1, 2, 6),
    (2, 4, 4, (30,), (7,), 1, 3, 1, 4),
    (2, 3, 4, (40,), (9,), 1, 4, 1, 1),
    (2, 2, 3, (17, 15), (5, 4), 1, 2, 1, 1),
    (2, 4, 6, (9, 8), (3, 3), 2, 1, 2, 2),
    (1, 3, 4, (7,), (2,), 1, 0, 1, 1),
    (2, 4, 4, (5, 6, 5), (2, 3, 2), (1, 2, 1), 1, 1, 2),
]


def _args(shape):
    n, c, o, size, kernel, stride, padding, dilation, groups = shape
    nd = len(size)
    st = stride if isinstance(stride, tuple) else (stride,) * nd
    dil = (dilation,) * nd
    return n, c, o, size, kernel, st, padding, dil, groups


def _supported(name, shape):
    n, c, o, size, kernel, st, padding, dil, groups = _args(shape)
    return kernels.ALGORITHMS[name].supports(kernel, st, dil, groups, c, o)


def _torch_padding(padding, nd):
    """PyTorch's conv takes symmetric padding only; asymmetric pairs pad the input first."""
    if isinstance(padding, tuple):
        flat = [v for pair in reversed(padding) for v in pair]
        return flat, 0
    return None, padding


def _reference(shape, seed=0):
    """Float64 inputs, output and gradients from PyTorch."""
    n, c, o, size, kernel, st, padding, dil, groups = _args(shape)
    nd = len(size)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + size)
    w = rng.standard_normal((o, c // groups) + kernel)
    b = rng.standard_normal(o)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    pre, tpad = _torch_padding(padding, nd)
    inp = torch.nn.functional.pad(tx, pre) if pre else tx
    ty = getattr(torch.nn.functional, f"conv{nd}d")(inp, tw, tb, st, tpad, dil, groups)
    gy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    ref = (ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy())
    return (x, w, b, gy), ref


def _run(name, shape, inputs, dtype, strict=True):
    n, c, o, size, kernel, st, padding, dil, groups = _args(shape)
    x, w, b, gy = inputs
    cx, cw, cb = (convprop.Tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b))
    with kernels.force(name, strict=strict):
        y = CONV[len(size)](cx, cw, cb, st, padding, dil, groups)
        y.backward(gy.astype(dtype))
    return y.data, cx.grad, cw.grad, cb.grad


def _rel(a, ref):
    scale = np.abs(ref).max() if ref.size else 0.0
    err = np.abs(np.asarray(a, np.float64) - ref).max() if ref.size else 0.0
    return err / scale if scale else err


CASES = [(name, shape) for name in kernels.ALGORITHMS for shape in SHAPES if _supported(name, shape)]


@pytest.mark.parametrize("name,shape", CASES, ids=[f"{a}-{i}" for i, (a, _) in enumerate(CASES)])
def test_algorithm_matches_torch(name, shape):
    inputs, ref = _reference(shape)
    got64 = _run(name, shape, inputs, np.float64)
    got32 = _run(name, shape, inputs, np.float32)
    for g64, g32, r in zip(got64, got32, ref):
        assert g64.shape == r.shape and g64.dtype == np.float64
        assert g32.dtype == np.float32
        assert _rel(g64, r) <= 1e-10
        assert _rel(g32, r) <= 1e-4


def test_every_algorithm_is_exercised():
    for name in kernels.ALGORITHMS:
        assert sum(a == name for a, _ in CASES) >= 2, name


@pytest.mark.parametrize("name", ["winograd", "gemm", "depthwise"])
def test_algorithm_on_layer_sized_float32(name):
    """Larger float32 layers, where accumulated rounding (and Winograd's) shows."""
    shape = {
        "winograd": (2, 32, 32, (20, 20), (3, 3), 1, 1, 1, 1),
        "gemm": (2, 32, 16, (15, 15), (3, 3), 2, 1, 1, 1),
        "depthwise": (2, 16, 16, (20, 20), (5, 5), 1, 2, 1, 16),
    }[name]
    inputs, ref = _reference(shape, seed=1)
    for g32, r in zip(_run(name, shape, inputs, np.float32), ref):
        assert _rel(g32, r) <= 1e-4


@pytest.mark.parametrize("name", sorted(kernels.ALGORITHMS))
def test_conv_transpose_through_forced_algorithm(name):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 6, 5))
    w = rng.standard_normal((4, 4, 3, 3)) if name != "pointwise" else rng.standard_normal((4, 4, 1, 1))
    gy_shape = None
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv_transpose2d(tx, tw)
    gy_shape = tuple(ty.shape)
    gy = rng.standard_normal(gy_shape)
    ty.backward(torch.tensor(gy))
    cx, cw = convprop.Tensor(x, requires_grad=True), convprop.Tensor(w, requires_grad=True)
    with kernels.force(name):
        y = conv_transpose2d(cx, cw)
        y.backward(gy)
    for a, r in ((y.data, ty), (cx.grad, tx.grad), (cw.grad, tw.grad)):
        assert _rel(a, r.detach().numpy()) <= 1e-10


@pytest.mark.parametrize("name", ["gemm", "depthwise", "fft"])
def test_transpose_with_output_padding(name):
    """Stride 1, dilation 2: output_padding makes the padded input longer than out + span."""
    rng = np.random.default_rng(4)
    groups = 3 if name == "depthwise" else 1
    x = rng.standard_normal((2, 3, 5))
    w = rng.standard_normal((3, 3 // groups, 2))
    kw = dict(stride=1, output_padding=1, dilation=2, groups=groups)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv_transpose1d(tx, tw, **kw)
    gy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    cx, cw = convprop.Tensor(x, requires_grad=True), convprop.Tensor(w, requires_grad=True)
    with kernels.force(name):
        y = convprop.functional.conv_transpose1d(cx, cw, **kw)
        y.backward(gy)
    for a, r in ((y.data, ty), (cx.grad, tx.grad), (cw.grad, tw.grad)):
        assert _rel(a, r.detach().numpy()) <= 1e-10


def test_force_falls_back_or_raises_on_unsupported_shape():
    shape = (2, 4, 6, (9, 8), (3, 3), 2, 1, 1, 1)  # stride 2: no Winograd
    inputs, ref = _reference(shape)
    got = _run("winograd", shape, inputs, np.float64, strict=False)
    for g, r in zip(got, ref):
        assert _rel(g, r) <= 1e-10
    with pytest.raises(ValueError, match="does not support"):
        _run("winograd", shape, inputs, np.float64, strict=True)
    with pytest.raises(ValueError, match="unknown algorithm"):
        with kernels.force("nope"):
            pass


@pytest.mark.parametrize(
    "kernel,stride,dilation,groups,c,o,size,expected",
    [
        ((1, 1), (1, 1), (1, 1), 1, 256, 64, (28, 28), "pointwise"),
        ((1, 1), (2, 2), (1, 1), 1, 64, 128, (56, 56), "pointwise"),
        ((3, 3), (1, 1), (1, 1), 128, 128, 128, (30, 30), "depthwise"),
        ((3, 3), (1, 1), (1, 1), 1, 64, 64, (58, 58), "winograd"),
        ((3, 3), (1, 1), (1, 1), 1, 96, 96, (58, 58), "winograd"),
        ((3, 3, 3), (1, 1, 1), (1, 1, 1), 1, 16, 32, (18, 34, 34), "flat"),
        ((3, 3, 3), (1, 1, 1), (1, 1, 1), 1, 32, 32, (18, 34, 34), "winograd"),
        ((3, 3), (1, 1), (1, 1), 1, 512, 512, (9, 9), "gemm"),
        ((3, 3), (1, 1), (1, 1), 1, 128, 128, (30, 30), "winograd"),
        ((3, 3), (1, 1), (1, 1), 1, 256, 256, (16, 16), "gemm"),
        ((3, 3), (1, 1), (1, 1), 1, 32, 64, (34, 34), "flat"),
        ((3, 3), (2, 2), (1, 1), 1, 64, 128, (58, 58), "gemm"),
        ((3, 3), (1, 1), (2, 2), 1, 64, 64, (32, 32), "flat"),
        ((3, 3), (1, 1), (1, 1), 1, 3, 32, (34, 34), "flat"),
        ((5, 5), (1, 1), (1, 1), 1, 6, 16, (14, 14), "flat"),
        ((3,), (1,), (1,), 1, 128, 128, (66,), "gemm"),
        ((31,), (1,), (1,), 1, 16, 32, (16030,), "gemm"),
        ((127,), (1,), (1,), 1, 16, 16, (8126,), "fft"),
        ((11, 11), (1, 1), (1, 1), 1, 16, 16, (74, 74), "fft"),
    ],
)
def test_chooser(kernel, stride, dilation, groups, c, o, size, expected):
    assert kernels.choose(kernel, stride, dilation, groups, c, o, 8, size) == expected


def test_chooser_keeps_float16_off_winograd():
    # Winograd's transforms in float16 cost ~25x GEMM's error (1.3e-2 relative vs 4.4e-4)
    args = ((3, 3), (1, 1), (1, 1), 1, 128, 128, 1, (66, 66))
    assert kernels.choose(*args) == "winograd"
    assert kernels.choose(*args, np.float32) == "winograd"
    assert kernels.choose(*args, np.float64) == "winograd"
    assert kernels.choose(*args, np.float16) == "gemm"
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 128, 64, 64))
    w = rng.standard_normal((128, 128, 3, 3)) / 34
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy()
    xt = convprop.Tensor(x.astype(np.float16), requires_grad=True)
    wt = convprop.Tensor(w.astype(np.float16), requires_grad=True)
    y = conv2d(xt, wt, padding=1)
    assert y.dtype == np.float16
    assert np.abs(y.data.astype(np.float64) - ref).max() / np.abs(ref).max() < 2e-3
    y.backward(np.ones(y.shape, np.float16))  # the backward follows the forward's pick
    assert np.isfinite(xt.grad).all() and np.isfinite(wt.grad).all()
    with kernels.force("winograd", strict=True):  # forcing it still runs Winograd
        y16 = conv2d(x[:, :, :16, :16].astype(np.float16), w.astype(np.float16), padding=1)
    assert y16.dtype == np.float16 and np.isfinite(y16.data).all()


def test_chooser_without_scipy(monkeypatch):
    from convprop.kernels import fft

    monkeypatch.setattr(fft, "_scipy_fft", lambda: None)
    assert not fft.supports((127,), (1,), (1,), 1, 16, 16)
    assert kernels.choose((127,), (1,), (1,), 1, 16, 16, 8, (8126,)) == "gemm"


@pytest.mark.parametrize("name", ["gemm", "winograd", "fft"])
def test_forward_cache_is_used_and_released(name):
    rng = np.random.default_rng(3)
    shape = (2, 4, 6, (12, 12), (3, 3), 1, 1, 1, 1)
    inputs, ref = _reference(shape)
    x, w, b, gy = inputs
    cache: dict = {}
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    with kernels.force(name):
        y = kernels.conv_forward(xp, w, (1, 1), (1, 1), 1, cache=cache)
    assert cache["algorithm"] == name and len(cache) == 2  # the algorithm and its saved work
    dw = kernels.conv_weight_grad(xp, gy, (3, 3), (1, 1), (1, 1), 1, cache=cache)
    assert list(cache) == ["algorithm"]
    np.testing.assert_allclose(y + b.reshape(-1, 1, 1), ref[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, ref[2], rtol=1e-10, atol=1e-9)
    del rng


def test_backward_runs_the_forward_algorithm():
    """The cache pins the algorithm: a force() changed between forward and backward is ignored."""
    shape = (2, 4, 6, (9, 8), (3, 3), 1, 1, 1, 1)
    inputs, ref = _reference(shape)
    x, w, b, gy = inputs
    cx, cw = convprop.Tensor(x, requires_grad=True), convprop.Tensor(w, requires_grad=True)
    with kernels.force("winograd"):
        y = conv2d(cx, cw, b, padding=1)
    with kernels.force("pointwise", strict=True):
        y.backward(gy)  # consulting the chooser would raise: pointwise has no 3x3
    assert _rel(cw.grad, ref[2]) <= 1e-10


def test_winograd_transforms_are_exact():
    """A^T [(G g) * (B^T d)] equals the direct 3-tap correlation for every d and g."""
    for m in winograd.POINTS:
        at, g, bt = winograd.transforms(m)
        assert at.shape == (m, m + 2) and g.shape == (m + 2, 3) and bt.shape == (m + 2, m + 2)
        assert np.array_equal(bt, np.round(bt))
        for i in range(m):
            for k in range(3):
                for j in range(m + 2):
                    assert abs(np.sum(at[i] * g[:, k] * bt[:, j]) - (j == i + k)) < 1e-12
    _, _, bt4 = winograd.transforms(4)
    assert bt4[0].tolist() == [4, 0, -5, 0, 1, 0]  # Lavin & Gray's F(4, 3)


def test_pool_threads_give_the_same_answer():
    shape = (3, 8, 8, (14, 14), (3, 3), 1, 1, 1, 1)
    inputs, ref = _reference(shape)
    before = _pool.get_threads()
    threshold, copy_threshold = _pool.MIN_PARALLEL_BYTES, _pool.MIN_PARALLEL_COPY_BYTES
    try:
        _pool.MIN_PARALLEL_BYTES = _pool.MIN_PARALLEL_COPY_BYTES = 0
        for threads in (1, 3):
            kernels.set_threads(threads)
            for name in ("gemm", "winograd", "pointwise", "depthwise", "flat"):
                if not _supported(name, shape):
                    continue
                for g, r in zip(_run(name, shape, inputs, np.float64), ref):
                    assert _rel(g, r) <= 1e-10
        dshape = (2, 6, 6, (11, 10), (3, 3), 1, 1, 1, 6)
        dinputs, dref = _reference(dshape)
        for g, r in zip(_run("depthwise", dshape, dinputs, np.float64), dref):
            assert _rel(g, r) <= 1e-10
    finally:
        _pool.MIN_PARALLEL_BYTES, _pool.MIN_PARALLEL_COPY_BYTES = threshold, copy_threshold
        kernels.set_threads(before)

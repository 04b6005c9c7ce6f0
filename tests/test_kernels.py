"""Every convolution algorithm, forced, against PyTorch: forward and all three gradients.

Each algorithm of each backend (:func:`convprop.kernels.algorithms`; ``numba`` where
it is available) runs every shape it supports (stride, dilation, groups,
asymmetric padding, odd sizes, N = 0 and N = 1 where it supports them) in float64
(relative error <= 1e-10 against PyTorch float64) and in float32 (<= 1e-4 against
the float64 answer).  The chooser's plans, the strict/fallback behaviour of
``force``, the typed saved state between forward and backward, the Winograd
transforms and the backend registry (per thread, environment variable, the
fallback when the compiled backend cannot be imported) are checked too.  Nothing
here times anything.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import types
import warnings

import backends
import numpy as np
import pytest
from oracle import torch  # noqa: E402  (the real module, or a skip on first use)

import convprop
from convprop import kernels
from convprop.functional import conv1d, conv2d, conv3d, conv_transpose2d
from convprop.kernels import ConvSpec, Plan, _pool, backend
from convprop.kernels.numpy import fft, gemm, winograd

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


def _spec(shape, dtype=np.float64):
    n, c, o, size, kernel, st, padding, dil, groups = _args(shape)
    return ConvSpec.of((n, c) + size, (o, c // groups) + kernel, st, padding, dil, groups, dtype)


def _supported(backend_name, name, shape):
    return kernels.algorithms(backend_name)[name].supports(_spec(shape))


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


def _run(name, shape, inputs, dtype, strict=True, backend_name="numpy"):
    n, c, o, size, kernel, st, padding, dil, groups = _args(shape)
    x, w, b, gy = inputs
    cx, cw, cb = (convprop.Tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b))
    with backends.running_on(backend_name), kernels.force(name, strict=strict):
        y = CONV[len(size)](cx, cw, cb, st, padding, dil, groups)
        y.backward(gy.astype(dtype))
    return y.data, cx.grad, cw.grad, cb.grad


def _rel(a, ref):
    scale = np.abs(ref).max() if ref.size else 0.0
    err = np.abs(np.asarray(a, np.float64) - ref).max() if ref.size else 0.0
    return err / scale if scale else err


def _cases():
    """(backend, algorithm, shape) for every supported shape; a skipped placeholder per
    unavailable backend."""
    out = []
    for p in backends.algorithm_params():
        backend_name, name = p.values
        if name is None:
            out.append(pytest.param(backend_name, None, None, marks=p.marks, id=p.id))
            continue
        out += [pytest.param(backend_name, name, shape, id=f"{p.id}-{i}")
                for i, shape in enumerate(SHAPES) if _supported(backend_name, name, shape)]
    return out


CASES = _cases()


@pytest.mark.parametrize("backend_name,name,shape", CASES)
def test_algorithm_matches_torch(backend_name, name, shape):
    inputs, ref = _reference(shape)
    got64 = _run(name, shape, inputs, np.float64, backend_name=backend_name)
    got32 = _run(name, shape, inputs, np.float32, backend_name=backend_name)
    for g64, g32, r in zip(got64, got32, ref):
        assert g64.shape == r.shape and g64.dtype == np.float64
        assert g32.dtype == np.float32
        assert _rel(g64, r) <= 1e-10
        assert _rel(g32, r) <= 1e-4


@pytest.mark.parametrize("backend_name", backends.params())
def test_every_algorithm_is_exercised(backend_name):
    names = kernels.algorithms(backend_name)
    assert names, backend_name
    for name in names:
        assert sum(p.values[:2] == (backend_name, name) for p in CASES) >= 2, (backend_name, name)


LAYER_SIZED = {
    "winograd": (2, 32, 32, (20, 20), (3, 3), 1, 1, 1, 1),
    "gemm": (2, 32, 16, (15, 15), (3, 3), 2, 1, 1, 1),
    "depthwise": (2, 16, 16, (20, 20), (5, 5), 1, 2, 1, 16),
}


@pytest.mark.parametrize("backend_name,name",
                         backends.algorithm_params(lambda _, name: name in LAYER_SIZED))
def test_algorithm_on_layer_sized_float32(backend_name, name):
    """Larger float32 layers, where accumulated rounding (and Winograd's) shows."""
    shape = LAYER_SIZED[name]
    inputs, ref = _reference(shape, seed=1)
    for g32, r in zip(_run(name, shape, inputs, np.float32, backend_name=backend_name), ref):
        assert _rel(g32, r) <= 1e-4


@pytest.mark.parametrize("backend_name,name", backends.algorithm_params())
def test_conv_transpose_through_forced_algorithm(backend_name, name):
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
    with backends.running_on(backend_name), kernels.force(name):
        y = conv_transpose2d(cx, cw)
        y.backward(gy)
    for a, r in ((y.data, ty), (cx.grad, tx.grad), (cw.grad, tw.grad)):
        assert _rel(a, r.detach().numpy()) <= 1e-10


@pytest.mark.parametrize("backend_name,name", backends.algorithm_params(
    lambda _, name: name in ("gemm", "depthwise", "fft")))
def test_transpose_with_output_padding(backend_name, name):
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
    with backends.running_on(backend_name), kernels.force(name):
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
    with pytest.raises(ValueError, match="unknown algorithm 'nope'"):
        with kernels.force("nope"):
            pass


def _numpy_plan(kernel, stride, dilation, groups, c, o, size, dtype=np.float32, n=8):
    """The NumPy backend's plan for an unpadded ``(n, c, *size)`` input (``size`` as padded)."""
    spec = ConvSpec.of((n, c) + tuple(size), (o, c // groups) + tuple(kernel), stride, 0,
                       dilation, groups, dtype)
    return kernels.load_backend("numpy").choose(spec)


@pytest.mark.parametrize(
    "kernel,stride,dilation,groups,c,o,size,expected",
    [
        ((1, 1), (1, 1), (1, 1), 1, 256, 64, (28, 28), "pointwise"),
        ((1, 1), (2, 2), (1, 1), 1, 64, 128, (56, 56), "pointwise"),
        ((3, 3), (1, 1), (1, 1), 128, 128, 128, (30, 30), "depthwise"),
        ((3, 3), (1, 1), (1, 1), 1, 64, 64, (58, 58), "winograd flat winograd"),
        ((3, 3), (1, 1), (1, 1), 1, 96, 96, (58, 58), "winograd flat winograd"),
        ((3, 3, 3), (1, 1, 1), (1, 1, 1), 1, 16, 32, (18, 34, 34), "flat"),
        ((3, 3, 3), (1, 1, 1), (1, 1, 1), 1, 32, 32, (18, 34, 34), "winograd flat winograd"),
        ((3, 3), (1, 1), (1, 1), 1, 512, 512, (9, 9), "gemm"),  # 81/49 junk: GEMM's own dx
        ((3, 3), (1, 1), (1, 1), 1, 128, 128, (30, 30), "winograd flat winograd"),
        ((3, 3), (1, 1), (1, 1), 1, 256, 256, (16, 16), "gemm flat gemm"),
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
    """One name: all three passes; three: forward, input gradient, weight gradient."""
    names = expected.split()
    want = tuple(names) if len(names) == 3 else (names[0],) * 3
    assert _numpy_plan(kernel, stride, dilation, groups, c, o, size).names == want


def test_chooser_keeps_float16_off_winograd():
    # Winograd's transforms in float16 cost ~25x GEMM's error (1.3e-2 relative vs 4.4e-4)
    args = ((3, 3), (1, 1), (1, 1), 1, 128, 128, (66, 66))
    assert _numpy_plan(*args, dtype=np.float32).forward.name == "winograd"
    assert _numpy_plan(*args, dtype=np.float64).forward.name == "winograd"
    assert _numpy_plan(*args, dtype=np.float16).forward.name == "gemm"
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 128, 64, 64))
    w = rng.standard_normal((128, 128, 3, 3)) / 34
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy()
    xt = convprop.Tensor(x.astype(np.float16), requires_grad=True)
    wt = convprop.Tensor(w.astype(np.float16), requires_grad=True)
    with kernels.use_backend("numpy"):
        y = conv2d(xt, wt, padding=1)
        assert y.dtype == np.float16
        assert np.abs(y.data.astype(np.float64) - ref).max() / np.abs(ref).max() < 2e-3
        y.backward(np.ones(y.shape, np.float16))  # the backward follows the forward's plan
        assert np.isfinite(xt.grad).all() and np.isfinite(wt.grad).all()
        with kernels.force("winograd", strict=True):  # forcing it still runs Winograd
            y16 = conv2d(x[:, :, :16, :16].astype(np.float16), w.astype(np.float16), padding=1)
    assert y16.dtype == np.float16 and np.isfinite(y16.data).all()


def test_chooser_without_scipy(monkeypatch):
    monkeypatch.setattr(fft, "_scipy_fft", lambda: None)
    assert not fft.FFT.supports(_spec((8, 16, 16, (8126,), (127,), 1, 0, 1, 1)))
    assert _numpy_plan((127,), (1,), (1,), 1, 16, 16, (8126,)).names == ("gemm",) * 3


@pytest.mark.parametrize("name,kind,fields", [
    ("gemm", gemm.GemmSaved, ("cols", "xp")),
    ("winograd", winograd.WinogradSaved, ("tiles",)),
    ("fft", fft.FftSaved, ("spectrum",)),
])
def test_saved_state_is_typed_used_and_released(name, kind, fields):
    """The forward's saved state is the algorithm's own small dataclass; the weight gradient
    reads it and leaves nothing behind."""
    shape = (2, 4, 6, (12, 12), (3, 3), 1, 1, 1, 1)
    inputs, ref = _reference(shape)
    x, w, b, gy = inputs
    algo = kernels.algorithms("numpy")[name]
    spec = ConvSpec.of(x.shape, w.shape, 1, 1, 1, 1, np.float64, bias=True)
    y, saved = algo.forward(spec, x, w, b, save=True)
    assert isinstance(saved, kind) and isinstance(saved, kernels.Saved)
    assert any(getattr(saved, f) is not None for f in fields)
    assert algo.forward(spec, x, w, b, save=False)[1] is None
    dw, db = algo.weight_grad(spec, x, gy, saved)
    assert all(getattr(saved, f) is None for f in fields)
    np.testing.assert_allclose(y, ref[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, ref[2], rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(db, ref[3], rtol=1e-10, atol=1e-10)
    dx = algo.input_grad(spec, gy, w, None)
    np.testing.assert_allclose(dx, ref[1], rtol=1e-10, atol=1e-10)


def test_backward_runs_the_forward_plan():
    """The plan is fixed at the forward: a force() changed before the backward is ignored."""
    shape = (2, 4, 6, (9, 8), (3, 3), 1, 1, 1, 1)
    inputs, ref = _reference(shape)
    x, w, b, gy = inputs
    cx, cw = convprop.Tensor(x, requires_grad=True), convprop.Tensor(w, requires_grad=True)
    with kernels.use_backend("numpy"):
        with kernels.force("winograd"):
            y = conv2d(cx, cw, b, padding=1)
        with kernels.force("pointwise", strict=True):
            y.backward(gy)  # consulting the chooser would raise: pointwise has no 3x3
    assert _rel(cw.grad, ref[2]) <= 1e-10 and _rel(cx.grad, ref[1]) <= 1e-10


def test_saved_state_goes_only_to_the_same_algorithm(monkeypatch):
    """A Winograd forward planned with the flat path's input gradient: that pass gets no saved
    state, the Winograd weight gradient gets the forward's and releases it."""
    seen = {}
    flat_algo = kernels.algorithms("numpy")["flat"]
    wino = kernels.algorithms("numpy")["winograd"]
    real_dx, real_dw, real_fwd = flat_algo.input_grad, wino.weight_grad, wino.forward

    def forward(spec, x, w, b, save):
        y, seen["forward"] = real_fwd(spec, x, w, b, save)
        return y, seen["forward"]

    def input_grad(spec, gy, w, saved):
        seen["dx"] = saved
        return real_dx(spec, gy, w, saved)

    def weight_grad(spec, x, gy, saved):
        seen["dw"] = saved
        return real_dw(spec, x, gy, saved)

    monkeypatch.setattr(wino, "forward", forward)
    monkeypatch.setattr(flat_algo, "input_grad", input_grad)
    monkeypatch.setattr(wino, "weight_grad", weight_grad)
    monkeypatch.setattr(kernels, "plan", lambda *a, **k: Plan(wino, flat_algo, wino))
    shape = (2, 4, 6, (9, 8), (3, 3), 1, 1, 1, 1)
    inputs, ref = _reference(shape)
    x, w, b, gy = inputs
    cx, cw, cb = (convprop.Tensor(a, requires_grad=True) for a in (x, w, b))
    y = conv2d(cx, cw, cb, padding=1)
    y.backward(gy)
    assert seen["dx"] is None
    assert isinstance(seen["forward"], winograd.WinogradSaved) and seen["dw"] is seen["forward"]
    assert seen["forward"].tiles is None  # released by the weight gradient
    for got, r in zip((y.data, cx.grad, cw.grad, cb.grad), ref):
        assert _rel(got, r) <= 1e-10


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
                if not _supported("numpy", name, shape):
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


# ------------------------------------------------------------------- backends
def test_import_convprop_does_not_import_numba():
    code = ("import sys, convprop, convprop.kernels, convprop.functional; "
            "assert 'numba' not in sys.modules, 'numba imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_environment_variable_sets_the_process_default():
    code = ("import sys, numpy as np, convprop; from convprop import kernels; "
            "y = convprop.functional.conv1d(np.ones((1, 2, 5)), np.ones((3, 2, 2))); "
            "print(kernels.default_backend_name(), kernels.get_backend().name, "
            "'numba' in sys.modules)")
    env = dict(__import__("os").environ, CONVPROP_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["numpy", "numpy", "False"]
    env["CONVPROP_BACKEND"] = "cupy"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode != 0 and "CONVPROP_BACKEND='cupy' is not a backend" in out.stderr


def test_default_is_numba_when_installed(monkeypatch):
    """Looked up with find_spec (not imported)."""
    monkeypatch.setattr(backend, "_default", [])
    monkeypatch.delenv(backend.ENV, raising=False)
    monkeypatch.delitem(sys.modules, "numba", raising=False)  # an earlier test may have loaded it
    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: object())
    assert kernels.default_backend_name() == "numba"
    monkeypatch.setattr(backend, "_default", [])
    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: None)
    assert kernels.default_backend_name() == "numpy"


def test_unknown_backend_is_a_value_error():
    for call in (lambda: kernels.use_backend("cupy").__enter__(),
                 lambda: kernels.set_backend("cupy"), lambda: kernels.load_backend("cupy")):
        with pytest.raises(ValueError,
                           match=r"unknown backend 'cupy'; choose from \['numpy', 'numba'\]"):
            call()


def test_backend_force_and_benchmark_are_per_thread():
    """Like grad mode: another thread keeps the process default and its own switches."""
    seen = {}

    def other():
        seen["backend"] = kernels.get_backend().name
        seen["forced"] = kernels.plan(_spec(SHAPES[0])).names
        seen["benchmark"] = kernels.benchmark_enabled()

    with kernels.use_backend("numpy") as be, kernels.force("gemm"), kernels.benchmark():
        assert be.name == "numpy" and be.xp is np
        assert kernels.plan(_spec(SHAPES[0])).names == ("gemm",) * 3
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen["backend"] == kernels.load_backend(kernels.default_backend_name()).name
    assert seen["forced"] == kernels.choose(_spec(SHAPES[0])).names != ("gemm",) * 3
    assert seen["benchmark"] is False
    kernels.set_backend("numpy")
    try:
        assert kernels.get_backend().name == "numpy"
    finally:
        kernels.set_backend(None)


def test_numba_backend_falls_back_to_numpy_with_one_warning(monkeypatch):
    monkeypatch.setattr(backend, "_built", {})
    monkeypatch.setitem(sys.modules, "convprop.kernels.numba", None)  # import fails
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = kernels.load_backend("numba")
        with kernels.use_backend("numba") as be:
            y = conv1d(np.ones((1, 2, 5)), np.ones((3, 2, 2)))
        kernels.load_backend("numba")
    assert first.name == be.name == "numpy"
    np.testing.assert_array_equal(y.data, np.full((1, 3, 4), 4.0))
    mine = [w for w in caught if "numba backend is unavailable" in str(w.message)]
    assert len(mine) == 1 and issubclass(mine[0].category, RuntimeWarning)


class _Counted:
    """A stand-in compiled algorithm: NumPy's GEMM under another name, counting its calls."""

    name = "compiled_gemm"

    def __init__(self):
        self.calls = []

    def supports(self, spec):
        return spec.groups == 1

    def forward(self, spec, x, w, b, save):
        self.calls.append("forward")
        return gemm.GEMM.forward(spec, x, w, b, save)

    def input_grad(self, spec, gy, w, saved):
        self.calls.append("input_grad")
        return gemm.GEMM.input_grad(spec, gy, w, saved)

    def weight_grad(self, spec, x, gy, saved):
        self.calls.append("weight_grad")
        return gemm.GEMM.weight_grad(spec, x, gy, saved)


def test_numba_backend_plumbing_with_a_stand_in_package(monkeypatch):
    """The registry builds ``numba`` from ``convprop.kernels.numba``'s ALGORITHMS and
    ``choose(spec, fallback)``: its own algorithms first, NumPy's after, its plan."""
    algo = _Counted()
    fake = types.ModuleType("convprop.kernels.numba")
    fake.ALGORITHMS = (algo,)
    fake.choose = lambda spec, fallback: (
        Plan(algo, fallback.input_grad, fallback.weight_grad) if algo.supports(spec) else fallback)
    monkeypatch.setattr(backend, "_built", {})
    monkeypatch.setitem(sys.modules, "convprop.kernels.numba", fake)
    monkeypatch.setitem(sys.modules, "numba", types.ModuleType("numba"))
    shape = (2, 4, 6, (9, 8), (3, 3), 1, 1, 1, 1)
    inputs, ref = _reference(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        with kernels.use_backend("numba") as be:
            assert be.name == "numba" and be.xp is np
            assert list(kernels.algorithms())[:2] == ["compiled_gemm", "gemm"]
            plan = kernels.plan(_spec(shape))
            assert plan.names == ("compiled_gemm",) + kernels.choose(_spec(shape)).names[1:]
            assert plan.names[1:] == kernels.load_backend("numpy").choose(_spec(shape)).names[1:]
            got = _run("compiled_gemm", shape, inputs, np.float64, backend_name="numba")
            assert algo.calls == ["forward", "input_grad", "weight_grad"]
            with pytest.raises(ValueError, match="unknown algorithm 'compiled_gemm'"):
                with kernels.use_backend("numpy"), kernels.force("compiled_gemm"):
                    pass
    for g, r in zip(got, ref):
        assert _rel(g, r) <= 1e-10


# ----------------------------------------------------------------- dtype rule
@pytest.mark.parametrize("op,x_shape,w_shape", [
    (conv2d, (1, 2, 5, 5), (3, 2, 3, 3)),
    (conv_transpose2d, (1, 2, 5, 5), (2, 3, 3, 3)),
])
def test_mixed_dtypes_are_a_type_error(op, x_shape, w_shape):
    """As in PyTorch: no silent promotion of a float32 operand to float64."""
    name = op.__name__
    x64, w32 = np.ones(x_shape), np.ones(w_shape, np.float32)
    with pytest.raises(TypeError, match=f"{name}: input is float64 but weight is float32; "
                                        r"convert one \(tensor.astype\(dtype\)\)"):
        op(x64, w32)
    with pytest.raises(TypeError, match=f"{name}: input and weight are float32 but bias is float64"):
        op(x64.astype(np.float32), w32, np.ones(3))


@pytest.mark.parametrize("size,k,s,p,op,d", [
    (1, 1, 3, 1, 2, 1),  # op > p with nothing left of the convolution's input but padding
    (2, 1, 3, 1, 2, 1), (3, 2, 3, 0, 2, 1), (2, 3, 2, 0, 1, 1), (2, 2, 1, 0, 1, 2),
    (3, 3, 2, 1, 1, 1),  # op == p
])
def test_transpose_output_padding_past_padding(backend, size, k, s, p, op, d):
    """``output_padding > padding``: the positions past the adjoint convolution's input are
    zero (plus bias) and get no gradient; against PyTorch on each backend."""
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((2, 2, size)), rng.standard_normal((2, 3, k)), rng.standard_normal(3)
    kw = dict(stride=s, padding=p, output_padding=op, dilation=d)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv_transpose1d(tx, tw, tb, **kw)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    cx, cw, cb = (convprop.Tensor(a, requires_grad=True) for a in (x, w, b))
    y = convprop.functional.conv_transpose1d(cx, cw, cb, **kw)
    y.backward(g)
    for a, r in ((y.data, ty), (cx.grad, tx.grad), (cw.grad, tw.grad), (cb.grad, tb.grad)):
        assert a.shape == tuple(r.shape) and _rel(a, r.detach().numpy()) <= 1e-10

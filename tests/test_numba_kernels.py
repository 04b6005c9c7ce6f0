"""The compiled (Numba) convolution algorithms against PyTorch, naive loops, and each other.

Every algorithm of :data:`convprop.kernels.numba.ALGORITHMS` runs every shape it
supports (1-D/2-D/3-D, stride, dilation, groups, asymmetric padding, odd sizes,
bias and none, N = 0 and N = 1): float64 within 1e-10 of PyTorch float64 and of
the naive loops of ``tests/reference.py`` (wrapped below as a tiny NumPy
algorithm object, which also serves as the fallback plan of the chooser tests),
float32 within 1e-4 of the float64 answer.  The numerical core of each kernel
(span, pack/col2im, the depthwise plane correlations and tap sums) is checked
against its own naive NumPy loops.  Compilation is bounded: one signature per
kernel and data type, loaded from Numba's cache after the first run.
"""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
import types

import numpy as np
import pytest
from reference import conv_ref, conv_ref_vjp, zero_pad

from convprop.kernels.numba import (
    ALGORITHMS,
    DEPTHWISE,
    IM2COL,
    MIN_FLOPS,
    _common,
    choose,
    depthwise,
    im2col,
)
from convprop.kernels.spec import ConvSpec, Plan, Saved

pytest.importorskip("numba", reason="numba is not installed: the compiled backend is unavailable")
from kernel_cases import arrays, make_spec, torch_answer  # noqa: E402


class NaiveLoops:
    """The convolution by definition (``tests/reference.py``), as an :class:`Algorithm`."""

    name = "naive"

    def supports(self, spec: ConvSpec) -> bool:
        return True

    def forward(self, spec, x, w, b, save):
        y = conv_ref(x, w, b, spec.stride, spec.pads, spec.dilation, spec.groups)
        return y.astype(spec.dtype), None

    def input_grad(self, spec, gy, w, saved: Saved | None):
        x = np.zeros(spec.x_shape, spec.dtype)
        return conv_ref_vjp(x, w, gy, spec.stride, spec.pads, spec.dilation, spec.groups)[0]

    def weight_grad(self, spec, x, gy, saved: Saved | None):
        w = np.zeros(spec.w_shape, spec.dtype)
        _, dw, db = conv_ref_vjp(x, w, gy, spec.stride, spec.pads, spec.dilation, spec.groups)
        return dw, (db if spec.bias else None)


NAIVE = NaiveLoops()
NAIVE_PLAN = Plan(NAIVE, NAIVE, NAIVE)

# (n, c, o, size, kernel, stride, pads, dilation, groups, bias)
SHAPES = [
    (2, 4, 6, (9, 8), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),
    (2, 4, 6, (9, 8), (3, 3), (2, 1), ((2, 0), (1, 3)), (1, 2), 2, True),
    (3, 3, 6, (9, 8), (2, 4), (1, 1), ((0, 1), (3, 1)), (2, 1), 3, False),
    (2, 5, 7, (16, 13), (5, 4), (1, 1), ((2, 2), (2, 1)), (1, 1), 1, True),
    (2, 6, 4, (9, 8), (1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), 2, True),
    (1, 3, 5, (11,), (3,), (2,), ((1, 2),), (1,), 1, True),
    (2, 4, 4, (30,), (7,), (1,), ((3, 3),), (1,), 4, False),
    (2, 2, 4, (5, 6, 7), (3, 2, 3), (1, 2, 1), ((1, 0), (0, 2), (1, 1)), (1, 1, 2), 2, True),
    (0, 3, 4, (8, 8), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),
    # depthwise (groups == C == O): 3x3 unrolled, strided, dilated, odd kernels, big padding
    (2, 3, 3, (9, 8), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 3, True),
    (2, 3, 3, (10, 9), (3, 3), (1, 1), ((2, 1), (0, 2)), (2, 2), 3, False),
    (2, 3, 3, (9, 8), (3, 3), (2, 1), ((2, 0), (1, 3)), (1, 2), 3, True),
    (2, 3, 3, (9, 8), (2, 4), (1, 1), ((0, 1), (3, 1)), (2, 1), 3, True),
    (1, 3, 3, (9, 8), (2, 4), (3, 2), ((0, 1), (3, 1)), (2, 1), 3, False),
    (1, 2, 2, (5, 5), (2, 2), (1, 1), ((3, 3), (2, 0)), (1, 1), 2, True),
    (1, 4, 4, (11,), (3,), (2,), ((1, 2),), (1,), 4, True),
    (2, 2, 2, (5, 6, 7), (3, 2, 3), (1, 2, 1), ((1, 0), (0, 2), (1, 1)), (1, 1, 2), 2, True),
    (0, 3, 3, (6, 6), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 3, True),
]



def run(algo, spec: ConvSpec, x, w, b, gy):
    """Forward and all gradients of ``algo``, in ``spec.dtype``; ``db`` None without bias."""
    cast = [None if a is None else a.astype(spec.dtype, copy=False) for a in (x, w, b, gy)]
    x, w, b, gy = cast
    y, saved = algo.forward(spec, x, w, b, True)
    dx = algo.input_grad(spec, gy, w, saved)
    dw, db = algo.weight_grad(spec, x, gy, saved)
    return y, dx, dw, db



def rel_err(a, ref) -> float:
    assert a.shape == ref.shape, (a.shape, ref.shape)
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    return float(np.max(np.abs(np.asarray(a, np.float64) - ref), initial=0.0)) / scale


def cases():
    for algo in ALGORITHMS:
        for shape in SHAPES:
            if algo.supports(make_spec(shape)):
                yield pytest.param(algo, shape, id=f"{algo.name}-{shape}")


@pytest.mark.parametrize("algo, shape", list(cases()))
def test_against_torch_and_naive(algo, shape):
    spec64, spec32 = make_spec(shape), make_spec(shape, np.float32)
    x, w, b, gy = arrays(spec64)
    got64 = run(algo, spec64, x, w, b, gy)
    ref = torch_answer(spec64, x, w, b, gy)
    naive = run(NAIVE, spec64, x, w, b, gy)
    for name, a, r, nv in zip(("y", "dx", "dw", "db"), got64, ref, naive):
        if r is None:
            assert a is None, name
            continue
        assert a.dtype == np.float64, name
        assert rel_err(a, r) <= 1e-10, (name, rel_err(a, r))
        assert rel_err(a, nv) <= 1e-10, (name, rel_err(a, nv))
    got32 = run(algo, spec32, x, w, b, gy)
    for name, a, r in zip(("y", "dx", "dw", "db"), got32, got64):
        if r is None:
            assert a is None, name
            continue
        assert a.dtype == np.float32, name
        assert rel_err(a, r) <= 1e-4, (name, rel_err(a, r))


def test_every_algorithm_exercised():
    tested = {algo.name for algo in ALGORITHMS for shape in SHAPES
              if algo.supports(make_spec(shape))}
    assert tested == {algo.name for algo in ALGORITHMS}


@pytest.mark.parametrize("cols_bytes, min_columns, expect", [(1, 1, (1, 1)), (2**30, 2**10, (4, 2))])
def test_im2col_layouts(monkeypatch, cols_bytes, min_columns, expect):
    """Items of one output row each, and blocks of whole samples, give the same answer."""
    monkeypatch.setattr(im2col, "COLS_BYTES", cols_bytes)
    monkeypatch.setattr(im2col, "MIN_COLUMNS", min_columns)
    shape = (3, 4, 6, (9, 8), (3, 3), (2, 1), ((2, 0), (1, 3)), (1, 2), 2, True)
    spec = make_spec(shape)
    rows, samples = im2col.layout(spec, 2)
    assert (rows == 1, samples) == (expect[0] == 1, expect[1])
    x, w, b, gy = arrays(spec)
    for a, r in zip(run(IM2COL, spec, x, w, b, gy), torch_answer(spec, x, w, b, gy)):
        assert rel_err(a, r) <= 1e-10


def test_noncontiguous_and_readonly_inputs_reuse_the_compiled_kernels():
    """Views (transposed, strided) and read-only arrays are read correctly, and compile
    nothing new: each kernel has at most one signature per data type."""
    shape = (2, 3, 3, (9, 8), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 3, True)
    spec = make_spec(shape)
    x, w, b, gy = arrays(spec)
    xv = np.asfortranarray(x)
    gyv = np.ascontiguousarray(np.swapaxes(gy, 2, 3)).swapaxes(2, 3)
    frozen = [a.copy() for a in (x, w, b, gy)]
    for a in frozen:
        a.setflags(write=False)
    for algo in ALGORITHMS:
        for inputs in ((xv, w, b, gyv), frozen):
            got = run(algo, spec, *inputs)
            for a, r in zip(got, torch_answer(spec, x, w, b, gy)):
                assert rel_err(a, r) <= 1e-10
    for module in (depthwise, im2col):
        for name in module._PARALLEL:
            assert len(getattr(module, name).signatures) <= 2, getattr(module, name).signatures


def test_supports():
    base = (2, 4, 4, (9, 8), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 4, True)
    assert DEPTHWISE.supports(make_spec(base)) and IM2COL.supports(make_spec(base))
    grouped = base[:8] + (2, True)
    assert not DEPTHWISE.supports(make_spec(grouped)) and IM2COL.supports(make_spec(grouped))
    for dtype in (np.float16, np.int32):
        assert not any(a.supports(make_spec(base, dtype)) for a in ALGORITHMS)
    four_d = (1, 2, 2, (3, 3, 3, 3), (1, 1, 1, 1), (1,) * 4, ((0, 0),) * 4, (1,) * 4, 1, False)
    assert not any(a.supports(make_spec(four_d)) for a in ALGORITHMS)


# --- the chooser ---------------------------------------------------------------------------


def test_choose_keeps_tiny_convolutions_on_the_fallback():
    demo = ConvSpec(1, 1, 1, (3, 3), (2, 2), (1, 1), (1, 1), ((0, 0), (0, 0)), 1,
                    np.dtype(np.float64), False)
    assert demo.flops < MIN_FLOPS
    assert choose(demo, NAIVE_PLAN) is NAIVE_PLAN


def test_choose_picks_compiled_algorithms_for_large_layers():
    dw = ConvSpec(16, 128, 128, (28, 28), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), 128,
                  np.dtype(np.float32), True)
    dense = ConvSpec(32, 32, 64, (32, 32), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), 1,
                     np.dtype(np.float32), True)
    assert choose(dw, NAIVE_PLAN).names == (DEPTHWISE.name,) * 3
    assert choose(dense, NAIVE_PLAN).names == ("numba_winograd",) * 3  # 3x3 stride 1
    strided = ConvSpec(32, 32, 64, (32, 32), (3, 3), (2, 2), (1, 1), ((1, 1), (1, 1)), 1,
                       np.dtype(np.float32), True)
    assert choose(strided, NAIVE_PLAN).names == (IM2COL.name,) * 3
    half = ConvSpec(32, 32, 64, (32, 32), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), 1,
                    np.dtype(np.float16), True)
    assert choose(half, NAIVE_PLAN) is NAIVE_PLAN


def test_choose_keeps_pointwise_and_deep_products_on_the_fallback():
    """Where the NumPy backend measured faster: 1x1 kernels and deep per-group products."""
    from convprop.kernels.numba import MAX_DEPTH

    f32 = np.dtype(np.float32)
    pointwise = ConvSpec(16, 256, 64, (28, 28), (1, 1), (1, 1), (1, 1), ((0, 0), (0, 0)), 1,
                         f32, True)
    deep = ConvSpec(16, 256, 256, (14, 14), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), 1, f32, True)
    deep_dw = ConvSpec(16, 256, 256, (14, 14), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), 256,
                       f32, True)
    assert deep.cg * deep.taps >= MAX_DEPTH
    assert choose(pointwise, NAIVE_PLAN) is NAIVE_PLAN
    assert choose(deep, NAIVE_PLAN) is NAIVE_PLAN
    assert choose(deep_dw, NAIVE_PLAN).names == (DEPTHWISE.name,) * 3  # depthwise always


# --- laziness, the compile notice, BLAS threads ----------------------------------------------


def test_import_does_not_import_numba():
    code = ("import sys, convprop, convprop.kernels.numba; "
            "assert 'numba' not in sys.modules, 'numba imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_compile_notice_once(monkeypatch):
    _common.compile_kernels(depthwise, depthwise._SERIAL, depthwise._PARALLEL)
    listener = _common._notice["listener"]
    monkeypatch.setitem(_common._notice, "printed", False)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    ours = types.SimpleNamespace(py_func=types.SimpleNamespace(__module__=depthwise.__name__))
    other = types.SimpleNamespace(py_func=types.SimpleNamespace(__module__="elsewhere"))
    listener.on_start(types.SimpleNamespace(data={"dispatcher": other}))
    assert err.getvalue() == ""
    listener.on_start(types.SimpleNamespace(data={"dispatcher": ours}))
    listener.on_start(types.SimpleNamespace(data={"dispatcher": ours}))
    assert err.getvalue() == _common.NOTICE + "\n"


def test_one_blas_thread_restores():
    from threadpoolctl import threadpool_info

    def counts():
        return [i["num_threads"] for i in threadpool_info() if "scipy.libs" in i["filepath"]]

    before = counts()
    with _common.one_blas_thread():
        inside = counts()
    assert all(n == 1 for n in inside)
    assert counts() == before


def test_concurrent_calls_from_python_threads():
    """Two Python threads running compiled convolutions at once get the right answers."""
    from concurrent.futures import ThreadPoolExecutor

    shapes = [SHAPES[1], SHAPES[9]]
    specs = [make_spec(shape) for shape in shapes]
    inputs = [arrays(spec) for spec in specs]
    expect = [torch_answer(spec, *a) for spec, a in zip(specs, inputs)]

    def work(k):
        algo = DEPTHWISE if DEPTHWISE.supports(specs[k]) else IM2COL
        return [run(algo, specs[k], *inputs[k]) for _ in range(5)]

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(work, [0, 1, 0, 1]))
    for k, runs in zip([0, 1, 0, 1], results):
        for got in runs:
            for a, r in zip(got, expect[k]):
                assert rel_err(a, r) <= 1e-10


# --- each kernel's numerical core against naive NumPy loops ----------------------------------


@pytest.mark.parametrize("offset, step, length, count", [
    (0, 1, 5, 5), (-2, 1, 5, 7), (-3, 2, 6, 5), (1, 3, 8, 4), (-7, 2, 4, 3), (5, 1, 4, 3)])
def test_span(offset, step, length, count):
    depthwise._kernels()
    inside = [q for q in range(count) if 0 <= q * step + offset < length]
    lo, hi = depthwise.span(offset, step, length, count)
    assert list(range(lo, hi)) == inside


def naive_pack(xn, c0, cg, r0, r1, kernel, stride, dilation, before, out):
    """``cols[ci*T + t, l]`` by definition: the padded input at ``p*s + t*d``, zero outside."""
    xp = zero_pad(xn[None], [(b, 0) for b in before])[0]
    rows = []
    for ci in range(cg):
        for t in itertools.product(*(range(k) for k in kernel)):
            row = []
            for r in range(r0, r1):
                od, oh = divmod(r, out[1])
                for ow in range(out[2]):
                    idx = [p * s + k * d for p, s, k, d in zip((od, oh, ow), stride, t, dilation)]
                    inside = all(0 <= i < n for i, n in zip(idx, xp.shape[1:]))
                    row.append(xp[(c0 + ci, *idx)] if inside else 0.0)
            rows.append(row)
    return np.array(rows)


PACK_CASES = [
    # (C, size, kernel, stride, dilation, before, after, c0, cg, r0, r1)
    (3, (1, 6, 7), (1, 3, 3), (1, 1, 1), (1, 1, 1), (0, 1, 2), (0, 1, 0), 1, 2, 0, 6),
    (2, (1, 7, 9), (1, 2, 3), (1, 2, 3), (1, 2, 1), (0, 2, 1), (0, 0, 3), 0, 2, 1, 3),
    (2, (4, 3, 5), (2, 2, 3), (2, 1, 1), (1, 1, 2), (1, 0, 1), (0, 1, 1), 1, 1, 2, 5),
]


@pytest.mark.parametrize("case", PACK_CASES)
def test_pack_and_col2im_against_loops(case):
    C, size, kernel, stride, dilation, before, after, c0, cg, r0, r1 = case
    im2col._kernels()
    out = tuple((s + b + a - d * (k - 1) - 1) // st + 1
                for s, b, a, d, k, st in zip(size, before, after, dilation, kernel, stride))
    rng = np.random.default_rng(1)
    xn = rng.standard_normal((C, *size))
    T = int(np.prod(kernel))
    cols = np.full((cg * T, (r1 - r0) * out[2]), np.nan)
    im2col._pack(xn, c0, cols, 0, r0, r1, kernel, stride, dilation, before, out)
    expect = naive_pack(np.pad(xn, [(0, 0)] + [(0, a) for a in after]), c0, cg, r0, r1, kernel,
                        stride, dilation, before, out)
    np.testing.assert_array_equal(cols, expect)
    # col2im is pack's adjoint: <pack(x), v> == <x, col2im(v)> for every x, v
    v = rng.standard_normal(cols.shape)
    dxn = np.zeros_like(xn)
    im2col._col2im(v, dxn, c0, 0, r0, r1, kernel, stride, dilation, before, out)
    assert abs(np.sum(cols * v) - np.sum(xn * dxn)) <= 1e-12 * np.sum(np.abs(cols * v))
    outside = np.ones(C, bool)
    outside[c0:c0 + cg] = False
    assert not dxn[outside].any()


def naive_correlate(src3, w3, stride, dilation, out):
    """``dst[o] = sum_t w3[t] * src3[o*s + t*d]`` by definition."""
    dst = np.zeros(out)
    for o in itertools.product(*(range(n) for n in out)):
        for t in itertools.product(*(range(k) for k in w3.shape)):
            dst[o] += w3[t] * src3[tuple(p * s + k * d for p, s, k, d in zip(o, stride, t, dilation))]
    return dst


def naive_tap_sums(src3, g3, kernel, stride, dilation):
    """``dw[t] = sum_o g3[o] * src3[o*s + t*d]`` by definition."""
    dw = np.zeros(kernel)
    for t in itertools.product(*(range(k) for k in kernel)):
        for o in itertools.product(*(range(n) for n in g3.shape)):
            dw[t] += g3[o] * src3[tuple(p * s + k * d for p, s, k, d in zip(o, stride, t, dilation))]
    return dw


PLANE_CASES = [
    # (padded plane, kernel, stride, dilation)
    ((1, 8, 9), (1, 3, 3), (1, 1, 1), (1, 1, 1)),
    ((1, 9, 10), (1, 3, 3), (1, 1, 1), (1, 2, 3)),
    ((1, 9, 10), (1, 2, 4), (1, 1, 1), (1, 2, 1)),
    ((4, 5, 6), (2, 3, 2), (1, 1, 1), (2, 1, 1)),
    ((1, 9, 10), (1, 3, 3), (1, 2, 3), (1, 1, 2)),
    ((4, 7, 6), (2, 2, 3), (2, 3, 1), (1, 2, 1)),
]


@pytest.mark.parametrize("case", PLANE_CASES)
def test_depthwise_plane_kernels_against_loops(case):
    padded, kernel, stride, dilation = case
    depthwise._kernels()
    out = tuple((p - d * (k - 1) - 1) // s + 1 for p, k, s, d in zip(padded, kernel, stride, dilation))
    rng = np.random.default_rng(2)
    src3 = rng.standard_normal(padded)
    w3 = rng.standard_normal(kernel)
    g3 = rng.standard_normal(out)
    expect = naive_correlate(src3, w3, stride, dilation, out)
    expect_dw = naive_tap_sums(src3, g3, kernel, stride, dilation)
    dst = np.full(out, np.nan)
    dw3 = np.zeros(kernel)
    if stride == (1, 1, 1):
        Hs, Ws = padded[1], padded[2]
        M = ((out[0] - 1) * Hs + out[1] - 1) * Ws + out[2]
        acc = np.full(M, np.nan)
        depthwise._correlate_wide(src3.ravel(), Hs, Ws, w3, dilation, acc, M)
        depthwise.crop(acc, Hs, Ws, dst, 0.5)
        wide = np.zeros(src3.size)
        wide.reshape(padded)[: out[0], : out[1], : out[2]] = g3
        depthwise._accumulate_wide(src3.ravel(), wide, Hs, Ws, dilation, dw3, M)
    else:
        depthwise._correlate_strided(src3, w3, stride, dilation, dst, 0.5)
        depthwise._accumulate_strided(src3, g3, stride, dilation, dw3)
    np.testing.assert_allclose(dst, expect + 0.5, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw3, expect_dw, rtol=1e-12, atol=1e-12)


def test_fill_interior_against_loops():
    depthwise._kernels()
    rng = np.random.default_rng(3)
    x3 = rng.standard_normal((2, 3, 4))
    buf3 = np.zeros((4, 6, 7))
    depthwise._fill_interior(x3, buf3, 1, 2, 1)
    expect = np.zeros_like(buf3)
    for z, y, q in itertools.product(range(2), range(3), range(4)):
        expect[1 + z, 2 + y, 1 + q] = x3[z, y, q]
    np.testing.assert_array_equal(buf3, expect)

"""The compiled direct convolution (``numba_direct``) against PyTorch and its NumPy reference.

Forward, input, weight and bias gradients in float64 within 1e-10 of PyTorch float64,
float32 within 1e-4 of the float64 answer, over dilation 1-3 per axis (mixed), padding
asymmetric and larger than the kernel, strides (the row-by-row path), odd sizes, 1-3-D,
groups, bias or none, N = 0 and 1, batches that split into uneven blocks of samples
side by side, and single samples whose channels are split over the threads.  The
kernel's core (one row of taps, the wide-row correlation and its tap sums) is checked
against plain NumPy; the work split and the chooser's rule for it are checked too.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba", reason="numba is not installed: the compiled backend is unavailable")
from kernel_cases import arrays, make_spec, torch_answer  # noqa: E402

from convprop.kernels.numba import (  # noqa: E402
    DIRECT,
    IM2COL,
    WINOGRAD,
    choose,
    direct,
    direct_worthwhile,
    winograd_worthwhile,
)
from convprop.kernels.spec import ConvSpec, Plan  # noqa: E402

# (n, c, o, size, kernel, stride, pads, dilation, groups, bias)
SHAPES = [
    (2, 4, 6, (9, 8), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),
    (3, 6, 16, (14, 14), (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, True),
    (7, 3, 5, (6, 5), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, False),
    (1, 4, 6, (9, 8), (3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 1, True),
    (2, 4, 6, (11, 10), (3, 2), (1, 1), ((1, 0), (4, 3)), (3, 2), 2, False),
    (2, 3, 3, (13, 12), (3, 4), (1, 1), ((5, 0), (0, 6)), (2, 3), 3, True),
    (2, 4, 6, (9, 8), (3, 3), (2, 1), ((2, 0), (1, 3)), (1, 2), 2, True),
    (2, 3, 4, (12, 11), (2, 3), (2, 3), ((1, 2), (3, 0)), (3, 2), 1, True),
    (1, 2, 2, (2,), (2,), (1,), ((3, 3),), (3,), 1, True),
    (2, 4, 4, (30,), (7,), (1,), ((3, 3),), (1,), 4, False),
    (5, 3, 5, (11,), (5,), (1,), ((6, 2),), (2,), 1, True),
    (2, 2, 4, (7, 6, 7), (3, 2, 3), (1, 1, 1), ((1, 0), (0, 2), (1, 1)), (3, 1, 2), 2, True),
    (2, 2, 4, (5, 6, 7), (3, 2, 3), (1, 2, 1), ((1, 0), (0, 2), (1, 1)), (1, 1, 2), 2, True),
    (1, 2, 9, (5, 5), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),
    (0, 3, 4, (8, 7), (3, 3), (1, 1), ((1, 1), (1, 1)), (2, 2), 1, True),
]



def run(spec: ConvSpec, x, w, b, gy):
    x, w, gy = (a.astype(spec.dtype) for a in (x, w, gy))
    b = None if b is None else b.astype(spec.dtype)
    y, saved = DIRECT.forward(spec, x, w, b, True)
    dx = DIRECT.input_grad(spec, gy, w, saved)
    dw, db = DIRECT.weight_grad(spec, x, gy, saved)
    return y, dx, dw, db


def rel_err(a, ref) -> float:
    assert a.shape == ref.shape, (a.shape, ref.shape)
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    return float(np.max(np.abs(np.asarray(a, np.float64) - ref), initial=0.0)) / scale


@pytest.mark.parametrize("shape", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
def test_matches_torch(shape):
    spec = make_spec(shape)
    x, w, b, gy = arrays(spec)
    ref = torch_answer(spec, x, w, b, gy)
    got64 = run(spec, x, w, b, gy)
    got32 = run(make_spec(shape, np.float32), x, w, b, gy)
    for a64, a32, r in zip(got64, got32, ref):
        if r is None:
            assert a64 is None and a32 is None
            continue
        assert a64.dtype == np.float64 and a32.dtype == np.float32
        assert rel_err(a64, r) <= 1e-10
        assert rel_err(a32, a64) <= 1e-4


@pytest.mark.parametrize("shape", [
    (8, 6, 16, (14, 14), (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, True),
    (20, 16, 32, (4, 4), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True),
    (2, 8, 8, (6, 10, 9), (3, 3, 3), (1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1, True),
], ids=["lenet5x5b", "lenet16x32", "3d"])
def test_layer_sized_float32(shape):
    """Long sums in float32 (hundreds of taps per output) stay within 1e-4 of float64."""
    spec = make_spec(shape)
    x, w, b, gy = arrays(spec, seed=2)
    ref = torch_answer(spec, x, w, b, gy)
    for a32, r in zip(run(make_spec(shape, np.float32), x, w, b, gy), ref):
        assert rel_err(a32, r) <= 1e-4


def test_single_sample_splits_channels_over_threads(monkeypatch):
    """With fewer (sample, group) items than threads, output (and input) channels are split
    into blocks: the answer does not change."""
    monkeypatch.setattr(direct._common, "threads", lambda: 3)
    spec = make_spec(SHAPES[13])
    assert direct.chunks(1, spec.og, 3) == 3
    x, w, b, gy = arrays(spec)
    for a, r in zip(run(spec, x, w, b, gy), torch_answer(spec, x, w, b, gy)):
        assert rel_err(a, r) <= 1e-10


@pytest.mark.parametrize("nthreads", [1, 2])
def test_uneven_blocks_of_samples(monkeypatch, nthreads):
    """Blocks of 3 samples over a batch of 7: the last block's empty slots hold the previous
    block's samples, which must not reach the output or the weight gradient."""
    monkeypatch.setattr(direct._common, "threads", lambda: nthreads)
    spec = make_spec((7, 3, 5, (6, 5), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, True))
    monkeypatch.setattr(direct, "BUFFER_BYTES", 3 * spec.cg * 8 * 7 * 8)
    assert direct.samples_per_item(spec, 8 * 7, spec.cg, 1) == 3
    x, w, b, gy = arrays(spec)
    for a, r in zip(run(spec, x, w, b, gy), torch_answer(spec, x, w, b, gy)):
        assert rel_err(a, r) <= 1e-10


def test_work_split():
    spec = ConvSpec(100, 16, 32, (4, 4), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), 1,
                    np.dtype(np.float32), True)
    assert direct.samples_per_item(spec, 36, spec.cg, 2) == 50  # one block per thread
    assert direct.samples_per_item(spec, 36, spec.cg, 1) == 100  # the batch in one block
    assert direct.samples_per_item(spec, 36, 256, 2) == 7  # 7 * 256 * 36 * 4 bytes <= 256 KiB
    big = ConvSpec(4, 64, 64, (56, 56), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), 1,
                   np.dtype(np.float32), True)
    assert direct.samples_per_item(big, 58 * 58, big.cg, 2) == 1
    assert direct.chunks(8, 16, 2) == 1 and direct.chunks(1, 2, 4) == 2


# --- the core against NumPy ---------------------------------------------------------------


def correlate_wide_numpy(src, Hs, Ws, wk, dilation, M):
    acc = np.zeros(M)
    CI, KD, KH, KW = wk.shape
    for ci in range(CI):
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    off = (kd * dilation[0] * Hs + kh * dilation[1]) * Ws + kw * dilation[2]
                    acc += wk[ci, kd, kh, kw] * src[ci, off:off + M]
    return acc


def accumulate_wide_numpy(g, src, Hs, Ws, dilation, shape, M):
    out = np.zeros(shape)
    CI, KD, KH, KW = shape
    for ci in range(CI):
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    off = (kd * dilation[0] * Hs + kh * dilation[1]) * Ws + kw * dilation[2]
                    out[ci, kd, kh, kw] = g[:M] @ src[ci, off:off + M]
    return out


@pytest.mark.parametrize("kernel", [(1, 1, 1), (1, 3, 3), (1, 2, 5), (2, 3, 4), (1, 1, 6)])
@pytest.mark.parametrize("dilation", [(1, 1, 1), (2, 1, 3)])
def test_wide_row_core_against_numpy(kernel, dilation):
    direct._kernels()
    rng = np.random.default_rng(5)
    Ds, Hs, Ws, CI = 4, 9, 11, 3
    reach = [d * (k - 1) for d, k in zip(dilation, kernel)]
    out = (Ds - reach[0], Hs - reach[1], Ws - reach[2])
    M = ((out[0] - 1) * Hs + out[1] - 1) * Ws + out[2]
    src = rng.standard_normal((CI, Ds * Hs * Ws))
    wk = rng.standard_normal((CI,) + kernel)
    acc = np.empty(M)
    direct._correlate_wide(src, Hs, Ws, wk, dilation, acc, M)
    assert np.allclose(acc, correlate_wide_numpy(src, Hs, Ws, wk, dilation, M), rtol=1e-12,
                       atol=1e-12)
    wk4 = rng.standard_normal((4, CI) + kernel)
    acc4 = np.empty((4, M + 3))
    direct._correlate_wide4(src, Hs, Ws, wk4, dilation, acc4, M)
    for j in range(4):
        assert np.allclose(acc4[j, :M], correlate_wide_numpy(src, Hs, Ws, wk4[j], dilation, M),
                           rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(Ds * Hs * Ws)
    dwk = rng.standard_normal((CI,) + kernel)
    start = dwk.copy()
    direct._accumulate_wide(g, src, Hs, Ws, dilation, dwk, M)
    want = start + accumulate_wide_numpy(g, src, Hs, Ws, dilation, dwk.shape, M)
    assert np.allclose(dwk, want, rtol=1e-12, atol=1e-12)
    g1 = rng.standard_normal(Ds * Hs * Ws)
    pair = np.zeros((2, CI) + kernel)
    direct._accumulate_wide2(g, g1, src, Hs, Ws, dilation, pair[0], pair[1], M)
    for got, gj in zip(pair, (g, g1)):
        want = accumulate_wide_numpy(gj, src, Hs, Ws, dilation, dwk.shape, M)
        assert np.allclose(got, want, rtol=1e-12, atol=1e-12)


def test_fill_and_crop_against_numpy():
    direct._kernels()
    rng = np.random.default_rng(6)
    xn = rng.standard_normal((5, 2, 3, 4))
    buf5 = np.zeros((3, 4, 6, 2, 7))  # (channel, depth, height, sample, width)
    direct._fill(xn, 1, buf5, 1, (1, 2, 0))
    want = np.zeros_like(buf5)
    want[:, 1:3, 2:5, 1, 0:4] = xn[1:4]
    assert np.array_equal(buf5, want)
    acc = rng.standard_normal(2 * 6 * 7)
    dst = np.empty((2, 5, 6))
    direct.crop(acc, 6, 7, dst, 0.5)
    assert np.array_equal(dst, acc.reshape(2, 6, 7)[:, :5, :6] + 0.5)


def test_one_signature_per_dtype():
    for shape in (SHAPES[0], SHAPES[6]):
        for dtype in (np.float32, np.float64):
            spec = make_spec(shape, dtype)
            run(spec, *arrays(spec))
    for name in direct._PARALLEL:
        assert len(getattr(direct, name).signatures) <= 2, getattr(direct, name).signatures


# --- the chooser ---------------------------------------------------------------------------


class _Fallback:
    name = "fallback"


FALLBACK = Plan(_Fallback(), _Fallback(), _Fallback())


def f32(n, c, o, size, kernel, padding=0, stride=1, dilation=1, groups=1) -> ConvSpec:
    return ConvSpec.of((n, c) + size, (o, c // groups) + kernel, stride, padding, dilation,
                       groups, np.float32, True)


SMALL = {  # the small-channel layers, where the direct input gradient pays too
    "lenet5x5b": (f32(64, 6, 16, (14, 14), (5, 5)), True),
    "issue8x16": (f32(100, 8, 16, (14, 14), (3, 3), 1), True),  # the issue model (batch 100)
    "lenet16x32": (f32(100, 16, 32, (4, 4), (3, 3), 1), True),  # the training LeNet
    "lenet5x5": (f32(64, 1, 6, (28, 28), (5, 5)), False),  # one input channel: im2col's
    "issue1x8": (f32(100, 1, 8, (28, 28), (3, 3), 1), False),
    "lenet1x16": (f32(100, 1, 16, (8, 8), (3, 3), 1), False),
}
LARGER = {  # forward and weight gradient only
    "cifar3x3in": f32(32, 3, 32, (32, 32), (3, 3), 1),
    "dilated3x3": f32(16, 64, 64, (28, 28), (3, 3), 2, 1, 2),
}
WINOGRAD_FIRST = {  # shallow enough for the direct plan, but Winograd measured faster
    "cifar3x3": f32(32, 32, 64, (32, 32), (3, 3), 1),
    "vol3d": f32(2, 16, 32, (16, 32, 32), (3, 3, 3), 1),
    "resnet56": f32(16, 64, 64, (56, 56), (3, 3), 1),
}
ELSEWHERE = {
    "seq1d": f32(32, 128, 128, (64,), (3,), 1),  # 1-D
    "strided": f32(16, 64, 128, (56, 56), (3, 3), 1, 2),
    "resnet28": f32(16, 128, 128, (28, 28), (3, 3), 1),  # deep products
    "pointwise": f32(16, 256, 64, (28, 28), (1, 1)),
    "depthwise": f32(16, 128, 128, (28, 28), (3, 3), 1, 1, 1, 128),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_choose_direct_for_small_channel_layers(name):
    spec, dx_direct = SMALL[name]
    dx = DIRECT if dx_direct else IM2COL
    assert choose(spec, FALLBACK).names == (DIRECT.name, dx.name, DIRECT.name)


@pytest.mark.parametrize("name", list(LARGER))
def test_choose_direct_forward_and_weight_grad_for_shallow_products(name):
    assert choose(LARGER[name], FALLBACK).names == (DIRECT.name, IM2COL.name, DIRECT.name)


@pytest.mark.parametrize("name", list(WINOGRAD_FIRST))
def test_choose_prefers_winograd_where_both_rules_hold(name):
    spec = WINOGRAD_FIRST[name]
    assert direct_worthwhile(spec) and winograd_worthwhile(spec)
    assert choose(spec, FALLBACK).names == (WINOGRAD.name,) * 3


@pytest.mark.parametrize("name", list(ELSEWHERE))
def test_choose_keeps_other_layers_off_direct(name):
    assert DIRECT.name not in choose(ELSEWHERE[name], FALLBACK).names

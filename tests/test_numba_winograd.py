"""The compiled Winograd F(4x4, 3x3) algorithm against PyTorch, and its kernels against NumPy.

``numba_winograd`` runs 3x3 stride-1 undilated 2-D convolutions over every padding
(none, 1, 2, more than the kernel's reach, asymmetric), sizes that leave partial
tiles (odd and even, outputs of 1 x 1 and larger than one work item), bias and none,
N = 0 and 1, one channel, channel counts that are multiples of nothing, groups, and
3-D kernels (3x3 Winograd per depth tap, any kernel depth and depth padding):
forward, input, weight and bias gradients in float64 within 1e-10 of PyTorch's
float64 and in float32 within 1e-4 of that answer.  Each compiled transform (input
tiles, output tiles, output-gradient tiles) is checked against the NumPy backend's
derived matrices applied tile by tile, and the weight transform against its
definition and its adjoint.  (The parity tests of ``test_kernels.py`` and
``test_numba_kernels.py`` force it too: it is one of the numba backend's
algorithms.)  Compilation is bounded: one signature per kernel and data type.
"""

from __future__ import annotations

import numpy as np
import pytest

from convprop.kernels.numba import (
    IM2COL,
    MAX_DEPTH,
    WINOGRAD,
    WINOGRAD_MIN_CHANNELS,
    choose,
    winograd,
    winograd_worthwhile,
)
from convprop.kernels.numpy.winograd import transforms
from convprop.kernels.spec import ConvSpec, Plan

pytest.importorskip("numba", reason="numba is not installed: the compiled backend is unavailable")
from kernel_cases import arrays, torch_answer  # noqa: E402

AT, G, BT = transforms(4, 3)

# (n, c, o, size, pads, groups, bias)
CASES = [
    (2, 3, 5, (9, 8), ((1, 1), (1, 1)), 1, True),
    (1, 1, 1, (3, 3), ((0, 0), (0, 0)), 1, True),          # one output: one partial tile
    (1, 1, 1, (6, 6), ((0, 0), (0, 0)), 1, False),         # exactly one whole tile
    (2, 5, 7, (16, 13), ((2, 0), (1, 3)), 1, True),        # asymmetric
    (3, 7, 3, (6, 11), ((2, 2), (2, 2)), 1, False),        # padding 2: full correlation
    (2, 6, 4, (10, 9), ((0, 3), (3, 0)), 2, True),         # padding past the kernel, groups
    (1, 4, 4, (7, 12), ((1, 1), (1, 1)), 4, True),         # depthwise-shaped
    (2, 9, 10, (21, 5), ((1, 2), (0, 0)), 1, True),
    (2, 11, 13, (35, 30), ((1, 1), (1, 1)), 1, True),      # many tiles per row
    (0, 3, 4, (8, 8), ((1, 1), (1, 1)), 1, True),          # empty batch
    # 3-D: depth taps summed directly, any kernel depth and depth padding
    (2, 3, 4, (5, 6, 7), ((1, 1), (1, 1), (1, 1)), 1, True),
    (1, 2, 3, (4, 9, 5), ((0, 2), (2, 0), (1, 1)), 1, False),
    (2, 4, 2, (3, 7, 6), ((1, 0), (1, 1), (0, 0)), 2, True, (2, 3, 3)),
    (1, 2, 2, (2, 5, 5), ((3, 1), (1, 1), (1, 1)), 1, True),  # depth padding past the kernel
]


def make_spec(case, dtype=np.float64) -> ConvSpec:
    """``case``: (n, c, o, size, pads, groups, bias[, kernel]); the kernel defaults to 3 per axis."""
    n, c, o, size, pads, groups, bias = case[:7]
    kernel = case[7] if len(case) > 7 else (3,) * len(size)
    ones = (1,) * len(size)
    return ConvSpec(n, c, o, size, kernel, ones, ones, pads, groups, np.dtype(dtype), bias)



def run(spec: ConvSpec, x, w, b, gy):
    x, w, b, gy = (None if a is None else a.astype(spec.dtype) for a in (x, w, b, gy))
    y, saved = WINOGRAD.forward(spec, x, w, b, True)
    dx = WINOGRAD.input_grad(spec, gy, w, saved)
    dw, db = WINOGRAD.weight_grad(spec, x, gy, saved)
    return y, dx, dw, db



def rel_err(a, ref) -> float:
    assert a.shape == ref.shape, (a.shape, ref.shape)
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    return float(np.max(np.abs(np.asarray(a, np.float64) - ref), initial=0.0)) / scale


def check(spec64: ConvSpec, got64, got32, ref) -> None:
    for name, a64, a32, r in zip(("y", "dx", "dw", "db"), got64, got32, ref):
        if r is None:
            assert a64 is None and a32 is None, name
            continue
        assert a64.dtype == np.float64 and a32.dtype == np.float32, name
        assert rel_err(a64, r) <= 1e-10, (name, rel_err(a64, r))
        assert rel_err(a32, a64) <= 1e-4, (name, rel_err(a32, a64))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_against_torch(case):
    spec64, spec32 = make_spec(case), make_spec(case, np.float32)
    assert WINOGRAD.supports(spec64) and WINOGRAD.supports(spec32)
    inputs = arrays(spec64)
    check(spec64, run(spec64, *inputs), run(spec32, *inputs), torch_answer(spec64, *inputs))


def test_layer_sized_float32():
    """A 64-channel layer, where float32 rounding (amplified by the transforms) accumulates."""
    case = (2, 64, 64, (28, 28), ((1, 1), (1, 1)), 1, True)
    spec64, spec32 = make_spec(case), make_spec(case, np.float32)
    inputs = arrays(spec64, seed=1)
    check(spec64, run(spec64, *inputs), run(spec32, *inputs), torch_answer(spec64, *inputs))


@pytest.mark.parametrize("max_columns, min_columns", [(1, 1), (10**6, 10**6), (20, 1)])
def test_work_item_layouts(monkeypatch, max_columns, min_columns):
    """One tile row per item, whole samples side by side, and a block of rows per item
    give the same answer."""
    monkeypatch.setattr(winograd, "MAX_COLUMNS", max_columns)
    monkeypatch.setattr(winograd, "MIN_COLUMNS", min_columns)
    case = (5, 3, 4, (19, 17), ((1, 2), (2, 1)), 1, True)
    spec = make_spec(case)
    rows, samples = winograd.layout(spec.out, spec.n, 2)
    tile_rows = -(-spec.out[0] // 4)
    assert (rows, samples) == {1: (1, 1), 10**6: (tile_rows, 3), 20: (3, 1)}[max_columns]
    inputs = arrays(spec)
    for a, r in zip(run(spec, *inputs), torch_answer(spec, *inputs)):
        assert rel_err(a, r) <= 1e-10


def test_supports():
    base = (2, 4, 6, (9, 8), ((1, 1), (1, 1)), 2, True)
    assert WINOGRAD.supports(make_spec(base))
    for field, value in (("kernel", (3, 5)), ("stride", (1, 2)), ("dilation", (2, 1))):
        spec = make_spec(base)
        kw = {f: getattr(spec, f) for f in ("n", "c", "o", "size", "kernel", "stride",
                                             "dilation", "pads", "groups", "dtype", "bias")}
        kw[field] = value
        assert not WINOGRAD.supports(ConvSpec(**kw)), field
    assert not WINOGRAD.supports(make_spec(base, np.float16))
    one_d = ConvSpec(2, 4, 4, (9,), (3,), (1,), (1,), ((1, 1),), 1, np.dtype(np.float64), True)
    assert not WINOGRAD.supports(one_d)
    pads3 = ((1, 1),) * 3
    assert WINOGRAD.supports(make_spec((1, 2, 2, (5, 6, 7), pads3, 1, True, (5, 3, 3))))
    assert not WINOGRAD.supports(make_spec((1, 2, 2, (5, 6, 7), pads3, 1, True, (3, 3, 5))))


def test_kernels_have_one_signature_per_dtype():
    for case in CASES[:2]:
        for dtype in (np.float32, np.float64):
            run(make_spec(case, dtype), *arrays(make_spec(case)))
    for name in winograd._PARALLEL:
        assert len(getattr(winograd, name).signatures) <= 2, getattr(winograd, name).signatures


# --- each compiled transform against the derived matrices, tile by tile ---------------------


def padded_at(plane, before):
    """``xp[i, j]``: ``plane`` shifted by ``before`` (may be negative), zero outside."""
    def get(i, j):
        i, j = i - before[0], j - before[1]
        inside = 0 <= i < plane.shape[0] and 0 <= j < plane.shape[1]
        return plane[i, j] if inside else 0.0
    return get


@pytest.mark.parametrize("size, before, tr0, rows", [
    ((9, 10), (1, 1), 0, 3), ((13, 7), (2, 0), 1, 2), ((8, 11), (-1, 3), 1, 1)])
def test_input_tiles_against_matrices(size, before, tr0, rows):
    winograd._kernels()
    rng = np.random.default_rng(2)
    plane = rng.standard_normal(size)
    q1 = -(-(size[1] + 2) // 4) + 1
    v = np.full((36, 1, 2, rows * q1), np.nan)
    dbuf = np.empty((4, 4, (rows + 1) * q1))
    tbuf = np.empty((6, 4, rows * q1 + 1))
    winograd._input_tiles(plane, v, 0, 1, 0, tr0, rows, q1, before[0], before[1], dbuf, tbuf,
                          winograd.constants(np.dtype(np.float64)))
    xp = padded_at(plane, before)
    for t in range(rows):
        for q in range(q1 - 1):  # the last tile of each row is junk
            d = np.array([[xp(4 * (tr0 + t) + i, 4 * q + j) for j in range(6)] for i in range(6)])
            np.testing.assert_allclose(v[:, 0, 1, t * q1 + q], (BT @ d @ BT.T).ravel(),
                                       rtol=1e-13, atol=1e-12)
    assert np.isnan(v[:, 0, 0]).all()  # other channels untouched


@pytest.mark.parametrize("out, tr0, rows", [((9, 10), 0, 3), ((7, 5), 1, 1), ((3, 1), 0, 1)])
def test_output_tiles_against_matrices(out, tr0, rows):
    winograd._kernels()
    rng = np.random.default_rng(3)
    q1 = -(-out[1] // 4) + 1
    m = rng.standard_normal((36, 2, 1, rows * q1))
    plane = np.full(out, np.nan)
    winograd._output_tiles(m, 1, 0, 0, plane, 0.5, tr0, rows, q1, np.empty((6, 4, rows * q1)),
                           np.empty((4, 4, rows * q1)), winograd.constants(np.dtype(np.float64)))
    expect = np.full(out, np.nan)
    for t in range(rows):
        for q in range(q1 - 1):
            tile = AT @ m[:, 1, 0, t * q1 + q].reshape(6, 6) @ AT.T + 0.5
            for i in range(4):
                for j in range(4):
                    if 4 * (tr0 + t) + i < out[0] and 4 * q + j < out[1]:
                        expect[4 * (tr0 + t) + i, 4 * q + j] = tile[i, j]
    np.testing.assert_allclose(plane, expect, rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("out, tr0, rows", [((9, 10), 0, 3), ((7, 5), 1, 1), ((3, 1), 0, 1)])
def test_grad_tiles_against_matrices(out, tr0, rows):
    """``A dy A^T`` of every output-gradient tile; positions past the output, and the junk
    tile of each row, count as zero (the weight gradient sums over them)."""
    winograd._kernels()
    rng = np.random.default_rng(4)
    q1 = -(-out[1] // 4) + 1
    gy = rng.standard_normal(out)
    dm = np.full((36, 1, 1, rows * q1), np.nan)
    winograd._grad_tiles(gy, dm, 0, 0, 0, tr0, rows, q1, np.empty((4, 4, (rows + 1) * q1)),
                         np.empty((4, 6, rows * q1)), winograd.constants(np.dtype(np.float64)))
    at = padded_at(gy, (0, 0))
    for t in range(rows):
        for q in range(q1):
            dy = np.array([[at(4 * (tr0 + t) + i, 4 * q + j) for j in range(4)] for i in range(4)])
            np.testing.assert_allclose(dm[:, 0, 0, t * q1 + q], (AT.T @ dy @ AT).ravel(),
                                       rtol=1e-13, atol=1e-12)
    assert not dm[:, 0, 0, q1 - 1::q1].any()


def test_weight_transform_and_its_adjoint():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((6, 3, 3, 3))  # O = 6, C/G = 3, G = 2
    u = winograd.weights_to_points(w, 2, np.dtype(np.float64))
    assert u.shape == (36, 2, 3, 3)
    for o in range(6):
        for c in range(3):
            np.testing.assert_allclose(u[:, o // 3, o % 3, c], (G @ w[o, c] @ G.T).ravel(),
                                       rtol=1e-14, atol=1e-14)
    du = rng.standard_normal((3,) + u.shape)  # partial sums of three threads
    dw = winograd.points_to_weights(du)
    assert dw.shape == w.shape
    total = du.sum(axis=0)
    assert abs(np.sum(u * total) - np.sum(w * dw)) <= 1e-12 * np.sum(np.abs(u * total))


def test_flipped_transposed():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((6, 2, 3, 3))  # G = 3: O/G = 2, C/G = 2
    wf = winograd.flipped_transposed(w, 3)
    assert wf.shape == (6, 2, 3, 3)
    for g in range(3):
        for o in range(2):
            for c in range(2):
                np.testing.assert_array_equal(wf[g * 2 + c, o], w[g * 2 + o, c, ::-1, ::-1])


# --- the chooser -----------------------------------------------------------------------------


def layer(c, o, size, groups=1, dtype=np.float32) -> ConvSpec:
    return ConvSpec(16, c, o, size, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), groups,
                    np.dtype(dtype), True)


def test_choose_runs_winograd_where_measured_faster():
    fallback = Plan(IM2COL, IM2COL, IM2COL)  # any plan: only its identity matters
    for spec in (layer(32, 64, (32, 32)), layer(64, 64, (56, 56)), layer(128, 128, (28, 28)),
                 layer(64, 64, (56, 56), dtype=np.float64)):
        assert winograd_worthwhile(spec)
        assert choose(spec, fallback).names == (WINOGRAD.name,) * 3
    vol = ConvSpec(2, 16, 32, (16, 32, 32), (3, 3, 3), (1,) * 3, (1,) * 3, ((1, 1),) * 3, 1,
                   np.dtype(np.float32), True)
    assert winograd_worthwhile(vol)  # 16 channels x 3 depth taps: products 48 deep
    assert choose(vol, fallback).names == (WINOGRAD.name,) * 3
    few = layer(3, 32, (32, 32))
    assert min(few.c, few.o) < WINOGRAD_MIN_CHANNELS
    assert WINOGRAD.name not in choose(few, fallback).names  # (numba_direct's, see its tests)
    assert not winograd_worthwhile(layer(64, 64, (28, 28), groups=2))
    deep = layer(256, 256, (14, 14))
    assert deep.cg * deep.taps >= MAX_DEPTH and choose(deep, fallback) is fallback
    assert choose(layer(64, 64, (56, 56), dtype=np.float16), fallback) is fallback

"""Depthwise convolution (one input and one output channel per group) by per-tap multiply-add.

With ``groups == C == O`` every output plane depends on one input plane and
``T = prod(kernel)`` weights, so im2col + GEMM would copy ``T`` times the input
to feed block-diagonal matrix products of width one.  Instead, for each tap
``t`` the plane of inputs it reads (one strided slice, from
:func:`convprop._windows.window_taps`) is scaled by that tap's weight and
added::

    y[n, c]           = sum_t w[c, t] * x[n, c][tap t]
    dx[n, c][tap t]  += w[c, t] * gy[n, c]                 (the adjoint)
    dw[c, t]          = sum_n sum_o gy[n, c, o] * x[n, c][tap t][o]

The ``N*C`` planes are processed in blocks small enough (``BLOCK_BYTES``) that
the ``T`` passes over a block's output stay in cache, and the blocks are split
over the thread pool.  At stride 1 each plane is handled *flattened*
(:func:`convprop._windows.flat_taps`): a tap is then one shifted contiguous
slice, so every NumPy loop runs over whole planes instead of rows of a few
elements (a 28-wide row costs NumPy about as much overhead as work); the
positions between rows that are not outputs are computed and dropped
(forward) or held at zero (backward).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .._windows import conv_output_shape, flat_taps, window_taps
from . import _pool

BLOCK_BYTES = 256 * 2**10


def supports(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
             groups: int, c: int, o: int) -> bool:
    """Depthwise with multiplier 1: ``groups == in_channels == out_channels``; any kernel,
    stride and dilation."""
    return groups == c == o


def _blocks(part: slice, plane_bytes: int) -> list[slice]:
    step = max(1, BLOCK_BYTES // max(1, plane_bytes))
    return [slice(i, min(part.stop, i + step)) for i in range(part.start, part.stop, step)]


def _plane_weights(w: np.ndarray, sl: slice, dtype: np.dtype) -> np.ndarray:
    """Weights ``(planes, T)`` of the planes ``sl`` of an ``(N*C, ...)`` stack."""
    c = w.shape[0]
    return w.reshape(c, -1)[np.arange(sl.start, sl.stop) % c].astype(dtype, copy=False)


def conv_forward(xp: np.ndarray, w: np.ndarray, stride: Sequence[int], dilation: Sequence[int],
                 groups: int, cache: dict | None = None) -> np.ndarray:
    n, c = xp.shape[:2]
    kernel = w.shape[2:]
    nd = len(kernel)
    out = conv_output_shape(xp.shape[2:], kernel, stride, ((0, 0),) * nd, dilation)
    dtype = np.result_type(xp, w)
    if all(st == 1 for st in stride):
        return _flat_forward(xp, w, dilation, out, dtype)
    x2 = np.ascontiguousarray(xp, dtype=dtype).reshape((n * c,) + xp.shape[2:])
    y = np.empty((n * c,) + out, dtype=dtype)
    taps = list(window_taps(kernel, stride, dilation, out))
    plane = math.prod(out) * dtype.itemsize
    bcast = (slice(None),) + (None,) * nd

    def run(part: slice) -> None:
        for sb in _blocks(part, plane):
            wb = _plane_weights(w, sb, dtype)
            yb = y[sb]
            tmp = np.empty_like(yb)
            for i, (_, index) in enumerate(taps):
                src = x2[(sb,) + index]
                if i == 0:
                    np.multiply(src, wb[:, i][bcast], out=yb)
                else:
                    np.multiply(src, wb[:, i][bcast], out=tmp)
                    yb += tmp

    _pool.parallel(run, n * c, y.nbytes * len(taps))
    return y.reshape((n, c) + out)


def conv_input_grad(gy: np.ndarray, w: np.ndarray, padded_shape: Sequence[int],
                    stride: Sequence[int], dilation: Sequence[int], groups: int,
                    cache: dict | None = None) -> np.ndarray:
    n, c = gy.shape[:2]
    kernel = w.shape[2:]
    out = gy.shape[2:]
    dtype = np.result_type(gy, w)
    if all(st == 1 for st in stride):
        return _flat_input_grad(gy, w, tuple(padded_shape), dilation, dtype)
    g2 = np.ascontiguousarray(gy, dtype=dtype).reshape((n * c,) + out)
    dx = np.zeros((n * c,) + tuple(padded_shape), dtype=dtype)
    taps = list(window_taps(kernel, stride, dilation, out))
    plane = math.prod(out) * dtype.itemsize
    bcast = (slice(None),) + (None,) * len(kernel)

    def run(part: slice) -> None:
        for sb in _blocks(part, plane):
            wb = _plane_weights(w, sb, dtype)
            gb = g2[sb]
            tmp = np.empty_like(gb)
            for i, (_, index) in enumerate(taps):
                np.multiply(gb, wb[:, i][bcast], out=tmp)
                dx[(sb,) + index] += tmp

    _pool.parallel(run, n * c, g2.nbytes * len(taps))
    return dx.reshape((n, c) + tuple(padded_shape))


def conv_weight_grad(xp: np.ndarray, gy: np.ndarray, kernel: Sequence[int],
                     stride: Sequence[int], dilation: Sequence[int], groups: int,
                     cache: dict | None = None) -> np.ndarray:
    n, c = xp.shape[:2]
    out = gy.shape[2:]
    dtype = np.result_type(xp, gy)
    if all(st == 1 for st in stride):
        return _flat_weight_grad(xp, gy, tuple(kernel), dilation, dtype)
    x2 = np.ascontiguousarray(xp, dtype=dtype).reshape((n * c,) + xp.shape[2:])
    g2 = np.ascontiguousarray(gy, dtype=dtype).reshape((n * c, math.prod(out)))
    taps = list(window_taps(kernel, stride, dilation, out))
    per_plane = np.empty((n * c, len(taps)), dtype=dtype)
    plane = math.prod(out) * dtype.itemsize

    def run(part: slice) -> None:
        for sb in _blocks(part, plane):
            gb = g2[sb]
            tmp = np.empty((sb.stop - sb.start,) + tuple(out), dtype=dtype)
            flat = tmp.reshape(gb.shape)
            for i, (_, index) in enumerate(taps):
                np.multiply(x2[(sb,) + index], gb.reshape(tmp.shape), out=tmp)
                per_plane[sb, i] = flat.sum(axis=1)

    _pool.parallel(run, n * c, g2.nbytes * len(taps))
    dw = per_plane.reshape(n, c, len(taps)).sum(axis=0)
    return dw.reshape((c, 1) + tuple(kernel))


def _flat(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``(N, C, *S)`` -> contiguous ``(N*C, prod(S))``."""
    return np.ascontiguousarray(a, dtype=dtype).reshape(a.shape[0] * a.shape[1], math.prod(a.shape[2:]))


def _spread(gy: np.ndarray, size: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``gy`` (N, C, *out) placed at the top corner of zeros (N*C, prod(size))."""
    n, c = gy.shape[:2]
    g = np.zeros((n * c,) + size, dtype=dtype)
    g[(slice(None),) + tuple(slice(0, o) for o in gy.shape[2:])] = gy.reshape((n * c,) + gy.shape[2:])
    return g.reshape(n * c, math.prod(size))


def _flat_forward(xp: np.ndarray, w: np.ndarray, dilation: Sequence[int], out: tuple[int, ...],
                  dtype: np.dtype) -> np.ndarray:
    n, c = xp.shape[:2]
    size = tuple(xp.shape[2:])
    offsets, q = flat_taps(size, w.shape[2:], dilation)
    x2 = _flat(xp, dtype)
    wide = _pool.scratch("dw_wide", x2.shape, dtype)

    def run(part: slice) -> None:
        for sb in _blocks(part, x2.shape[1] * dtype.itemsize):
            wb = _plane_weights(w, sb, dtype)
            yb = wide[sb, :q]
            tmp = np.empty_like(yb)
            for i, off in enumerate(offsets):
                if i == 0:
                    np.multiply(x2[sb, off : off + q], wb[:, i : i + 1], out=yb)
                else:
                    np.multiply(x2[sb, off : off + q], wb[:, i : i + 1], out=tmp)
                    yb += tmp

    _pool.parallel(run, n * c, x2.nbytes * len(offsets))
    y = np.empty((n, c) + out, dtype=dtype)
    valid = wide.reshape((n, c) + size)[(slice(None), slice(None)) + tuple(slice(0, o) for o in out)]
    return _pool.copy(y, valid)


def _flat_input_grad(gy: np.ndarray, w: np.ndarray, size: tuple[int, ...],
                     dilation: Sequence[int], dtype: np.dtype) -> np.ndarray:
    n, c = gy.shape[:2]
    offsets, q = flat_taps(size, w.shape[2:], dilation)
    g2 = _spread(gy, size, dtype)
    dx = np.zeros_like(g2)

    def run(part: slice) -> None:
        for sb in _blocks(part, g2.shape[1] * dtype.itemsize):
            wb = _plane_weights(w, sb, dtype)
            gb = g2[sb, :q]
            tmp = np.empty_like(gb)
            for i, off in enumerate(offsets):
                np.multiply(gb, wb[:, i : i + 1], out=tmp)
                dx[sb, off : off + q] += tmp

    _pool.parallel(run, n * c, g2.nbytes * len(offsets))
    return dx.reshape((n, c) + size)


def _flat_weight_grad(xp: np.ndarray, gy: np.ndarray, kernel: tuple[int, ...],
                      dilation: Sequence[int], dtype: np.dtype) -> np.ndarray:
    n, c = xp.shape[:2]
    size = tuple(xp.shape[2:])
    offsets, q = flat_taps(size, kernel, dilation)
    x2 = _flat(xp, dtype)
    g2 = _spread(gy, size, dtype)
    per_plane = np.empty((n * c, len(offsets)), dtype=dtype)

    def run(part: slice) -> None:
        for sb in _blocks(part, g2.shape[1] * dtype.itemsize):
            gb = g2[sb, :q]
            tmp = np.empty_like(gb)
            for i, off in enumerate(offsets):
                np.multiply(x2[sb, off : off + q], gb, out=tmp)
                per_plane[sb, i] = tmp.sum(axis=1)

    _pool.parallel(run, n * c, g2.nbytes * len(offsets))
    return per_plane.reshape(n, c, len(offsets)).sum(axis=0).reshape((c, 1) + kernel)

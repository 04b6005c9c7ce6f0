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
over the thread pool.  At stride 1 the input is copied *channel-major*,
``(C, N, *S)``, and each channel's ``N`` planes are handled as one flattened
row (:func:`convprop._windows.flat_taps`): a tap is then one shifted
contiguous slice of the row, so every NumPy call runs over blocks of whole
rows (a 28-wide image row costs NumPy about as much overhead as work, and
per-plane calls leave the pool's threads queueing for the GIL); positions
between rows and planes that are not outputs are computed and dropped.  The
input gradient is the adjoint of those taps (each one a scaled ``gy`` row added
at its shift) on ``gy`` copied channel-major into planes of the padded input's
size, and the weight gradient one row-wise dot product per tap (the forward
leaves its channel-major copy of the input in ``cache``, the input gradient
its copy of ``gy``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .._windows import conv_output_shape, flat_taps, window_taps
from . import _pool
from .flat import channel_major

BLOCK_BYTES = 256 * 2**10
#: channel rows per block of the stride-1 path (several N-plane rows: one NumPy call
#: per tap and block keeps the Python overhead, and GIL hand-offs, below the work)
ROW_BLOCK_BYTES = 512 * 2**10


def supports(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
             groups: int, c: int, o: int) -> bool:
    """Depthwise with multiplier 1: ``groups == in_channels == out_channels``; any kernel,
    stride and dilation."""
    return groups == c == o


def _blocks(part: slice, plane_bytes: int, limit: int = BLOCK_BYTES) -> list[slice]:
    step = max(1, limit // max(1, plane_bytes))
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
        return _flat_forward(xp, w, dilation, out, dtype, cache)
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
        return _flat_input_grad(gy, w, tuple(padded_shape), dilation, dtype, cache)
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
        return _flat_weight_grad(xp, gy, tuple(kernel), dilation, dtype, cache)
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


def _taps(size: tuple[int, ...], kernel: Sequence[int], dilation: Sequence[int],
          n: int) -> tuple[list[int], int]:
    """Tap offsets on ``n`` planes of ``size`` laid end to end, and the flat length ``M``
    from the first position that covers every output of every plane."""
    offsets, q = flat_taps(size, kernel, dilation)
    return offsets, (n - 1) * math.prod(size) + q


def _flat_correlate(xc: np.ndarray, wt: np.ndarray, size: tuple[int, ...],
                    dilation: Sequence[int], out: tuple[int, ...]) -> np.ndarray:
    """Depthwise stride-1 correlation of channel-major planes ``xc`` (C, N, *size) with
    ``wt`` (C, *K) -> new (N, C, *out).

    Each channel's ``N`` planes form one contiguous row, so a tap is one scalar times a
    shifted slice of it: ``T`` multiplies and ``T - 1`` adds per block of rows that
    stays in cache.
    Positions that are not outputs (row ends, plane ends) are computed and dropped."""
    c, n = xc.shape[:2]
    dtype = xc.dtype
    if n == 0:
        return np.empty((0, c) + out, dtype=dtype)
    offsets, m = _taps(size, wt.shape[1:], dilation, n)
    flat = xc.reshape(c, -1)
    wide = _pool.scratch("dw_wide", flat.shape, dtype)
    weights = wt.reshape(c, -1)

    def run(part: slice) -> None:
        blocks = _blocks(part, flat.shape[1] * dtype.itemsize, ROW_BLOCK_BYTES)
        tmp = np.empty((blocks[0].stop - blocks[0].start, m), dtype=dtype)
        for sb in blocks:
            rows, yb, wb = flat[sb], wide[sb, :m], weights[sb]
            t = tmp[: sb.stop - sb.start]
            np.multiply(rows[:, offsets[0] : offsets[0] + m], wb[:, 0:1], out=yb)
            for i, off in enumerate(offsets[1:], 1):
                np.multiply(rows[:, off : off + m], wb[:, i : i + 1], out=t)
                yb += t

    _pool.parallel(run, c, flat.nbytes * len(offsets))
    valid = wide.reshape((c, n) + size)[(slice(None), slice(None)) + tuple(slice(0, o) for o in out)]
    y = np.empty((n, c) + out, dtype=dtype)
    return _pool.copy(y, valid.transpose((1, 0) + tuple(range(2, 2 + len(size)))), axis=1,
                      eager=True)


def _flat_forward(xp: np.ndarray, w: np.ndarray, dilation: Sequence[int], out: tuple[int, ...],
                  dtype: np.dtype, cache: dict | None) -> np.ndarray:
    size = tuple(xp.shape[2:])
    xc = channel_major(xp, size, (0,) * len(size), dtype,
                       None if cache is not None else "dw_x", eager=True)
    if cache is not None:
        cache["depthwise_x"] = xc  # the weight gradient reads the same rows
    return _flat_correlate(xc, w[:, 0].astype(dtype, copy=False), size, dilation, out)


def _flat_input_grad(gy: np.ndarray, w: np.ndarray, size: tuple[int, ...],
                     dilation: Sequence[int], dtype: np.dtype, cache: dict | None) -> np.ndarray:
    """The adjoint of the forward's taps, ``dx_c[off_t : off_t + M] += w[c, t] * g_c[:M]``,
    with ``gy`` copied channel-major into planes of the padded input's size (zero at the
    positions that are not outputs).  Measured against the transposed correlation as a
    correlation (``gy`` padded by the span on both sides, kernel flipped): the same
    passes over smaller planes, and the weight gradient reads the same copy of ``gy``."""
    n, c = gy.shape[:2]
    nd = len(size)
    if n == 0:
        return np.zeros((0, c) + size, dtype=dtype)
    offsets, m = _taps(size, w.shape[2:], dilation, n)
    gc = channel_major(gy, size, (0,) * nd, dtype, None if cache is not None else "dw_g",
                       eager=True)
    if cache is not None:
        cache["depthwise_g"] = gc
    rows = gc.reshape(c, -1)
    dx = _pool.scratch("dw_wide", rows.shape, dtype)
    weights = w.reshape(c, -1).astype(dtype, copy=False)

    def run(part: slice) -> None:
        blocks = _blocks(part, rows.shape[1] * dtype.itemsize, ROW_BLOCK_BYTES)
        tmp = np.empty((blocks[0].stop - blocks[0].start, m), dtype=dtype)
        for sb in blocks:
            g, d, wb = rows[sb, :m], dx[sb], weights[sb]
            t = tmp[: sb.stop - sb.start]
            np.multiply(g, wb[:, 0:1], out=d[:, offsets[0] : offsets[0] + m])  # offset 0
            d[:, m:] = 0
            for i, off in enumerate(offsets[1:], 1):
                np.multiply(g, wb[:, i : i + 1], out=t)
                d[:, off : off + m] += t

    _pool.parallel(run, c, rows.nbytes * len(offsets))
    out = np.empty((n, c) + size, dtype=dtype)
    return _pool.copy(out, dx.reshape((c, n) + size).transpose((1, 0) + tuple(range(2, 2 + nd))),
                      axis=1, eager=True)


def _flat_weight_grad(xp: np.ndarray, gy: np.ndarray, kernel: tuple[int, ...],
                      dilation: Sequence[int], dtype: np.dtype, cache: dict | None) -> np.ndarray:
    """``dw[c, t] = x_c[off_t : off_t + M] . g_c[:M]``: a row-wise dot product per tap and
    block of channel-major rows (``einsum`` multiplies and sums in one pass), ``g`` zero
    at the positions that are not outputs."""
    n, c = xp.shape[:2]
    size = tuple(xp.shape[2:])
    if n == 0:
        return np.zeros((c, 1) + kernel, dtype=dtype)
    offsets, m = _taps(size, kernel, dilation, n)
    xc = cache.pop("depthwise_x", None) if cache is not None else None
    if xc is None or xc.dtype != dtype:
        xc = channel_major(xp, size, (0,) * len(size), dtype, "dw_x", eager=True)
    xc = xc.reshape(c, -1)
    gc = cache.pop("depthwise_g", None) if cache is not None else None
    if gc is None or gc.dtype != dtype:
        gc = channel_major(gy, size, (0,) * len(size), dtype, "dw_g", eager=True)
    gc = gc.reshape(c, -1)
    dw = np.empty((c, len(offsets)), dtype=dtype)

    def run(part: slice) -> None:
        for sb in _blocks(part, xc.shape[1] * dtype.itemsize, ROW_BLOCK_BYTES):
            rows, g = xc[sb], gc[sb, :m]
            for i, off in enumerate(offsets):
                np.einsum("cm,cm->c", rows[:, off : off + m], g, out=dw[sb, i])

    _pool.parallel(run, c, xc.nbytes * len(offsets))
    return dw.reshape((c, 1) + kernel)

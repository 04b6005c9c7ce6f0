"""Depthwise convolution (one input and one output channel per group) by per-tap multiply-add.

With ``groups == C == O`` every output plane depends on one input plane and
``T = prod(kernel)`` weights, so im2col + GEMM would copy ``T`` times the input
to feed block-diagonal matrix products of width one.  Instead, for each tap
``t`` the plane of inputs it reads (one strided slice, from
:func:`convprop._windows.window_taps`) is scaled by that tap's weight and
added::

    y[n, c]           = b[c] + sum_t w[c, t] * xp[n, c][tap t]
    dxp[n, c][tap t] += w[c, t] * gy[n, c]                 (the adjoint)
    dw[c, t]          = sum_n sum_o gy[n, c, o] * xp[n, c][tap t][o]

The ``N*C`` planes are processed in blocks small enough (``BLOCK_BYTES``) that
the ``T`` passes over a block's output stay in cache, and the blocks are split
over the thread pool.  At stride 1 the input is copied *channel-major* and
zero-padded in the same copy, ``(C, N, *padded)``, and each channel's ``N`` planes
are handled as one flattened row (:func:`convprop._windows.flat_taps`): a tap is
then one shifted contiguous slice of the row, so every NumPy call runs over blocks
of whole rows (a 28-wide image row costs NumPy about as much overhead as work, and
per-plane calls leave the pool's threads queueing for the GIL); positions between
rows and planes that are not outputs are computed and dropped.  The input gradient
is the adjoint of those taps (each one a scaled ``gy`` row added at its shift) on
``gy`` copied channel-major into planes of the padded input's size, and the weight
gradient one row-wise dot product per tap (the forward leaves its channel-major
copy of the input, and the input gradient its copy of ``gy``, in
:class:`DepthwiseSaved`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._windows import flat_taps, window_taps
from .. import _pool
from ..spec import ConvSpec, Saved
from . import _common

BLOCK_BYTES = 256 * 2**10
#: channel rows per block of the stride-1 path (several N-plane rows: one NumPy call
#: per tap and block keeps the Python overhead, and GIL hand-offs, below the work)
ROW_BLOCK_BYTES = 512 * 2**10


@dataclass
class DepthwiseSaved(Saved):
    """Channel-major copies the weight gradient reads (stride 1; released there)."""

    #: the padded input, ``(C, N, *padded)``, left by the forward
    x_rows: np.ndarray | None
    #: ``gy`` in planes of the padded size, ``(C, N, *padded)``, left by the input gradient
    gy_rows: np.ndarray | None = None


def _blocks(part: slice, plane_bytes: int, limit: int = BLOCK_BYTES) -> list[slice]:
    step = max(1, limit // max(1, plane_bytes))
    return [slice(i, min(part.stop, i + step)) for i in range(part.start, part.stop, step)]


def _plane_weights(w: np.ndarray, sl: slice) -> np.ndarray:
    """Weights ``(planes, T)`` of the planes ``sl`` of an ``(N*C, ...)`` stack."""
    c = w.shape[0]
    return w.reshape(c, -1)[np.arange(sl.start, sl.stop) % c]


def _taps(size: tuple[int, ...], kernel: tuple[int, ...], dilation: tuple[int, ...],
          n: int) -> tuple[list[int], int]:
    """Tap offsets on ``n`` planes of ``size`` laid end to end, and the flat length ``M``
    from the first position that covers every output of every plane."""
    offsets, q = flat_taps(size, kernel, dilation)
    return offsets, (n - 1) * math.prod(size) + q


def _before(spec: ConvSpec) -> tuple[int, ...]:
    return tuple(pb for pb, _ in spec.pads)


class Depthwise:
    """Per-tap multiply-add for depthwise layers (see the module docstring)."""

    name = "depthwise"

    def supports(self, spec: ConvSpec) -> bool:
        """Depthwise with multiplier 1: ``groups == in_channels == out_channels``; any kernel,
        stride, dilation and padding."""
        return spec.depthwise

    # ------------------------------------------------------------------ forward
    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, DepthwiseSaved | None]:
        if all(st == 1 for st in spec.stride):
            xc = _common.channel_major(x, spec.padded, _before(spec),
                                       None if save else "dw_x", eager=True)
            y = self._flat_correlate(spec, xc, w[:, 0], b)
            return y, (DepthwiseSaved(xc) if save else None)
        n, c, out, nd = spec.n, spec.c, spec.out, spec.nd
        xp = _common.padded(x, spec.pads, slot="dw_x")
        x2 = np.ascontiguousarray(xp).reshape((n * c,) + spec.padded)
        y = np.empty((n * c,) + out, dtype=spec.dtype)
        taps = list(window_taps(spec.kernel, spec.stride, spec.dilation, out))
        plane = spec.positions * spec.dtype.itemsize
        bcast = (slice(None),) + (None,) * nd

        def run(part: slice) -> None:
            for sb in _blocks(part, plane):
                wb = _plane_weights(w, sb)
                yb = y[sb]
                tmp = np.empty_like(yb)
                for i, (_, index) in enumerate(taps):
                    src = x2[(sb,) + index]
                    if i == 0:
                        np.multiply(src, wb[:, i][bcast], out=yb)
                    else:
                        np.multiply(src, wb[:, i][bcast], out=tmp)
                        yb += tmp
                if b is not None:
                    yb += b[np.arange(sb.start, sb.stop) % c][bcast]

        _pool.parallel(run, n * c, y.nbytes * len(taps))
        return y.reshape(spec.y_shape), None

    def _flat_correlate(self, spec: ConvSpec, xc: np.ndarray, wt: np.ndarray,
                        b: np.ndarray | None) -> np.ndarray:
        """Stride-1 correlation of channel-major planes ``xc`` (C, N, *padded) with ``wt``
        (C, *K) (+ ``b``) -> new (N, C, *out).

        Each channel's ``N`` planes form one contiguous row, so a tap is one scalar times a
        shifted slice of it: ``T`` multiplies and ``T - 1`` adds per block of rows that
        stays in cache.  Positions that are not outputs (row ends, plane ends) are computed
        and dropped; the bias is added in the copy out."""
        c, n = xc.shape[:2]
        size, out, dtype = spec.padded, spec.out, spec.dtype
        if n == 0:
            return np.empty(spec.y_shape, dtype=dtype)
        offsets, m = _taps(size, spec.kernel, spec.dilation, n)
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
        valid = wide.reshape((c, n) + size)[(slice(None), slice(None))
                                            + tuple(slice(0, o) for o in out)]
        y = np.empty(spec.y_shape, dtype=dtype)
        src = valid.transpose((1, 0) + tuple(range(2, 2 + spec.nd)))
        return _common.store(y, src, _common.bias_view(b, spec.nd), axis=1, eager=True)

    # ------------------------------------------------------------- input grad
    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        if all(st == 1 for st in spec.stride):
            return self._flat_input_grad(spec, gy, w,
                                         saved if isinstance(saved, DepthwiseSaved) else None)
        n, c, out = spec.n, spec.c, spec.out
        g2 = np.ascontiguousarray(gy).reshape((n * c,) + out)
        dx = np.zeros((n * c,) + spec.padded, dtype=spec.dtype)
        taps = list(window_taps(spec.kernel, spec.stride, spec.dilation, out))
        plane = spec.positions * spec.dtype.itemsize
        bcast = (slice(None),) + (None,) * spec.nd

        def run(part: slice) -> None:
            for sb in _blocks(part, plane):
                wb = _plane_weights(w, sb)
                gb = g2[sb]
                tmp = np.empty_like(gb)
                for i, (_, index) in enumerate(taps):
                    np.multiply(gb, wb[:, i][bcast], out=tmp)
                    dx[(sb,) + index] += tmp

        _pool.parallel(run, n * c, g2.nbytes * len(taps))
        return _common.unpadded(dx.reshape((n, c) + spec.padded), spec)

    def _flat_input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                         saved: DepthwiseSaved | None) -> np.ndarray:
        """The adjoint of the forward's taps, ``dx_c[off_t : off_t + M] += w[c, t] * g_c[:M]``,
        with ``gy`` copied channel-major into planes of the padded input's size (zero at the
        positions that are not outputs); the crop to the unpadded input is fused into the
        copy back.  Measured against the transposed correlation as a correlation (``gy``
        padded by the span on both sides, kernel flipped): the same passes over smaller
        planes, and the weight gradient reads the same copy of ``gy``."""
        n, c, size, dtype = spec.n, spec.c, spec.padded, spec.dtype
        if n == 0:
            return np.zeros(spec.x_shape, dtype=dtype)
        offsets, m = _taps(size, spec.kernel, spec.dilation, n)
        gc = _common.channel_major(gy, size, (0,) * spec.nd, None if saved else "dw_g", eager=True)
        if saved is not None:
            saved.gy_rows = gc
        rows = gc.reshape(c, -1)
        dx = _pool.scratch("dw_wide", rows.shape, dtype)
        weights = w.reshape(c, -1)

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
        inner = (slice(None), slice(None)) + tuple(slice(pb, pb + s)
                                                   for pb, s in zip(_before(spec), spec.size))
        src = dx.reshape((c, n) + size)[inner].transpose((1, 0) + tuple(range(2, 2 + spec.nd)))
        return _pool.copy(np.empty(spec.x_shape, dtype=dtype), src, axis=1, eager=True)

    # ------------------------------------------------------------ weight grad
    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        xc = gc = None
        if isinstance(saved, DepthwiseSaved):
            xc, gc, saved.x_rows, saved.gy_rows = saved.x_rows, saved.gy_rows, None, None
        if all(st == 1 for st in spec.stride):
            return self._flat_weight_grad(spec, x, gy, xc, gc)
        n, c, out = spec.n, spec.c, spec.out
        xp = _common.padded(x, spec.pads, slot="dw_x")
        x2 = np.ascontiguousarray(xp).reshape((n * c,) + spec.padded)
        g2 = np.ascontiguousarray(gy).reshape((n * c, spec.positions))
        taps = list(window_taps(spec.kernel, spec.stride, spec.dilation, out))
        per_plane = np.empty((n * c, len(taps)), dtype=spec.dtype)
        plane = spec.positions * spec.dtype.itemsize

        def run(part: slice) -> None:
            for sb in _blocks(part, plane):
                gb = g2[sb]
                tmp = np.empty((sb.stop - sb.start,) + out, dtype=spec.dtype)
                flat = tmp.reshape(gb.shape)
                for i, (_, index) in enumerate(taps):
                    np.multiply(x2[(sb,) + index], gb.reshape(tmp.shape), out=tmp)
                    per_plane[sb, i] = flat.sum(axis=1)

        _pool.parallel(run, n * c, g2.nbytes * len(taps))
        dw = per_plane.reshape(n, c, len(taps)).sum(axis=0)
        return dw.reshape(spec.w_shape), _common.bias_grad(spec, gy)

    def _flat_weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                          xc: np.ndarray | None, gc: np.ndarray | None
                          ) -> tuple[np.ndarray, np.ndarray | None]:
        """``dw[c, t] = x_c[off_t : off_t + M] . g_c[:M]``: a row-wise dot product per tap and
        block of channel-major rows (``einsum`` multiplies and sums in one pass), ``g`` zero
        at the positions that are not outputs."""
        n, c, size, dtype = spec.n, spec.c, spec.padded, spec.dtype
        if n == 0:
            return np.zeros(spec.w_shape, dtype=dtype), _common.bias_grad(spec, gy)
        offsets, m = _taps(size, spec.kernel, spec.dilation, n)
        if xc is None:
            xc = _common.channel_major(x, size, _before(spec), "dw_x", eager=True)
        xc = xc.reshape(c, -1)
        if gc is None:
            gc = _common.channel_major(gy, size, (0,) * spec.nd, "dw_g", eager=True)
        gc = gc.reshape(c, -1)
        dw = np.empty((c, len(offsets)), dtype=dtype)

        def run(part: slice) -> None:
            for sb in _blocks(part, xc.shape[1] * dtype.itemsize, ROW_BLOCK_BYTES):
                rows, g = xc[sb], gc[sb, :m]
                for i, off in enumerate(offsets):
                    np.einsum("cm,cm->c", rows[:, off : off + m], g, out=dw[sb, i])

        _pool.parallel(run, c, xc.nbytes * len(offsets))
        db = gc.sum(axis=1) if spec.bias else None  # zeros between the outputs
        return dw.reshape(spec.w_shape), db


DEPTHWISE = Depthwise()

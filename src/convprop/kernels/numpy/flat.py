"""Stride-1 im2col + GEMM on *flattened, channel-major* planes, for small images.

The general path (:mod:`convprop.kernels.numpy.gemm`) copies the window view
``(B, C, *K, *out)`` into columns; its innermost loop runs along one output row,
so for small images (a 10-wide row of a 5x5 kernel on 14x14) NumPy spends more on
loop overhead than on moving data.  At stride 1 a window tap is a *shift*: with
the input copied channel-major and zero-padded, ``(C, N, *padded)`` (the padding
happens in that copy), and each channel's ``N`` planes read as one flat row, tap
``t`` reads the row at ``q + off_t`` (:func:`convprop._windows.flat_windows`).  The
columns are then::

    cols[c, t, q] = rows[c, q + off_t]          (C*T, M),  M ~ N * prod(padded)

each one contiguous copy of a whole row, and with ``G`` groups::

    forward:      y[g]     = W[g] (Og, Cg*T) @ cols[g] (Cg*T, M), outputs cropped (+ b)
    weight grad:  dW[g]    = gy[g] (Og, M)   @ cols[g]^T (M, Cg*T)
    input grad:   the forward on gy zero-padded by the span, kernel flipped and its
                  channel axes swapped; or, with few input channels, W^T @ gy then the
                  overlap-add :func:`convprop._windows.flat_fold_add`

Where the columns are not kept for the weight gradient (no backward, too large, the
input gradient) they hold only the taps of the trailing kernel axes, and one GEMM
per first-axis tap ``i`` reads them shifted by that tap's offset (a view, no copy)
and adds into the output: ``K[0]`` times less copying for the price of the adds.

Positions ``q`` that are not outputs (the last ``span`` entries of every plane
row, the last rows of every plane) are computed and dropped in the forward and
held at zero in ``gy`` for the backward: the price is ``prod(padded) / prod(out)``
more GEMM columns, which is why the chooser sends only small layers here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._windows import flat_fold_add, flat_taps, flat_windows
from .. import _pool
from ..spec import ConvSpec, Saved
from . import _common


@dataclass
class FlatSaved(Saved):
    """What the forward (and the input gradient) leave for :meth:`Flat.weight_grad`."""

    #: the forward's columns of each batch chunk (every tap), when they fit CACHE_BYTES
    cols: list[np.ndarray] | None
    #: ``gy`` as channel-major rows ``(O, N*prod(padded))``, left by the overlap-add input
    #: gradient for the weight gradient (which reads the same rows)
    gy_rows: np.ndarray | None = None


def supports(spec: ConvSpec) -> bool:
    """Stride 1 (any kernel, dilation and groups)."""
    return all(s == 1 for s in spec.stride)


#: Shortest GEMM depth (``Cg * prod(kernel[1:])``) at which columns that are not kept
#: hold only the trailing taps and one GEMM per first-axis tap sums over the leading
#: one: a third of the copying for 3x3 kernels, at the price of adding ``K[0]``
#: products (measured on the 3x3 suite layers with 32 and 64 channels: forward 10-25%
#: faster, input gradient up to 15%).  Kept columns hold every tap: the weight
#: gradient's products over the shifted views measured slower than the copy saved.
SPLIT_MIN_DEPTH = 96


def _split(size: tuple[int, ...], kernel: tuple[int, ...], dilation: tuple[int, ...],
           cg: int) -> tuple[tuple[int, ...], list[int]]:
    """The kernel whose taps the columns copy, and the flat offsets of the leading taps
    that the GEMMs sum over (``[0]`` when the columns hold every tap).

    Copied kernel ``(1, *K[1:])`` and leading offsets those of ``(K[0], 1, ...)``: tap
    ``(i, *t)`` reads ``q + off_i + off_t`` (:func:`convprop._windows.flat_taps`), so
    the columns of the leading tap ``i`` are those of tap ``0`` shifted by ``off_i``."""
    if len(kernel) < 2 or cg * math.prod(kernel[1:]) < SPLIT_MIN_DEPTH:
        return kernel, [0]
    lead = (kernel[0],) + (1,) * (len(kernel) - 1)
    return (1,) + kernel[1:], flat_taps(size, lead, dilation)[0]


def _columns(rows: np.ndarray, size: tuple[int, ...], kernel: tuple[int, ...],
             dilation: tuple[int, ...], m: int, groups: int, keep: bool) -> np.ndarray:
    """Columns ``(G, Cg*T, m)`` of rows ``(C, >= m + span)``; scratch unless ``keep``."""
    view = flat_windows(rows, size, kernel, dilation, m)
    cols = np.empty(view.shape, rows.dtype) if keep else _pool.scratch("cols", view.shape, rows.dtype)
    _pool.copy(cols, view, axis=0)
    return cols.reshape(groups, -1, m)


def _lead_weights(w: np.ndarray, groups: int, leads: int) -> np.ndarray:
    """``w`` (O, Cg, *K) as one ``(G, Og, Cg*T/leads)`` matrix per leading tap."""
    o, cg = w.shape[:2]
    t = math.prod(w.shape[2:]) // leads
    wl = w.reshape(groups, o // groups, cg, leads, t).transpose(3, 0, 1, 2, 4)
    return np.ascontiguousarray(wl).reshape(leads, groups, o // groups, cg * t)


def _length(b: int, size: tuple[int, ...], kernel: tuple[int, ...],
            dilation: tuple[int, ...]) -> int:
    """Flat positions from the first that cover every output of ``b`` planes end to end."""
    return (b - 1) * math.prod(size) + flat_taps(size, kernel, dilation)[1]


def _correlate(xc: np.ndarray, w: np.ndarray, dilation: tuple[int, ...], groups: int,
               start: tuple[int, ...], out: tuple[int, ...], b: np.ndarray | None = None,
               kept: list[np.ndarray] | None = None) -> np.ndarray:
    """Stride-1 correlation of channel-major ``xc`` (C, N, *S) with ``w`` (+ ``b``), the
    outputs ``start .. start + out`` of each axis -> new (N, O, *out); appends each
    chunk's columns (every tap) to ``kept`` when given."""
    c, n = xc.shape[:2]
    size = tuple(xc.shape[2:])
    o, kernel = w.shape[0], tuple(w.shape[2:])
    cg, og = c // groups, o // groups
    plane = math.prod(size)
    dtype = xc.dtype
    y = np.empty((n, o) + out, dtype=dtype)
    if n == 0:
        return y
    rows = xc.reshape(c, n * plane)
    per_sample = c * math.prod(kernel) * plane * dtype.itemsize
    # columns kept for the weight gradient hold every tap (its products want them whole)
    copied, leads = (kernel, [0]) if kept is not None else _split(size, kernel, dilation, cg)
    wl = _lead_weights(w, groups, len(leads))
    valid = (slice(None),) * 3 + tuple(slice(s, s + e) for s, e in zip(start, out))
    bias = None if b is None else b.reshape((1, groups, og) + (1,) * len(out))
    for sl in _common.batch_chunks(n, per_sample):
        nb = sl.stop - sl.start
        m = _length(nb, size, kernel, dilation)
        cols = _columns(rows[:, sl.start * plane : sl.stop * plane], size, copied, dilation,
                        m + leads[-1], groups, keep=kept is not None)
        if kept is not None:
            kept.append(cols)
        wide = _pool.scratch("flat_y", (groups, og, nb * plane), dtype)
        if len(leads) == 1:
            np.matmul(wl[0], cols[:, :, :m], out=wide[:, :, :m])
        else:
            _lead_product(wl, cols, leads, m, wide)
        src = wide.reshape((groups, og, nb) + size)[valid]
        _common.store(y[sl].reshape((nb, groups, og) + out),
                      src.transpose((2, 0, 1) + tuple(range(3, 3 + len(size)))), bias, axis=1)
    return y


def _lead_product(wl: np.ndarray, cols: np.ndarray, leads: list[int], m: int,
                  wide: np.ndarray) -> None:
    """``wide[..., :m] = sum_i wl[i] @ cols[..., off_i : off_i + m]`` (blocking the
    columns so that the sum stays in cache measured slower: shorter products)."""
    acc = wide[:, :, :m]
    np.matmul(wl[0], cols[:, :, leads[0] : leads[0] + m], out=acc)
    tmp = _pool.scratch("flat_t", acc.shape, wide.dtype)
    for wi, off in zip(wl[1:], leads[1:]):
        np.matmul(wi, cols[:, :, off : off + m], out=tmp)
        acc += tmp


class Flat:
    """Flat channel-major im2col + GEMM at stride 1 (see the module docstring)."""

    name = "flat"

    def supports(self, spec: ConvSpec) -> bool:
        return supports(spec)

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, FlatSaved | None]:
        before = tuple(pb for pb, _ in spec.pads)
        xc = _common.channel_major(x, spec.padded, before, slot="flat_x")
        per_sample = spec.c * spec.taps * math.prod(spec.padded) * spec.dtype.itemsize
        kept: list[np.ndarray] | None = (
            [] if save and spec.n * per_sample <= _common.CACHE_BYTES else None)
        y = _correlate(xc, w, spec.dilation, spec.groups, (0,) * spec.nd, spec.out, b, kept)
        return y, (FlatSaved(kept) if save else None)

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        """The unpadded input's gradient; the crop to it is fused into the last copy."""
        before = tuple(pb for pb, _ in spec.pads)
        if _common.fold_is_cheaper(spec.cg, spec.og, spec.out, spec.kernel, spec.dilation):
            return self._input_grad_fold(spec, gy, w, saved if isinstance(saved, FlatSaved) else None)
        span = tuple(d * (k - 1) for d, k in zip(spec.dilation, spec.kernel))
        gc = _common.channel_major(gy, tuple(s + e for s, e in zip(spec.padded, span)), span,
                                   slot="flat_x")
        return _correlate(gc, _common.flipped_transposed(w, spec.groups), spec.dilation,
                          spec.groups, before, spec.size)

    @staticmethod
    def _input_grad_fold(spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                         saved: FlatSaved | None) -> np.ndarray:
        """``W^T @ gy`` into columns, then the flat overlap-add (few input channels)."""
        n, groups = spec.n, spec.groups
        size, kernel, dilation = spec.padded, spec.kernel, spec.dilation
        c, cg, og, o = spec.c, spec.cg, spec.og, spec.o
        plane, T = math.prod(size), spec.taps
        dtype = spec.dtype
        gc = _common.channel_major(gy, size, (0,) * spec.nd, None if saved else "flat_g")
        gc = gc.reshape(o, n * plane)
        if saved is not None:
            saved.gy_rows = gc  # the weight gradient reads the same rows
        wt = w.reshape(groups, og, cg * T).transpose(0, 2, 1)
        dx = _pool.scratch("flat_dx", (c, n * plane), dtype)
        dx.fill(0)
        for sl in _common.batch_chunks(n, c * T * plane * dtype.itemsize):
            m = _length(sl.stop - sl.start, size, kernel, dilation)
            first = sl.start * plane
            g = gc[:, first : first + m].reshape(groups, og, m)
            cols = np.matmul(wt, g, out=_pool.scratch("cols", (groups, cg * T, m), dtype))
            cols = cols.reshape(c, T, m)
            dst = dx[:, first : sl.stop * plane]

            def fold(part: slice, dst: np.ndarray = dst, cols: np.ndarray = cols) -> None:
                flat_fold_add(dst[part], cols[part], size, kernel, dilation)

            _pool.parallel(fold, c, cols.nbytes, copy=True)
        out = np.empty(spec.x_shape, dtype=dtype)
        inner = (slice(None), slice(None)) + tuple(slice(pb, pb + s)
                                                   for (pb, _), s in zip(spec.pads, spec.size))
        return _pool.copy(out, dx.reshape((c, n) + size)[inner].swapaxes(0, 1), axis=1)

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Reuses (and releases) the forward's columns and the input gradient's rows."""
        kept = gc = None
        if isinstance(saved, FlatSaved):
            kept, gc, saved.cols, saved.gy_rows = saved.cols, saved.gy_rows, None, None
        n, groups = spec.n, spec.groups
        size, kernel, dilation = spec.padded, spec.kernel, spec.dilation
        plane = math.prod(size)
        if n == 0:
            return np.zeros(spec.w_shape, dtype=spec.dtype), _common.bias_grad(spec, gy)
        if gc is None:
            gc = _common.channel_major(gy, size, (0,) * spec.nd, "flat_g").reshape(spec.o, n * plane)
        chunks = list(_common.batch_chunks(n, spec.c * spec.taps * plane * spec.dtype.itemsize))
        if kept is not None and len(kept) != len(chunks):
            kept = None
        rows = None
        dw = None
        for i, sl in enumerate(chunks):
            m = _length(sl.stop - sl.start, size, kernel, dilation)
            if kept is not None:
                cols = kept[i]
            else:
                if rows is None:
                    before = tuple(pb for pb, _ in spec.pads)
                    rows = _common.channel_major(x, size, before, "flat_x").reshape(spec.c, n * plane)
                cols = _columns(rows[:, sl.start * plane : sl.stop * plane], size, kernel,
                                dilation, m, groups, keep=False)
            first = sl.start * plane
            part = _common.weight_product(gc[:, first : first + m].reshape(groups, spec.og, m), cols)
            if dw is None:
                dw = part
            else:
                dw += part
        db = None
        if spec.bias:  # the rows hold gy with zeros between planes: one sum per channel
            db = gc.sum(axis=1)
        return dw.reshape(spec.w_shape), db


FLAT = Flat()

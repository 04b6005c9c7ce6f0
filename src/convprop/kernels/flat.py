"""Stride-1 im2col + GEMM on *flattened, channel-major* planes, for small images.

The general path (:mod:`convprop.kernels.gemm`) copies the window view
``(B, C, *K, *out)`` into columns; its innermost loop runs along one output row,
so for small images (a 10-wide row of a 5x5 kernel on 14x14) NumPy spends more on
loop overhead than on moving data.  At stride 1 a window tap is a *shift*: with
the input copied channel-major, ``(C, N, *S)``, and each channel's ``N`` planes
read as one flat row, tap ``t`` reads the row at ``q + off_t``
(:func:`convprop._windows.flat_windows`).  The columns are then::

    cols[c, t, q] = rows[c, q + off_t]          (C*T, M),  M ~ N * prod(S)

each one contiguous copy of a whole row, and with ``G`` groups::

    forward:      y[g]     = W[g] (Og, Cg*T) @ cols[g] (Cg*T, M), outputs cropped
    weight grad:  dW[g]    = gy[g] (Og, M)   @ cols[g]^T (M, Cg*T)
    input grad:   the forward on gy zero-padded by the span, kernel flipped and its
                  channel axes swapped; or, with few input channels, W^T @ gy then the
                  overlap-add :func:`convprop._windows.flat_fold_add`

Where the columns are not kept for the weight gradient (no cache, too large, the
input gradient) they hold only the taps of the trailing kernel axes, and one GEMM
per first-axis tap ``i`` reads them shifted by that tap's offset (a view, no copy)
and adds into the output: ``K[0]`` times less copying for the price of the adds.

Positions ``q`` that are not outputs (the last ``span`` entries of every plane
row, the last rows of every plane) are computed and dropped in the forward and
held at zero in ``gy`` for the backward: the price is ``prod(S) / prod(out)``
more GEMM columns, which is why the chooser sends only small layers here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .._windows import conv_output_shape, flat_fold_add, flat_taps, flat_valid, flat_windows
from . import _pool
from .gemm import batch_chunks, fold_is_cheaper, weight_product

CHUNK_BYTES = 32 * 2**20
CACHE_BYTES = 64 * 2**20


def supports(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
             groups: int, c: int, o: int) -> bool:
    """Stride 1 (any kernel, dilation and groups)."""
    return all(s == 1 for s in stride)


#: Longest column (``C * prod(kernel)``, all input channels) sent here; measured with
#: the conv suite.
MAX_COLUMN = 640


def worthwhile(kernel: Sequence[int], c: int, o: int, size: Sequence[int]) -> bool:
    """2-D and 3-D layers with short columns.  Measured with the conv suite: this path
    beat GEMM (and Winograd) from LeNet's 1- and 6-channel 5x5 layers up to 64-channel
    3x3 layers at 56x56, dilated and 3-D; GEMM won with 128 channels and more (the GEMM
    dominates, and the junk columns between rows add to it) and in 1-D (long rows
    already copy well)."""
    return len(kernel) >= 2 and c * math.prod(kernel) <= MAX_COLUMN


#: Largest ratio of padded-input positions to outputs at which the GEMM path's stride-1
#: input gradient hands over to this one (see :func:`input_grad_worthwhile`).
MAX_INPUT_GRAD_WASTE = 1.4


def input_grad_worthwhile(stride: Sequence[int], size: Sequence[int], out: Sequence[int]) -> bool:
    """Whether this path's input gradient should serve a layer the chooser gave to GEMM:
    stride 1, 2-D or 3-D, and few junk positions per plane (``prod(size) / prod(out)``).
    Measured against GEMM's input gradient (float32, 2 threads): 16x256 at 14x14 22.1
    against 25.6 ms, 16x128 at 28x28 25.9 against 29.2, 8x96 at 14x14 2.9 against 3.3,
    2x32 at 16x32x32 (3-D) 20.8 against 37.6; GEMM won at 7x7 (junk ratio 1.65: 26.0
    against 21.9) and in 1-D (tied, or lost with 31 taps)."""
    return (len(size) >= 2 and all(s == 1 for s in stride)
            and math.prod(size) <= MAX_INPUT_GRAD_WASTE * math.prod(out))


def channel_major(a: np.ndarray, size: tuple[int, ...], at: tuple[int, ...],
                  dtype: np.dtype, slot: str | None = None, eager: bool = False) -> np.ndarray:
    """``a`` (N, C, *S) copied channel-major into ``(C, N, *size)``, at offset ``at`` of
    each plane; the rest of every plane is zero.  A new array, or the scratch buffer
    ``slot`` (a fresh multi-megabyte array costs its page faults on every call);
    ``eager`` as in :func:`convprop.kernels._pool.copy`."""
    n, c = a.shape[:2]
    shape = (c, n) + size
    if slot is None:
        dst = (np.empty if tuple(a.shape[2:]) == size else np.zeros)(shape, dtype=dtype)
    else:
        dst = _pool.scratch(slot, shape, dtype)
        if tuple(a.shape[2:]) != size:
            dst.fill(0)
    inner = (slice(None), slice(None)) + tuple(slice(o, o + s) for o, s in zip(at, a.shape[2:]))
    _pool.copy(dst[inner], a.transpose((1, 0) + tuple(range(2, a.ndim))), axis=0, eager=eager)
    return dst


#: Shortest GEMM depth (``Cg * prod(kernel[1:])``) at which columns that are not kept
#: hold only the trailing taps and one GEMM per first-axis tap sums over the leading
#: one: a third of the copying for 3x3 kernels, at the price of adding ``K[0]``
#: products (measured on the 3x3 suite layers with 32 and 64 channels: forward 10-25%
#: faster, input gradient up to 15%).  Kept columns hold every tap: the weight
#: gradient's products over the shifted views measured slower than the copy saved.
SPLIT_MIN_DEPTH = 96


def _split(size: tuple[int, ...], kernel: Sequence[int], dilation: Sequence[int],
           cg: int) -> tuple[tuple[int, ...], list[int]]:
    """The kernel whose taps the columns copy, and the flat offsets of the leading taps
    that the GEMMs sum over (``[0]`` when the columns hold every tap).

    Copied kernel ``(1, *K[1:])`` and leading offsets those of ``(K[0], 1, ...)``: tap
    ``(i, *t)`` reads ``q + off_i + off_t`` (:func:`convprop._windows.flat_taps`), so
    the columns of the leading tap ``i`` are those of tap ``0`` shifted by ``off_i``."""
    kernel = tuple(kernel)
    if len(kernel) < 2 or cg * math.prod(kernel[1:]) < SPLIT_MIN_DEPTH:
        return kernel, [0]
    lead = (kernel[0],) + (1,) * (len(kernel) - 1)
    return (1,) + kernel[1:], flat_taps(size, lead, dilation)[0]


def _columns(rows: np.ndarray, size: tuple[int, ...], kernel: Sequence[int],
             dilation: Sequence[int], m: int, groups: int, keep: bool) -> np.ndarray:
    """Columns ``(G, Cg*T, m)`` of rows ``(C, >= m + span)``; scratch unless ``keep``."""
    view = flat_windows(rows, size, kernel, dilation, m)
    cols = np.empty(view.shape, rows.dtype) if keep else _pool.scratch("cols", view.shape, rows.dtype)
    _pool.copy(cols, view, axis=0)
    return cols.reshape(groups, -1, m)


def _lead_weights(w: np.ndarray, groups: int, leads: int, dtype: np.dtype) -> np.ndarray:
    """``w`` (O, Cg, *K) as one ``(G, Og, Cg*T/leads)`` matrix per leading tap."""
    o, cg = w.shape[:2]
    t = math.prod(w.shape[2:]) // leads
    wl = w.reshape(groups, o // groups, cg, leads, t).transpose(3, 0, 1, 2, 4)
    return np.ascontiguousarray(wl, dtype=dtype).reshape(leads, groups, o // groups, cg * t)


def _length(b: int, size: tuple[int, ...], kernel: Sequence[int],
            dilation: Sequence[int]) -> int:
    """Flat positions from the first that cover every output of ``b`` planes end to end."""
    return (b - 1) * math.prod(size) + flat_taps(size, kernel, dilation)[1]


def _correlate(xc: np.ndarray, w: np.ndarray, dilation: Sequence[int], groups: int,
               out: tuple[int, ...], cache: dict | None = None) -> np.ndarray:
    """Stride-1 correlation of channel-major ``xc`` (C, N, *S) with ``w`` -> new (N, O, *out)."""
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
    kept = [] if cache is not None and n * per_sample <= CACHE_BYTES else None
    # columns kept for the weight gradient hold every tap (its products want them whole)
    copied, leads = (kernel, [0]) if kept is not None else _split(size, kernel, dilation, cg)
    wl = _lead_weights(w, groups, len(leads), dtype)
    valid = (slice(None),) * 3 + flat_valid(size, out)
    for sl in batch_chunks(n, per_sample, CHUNK_BYTES):
        b = sl.stop - sl.start
        m = _length(b, size, kernel, dilation)
        cols = _columns(rows[:, sl.start * plane : sl.stop * plane], size, copied, dilation,
                        m + leads[-1], groups, keep=kept is not None)
        if kept is not None:
            kept.append(cols)
        wide = _pool.scratch("flat_y", (groups, og, b * plane), dtype)
        if len(leads) == 1:
            np.matmul(wl[0], cols[:, :, :m], out=wide[:, :, :m])
        else:
            _lead_product(wl, cols, leads, m, wide)
        src = wide.reshape((groups, og, b) + size)[valid]
        _pool.copy(y[sl].reshape((b, groups, og) + out),
                   src.transpose((2, 0, 1) + tuple(range(3, 3 + len(size)))), axis=1)
    if kept is not None:
        cache["flat_cols"] = kept
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


def conv_forward(xp: np.ndarray, w: np.ndarray, stride: Sequence[int], dilation: Sequence[int],
                 groups: int, cache: dict | None = None) -> np.ndarray:
    """Cross-correlation of padded ``xp`` (N, C, *S) with ``w`` (O, C/G, *K) -> (N, O, *out)."""
    size = tuple(xp.shape[2:])
    dtype = np.result_type(xp, w)
    out = conv_output_shape(size, w.shape[2:], stride, ((0, 0),) * len(size), dilation)
    xc = channel_major(xp, size, (0,) * len(size), dtype, slot="flat_x")
    return _correlate(xc, w, dilation, groups, out, cache)


def _flipped_transposed(w: np.ndarray, groups: int) -> np.ndarray:
    """The weight of the transposed correlation: ``(C, O/G, *K)``, taps reversed."""
    o, cg = w.shape[:2]
    nd = w.ndim - 2
    wg = w.reshape((groups, o // groups, cg) + w.shape[2:]).swapaxes(1, 2)
    flipped = wg[(slice(None),) * 3 + (slice(None, None, -1),) * nd]
    return np.ascontiguousarray(flipped).reshape((groups * cg, o // groups) + w.shape[2:])


def conv_input_grad(gy: np.ndarray, w: np.ndarray, padded_shape: Sequence[int],
                    stride: Sequence[int], dilation: Sequence[int], groups: int,
                    cache: dict | None = None) -> np.ndarray:
    """Gradient of the padded input (N, C, *padded_shape)."""
    size = tuple(padded_shape)
    kernel = tuple(w.shape[2:])
    dtype = np.result_type(gy, w)
    if fold_is_cheaper(w.shape[1], w.shape[0] // groups, gy.shape[2:], kernel, dilation):
        return _input_grad_fold(gy, w, size, dilation, groups, dtype, cache)
    span = tuple(d * (k - 1) for d, k in zip(dilation, kernel))
    gc = channel_major(gy, tuple(s + e for s, e in zip(size, span)), span, dtype, slot="flat_x")
    return _correlate(gc, _flipped_transposed(w, groups), dilation, groups, size)


def _input_grad_fold(gy: np.ndarray, w: np.ndarray, size: tuple[int, ...],
                     dilation: Sequence[int], groups: int, dtype: np.dtype,
                     cache: dict | None) -> np.ndarray:
    """``W^T @ gy`` into columns, then the flat overlap-add (few input channels)."""
    n, o = gy.shape[:2]
    kernel = tuple(w.shape[2:])
    cg, og = w.shape[1], o // groups
    c, plane, T = cg * groups, math.prod(size), math.prod(kernel)
    slot = None if cache is not None else "flat_g"
    gc = channel_major(gy, size, (0,) * len(size), dtype, slot).reshape(o, n * plane)
    if cache is not None:
        cache["flat_gy"] = gc  # the weight gradient reads the same rows
    wt = w.reshape(groups, og, cg * T).transpose(0, 2, 1).astype(dtype, copy=False)
    dx = _pool.scratch("flat_dx", (c, n * plane), dtype)
    dx.fill(0)
    for sl in batch_chunks(n, c * T * plane * dtype.itemsize, CHUNK_BYTES):
        b = sl.stop - sl.start
        m = _length(b, size, kernel, dilation)
        start = sl.start * plane
        g = gc[:, start : start + m].reshape(groups, og, m)
        cols = np.matmul(wt, g, out=_pool.scratch("cols", (groups, cg * T, m), dtype))
        cols = cols.reshape(c, T, m)
        dst = dx[:, start : sl.stop * plane]

        def fold(part: slice, dst: np.ndarray = dst, cols: np.ndarray = cols) -> None:
            flat_fold_add(dst[part], cols[part], size, kernel, dilation)

        _pool.parallel(fold, c, cols.nbytes, copy=True)
    out = np.empty((n, c) + size, dtype=dtype)
    return _pool.copy(out, dx.reshape((c, n) + size).swapaxes(0, 1), axis=1)


def conv_weight_grad(xp: np.ndarray, gy: np.ndarray, kernel: Sequence[int],
                     stride: Sequence[int], dilation: Sequence[int], groups: int,
                     cache: dict | None = None) -> np.ndarray:
    """Gradient of the weight (O, C/G, *kernel); reuses the forward's columns."""
    n, c = xp.shape[:2]
    o = gy.shape[1]
    size = tuple(xp.shape[2:])
    kernel = tuple(kernel)
    cg, og = c // groups, o // groups
    plane = math.prod(size)
    dtype = np.result_type(xp, gy)
    if n == 0:
        return np.zeros((o, cg) + kernel, dtype=dtype)
    T = math.prod(kernel)
    dw = None
    gc = cache.pop("flat_gy", None) if cache is not None else None
    if gc is None or gc.dtype != dtype:
        gc = channel_major(gy, size, (0,) * len(size), dtype, "flat_g").reshape(o, n * plane)
    chunks = list(batch_chunks(n, c * T * plane * dtype.itemsize, CHUNK_BYTES))
    kept = cache.pop("flat_cols", None) if cache is not None else None
    if kept is not None and len(kept) != len(chunks):
        kept = None
    rows = None
    for i, sl in enumerate(chunks):
        b = sl.stop - sl.start
        m = _length(b, size, kernel, dilation)
        if kept is not None:
            cols = kept[i]
        else:
            if rows is None:
                rows = channel_major(xp, size, (0,) * len(size), dtype, "flat_x")
                rows = rows.reshape(c, n * plane)
            cols = _columns(rows[:, sl.start * plane : sl.stop * plane], size, kernel, dilation,
                            m, groups, keep=False)
        start = sl.start * plane
        g = gc[:, start : start + m].reshape(groups, og, m)
        part = weight_product(g, cols)
        if dw is None:
            dw = part
        else:
            dw += part
    return dw.reshape((o, cg) + kernel)

"""Helpers and size constants shared by the NumPy algorithms (no algorithm lives here).

Every algorithm module imports this one and none imports another: the column
copies (:func:`im2col`, :func:`channel_major`), the group-major layouts, the
batch chunking, the weight-gradient product and the padding/bias helpers live
here once.  The sizes were set by measurement with the conv suite
(``python benchmarks/conv_suite.py``): columns of one batch chunk stay under
:data:`CHUNK_BYTES` (no ``T``-fold copy of the whole batch), and a forward keeps
its columns for the weight gradient when the whole batch's fit :data:`CACHE_BYTES`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from ..._windows import Pairs, interior
from .. import _pool
from ..spec import ConvSpec

#: Largest im2col columns of one batch chunk (GEMM, flat).
CHUNK_BYTES = 32 * 2**20
#: Largest columns a forward keeps for the weight gradient (GEMM, flat).
CACHE_BYTES = 64 * 2**20
#: Winograd's chunk (transformed input and output tiles of a chunk) and kept-tile limits.
WINOGRAD_CHUNK_BYTES = 24 * 2**20
WINOGRAD_CACHE_BYTES = 256 * 2**20
#: Largest input spectrum the FFT forward keeps for the weight gradient.
FFT_CACHE_BYTES = 128 * 2**20
#: see :func:`fold_is_cheaper`
FOLD_COST = 1.6
#: Largest weight gradient (elements) computed as ``(cols @ gy^T)^T``; see :func:`weight_product`.
TRANSPOSED_PRODUCT_MAX = 1 << 16


def batch_chunks(n: int, per_sample_bytes: int, limit: int | None = None) -> Iterator[slice]:
    """Slices over a batch of ``n`` so that each chunk's temporaries fit ``limit`` bytes
    (default :data:`CHUNK_BYTES`)."""
    limit = CHUNK_BYTES if limit is None else limit
    step = max(1, limit // max(1, per_sample_bytes))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def padded(x: np.ndarray, pads: Pairs, slot: str | None = None) -> np.ndarray:
    """``x`` (N, C, *S) zero-padded by ``pads``: ``x`` itself when nothing is padded, else a
    new array, or the scratch buffer ``slot`` (only for a copy that never leaves the call)."""
    if not any(p for pair in pads for p in pair):
        return x
    shape = x.shape[:2] + tuple(s + pb + pa for s, (pb, pa) in zip(x.shape[2:], pads))
    if slot is None:
        out = np.zeros(shape, dtype=x.dtype)
    else:
        out = _pool.scratch(slot, shape, x.dtype)
        out.fill(0)
    out[interior(pads, x.shape[2:])] = x
    return out


def unpadded(dxp: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The unpadded input's part of a padded input's gradient (a view when padded)."""
    if not spec.padded_any:
        return dxp
    return dxp[interior(spec.pads, spec.size)]


def bias_view(b: np.ndarray | None, nd: int) -> np.ndarray | None:
    """``b`` (O,) shaped to broadcast over ``(N, O, *out)``."""
    return None if b is None else b.reshape((-1,) + (1,) * nd)


def add_bias(y: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``y += b`` over the channel axis (for paths that have no copy to fuse it into)."""
    if b is not None:
        y += bias_view(b, y.ndim - 2)
    return y


def bias_grad(spec: ConvSpec, gy: np.ndarray) -> np.ndarray | None:
    """``db[o] = sum_{n, p} gy[n, o, p]``, or None when the spec has no bias."""
    if not spec.bias:
        return None
    return gy.sum(axis=(0,) + tuple(range(2, gy.ndim)))


def store(dst: np.ndarray, src: np.ndarray, b: np.ndarray | None, axis: int | None = None,
          eager: bool = False) -> np.ndarray:
    """``dst[...] = src (+ b)``: the copy out of a scratch layout, with the bias fused in.

    ``b`` must already broadcast against ``dst`` (see :func:`bias_view`)."""
    if b is None:
        return _pool.copy(dst, src, axis=axis, eager=eager)
    np.add(src, b, out=dst)
    return dst


def im2col(view: np.ndarray, groups: int, keep: bool = False) -> np.ndarray:
    """Copy a window view ``(B, C, *K, *out)`` into columns ``(G, Cg*T, B*L)``.

    The columns are a scratch buffer unless ``keep`` (then a new array).
    """
    nd = (view.ndim - 2) // 2
    b, c = view.shape[:2]
    order = (1,) + tuple(range(2, 2 + nd)) + (0,) + tuple(range(2 + nd, 2 + 2 * nd))
    src = view.transpose(order)
    cols = np.empty(src.shape, view.dtype) if keep else _pool.scratch("cols", src.shape, view.dtype)
    _pool.copy(cols, src, axis=0)
    return cols.reshape(groups, -1, b * math.prod(view.shape[2 + nd :]))


def to_group_major(a: np.ndarray, groups: int, slot: str = "gy") -> np.ndarray:
    """``(B, O, *out)`` -> ``(G, Og, B*L)``, copied into scratch ``slot`` unless ``B == 1``."""
    b, o = a.shape[:2]
    L = math.prod(a.shape[2:])
    if b == 1:
        return np.ascontiguousarray(a).reshape(groups, o // groups, L)
    src = a.reshape(b, groups, o // groups, L).transpose(1, 2, 0, 3)
    return _pool.copy(_pool.scratch(slot, src.shape, a.dtype), src).reshape(groups, o // groups, b * L)


def channel_major(a: np.ndarray, size: tuple[int, ...], at: tuple[int, ...],
                  slot: str | None = None, eager: bool = False) -> np.ndarray:
    """``a`` (N, C, *S) copied channel-major into ``(C, N, *size)``, at offset ``at`` of
    each plane; the rest of every plane is zero (this is where the zero padding of the
    flat and depthwise paths happens, in the copy they make anyway).  A new array, or
    the scratch buffer ``slot`` (a fresh multi-megabyte array costs its page faults on
    every call); ``eager`` as in :func:`convprop.kernels._pool.copy`."""
    n, c = a.shape[:2]
    shape = (c, n) + size
    full = tuple(a.shape[2:]) == size
    if slot is None:
        dst = (np.empty if full else np.zeros)(shape, dtype=a.dtype)
    else:
        dst = _pool.scratch(slot, shape, a.dtype)
        if not full:
            dst.fill(0)
    inner = (slice(None), slice(None)) + tuple(slice(o, o + s) for o, s in zip(at, a.shape[2:]))
    _pool.copy(dst[inner], a.transpose((1, 0) + tuple(range(2, a.ndim))), axis=0, eager=eager)
    return dst


def fold_is_cheaper(c: int, o: int, out_shape: tuple[int, ...], kernel: tuple[int, ...],
                    dilation: tuple[int, ...]) -> bool:
    """Stride 1: col2im (GEMM, then an overlap-add of ``C*T`` planes of the output size) or
    the forward on ``gy`` padded by the kernel span on both sides (im2col of ``O*T``
    planes of the padded size)?  An add moves more than a copy (``FOLD_COST``, measured
    with the conv suite), so the fold pays for fewer input than output channels and for
    small planes, where the padding is a large part of the copy."""
    padded_size = math.prod(s + 2 * d * (k - 1) for s, k, d in zip(out_shape, kernel, dilation))
    return FOLD_COST * c * math.prod(out_shape) < o * padded_size


def flipped_transposed(w: np.ndarray, groups: int) -> np.ndarray:
    """The weight of the transposed correlation: ``(C, O/G, *K)``, taps reversed, so that
    ``dxp`` is the stride-1 correlation of ``gy`` (padded by the span) with it."""
    o, cg = w.shape[:2]
    nd = w.ndim - 2
    wg = w.reshape((groups, o // groups, cg) + w.shape[2:]).swapaxes(1, 2)
    flipped = wg[(slice(None),) * 3 + (slice(None, None, -1),) * nd]
    return np.ascontiguousarray(flipped).reshape((groups * cg, o // groups) + w.shape[2:])


def weight_product(g: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``g @ cols^T`` per group, ``(G, Og, K) x (G, Cg*T, K) -> new (G, Og, Cg*T)``.

    OpenBLAS computes these long-``K`` products up to 2x faster as ``cols @ g^T``
    (measured on the suite's weight gradients with few output channels); the
    transposing copy back is cheap only for small results, so larger ones keep the
    direct orientation."""
    if g.shape[1] * cols.shape[1] > TRANSPOSED_PRODUCT_MAX:
        return np.matmul(g, cols.transpose(0, 2, 1))
    return np.ascontiguousarray(np.matmul(cols, g.transpose(0, 2, 1)).transpose(0, 2, 1))

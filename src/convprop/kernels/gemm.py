"""im2col + GEMM: the general path, valid for every convolution shape.

All three primitives take *normalised* arguments (tuples, already padded input)
and plain ndarrays.  With ``G`` groups, ``Cg = C/G`` input and ``Og = O/G``
output channels per group, ``T = prod(kernel)`` taps, ``L = prod(out)`` output
positions and a batch chunk of ``B`` samples, the columns of a chunk are laid
out batch-*inside* ``(G, Cg*T, B*L)`` so that each product is one large GEMM
per group whatever the image size (a 7x7 layer multiplies a B*49-wide matrix,
not B matrices 49 wide):

* forward:      y[g]      = W[g] (Og, Cg*T)   @ cols[g] (Cg*T, B*L)
* input grad:   cols'[g]  = W[g]^T (Cg*T, Og) @ gy[g] (Og, B*L), then fold_add -> dx
* weight grad:  dW[g]    += gy[g] (Og, B*L)   @ cols[g]^T (B*L, Cg*T)

The input gradient is exactly a transposed convolution of ``gy`` with ``W``
(GEMM followed by the overlap-add :func:`fold_add`), so transposed convolution
calls the same function.  The weight gradient is a convolution of the input
with ``gy`` as the kernel (same window view, contracted over batch and
positions).  Chunks keep the columns under ``CHUNK_BYTES`` (no ``T``-fold copy
of the whole batch); when the whole batch's columns fit ``CACHE_BYTES`` the
forward keeps them in ``cache`` for the weight gradient.  Copies and col2im
run on the small thread pool of :mod:`convprop.kernels._pool`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from .._windows import fold_add, windows
from . import _pool

CHUNK_BYTES = 32 * 2**20
CACHE_BYTES = 64 * 2**20
#: see :func:`fold_is_cheaper`
FOLD_COST = 1.6


def supports(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
             groups: int, c: int, o: int) -> bool:
    """Every convolution."""
    return True


def batch_chunks(n: int, per_sample_bytes: int, limit: int = CHUNK_BYTES) -> Iterator[slice]:
    """Slices over a batch of ``n`` so that each chunk's temporaries fit ``limit`` bytes."""
    step = max(1, limit // max(1, per_sample_bytes))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


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
        return a.reshape(groups, o // groups, L)
    src = a.reshape(b, groups, o // groups, L).transpose(1, 2, 0, 3)
    return _pool.copy(_pool.scratch(slot, src.shape, a.dtype), src).reshape(groups, o // groups, b * L)


def conv_forward(
    xp: np.ndarray,
    w: np.ndarray,
    stride: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    cache: dict | None = None,
) -> np.ndarray:
    """Cross-correlation of padded ``xp`` (N, C, *S) with ``w`` (O, C/G, *K) -> (N, O, *out)."""
    n, c = xp.shape[:2]
    o, kernel = w.shape[0], w.shape[2:]
    view = windows(xp, kernel, stride, dilation)
    out_shape = view.shape[2 + len(kernel) :]
    L, T = math.prod(out_shape), math.prod(kernel)
    cg, og = c // groups, o // groups
    dtype = np.result_type(xp, w)
    w2 = w.reshape(groups, og, cg * T)
    y = np.empty((n, o) + tuple(out_shape), dtype=dtype)
    per_sample = c * T * L * dtype.itemsize
    kept = [] if cache is not None and n * per_sample <= CACHE_BYTES else None
    for sl in batch_chunks(n, per_sample):
        b = sl.stop - sl.start
        cols = im2col(view[sl], groups, keep=kept is not None)
        if kept is not None:
            kept.append(cols)
        if b == 1:
            np.matmul(w2, cols, out=y[sl].reshape(groups, og, L))
            continue
        yc = np.matmul(w2, cols, out=_pool.scratch("gemm_y", (groups, og, b * L), dtype))
        yc = yc.reshape(groups, og, b, L).transpose(2, 0, 1, 3)
        _pool.copy(y[sl].reshape(b, groups, og, L), yc)
    if kept is not None:
        cache["gemm_cols"] = kept
    return y


def conv_input_grad(
    gy: np.ndarray,
    w: np.ndarray,
    padded_shape: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    cache: dict | None = None,
) -> np.ndarray:
    """Gradient w.r.t. the padded input: a transposed convolution of ``gy`` with ``w``.

    ``gy`` is (N, O, *out), ``w`` is (O, C/G, *K); returns (N, C, *padded_shape)
    where ``padded_shape`` is the spatial shape of the padded forward input
    (positions the forward never read, when the stride does not divide, get 0).
    """
    if all(s == 1 for s in stride) and groups == 1 and not fold_is_cheaper(
            w.shape[1], w.shape[0], gy.shape[2:], w.shape[2:], dilation):
        return _input_grad_as_forward(gy, w, padded_shape, dilation)
    n, o = gy.shape[:2]
    kernel = tuple(w.shape[2:])
    nd = len(kernel)
    out_shape = tuple(gy.shape[2:])
    cg = w.shape[1]
    c, og = cg * groups, o // groups
    L, T = math.prod(out_shape), math.prod(kernel)
    dtype = np.result_type(gy, w)
    wt = w.reshape(groups, og, cg * T).transpose(0, 2, 1)
    dx = np.zeros((n, c) + tuple(padded_shape), dtype=dtype)
    back = (nd + 1,) + (0,) + tuple(range(1, nd + 1)) + tuple(range(nd + 2, 2 * nd + 2))
    for sl in batch_chunks(n, c * T * L * dtype.itemsize):
        b = sl.stop - sl.start
        cols = np.matmul(wt, to_group_major(gy[sl], groups),
                         out=_pool.scratch("cols", (groups, cg * T, b * L), dtype))
        cols = cols.reshape((c,) + kernel + (b,) + out_shape).transpose(back)
        dst = dx[sl]

        def fold(part: slice, dst: np.ndarray = dst, cols: np.ndarray = cols) -> None:
            fold_add(dst[:, part], cols[:, part], kernel, stride, dilation)

        _pool.parallel(fold, c, cols.nbytes, copy=True)
    return dx


def fold_is_cheaper(c: int, o: int, out_shape: Sequence[int], kernel: Sequence[int],
                    dilation: Sequence[int]) -> bool:
    """Stride 1: col2im (GEMM, then ``fold_add`` of ``C*T`` planes of the output size) or
    the forward on ``gy`` padded by the kernel span on both sides (im2col of ``O*T``
    planes of the padded size)?  An add moves more than a copy (``FOLD_COST``, measured
    with the conv suite), so the fold pays for fewer input than output channels and for
    small planes, where the padding is a large part of the copy."""
    padded = math.prod(s + 2 * d * (k - 1) for s, k, d in zip(out_shape, kernel, dilation))
    return FOLD_COST * c * math.prod(out_shape) < o * padded


def _input_grad_as_forward(gy: np.ndarray, w: np.ndarray, padded_shape: Sequence[int],
                           dilation: Sequence[int]) -> np.ndarray:
    """Stride 1: ``dxp`` is the forward correlation of ``gy``, zero-padded by the dilated
    kernel span minus one on each side, with the kernel flipped and its channel axes swapped
    (im2col copies instead of col2im's scattered adds)."""
    nd = w.ndim - 2
    span = tuple(d * (k - 1) for d, k in zip(dilation, w.shape[2:]))
    # positions past out + span (a transposed convolution's output_padding) read only zeros
    gp = np.zeros(gy.shape[:2] + tuple(p + e for p, e in zip(padded_shape, span)), gy.dtype)
    gp[(slice(None), slice(None)) + tuple(slice(e, e + s) for e, s in zip(span, gy.shape[2:]))] = gy
    flipped = np.ascontiguousarray(w[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
                                   .swapaxes(0, 1))
    return conv_forward(gp, flipped, (1,) * nd, dilation, 1)


def conv_weight_grad(
    xp: np.ndarray,
    gy: np.ndarray,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    cache: dict | None = None,
) -> np.ndarray:
    """Gradient w.r.t. the weight: the padded input convolved with ``gy`` as the kernel.

    ``xp`` is (N, C, *S) padded, ``gy`` is (N, O, *out); returns (O, C/G, *kernel).
    Uses (and releases) the forward's columns when ``cache`` holds them.
    """
    n, c = xp.shape[:2]
    o = gy.shape[1]
    out_shape = gy.shape[2:]
    view = windows(xp, kernel, stride, dilation, out_shape)
    L, T = math.prod(out_shape), math.prod(kernel)
    cg, og = c // groups, o // groups
    dtype = np.result_type(xp, gy)
    chunks = list(batch_chunks(n, c * T * L * dtype.itemsize))
    kept = cache.pop("gemm_cols", None) if cache is not None else None
    if kept is not None and len(kept) != len(chunks):
        kept = None
    dw = None
    for i, sl in enumerate(chunks):
        cols = kept[i] if kept is not None else im2col(view[sl], groups)
        part = weight_product(to_group_major(gy[sl], groups), cols)
        if dw is None:
            dw = part
        else:
            dw += part
    if dw is None:
        dw = np.zeros((groups, og, cg * T), dtype=dtype)
    return dw.reshape((o, cg) + tuple(kernel))


#: Largest weight gradient (elements) computed as ``(cols @ gy^T)^T``; see :func:`weight_product`.
TRANSPOSED_PRODUCT_MAX = 1 << 16


def weight_product(g: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``g @ cols^T`` per group, ``(G, Og, K) x (G, Cg*T, K) -> new (G, Og, Cg*T)``.

    OpenBLAS computes these long-``K`` products up to 2x faster as ``cols @ g^T``
    (measured on the suite's weight gradients with few output channels); the
    transposing copy back is cheap only for small results, so larger ones keep the
    direct orientation."""
    if g.shape[1] * cols.shape[1] > TRANSPOSED_PRODUCT_MAX:
        return np.matmul(g, cols.transpose(0, 2, 1))
    return np.ascontiguousarray(np.matmul(cols, g.transpose(0, 2, 1)).transpose(0, 2, 1))

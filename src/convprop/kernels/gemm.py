"""im2col + GEMM: the general path, valid for every convolution shape.

All three primitives take *normalised* arguments (tuples, already padded input)
and plain ndarrays.  With ``G`` groups, ``Cg = C/G`` input and ``Og = O/G``
output channels per group, ``T = prod(kernel)`` taps and ``L = prod(out)``
output positions:

* forward:      y[n, g]      = W[g] (Og, Cg*T)   @ cols[n, g] (Cg*T, L)
* input grad:   cols'[n, g]  = W[g]^T (Cg*T, Og) @ gy[n, g] (Og, L), then fold_add -> dx
* weight grad:  dW[g]       += gy[n, g] (Og, L) @ cols[n, g]^T (L, Cg*T)

The input gradient is exactly a transposed convolution of ``gy`` with ``W``
(GEMM followed by the overlap-add :func:`fold_add`), so transposed convolution
calls the same function.  The weight gradient is a convolution of the input
with ``gy`` as the kernel (same window view, contracted over batch and
positions).  Batches are processed in chunks so that the temporary columns stay
under ``CHUNK_BYTES``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from .._windows import fold_add, windows

CHUNK_BYTES = 32 * 2**20


def batch_chunks(n: int, per_sample_bytes: int) -> Iterator[slice]:
    """Slices over a batch of ``n`` so that each chunk's temporaries fit ``CHUNK_BYTES``."""
    step = max(1, CHUNK_BYTES // max(1, per_sample_bytes))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def conv_forward(
    xp: np.ndarray,
    w: np.ndarray,
    stride: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Cross-correlation of padded ``xp`` (N, C, *S) with ``w`` (O, C/G, *K) -> (N, O, *out)."""
    n, c = xp.shape[:2]
    o, kernel = w.shape[0], w.shape[2:]
    view = windows(xp, kernel, stride, dilation)
    out_shape = view.shape[2 + len(kernel) :]
    L, T = math.prod(out_shape), math.prod(kernel)
    cg, og = c // groups, o // groups
    w2 = w.reshape(groups, og, cg * T)
    y = np.empty((n, groups, og, L), dtype=np.result_type(xp, w))
    for sl in batch_chunks(n, c * T * L * xp.itemsize):
        cols = np.ascontiguousarray(view[sl]).reshape(-1, groups, cg * T, L)
        np.matmul(w2, cols, out=y[sl])
    return y.reshape((n, o) + tuple(out_shape))


def conv_input_grad(
    gy: np.ndarray,
    w: np.ndarray,
    padded_shape: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Gradient w.r.t. the padded input: a transposed convolution of ``gy`` with ``w``.

    ``gy`` is (N, O, *out), ``w`` is (O, C/G, *K); returns (N, C, *padded_shape)
    where ``padded_shape`` is the spatial shape of the padded forward input
    (positions the forward never read, when the stride does not divide, get 0).
    """
    n, o = gy.shape[:2]
    kernel = w.shape[2:]
    out_shape = gy.shape[2:]
    cg = w.shape[1]
    c, og = cg * groups, o // groups
    L, T = math.prod(out_shape), math.prod(kernel)
    dtype = np.result_type(gy, w)
    wt = np.ascontiguousarray(w.reshape(groups, og, cg * T).transpose(0, 2, 1))
    g3 = gy.reshape(n, groups, og, L)
    dx = np.zeros((n, c) + tuple(padded_shape), dtype=dtype)
    for sl in batch_chunks(n, c * T * L * dtype.itemsize):
        cols = np.matmul(wt, g3[sl])  # (n, G, Cg*T, L)
        cols = cols.reshape((-1, c) + tuple(kernel) + tuple(out_shape))
        fold_add(dx[sl], cols, kernel, stride, dilation)
    return dx


def conv_weight_grad(
    xp: np.ndarray,
    gy: np.ndarray,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Gradient w.r.t. the weight: the padded input convolved with ``gy`` as the kernel.

    ``xp`` is (N, C, *S) padded, ``gy`` is (N, O, *out); returns (O, C/G, *kernel).
    """
    n, c = xp.shape[:2]
    o = gy.shape[1]
    out_shape = gy.shape[2:]
    view = windows(xp, kernel, stride, dilation, out_shape)
    L, T = math.prod(out_shape), math.prod(kernel)
    cg, og = c // groups, o // groups
    dtype = np.result_type(xp, gy)
    g3 = gy.reshape(n, groups, og, L)
    dw = np.zeros((groups, og, cg * T), dtype=dtype)
    for sl in batch_chunks(n, c * T * L * xp.itemsize):
        cols = np.ascontiguousarray(view[sl]).reshape(-1, groups, cg * T, L)
        dw += np.matmul(g3[sl], cols.transpose(0, 1, 3, 2)).sum(axis=0)
    return dw.reshape((o, cg) + tuple(kernel))

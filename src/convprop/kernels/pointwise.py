"""1x1 convolutions as plain batched matrix products (no window copy).

A 1x1 kernel reads one input position per output position, so with ``Cg``
input and ``Og`` output channels per group the convolution *is* a matrix
product over channels, for every sample and group::

    y[n, g] (Og, L) = W[g] (Og, Cg) @ x[n, g] (Cg, L)

where ``x`` is the input subsampled by the stride (a view; only copied when
the stride is not 1).  Its input gradient is ``W[g]^T @ gy[n, g]`` scattered
back to the positions the stride read, and its weight gradient is
``sum_n gy[n, g] @ x[n, g]^T``.  For small images (``L`` below
``PER_SAMPLE_MIN``) the batch is moved inside the matrices instead, as in
:mod:`convprop.kernels.gemm`, so that each group is one large GEMM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import _pool
from .gemm import to_group_major

PER_SAMPLE_MIN = 256


def supports(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
             groups: int, c: int, o: int) -> bool:
    """Every 1x1 (1x1x1, ...) kernel, any stride and groups; dilation is moot."""
    return all(k == 1 for k in kernel)


def _read(shape: Sequence[int], stride: Sequence[int], out: Sequence[int]) -> tuple[slice, ...]:
    """Index of the positions a strided 1x1 kernel reads from a ``(N, C, *shape)`` input."""
    del shape
    return (slice(None), slice(None)) + tuple(slice(0, s * (o - 1) + 1, s)
                                              for s, o in zip(stride, out))


def _out_shape(size: Sequence[int], stride: Sequence[int]) -> tuple[int, ...]:
    return tuple((x - 1) // s + 1 for x, s in zip(size, stride))


def _from_group_major(a: np.ndarray, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """``(G, Og, N*L)`` -> new ``(N, G*Og, *shape)``."""
    g, og = a.shape[:2]
    out = np.empty((n, g * og) + shape, dtype=a.dtype)
    _pool.copy(out.reshape(n, g, og, -1), a.reshape(g, og, n, -1).transpose(2, 0, 1, 3))
    return out


def _samples(x: np.ndarray, groups: int) -> np.ndarray:
    """``(N, C, *out)`` (contiguous) -> ``(N, G, Cg, L)`` view."""
    n, c = x.shape[:2]
    return x.reshape(n, groups, c // groups, -1)


def conv_forward(xp: np.ndarray, w: np.ndarray, stride: Sequence[int], dilation: Sequence[int],
                 groups: int, cache: dict | None = None) -> np.ndarray:
    n, c = xp.shape[:2]
    o = w.shape[0]
    out = _out_shape(xp.shape[2:], stride)
    xs = xp[_read(xp.shape[2:], stride, out)]
    dtype = np.result_type(xp, w)
    w3 = w.reshape(groups, o // groups, c // groups)
    L = math.prod(out)
    if n == 0:
        return np.empty((0, o) + out, dtype=dtype)
    if L >= PER_SAMPLE_MIN or n == 1:
        if not xs.flags.c_contiguous:
            xs = _pool.copy(np.empty(xs.shape, dtype=xs.dtype), xs)
        y = np.empty((n, o) + out, dtype=dtype)
        np.matmul(w3, _samples(xs, groups), out=_samples(y, groups))
        return y
    return _from_group_major(np.matmul(w3, to_group_major(xs, groups, "x")), n, out)


def conv_input_grad(gy: np.ndarray, w: np.ndarray, padded_shape: Sequence[int],
                    stride: Sequence[int], dilation: Sequence[int], groups: int,
                    cache: dict | None = None) -> np.ndarray:
    n, o = gy.shape[:2]
    out = tuple(gy.shape[2:])
    cg = w.shape[1]
    c = cg * groups
    dtype = np.result_type(gy, w)
    wt = w.reshape(groups, o // groups, cg).transpose(0, 2, 1)
    L = math.prod(out)
    dense = tuple(padded_shape) == out
    if n == 0:
        return np.zeros((0, c) + tuple(padded_shape), dtype=dtype)
    if L >= PER_SAMPLE_MIN or n == 1:
        g = np.ascontiguousarray(gy)
        if dense:
            dx = np.empty((n, c) + out, dtype=dtype)
            np.matmul(wt, _samples(g, groups), out=_samples(dx, groups))
            return dx
        small = np.matmul(wt, _samples(g, groups)).reshape((n, c) + out)
    else:
        small = _from_group_major(np.matmul(wt, to_group_major(gy, groups)), n, out)
        if dense:
            return small
    dx = np.zeros((n, c) + tuple(padded_shape), dtype=dtype)
    dx[_read(padded_shape, stride, out)] = small
    return dx


def conv_weight_grad(xp: np.ndarray, gy: np.ndarray, kernel: Sequence[int],
                     stride: Sequence[int], dilation: Sequence[int], groups: int,
                     cache: dict | None = None) -> np.ndarray:
    n, c = xp.shape[:2]
    o = gy.shape[1]
    out = tuple(gy.shape[2:])
    xs = xp[_read(xp.shape[2:], stride, out)]
    dtype = np.result_type(xp, gy)
    L = math.prod(out)
    if n == 0:
        return np.zeros((o, c // groups) + tuple(kernel), dtype=dtype)
    if L >= PER_SAMPLE_MIN and xs.flags.c_contiguous:
        # sum_n gy[n] @ x[n]^T, one sample at a time into a small accumulator
        g4, x4 = _samples(np.ascontiguousarray(gy), groups), _samples(xs, groups)
        dw = np.matmul(g4[0], x4[0].transpose(0, 2, 1))
        for i in range(1, n):
            dw += np.matmul(g4[i], x4[i].transpose(0, 2, 1))
    else:
        dw = np.matmul(to_group_major(gy, groups, "gy"),
                       to_group_major(xs, groups, "x").transpose(0, 2, 1))
    return dw.reshape((o, c // groups) + tuple(kernel))

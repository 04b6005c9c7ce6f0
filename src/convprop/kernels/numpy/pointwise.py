"""1x1 convolutions as plain batched matrix products (no window copy).

A 1x1 kernel reads one input position per output position, so with ``Cg``
input and ``Og`` output channels per group the convolution *is* a matrix
product over channels, for every sample and group::

    y[n, g] (Og, L) = W[g] (Og, Cg) @ x[n, g] (Cg, L)  (+ b)

where ``x`` is the (padded) input subsampled by the stride (a view; only copied
when the stride is not 1).  Its input gradient is ``W[g]^T @ gy[n, g]`` scattered
back to the positions the stride read, and its weight gradient is
``sum_n gy[n, g] @ x[n, g]^T``.  For small images (``L`` below
``PER_SAMPLE_MIN``) the batch is moved inside the matrices instead, as in
:mod:`convprop.kernels.numpy.gemm`, so that each group is one large GEMM.
Nothing is saved between forward and backward (there is no copy worth keeping).
"""

from __future__ import annotations

import numpy as np

from .. import _pool
from ..spec import ConvSpec, Saved
from . import _common

PER_SAMPLE_MIN = 256


def _read(spec: ConvSpec) -> tuple[slice, ...]:
    """Index of the positions a strided 1x1 kernel reads from the padded input."""
    return (slice(None), slice(None)) + tuple(slice(0, s * (o - 1) + 1, s)
                                              for s, o in zip(spec.stride, spec.out))


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


class Pointwise:
    """1x1 kernels as matrix products (see the module docstring)."""

    name = "pointwise"

    def supports(self, spec: ConvSpec) -> bool:
        """Every 1x1 (1x1x1, ...) kernel, any stride, padding and groups; dilation is moot."""
        return all(k == 1 for k in spec.kernel)

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, None]:
        n, o, groups, out = spec.n, spec.o, spec.groups, spec.out
        xs = _common.padded(x, spec.pads, slot="pw_x")[_read(spec)]
        w3 = w.reshape(groups, o // groups, spec.cg)
        if n == 0:
            return np.empty(spec.y_shape, dtype=spec.dtype), None
        if spec.positions >= PER_SAMPLE_MIN or n == 1:
            if not xs.flags.c_contiguous:
                xs = _pool.copy(_pool.scratch("x", xs.shape, xs.dtype), xs)
            y = np.empty(spec.y_shape, dtype=spec.dtype)
            np.matmul(w3, _samples(xs, groups), out=_samples(y, groups))
            return _common.add_bias(y, b), None
        y = _from_group_major(np.matmul(w3, _common.to_group_major(xs, groups, "x")), n, out)
        return _common.add_bias(y, b), None

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        n, c, groups, out = spec.n, spec.c, spec.groups, spec.out
        wt = w.reshape(groups, spec.og, spec.cg).transpose(0, 2, 1)
        dense = spec.padded == out  # stride 1: dxp is the product itself
        if n == 0:
            return np.zeros(spec.x_shape, dtype=spec.dtype)
        if spec.positions >= PER_SAMPLE_MIN or n == 1:
            g = np.ascontiguousarray(gy)
            if dense:
                dxp = np.empty((n, c) + out, dtype=spec.dtype)
                np.matmul(wt, _samples(g, groups), out=_samples(dxp, groups))
                return _common.unpadded(dxp, spec)
            small = np.matmul(wt, _samples(g, groups)).reshape((n, c) + out)
        else:
            small = _from_group_major(np.matmul(wt, _common.to_group_major(gy, groups)), n, out)
            if dense:
                return _common.unpadded(small, spec)
        dxp = np.zeros((n, c) + spec.padded, dtype=spec.dtype)
        dxp[_read(spec)] = small
        return _common.unpadded(dxp, spec)

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        n, groups = spec.n, spec.groups
        xs = _common.padded(x, spec.pads, slot="pw_x")[_read(spec)]
        if n == 0:
            return np.zeros(spec.w_shape, dtype=spec.dtype), _common.bias_grad(spec, gy)
        if spec.positions >= PER_SAMPLE_MIN and xs.flags.c_contiguous:
            # sum_n gy[n] @ x[n]^T, one sample at a time into a small accumulator
            g4, x4 = _samples(np.ascontiguousarray(gy), groups), _samples(xs, groups)
            dw = np.matmul(g4[0], x4[0].transpose(0, 2, 1))
            for i in range(1, n):
                dw += np.matmul(g4[i], x4[i].transpose(0, 2, 1))
        else:
            dw = np.matmul(_common.to_group_major(gy, groups, "gy"),
                           _common.to_group_major(xs, groups, "x").transpose(0, 2, 1))
        return dw.reshape(spec.w_shape), _common.bias_grad(spec, gy)


POINTWISE = Pointwise()

"""im2col + GEMM: the general path, valid for every convolution shape.

With ``G`` groups, ``Cg = C/G`` input and ``Og = O/G`` output channels per group,
``T = prod(kernel)`` taps, ``L = prod(out)`` output positions and a batch chunk of
``B`` samples, the columns of a chunk are laid out batch-*inside* ``(G, Cg*T,
B*L)`` so that each product is one large GEMM per group whatever the image size
(a 7x7 layer multiplies a B*49-wide matrix, not B matrices 49 wide)::

    forward:      y[g]      = W[g] (Og, Cg*T)   @ cols[g] (Cg*T, B*L)  (+ b, fused in the copy out)
    input grad:   cols'[g]  = W[g]^T (Cg*T, Og) @ gy[g] (Og, B*L), then fold_add -> dxp
    weight grad:  dW[g]    += gy[g] (Og, B*L)   @ cols[g]^T (B*L, Cg*T)

The input gradient is a transposed convolution of ``gy`` with ``W`` (GEMM, then the
overlap-add :func:`convprop._windows.fold_add`); at stride 1 without groups it may
instead be the forward correlation of ``gy`` padded by the kernel span, with the
kernel flipped (:func:`~convprop.kernels.numpy._common.fold_is_cheaper` decides).
The weight gradient is a convolution of the input with ``gy`` as the kernel (same
window view, contracted over batch and positions).  When the whole batch's columns
fit ``CACHE_BYTES`` the forward keeps them (:class:`GemmSaved`) for the weight
gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._windows import fold_add, windows
from .. import _pool
from ..spec import ConvSpec, Saved
from . import _common


@dataclass
class GemmSaved(Saved):
    """What the forward leaves for :meth:`Gemm.weight_grad` (released there)."""

    #: the zero-padded input (the weight gradient's window view), or None once used
    xp: np.ndarray | None
    #: im2col columns of each batch chunk, when the whole batch's fit CACHE_BYTES
    cols: list[np.ndarray] | None


def _correlate(xp: np.ndarray, w: np.ndarray, stride: tuple[int, ...],
               dilation: tuple[int, ...], groups: int, b: np.ndarray | None,
               kept: list[np.ndarray] | None) -> np.ndarray:
    """Cross-correlation of padded ``xp`` (N, C, *S) with ``w`` (O, C/G, *K) (+ ``b``)
    -> new (N, O, *out); appends each chunk's columns to ``kept`` when given."""
    n, c = xp.shape[:2]
    o, kernel = w.shape[0], w.shape[2:]
    view = windows(xp, kernel, stride, dilation)
    out = view.shape[2 + len(kernel) :]
    L, T = math.prod(out), math.prod(kernel)
    cg, og = c // groups, o // groups
    dtype = xp.dtype
    w2 = w.reshape(groups, og, cg * T)
    y = np.empty((n, o) + tuple(out), dtype=dtype)
    bias = None if b is None else b.reshape(groups, og, 1)
    for sl in _common.batch_chunks(n, c * T * L * dtype.itemsize):
        nb = sl.stop - sl.start
        cols = _common.im2col(view[sl], groups, keep=kept is not None)
        if kept is not None:
            kept.append(cols)
        if nb == 1:
            yc = y[sl].reshape(groups, og, L)
            np.matmul(w2, cols, out=yc)
            if bias is not None:
                yc += bias
            continue
        yc = np.matmul(w2, cols, out=_pool.scratch("gemm_y", (groups, og, nb * L), dtype))
        yc = yc.reshape(groups, og, nb, L).transpose(2, 0, 1, 3)
        _common.store(y[sl].reshape(nb, groups, og, L), yc, bias)
    return y


class Gemm:
    """im2col + GEMM (see the module docstring)."""

    name = "gemm"

    def supports(self, spec: ConvSpec) -> bool:
        """Every convolution."""
        return True

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, GemmSaved | None]:
        xp = _common.padded(x, spec.pads, slot=None if save else "gemm_xp")
        keep = save and spec.n * spec.c * spec.taps * spec.positions * spec.dtype.itemsize \
            <= _common.CACHE_BYTES
        kept: list[np.ndarray] | None = [] if keep else None
        y = _correlate(xp, w, spec.stride, spec.dilation, spec.groups, b, kept)
        return y, (GemmSaved(None if keep else xp, kept) if save else None)

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        if all(s == 1 for s in spec.stride) and spec.groups == 1 and not _common.fold_is_cheaper(
                spec.cg, spec.o, spec.out, spec.kernel, spec.dilation):
            return _common.unpadded(self._input_grad_as_forward(spec, gy, w), spec)
        n, o = gy.shape[:2]
        kernel, nd, groups = spec.kernel, spec.nd, spec.groups
        c, cg, og = spec.c, spec.cg, spec.og
        L, T = spec.positions, spec.taps
        dtype = spec.dtype
        wt = w.reshape(groups, og, cg * T).transpose(0, 2, 1)
        dx = np.zeros((n, c) + spec.padded, dtype=dtype)
        back = (nd + 1,) + (0,) + tuple(range(1, nd + 1)) + tuple(range(nd + 2, 2 * nd + 2))
        for sl in _common.batch_chunks(n, c * T * L * dtype.itemsize):
            nb = sl.stop - sl.start
            cols = np.matmul(wt, _common.to_group_major(gy[sl], groups),
                             out=_pool.scratch("cols", (groups, cg * T, nb * L), dtype))
            cols = cols.reshape((c,) + kernel + (nb,) + spec.out).transpose(back)
            dst = dx[sl]

            def fold(part: slice, dst: np.ndarray = dst, cols: np.ndarray = cols) -> None:
                fold_add(dst[:, part], cols[:, part], kernel, spec.stride, spec.dilation)

            _pool.parallel(fold, c, cols.nbytes, copy=True)
        return _common.unpadded(dx, spec)

    @staticmethod
    def _input_grad_as_forward(spec: ConvSpec, gy: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Stride 1, one group: ``dxp`` is the forward correlation of ``gy``, zero-padded by
        the dilated kernel span minus one on each side, with the kernel flipped and its
        channel axes swapped (im2col copies instead of col2im's scattered adds)."""
        span = tuple(d * (k - 1) for d, k in zip(spec.dilation, spec.kernel))
        # positions past out + span (a transposed convolution's output_padding) read only zeros
        gp = np.zeros(gy.shape[:2] + tuple(p + e for p, e in zip(spec.padded, span)), gy.dtype)
        gp[(slice(None), slice(None)) + tuple(slice(e, e + s) for e, s in zip(span, spec.out))] = gy
        flipped = _common.flipped_transposed(w, 1)
        return _correlate(gp, flipped, (1,) * spec.nd, spec.dilation, 1, None, None)

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Uses (and releases) the forward's columns or padded input when it kept them."""
        kept = xp = None
        if isinstance(saved, GemmSaved):
            kept, xp, saved.cols, saved.xp = saved.cols, saved.xp, None, None
        n, groups = spec.n, spec.groups
        L, T = spec.positions, spec.taps
        dtype = spec.dtype
        chunks = list(_common.batch_chunks(n, spec.c * T * L * dtype.itemsize))
        if kept is not None and len(kept) != len(chunks):
            kept = None
        view = None
        dw = None
        for i, sl in enumerate(chunks):
            if kept is not None:
                cols = kept[i]
            else:
                if view is None:
                    if xp is None:
                        xp = _common.padded(x, spec.pads, slot="gemm_xp")
                    view = windows(xp, spec.kernel, spec.stride, spec.dilation, spec.out)
                cols = _common.im2col(view[sl], groups)
            part = _common.weight_product(_common.to_group_major(gy[sl], groups), cols)
            if dw is None:
                dw = part
            else:
                dw += part
        if dw is None:
            dw = np.zeros((groups, spec.og, spec.cg * T), dtype=dtype)
        return dw.reshape(spec.w_shape), _common.bias_grad(spec, gy)


GEMM = Gemm()

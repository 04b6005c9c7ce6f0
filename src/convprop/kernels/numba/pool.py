"""Max and average pooling, compiled: one pass per plane, padding and divisors fused.

Pooling treats every ``(sample, channel)`` plane alone, so the ``P = N*C`` planes
are split into contiguous runs, one per Numba thread (:func:`_common.threads`),
and no two threads ever write the same cell.  In the 3-D canonical form of
:mod:`._common` (1-D and 2-D pooling have leading axes of size 1), output
``o = (od, oh, ow)`` looks at the window cells

    i = o*s - pad_before + k*d        for every tap k = (kd, kh, kw) < kernel,

and only at the cells inside the input: per axis the taps of ``[lo, hi)`` from
:func:`~._common.span` (padded cells are never read, so nothing is padded in
memory, and ``ceil_mode``'s last window simply has fewer taps).

* Max pooling scans the real cells in tap order and keeps a cell when it is
  larger than the best so far or NaN (PyTorch's CPU rule): ties go to the first
  maximum, NaN windows to their last NaN.  It returns each winner's flat index
  within the unpadded input plane, as ``return_indices`` does, and the backward
  adds every output gradient at that index.
* Average pooling divides each window's sum by ``div_d[od] * div_h[oh] *
  div_w[ow]``: the window is a box, so the count of the cells that count is a
  product of one count per axis (:func:`axis_counts`); the backward adds
  ``g / divisor`` to each real cell of the window.

:func:`compiled_pool` is the rule that sends a pooling call here; the NumPy
implementation in :mod:`convprop.functional.pool` stays the reference and runs
everything else.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np

from ..._windows import Pairs, pad_constant, windows
from . import _common
from ._common import DTYPES, MAX_DIMS, as3d, span

prange = range  # numba.prange once compiled (see _common.compile_kernels)
_compiled = False

#: Input elements from which average pooling runs compiled on the numba backend, and
#: :data:`MAX_POOL_MIN_ELEMENTS` the same for max pooling.  Measured per call (forward +
#: backward through autograd, float32, CPU time on one thread, compiled / NumPy path;
#: ``python benchmarks/train_step.py --pool-sizes --threads 1``, its "CPU ratio"):
#: average pooling 3x3 / stride 1 / padding 1: 0.69 (32k elements), 0.59 (102k), 0.36
#: (51k), 1.01 (627k), 1.10 (2M); max pooling 2x2: 1.27 (32k), 1.58 (102k), 1.20 (51k),
#: 2.28 (627k), 1.28 (2M) -- NumPy's max pooling is a few vectorised ``np.maximum``
#: passes, while the compiled scan also tracks each window's winner (the index update
#: alone made a 2x2 scan 9x slower).  On two threads the compiled kernels ran about 1.6x
#: faster (3x3 average pooling of 2M elements: 19.8 ms on one thread, 12.2 ms on two),
#: the NumPy path not at all, so max pooling runs compiled only from 1M elements.  Below
#: these sizes -- ``convprop demo``, the explainers' examples, single images -- nothing
#: loads Numba.
MIN_ELEMENTS = 1 << 15
#: See :data:`MIN_ELEMENTS`.
MAX_POOL_MIN_ELEMENTS = 1 << 20


# --- compiled kernels (plain Python until _kernels() compiles them) -------------------------


def _spans(out, stride, dilation, before, size, kernel):
    """``(lo, hi)``: per output position ``o`` of one axis, the taps ``[lo[o], hi[o])`` whose
    cells ``o*stride - before + k*dilation`` lie inside the input (:func:`span`, computed
    once per call rather than once per window: it divides)."""
    lo = np.empty(out, dtype=np.int64)
    hi = np.empty(out, dtype=np.int64)
    for o in range(out):
        lo[o], hi[o] = span(o * stride - before, dilation, size, kernel)
    return lo, hi


def _rows(kernel, dilation, before, stride, size, out):
    """``(lo, hi)``: per tap ``k`` of the last axis, the outputs ``[lo[k], hi[k])`` whose
    cell ``o*stride - before + k*dilation`` lies inside the input (the transpose of
    :func:`_spans`: the kernels sweep one tap along a whole output row at a time)."""
    lo = np.empty(kernel, dtype=np.int64)
    hi = np.empty(kernel, dtype=np.int64)
    for k in range(kernel):
        lo[k], hi[k] = span(k * dilation - before, stride, size, out)
    return lo, hi


# The kernels below index flat planes by offsets: an array view taken per plane or row
# inside the threads updates the parent's shared reference count, and the threads then
# contend for it (measured: a 4x4-plane max pooling took 10 ms instead of 0.16 ms).  Max
# pooling scans window by window (its running maximum and index stay in registers; a
# sweep of one tap along a whole output row measured slower); average pooling sweeps one
# tap along a whole output row (``ow``), a long inner loop without branches.


def _max_forward(x4, y4, arg4, kernel, stride, dilation, before, nthreads):
    """``y4[p, o] = max`` of plane ``p``'s window ``o`` and ``arg4[p, o]`` its flat input index."""
    P, D, H, W = x4.shape
    OD, OH, OW = y4.shape[1], y4.shape[2], y4.shape[3]
    KD, KH, KW = kernel
    sd, sh, sw = stride
    dd, dh, dw = dilation
    bd, bh, bw = before
    lo_d, hi_d = _spans(OD, sd, dd, bd, D, KD)
    lo_h, hi_h = _spans(OH, sh, dh, bh, H, KH)
    lo_w, hi_w = _spans(OW, sw, dw, bw, W, KW)
    x1 = x4.reshape(P * D * H * W)
    y1 = y4.reshape(P * OD * OH * OW)
    a1 = arg4.reshape(P * OD * OH * OW)
    for t in prange(nthreads):
        for p in range(t * P // nthreads, (t + 1) * P // nthreads):
            xb = p * D * H * W
            q = p * OD * OH * OW
            for od in range(OD):
                z0 = od * sd - bd
                for oh in range(OH):
                    y0 = oh * sh - bh
                    for ow in range(OW):
                        x0 = ow * sw - bw
                        kw0, kw1 = lo_w[ow], hi_w[ow]
                        at = ((z0 + lo_d[od] * dd) * H + y0 + lo_h[oh] * dh) * W + x0 + kw0 * dw
                        best = x1[xb + at]
                        for kd in range(lo_d[od], hi_d[od]):
                            for kh in range(lo_h[oh], hi_h[oh]):
                                row = ((z0 + kd * dd) * H + y0 + kh * dh) * W + x0
                                for kw in range(kw0, kw1):
                                    i = row + kw * dw
                                    v = x1[xb + i]
                                    if v > best or v != v:  # first maximum; the last NaN
                                        best = v
                                        at = i
                        y1[q] = best
                        a1[q] = at
                        q += 1


def _max_backward(g2, arg2, dx2, nthreads):
    """``dx2[p, arg2[p, l]] += g2[p, l]`` (``dx2`` arrives zeroed)."""
    P, L = g2.shape
    for t in prange(nthreads):
        for p in range(t * P // nthreads, (t + 1) * P // nthreads):
            for q in range(L):
                dx2[p, arg2[p, q]] += g2[p, q]


def _avg_forward(x4, y4, kernel, stride, before, div_d, div_h, div_w, nthreads):
    """``y4[p, o] = (sum of plane p's window o over real cells) / (div_d * div_h * div_w)[o]``."""
    P, D, H, W = x4.shape
    OD, OH, OW = y4.shape[1], y4.shape[2], y4.shape[3]
    KD, KH, KW = kernel
    sd, sh, sw = stride
    bd, bh, bw = before
    lo_d, hi_d = _spans(OD, sd, 1, bd, D, KD)
    lo_h, hi_h = _spans(OH, sh, 1, bh, H, KH)
    first_w, last_w = _rows(KW, 1, bw, sw, W, OW)
    x1 = x4.reshape(P * D * H * W)
    y1 = y4.reshape(P * OD * OH * OW)
    for t in prange(nthreads):
        acc = np.empty(OW, dtype=np.float64)
        for p in range(t * P // nthreads, (t + 1) * P // nthreads):
            xb = p * D * H * W
            for od in range(OD):
                z0 = od * sd - bd
                for oh in range(OH):
                    y0 = oh * sh - bh
                    for ow in range(OW):
                        acc[ow] = 0.0
                    for kd in range(lo_d[od], hi_d[od]):
                        for kh in range(lo_h[oh], hi_h[oh]):
                            row = xb + ((z0 + kd) * H + y0 + kh) * W
                            for kw in range(KW):
                                off = row + kw - bw
                                for ow in range(first_w[kw], last_w[kw]):
                                    acc[ow] += x1[off + ow * sw]
                    q0 = ((p * OD + od) * OH + oh) * OW
                    div = div_d[od] * div_h[oh]
                    for ow in range(OW):
                        y1[q0 + ow] = acc[ow] / (div * div_w[ow])


def _avg_backward(g4, dx4, kernel, stride, before, div_d, div_h, div_w, nthreads):
    """``dx4[p, i] += g4[p, o] / divisor[o]`` for every real cell ``i`` of window ``o``
    (``dx4`` arrives zeroed): the adjoint of :func:`_avg_forward`."""
    P, D, H, W = dx4.shape
    OD, OH, OW = g4.shape[1], g4.shape[2], g4.shape[3]
    KD, KH, KW = kernel
    sd, sh, sw = stride
    bd, bh, bw = before
    lo_d, hi_d = _spans(OD, sd, 1, bd, D, KD)
    lo_h, hi_h = _spans(OH, sh, 1, bh, H, KH)
    first_w, last_w = _rows(KW, 1, bw, sw, W, OW)
    g1 = g4.reshape(P * OD * OH * OW)
    dx1 = dx4.reshape(P * D * H * W)
    for t in prange(nthreads):
        share = np.empty(OW, dtype=g4.dtype)
        for p in range(t * P // nthreads, (t + 1) * P // nthreads):
            xb = p * D * H * W
            for od in range(OD):
                z0 = od * sd - bd
                for oh in range(OH):
                    y0 = oh * sh - bh
                    q0 = ((p * OD + od) * OH + oh) * OW
                    div = div_d[od] * div_h[oh]
                    for ow in range(OW):
                        share[ow] = g1[q0 + ow] / (div * div_w[ow])
                    for kd in range(lo_d[od], hi_d[od]):
                        for kh in range(lo_h[oh], hi_h[oh]):
                            row = xb + ((z0 + kd) * H + y0 + kh) * W
                            for kw in range(KW):
                                off = row + kw - bw
                                for ow in range(first_w[kw], last_w[kw]):
                                    dx1[off + ow * sw] += share[ow]


_SERIAL = ("span", "_spans", "_rows")
_PARALLEL = ("_max_forward", "_max_backward", "_avg_forward", "_avg_backward")


def _kernels() -> None:
    _common.compile_kernels(sys.modules[__name__], _SERIAL, _PARALLEL)


# --- the rule and the calls -------------------------------------------------------------------


def _three(values: Sequence[int], fill: int) -> tuple[int, int, int]:
    return tuple([fill] * (MAX_DIMS - len(values)) + [int(v) for v in values])  # type: ignore


def _reaches_input(size: int, kernel: int, stride: int, dilation: int, before: int,
                   out: int) -> bool:
    """Whether every window along one axis holds at least one real cell (with a large
    dilation a window can fall between the input and the padding; the NumPy path keeps
    those, whose result has no winning cell)."""
    for o in range(out):
        lo, hi = span(o * stride - before, dilation, size, kernel)
        if lo >= hi:
            return False
    return True


def compiled_pool(kind: str, x: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                  dilation: Sequence[int], pads: Pairs, out: Sequence[int]) -> bool:
    """Whether a ``kind`` (``"max"`` or ``"avg"``) pooling of ``x (N, C, *spatial)`` runs
    compiled: the calling thread's backend is ``numba`` (and Numba imports), the data type
    is float32 or float64, 1-3 spatial axes, at least :data:`MAX_POOL_MIN_ELEMENTS` /
    :data:`MIN_ELEMENTS` input elements, and every window reaches the input.  Never
    imports Numba for a call that stays on NumPy."""
    least = MAX_POOL_MIN_ELEMENTS if kind == "max" else MIN_ELEMENTS
    if x.dtype not in DTYPES or not 1 <= x.ndim - 2 <= MAX_DIMS or x.size < least:
        return False
    from ..backend import get_backend

    if get_backend().name != "numba":
        return False
    return all(_reaches_input(s, k, st, d, pb, o) for s, k, st, d, (pb, _), o
               in zip(x.shape[2:], kernel, stride, dilation, pads, out))


def _planes(a: np.ndarray) -> np.ndarray:
    """``a (N, C, *spatial)`` as ``(N*C, D, H, W)`` (C-contiguous; a copy only where needed)."""
    a5 = as3d(a, 2, a.dtype)
    return a5.reshape((-1,) + a5.shape[2:])


def max_pool(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
             dilation: Sequence[int], pads: Pairs, out: Sequence[int]
             ) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling of ``x (N, C, *spatial)``: ``(y (N, C, *out), index (N, C, *out) int64)``,
    ``index`` the winner's flat position within the unpadded input plane (PyTorch's
    ``return_indices``).  ``pads`` are ``(before, after)`` pairs; only ``before`` is read."""
    _kernels()
    y = np.empty(x.shape[:2] + tuple(out), dtype=x.dtype)
    arg = np.empty(y.shape, dtype=np.int64)
    if y.size:
        _max_forward(_planes(x), _planes(y), _planes(arg), _three(kernel, 1), _three(stride, 1),
                     _three(dilation, 1), _three([p[0] for p in pads], 0), _common.threads())
    return y, arg


def max_pool_grad(g: np.ndarray, index: np.ndarray, x_shape: Sequence[int]) -> np.ndarray:
    """``dx (x_shape)``: every output gradient of ``g (N, C, *out)`` added at its winner
    ``index`` (as :func:`max_pool` returns it)."""
    _kernels()
    planes = math.prod(x_shape[:2])
    dx = np.zeros((planes, math.prod(x_shape[2:])), dtype=g.dtype)
    if g.size:
        g2 = np.ascontiguousarray(g).reshape(planes, -1)
        _max_backward(g2, index.reshape(planes, -1), dx, _common.threads())
    return dx.reshape(tuple(x_shape))


def axis_counts(size: int, kernel: int, stride: int, pads: tuple[int, int], out: int,
                count_include_pad: bool) -> np.ndarray:
    """How many cells of each window along one axis count for average pooling: the real
    cells, plus the padding proper (not ``ceil_mode``'s extra cells) when
    ``count_include_pad``; ``(out,)`` float64, by sliding the window over a mask of ones."""
    before, after = pads
    if count_include_pad:
        mask = pad_constant(np.ones(size + 2 * before), ((0, after - before),))
    else:
        mask = pad_constant(np.ones(size), ((before, after),))
    return windows(mask[None, None], (kernel,), (stride,), (1,), (out,))[0, 0].sum(axis=0)


def divisors(x_shape: Sequence[int], kernel: Sequence[int], stride: Sequence[int], pads: Pairs,
             out: Sequence[int], count_include_pad: bool, divisor_override: int | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average pooling's divisor of window ``(od, oh, ow)`` as the product
    ``div_d[od] * div_h[oh] * div_w[ow]`` (three-axis form; see :func:`axis_counts`)."""
    if divisor_override is not None:
        axes = [np.ones(o) for o in out]
        axes[0] = np.full(out[0], float(divisor_override))
    else:
        axes = [axis_counts(s, k, st, p, o, count_include_pad)
                for s, k, st, p, o in zip(x_shape[2:], kernel, stride, pads, out)]
    ones = [np.ones(1)] * (MAX_DIMS - len(axes))
    return tuple(ones + axes)  # type: ignore[return-value]


def avg_pool(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], pads: Pairs,
             out: Sequence[int], divs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Average pooling of ``x (N, C, *spatial)``: ``y (N, C, *out)``, each window's sum over
    its real cells divided by ``divs`` (:func:`divisors`)."""
    _kernels()
    y = np.empty(x.shape[:2] + tuple(out), dtype=x.dtype)
    if y.size:
        _avg_forward(_planes(x), _planes(y), _three(kernel, 1), _three(stride, 1),
                     _three([p[0] for p in pads], 0), *divs, _common.threads())
    return y


def avg_pool_grad(g: np.ndarray, x_shape: Sequence[int], kernel: Sequence[int],
                  stride: Sequence[int], pads: Pairs,
                  divs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """``dx (x_shape)`` of :func:`avg_pool` for the output gradient ``g (N, C, *out)``."""
    _kernels()
    dx = np.zeros(tuple(x_shape), dtype=g.dtype)
    if g.size and dx.size:
        _avg_backward(_planes(g), _planes(dx), _three(kernel, 1), _three(stride, 1),
                      _three([p[0] for p in pads], 0), *divs, _common.threads())
    return dx

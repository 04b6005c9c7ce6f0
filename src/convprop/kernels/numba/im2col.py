"""Fused im2col + GEMM, compiled: every convolution shape, one thread pool.

With ``G`` groups, ``Cg = C/G`` input and ``Og = O/G`` output channels per group,
``T`` taps and ``L`` output positions per sample, the columns of sample ``n`` and
group ``g`` are ``cols[ci*T + t, l] = xp[n, g*Cg + ci, l*s + t*d]`` (``xp`` the
zero-padded input), and the three passes are three matrix products::

    y[n, g]    = W[g] (Og, Cg*T) @ cols (Cg*T, L)            + b[g]
    dcols      = W[g]^T (Cg*T, Og) @ gy[n, g] (Og, L),        then col2im -> dx[n, g]
    dW[g]     += gy[n, g] (Og, L) @ cols^T (L, Cg*T),          db[g] += sum_l gy[n, g]

Work is split over Numba's threads in items of (sample, group, chunk of output
rows) -- or, for small images, (block of samples side by side, group), see
:func:`layout` -- so each thread packs its columns into its own buffer of about
:data:`COLS_BYTES` (it stays in cache for the product; at least
:data:`MIN_COLUMNS` columns so the product keeps its efficiency), reading the
unpadded input and writing zeros where a tap falls into the padding, then calls a
single-threaded BLAS product (``np.dot`` inside the kernel), and copies the result
out with the bias added.  The input gradient's items are whole (samples, group)
pairs, because col2im of neighbouring row chunks adds into the same input rows;
the weight gradient accumulates ``dW`` and ``db`` per thread and sums them once at
the end.  Nothing is kept between passes: packing is cheap next to the products.
"""

from __future__ import annotations

import sys

import numpy as np

from ..spec import ConvSpec, Saved
from . import _common
from ._common import as3d, c_array, geometry, span, supported_dtype

prange = range  # numba.prange once compiled (see _common.compile_kernels)
_compiled = False

#: Target size of one thread's packed columns (bytes): about half of a 1 MiB L2 cache.
COLS_BYTES = 512 * 2**10
#: But at least this many columns per product (short products waste the BLAS kernel).
MIN_COLUMNS = 256


# --- compiled kernels (plain Python until _kernels() compiles them) -------------------------


def _pack(xn, c0, cols, col0, r0, r1, kernel, stride, dilation, before, out):
    """``cols[ci*T + t, col0 + (r - r0)*OW + ow] = xp[c0 + ci, (od, oh, ow)*s + t*d]`` for
    output rows ``r = od*OH + oh`` in ``[r0, r1)``, reading the unpadded ``xn (C, D, H, W)``."""
    KD, KH, KW = kernel
    sd, sh, sw = stride
    dd, dh, dw = dilation
    bd, bh, bw = before
    OH, OW = out[1], out[2]
    D, H, W = xn.shape[1], xn.shape[2], xn.shape[3]
    T = KD * KH * KW
    for ci in range(cols.shape[0] // T):
        xc = xn[c0 + ci]
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    crow = cols[ci * T + (kd * KH + kh) * KW + kw]
                    off = kw * dw - bw
                    lo, hi = span(off, sw, W, OW)
                    od = r0 // OH
                    oh = r0 - od * OH - 1
                    for r in range(r0, r1):
                        oh += 1  # (od, oh) of row r, without a division per row
                        if oh == OH:
                            oh = 0
                            od += 1
                        iz = od * sd + kd * dd - bd
                        iy = oh * sh + kh * dh - bh
                        start = col0 + (r - r0) * OW
                        seg = crow[start:start + OW]
                        if iz < 0 or iz >= D or iy < 0 or iy >= H:
                            for q in range(OW):
                                seg[q] = 0
                            continue
                        for q in range(lo):
                            seg[q] = 0
                        dst = seg[lo:hi]
                        src = xc[iz, iy, lo * sw + off:]
                        if sw == 1:
                            for q in range(hi - lo):
                                dst[q] = src[q]
                        else:
                            for q in range(hi - lo):
                                dst[q] = src[q * sw]
                        for q in range(hi, OW):
                            seg[q] = 0


def _col2im(cols, dxn, c0, col0, r0, r1, kernel, stride, dilation, before, out):
    """The adjoint of :func:`_pack`: ``dxn[c0 + ci, (od, oh, ow)*s + t*d - pad] +=
    cols[ci*T + t, col0 + ...]`` where that position is inside the unpadded input."""
    KD, KH, KW = kernel
    sd, sh, sw = stride
    dd, dh, dw = dilation
    bd, bh, bw = before
    OH, OW = out[1], out[2]
    D, H, W = dxn.shape[1], dxn.shape[2], dxn.shape[3]
    T = KD * KH * KW
    for ci in range(cols.shape[0] // T):
        dc = dxn[c0 + ci]
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    crow = cols[ci * T + (kd * KH + kh) * KW + kw]
                    off = kw * dw - bw
                    lo, hi = span(off, sw, W, OW)
                    od = r0 // OH
                    oh = r0 - od * OH - 1
                    for r in range(r0, r1):
                        oh += 1
                        if oh == OH:
                            oh = 0
                            od += 1
                        iz = od * sd + kd * dd - bd
                        iy = oh * sh + kh * dh - bh
                        if iz < 0 or iz >= D or iy < 0 or iy >= H:
                            continue
                        start = col0 + (r - r0) * OW
                        src = crow[start + lo:start + hi]
                        dst = dc[iz, iy, lo * sw + off:]
                        if sw == 1:
                            for q in range(hi - lo):
                                dst[q] += src[q]
                        else:
                            for q in range(hi - lo):
                                dst[q * sw] += src[q]


def _forward(x5, w3, b, y3, kernel, stride, dilation, before, out, rows, samples, nthreads):
    """``y3[n, g*Og + o, l] = b[g*Og + o] + (w3[g] @ cols(n, g))[o, l]``, one item (block of
    samples, group, chunk of rows) at a time."""
    N = x5.shape[0]
    G, Og, K = w3.shape
    T = kernel[0] * kernel[1] * kernel[2]
    OW = out[2]
    R = out[0] * out[1]
    chunks = (R + rows - 1) // rows
    items = (N + samples - 1) // samples * G * chunks
    for t in prange(nthreads):
        colbuf = np.empty(K * samples * rows * OW, dtype=x5.dtype)
        ybuf = np.empty(Og * samples * rows * OW, dtype=x5.dtype)
        for i in range(t * items // nthreads, (t + 1) * items // nthreads):
            n0 = i // (G * chunks) * samples
            n1 = min(N, n0 + samples)
            g = (i // chunks) % G
            r0 = (i % chunks) * rows
            r1 = min(R, r0 + rows)
            Lc = (r1 - r0) * OW
            width = (n1 - n0) * Lc
            cols = colbuf[:K * width].reshape((K, width))
            for n in range(n0, n1):
                _pack(x5[n], g * (K // T), cols, (n - n0) * Lc, r0, r1, kernel, stride, dilation,
                      before, out)
            yc = ybuf[:Og * width].reshape((Og, width))
            np.dot(w3[g], cols, yc)
            for n in range(n0, n1):
                for o in range(Og):
                    bias = b[g * Og + o]
                    dst = y3[n, g * Og + o, r0 * OW:r1 * OW]
                    src = yc[o, (n - n0) * Lc:(n - n0 + 1) * Lc]
                    for q in range(Lc):
                        dst[q] = src[q] + bias


def _input_grad(gy3, wt3, dx5, kernel, stride, dilation, before, out, rows, samples, nthreads):
    """``dx5[n]`` (arrives zeroed) ``+=`` col2im of ``wt3[g] @ gy3[n, g]``, one item (block of
    samples, group) at a time: col2im of neighbouring row chunks adds into the same rows."""
    N = gy3.shape[0]
    G, K, Og = wt3.shape
    T = kernel[0] * kernel[1] * kernel[2]
    OW = out[2]
    R = out[0] * out[1]
    items = (N + samples - 1) // samples * G
    for t in prange(nthreads):
        gbuf = np.empty(Og * samples * rows * OW, dtype=gy3.dtype)
        colbuf = np.empty(K * samples * rows * OW, dtype=gy3.dtype)
        for i in range(t * items // nthreads, (t + 1) * items // nthreads):
            n0 = i // G * samples
            n1 = min(N, n0 + samples)
            g = i % G
            for r0 in range(0, R, rows):
                r1 = min(R, r0 + rows)
                Lc = (r1 - r0) * OW
                width = (n1 - n0) * Lc
                gc = gbuf[:Og * width].reshape((Og, width))
                for n in range(n0, n1):
                    for o in range(Og):
                        src = gy3[n, g * Og + o, r0 * OW:r1 * OW]
                        dst = gc[o, (n - n0) * Lc:(n - n0 + 1) * Lc]
                        for q in range(Lc):
                            dst[q] = src[q]
                cols = colbuf[:K * width].reshape((K, width))
                np.dot(wt3[g], gc, cols)
                for n in range(n0, n1):
                    _col2im(cols, dx5[n], g * (K // T), (n - n0) * Lc, r0, r1, kernel, stride,
                            dilation, before, out)


def _weight_grad(x5, gy3, dwt, dbt, kernel, stride, dilation, before, out, rows, samples,
                 nthreads):
    """``dwt[thread, g] += gy3[n, g] @ cols(n, g)^T`` and ``dbt[thread, o] += sum gy3[n, o]``
    (both arrive zeroed; the caller sums over threads)."""
    N = x5.shape[0]
    G, Og, K = dwt.shape[1], dwt.shape[2], dwt.shape[3]
    T = kernel[0] * kernel[1] * kernel[2]
    OW = out[2]
    R = out[0] * out[1]
    chunks = (R + rows - 1) // rows
    items = (N + samples - 1) // samples * G * chunks
    for t in prange(nthreads):
        colbuf = np.empty(K * samples * rows * OW, dtype=x5.dtype)
        gbuf = np.empty(Og * samples * rows * OW, dtype=x5.dtype)
        prod = np.empty((Og, K), dtype=x5.dtype)
        for i in range(t * items // nthreads, (t + 1) * items // nthreads):
            n0 = i // (G * chunks) * samples
            n1 = min(N, n0 + samples)
            g = (i // chunks) % G
            r0 = (i % chunks) * rows
            r1 = min(R, r0 + rows)
            Lc = (r1 - r0) * OW
            width = (n1 - n0) * Lc
            gc = gbuf[:Og * width].reshape((Og, width))
            cols = colbuf[:K * width].reshape((K, width))
            for n in range(n0, n1):
                for o in range(Og):
                    src = gy3[n, g * Og + o, r0 * OW:r1 * OW]
                    dst = gc[o, (n - n0) * Lc:(n - n0 + 1) * Lc]
                    total = dbt[t, g * Og + o]
                    for q in range(Lc):
                        dst[q] = src[q]
                        total += src[q]
                    dbt[t, g * Og + o] = total
                _pack(x5[n], g * (K // T), cols, (n - n0) * Lc, r0, r1, kernel, stride, dilation,
                      before, out)
            np.dot(gc, cols.T, prod)
            acc = dwt[t, g]
            for o in range(Og):
                arow = acc[o]
                prow = prod[o]
                for k in range(K):
                    arow[k] += prow[k]


_SERIAL = ("span", "_pack", "_col2im")
_PARALLEL = ("_forward", "_input_grad", "_weight_grad")


def _kernels() -> None:
    _common.compile_kernels(sys.modules[__name__], _SERIAL, _PARALLEL)


# --- the algorithm ----------------------------------------------------------------------------


def layout(spec: ConvSpec, nthreads: int) -> tuple[int, int]:
    """``(rows, samples)`` of one work item: output rows ``(od, oh)`` of one sample, or whole
    samples side by side when a sample has fewer than :data:`MIN_COLUMNS` positions.

    Rows: about :data:`COLS_BYTES` of columns, at least :data:`MIN_COLUMNS` columns, at most
    the whole sample.  Samples (only when one sample is a single item): enough for
    :data:`MIN_COLUMNS` columns, evened out so that every thread gets the same number of
    items.
    """
    g = geometry(spec)
    whole = g.out[0] * g.out[1]
    row_bytes = spec.cg * g.taps * g.out[2] * spec.dtype.itemsize
    rows = min(max(COLS_BYTES // max(1, row_bytes), -(-MIN_COLUMNS // g.out[2]), 1), whole)
    if rows < whole or spec.n == 0:
        return rows, 1
    most = max(1, -(-MIN_COLUMNS // g.positions))
    per_thread = -(-spec.n // (nthreads * most))
    return rows, max(1, -(-spec.n // (nthreads * per_thread)))


class Im2colGemm:
    """Compiled fused im2col + GEMM; see the module docstring.  Keeps no state between
    passes (its backward re-packs the input)."""

    name = "numba_im2col"

    def supports(self, spec: ConvSpec) -> bool:
        """Every float32/float64 convolution with 1-3 spatial axes."""
        return supported_dtype(spec)

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, Saved | None]:
        """``y (N, O, *out)`` from unpadded ``x (N, C, *size)``, ``w (O, C/G, *kernel)``,
        ``b (O,)`` or None."""
        _kernels()
        g = geometry(spec)
        nthreads = _common.threads()
        x5 = as3d(x, 2, spec.dtype)
        w3 = c_array(w, spec.dtype).reshape(spec.groups, spec.og, spec.cg * spec.taps)
        bias = (np.zeros(spec.o, spec.dtype) if b is None
                else c_array(b, spec.dtype))
        y = np.empty(spec.y_shape, dtype=spec.dtype)
        if y.size:
            with _common.one_blas_thread():
                _forward(x5, w3, bias, y.reshape(spec.n, spec.o, spec.positions), g.kernel, g.stride,
                         g.dilation, g.before, g.out, *layout(spec, nthreads), nthreads)
        return y, None

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        """``dx (N, C, *size)`` from ``gy (N, O, *out)`` and ``w (O, C/G, *kernel)``."""
        _kernels()
        g = geometry(spec)
        nthreads = _common.threads()
        gy3 = c_array(gy, spec.dtype).reshape(spec.n, spec.o, spec.positions)
        wt3 = c_array(np.asarray(w).reshape(spec.groups, spec.og, spec.cg * spec.taps)
                      .transpose(0, 2, 1), spec.dtype)
        dx5 = np.zeros((spec.n, spec.c) + g.size, dtype=spec.dtype)
        if dx5.size and gy3.size:
            with _common.one_blas_thread():
                _input_grad(gy3, wt3, dx5, g.kernel, g.stride, g.dilation, g.before, g.out,
                            *layout(spec, nthreads), nthreads)
        return dx5.reshape(spec.x_shape)

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(dw (O, C/G, *kernel), db (O,) or None)`` from ``x (N, C, *size)`` and
        ``gy (N, O, *out)``."""
        _kernels()
        g = geometry(spec)
        nthreads = _common.threads()
        x5 = as3d(x, 2, spec.dtype)
        gy3 = c_array(gy, spec.dtype).reshape(spec.n, spec.o, spec.positions)
        dwt = np.zeros((nthreads, spec.groups, spec.og, spec.cg * g.taps), dtype=spec.dtype)
        dbt = np.zeros((nthreads, spec.o), dtype=spec.dtype)
        if gy3.size and x5.size:
            with _common.one_blas_thread():
                _weight_grad(x5, gy3, dwt, dbt, g.kernel, g.stride, g.dilation, g.before,
                             g.out, *layout(spec, nthreads), nthreads)
        dw = dwt.sum(axis=0).reshape(spec.w_shape)
        return dw, (dbt.sum(axis=0) if spec.bias else None)

"""Depthwise convolution (``groups == C == O``), compiled: one plane at a time, padding fused.

Every output plane ``y[n, c]`` depends on one input plane and ``T`` weights.  Each of
Numba's threads takes a contiguous run of the ``N*C`` planes; for each it copies the
plane into the interior of its own zero-bordered buffer ``P`` (the padding costs
nothing after the buffer is first zeroed) and computes, with ``(kd, kh, kw)`` the taps::

    y[n, c, od, oh, ow] = b[c] + sum_{kd,kh,kw} w[c, kd, kh, kw]
                                     * P[od*sd + kd*dd, oh*sh + kh*dh, ow*sw + kw*dw]

At stride 1 it works on *wide rows*: with ``P`` flattened, output position ``m =
(od*Hp + oh)*Wp + ow`` reads ``P[m + off_t]`` for tap offset ``off_t = (kd*dd*Hp +
kh*dh)*Wp + kw*dw``, so each tap is one long contiguous multiply-add over the whole
plane (a 28-wide row alone is too short to keep the vector units busy); the ``Wp -
OW`` junk positions at the end of each row are dropped when the plane is copied out,
with the bias added.  A 3x3 kernel is unrolled: the nine weights stay in registers
and the plane is read once.  Other strides loop over output rows directly.

The input gradient is the same stride-1 correlation, of ``gy`` with the flipped
kernel: per axis, ``dx[i] = sum_t w[K-1-t] * Z[i + t*d]`` where ``Z`` holds
``gy[p]`` at ``j = p*s + d*(K-1) - pad_before`` (zeros between and around; positions
outside ``Z`` are cropped).  The weight gradient is one dot product per tap,
``dw[c, t] = sum_{n, m} G[m] * P[m + off_t]`` with ``G`` the output gradient in the same
wide layout (zeros at the junk positions); its threads split the channels, so every
thread owns its ``dw[c]`` and ``db[c]``.
"""

from __future__ import annotations

import sys

import numpy as np

from ..spec import ConvSpec, Saved
from . import _common
from ._common import as3d, c_array, crop, geometry, span, supported_dtype

prange = range  # numba.prange once compiled (see _common.compile_kernels)
_compiled = False


# --- compiled kernels (plain Python until _kernels() compiles them) -------------------------


def _fill_interior(x3, buf3, bd, bh, bw):
    """``buf3[bd + z, bh + y, bw : bw + W] = x3[z, y]``: a plane into a zero-bordered buffer."""
    D, H, W = x3.shape
    for z in range(D):
        for y in range(H):
            src = x3[z, y]
            dst = buf3[bd + z, bh + y, bw:bw + W]
            for q in range(W):
                dst[q] = src[q]


def _correlate_wide(src, Hs, Ws, w3, dilation, acc, M):
    """``acc[m] = sum_t w3[t] * src[m + off_t]`` for ``m < M`` (stride 1, wide rows)."""
    KD, KH, KW = w3.shape
    dd, dh, dw = dilation
    if KD == 1 and KH == 3 and KW == 3:
        r1 = dh * Ws
        r2 = 2 * r1
        s0, s1, s2 = src[0:M], src[dw:dw + M], src[2 * dw:2 * dw + M]
        s3, s4, s5 = src[r1:r1 + M], src[r1 + dw:r1 + dw + M], src[r1 + 2 * dw:r1 + 2 * dw + M]
        s6, s7, s8 = src[r2:r2 + M], src[r2 + dw:r2 + dw + M], src[r2 + 2 * dw:r2 + 2 * dw + M]
        w0, w1, w2 = w3[0, 0, 0], w3[0, 0, 1], w3[0, 0, 2]
        w4, w5, w6 = w3[0, 1, 0], w3[0, 1, 1], w3[0, 1, 2]
        w7, w8, w9 = w3[0, 2, 0], w3[0, 2, 1], w3[0, 2, 2]
        for m in range(M):
            acc[m] = (w0 * s0[m] + w1 * s1[m] + w2 * s2[m] + w4 * s3[m] + w5 * s4[m]
                      + w6 * s5[m] + w7 * s6[m] + w8 * s7[m] + w9 * s8[m])
        return
    first = True
    for kd in range(KD):
        for kh in range(KH):
            for kw in range(KW):
                off = (kd * dd * Hs + kh * dh) * Ws + kw * dw
                seg = src[off:off + M]
                wt = w3[kd, kh, kw]
                if first:
                    for m in range(M):
                        acc[m] = wt * seg[m]
                    first = False
                else:
                    for m in range(M):
                        acc[m] += wt * seg[m]


def _correlate_strided(src3, w3, stride, dilation, dst3, bias):
    """``dst3[o] = bias + sum_t w3[t] * src3[o*s + t*d]`` row by row (any stride)."""
    KD, KH, KW = w3.shape
    OD, OH, OW = dst3.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for od in range(OD):
        for oh in range(OH):
            row = dst3[od, oh]
            for q in range(OW):
                row[q] = bias
            for kd in range(KD):
                for kh in range(KH):
                    srow = src3[od * sd + kd * dd, oh * sh + kh * dh]
                    for kw in range(KW):
                        wt = w3[kd, kh, kw]
                        seg = srow[kw * dw:]
                        for q in range(OW):
                            row[q] += wt * seg[q * sw]


def _forward(x5, w4, b, y5, before, padded, stride, dilation, nthreads):
    """``y5[n, c] = b[c] + x5[n, c] (zero-padded) correlated with w4[c]`` over all planes."""
    N, C = x5.shape[0], x5.shape[1]
    Dp, Hp, Wp = padded
    OD, OH, OW = y5.shape[2], y5.shape[3], y5.shape[4]
    planes = N * C
    unit = stride[0] == 1 and stride[1] == 1 and stride[2] == 1
    M = ((OD - 1) * Hp + OH - 1) * Wp + OW
    for t in prange(nthreads):
        buf = np.zeros(Dp * Hp * Wp, dtype=x5.dtype)
        buf3 = buf.reshape((Dp, Hp, Wp))
        acc = np.empty(M if unit else 1, dtype=x5.dtype)
        for i in range(t * planes // nthreads, (t + 1) * planes // nthreads):
            n = i // C
            c = i - n * C
            _fill_interior(x5[n, c], buf3, before[0], before[1], before[2])
            if unit:
                _correlate_wide(buf, Hp, Wp, w4[c], dilation, acc, M)
                crop(acc, Hp, Wp, y5[n, c], b[c])
            else:
                _correlate_strided(buf3, w4[c], stride, dilation, y5[n, c], b[c])


def _input_grad(gy5, w4, dx5, lead, zsize, stride, dilation, nthreads):
    """``dx5[n, c]``: ``gy5[n, c]`` spread into ``Z`` (see the module docstring), correlated
    with the flipped ``w4[c]``."""
    N, C = gy5.shape[0], gy5.shape[1]
    OD, OH, OW = gy5.shape[2], gy5.shape[3], gy5.shape[4]
    D, H, W = dx5.shape[2], dx5.shape[3], dx5.shape[4]
    KD, KH, KW = w4.shape[1], w4.shape[2], w4.shape[3]
    Zd, Zh, Zw = zsize
    sd, sh, sw = stride
    planes = N * C
    M = ((D - 1) * Zh + H - 1) * Zw + W
    d0, d1 = span(lead[0], sd, Zd, OD)
    h0, h1 = span(lead[1], sh, Zh, OH)
    w0, w1 = span(lead[2], sw, Zw, OW)
    for t in prange(nthreads):
        # the positions written below are the same for every plane: zero the rest once
        buf = np.zeros(Zd * Zh * Zw, dtype=gy5.dtype)
        buf3 = buf.reshape((Zd, Zh, Zw))
        flipped = np.empty((KD, KH, KW), dtype=gy5.dtype)
        acc = np.empty(M, dtype=gy5.dtype)
        zero = np.zeros(1, dtype=gy5.dtype)
        for i in range(t * planes // nthreads, (t + 1) * planes // nthreads):
            n = i // C
            c = i - n * C
            wc = w4[c]
            for kd in range(KD):
                for kh in range(KH):
                    for kw in range(KW):
                        flipped[kd, kh, kw] = wc[KD - 1 - kd, KH - 1 - kh, KW - 1 - kw]
            g3 = gy5[n, c]
            for od in range(d0, d1):
                for oh in range(h0, h1):
                    grow = g3[od, oh]
                    zrow = buf3[od * sd + lead[0], oh * sh + lead[1]]
                    for q in range(w0, w1):
                        zrow[q * sw + lead[2]] = grow[q]
            _correlate_wide(buf, Zh, Zw, flipped, dilation, acc, M)
            crop(acc, Zh, Zw, dx5[n, c], zero[0])


def _accumulate_wide(src, g, Hs, Ws, dilation, dw3, M):
    """``dw3[t] += sum_m g[m] * src[m + off_t]`` (stride 1, wide rows)."""
    KD, KH, KW = dw3.shape
    dd, dh, dw = dilation
    gm = g[:M]
    if KD == 1 and KH == 3 and KW == 3:
        r1 = dh * Ws
        r2 = 2 * r1
        s0, s1, s2 = src[0:M], src[dw:dw + M], src[2 * dw:2 * dw + M]
        s3, s4, s5 = src[r1:r1 + M], src[r1 + dw:r1 + dw + M], src[r1 + 2 * dw:r1 + 2 * dw + M]
        s6, s7, s8 = src[r2:r2 + M], src[r2 + dw:r2 + dw + M], src[r2 + 2 * dw:r2 + 2 * dw + M]
        a0, a1, a2 = dw3[0, 0, 0], dw3[0, 0, 1], dw3[0, 0, 2]
        a3, a4, a5 = dw3[0, 1, 0], dw3[0, 1, 1], dw3[0, 1, 2]
        a6, a7, a8 = dw3[0, 2, 0], dw3[0, 2, 1], dw3[0, 2, 2]
        for m in range(M):
            v = gm[m]
            a0 += v * s0[m]
            a1 += v * s1[m]
            a2 += v * s2[m]
            a3 += v * s3[m]
            a4 += v * s4[m]
            a5 += v * s5[m]
            a6 += v * s6[m]
            a7 += v * s7[m]
            a8 += v * s8[m]
        dw3[0, 0, 0], dw3[0, 0, 1], dw3[0, 0, 2] = a0, a1, a2
        dw3[0, 1, 0], dw3[0, 1, 1], dw3[0, 1, 2] = a3, a4, a5
        dw3[0, 2, 0], dw3[0, 2, 1], dw3[0, 2, 2] = a6, a7, a8
        return
    for kd in range(KD):
        for kh in range(KH):
            for kw in range(KW):
                off = (kd * dd * Hs + kh * dh) * Ws + kw * dw
                seg = src[off:off + M]
                acc = dw3[kd, kh, kw]
                for m in range(M):
                    acc += gm[m] * seg[m]
                dw3[kd, kh, kw] = acc


def _accumulate_strided(src3, g3, stride, dilation, dw3):
    """``dw3[t] += sum_o g3[o] * src3[o*s + t*d]`` row by row (any stride)."""
    KD, KH, KW = dw3.shape
    OD, OH, OW = g3.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for od in range(OD):
        for oh in range(OH):
            grow = g3[od, oh]
            for kd in range(KD):
                for kh in range(KH):
                    srow = src3[od * sd + kd * dd, oh * sh + kh * dh]
                    for kw in range(KW):
                        seg = srow[kw * dw:]
                        acc = dw3[kd, kh, kw]
                        for q in range(OW):
                            acc += grow[q] * seg[q * sw]
                        dw3[kd, kh, kw] = acc


def _weight_grad(x5, gy5, dw4, db, before, padded, stride, dilation, nthreads):
    """``dw4[c]``, ``db[c]`` summed over the batch; each thread owns a run of channels.
    ``db`` arrives zeroed."""
    N, C = x5.shape[0], x5.shape[1]
    Dp, Hp, Wp = padded
    OD, OH, OW = gy5.shape[2], gy5.shape[3], gy5.shape[4]
    unit = stride[0] == 1 and stride[1] == 1 and stride[2] == 1
    M = ((OD - 1) * Hp + OH - 1) * Wp + OW
    for t in prange(nthreads):
        buf = np.zeros(Dp * Hp * Wp, dtype=x5.dtype)
        buf3 = buf.reshape((Dp, Hp, Wp))
        # gy in the wide layout: only the output positions are ever written
        wide = np.zeros(Dp * Hp * Wp if unit else 1, dtype=x5.dtype)
        for c in range(t * C // nthreads, (t + 1) * C // nthreads):
            dwc = dw4[c]
            dwc[:] = 0
            total = db[c]  # zero
            for n in range(N):
                _fill_interior(x5[n, c], buf3, before[0], before[1], before[2])
                g3 = gy5[n, c]
                for od in range(OD):
                    for oh in range(OH):
                        grow = g3[od, oh]
                        for q in range(OW):
                            total += grow[q]
                if unit:
                    for od in range(OD):
                        for oh in range(OH):
                            start = (od * Hp + oh) * Wp
                            seg = wide[start:start + OW]
                            grow = g3[od, oh]
                            for q in range(OW):
                                seg[q] = grow[q]
                    _accumulate_wide(buf, wide, Hp, Wp, dilation, dwc, M)
                else:
                    _accumulate_strided(buf3, g3, stride, dilation, dwc)
            db[c] = total


_SERIAL = ("span", "_fill_interior", "_correlate_wide", "crop", "_correlate_strided",
           "_accumulate_wide", "_accumulate_strided")
_PARALLEL = ("_forward", "_input_grad", "_weight_grad")


def _kernels() -> None:
    _common.compile_kernels(sys.modules[__name__], _SERIAL, _PARALLEL)


# --- the algorithm ----------------------------------------------------------------------------


class Depthwise:
    """Compiled depthwise convolution; see the module docstring.  Keeps no state between
    passes (its backward reads only the arrays)."""

    name = "numba_depthwise"

    def supports(self, spec: ConvSpec) -> bool:
        """Depthwise with multiplier 1 (``groups == C == O``), float32/float64, 1-3 axes;
        any kernel, stride, dilation and padding."""
        return spec.depthwise and supported_dtype(spec)

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, Saved | None]:
        """``y (N, C, *out)`` from unpadded ``x (N, C, *size)``, ``w (C, 1, *kernel)``,
        ``b (C,)`` or None."""
        _kernels()
        g = geometry(spec)
        x5 = as3d(x, 2, spec.dtype)
        w4 = as3d(w.reshape((spec.c,) + tuple(spec.kernel)), 1, spec.dtype)
        bias = (np.zeros(spec.c, spec.dtype) if b is None
                else c_array(b, spec.dtype))
        y5 = np.empty((spec.n, spec.c) + g.out, dtype=spec.dtype)
        _forward(x5, w4, bias, y5, g.before, g.padded, g.stride, g.dilation, _common.threads())
        return y5.reshape(spec.y_shape), None

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        """``dx (N, C, *size)`` from ``gy (N, C, *out)`` and ``w (C, 1, *kernel)``."""
        _kernels()
        g = geometry(spec)
        gy5 = as3d(gy, 2, spec.dtype)
        w4 = as3d(w.reshape((spec.c,) + tuple(spec.kernel)), 1, spec.dtype)
        reach = tuple(d * (k - 1) for d, k in zip(g.dilation, g.kernel))
        lead = tuple(r - p for r, p in zip(reach, g.before))
        zsize = tuple(s + r for s, r in zip(g.size, reach))
        dx5 = np.empty((spec.n, spec.c) + g.size, dtype=spec.dtype)
        _input_grad(gy5, w4, dx5, lead, zsize, g.stride, g.dilation, _common.threads())
        return dx5.reshape(spec.x_shape)

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(dw (C, 1, *kernel), db (C,) or None)`` from ``x (N, C, *size)`` and ``gy``."""
        _kernels()
        g = geometry(spec)
        x5 = as3d(x, 2, spec.dtype)
        gy5 = as3d(gy, 2, spec.dtype)
        dw4 = np.empty((spec.c,) + g.kernel, dtype=spec.dtype)
        db = np.zeros(spec.c, dtype=spec.dtype)
        _weight_grad(x5, gy5, dw4, db, g.before, g.padded, g.stride, g.dilation,
                     _common.threads())
        return dw4.reshape(spec.w_shape), (db if spec.bias else None)

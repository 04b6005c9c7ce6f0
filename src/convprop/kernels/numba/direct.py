"""Direct convolution, compiled: no columns, for layers with few input channels per group.

With few channels per group and small images, im2col's cost is packing: thousands of
short row segments (a 10-wide output row is 10 copies and a loop set-up, ~29 ns)
for a product too small to hide them.  Here each of Numba's threads takes a run of
work items -- a block of ``S`` samples, a group, and a block of output channels when
there are fewer items than threads -- and copies the block's ``Cg`` input planes of
the group into its own zero-bordered buffer ``P`` (padding fused; the border is zeroed
once per thread) with the samples side by side *within each row*: ``P[ci, z, y, s,
x]``.  For each output channel ``o`` of the block::

    y[n0 + s, o, od, oh, ow] = b[o] + sum_{ci, kd, kh, kw} w[o, ci, kd, kh, kw]
                                  * P[ci, od*sd + kd*dd, oh*sh + kh*dh, s, ow*sw + kw*dw]

At stride 1 on *wide rows*: with each channel of ``P`` flattened (rows of ``Ws = S*Wp``
values), output ``(od, oh, s, ow)`` is position ``m = (od*Hp + oh)*Ws + s*Wp + ow`` and
reads ``P[ci, m + off]`` with ``off = (kd*dd*Hp + kh*dh)*Ws + kw*dw``, so one kernel row
``(ci, kd, kh)`` is one pass over a contiguous accumulator covering all ``S`` samples
(the ``Wp - OW`` junk positions after each sample's row, and the last ``Hp - OH`` rows,
are dropped when it is copied out with the bias; putting the samples within the rows
rather than plane after plane makes those rows junk once per block, not once per
sample).  The ``KW`` taps of a kernel row are unrolled for ``KW`` = 3 and 5 so that
their weights sit in registers, and four output channels share each pass (each load of
the source feeds four accumulators).  Other strides loop over output rows with
strided reads.

The input gradient is the same stride-1 correlation with input and output channels
swapped and the kernel flipped: per axis ``dx[i] = sum_{o, t} w[o, c, K-1-t] * Z[o, i +
t*d]``, where ``Z`` holds ``gy[o, p]`` at ``j = p*s + d*(K-1) - pad_before`` (zeros
between and around; positions outside ``Z`` are dropped).  The weight gradient is one
dot product per tap and channel pair, ``dw[o, ci, t] = sum_{n, m} G[o, m] * P[ci, m +
off_t]`` with ``G`` the output gradient in the same wide layout (zeros at the junk
positions), the ``KW`` taps of a kernel row sharing each load of ``G`` and two output
channels each load of ``P``; each thread sums its samples' contributions (and ``db``)
into its own slice, added up at the end.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ..spec import ConvSpec, Saved
from . import _common
from ._common import as3d, c_array, crop, geometry, span, supported_dtype

prange = range  # numba.prange once compiled (see _common.compile_kernels)
_compiled = False

#: Wide positions to aim for in one pass over a work item's samples.
WIDE_POSITIONS = 4096
#: Most bytes of one thread's buffer of padded input (or spread gradient) planes.
BUFFER_BYTES = 256 * 2**10


# --- compiled kernels (plain Python until _kernels() compiles them) -------------------------


def _fill(xn, c0, buf5, s, before):
    """``buf5[ci, bd + z, bh + y, s, bw : bw + W] = xn[c0 + ci, z, y]`` for every ``ci``: one
    sample's input planes into slot ``s`` of the rows of a zero-bordered buffer."""
    bd, bh, bw = before
    D, H, W = xn.shape[1], xn.shape[2], xn.shape[3]
    for ci in range(buf5.shape[0]):
        xc = xn[c0 + ci]
        bc = buf5[ci]
        for z in range(D):
            for y in range(H):
                src = xc[z, y]
                dst = bc[bd + z, bh + y, s, bw:bw + W]
                for q in range(W):
                    dst[q] = src[q]


def _row_axpy(acc, s, wrow, dw, M):
    """``acc[m] += sum_kw wrow[kw] * s[m + kw*dw]`` for ``m < M``: one row of taps."""
    KW = wrow.shape[0]
    if KW == 3:
        w0, w1, w2 = wrow[0], wrow[1], wrow[2]
        s0, s1, s2 = s[0:M], s[dw:dw + M], s[2 * dw:2 * dw + M]
        for m in range(M):
            acc[m] += w0 * s0[m] + w1 * s1[m] + w2 * s2[m]
    elif KW == 5:
        w0, w1, w2, w3, w4 = wrow[0], wrow[1], wrow[2], wrow[3], wrow[4]
        s0, s1, s2 = s[0:M], s[dw:dw + M], s[2 * dw:2 * dw + M]
        s3, s4 = s[3 * dw:3 * dw + M], s[4 * dw:4 * dw + M]
        for m in range(M):
            acc[m] += w0 * s0[m] + w1 * s1[m] + w2 * s2[m] + w3 * s3[m] + w4 * s4[m]
    else:
        for kw in range(KW):
            wt = wrow[kw]
            seg = s[kw * dw:kw * dw + M]
            for m in range(M):
                acc[m] += wt * seg[m]


def _correlate_wide(src, Hs, Ws, wk, dilation, acc, M):
    """``acc[m] = sum_{ci, t} wk[ci, t] * src[ci, m + off_t]`` for ``m < M`` (stride 1, wide
    rows; ``src`` is ``(CI, length)``, ``wk`` is ``(CI, KD, KH, KW)``)."""
    CI, KD, KH, KW = wk.shape
    dd, dh, dw = dilation
    for m in range(M):
        acc[m] = 0
    for ci in range(CI):
        sc = src[ci]
        for kd in range(KD):
            for kh in range(KH):
                base = (kd * dd * Hs + kh * dh) * Ws
                _row_axpy(acc, sc[base:base + (KW - 1) * dw + M], wk[ci, kd, kh], dw, M)


def _row_axpy4(a0, a1, a2, a3, s, wr, dw, M):
    """``a_j[m] += sum_kw wr[j, kw] * s[m + kw*dw]`` for four accumulators (four output
    channels) sharing each load of the source row."""
    KW = wr.shape[1]
    if KW == 3:
        s0, s1, s2 = s[0:M], s[dw:dw + M], s[2 * dw:2 * dw + M]
        u0, u1, u2 = wr[0, 0], wr[0, 1], wr[0, 2]
        v0, v1, v2 = wr[1, 0], wr[1, 1], wr[1, 2]
        p0, p1, p2 = wr[2, 0], wr[2, 1], wr[2, 2]
        q0, q1, q2 = wr[3, 0], wr[3, 1], wr[3, 2]
        for m in range(M):
            x0, x1, x2 = s0[m], s1[m], s2[m]
            a0[m] += u0 * x0 + u1 * x1 + u2 * x2
            a1[m] += v0 * x0 + v1 * x1 + v2 * x2
            a2[m] += p0 * x0 + p1 * x1 + p2 * x2
            a3[m] += q0 * x0 + q1 * x1 + q2 * x2
    elif KW == 5:
        s0, s1, s2 = s[0:M], s[dw:dw + M], s[2 * dw:2 * dw + M]
        s3, s4 = s[3 * dw:3 * dw + M], s[4 * dw:4 * dw + M]
        u0, u1, u2, u3, u4 = wr[0, 0], wr[0, 1], wr[0, 2], wr[0, 3], wr[0, 4]
        v0, v1, v2, v3, v4 = wr[1, 0], wr[1, 1], wr[1, 2], wr[1, 3], wr[1, 4]
        p0, p1, p2, p3, p4 = wr[2, 0], wr[2, 1], wr[2, 2], wr[2, 3], wr[2, 4]
        q0, q1, q2, q3, q4 = wr[3, 0], wr[3, 1], wr[3, 2], wr[3, 3], wr[3, 4]
        for m in range(M):
            x0, x1, x2, x3, x4 = s0[m], s1[m], s2[m], s3[m], s4[m]
            a0[m] += u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3 + u4 * x4
            a1[m] += v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3 + v4 * x4
            a2[m] += p0 * x0 + p1 * x1 + p2 * x2 + p3 * x3 + p4 * x4
            a3[m] += q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3 + q4 * x4
    else:
        _row_axpy(a0, s, wr[0], dw, M)
        _row_axpy(a1, s, wr[1], dw, M)
        _row_axpy(a2, s, wr[2], dw, M)
        _row_axpy(a3, s, wr[3], dw, M)


def _correlate_wide4(src, Hs, Ws, wk4, dilation, acc4, M):
    """:func:`_correlate_wide` for four output channels at once: ``acc4[j, m] = sum_{ci, t}
    wk4[j, ci, t] * src[ci, m + off_t]``."""
    CI, KD, KH, KW = wk4.shape[1], wk4.shape[2], wk4.shape[3], wk4.shape[4]
    dd, dh, dw = dilation
    a0, a1, a2, a3 = acc4[0, :M], acc4[1, :M], acc4[2, :M], acc4[3, :M]
    for m in range(M):
        a0[m] = 0
        a1[m] = 0
        a2[m] = 0
        a3[m] = 0
    for ci in range(CI):
        sc = src[ci]
        for kd in range(KD):
            for kh in range(KH):
                base = (kd * dd * Hs + kh * dh) * Ws
                _row_axpy4(a0, a1, a2, a3, sc[base:base + (KW - 1) * dw + M],
                           wk4[:, ci, kd, kh], dw, M)


def _correlate_channels(src, Hs, Ws, wk, c0, c1, dilation, acc4, M, width, ns, out5, n0,
                        bias):
    """``out5[n0 + s, c] = bias[c] + sum_{ci, t} wk[c, ci, t] * src[ci, s*width + m + off_t]``
    (wide rows of ``Ws`` values, sample ``s`` from offset ``s*width``, cropped) for channels
    ``c0 <= c < c1`` and samples ``s < ns``, four channels per pass over the source."""
    for c in range(c0, c1, 4):
        nb = min(4, c1 - c)
        if nb == 4:
            _correlate_wide4(src, Hs, Ws, wk[c:c + 4], dilation, acc4, M)
        else:
            for j in range(nb):
                _correlate_wide(src, Hs, Ws, wk[c + j], dilation, acc4[j], M)
        for j in range(nb):
            for s in range(ns):
                crop(acc4[j, s * width:], Hs, Ws, out5[n0 + s, c + j], bias[c + j])


def _correlate_strided(buf4, wk, stride, dilation, dst3, bias):
    """``dst3[o] = bias + sum_{ci, t} wk[ci, t] * buf4[ci, o*s + t*d]`` row by row (any
    stride)."""
    CI, KD, KH, KW = wk.shape
    OD, OH, OW = dst3.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for od in range(OD):
        for oh in range(OH):
            row = dst3[od, oh]
            for q in range(OW):
                row[q] = bias
            for ci in range(CI):
                for kd in range(KD):
                    for kh in range(KH):
                        srow = buf4[ci, od * sd + kd * dd, oh * sh + kh * dh]
                        for kw in range(KW):
                            wt = wk[ci, kd, kh, kw]
                            seg = srow[kw * dw:]
                            for q in range(OW):
                                row[q] += wt * seg[q * sw]


def _forward(x5, w5, b, y5, before, padded, stride, dilation, samples, chunks, nthreads):
    """``y5[n, o] = b[o] + sum_ci x5[n, g*Cg + ci] (zero-padded) correlated with w5[o, ci]``,
    one item (block of samples side by side, group, block of output channels) at a time."""
    N, C = x5.shape[0], x5.shape[1]
    O, Cg = w5.shape[0], w5.shape[1]
    G = C // Cg
    Og = O // G
    Dp, Hp, Wp = padded
    plane = Dp * Hp * Wp
    OD, OH, OW = y5.shape[2], y5.shape[3], y5.shape[4]
    unit = stride[0] == 1 and stride[1] == 1 and stride[2] == 1
    Ws = samples * Wp  # a buffer row: one row of every sample of the block
    M0 = ((OD - 1) * Hp + OH - 1) * Ws + OW  # wide positions, but for the samples after the first
    per = (Og + chunks - 1) // chunks
    blocks = (N + samples - 1) // samples
    items = blocks * G * chunks
    for t in prange(nthreads):
        buf = np.zeros(Cg * samples * plane, dtype=x5.dtype)
        buf5 = buf.reshape((Cg, Dp, Hp, samples, Wp))
        src = buf.reshape((Cg, samples * plane))
        acc4 = np.empty((4, M0 + (samples - 1) * Wp if unit else 1), dtype=x5.dtype)
        filled = -1  # the (block, group) whose planes are in buf
        for i in range(t * items // nthreads, (t + 1) * items // nthreads):
            bg = i // chunks
            k = i - bg * chunks
            n0 = bg // G * samples
            g = bg % G
            ns = min(N, n0 + samples) - n0
            if bg != filled:
                for s in range(ns):
                    _fill(x5[n0 + s], g * Cg, buf5, s, before)
                filled = bg
            o0 = g * Og + k * per
            o1 = min(o0 + per, (g + 1) * Og)
            if unit:
                _correlate_channels(src, Hp, Ws, w5, o0, o1, dilation, acc4, M0 + (ns - 1) * Wp,
                                    Wp, ns, y5, n0, b)
                continue
            for o in range(o0, o1):
                for s in range(ns):
                    _correlate_strided(buf5[:, :, :, s], w5[o], stride, dilation, y5[n0 + s, o],
                                       b[o])


def _input_grad(gy5, wt5, dx5, lead, zsize, stride, dilation, samples, chunks, nthreads):
    """``dx5[n, c] = sum_og Z[og] correlated with wt5[c, og]`` (the flipped kernel), with
    ``Z`` the group's output gradient spread as in the module docstring; one item (block of
    samples side by side, group, block of input channels) at a time."""
    N, O = gy5.shape[0], gy5.shape[1]
    OD, OH, OW = gy5.shape[2], gy5.shape[3], gy5.shape[4]
    C, Og = wt5.shape[0], wt5.shape[1]
    D, H, W = dx5.shape[2], dx5.shape[3], dx5.shape[4]
    G = O // Og
    Cg = C // G
    Zd, Zh, Zw = zsize
    plane = Zd * Zh * Zw
    sd, sh, sw = stride
    Ws = samples * Zw
    M0 = ((D - 1) * Zh + H - 1) * Ws + W
    d0, d1 = span(lead[0], sd, Zd, OD)
    h0, h1 = span(lead[1], sh, Zh, OH)
    w0, w1 = span(lead[2], sw, Zw, OW)
    per = (Cg + chunks - 1) // chunks
    blocks = (N + samples - 1) // samples
    items = blocks * G * chunks
    for t in prange(nthreads):
        # the positions written below are the same for every item: zero the rest once
        buf = np.zeros(Og * samples * plane, dtype=gy5.dtype)
        buf5 = buf.reshape((Og, Zd, Zh, samples, Zw))
        src = buf.reshape((Og, samples * plane))
        acc4 = np.empty((4, M0 + (samples - 1) * Zw), dtype=gy5.dtype)
        zero = np.zeros(C, dtype=gy5.dtype)
        filled = -1
        for i in range(t * items // nthreads, (t + 1) * items // nthreads):
            bg = i // chunks
            k = i - bg * chunks
            n0 = bg // G * samples
            g = bg % G
            ns = min(N, n0 + samples) - n0
            if bg != filled:
                for og in range(Og):
                    for s in range(ns):
                        g3 = gy5[n0 + s, g * Og + og]
                        z3 = buf5[og, :, :, s]
                        for od in range(d0, d1):
                            for oh in range(h0, h1):
                                grow = g3[od, oh]
                                zrow = z3[od * sd + lead[0], oh * sh + lead[1]]
                                for q in range(w0, w1):
                                    zrow[q * sw + lead[2]] = grow[q]
                filled = bg
            c0 = g * Cg + k * per
            _correlate_channels(src, Zh, Ws, wt5, c0, min(c0 + per, (g + 1) * Cg), dilation,
                                acc4, M0 + (ns - 1) * Zw, Zw, ns, dx5, n0, zero)


def _row_dots(g, s, arow, dw, M):
    """``arow[kw] += sum_m g[m] * s[m + kw*dw]`` for ``m < M``: one row of taps."""
    KW = arow.shape[0]
    if KW == 3:
        a0, a1, a2 = arow[0], arow[1], arow[2]
        s0, s1, s2 = s[0:M], s[dw:dw + M], s[2 * dw:2 * dw + M]
        for m in range(M):
            v = g[m]
            a0 += v * s0[m]
            a1 += v * s1[m]
            a2 += v * s2[m]
        arow[0], arow[1], arow[2] = a0, a1, a2
    elif KW == 5:
        a0, a1, a2, a3, a4 = arow[0], arow[1], arow[2], arow[3], arow[4]
        s0, s1, s2 = s[0:M], s[dw:dw + M], s[2 * dw:2 * dw + M]
        s3, s4 = s[3 * dw:3 * dw + M], s[4 * dw:4 * dw + M]
        for m in range(M):
            v = g[m]
            a0 += v * s0[m]
            a1 += v * s1[m]
            a2 += v * s2[m]
            a3 += v * s3[m]
            a4 += v * s4[m]
        arow[0], arow[1], arow[2], arow[3], arow[4] = a0, a1, a2, a3, a4
    else:
        for kw in range(KW):
            seg = s[kw * dw:kw * dw + M]
            a = arow[kw]
            for m in range(M):
                a += g[m] * seg[m]
            arow[kw] = a


def _accumulate_wide(g, src, Hs, Ws, dilation, dwk, M):
    """``dwk[ci, t] += sum_m g[m] * src[ci, m + off_t]`` for ``m < M`` (stride 1, wide rows)."""
    CI, KD, KH, KW = dwk.shape
    dd, dh, dw = dilation
    gm = g[:M]
    for ci in range(CI):
        sc = src[ci]
        for kd in range(KD):
            for kh in range(KH):
                base = (kd * dd * Hs + kh * dh) * Ws
                _row_dots(gm, sc[base:base + (KW - 1) * dw + M], dwk[ci, kd, kh], dw, M)


def _accumulate_strided(buf4, g3, stride, dilation, dwk):
    """``dwk[ci, t] += sum_o g3[o] * buf4[ci, o*s + t*d]`` row by row (any stride)."""
    CI, KD, KH, KW = dwk.shape
    OD, OH, OW = g3.shape
    sd, sh, sw = stride
    dd, dh, dw = dilation
    for od in range(OD):
        for oh in range(OH):
            grow = g3[od, oh]
            for ci in range(CI):
                for kd in range(KD):
                    for kh in range(KH):
                        srow = buf4[ci, od * sd + kd * dd, oh * sh + kh * dh]
                        for kw in range(KW):
                            seg = srow[kw * dw:]
                            a = dwk[ci, kd, kh, kw]
                            for q in range(OW):
                                a += grow[q] * seg[q * sw]
                            dwk[ci, kd, kh, kw] = a


def _row_dots2(g0, g1, s, r0, r1, dw, M):
    """:func:`_row_dots` for two output channels sharing each load of the source row:
    ``r_j[kw] += sum_m g_j[m] * s[m + kw*dw]``."""
    KW = r0.shape[0]
    if KW == 3:
        a0, a1, a2 = r0[0], r0[1], r0[2]
        b0, b1, b2 = r1[0], r1[1], r1[2]
        s0, s1, s2 = s[0:M], s[dw:dw + M], s[2 * dw:2 * dw + M]
        for m in range(M):
            u, v = g0[m], g1[m]
            x0, x1, x2 = s0[m], s1[m], s2[m]
            a0 += u * x0
            a1 += u * x1
            a2 += u * x2
            b0 += v * x0
            b1 += v * x1
            b2 += v * x2
        r0[0], r0[1], r0[2] = a0, a1, a2
        r1[0], r1[1], r1[2] = b0, b1, b2
    elif KW == 5:
        a0, a1, a2, a3, a4 = r0[0], r0[1], r0[2], r0[3], r0[4]
        b0, b1, b2, b3, b4 = r1[0], r1[1], r1[2], r1[3], r1[4]
        s0, s1, s2 = s[0:M], s[dw:dw + M], s[2 * dw:2 * dw + M]
        s3, s4 = s[3 * dw:3 * dw + M], s[4 * dw:4 * dw + M]
        for m in range(M):
            u, v = g0[m], g1[m]
            x0, x1, x2, x3, x4 = s0[m], s1[m], s2[m], s3[m], s4[m]
            a0 += u * x0
            a1 += u * x1
            a2 += u * x2
            a3 += u * x3
            a4 += u * x4
            b0 += v * x0
            b1 += v * x1
            b2 += v * x2
            b3 += v * x3
            b4 += v * x4
        r0[0], r0[1], r0[2], r0[3], r0[4] = a0, a1, a2, a3, a4
        r1[0], r1[1], r1[2], r1[3], r1[4] = b0, b1, b2, b3, b4
    else:
        _row_dots(g0, s, r0, dw, M)
        _row_dots(g1, s, r1, dw, M)


def _accumulate_wide2(g0, g1, src, Hs, Ws, dilation, dw0, dw1, M):
    """:func:`_accumulate_wide` for two output channels at once."""
    CI, KD, KH, KW = dw0.shape
    dd, dh, dw = dilation
    h0, h1 = g0[:M], g1[:M]
    for ci in range(CI):
        sc = src[ci]
        for kd in range(KD):
            for kh in range(KH):
                base = (kd * dd * Hs + kh * dh) * Ws
                _row_dots2(h0, h1, sc[base:base + (KW - 1) * dw + M], dw0[ci, kd, kh],
                           dw1[ci, kd, kh], dw, M)


def _weight_grad(x5, gy5, dwt, dbt, before, padded, stride, dilation, samples, nthreads):
    """``dwt[thread, o] += gy5[n, o]`` correlated with ``x5[n, g*Cg:]`` (zero-padded) and
    ``dbt[thread, o] += sum gy5[n, o]`` (both arrive zeroed; the caller sums over
    threads), one item (block of samples side by side, group) at a time."""
    N, C = x5.shape[0], x5.shape[1]
    O, Cg = dwt.shape[1], dwt.shape[2]
    G = C // Cg
    Og = O // G
    Dp, Hp, Wp = padded
    plane = Dp * Hp * Wp
    OD, OH, OW = gy5.shape[2], gy5.shape[3], gy5.shape[4]
    unit = stride[0] == 1 and stride[1] == 1 and stride[2] == 1
    Ws = samples * Wp
    M0 = ((OD - 1) * Hp + OH - 1) * Ws + OW
    blocks = (N + samples - 1) // samples
    items = blocks * G
    for t in prange(nthreads):
        buf = np.zeros(Cg * samples * plane, dtype=x5.dtype)
        buf5 = buf.reshape((Cg, Dp, Hp, samples, Wp))
        src = buf.reshape((Cg, samples * plane))
        # gy of two output channels in the wide layout: only output positions are written
        wide = np.zeros((2, samples * plane if unit else 1), dtype=x5.dtype)
        for i in range(t * items // nthreads, (t + 1) * items // nthreads):
            n0 = i // G * samples
            g = i % G
            ns = min(N, n0 + samples) - n0
            if ns < samples:  # the slots of missing samples must add nothing
                buf[:] = 0
                wide[:] = 0
            for s in range(ns):
                _fill(x5[n0 + s], g * Cg, buf5, s, before)
            for o in range(g * Og, (g + 1) * Og):
                j = (o - g * Og) % 2  # which of the pair
                total = dbt[t, o]
                for s in range(ns):
                    g3 = gy5[n0 + s, o]
                    for od in range(OD):
                        for oh in range(OH):
                            grow = g3[od, oh]
                            for q in range(OW):
                                total += grow[q]
                    if unit:
                        for od in range(OD):
                            for oh in range(OH):
                                start = (od * Hp + oh) * Ws + s * Wp
                                seg = wide[j, start:start + OW]
                                grow = g3[od, oh]
                                for q in range(OW):
                                    seg[q] = grow[q]
                    else:
                        _accumulate_strided(buf5[:, :, :, s], g3, stride, dilation, dwt[t, o])
                dbt[t, o] = total
                if not unit:
                    continue
                M = M0 + (ns - 1) * Wp
                if j == 1:
                    _accumulate_wide2(wide[0], wide[1], src, Hp, Ws, dilation, dwt[t, o - 1],
                                      dwt[t, o], M)
                elif o + 1 == (g + 1) * Og:  # an odd one out
                    _accumulate_wide(wide[0], src, Hp, Ws, dilation, dwt[t, o], M)


_SERIAL = ("span", "_fill", "_row_axpy", "_correlate_wide", "_row_axpy4", "_correlate_wide4",
           "crop", "_correlate_channels", "_correlate_strided", "_row_dots", "_accumulate_wide",
           "_row_dots2", "_accumulate_wide2", "_accumulate_strided")
_PARALLEL = ("_forward", "_input_grad", "_weight_grad")


def _kernels() -> None:
    _common.compile_kernels(sys.modules[__name__], _SERIAL, _PARALLEL)


# --- the algorithm ----------------------------------------------------------------------------


def samples_per_item(spec: ConvSpec, plane: int, channels: int, nthreads: int) -> int:
    """Samples side by side in one work item: enough for about :data:`WIDE_POSITIONS` wide
    positions per pass (a pass over a short plane is mostly loop set-up), their buffer of
    ``channels`` planes of ``plane`` values at most :data:`BUFFER_BYTES`, and evened out so
    that every thread gets the same number of samples."""
    if spec.n == 0:
        return 1
    most = max(1, min(-(-WIDE_POSITIONS // plane),
                      BUFFER_BYTES // max(1, channels * plane * spec.dtype.itemsize)))
    per_thread = -(-spec.n // nthreads)
    most = min(most, per_thread)
    return -(-per_thread // -(-per_thread // most))


def chunks(items: int, channels: int, nthreads: int) -> int:
    """Blocks to split each item's ``channels`` into so that there are at least ``nthreads``
    work items (1 when there are enough items already)."""
    if items >= nthreads:
        return 1
    return max(1, min(channels, -(-nthreads // max(1, items))))


class Direct:
    """Compiled direct convolution; see the module docstring.  Keeps no state between
    passes (its backward reads only the arrays)."""

    name = "numba_direct"

    def supports(self, spec: ConvSpec) -> bool:
        """Every float32/float64 convolution with 1-3 spatial axes (the numba chooser sends it
        the stride-1 layers with shallow products, where it was measured faster)."""
        return supported_dtype(spec)

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, Saved | None]:
        """``y (N, O, *out)`` from unpadded ``x (N, C, *size)``, ``w (O, C/G, *kernel)``,
        ``b (O,)`` or None."""
        _kernels()
        g = geometry(spec)
        nthreads = _common.threads()
        x5 = as3d(x, 2, spec.dtype)
        w5 = as3d(w, 2, spec.dtype)
        bias = np.zeros(spec.o, spec.dtype) if b is None else c_array(b, spec.dtype)
        y5 = np.empty((spec.n, spec.o) + g.out, dtype=spec.dtype)
        if y5.size:
            samples = samples_per_item(spec, math.prod(g.padded), spec.cg, nthreads)
            items = -(-spec.n // samples) * spec.groups
            _forward(x5, w5, bias, y5, g.before, g.padded, g.stride, g.dilation, samples,
                     chunks(items, spec.og, nthreads), nthreads)
        return y5.reshape(spec.y_shape), None

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        """``dx (N, C, *size)`` from ``gy (N, O, *out)`` and ``w (O, C/G, *kernel)``."""
        _kernels()
        g = geometry(spec)
        nthreads = _common.threads()
        gy5 = as3d(gy, 2, spec.dtype)
        # wt5[g*Cg + ci, og] = w[g*Og + og, ci] flipped along every spatial axis
        w5 = as3d(w, 2, spec.dtype)[:, :, ::-1, ::-1, ::-1]
        wt5 = c_array(w5.reshape((spec.groups, spec.og, spec.cg) + g.kernel)
                      .transpose(0, 2, 1, 3, 4, 5).reshape((spec.c, spec.og) + g.kernel),
                      spec.dtype)
        reach = tuple(d * (k - 1) for d, k in zip(g.dilation, g.kernel))
        lead = tuple(r - p for r, p in zip(reach, g.before))
        zsize = tuple(s + r for s, r in zip(g.size, reach))
        dx5 = np.zeros((spec.n, spec.c) + g.size, dtype=spec.dtype)
        if dx5.size:
            samples = samples_per_item(spec, math.prod(zsize), spec.og, nthreads)
            items = -(-spec.n // samples) * spec.groups
            _input_grad(gy5, wt5, dx5, lead, zsize, g.stride, g.dilation, samples,
                        chunks(items, spec.cg, nthreads), nthreads)
        return dx5.reshape(spec.x_shape)

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(dw (O, C/G, *kernel), db (O,) or None)`` from ``x (N, C, *size)`` and
        ``gy (N, O, *out)``."""
        _kernels()
        g = geometry(spec)
        nthreads = _common.threads()
        x5 = as3d(x, 2, spec.dtype)
        gy5 = as3d(gy, 2, spec.dtype)
        dwt = np.zeros((nthreads, spec.o, spec.cg) + g.kernel, dtype=spec.dtype)
        dbt = np.zeros((nthreads, spec.o), dtype=spec.dtype)
        if gy5.size and x5.size:
            _weight_grad(x5, gy5, dwt, dbt, g.before, g.padded, g.stride, g.dilation,
                         samples_per_item(spec, math.prod(g.padded), spec.cg, nthreads), nthreads)
        dw = dwt.sum(axis=0).reshape(spec.w_shape)
        return dw, (dbt.sum(axis=0) if spec.bias else None)

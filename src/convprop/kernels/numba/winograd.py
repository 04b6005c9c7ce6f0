"""Winograd F(4x4, 3x3), compiled: 3x3 (and, in 3-D, KDx3x3) stride-1 convolutions, all passes.

**The maths** (derived in :mod:`convprop.kernels.numpy.winograd`, whose
``transforms()`` gives the matrices ``A^T`` (4 x 6), ``G`` (6 x 3), ``B^T`` (6 x 6)
of the points 0, 1, -1, 2, -2, infinity).  The output is cut into 4 x 4 tiles; tile
``(i, j)`` reads the 6 x 6 padded-input tile ``d`` at rows ``4i ..``, columns ``4j ..``.
With ``xi = (jh, jw)`` one of the 36 transformed points and ``P`` the tiles::

    V[xi, c, p]  = (B^T d[n, c, p] B)[xi]                 input tiles, transformed
    U[xi, o, c]  = (G w[o, c] G^T)[xi]                    weights, transformed (float64)
    M[xi]        = U[xi] (O, C) @ V[xi] (C, P)            one GEMM per point
    y[n, o, p]   = b[o] + A^T M[:, o, p] A                the 4 x 4 outputs of tile p

With groups the GEMM is per group (``U[xi, g]`` is ``O/G x C/G``).  **In 3-D** the depth
taps are summed directly: output plane ``od`` is the sum over ``kd`` of 2-D Winograd
correlations of input planes ``od + kd - pad`` with ``w[:, :, kd]``, so a depth tap is
one more input channel: the planes of ``(c, kd)`` are gathered side by side and the GEMM
depth is ``C/G * KD`` (2-D is the case ``D = KD = 1``, see :func:`._common.as3d`).  On
the suite's vol3d layer (16 -> 32 channels, 3x3x3) that makes 6.75 multiplies per output
and channel pair instead of 27, at the price of transforming each input plane ``KD``
times.

The input gradient is the correlation of ``gy`` with the kernel flipped and its
channel axes swapped, padded by ``kernel - 1 - pad`` on each side (a negative padding
crops), so it runs the same forward.  The weight gradient is the forward's adjoint in
``U``::

    dM[xi, o, p] = (A dy[n, o, p] A^T)[xi]                output-gradient tiles, transformed
    dU[xi]       = sum_p dM[xi] (O, P) @ V[xi]^T (P, C)
    dw[o, c]     = G^T dU[:, o, c] G,   db[o] = sum gy[:, o]

**Layout (why the transforms vectorise).**  A thread's work item is a block of
samples and of tile rows.  Per input plane it first *deinterleaves* the padded rows
it needs by 4 along both axes (padding fused: positions outside the input read as
zero), ``D[k4, r4, t*(Q+1) + q] = xp[4*(tr0 + t) + k4, 4q + r4]`` with ``Q`` tiles
per row.  Then the 6 rows of every tile row are ``D[k % 4, :, u + (k // 4)*(Q+1)]``
and the 6 columns of every tile ``T[.., k % 4, u + k // 4]``: both 1-D transforms run
as long contiguous loops over ``u = t*(Q+1) + q``, the tile index within the
block, not as short loops of ``Q`` tiles with a stride-4 gather in each.  Column
``q = Q`` of every tile row is a junk tile (it keeps the loops contiguous across
rows); it is multiplied like the others (``1/(Q+1)`` extra GEMM work) and dropped
when the outputs are stored.  The output side mirrors it: ``A^T`` along columns, then
along rows, then one interleaving store per output row, with the bias.

Each work item runs its ``36 * G`` products as single-threaded BLAS calls (``np.dot``
inside Numba's threads, see :mod:`._common`) on at most :data:`MAX_COLUMNS` tiles
(:func:`layout`); the weight gradient accumulates ``dU`` per thread, and the
compiled adjoint weight transform sums the threads' parts.  Nothing is kept between
passes: the weight gradient transforms the input tiles again (on resnet56, one
thread, that is about 7 of its 35 ms); keeping ``V`` from the forward instead would
hold 2.4x the input (36 values per 16 outputs, junk tiles included) until the
backward.  That trade was not measured: it is left for a quiet machine.

**Why the products run inside Numba's threads.**  The other design -- transform the
whole batch into a stacked ``V (36, C, P)`` with one compiled kernel, call NumPy's
``matmul(U, V)`` from Python (its two BLAS threads), inverse-transform with a second
kernel -- was measured against this one for the forward (float32, same process, busy
2-core machine, best of 5; a scratch script, not kept): with 2 threads it took 3-5x
as long on every 3x3 suite layer (resnet56 180 against 44 ms wall; Numba's and
OpenBLAS's thread pools preempting each other); with one thread it was 17-27% slower on
32x32 and 56x56 images, equal at 28x28 and 10% faster at 14x14 and 7x7 (layers this
algorithm is not chosen for).

**Accuracy.**  ``U`` is computed in float64 and rounded once; the points +-2 scale
some terms by up to 8 (``B^T`` and ``A^T``), so float32 rounding is a small constant
factor above direct summation: measured <= 1.5e-5 relative (largest error of output
and gradients over the largest value, against PyTorch's float64) on the suite's 3x3
layers (``benchmarks/numba_layers.py``; im2col: <= 1.1e-6), inside the 1e-4 the
tests hold float32 to, so (like the NumPy backend's ``winograd_precise``) float32
and float64 both qualify.  Float64: <= 2.5e-14.
"""

from __future__ import annotations

import sys

import numpy as np

from ..spec import ConvSpec, Saved
from . import _common
from ._common import as3d, c_array, geometry, supported_dtype

prange = range  # numba.prange once compiled (see _common.compile_kernels)
_compiled = False

#: Outputs per tile along each axis, inputs per tile (F(4, 3)), transformed points.
TILE, SPAN, POINTS = 4, 6, 36
#: Most GEMM columns (tiles, junk included) per work item, and fewest where whole samples
#: can be put side by side: shorter products waste the BLAS kernel and read ``U`` once per
#: item; longer ones push ``V`` and ``M`` out of cache.  Measured (forward + both gradients,
#: one process, busy machine): items of one or two tile rows (15-18 columns) took 1.6-2.1x
#: the time of items of 56-210 columns on resnet56, resnet28 and cifar3x3; between 56 and
#: 210 the differences were within the noise.  Samples side by side (resnet14, 20 columns
#: per sample; resnet7, 6) gave no consistent gain in two runs: those layers are not
#: planned on this algorithm.
MAX_COLUMNS = 256
MIN_COLUMNS = 64


# --- compiled kernels (plain Python until _kernels() compiles them) -------------------------


def _bt(d0, d1, d2, d3, d4, d5, v0, v1, v2, v3, v4, v5, L, k):
    """``v = B^T d`` for ``L`` columns: ``v_j[u] = sum_i B^T[j, i] d_i[u]``.

    ``k`` holds the constants 2, 4, 5 in the data type (an integer literal would
    promote float32 arithmetic to float64)."""
    two, four, five = k[0], k[1], k[2]
    for u in range(L):
        a0, a1, a2, a3, a4, a5 = d0[u], d1[u], d2[u], d3[u], d4[u], d5[u]
        v0[u] = four * a0 - five * a2 + a4
        v1[u] = a3 + a4 - four * (a1 + a2)
        v2[u] = four * (a1 - a2) + a4 - a3
        v3[u] = two * (a3 - a1) + a4 - a2
        v4[u] = two * (a1 - a3) + a4 - a2
        v5[u] = four * a1 - five * a3 + a5


def _at(m0, m1, m2, m3, m4, m5, y0, y1, y2, y3, L, k):
    """``y = A^T m`` for ``L`` columns: ``y_i[u] = sum_j A^T[i, j] m_j[u]``."""
    two, four, eight = k[0], k[1], k[3]
    for u in range(L):
        a1, a2, a3, a4 = m1[u], m2[u], m3[u], m4[u]
        sp, sm, tp, tm = a1 + a2, a1 - a2, a3 + a4, a3 - a4
        y0[u] = m0[u] + sp + tp
        y1[u] = sm + two * tm
        y2[u] = sp + four * tp
        y3[u] = sm + eight * tm + m5[u]


def _a(g0, g1, g2, g3, d0, d1, d2, d3, d4, d5, L, k):
    """``d = A g`` for ``L`` columns: ``d_j[u] = sum_i A^T[i, j] g_i[u]`` (the adjoint of
    :func:`_at`)."""
    two, four, eight = k[0], k[1], k[3]
    for u in range(L):
        a0, a1, a2, a3 = g0[u], g1[u], g2[u], g3[u]
        ev, od = a0 + a2, a1 + a3
        ev4, od2 = a0 + four * a2, two * a1 + eight * a3
        d0[u] = a0
        d1[u] = ev + od
        d2[u] = ev - od
        d3[u] = ev4 + od2
        d4[u] = ev4 - od2
        d5[u] = a3


def _edge_tile(row, dbuf, k4, base, q, before_w):
    """``dbuf[k4, r4, base + q] = row[4q + r4 - before_w]`` (0 outside the row), r4 < 4."""
    W = row.shape[0]
    for r4 in range(4):
        j = 4 * q + r4 - before_w
        dbuf[k4, r4, base + q] = row[j] if 0 <= j < W else 0


def _deinterleave(plane, dbuf, r0, rows, Q1, before_h, before_w):
    """``dbuf[k4, r4, t*Q1 + q] = xp[r0 + 4t + k4, 4q + r4]`` for ``t < rows``, ``q < Q1``,
    where ``xp[i, j] = plane[i - before_h, j - before_w]`` inside ``plane`` and 0 outside
    (``before`` may be negative: then it crops).

    Tiles ``q`` in ``[qa, qb)`` read four columns inside the plane: one loop reads them
    contiguously and writes the four phases (LLVM vectorises it as an interleaved group);
    the few tiles at the edges go element by element."""
    H, W = plane.shape
    qa = min(max(0, -(-before_w // 4)), Q1)
    qb = min(max(qa, (W - 4 + before_w) // 4 + 1), Q1)  # qa <= qb: [qa, qb) may be empty
    for t in range(rows):
        base = t * Q1
        for k4 in range(4):
            iy = r0 + 4 * t + k4 - before_h
            if iy < 0 or iy >= H:
                for r4 in range(4):
                    dst = dbuf[k4, r4, base:base + Q1]
                    for q in range(Q1):
                        dst[q] = 0
                continue
            row = plane[iy]
            for q in range(qa):  # the edges: [0, qa) and [qb, Q1)
                _edge_tile(row, dbuf, k4, base, q, before_w)
            for q in range(qb, Q1):
                _edge_tile(row, dbuf, k4, base, q, before_w)
            if qb > qa:
                src = row[4 * qa - before_w:]
                d0 = dbuf[k4, 0, base + qa:]
                d1 = dbuf[k4, 1, base + qa:]
                d2 = dbuf[k4, 2, base + qa:]
                d3 = dbuf[k4, 3, base + qa:]
                for q in range(qb - qa):
                    d0[q] = src[4 * q]
                    d1[q] = src[4 * q + 1]
                    d2[q] = src[4 * q + 2]
                    d3[q] = src[4 * q + 3]


def _input_tiles(plane, v, g, ci, col0, tr0, R, Q1, before_h, before_w, dbuf, tbuf, k):
    """``v[xi, g, ci, col0 + u] = (B^T d B)[xi]`` for the tiles ``u = t*Q1 + q`` of tile rows
    ``tr0 .. tr0 + R`` of one input ``plane`` (``t < R``, ``q < Q1``; ``q = Q1 - 1`` junk)."""
    L = R * Q1
    _deinterleave(plane, dbuf, 4 * tr0, R + 1, Q1, before_h, before_w)
    for r4 in range(4):  # B^T along the rows: row k of a tile row is D[k % 4, r4, u + k//4*Q1]
        _bt(dbuf[0, r4], dbuf[1, r4], dbuf[2, r4], dbuf[3, r4], dbuf[0, r4, Q1:],
            dbuf[1, r4, Q1:], tbuf[0, r4], tbuf[1, r4], tbuf[2, r4], tbuf[3, r4], tbuf[4, r4],
            tbuf[5, r4], L, k)
    for jh in range(SPAN):  # B^T along the columns: column k of tile u is T[jh, k % 4, u + k//4]
        th = tbuf[jh]
        th[0, L] = 0  # read (times nothing that is kept) by the last, junk, tile
        th[1, L] = 0
        xi = jh * SPAN
        _bt(th[0], th[1], th[2], th[3], th[0, 1:], th[1, 1:],
            v[xi, g, ci, col0:], v[xi + 1, g, ci, col0:], v[xi + 2, g, ci, col0:],
            v[xi + 3, g, ci, col0:], v[xi + 4, g, ci, col0:], v[xi + 5, g, ci, col0:], L, k)


def _output_tiles(m, g, oi, col0, plane, bias, tr0, R, Q1, sbuf, obuf, k):
    """``plane[4(tr0 + t) + mh, 4q + mw] = bias + (A^T M A)[mh, mw]`` of the tiles ``u = t*Q1 +
    q`` in ``m[:, g, oi, col0 + u]``, where that output exists (partial and junk tiles crop)."""
    OH, OW = plane.shape
    L = R * Q1
    for jh in range(SPAN):  # A^T along the columns
        xi = jh * SPAN
        _at(m[xi, g, oi, col0:], m[xi + 1, g, oi, col0:], m[xi + 2, g, oi, col0:],
            m[xi + 3, g, oi, col0:], m[xi + 4, g, oi, col0:], m[xi + 5, g, oi, col0:],
            sbuf[jh, 0], sbuf[jh, 1], sbuf[jh, 2], sbuf[jh, 3], L, k)
    for mw in range(TILE):  # A^T along the rows
        _at(sbuf[0, mw], sbuf[1, mw], sbuf[2, mw], sbuf[3, mw], sbuf[4, mw], sbuf[5, mw],
            obuf[0, mw], obuf[1, mw], obuf[2, mw], obuf[3, mw], L, k)
    for t in range(R):
        for mh in range(TILE):
            oy = 4 * (tr0 + t) + mh
            if oy >= OH:
                break
            row = plane[oy]
            for mw in range(TILE):
                nq = min((OW - mw + 3) // 4, Q1)
                src = obuf[mh, mw, t * Q1:]
                dst = row[mw:]
                for q in range(nq):
                    dst[4 * q] = src[q] + bias


def _grad_tiles(plane, dm, g, oi, col0, tr0, R, Q1, dbuf, hbuf, k):
    """``dm[xi, g, oi, col0 + u] = (A dy A^T)[xi]`` for the output-gradient tiles ``u = t*Q1 +
    q`` of tile rows ``tr0 .. tr0 + R`` (positions past the output, junk tile included, are 0)."""
    L = R * Q1
    _deinterleave(plane, dbuf, 4 * tr0, R, Q1, 0, 0)
    for mh in range(TILE):  # A along the columns: column mw of tile u is D[mh, mw, u]
        _a(dbuf[mh, 0], dbuf[mh, 1], dbuf[mh, 2], dbuf[mh, 3], hbuf[mh, 0], hbuf[mh, 1],
           hbuf[mh, 2], hbuf[mh, 3], hbuf[mh, 4], hbuf[mh, 5], L, k)
    for jw in range(SPAN):  # A along the rows
        _a(hbuf[0, jw], hbuf[1, jw], hbuf[2, jw], hbuf[3, jw], dm[jw, g, oi, col0:],
           dm[SPAN + jw, g, oi, col0:], dm[2 * SPAN + jw, g, oi, col0:],
           dm[3 * SPAN + jw, g, oi, col0:], dm[4 * SPAN + jw, g, oi, col0:],
           dm[5 * SPAN + jw, g, oi, col0:], L, k)


def _items(N, TR, R, S):
    """Work items (blocks of ``S`` samples x ``R`` tile rows) and tile-row blocks per sample."""
    blocks = (TR + R - 1) // R
    return (N + S - 1) // S * blocks, blocks


def _item_inputs(x, v, s0, s1, OD, KD, tr0, rows, Q1, before_d, before_h, before_w, dbuf, tbuf,
                 k):
    """``v[:, g, ci*KD + kd, (s - s0)*L + u]``: the transformed tiles of samples ``s`` in
    ``[s0, s1)`` (``s = n*OD + od``), channel ``g*Cg + ci``, depth tap ``kd`` -- the plane
    ``x[n, c, od + kd - before_d]``, or zeros where that plane is depth padding."""
    C, D = x.shape[1], x.shape[2]
    Cg = v.shape[2] // KD
    L = rows * Q1
    for s in range(s0, s1):
        n, od = s // OD, s % OD
        col0 = (s - s0) * L
        for c in range(C):
            g, ci = c // Cg, c % Cg
            for kd in range(KD):
                iz = od + kd - before_d
                if 0 <= iz < D:
                    _input_tiles(x[n, c, iz], v, g, ci * KD + kd, col0, tr0, rows, Q1, before_h,
                                 before_w, dbuf, tbuf, k)
                    continue
                for xi in range(POINTS):
                    dst = v[xi, g, ci * KD + kd, col0:col0 + L]
                    for q in range(L):
                        dst[q] = 0


def _forward(x, u, b, y, before_d, before_h, before_w, R, S, k, nthreads):
    """``y[n, o, od] = b[o] + sum_kd Winograd(x[n, :, od + kd - before_d], U[.., kd])`` (module
    docstring), one item (block of ``S`` samples ``(n, od)``, block of ``R`` tile rows) at a
    time: transform, ``36 * G`` GEMMs over channels and depth taps, inverse."""
    N, C = x.shape[0], x.shape[1]
    G, Og, K = u.shape[1], u.shape[2], u.shape[3]
    OD, OH, OW = y.shape[2], y.shape[3], y.shape[4]
    KD = K * G // C
    Q1 = (OW + 3) // 4 + 1
    TR = (OH + 3) // 4
    items, blocks = _items(N * OD, TR, R, S)
    most = S * R * Q1
    for th in prange(nthreads):
        vbuf = np.empty(POINTS * G * K * most, dtype=x.dtype)
        mbuf = np.empty(POINTS * G * Og * most, dtype=x.dtype)
        dbuf = np.empty((4, 4, (R + 1) * Q1), dtype=x.dtype)
        tbuf = np.empty((SPAN, 4, R * Q1 + 1), dtype=x.dtype)
        sbuf = np.empty((SPAN, 4, R * Q1), dtype=x.dtype)
        obuf = np.empty((4, 4, R * Q1), dtype=x.dtype)
        for i in range(th * items // nthreads, (th + 1) * items // nthreads):
            s0 = i // blocks * S
            s1 = min(N * OD, s0 + S)
            tr0 = (i % blocks) * R
            rows = min(R, TR - tr0)
            L = rows * Q1
            width = (s1 - s0) * L
            v = vbuf[:POINTS * G * K * width].reshape((POINTS, G, K, width))
            mm = mbuf[:POINTS * G * Og * width].reshape((POINTS, G, Og, width))
            _item_inputs(x, v, s0, s1, OD, KD, tr0, rows, Q1, before_d, before_h, before_w, dbuf,
                         tbuf, k)
            for xi in range(POINTS):
                for g in range(G):
                    np.dot(u[xi, g], v[xi, g], mm[xi, g])
            for s in range(s0, s1):
                n, od = s // OD, s % OD
                for o in range(G * Og):
                    _output_tiles(mm, o // Og, o % Og, (s - s0) * L, y[n, o, od], b[o], tr0, rows,
                                  Q1, sbuf, obuf, k)


def _weight_grad(x, gy, dut, before_d, before_h, before_w, R, S, k, nthreads):
    """``dut[thread, xi, g] += dM[xi, g] @ V[xi, g]^T`` over the thread's items (arrives zeroed;
    the caller sums over threads)."""
    N, C = x.shape[0], x.shape[1]
    G, Og, K = dut.shape[2], dut.shape[3], dut.shape[4]
    OD, OH, OW = gy.shape[2], gy.shape[3], gy.shape[4]
    KD = K * G // C
    Q1 = (OW + 3) // 4 + 1
    TR = (OH + 3) // 4
    items, blocks = _items(N * OD, TR, R, S)
    most = S * R * Q1
    for th in prange(nthreads):
        vbuf = np.empty(POINTS * G * K * most, dtype=x.dtype)
        mbuf = np.empty(POINTS * G * Og * most, dtype=x.dtype)
        dbuf = np.empty((4, 4, (R + 1) * Q1), dtype=x.dtype)
        tbuf = np.empty((SPAN, 4, R * Q1 + 1), dtype=x.dtype)
        hbuf = np.empty((4, SPAN, R * Q1), dtype=x.dtype)
        prod = np.empty((Og, K), dtype=x.dtype)
        acc = dut[th]
        for i in range(th * items // nthreads, (th + 1) * items // nthreads):
            s0 = i // blocks * S
            s1 = min(N * OD, s0 + S)
            tr0 = (i % blocks) * R
            rows = min(R, TR - tr0)
            L = rows * Q1
            width = (s1 - s0) * L
            v = vbuf[:POINTS * G * K * width].reshape((POINTS, G, K, width))
            dm = mbuf[:POINTS * G * Og * width].reshape((POINTS, G, Og, width))
            _item_inputs(x, v, s0, s1, OD, KD, tr0, rows, Q1, before_d, before_h, before_w, dbuf,
                         tbuf, k)
            for s in range(s0, s1):
                n, od = s // OD, s % OD
                for o in range(G * Og):
                    _grad_tiles(gy[n, o, od], dm, o // Og, o % Og, (s - s0) * L, tr0, rows, Q1,
                                dbuf, hbuf, k)
            for xi in range(POINTS):
                for g in range(G):
                    np.dot(dm[xi, g], v[xi, g].T, prod)
                    dst = acc[xi, g]
                    for o in range(Og):
                        drow = dst[o]
                        prow = prod[o]
                        for c in range(K):
                            drow[c] += prow[c]


def _g(a0, a1, a2):
    """``G a`` of one 3-vector, in float64 (``G``'s rows: the kernel at the points 0, 1, -1,
    2, -2 over the Lagrange denominators, and the leading coefficient)."""
    a0, a1, a2 = np.float64(a0), np.float64(a1), np.float64(a2)
    return (a0 * 0.25, (a0 + a1 + a2) * (-1.0 / 6.0), (a0 - a1 + a2) * (-1.0 / 6.0),
            (a0 + 2.0 * a1 + 4.0 * a2) * (1.0 / 24.0), (a0 - 2.0 * a1 + 4.0 * a2) * (1.0 / 24.0), a2)


def _gt(m0, m1, m2, m3, m4, m5):
    """``G^T m`` of one 6-vector, in float64 (the adjoint of :func:`_g`)."""
    sp, sm, tp, tm = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return (m0 * 0.25 - sp * (1.0 / 6.0) + tp * (1.0 / 24.0), tm * (1.0 / 12.0) - sm * (1.0 / 6.0),
            (tp - sp) * (1.0 / 6.0) + m5)


def _weights_to_points(w2, u, nthreads):
    """``u[jh*6 + jw, p] = (G w2[p] G^T)[jh, jw]`` for every kernel ``w2[p]`` (9 values, row
    major), computed in float64 and rounded once to ``u``'s type."""
    P = w2.shape[0]
    for th in prange(nthreads):
        for p in range(th * P // nthreads, (th + 1) * P // nthreads):
            f = w2[p]
            c0 = _g(f[0], f[3], f[6])  # G down each kernel column ...
            c1 = _g(f[1], f[4], f[7])
            c2 = _g(f[2], f[5], f[8])
            for jh in range(SPAN):  # ... then along each transformed row
                r = _g(c0[jh], c1[jh], c2[jh])
                for jw in range(SPAN):
                    u[jh * SPAN + jw, p] = r[jw]


def _points_to_weights(dut, dw2, nthreads):
    """``dw2[p] = G^T (sum_t dut[t, :, p]) G`` (3 x 3, row major) summed over the threads'
    partial sums ``dut[t]``, in float64: the adjoint of :func:`_weights_to_points`."""
    T, P = dut.shape[0], dut.shape[2]
    for th in prange(nthreads):
        m = np.empty(POINTS)
        rows = np.empty((SPAN, 3))
        for p in range(th * P // nthreads, (th + 1) * P // nthreads):
            for xi in range(POINTS):
                total = 0.0
                for t in range(T):
                    total += dut[t, xi, p]
                m[xi] = total
            for jh in range(SPAN):  # G^T along each transformed row ...
                r = _gt(m[jh * SPAN], m[jh * SPAN + 1], m[jh * SPAN + 2], m[jh * SPAN + 3],
                        m[jh * SPAN + 4], m[jh * SPAN + 5])
                rows[jh, 0], rows[jh, 1], rows[jh, 2] = r[0], r[1], r[2]
            for kw in range(3):  # ... then down each column
                col = _gt(rows[0, kw], rows[1, kw], rows[2, kw], rows[3, kw], rows[4, kw],
                          rows[5, kw])
                dw2[p, kw], dw2[p, 3 + kw], dw2[p, 6 + kw] = col[0], col[1], col[2]


_SERIAL = ("_edge_tile", "_bt", "_at", "_a", "_g", "_gt", "_deinterleave", "_input_tiles",
           "_output_tiles", "_grad_tiles", "_items", "_item_inputs")
_PARALLEL = ("_forward", "_weight_grad", "_weights_to_points", "_points_to_weights")


def _kernels() -> None:
    _common.compile_kernels(sys.modules[__name__], _SERIAL, _PARALLEL)


# --- the weights' transforms and the input gradient's weight ----------------------------------


def weights_to_points(w: np.ndarray, groups: int, dtype: np.dtype) -> np.ndarray:
    """``U[xi, g, o, c*KD + kd] = (G w[g*O/G + o, c, kd] G^T)[xi]``: ``w (O, C/G, KD, 3, 3)``
    -> ``(36, G, O/G, C/G * KD)`` in ``dtype``, computed in float64 and rounded once
    (compiled: NumPy's threaded BLAS on this 9-deep product measured 24 ms for 64 x 64
    channels on a busy machine, 0.16 ms single-threaded)."""
    _kernels()
    o = w.shape[0]
    pairs = w.size // 9
    u = np.empty((POINTS, pairs), dtype=dtype)
    _weights_to_points(c_array(w, dtype).reshape(pairs, 9), u, _common.threads())
    return u.reshape(POINTS, groups, o // groups, pairs // o)


def points_to_weights(dut: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`weights_to_points`, summed over threads: ``dw[g*O/G + o, c, kd] =
    G^T (sum_t dut[t, :, g, o, c*KD + kd]) G``, ``(T, 36, G, O/G, C/G * KD)`` -> ``(O, C/G *
    KD, 3, 3)`` (reshape to split ``C/G`` and ``KD``)."""
    _kernels()
    nt, _, groups, og, k = dut.shape
    dw = np.empty((groups * og * k, 9), dtype=dut.dtype)
    _points_to_weights(c_array(dut, dut.dtype).reshape(nt, POINTS, -1), dw, _common.threads())
    return dw.reshape(groups * og, k, 3, 3)


def flipped_transposed(w: np.ndarray, groups: int) -> np.ndarray:
    """``wf[g*C/G + c, o] = w[g*O/G + o, c]`` with every spatial axis reversed: ``(O, C/G,
    *kernel)`` -> ``(C, O/G, *kernel)``, the weight whose correlation with ``gy`` is the input
    gradient."""
    o, cg = w.shape[:2]
    spatial = w.shape[2:]
    wg = w.reshape((groups, o // groups, cg) + spatial)[(Ellipsis,) + (slice(None, None, -1),)
                                                         * len(spatial)]
    axes = (0, 2, 1) + tuple(range(3, 3 + len(spatial)))
    return wg.transpose(axes).reshape((groups * cg, o // groups) + spatial)


def constants(dtype: np.dtype) -> np.ndarray:
    """The transforms' integer factors 2, 4, 5, 8 in ``dtype`` (see :func:`_bt`)."""
    return np.array([2, 4, 5, 8], dtype=dtype)


# --- the algorithm ----------------------------------------------------------------------------


def layout(out: tuple[int, int], n: int, nthreads: int) -> tuple[int, int]:
    """``(R, S)``: tile rows and samples of one work item.

    ``R``: as many tile rows as give at most :data:`MAX_COLUMNS` tiles (junk included),
    at least one, at most the whole image.  ``S``: 1, or, when a whole sample has fewer
    than :data:`MIN_COLUMNS` tiles, enough samples side by side to reach that many,
    evened out so that every thread gets the same number of items.
    """
    oh, ow = out
    q1 = -(-ow // TILE) + 1
    tr = -(-oh // TILE)
    rows = min(max(1, MAX_COLUMNS // q1), tr)
    if rows < tr or tr * q1 >= MIN_COLUMNS or n == 0:
        return rows, 1
    most = -(-MIN_COLUMNS // (tr * q1))
    per_thread = -(-n // (nthreads * most))
    return rows, max(1, -(-n // (nthreads * per_thread)))


class WinogradF43:
    """Compiled Winograd F(4x4, 3x3); see the module docstring.  Keeps no state between
    passes: the weight gradient transforms the input tiles again."""

    name = "numba_winograd"

    def supports(self, spec: ConvSpec) -> bool:
        """2-D and 3-D float32/float64 convolutions whose last two kernel axes are 3x3 (in 3-D
        any kernel depth), stride 1, no dilation (any padding, groups and bias)."""
        return (supported_dtype(spec) and spec.nd in (2, 3) and spec.kernel[-2:] == (3, 3)
                and all(v == 1 for v in spec.stride) and all(v == 1 for v in spec.dilation))

    def _correlate(self, x5: np.ndarray, w: np.ndarray, b: np.ndarray, groups: int,
                   before: tuple[int, int, int], out: tuple[int, int, int]) -> np.ndarray:
        """``y (N, O, *out)``: the correlation of ``x5 (N, C, D, H, W)``, shifted by ``before``
        (zeros outside), with ``w (O, C/G, KD, 3, 3)``, plus ``b (O,)``."""
        _kernels()
        dtype = x5.dtype
        n, c = x5.shape[:2]
        o = w.shape[0]
        y = np.empty((n, o) + out, dtype=dtype)
        if not y.size:
            return y
        if not c:
            y[...] = b.reshape(1, o, 1, 1, 1)
            return y
        nthreads = _common.threads()
        u = weights_to_points(w, groups, dtype)
        rows, samples = layout(out[1:], n * out[0], nthreads)
        with _common.one_blas_thread():
            _forward(x5, u, b, y, *before, rows, samples, constants(dtype), nthreads)
        return y

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, Saved | None]:
        """``y (N, O, *out)`` from unpadded ``x (N, C, *size)``, ``w (O, C/G, *kernel)`` and
        ``b (O,)`` or None."""
        g = geometry(spec)
        bias = np.zeros(spec.o, spec.dtype) if b is None else c_array(b, spec.dtype)
        w5 = np.asarray(w).reshape((spec.o, spec.cg) + g.kernel)
        y = self._correlate(as3d(x, 2, spec.dtype), w5, bias, spec.groups, g.before, g.out)
        return y.reshape(spec.y_shape), None

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        """``dx (N, C, *size)``: ``gy (N, O, *out)`` padded by ``kernel - 1 - pad`` on each
        side, correlated with the flipped, channel-swapped ``w``."""
        g = geometry(spec)
        before = tuple(k - 1 - p for k, p in zip(g.kernel, g.before))
        wf = flipped_transposed(np.asarray(w).reshape((spec.o, spec.cg) + g.kernel), spec.groups)
        dx = self._correlate(as3d(gy, 2, spec.dtype), wf, np.zeros(spec.c, spec.dtype),
                             spec.groups, before, g.size)
        return dx.reshape(spec.x_shape)

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(dw (O, C/G, *kernel), db (O,) or None)`` from ``x (N, C, *size)`` and
        ``gy (N, O, *out)``."""
        g = geometry(spec)
        gy5 = as3d(gy, 2, spec.dtype)
        db = (gy5.sum(axis=(0, 2, 3, 4), dtype=np.float64).astype(spec.dtype) if spec.bias
              else None)
        if not (gy5.size and spec.c):
            return np.zeros(spec.w_shape, spec.dtype), db
        _kernels()
        nthreads = _common.threads()
        kd = g.kernel[0]
        dut = np.zeros((nthreads, POINTS, spec.groups, spec.og, spec.cg * kd), dtype=spec.dtype)
        rows, samples = layout(g.out[1:], spec.n * g.out[0], nthreads)
        with _common.one_blas_thread():
            _weight_grad(as3d(x, 2, spec.dtype), gy5, dut, *g.before, rows, samples,
                         constants(spec.dtype), nthreads)
        return points_to_weights(dut).reshape(spec.w_shape), db

"""Winograd minimal filtering F(m, 3) for stride-1, undilated, ungrouped 3-tap kernels.

**The 1-D algorithm (Lavin & Gray 2015, "Fast Algorithms for Convolutional
Neural Networks").**  ``m`` outputs of a 3-tap correlation ``y[i] = sum_k
g[k] d[i + k]`` read ``a = m + 2`` inputs and cost ``3m`` multiplies directly.
Toom-Cook evaluates both polynomials at ``a - 1`` points ``p_j`` and at
infinity, multiplies pointwise (``a`` multiplies) and interpolates back::

    y = A^T [ (G g) * (B^T d) ]          A^T: (m, a), G: (a, 3), B^T: (a, a)

with ``A^T[i, j] = p_j**i`` (the last column picks the leading coefficient,
the point at infinity), ``G[j, k] = p_j**k / prod_{l != j}(p_j - p_l)`` (the
Lagrange denominators folded into the filter side, which is transformed once
per call) and ``B^T`` the unique matrix making the identity hold for every
``d`` and ``g``: ``sum_j A^T[i, j] G[j, k] B^T[j, l] = [l == i + k]``.
:func:`transforms` solves that linear system in float64; with the points
``0, 1, -1, 2, -2`` (``m = 4``) it gives the integer ``B^T`` of the paper.

**More dimensions.**  The transforms are separable: a 2-D tile ``d`` (a x a)
becomes ``B^T d B`` (the 1-D transform along each axis) and the tile of
outputs is ``A^T [ (G g G^T) * (B^T d B) ] A``.  Summing over input channels
turns the pointwise product into one matrix product *per transformed point*::

    M[xi] (O, P) = U[xi] (O, C) @ V[xi] (C, P)     for each of the a**nd points xi

where ``P`` counts tiles over the batch.  F(4x4, 3x3) does 36 multiplies per
16 outputs instead of 144: 4x fewer; F(4, 3) in 1-D 2x, F(4,4,4; 3,3,3) 8x.
The transforms are matrix products, which BLAS threads.  In 1-D and 2-D the
tiles are gathered with their own ``a**nd`` values innermost (each tile row one
contiguous run of ``a`` inputs) and all axes are transformed at once by the
Kronecker product: ``vec(B^T d B) = (B^T kron B^T) vec(d)``, one ``(a**nd,
a**nd)`` GEMM over every tile (and ``A^T kron A^T`` back).  It does ``a/2`` times
the multiplies of one axis at a time, but measured on the 3x3 suite layers the
gather and the transform together ran 1.2-1.8x faster than gathering the point
axes first (strided reads along the tile axis) and transforming one axis at a
time.  In 3-D the Kronecker matrix (216 x 216) would cost 12x the multiplies, so
there the transforms go one axis at a time (``a x a`` GEMMs with a huge third
dimension).

**Padding and bias.**  The input is copied once onto the zero tile grid (its
padding and the round-up to whole tiles in the same copy); the bias is added in
the copy out of the output tiles.

**Backward.**  The input gradient of a stride-1 3-tap correlation is the
correlation of the output gradient, zero-padded by 2, with the kernel
flipped and its channel axes swapped: the same forward (:meth:`Winograd.input_grad`).
Measured, the flat path computes it faster, so the chooser plans the flat path's
input gradient after a Winograd forward.  The weight gradient is the adjoint of
the forward in ``U``: ``dM = A dY A^T`` per tile, ``dU[xi] = dM[xi] @ V[xi]^T``
summed over tiles, ``dg = G^T dU G``; ``V`` is reused from the forward when it
was kept (:class:`WinogradSaved`).

**Accuracy.**  The points +-2 scale some terms by up to 8 and ``G`` holds
1/24, so float32 rounding grows by a small constant factor over direct
summation; the kernel tests hold float32 results to 1e-4 of the float64
answer and the benchmark reports the measured error per layer.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..._windows import windows
from .. import _pool
from ..spec import ConvSpec, Saved
from . import _common


@dataclass
class WinogradSaved(Saved):
    """The transformed input tiles ``V`` of each batch chunk, for :meth:`Winograd.weight_grad`
    (released there), when the whole batch's fit ``WINOGRAD_CACHE_BYTES``."""

    tiles: list[np.ndarray] | None


#: Outputs per tile along each axis (4 -> F(4, 3): a = 6 inputs per tile).
TILE = 4
POINTS = {2: (0.0, 1.0, -1.0), 4: (0.0, 1.0, -1.0, 2.0, -2.0)}


@functools.cache
def transforms(m: int = TILE, r: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A^T, G, B^T)`` of F(m, r) in float64, built from :data:`POINTS` as derived above."""
    pts = POINTS[m]
    a = m + r - 1
    at = np.zeros((m, a))
    g = np.zeros((a, r))
    for j, p in enumerate(pts):
        at[:, j] = [p**i for i in range(m)]
        g[j] = [p**k / math.prod(p - q for q in pts if q != p) for k in range(r)]
    at[m - 1, a - 1] = g[a - 1, r - 1] = 1.0
    # sum_j at[i, j] g[j, k] bt[j, l] = [l == i + k]: m*r*a equations in a*a unknowns
    coef = np.zeros((m, r, a, a, a))
    for i in range(m):
        for k in range(r):
            for l in range(a):
                coef[i, k, l, :, l] = at[i] * g[:, k]
    rhs = np.array([[[float(l == i + k) for l in range(a)] for k in range(r)] for i in range(m)])
    bt = np.linalg.lstsq(coef.reshape(m * r * a, a * a), rhs.ravel(), rcond=None)[0].reshape(a, a)
    bt_int = np.round(bt)
    assert np.allclose(bt, bt_int, atol=1e-9), "B^T of these points should be integral"
    return at, g, bt_int


def _along_axes(mat: np.ndarray, x: np.ndarray, nd: int, scratch: bool = False,
                keep: bool = False) -> np.ndarray:
    """Apply ``mat`` (j, k) along each of the first ``nd`` axes of ``x`` (k, ..., k, *rest).

    With ``scratch`` the passes write to the scratch slots ``"wa"``/``"wb"`` (``x``
    must not be in them), except the last one when ``keep`` asks for a new array.
    """
    lead = list(x.shape[:nd])
    rest = x.shape[nd:]
    for i in range(nd):
        before, after = math.prod(lead[:i]), math.prod(lead[i + 1 :]) * math.prod(rest)
        shape = (before, mat.shape[0], after)
        if scratch and not (keep and i == nd - 1):
            out = _pool.scratch("wab"[1 + i % 2], shape, x.dtype)
        else:
            out = np.empty(shape, dtype=x.dtype)
        x = np.matmul(mat, x.reshape(before, lead[i], after), out=out)
        lead[i] = mat.shape[0]
    return x.reshape(tuple(lead) + rest)


def _weights_to_points(w: np.ndarray) -> np.ndarray:
    """``U = G g G^T`` for every (o, c): (O, C, 3, ..) -> (a**nd, O, C), computed in float64."""
    nd = w.ndim - 2
    _, g, _ = transforms()
    wt = w.astype(np.float64).transpose(tuple(range(2, 2 + nd)) + (0, 1))
    u = _along_axes(g, wt, nd)
    return u.reshape((-1,) + w.shape[:2]).astype(w.dtype)


def _tiles(size: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-(-(s - 2) // TILE) for s in size)


#: Largest number of dimensions whose transforms use the Kronecker product (see above).
KRON_MAX_DIMS = 2


@functools.cache
def _kron(name: str, nd: int, dtype: np.dtype) -> np.ndarray:
    """``A^T`` or ``B^T`` (``name``) Kronecker-multiplied with itself ``nd`` times:
    it applies the 1-D transform along every axis of a row-major flattened tile."""
    mat = dict(zip("agb", transforms()))[name]
    out = np.ones((1, 1))
    for _ in range(nd):
        out = np.kron(out, mat)
    out = out.astype(dtype)
    out.setflags(write=False)
    return out


def _input_to_points(xq: np.ndarray, bt: np.ndarray, keep: bool = False) -> np.ndarray:
    """``V = B^T d B`` of every overlapping input tile: (B, C, *S) -> (a**nd, C, B*tiles).

    A scratch buffer unless ``keep``."""
    nd = xq.ndim - 2
    a = TILE + 2
    c = xq.shape[1]
    view = _window_tiles(xq, a)  # (B, C, a.., t..)
    if nd <= KRON_MAX_DIMS:  # gathered as (C, B, t.., a..): each tile's values together
        src = view.transpose((1, 0) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd)))
        d = _pool.copy(_pool.scratch("wd", src.shape, xq.dtype), src)
        tiles = d.size // a**nd
        shape = (a**nd, tiles)
        v = np.empty(shape, xq.dtype) if keep else _pool.scratch("wa", shape, xq.dtype)
        np.matmul(_kron("b", nd, xq.dtype), d.reshape(tiles, a**nd).T, out=v)
        return v.reshape(a**nd, c, -1)
    src = view.transpose(tuple(range(2, 2 + nd)) + (1, 0) + tuple(range(2 + nd, 2 + 2 * nd)))
    d = _pool.copy(_pool.scratch("wd", src.shape, xq.dtype), src)
    return _along_axes(bt, d, nd, scratch=True, keep=keep).reshape(a**nd, c, -1)


def _window_tiles(xq: np.ndarray, a: int) -> np.ndarray:
    nd = xq.ndim - 2
    return windows(xq, (a,) * nd, (TILE,) * nd, (1,) * nd)


def _to_tiles(x: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The padded input on the whole tile grid: ``x`` placed after the leading padding in a
    zero array whose far side reaches ``tiles * TILE + 2`` (one copy for both)."""
    need = tuple(t * TILE + 2 for t in _tiles(spec.padded))
    if need == spec.size and not spec.padded_any:
        return x
    xq = np.zeros(x.shape[:2] + need, dtype=x.dtype)
    xq[(slice(None), slice(None)) + tuple(slice(pb, pb + s) for (pb, _), s in
                                          zip(spec.pads, spec.size))] = x
    return xq


def _correlate(xq: np.ndarray, w: np.ndarray, out: tuple[int, ...], b: np.ndarray | None,
               kept: list[np.ndarray] | None) -> np.ndarray:
    """Correlation of ``xq`` (N, C, *tile grid) with the 3-tap ``w`` (O, C, 3, ..) (+ ``b``)
    -> new (N, O, *out); appends each chunk's ``V`` to ``kept`` when given."""
    nd = w.ndim - 2
    n, c = xq.shape[:2]
    o = w.shape[0]
    dtype = xq.dtype
    tiles = _tiles(tuple(s + 2 for s in out))
    at = transforms()[0].astype(dtype)
    bt = transforms()[2].astype(dtype)
    u = _weights_to_points(w)
    y = np.empty((n, o) + out, dtype=dtype)
    a = TILE + 2
    per_sample = a**nd * (c + o) * math.prod(tiles) * dtype.itemsize
    exact = all(t * TILE == s for t, s in zip(tiles, out))
    bias = None if b is None else b.reshape((1, o) + (1,) * (2 * nd))
    for sl in _common.batch_chunks(n, per_sample, _common.WINOGRAD_CHUNK_BYTES):
        nb = sl.stop - sl.start
        v = _input_to_points(xq[sl], bt, keep=kept is not None)
        if kept is not None:
            kept.append(v)
        mm = np.matmul(u, v, out=_pool.scratch("wd", (a**nd, o, v.shape[2]), dtype))
        if nd <= KRON_MAX_DIMS:
            yt = np.matmul(_kron("a", nd, dtype), mm.reshape(a**nd, -1),
                           out=_pool.scratch("wo", (TILE**nd, mm.size // a**nd), dtype))
        else:
            yt = _along_axes(at, mm.reshape((a,) * nd + (o * nb * math.prod(tiles),)), nd,
                             scratch=True)
        # (m.., O, B, t..) -> (B, O, t0, m0, t1, m1, ..)
        yt = yt.reshape((TILE,) * nd + (o, nb) + tiles)
        order = (nd + 1, nd) + tuple(x for i in range(nd) for x in (nd + 2 + i, i))
        src = yt.transpose(order)
        full = (nb, o) + tuple(x for t in tiles for x in (t, TILE))
        if exact:
            _common.store(y[sl].reshape(full), src, bias)
        else:
            tmp = _pool.copy(_pool.scratch("wy", full, dtype), src)
            tmp = tmp.reshape((nb, o) + tuple(t * TILE for t in tiles))
            y[sl] = tmp[(slice(None), slice(None)) + tuple(slice(0, s) for s in out)]
            _common.add_bias(y[sl], b)
    return y


class Winograd:
    """Winograd F(4, 3) in 1, 2 or 3 dimensions (see the module docstring)."""

    name = "winograd"

    def supports(self, spec: ConvSpec) -> bool:
        """3-tap kernels in every dimension (1-D, 2-D, 3-D), stride 1, no dilation, one group."""
        return (spec.nd <= 3 and all(k == 3 for k in spec.kernel)
                and all(s == 1 for s in spec.stride) and all(d == 1 for d in spec.dilation)
                and spec.groups == 1)

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, WinogradSaved | None]:
        """Cross-correlation of ``x`` (N, C, *S), padded by ``spec.pads``, with ``w``."""
        a = TILE + 2
        tiles = _tiles(spec.padded)
        keep = save and spec.n * a**spec.nd * spec.c * math.prod(tiles) * spec.dtype.itemsize \
            <= _common.WINOGRAD_CACHE_BYTES
        kept: list[np.ndarray] | None = [] if keep else None
        y = _correlate(_to_tiles(x, spec), w, spec.out, b, kept)
        return y, (WinogradSaved(kept) if save else None)

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        """``dxp`` as the Winograd correlation of ``gy`` zero-padded by 2 (and onto the tile
        grid) with the kernel flipped and its channel axes swapped; cropped to ``dx``."""
        need = tuple(t * TILE + 2 for t in _tiles(tuple(p + 2 for p in spec.padded)))
        gq = np.zeros(gy.shape[:2] + need, dtype=gy.dtype)
        gq[(slice(None), slice(None)) + tuple(slice(2, 2 + s) for s in spec.out)] = gy
        flipped = _common.flipped_transposed(w, 1)
        dxp = _correlate(gq, flipped, spec.padded, None, None)
        return _common.unpadded(dxp, spec)

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``dg = G^T (sum over tiles of (A dY A^T) V^T) G``, reusing the forward's ``V``."""
        kept = None
        if isinstance(saved, WinogradSaved):
            kept, saved.tiles = saved.tiles, None
        nd, n, c, o = spec.nd, spec.n, spec.c, spec.o
        dtype = spec.dtype
        tiles = _tiles(spec.padded)
        at, g, bt = transforms()
        at_d, bt_d = at.astype(dtype), bt.astype(dtype)
        a = TILE + 2
        xq = None
        # the output gradient on the whole tile grid: zeros past the cropped outputs
        gq = np.zeros((n, o) + tuple(t * TILE for t in tiles), dtype=dtype)
        gq[(slice(None), slice(None)) + tuple(slice(0, s) for s in spec.out)] = gy
        per_sample = a**nd * (c + o) * math.prod(tiles) * dtype.itemsize
        chunks = list(_common.batch_chunks(n, per_sample, _common.WINOGRAD_CHUNK_BYTES))
        if kept is not None and len(kept) != len(chunks):
            kept = None
        du = np.zeros((a**nd, o, c), dtype=dtype)
        for i, sl in enumerate(chunks):
            nb = sl.stop - sl.start
            if kept is not None:
                v = kept[i]
            else:
                if xq is None:
                    xq = _to_tiles(x, spec)
                v = _input_to_points(xq[sl], bt_d)
            split = gq[sl].reshape((nb, o) + tuple(x for t in tiles for x in (t, TILE)))
            if nd <= KRON_MAX_DIMS:
                # (B, O, t0, m0, t1, m1, ..) -> (O, B, t.., m..): each tile's values together
                order = ((1, 0) + tuple(2 + 2 * i for i in range(nd))
                         + tuple(3 + 2 * i for i in range(nd)))
                src = split.transpose(order)
                gt = _pool.copy(_pool.scratch("wy", src.shape, dtype), src)
                rows = gt.size // TILE**nd
                dm = np.matmul(_kron("a", nd, dtype).T, gt.reshape(rows, TILE**nd).T)
                dm = dm.reshape(a**nd, o, -1)
            else:
                # (B, O, t0, m0, t1, m1, ..) -> (m.., O, B, t..)
                order = (tuple(3 + 2 * i for i in range(nd)) + (1, 0)
                         + tuple(2 + 2 * i for i in range(nd)))
                src = split.transpose(order)
                gt = _pool.copy(_pool.scratch("wy", src.shape, dtype), src)
                dm = _along_axes(np.ascontiguousarray(at_d.T), gt, nd).reshape(a**nd, o, -1)
            du += np.matmul(dm, v.transpose(0, 2, 1))
        dw = _along_axes(g.T, du.astype(np.float64).reshape((a,) * nd + (o, c)), nd)
        dw = np.ascontiguousarray(dw.transpose((nd, nd + 1) + tuple(range(nd))), dtype=dtype)
        return dw, _common.bias_grad(spec, gy)


WINOGRAD = Winograd()

"""FFT convolution for long kernels (stride 1, no dilation, one group), via ``scipy.fft``.

By the convolution theorem a circular cross-correlation of length ``F`` is a
pointwise product of spectra: ``corr(x, w)[p] = sum_t w[t] x[(p + t) mod F]``
has transform ``X[f] * conj(W[f])``.  For an input of ``S`` samples and a
``K``-tap kernel the valid outputs ``p <= S - K`` never wrap once ``F >= S``,
so with ``F`` the next fast FFT length ``>= S`` (per axis)::

    y[n, o]  = irfft( sum_c X[n, c] * conj(W[o, c]) )[:S-K+1]
    dx[n, c] = irfft( sum_o GY[n, o] * W[o, c] )[:S]          (full convolution, length S)
    dw[o, c] = irfft( sum_n conj(GY[n, o]) * X[n, c] )[:K]

The channel sums are one small complex matrix product per frequency (batched
``matmul`` over frequencies).  The cost is ``O(S log S)`` per channel pair
instead of ``O(S K)``, so it pays for many taps.  SciPy is optional: without
it :func:`supports` is false and the chooser uses the other algorithms.  The
forward keeps the input spectrum in ``cache`` for the weight gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import _pool

CACHE_BYTES = 128 * 2**20


def _scipy_fft():
    try:
        import scipy.fft
    except ImportError:  # SciPy is not a runtime dependency
        return None
    return scipy.fft


def supports(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
             groups: int, c: int, o: int) -> bool:
    """Stride 1, no dilation, one group, and SciPy importable."""
    return (all(s == 1 for s in stride) and all(d == 1 for d in dilation) and groups == 1
            and _scipy_fft() is not None)


def worthwhile(kernel: Sequence[int], c: int, o: int, size: Sequence[int]) -> bool:
    """Measured: 63- and 127-tap 1-D and 11x11 kernels won, 31 taps lost to GEMM."""
    return math.prod(kernel) >= 48


def _lengths(size: Sequence[int]) -> tuple[int, ...]:
    sfft = _scipy_fft()
    return tuple(sfft.next_fast_len(int(s), real=True) for s in size)


def _spectrum(a: np.ndarray, lengths: tuple[int, ...]) -> np.ndarray:
    """rfft over the trailing axes, zero-padded to ``lengths``; ``(A, B, *F)`` complex."""
    nd = len(lengths)
    return _scipy_fft().rfftn(a, s=lengths, axes=tuple(range(-nd, 0)),
                              workers=_pool.get_threads())


def _inverse(spec: np.ndarray, lengths: tuple[int, ...], keep: Sequence[int]) -> np.ndarray:
    nd = len(lengths)
    full = _scipy_fft().irfftn(spec, s=lengths, axes=tuple(range(-nd, 0)),
                               workers=_pool.get_threads())
    return full[(slice(None), slice(None)) + tuple(slice(0, k) for k in keep)]


def _per_frequency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``out[i, k, f] = sum_j a[i, j, f] * b[j, k, f]`` as a batched matmul over ``f``."""
    i, j = a.shape[:2]
    k = b.shape[1]
    fshape = a.shape[2:]
    f = math.prod(fshape)
    af = np.moveaxis(a.reshape(i, j, f), -1, 0)
    bf = np.moveaxis(b.reshape(j, k, f), -1, 0)
    af = _pool.copy(np.empty(af.shape, dtype=af.dtype), af)
    bf = _pool.copy(np.empty(bf.shape, dtype=bf.dtype), bf)
    out = np.matmul(af, bf)  # (F, i, k)
    return np.ascontiguousarray(np.moveaxis(out, 0, -1)).reshape((i, k) + fshape)


def conv_forward(xp: np.ndarray, w: np.ndarray, stride: Sequence[int], dilation: Sequence[int],
                 groups: int, cache: dict | None = None) -> np.ndarray:
    kernel = w.shape[2:]
    size = xp.shape[2:]
    dtype = np.result_type(xp, w)
    lengths = _lengths(size)
    xs = _spectrum(xp.astype(dtype, copy=False), lengths)
    ws = np.conj(_spectrum(w.astype(dtype, copy=False), lengths))  # (O, C, *F)
    ys = _per_frequency(xs, ws.swapaxes(0, 1))  # (N, O, *F)
    if cache is not None and xs.nbytes <= CACHE_BYTES:
        cache["fft_x"] = xs
    out = tuple(s - k + 1 for s, k in zip(size, kernel))
    return np.ascontiguousarray(_inverse(ys, lengths, out), dtype=dtype)


def conv_input_grad(gy: np.ndarray, w: np.ndarray, padded_shape: Sequence[int],
                    stride: Sequence[int], dilation: Sequence[int], groups: int,
                    cache: dict | None = None) -> np.ndarray:
    dtype = np.result_type(gy, w)
    lengths = _lengths(padded_shape)
    gs = _spectrum(gy.astype(dtype, copy=False), lengths)
    ws = _spectrum(w.astype(dtype, copy=False), lengths)  # (O, C, *F)
    return np.ascontiguousarray(_inverse(_per_frequency(gs, ws), lengths, padded_shape),
                                dtype=dtype)


def conv_weight_grad(xp: np.ndarray, gy: np.ndarray, kernel: Sequence[int],
                     stride: Sequence[int], dilation: Sequence[int], groups: int,
                     cache: dict | None = None) -> np.ndarray:
    dtype = np.result_type(xp, gy)
    lengths = _lengths(xp.shape[2:])
    xs = cache.pop("fft_x", None) if cache is not None else None
    if xs is None or xs.shape[2:] != lengths[:-1] + (lengths[-1] // 2 + 1,):
        xs = _spectrum(xp.astype(dtype, copy=False), lengths)
    gs = np.conj(_spectrum(gy.astype(dtype, copy=False), lengths))  # (N, O, *F)
    dws = _per_frequency(gs.swapaxes(0, 1), xs)  # (O, C, *F)
    return np.ascontiguousarray(_inverse(dws, lengths, kernel), dtype=dtype)

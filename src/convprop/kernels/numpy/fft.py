"""FFT convolution for long kernels (stride 1, no dilation, one group), via ``scipy.fft``.

By the convolution theorem a circular cross-correlation of length ``F`` is a
pointwise product of spectra: ``corr(x, w)[p] = sum_t w[t] x[(p + t) mod F]``
has transform ``X[f] * conj(W[f])``.  For a padded input of ``S`` samples and a
``K``-tap kernel the valid outputs ``p <= S - K`` never wrap once ``F >= S``,
so with ``F`` the next fast FFT length ``>= S`` (per axis)::

    y[n, o]  = irfft( sum_c X[n, c] * conj(W[o, c]) )[:S-K+1]  (+ b)
    dx[n, c] = irfft( sum_o GY[n, o] * W[o, c] )[:S]          (full convolution, length S)
    dw[o, c] = irfft( sum_n conj(GY[n, o]) * X[n, c] )[:K]

The channel sums are one small complex matrix product per frequency (batched
``matmul`` over frequencies).  The cost is ``O(S log S)`` per channel pair
instead of ``O(S K)``, so it pays for many taps.  SciPy is optional: without
it :meth:`Fft.supports` is false and the chooser uses the other algorithms.  The
forward keeps the input spectrum (:class:`FftSaved`) for the weight gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _pool
from ..spec import ConvSpec, Saved
from . import _common


@dataclass
class FftSaved(Saved):
    """The padded input's spectrum ``(N, C, *F)``, for :meth:`Fft.weight_grad` (released there)."""

    spectrum: np.ndarray | None


def _scipy_fft():
    try:
        import scipy.fft
    except ImportError:  # SciPy is not a runtime dependency
        return None
    return scipy.fft


def _lengths(size: tuple[int, ...]) -> tuple[int, ...]:
    sfft = _scipy_fft()
    return tuple(sfft.next_fast_len(int(s), real=True) for s in size)


def _spectrum(a: np.ndarray, lengths: tuple[int, ...]) -> np.ndarray:
    """rfft over the trailing axes, zero-padded to ``lengths``; ``(A, B, *F)`` complex."""
    nd = len(lengths)
    return _scipy_fft().rfftn(a, s=lengths, axes=tuple(range(-nd, 0)),
                              workers=_pool.get_threads())


def _inverse(spec: np.ndarray, lengths: tuple[int, ...], keep: tuple[slice, ...]) -> np.ndarray:
    nd = len(lengths)
    full = _scipy_fft().irfftn(spec, s=lengths, axes=tuple(range(-nd, 0)),
                               workers=_pool.get_threads())
    return full[(slice(None), slice(None)) + keep]


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


class Fft:
    """Convolution by FFT (see the module docstring)."""

    name = "fft"

    def supports(self, spec: ConvSpec) -> bool:
        """Stride 1, no dilation, one group, and SciPy importable."""
        return (all(s == 1 for s in spec.stride) and all(d == 1 for d in spec.dilation)
                and spec.groups == 1 and _scipy_fft() is not None)

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, FftSaved | None]:
        lengths = _lengths(spec.padded)
        xs = _spectrum(_common.padded(x, spec.pads, slot="fft_x"), lengths)
        ws = np.conj(_spectrum(w, lengths))  # (O, C, *F)
        ys = _per_frequency(xs, ws.swapaxes(0, 1))  # (N, O, *F)
        y = np.ascontiguousarray(_inverse(ys, lengths, tuple(slice(0, o) for o in spec.out)),
                                 dtype=spec.dtype)
        keep = save and xs.nbytes <= _common.FFT_CACHE_BYTES
        return _common.add_bias(y, b), (FftSaved(xs if keep else None) if save else None)

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        """The full convolution, cropped to the unpadded input in the inverse transform."""
        lengths = _lengths(spec.padded)
        gs = _spectrum(gy, lengths)
        ws = _spectrum(w, lengths)  # (O, C, *F)
        keep = tuple(slice(pb, pb + s) for (pb, _), s in zip(spec.pads, spec.size))
        return np.ascontiguousarray(_inverse(_per_frequency(gs, ws), lengths, keep),
                                    dtype=spec.dtype)

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        lengths = _lengths(spec.padded)
        xs = None
        if isinstance(saved, FftSaved):
            xs, saved.spectrum = saved.spectrum, None
        if xs is None:
            xs = _spectrum(_common.padded(x, spec.pads, slot="fft_x"), lengths)
        gs = np.conj(_spectrum(gy, lengths))  # (N, O, *F)
        dws = _per_frequency(gs.swapaxes(0, 1), xs)  # (O, C, *F)
        dw = _inverse(dws, lengths, tuple(slice(0, k) for k in spec.kernel))
        return np.ascontiguousarray(dw, dtype=spec.dtype), _common.bias_grad(spec, gy)


FFT = Fft()

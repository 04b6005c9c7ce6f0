"""The Tensor's reductions, each with its backward beside it (a base class of Tensor).

Conventions, all PyTorch's: ``dim`` may be an int, a tuple or None (every axis),
``keepdim`` keeps reduced axes with size 1; NumPy's ``axis``/``keepdims`` are
accepted as aliases, as torch accepts them.  Gradients where the function has a
kink: ``max``/``min`` with a ``dim`` send the gradient to the index they return
(the first extreme value); ``max()``/``amax`` without picking an index split it
evenly among ties.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._dtypes import to_dtype
from ._tensor_ops import _dim, _dims, linear_map

if TYPE_CHECKING:
    from .autograd import Tensor


class ValuesIndices(NamedTuple):
    """What ``max``/``min`` with a ``dim`` return (``torch.return_types.max``)."""

    values: Tensor
    indices: Tensor


def _alias(dim: Any, keepdim: Any, axis: Any, keepdims: Any) -> tuple[Any, bool]:
    """Merge NumPy's ``axis``/``keepdims`` spellings into torch's ``dim``/``keepdim``."""
    if axis is not None:
        if dim is not None:
            raise TypeError("give dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def _all_if_empty(dim: Any) -> Any:
    """torch's ``amax(dim=())``: an empty dim list reduces every axis."""
    return None if isinstance(dim, (tuple, list)) and not dim else dim


def _keep(g: np.ndarray, axes: tuple[int, ...], keepdim: bool) -> np.ndarray:
    """An output gradient with its reduced axes restored as size 1."""
    return g if keepdim or not axes or not g.ndim else np.expand_dims(g, axes)


def _kept(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with the reduced ``axes`` kept as size 1."""
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _keep_graph(g: Tensor, shape: tuple[int, ...], axes: tuple[int, ...]) -> Tensor:
    """:func:`_keep` for a gradient that carries a graph (``create_graph=True``)."""
    return g.reshape(_kept(shape, axes))


def _same(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``a == ref``, with NaN matching NaN (a NaN extreme is its own argmax)."""
    with np.errstate(invalid="ignore"):
        return (a == ref) | (np.isnan(a) & np.isnan(ref)) if a.dtype.kind == "f" else a == ref


class ReductionOps:
    """Sums, means, variances, norms and extremes of :class:`Tensor`."""

    __slots__ = ()
    data: np.ndarray

    # ------------------------------------------------------------------ sums
    def sum(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None,
            axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """Sum over ``dim`` (all axes when None); bools and ints sum to int64, as torch."""
        dim, keepdim = _alias(dim, keepdim, axis, keepdims)
        a = self.data if dtype is None else self.data.astype(to_dtype(dtype))
        if a.dtype.kind in "biu":
            a = a.astype(np.int64)
        axes, shape = _dims(dim, self.ndim), self.shape
        out = np.asarray(a.sum(axis=axes, keepdims=keepdim))
        return self._wrap(out, (self,),
                          lambda g: (np.broadcast_to(_keep(g, axes, keepdim), shape),),
                          lambda g: (_keep_graph(g, shape, axes).expand(shape),))

    def mean(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None,
             axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """Mean over ``dim``; NaN over an empty axis.

        Raises:
            TypeError: for an integer or bool tensor without a floating ``dtype=``, as torch.
        """
        dim, keepdim = _alias(dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.to(dtype)
        if x.dtype.kind != "f":
            raise TypeError(f"mean needs a floating tensor, got dtype {x.dtype}; "
                            "pass dtype= or convert with .float()")
        axes = _dims(dim, self.ndim)
        count = math.prod(self.shape[a] for a in axes)
        return x.sum(axes, keepdim) * (1.0 / count if count else np.nan)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        """``log(sum(exp(x)))`` over ``dim``, shifted by the maximum so it cannot overflow.

        The gradient is the softmax over ``dim``: ``g * exp(x - out)``.
        """
        a = self._floating()
        axes = _dims(dim, self.ndim)
        m = a.max(axis=axes, keepdims=True) if a.size else np.zeros((1,) * a.ndim, a.dtype)
        m = np.where(np.isfinite(m), m, 0)  # all -inf (or an inf) must not give inf - inf
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            out_keep = np.log(np.exp(a - m).sum(axis=axes, keepdims=True)) + m
        out = out_keep if keepdim else np.squeeze(out_keep, axes)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            with np.errstate(invalid="ignore", over="ignore"):
                return (_keep(g, axes, keepdim) * np.exp(a - out_keep),)

        def double(g: Tensor) -> tuple[Tensor]:
            lse = self.logsumexp(axes, keepdim=True)
            return (_keep_graph(g, self.shape, axes) * (self - lse).exp(),)

        return self._wrap(np.asarray(out), (self,), backward, double)

    def var(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None) -> Tensor:
        """Variance over ``dim``: ``sum((x - mean)^2) / max(0, N - correction)``.

        ``correction`` defaults to 1 (Bessel); ``unbiased=False`` means 0.  Zero
        degrees of freedom give inf or NaN, as in PyTorch.
        """
        if isinstance(dim, bool):  # torch's var(unbiased) overload
            dim, unbiased = None, dim
        if unbiased is not None and correction is not None:
            raise TypeError("var: give unbiased or correction, not both")
        c = (1 if unbiased is None or unbiased else 0) if correction is None else correction
        a = self._floating()
        axes = _dims(dim, self.ndim)
        n = math.prod(self.shape[ax] for ax in axes)
        d = a - (a.mean(axis=axes, keepdims=True) if a.size else 0)
        denom = max(0, n - c)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (d * d).sum(axis=axes, keepdims=keepdim) / a.dtype.type(denom)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            with np.errstate(divide="ignore", invalid="ignore"):
                return (_keep(g, axes, keepdim) * (2 / a.dtype.type(denom)) * d,)

        def double(g: Tensor) -> tuple[Tensor]:
            dev = self - self.mean(axes, keepdim=True)
            return (_keep_graph(g, self.shape, axes) * (2 / a.dtype.type(denom)) * dev,)

        return self._wrap(np.asarray(out), (self,), backward, double)

    def std(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None) -> Tensor:
        """Square root of :meth:`var`; the gradient is 0 where the deviation is 0, as torch."""
        v = self.var(dim, unbiased, keepdim, correction=correction)
        out = np.sqrt(v.data)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            with np.errstate(divide="ignore", invalid="ignore"):
                return (np.where(out == 0, 0, g / (2 * out)).astype(g.dtype, copy=False),)

        def double(g: Tensor) -> tuple[Tensor]:
            safe = v + self._wrap((out == 0).astype(out.dtype))  # no 0/0 where out == 0
            return ((g / (2 * safe.sqrt())).where(out != 0, 0.0),)

        return self._wrap(out, (v,), backward, double)

    def norm(self, p: float | str = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
        """The vector ``p``-norm over ``dim`` (every axis when None): ``(sum |x|^p)^(1/p)``.

        ``p`` is ``'fro'`` (the 2-norm), any real number, ``inf`` (max ``|x|``),
        ``-inf`` (min ``|x|``) or 0 (the count of non-zeros).  Gradients follow
        PyTorch's: 0 where the norm is 0, split evenly among ties for ``±inf``.
        """
        if p == "fro":
            p = 2.0
        if isinstance(p, str) or not isinstance(p, (int, float, np.number)):
            raise ValueError(f"norm: p must be 'fro' or a number, got {p!r} "
                             "(matrix norms such as 'nuc' are not supported)")
        a = self._floating()
        axes = _dims(dim, self.ndim)
        ab = np.abs(a)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if p == math.inf:
                out_keep = ab.max(axis=axes, keepdims=True)
            elif p == -math.inf:
                out_keep = ab.min(axis=axes, keepdims=True)
            elif p == 0:
                out_keep = (a != 0).sum(axis=axes, keepdims=True).astype(a.dtype)
            else:
                out_keep = (ab**p).sum(axis=axes, keepdims=True) ** (1.0 / p)
        out = out_keep if keepdim else np.squeeze(out_keep, axes)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            gk = _keep(g, axes, keepdim)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                if p == 0:
                    return (np.zeros_like(a),)
                if abs(p) == math.inf:
                    tie = _same(ab, out_keep)
                    return (np.sign(a) * tie * (gk / tie.sum(axis=axes, keepdims=True)),)
                if p < 1:
                    scaled = np.where(a == 0, 0, np.sign(a) * ab ** (p - 1))
                    return (scaled * gk * out_keep ** (1 - p),)
                scaled = np.sign(a) * ab ** (p - 1) if p < 2 else a * ab ** (p - 2)
                return (scaled * np.where(out_keep == 0, 0, gk / out_keep ** (p - 1)),)

        def double(g: Tensor) -> tuple[Tensor]:
            gk = _keep_graph(g, self.shape, axes)
            if p == 0:
                return (gk * self._wrap(np.zeros_like(a)),)
            if abs(p) == math.inf:
                tie = _same(ab, out_keep)
                return (gk * self._wrap(np.sign(a) * tie / tie.sum(axis=axes, keepdims=True)),)
            zero = out_keep == 0
            # the norm with 1 where it is 0, so masked-out positions divide by nothing small
            nk = self.norm(p, axes, keepdim=True) + self._wrap(zero.astype(a.dtype))
            if p == 2:
                return ((gk * self / nk).where(~zero, 0.0),)
            sign = self._wrap(np.sign(a))
            powered = sign * self.abs() ** (p - 1)
            if p < 1:
                powered = powered.where(a != 0, 0.0)
                return (powered * gk * nk ** (1 - p),)
            return ((powered * gk / nk ** (p - 1)).where(~zero, 0.0),)

        return self._wrap(np.asarray(out), (self,), backward, double)

    # ----------------------------------------------------------- extremes
    def _extreme(self, which: str, dim: Any, keepdim: bool) -> Tensor | ValuesIndices:
        a = self.data
        if dim is None:
            if not a.size:
                raise ValueError(f"{which}(): the tensor is empty; give a dim to reduce over")
            return self._extreme_all(which, _dims(None, self.ndim), False)
        if not isinstance(dim, (int, np.integer)):
            return self.maximum(dim) if which == "max" else self.minimum(dim)
        d = _dim(dim, self.ndim)
        if not self.ndim:
            return ValuesIndices(self._wrap(a.copy(), (self,), lambda g: (g,), lambda g: (g,)),
                                 self._wrap(np.zeros((), np.int64)))
        if a.shape[d] == 0:
            raise ValueError(f"{which}(): cannot reduce over dim {dim} of size 0")
        idx = (np.argmax if which == "max" else np.argmin)(a, axis=d, keepdims=True)
        values = np.take_along_axis(a, idx, d)
        shape = self.shape

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            full = np.zeros(shape, g.dtype)
            np.put_along_axis(full, idx, g if keepdim else np.expand_dims(g, d), d)
            return (full,)

        def gather(full: np.ndarray) -> np.ndarray:  # the adjoint of the scatter above
            picked = np.take_along_axis(full, idx, d)
            return picked if keepdim else np.squeeze(picked, d)

        indices = idx.astype(np.int64)
        if not keepdim:
            values, indices = np.squeeze(values, d), np.squeeze(indices, d)
        def double(g: Tensor) -> tuple[Tensor]:
            return (linear_map(g, lambda h: backward(h)[0], gather),)

        return ValuesIndices(self._wrap(values, (self,), backward, double), self._wrap(indices))

    def _extreme_all(self, which: str, axes: tuple[int, ...], keepdim: bool) -> Tensor:
        """amax/amin over ``axes``: the gradient is split evenly among tied extremes."""
        a = self.data
        if any(a.shape[ax] == 0 for ax in axes):
            raise ValueError(f"{which}(): cannot reduce over an axis of size 0")
        with np.errstate(invalid="ignore"):  # NaN wins, as in torch, without a warning
            out_keep = (a.max if which in ("max", "amax") else a.min)(axis=axes, keepdims=True)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            tie = _same(a, out_keep)
            return (tie * (_keep(g, axes, keepdim) / tie.sum(axis=axes, keepdims=True)),)

        def double(g: Tensor) -> tuple[Tensor]:
            tie = _same(a, out_keep)
            share = self._wrap((tie / tie.sum(axis=axes, keepdims=True)).astype(a.dtype))
            return (_keep_graph(g, self.shape, axes) * share,)

        out = out_keep if keepdim else np.squeeze(out_keep, axes)
        return self._wrap(np.asarray(out), (self,), backward, double)

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        """The largest element; with an int ``dim``, ``(values, indices)`` along it;
        with a tensor, the elementwise :meth:`maximum`."""
        return self._extreme("max", dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        """The smallest element; see :meth:`max`."""
        return self._extreme("min", dim, keepdim)

    def amax(self, dim: Any = (), keepdim: bool = False) -> Tensor:
        """Maximum over ``dim`` (every axis for ``()`` or None); ties share the gradient."""
        return self._extreme_all("amax", _dims(_all_if_empty(dim), self.ndim), keepdim)

    def amin(self, dim: Any = (), keepdim: bool = False) -> Tensor:
        """Minimum over ``dim``; see :meth:`amax`."""
        return self._extreme_all("amin", _dims(_all_if_empty(dim), self.ndim), keepdim)

    def _arg(self, fn: Any, dim: Any, keepdim: bool) -> Tensor:
        a = self.data
        if dim is None:
            if not a.size:
                raise ValueError("argmax/argmin of an empty tensor")
            out = np.asarray(fn(a))
            return self._wrap(out.reshape((1,) * a.ndim) if keepdim else out)
        d = _dim(dim, self.ndim)
        if self.ndim and a.shape[d] == 0:
            raise ValueError(f"argmax/argmin: cannot reduce over dim {dim} of size 0")
        return self._wrap(np.asarray(fn(a, axis=d, keepdims=keepdim) if self.ndim else 0,
                                     dtype=np.int64))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index (int64) of the first largest element over ``dim``, or of the flattened tensor."""
        return self._arg(np.argmax, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index (int64) of the first smallest element; see :meth:`argmax`."""
        return self._arg(np.argmin, dim, keepdim)

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Whether any element over ``dim`` is non-zero (bool)."""
        return self._wrap(np.asarray(self.data.any(axis=_dims(dim, self.ndim), keepdims=keepdim)))

    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Whether every element over ``dim`` is non-zero (bool)."""
        return self._wrap(np.asarray(self.data.all(axis=_dims(dim, self.ndim), keepdims=keepdim)))

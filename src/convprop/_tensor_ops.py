"""The Tensor's reductions, shape ops, indexing and joins, each with its backward beside it.

:class:`TensorOps` is a base class of :class:`convprop.Tensor`; it imports nothing
from :mod:`convprop.autograd` (``self._wrap`` builds results, ``self._operands``
promotes a second operand), so the two modules form no cycle.

Conventions, all PyTorch's: ``dim`` may be an int, a tuple or None (every axis),
``keepdim`` keeps reduced axes with size 1; NumPy's ``axis``/``keepdims`` are
accepted as aliases, as torch accepts them.  Gradient conventions where the
function has a kink: ``max``/``min`` with a ``dim`` send the gradient to the
index they return (the first extreme value); ``max()``/``amax`` without picking
an index split it evenly among ties; ``maximum`` splits a tie in halves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.exceptions import AxisError

from ._dtypes import _is_scalar, result_type, to_dtype

if TYPE_CHECKING:
    from .autograd import Tensor


class ValuesIndices(NamedTuple):
    """What ``max``/``min`` with a ``dim`` return (``torch.return_types.max``)."""

    values: Tensor
    indices: Tensor


def _dim(d: Any, ndim: int, name: str = "dim", extra: int = 0) -> int:
    """One axis in ``[-ndim - extra, ndim + extra)``, made non-negative."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(d).__name__}")
    span = max(ndim + extra, 1)  # a 0-d tensor accepts dim 0 and -1, as torch
    if not -span <= d < span:
        raise AxisError(f"{name} {d} is out of range for a tensor with {ndim} dimension(s) "
                        f"(expected a value in [{-span}, {span - 1}])")
    return int(d) % span


def _dims(dim: Any, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, an int, or a sequence) as sorted non-negative axes; None is every axis."""
    if dim is None:
        return tuple(range(ndim))
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    out = tuple(sorted({_dim(d, ndim) for d in dims}))
    if len(out) != len(dims):
        raise ValueError(f"dim {dim} names an axis more than once")
    return out if ndim else ()


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
    return g if keepdim or not axes else np.expand_dims(g, axes)


def _same(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``a == ref``, with NaN matching NaN (a NaN extreme is its own argmax)."""
    with np.errstate(invalid="ignore"):
        return (a == ref) | (np.isnan(a) & np.isnan(ref)) if a.dtype.kind == "f" else a == ref


def _tensor_index(index: Any) -> Any:
    """An index with Tensors and lists turned into arrays; float indices are an error."""
    if isinstance(index, tuple):
        return tuple(_tensor_index(i) for i in index)
    if hasattr(index, "_backward"):  # a Tensor
        index = index.data
    elif isinstance(index, list):
        index = np.asarray(index)
    if isinstance(index, np.ndarray) and index.dtype.kind not in "biu":
        raise IndexError(f"tensors used as indices must be integer or bool, got dtype {index.dtype}")
    return index


def _is_advanced(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, np.ndarray) for i in items)


class TensorOps:
    """Reductions, shape ops, indexing, ``where``/``clamp`` and joins of :class:`Tensor`."""

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
                          lambda g: (np.broadcast_to(_keep(g, axes, keepdim), shape),))

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

        return self._wrap(np.asarray(out), (self,), backward)

    def var(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None) -> Tensor:
        """Variance over ``dim``: ``sum((x - mean)^2) / max(0, N - correction)``.

        ``correction`` defaults to 1 (Bessel); ``unbiased=False`` means 0.  Zero
        degrees of freedom give inf or NaN, as in PyTorch.
        """
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

        return self._wrap(np.asarray(out), (self,), backward)

    def std(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None) -> Tensor:
        """Square root of :meth:`var`; the gradient is 0 where the deviation is 0, as torch."""
        v = self.var(dim, unbiased, keepdim, correction=correction)
        out = np.sqrt(v.data)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            with np.errstate(divide="ignore", invalid="ignore"):
                return (np.where(out == 0, 0, g / (2 * out)).astype(g.dtype, copy=False),)

        return self._wrap(out, (v,), backward)

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

        return self._wrap(np.asarray(out), (self,), backward)

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
            return ValuesIndices(self._wrap(a.copy(), (self,), lambda g: (g,)),
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

        if not keepdim:
            values, idx = np.squeeze(values, d), np.squeeze(idx, d)
        return ValuesIndices(self._wrap(values, (self,), backward), self._wrap(idx.astype(np.int64)))

    def _extreme_all(self, which: str, axes: tuple[int, ...], keepdim: bool) -> Tensor:
        """amax/amin over ``axes``: the gradient is split evenly among tied extremes."""
        a = self.data
        if any(a.shape[ax] == 0 for ax in axes):
            raise ValueError(f"{which}(): cannot reduce over an axis of size 0")
        out_keep = (a.max if which in ("max", "amax") else a.min)(axis=axes, keepdims=True)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            tie = _same(a, out_keep)
            return (tie * (_keep(g, axes, keepdim) / tie.sum(axis=axes, keepdims=True)),)

        out = out_keep if keepdim else np.squeeze(out_keep, axes)
        return self._wrap(np.asarray(out), (self,), backward)

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

    def _pairwise(self, other: Any, take_self: Any) -> Tensor:
        o, a, b = self._operands(other)
        out = np.where(take_self(a, b) | np.isnan(a), a, b)
        out = np.where(np.isnan(b), b, out)

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            half = np.where(a == b, g / 2, g)
            return (np.where(take_self(b, a) & (a != b), 0, half),
                    np.where(take_self(a, b) & (a != b), 0, half))

        return self._wrap(out, (self, o), backward)

    def maximum(self, other: Any) -> Tensor:
        """Elementwise larger value (NaN wins); a tie sends half the gradient each way."""
        return self._pairwise(other, np.greater)

    def minimum(self, other: Any) -> Tensor:
        """Elementwise smaller value; see :meth:`maximum`."""
        return self._pairwise(other, np.less)

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Whether any element over ``dim`` is non-zero (bool)."""
        return self._wrap(np.asarray(self.data.any(axis=_dims(dim, self.ndim), keepdims=keepdim)))

    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Whether every element over ``dim`` is non-zero (bool)."""
        return self._wrap(np.asarray(self.data.all(axis=_dims(dim, self.ndim), keepdims=keepdim)))

    # ------------------------------------------------------- where and clamp
    def where(self, condition: Any, other: Any) -> Tensor:
        """``self`` where ``condition``, else ``other`` (``torch.where(condition, self, other)``)."""
        c = condition.data if hasattr(condition, "_backward") else np.asarray(condition)
        if c.dtype != np.bool_:
            raise TypeError(f"where: condition must be a bool tensor, got dtype {c.dtype}")
        o, a, b = self._operands(other)
        return self._wrap(np.where(c, a, b), (self, o),
                          lambda g: (np.where(c, g, 0), np.where(c, 0, g)))

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        """Limit every element to ``[min, max]`` (numbers or tensors, broadcast).

        ``out = minimum(maximum(x, min), max)``, so ``min > max`` gives ``max`` as in
        PyTorch.  The gradient goes to ``x`` where ``min <= x <= max``, else to the
        bound that was taken; NaN stays NaN.
        """
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        bounds = [b if b is None or _is_scalar(b) or hasattr(b, "_backward") else np.asarray(b)
                  for b in (min, max)]
        dt = result_type(self, *(b for b in bounds if b is not None))
        a = self.data.astype(dt, copy=False)
        parents = [self]
        lo_d = hi_d = None
        for k, b in enumerate(bounds):
            if b is None:
                continue
            t = b if hasattr(b, "_backward") else self._wrap(np.asarray(b))
            parents.append(t)
            if k == 0:
                lo_d = t.data.astype(dt, copy=False)
            else:
                hi_d = t.data.astype(dt, copy=False)
        with np.errstate(invalid="ignore"):
            m = a if lo_d is None else np.maximum(a, lo_d)
            out = m if hi_d is None else np.minimum(m, hi_d)
            to_hi = np.zeros(out.shape, bool) if hi_d is None else m > hi_d
            to_x = ~to_hi & (True if lo_d is None else a >= lo_d)
            to_lo = None if lo_d is None else ~to_hi & (a < lo_d)

        def backward(g: np.ndarray) -> tuple[np.ndarray, ...]:
            grads = [np.where(to_x, g, 0)]
            if lo_d is not None:
                grads.append(np.where(to_lo, g, 0))
            if hi_d is not None:
                grads.append(np.where(to_hi, g, 0))
            return tuple(grads)

        return self._wrap(out, tuple(parents), backward)

    clip = clamp

    # ----------------------------------------------------------------- shape
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """The same elements in a new shape (one entry may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        old = self.shape
        try:
            out = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: shape {tuple(shape)} is invalid for a tensor of "
                             f"{self.data.size} elements (shape {old})") from None
        return self._wrap(out, (self,), lambda g: (g.reshape(old),))

    view = reshape

    def view_as(self, other: Any) -> Tensor:
        return self.reshape(other.shape)

    reshape_as = view_as

    def contiguous(self) -> Tensor:
        return self

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge axes ``start_dim..end_dim`` into one."""
        s = self.shape
        if not s:
            return self.reshape(1)
        start, end = _dim(start_dim, len(s), "start_dim"), _dim(end_dim, len(s), "end_dim")
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return self.reshape(s[:start] + (math.prod(s[start : end + 1]),) + s[end + 1 :])

    def unflatten(self, dim: int, sizes: Sequence[int]) -> Tensor:
        """Split axis ``dim`` into ``sizes`` (one may be -1); the inverse of :meth:`flatten`."""
        d = _dim(dim, self.ndim)
        sizes = tuple(int(s) for s in sizes)
        n = self.shape[d]
        known = math.prod(s for s in sizes if s != -1)
        if sizes.count(-1) > 1 or (-1 not in sizes and known != n) or (
                -1 in sizes and (known == 0 or n % known)):
            raise ValueError(f"unflatten: sizes {sizes} do not multiply to dim {dim}'s size {n}")
        return self.reshape(self.shape[:d] + sizes + self.shape[d + 1 :])

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        """Reorder the axes: output axis ``i`` is input axis ``dims[i]``."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        order = tuple(_dim(d, self.ndim) for d in dims)
        if sorted(order) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {tuple(dims)} must be a permutation of the "
                             f"{self.ndim} axes")
        inverse = tuple(np.argsort(order))
        return self._wrap(self.data.transpose(order), (self,), lambda g: (g.transpose(inverse),))

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes (PyTorch's ``transpose``; use :meth:`permute` for a full order)."""
        dims = list(range(self.ndim))
        d0, d1 = _dim(dim0, self.ndim, "dim0"), _dim(dim1, self.ndim, "dim1")
        if not self.ndim:
            return self
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return self.permute(dims)

    swapaxes = transpose

    def t(self) -> Tensor:
        """Transpose a matrix (a tensor of at most 2 dimensions is returned as such)."""
        if self.ndim > 2:
            raise ValueError(f"t() needs a tensor of at most 2 dimensions, got {self.ndim}")
        return self.transpose(0, -1) if self.ndim == 2 else self

    @property
    def T(self) -> Tensor:
        """Every axis reversed."""
        return self.permute(tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> Tensor:
        """The last two axes swapped (a batch of matrices transposed)."""
        if self.ndim < 2:
            raise ValueError(f"mT needs at least 2 dimensions, got {self.ndim}")
        return self.transpose(-2, -1)

    def squeeze(self, dim: Any = None) -> Tensor:
        """Drop axes of size 1 (only those in ``dim`` when given; others are kept)."""
        axes = tuple(a for a in _dims(dim, self.ndim) if self.shape[a] == 1)
        return self.reshape(tuple(s for i, s in enumerate(self.shape) if i not in axes))

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert an axis of size 1 at ``dim`` (in ``[-ndim - 1, ndim]``)."""
        d = _dim(dim, self.ndim, extra=1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def expand(self, *sizes: int | Sequence[int]) -> Tensor:
        """Broadcast to ``sizes`` without copying (-1 keeps an axis; new axes go in front).

        The gradient sums over the broadcast axes.
        """
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: {len(sizes)} sizes given for a tensor of {self.ndim} dims")
        shape = []
        for i, s in enumerate(sizes):
            own = self.shape[i - lead] if i >= lead else None
            if s == -1:
                if own is None:
                    raise ValueError(f"expand: -1 is not allowed for the new leading dim {i}")
                s = own
            elif own is not None and own != 1 and own != s:
                raise ValueError(f"expand: the expanded size {s} must match the existing size "
                                 f"{own} at non-singleton dim {i}")
            shape.append(int(s))
        return self._wrap(np.broadcast_to(self.data, tuple(shape)), (self,), lambda g: (g,))

    def expand_as(self, other: Any) -> Tensor:
        return self.expand(other.shape)

    def repeat(self, *sizes: int | Sequence[int]) -> Tensor:
        """Tile the tensor ``sizes[i]`` times along axis ``i`` (new axes go in front)."""
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        reps = tuple(int(s) for s in sizes)
        if len(reps) < self.ndim or any(r < 0 for r in reps):
            raise ValueError(f"repeat: need one non-negative count per dim (at least {self.ndim}), "
                             f"got {reps}")
        base = (1,) * (len(reps) - self.ndim) + self.shape
        out = np.tile(self.data.reshape(base), reps)
        interleaved = tuple(x for pair in zip(reps, base) for x in pair)
        shape = self.shape

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            summed = g.reshape(interleaved).sum(axis=tuple(range(0, 2 * len(reps), 2)))
            return (summed.reshape(shape),)

        return self._wrap(out, (self,), backward)

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        """Elements ``start .. start + length - 1`` along ``dim``."""
        d = _dim(dim, self.ndim)
        n = self.shape[d]
        start = start + n if start < 0 else start
        if not 0 <= start <= n or length < 0 or start + length > n:
            raise ValueError(f"narrow: start {start} and length {length} exceed dim {dim}'s "
                             f"size {n}")
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def split(self, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
        """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the
        listed sizes, which must add up to the axis length."""
        d = _dim(dim, self.ndim)
        n = self.shape[d]
        if isinstance(split_size_or_sections, (int, np.integer)):
            size = int(split_size_or_sections)
            if size <= 0 and not (size == 0 and n == 0):
                raise ValueError(f"split: split_size must be positive, got {size}")
            sizes = [min(size, n - s) for s in range(0, n, size)] if n else [0]
        else:
            sizes = [int(s) for s in split_size_or_sections]
            if sum(sizes) != n or any(s < 0 for s in sizes):
                raise ValueError(f"split: sections {sizes} must be non-negative and add up to "
                                 f"dim {dim}'s size {n}")
        starts = np.cumsum([0] + sizes[:-1])
        return tuple(self.narrow(d, int(s), k) for s, k in zip(starts, sizes))

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """At most ``chunks`` pieces along ``dim``, each ``ceil(n / chunks)`` long but the last."""
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        n = self.shape[_dim(dim, self.ndim)]
        return self.split(max(-(-n // chunks), 1), dim) if n else self.split([0] * 1, dim)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        """The slices along ``dim``, each without that axis."""
        d = _dim(dim, self.ndim)
        return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))

    # --------------------------------------------------------------- indexing
    def __getitem__(self, index: Any) -> Tensor:
        """Basic and advanced (integer or bool array) indexing, with NumPy's (and
        PyTorch's) rules; the gradient is scattered back, adding repeated indices."""
        index = _tensor_index(index)
        shape = self.shape
        advanced = _is_advanced(index)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            full = np.zeros(shape, dtype=g.dtype)
            if advanced:
                np.add.at(full, index, g)
            else:
                full[index] = g
            return (full,)

        return self._wrap(np.asarray(self.data[index]), (self,), backward)

    def __setitem__(self, index: Any, value: Any) -> None:
        """Assign in place, as ``tensor[index] = value`` in PyTorch.

        Without gradients involved the data is written in place (tensors that
        share it, such as basic-index views, see the change).  When ``value`` or
        ``self`` needs gradients, ``self`` becomes a new graph node
        ``put(old self, index, value)``: the old contents get the gradient outside
        ``index`` and ``value`` the gradient inside it.  Ops that used ``self``
        before the assignment refuse to run backward afterwards (its contents
        changed under them), as PyTorch's version counter does.

        Raises:
            RuntimeError: assigning into a leaf that requires grad (outside ``no_grad``).
        """
        index = _tensor_index(index)
        from_tensor = hasattr(value, "_backward")
        v = value.data if from_tensor else np.asarray(value)
        if v.dtype.kind not in "biuf":
            raise TypeError(f"cannot assign values of dtype {v.dtype} into a tensor")
        if v.dtype.kind == "f" and self.dtype.kind != "f":
            raise TypeError(f"cannot assign floating values into a {self.dtype} tensor")
        grad_on = self._recording() and (self.requires_grad or (from_tensor and value.requires_grad))
        self._version += 1
        if not grad_on:
            self.data[index] = v
            return
        if self.requires_grad and self.is_leaf:
            raise RuntimeError("a leaf tensor that requires grad cannot be assigned into in place; "
                               "assign under convprop.no_grad() or into a clone()")
        old = self._detached_copy_of_history()
        new = self.data.copy()  # earlier ops keep the array they saw
        new[index] = v
        val = value if from_tensor else self._wrap(v)

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            outside = g.copy()
            outside[index] = 0
            return outside, np.asarray(g[index])

        self._rebase(new, (old, val), backward)

    # ------------------------------------------------------------------ joins
    @staticmethod
    def _join(tensors: list[Tensor], dim: int, new_axis: bool) -> Tensor:
        """``cat`` (``new_axis=False``) or ``stack`` of ``tensors``, dtypes promoted."""
        first = tensors[0]
        if new_axis:
            d = _dim(dim, first.ndim, extra=1)
            if any(t.shape != first.shape for t in tensors):
                raise ValueError(f"stack: every tensor must have the same shape, got "
                                 f"{[t.shape for t in tensors]}")
        else:
            if any(t.ndim == 0 for t in tensors):
                raise ValueError("cat: zero-dimensional tensors cannot be concatenated")
            d = _dim(dim, first.ndim)
            for t in tensors:
                if t.ndim != first.ndim or t.shape[:d] + t.shape[d + 1:] != (
                        first.shape[:d] + first.shape[d + 1:]):
                    raise ValueError(f"cat: tensors must match except in dim {dim}, got "
                                     f"{[t.shape for t in tensors]}")
        dt = result_type(*tensors)
        arrays = [t.data.astype(dt, copy=False) for t in tensors]
        out = np.stack(arrays, axis=d) if new_axis else np.concatenate(arrays, axis=d)
        bounds = np.cumsum([0] + [1 if new_axis else t.shape[d] for t in tensors])

        def backward(g: np.ndarray) -> tuple[np.ndarray, ...]:
            pieces = []
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                piece = g[(slice(None),) * d + (slice(lo, hi),)]
                pieces.append(piece.squeeze(d) if new_axis else piece)
            return tuple(pieces)

        return first._wrap(out, tuple(tensors), backward)

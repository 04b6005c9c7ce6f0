"""The Tensor's shape ops, indexing and joins, each with its backward beside it.

:class:`ShapeOps`, :class:`~convprop._reductions.ReductionOps` and
:class:`~convprop._elementwise.ElementwiseOps` are base classes of
:class:`convprop.Tensor`.  They import nothing from :mod:`convprop.autograd`
(``self._wrap`` builds results, ``self._operands`` promotes a second operand), so
the modules form no cycle.  ``dim`` arguments follow PyTorch (negative counts
from the end; out of range is an ``AxisError``, both ``IndexError`` and ``ValueError``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.exceptions import AxisError

from ._dtypes import result_type

if TYPE_CHECKING:
    from .autograd import Tensor


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


def linear_map(x: Tensor, forward: Callable[[np.ndarray], np.ndarray],
               adjoint: Callable[[np.ndarray], np.ndarray]) -> Tensor:
    """``forward(x)`` for a *linear* ``forward`` whose adjoint (transpose) is ``adjoint``.

    The gradient of a linear map is its adjoint applied to the output gradient, and
    the adjoint's adjoint is the map again, so the node is differentiable to any order
    without more code.  The differentiable backward of an op whose backward is linear
    in the output gradient and needs only constants (a scatter, a fold, a crop) is
    ``linear_map(g, backward, its adjoint)``: a scatter's adjoint is a gather.
    """
    return x._wrap(forward(x.data), (x,), lambda g: (adjoint(g),),
                   lambda g: (linear_map(g, adjoint, forward),))


class ShapeOps:
    """Reshaping, indexing, assignment and joins of :class:`Tensor`."""

    __slots__ = ()
    data: np.ndarray

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
        return self._wrap(out, (self,), lambda g: (g.reshape(old),), lambda g: (g.reshape(old),))

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
        return self._wrap(self.data.transpose(order), (self,), lambda g: (g.transpose(inverse),),
                          lambda g: (g.permute(inverse),))

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
        return self._wrap(np.broadcast_to(self.data, tuple(shape)), (self,), lambda g: (g,),
                          lambda g: (g,))  # the walk sums the gradient over broadcast axes

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

        def tile(h: np.ndarray) -> np.ndarray:  # the adjoint of the sum over the copies
            return np.tile(h.reshape(base), reps)

        return self._wrap(out, (self,), backward,
                          lambda g: (linear_map(g, lambda h: backward(h)[0], tile),))

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
    def __iter__(self) -> Any:
        """The slices along the first axis (each in the graph), as iterating a torch tensor."""
        if not self.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

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

        def double(g: Tensor) -> tuple[Tensor]:  # a scatter; its adjoint gathers
            return (linear_map(g, lambda h: backward(h)[0], lambda f: np.asarray(f[index])),)

        return self._wrap(np.asarray(self.data[index]), (self,), backward, double)

    def __setitem__(self, index: Any, value: Any) -> None:
        """Assign in place, as ``tensor[index] = value`` in PyTorch.

        Without gradients involved the data is written in place (tensors that
        share it, such as basic-index views, see the change).  When ``value`` or
        ``self`` needs gradients, ``self`` becomes a new graph node
        ``put(old self, index, value)``: the old contents get the gradient outside
        ``index`` and ``value`` the gradient inside it.  Ops that used ``self``
        before the assignment refuse to run backward afterwards (its contents
        changed under them), as PyTorch's version counter does.  Unlike PyTorch,
        such a recorded assignment into a view does not write through to the
        tensor it was sliced from (the view gets a new array).

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
        if not grad_on:
            self.data[index] = v
            self._version += 1
            return
        if self.requires_grad and self.is_leaf:
            raise RuntimeError("a leaf tensor that requires grad cannot be assigned into in place; "
                               "assign under convprop.no_grad() or into a clone()")
        self._version += 1
        old = self._detached_copy_of_history()
        new = self.data.copy()  # earlier ops keep the array they saw
        new[index] = v
        val = value if from_tensor else self._wrap(v)

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            outside = g.copy()
            outside[index] = 0
            return outside, np.asarray(g[index])

        def double(g: Tensor) -> tuple[Tensor, Tensor]:
            keep = np.ones(g.shape, dtype=bool)
            keep[index] = False
            return g.where(keep, 0.0), g[index]

        self._rebase(new, (old, val), backward, double)

    # ------------------------------------------------------------------ joins
    @staticmethod
    def _join(tensors: list[Tensor], dim: int, new_axis: bool) -> Tensor:
        """``cat`` (``new_axis=False``) or ``stack`` of ``tensors``, dtypes promoted.

        As in PyTorch, ``cat`` skips 1-D empty tensors (shape ``(0,)``) whatever
        the other tensors' shapes, a legacy rule that lets a result start empty.
        """
        if new_axis:
            used = list(range(len(tensors)))
        else:
            used = [i for i, t in enumerate(tensors) if t.shape != (0,)] or [0]
        parts = [tensors[i] for i in used]
        first = parts[0]
        if new_axis:
            d = _dim(dim, first.ndim, extra=1)
            if any(t.shape != first.shape for t in parts):
                raise ValueError(f"stack: every tensor must have the same shape, got "
                                 f"{[t.shape for t in tensors]}")
        else:
            if any(t.ndim == 0 for t in parts):
                raise ValueError("cat: zero-dimensional tensors cannot be concatenated")
            d = _dim(dim, first.ndim)
            for t in parts:
                if t.ndim != first.ndim or t.shape[:d] + t.shape[d + 1:] != (
                        first.shape[:d] + first.shape[d + 1:]):
                    raise ValueError(f"cat: tensors must match except in dim {dim}, got "
                                     f"{[t.shape for t in tensors]}")
        dt = result_type(*tensors)
        arrays = [t.data.astype(dt, copy=False) for t in parts]
        out = np.stack(arrays, axis=d) if new_axis else np.concatenate(arrays, axis=d)
        bounds = np.cumsum([0] + [1 if new_axis else t.shape[d] for t in parts])

        def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
            grads: list[np.ndarray | None] = [None] * len(tensors)
            for i, lo, hi in zip(used, bounds[:-1], bounds[1:]):
                piece = g[(slice(None),) * d + (slice(lo, hi),)]
                grads[i] = piece.squeeze(d) if new_axis else piece
            return tuple(grads)

        def double(g: Tensor) -> tuple[Tensor | None, ...]:
            grads: list[Tensor | None] = [None] * len(tensors)
            for i, lo, hi in zip(used, bounds[:-1], bounds[1:]):
                piece = g[(slice(None),) * d + (slice(int(lo), int(hi)),)]
                grads[i] = piece.squeeze(d) if new_axis else piece
            return tuple(grads)

        return first._wrap(out, tuple(tensors), backward, double)

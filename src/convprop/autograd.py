"""Reverse-mode automatic differentiation on NumPy arrays.

A :class:`Tensor` holds an ``ndarray`` and, when it was produced by a
differentiable op while gradients are enabled, its parents and a backward
closure.  Every op below is written as its forward computation followed, a few
lines further, by that closure: given the gradient of the output it returns the
gradient for each parent (``None`` where a parent needs none).  :meth:`Tensor.backward`
orders the graph topologically and walks it once in reverse; leaves accumulate
into ``.grad`` across calls, as in PyTorch.

Gradients are always un-broadcast to their parent's shape and cast to its dtype,
so float32 stays float32 and float64 stays float64 end to end.
"""

from __future__ import annotations

import contextlib
import numbers
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

Backward = Callable[[np.ndarray], Sequence["np.ndarray | None"]]

class _GradMode(threading.local):
    """Per-thread grad mode, as in PyTorch; new threads start with it enabled."""

    enabled = True


_grad_mode = _GradMode()


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context in which ops record no graph (inference, optimizer updates).

    Grad mode is per thread: other threads keep recording.
    """
    previous, _grad_mode.enabled = _grad_mode.enabled, False
    try:
        yield
    finally:
        _grad_mode.enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Re-enable graph recording inside a :func:`no_grad` block (this thread only)."""
    previous, _grad_mode.enabled = _grad_mode.enabled, True
    try:
        yield
    finally:
        _grad_mode.enabled = previous


def is_grad_enabled() -> bool:
    """Whether ops record a graph in the calling thread."""
    return _grad_mode.enabled


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Convert user data to a float ndarray by convprop's dtype rules.

    Floating arrays keep their precision; bool and integer data (and Python
    scalars and lists) become float32, as ``torch.tensor`` does; complex,
    object and string data are a ``TypeError``.
    """
    if isinstance(data, Tensor):
        data = data.data
    arr = np.array(data, copy=True)
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype must be a floating type, got {dtype}")
        return arr.astype(dtype, copy=False) if arr.dtype.kind in "biuf" else _bad_kind(arr)
    if arr.dtype.kind == "f":
        if not isinstance(data, np.ndarray) and not isinstance(data, np.floating):
            return arr.astype(np.float32)  # Python floats/lists: torch's default dtype
        return arr
    if arr.dtype.kind in "biu":
        return arr.astype(np.float32)
    return _bad_kind(arr)


def _bad_kind(arr: np.ndarray) -> np.ndarray:
    raise TypeError(
        f"Tensor data must be real numbers (float, int or bool), got dtype {arr.dtype}"
    )


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


class Tensor:
    """An ndarray with a gradient.

    Args:
        data: array-like; see :func:`as_array` for the dtype rules.  The data is copied.
        requires_grad: whether :meth:`backward` should compute ``.grad`` for this leaf.
        dtype: optional floating dtype to convert to.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_retain", "__weakref__")
    __array_ufunc__ = None  # make ``ndarray <op> Tensor`` defer to Tensor's reflected ops

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data = as_array(data, dtype)
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Backward | None = None
        self._retain = False

    @classmethod
    def _wrap(cls, data: np.ndarray, parents: tuple[Tensor, ...] = (),
              backward: Backward | None = None) -> Tensor:
        """Internal constructor: no copy, no dtype rules; records the graph if needed."""
        t = cls.__new__(cls)
        t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad = None
        t._retain = False
        if backward is not None and _grad_mode.enabled and any(p.requires_grad for p in parents):
            t.requires_grad = True
            t._parents = parents
            t._backward = backward
        else:
            t.requires_grad = False
            t._parents = ()
            t._backward = None
        return t

    # ----------------------------------------------------------------- basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, as ``torch.Tensor.numpy`` shares memory)."""
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """A tensor sharing this data, cut from the graph."""
        return Tensor._wrap(self.data)

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this non-leaf tensor during :meth:`backward`."""
        self._retain = True
        return self

    def requires_grad_(self, flag: bool = True) -> Tensor:
        self.requires_grad = bool(flag)
        return self

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.dtype != np.float32:
            extra = f", dtype={self.dtype}" + extra
        return f"tensor({body}{extra})"

    # --------------------------------------------------------------- backward
    def backward(self, grad: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        Args:
            grad: the gradient flowing into ``self``; may be omitted only when
                ``self`` holds a single element (it then defaults to 1).
        """
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward() without a gradient needs a scalar output, got shape {self.shape}; "
                    "pass grad= with the output's shape"
                )
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
            if grad.shape != self.shape:
                raise ValueError(
                    f"grad must have the output's shape {self.shape}, got {grad.shape}"
                )
            grad = grad.astype(self.dtype, copy=False)
        order = _topological(self)
        grads: dict[int, np.ndarray] = {id(self): grad}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None or node._retain:
                node._accumulate(g)
            if node._backward is None:
                continue
            for parent, pg in zip(node._parents, node._backward(g)):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.shape:
                    pg = unbroadcast(pg, parent.shape)
                if pg.dtype != parent.dtype:
                    pg = pg.astype(parent.dtype)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg

    def _accumulate(self, g: np.ndarray) -> None:
        if self.grad is None:
            self.grad = np.array(g, dtype=self.dtype, copy=True)
        else:
            self.grad += g

    # ------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> Tensor:
        o = _lift(other, self)
        return Tensor._wrap(self.data + o.data, (self, o), lambda g: (g, g))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Tensor:
        o = _lift(other, self)
        return Tensor._wrap(self.data - o.data, (self, o), lambda g: (g, -g))

    def __rsub__(self, other: Any) -> Tensor:
        return _lift(other, self) - self

    def __mul__(self, other: Any) -> Tensor:
        o = _lift(other, self)
        a, b = self.data, o.data
        return Tensor._wrap(a * b, (self, o), lambda g: (g * b, g * a))

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Tensor:
        o = _lift(other, self)
        a, b = self.data, o.data
        with np.errstate(divide="ignore", invalid="ignore"):
            out = a / b

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            with np.errstate(divide="ignore", invalid="ignore"):
                return g / b, -g * out / b

        return Tensor._wrap(out, (self, o), backward)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _lift(other, self) / self

    def __neg__(self) -> Tensor:
        return Tensor._wrap(-self.data, (self,), lambda g: (-g,))

    def __pow__(self, exponent: Any) -> Tensor:
        a = self.data
        if isinstance(exponent, numbers.Real) and not isinstance(exponent, Tensor):
            # a NumPy scalar exponent would promote float32 to float64: make it a Python number
            p = exponent.item() if isinstance(exponent, np.generic) else exponent
            with np.errstate(divide="ignore", invalid="ignore"):
                out = a**p

            def backward_scalar(g: np.ndarray) -> tuple[np.ndarray]:
                if p == 0:  # d(a^0)/da = 0 everywhere, also at a = 0
                    return (np.zeros_like(g),)
                with np.errstate(divide="ignore", invalid="ignore"):
                    return (g * 2 * a if p == 2 else g * p * a ** (p - 1),)

            return Tensor._wrap(out, (self,), backward_scalar)
        e = _lift(exponent, self)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = a**e.data

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # PyTorch's conventions at the singular points: d/da is 0 where e = 0, and
            # d/de is 0 where a = 0 and e >= 0 (the limit of a^e * log(a) there)
            with np.errstate(divide="ignore", invalid="ignore"):
                ga = np.where(e.data == 0, 0, g * e.data * a ** (e.data - 1))
                ge = np.where((a == 0) & (e.data >= 0), 0, g * out * np.log(a))
            return ga.astype(g.dtype, copy=False), ge.astype(g.dtype, copy=False)

        return Tensor._wrap(out, (self, e), backward)

    def __rpow__(self, base: Any) -> Tensor:
        return _lift(base, self) ** self

    def __matmul__(self, other: Any) -> Tensor:
        o = _lift(other, self)
        a, b = self.data, o.data
        out = a @ b

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            a2 = a[None, :] if a.ndim == 1 else a
            b2 = b[:, None] if b.ndim == 1 else b
            g2 = g  # restore the unit axes a 1-D operand dropped (b's first: g may be 0-d)
            if b.ndim == 1:
                g2 = np.expand_dims(g2, -1)
            if a.ndim == 1:
                g2 = np.expand_dims(g2, -2)
            ga = g2 @ np.swapaxes(b2, -1, -2)
            gb = np.swapaxes(a2, -1, -2) @ g2
            if a.ndim == 1:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
            if b.ndim == 1:
                gb = gb.reshape(gb.shape[:-1])
            return unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)

        return Tensor._wrap(out, (self, o), backward)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _lift(other, self) @ self

    # ----------------------------------------------------------- reductions
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        shape = self.shape
        axis = _axes(axis, self.ndim)
        out = self.data.sum(axis=axis, keepdims=keepdims)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, shape),)

        return Tensor._wrap(np.asarray(out), (self,), backward)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        axes = _axes(axis, self.ndim)
        count = self.data.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        return self.sum(axes, keepdims) * (1.0 / count if count else np.nan)

    # ---------------------------------------------------------------- shape
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        old = self.shape
        return Tensor._wrap(self.data.reshape(shape), (self,), lambda g: (g.reshape(old),))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        s = self.shape
        if not s:
            return self.reshape(1)
        start, end = start_dim % len(s), end_dim % len(s)
        return self.reshape(s[:start] + (int(np.prod(s[start : end + 1])),) + s[end + 1 :])

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        inverse = tuple(np.argsort(dims))
        return Tensor._wrap(self.data.transpose(dims), (self,), lambda g: (g.transpose(inverse),))

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes (PyTorch's ``transpose``; use :meth:`permute` for a full order)."""
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(dims)

    @property
    def T(self) -> Tensor:
        return self.permute(tuple(reversed(range(self.ndim))))

    def __getitem__(self, index: Any) -> Tensor:
        index = _plain_index(index)
        shape, dtype = self.shape, self.dtype
        advanced = _is_advanced(index)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            full = np.zeros(shape, dtype=dtype)
            if advanced:
                np.add.at(full, index, g)
            else:
                full[index] = g
            return (full,)

        return Tensor._wrap(np.asarray(self.data[index]), (self,), backward)

    def astype(self, dtype: Any) -> Tensor:
        src = self.dtype
        return Tensor._wrap(self.data.astype(dtype), (self,), lambda g: (g.astype(src),))

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    # ------------------------------------------------------------- unary ops
    def exp(self) -> Tensor:
        with np.errstate(over="ignore"):
            out = np.exp(self.data)
        return Tensor._wrap(out, (self,), lambda g: (g * out,))

    def log(self) -> Tensor:
        a = self.data
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log(a)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            with np.errstate(divide="ignore", invalid="ignore"):
                return (g / a,)

        return Tensor._wrap(out, (self,), backward)

    def sqrt(self) -> Tensor:
        with np.errstate(invalid="ignore"):
            out = np.sqrt(self.data)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            with np.errstate(divide="ignore", invalid="ignore"):
                return (g * 0.5 / out,)

        return Tensor._wrap(out, (self,), backward)

    def abs(self) -> Tensor:
        a = self.data
        return Tensor._wrap(np.abs(a), (self,), lambda g: (g * np.sign(a),))

    def sigmoid(self) -> Tensor:
        """Logistic function, stable for any |z|: exp is only taken of -|z|."""
        z = self.data
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(-np.abs(z))
            out = np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)
        return Tensor._wrap(out, (self,), lambda g: (g * out * (1 - out),))

    def tanh(self) -> Tensor:
        out = np.tanh(self.data)
        return Tensor._wrap(out, (self,), lambda g: (g * (1 - out * out),))

    def relu(self) -> Tensor:
        """max(z, 0); NaN stays NaN and passes its gradient on, as in PyTorch."""
        a = self.data
        mask = ~(a <= 0)
        return Tensor._wrap(np.maximum(a, 0).astype(a.dtype, copy=False), (self,),
                            lambda g: (g * mask,))

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        a = self.data
        out = np.clip(a, min, max)
        mask = np.ones(a.shape, dtype=bool)
        if min is not None:
            mask &= a >= min
        if max is not None:
            mask &= a <= max
        return Tensor._wrap(out, (self,), lambda g: (g * mask,))

    # comparisons give plain boolean arrays (no gradient), as masks
    def __lt__(self, other: Any) -> np.ndarray:
        return self.data < _raw(other)

    def __le__(self, other: Any) -> np.ndarray:
        return self.data <= _raw(other)

    def __gt__(self, other: Any) -> np.ndarray:
        return self.data > _raw(other)

    def __ge__(self, other: Any) -> np.ndarray:
        return self.data >= _raw(other)

    __hash__ = object.__hash__


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _lift(x: Any, like: Tensor) -> Tensor:
    """Turn a scalar or array operand into a constant Tensor; Python scalars keep ``like``'s dtype."""
    if isinstance(x, Tensor):
        return x
    arr = np.asarray(x)
    if arr.ndim == 0 and arr.dtype.kind in "biuf":
        # scalars are "weak", as in PyTorch: they take the tensor's dtype
        return Tensor._wrap(arr.astype(like.dtype))
    if arr.dtype.kind not in "f":
        arr = arr.astype(like.dtype) if arr.dtype.kind in "biu" else _bad_kind(arr)
    return Tensor._wrap(arr)


def _axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...] | None:
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        return tuple(a % ndim for a in axis)
    return (axis % ndim,) if ndim else None


def _plain_index(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.data.astype(np.intp) if index.dtype.kind == "f" else index.data
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _is_advanced(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, np.ndarray) for i in items)


def _topological(root: Tensor) -> list[Tensor]:
    """Nodes reachable from ``root`` through tensors that require grad, parents first."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in node._parents:
            if p.requires_grad and id(p) not in seen:
                stack.append((p, False))
    return order


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Synonym for :class:`Tensor`, as ``torch.tensor``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data: Any) -> Tensor:
    """``data`` itself if it is a Tensor, else a constant Tensor made by :func:`as_array`."""
    return data if isinstance(data, Tensor) else Tensor(data)

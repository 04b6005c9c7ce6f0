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

Dtypes follow PyTorch (:mod:`convprop._dtypes`): tensors may hold bool and
integer data (masks, indices), which never record a graph, and mixed operands
are promoted by ``torch.result_type``'s rules.  The arithmetic, the backward
walk and conversions live here; elementwise functions, reductions and shape
ops live in the base classes of :class:`Tensor` (``_elementwise``,
``_reductions``, ``_tensor_ops``).  An in-place change (``x[i] = v``, ``x += 1``)
bumps the tensor's version; a node whose saved parent changed refuses to run
its backward, as PyTorch's version counter does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ._dtypes import (
    _bad_kind,
    _is_scalar,
    as_array,
    check_device,
    check_same_dtype,
    get_default_dtype,
    is_device,
    result_type,
    to_dtype,
)
from ._elementwise import ElementwiseOps
from ._reductions import ReductionOps
from ._tensor_ops import ShapeOps

Backward = Callable[[np.ndarray], Sequence["np.ndarray | None"]]
#: A differentiable backward: the same rule written with Tensor ops, run by
#: ``create_graph=True`` so that the gradients it returns carry a graph.
DoubleBackward = Callable[["Tensor"], Sequence["Tensor | None"]]

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


class Tensor(ElementwiseOps, ReductionOps, ShapeOps):
    """An ndarray with a gradient.

    ``Tensor(data)`` converts as ``torch.Tensor(data)`` does (to a floating dtype,
    see :func:`as_array`); :func:`convprop.tensor` infers dtypes as ``torch.tensor``.
    Integer and bool Tensors (indices, masks, comparison results) never record a
    graph.  Elementwise functions, reductions and shape ops live in the base classes
    :class:`ElementwiseOps`, :class:`ReductionOps` and :class:`ShapeOps`.

    Args:
        data: array-like; see :func:`as_array` for the dtype rules.  The data is copied.
        requires_grad: whether :meth:`backward` should compute ``.grad`` for this leaf.
        dtype: optional floating dtype to convert to.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_double", "_retain",
                 "_version", "_versions", "_grad_tensor", "__weakref__")
    __array_ufunc__ = None  # make ``ndarray <op> Tensor`` defer to Tensor's reflected ops

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data = as_array(data, dtype)
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Backward | None = None
        self._double: DoubleBackward | None = None
        self._grad_tensor: Tensor | None = None
        self._retain = False
        self._version = 0  # bumped by each in-place assignment
        self._versions: tuple[int, ...] = ()  # the parents' versions when this node was made

    @staticmethod
    def _wrap(data: np.ndarray, parents: tuple[Tensor, ...] = (),
              backward: Backward | None = None, double: DoubleBackward | None = None) -> Tensor:
        """Internal constructor: no copy, no dtype rules; records the graph if needed
        (only floating outputs are differentiable).  Always a plain :class:`Tensor`.

        ``backward`` maps the output's gradient (an ndarray) to the parents' gradients
        (ndarrays); ``double`` is the same rule written with Tensor ops, which
        ``create_graph=True`` runs so the gradients can be differentiated again.  An
        op without ``double`` still takes part in ``create_graph``: its gradient is
        computed by ``backward`` and differentiating *that* raises an error naming the op.
        """
        t = object.__new__(Tensor)
        t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad = None
        t._grad_tensor = None
        t._retain = False
        t._version = 0
        if (backward is not None and _grad_mode.enabled and t.data.dtype.kind == "f"
                and any(p.requires_grad for p in parents)):
            t.requires_grad = True
            t._parents = parents
            t._backward = backward
            t._double = double
            t._versions = tuple([p._version for p in parents])
        else:
            t.requires_grad = False
            t._parents = ()
            t._backward = None
            t._double = None
            t._versions = ()
        return t

    def _recording(self) -> bool:
        return _grad_mode.enabled

    def _detached_copy_of_history(self) -> Tensor:
        """A new node for this tensor's current contents and history (before an assignment)."""
        old = object.__new__(Tensor)
        old.data, old.grad, old.requires_grad = self.data, None, self.requires_grad
        old._parents, old._backward, old._versions = self._parents, self._backward, self._versions
        old._double, old._grad_tensor = self._double, None
        old._retain, old._version = False, 0
        return old

    def _rebase(self, data: np.ndarray, parents: tuple[Tensor, ...], backward: Backward,
                double: DoubleBackward | None = None) -> None:
        """Make this tensor the output of a new op (an in-place assignment)."""
        self.data, self._parents, self._backward = data, parents, backward
        self._double = double
        self._versions = tuple(p._version for p in parents)
        self.requires_grad = True

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
    def device(self) -> str:
        """Always ``"cpu"``."""
        return "cpu"

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def __len__(self) -> int:
        if not self.ndim:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def numpy(self, force: bool = False) -> np.ndarray:
        """The underlying array (shared, as ``torch.Tensor.numpy`` shares memory).

        Raises:
            RuntimeError: if the tensor requires grad (use ``.detach().numpy()``),
                unless ``force=True``, as in PyTorch.
        """
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on a Tensor that requires grad; "
                               "use tensor.detach().numpy() instead")
        return self.data

    def item(self) -> float | int | bool:
        """The single element as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        """Nested Python lists of Python numbers (a number for a 0-d tensor)."""
        return self.data.tolist()

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.data.size} values is "
                               "ambiguous (use .any() or .all())")
        return bool(self.data.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an "
                            f"index, got dtype {self.dtype}, shape {self.shape}")
        return int(self.data.item())

    def detach(self) -> Tensor:
        """A tensor sharing this data, cut from the graph."""
        return Tensor._wrap(self.data)

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph (gradient passes through)."""
        return Tensor._wrap(self.data.copy(), (self,), _identity, _identity)

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this non-leaf tensor during :meth:`backward`."""
        self._retain = True
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (floating tensors only, as in PyTorch)."""
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"got dtype {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.dtype not in (get_default_dtype(), np.int64, np.bool_):
            extra = f", dtype={self.dtype}" + extra
        return f"tensor({body}{extra})"

    # ------------------------------------------------------------- conversion
    def to(self, *args: Any, dtype: Any = None, device: Any = None, copy: bool = False,
           non_blocking: bool = False) -> Tensor:
        """Convert the dtype (differentiably between floating types) and check the device.

        Accepts ``to(dtype)``, ``to("cpu")``, ``to("cpu", dtype)``, ``to(other_tensor)``
        and the keywords.  Returns ``self`` when nothing changes and ``copy`` is False.

        Raises:
            ValueError: for a device other than the CPU.
        """
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif is_device(a):
                device = a
            else:
                dtype = a
        check_device(device, "to")
        target = self.dtype if dtype is None else to_dtype(dtype)
        if target == self.dtype:
            return self.clone() if copy else self
        src = self.dtype
        return Tensor._wrap(self.data.astype(target), (self,), lambda g: (g.astype(src),),
                            lambda g: (g.to(src),))

    def astype(self, dtype: Any) -> Tensor:
        """NumPy's spelling of :meth:`to` for a dtype (always a new tensor)."""
        src = self.dtype
        return Tensor._wrap(self.data.astype(to_dtype(dtype)), (self,),
                            lambda g: (g.astype(src),), lambda g: (g.to(src),))

    def cpu(self) -> Tensor:
        return self

    def cuda(self, device: Any = None) -> Tensor:
        check_device("cuda" if device is None else device, "cuda")
        return self

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    # --------------------------------------------------------------- backward
    def backward(self, grad: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False, *, gradient: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        Args:
            grad: the gradient flowing into ``self`` (``gradient=`` is PyTorch's
                keyword); may be omitted only when ``self`` holds a single element
                (it then defaults to 1).
            retain_graph: keep the graph so that a later ``backward`` may walk it
                again; defaults to ``create_graph``.  Without it the graph is freed
                and walking it again is an error, as in PyTorch.
            create_graph: run every op's differentiable backward, so the gradients
                carry a graph of their own.  ``.grad`` stays an ndarray (optimizers and
                first-order code read it unchanged); the accumulated gradient *as a
                Tensor with its graph* is :attr:`grad_tensor`, which can be
                differentiated again (PyTorch's ``x.grad`` after ``create_graph=True``).
                :func:`convprop.grad` returns such Tensors directly.
        """
        if gradient is not None:
            if grad is not None:
                raise TypeError("backward: give grad or gradient, not both")
            grad = gradient
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad")
        seed = _seed(self, grad, "backward")
        retain = create_graph if retain_graph is None else bool(retain_graph)
        if not create_graph:
            _walk([self], [seed.data if isinstance(seed, Tensor) else seed], retain, None)
            return
        with enable_grad():
            _walk_graph([self], [_as_graph_grad(seed)], retain, None)

    @property
    def grad_tensor(self) -> Tensor | None:
        """The accumulated gradient as a Tensor: after ``backward(create_graph=True)`` it
        carries the graph of the gradient (differentiable again); otherwise it wraps
        ``.grad`` (None when there is none)."""
        if self.grad is None:
            return None
        if self._grad_tensor is not None and self._grad_tensor.data is self.grad:
            return self._grad_tensor
        return Tensor._wrap(self.grad)

    def _accumulate(self, g: np.ndarray) -> None:
        if self.grad is None:
            self.grad = np.array(g, dtype=self.dtype, copy=True)
        else:
            self.grad += g
        self._grad_tensor = None

    def _accumulate_graph(self, g: Tensor) -> None:
        """Accumulate a gradient that carries a graph (``create_graph=True``)."""
        total = g if self.grad is None else self.grad_tensor + g
        total = Tensor._wrap(np.array(total.data, dtype=self.dtype, copy=True), (total,),
                             _identity, _identity)
        self.grad, self._grad_tensor = total.data, total

    # ------------------------------------------------------------ arithmetic
    def _operands(self, other: Any, floating: bool = False
                  ) -> tuple[Tensor, np.ndarray, np.ndarray]:
        """``other`` as a Tensor, and both operands' data in the promoted dtype
        (the default float dtype for ``floating`` ops such as true division)."""
        a = self.data
        kind = a.dtype.kind
        # fast paths (most calls): a float tensor with a same-dtype tensor or a Python number
        if kind == "f":
            if type(other) is float or type(other) is int:
                return Tensor._wrap(np.asarray(other, a.dtype)), a, np.asarray(other, a.dtype)
            if isinstance(other, Tensor) and other.data.dtype == a.dtype:
                return other, a, other.data
        if isinstance(other, Tensor):
            o, key = other, other
        elif _is_scalar(other):
            o, key = Tensor._wrap(np.asarray(other)), other
        else:
            arr = np.asarray(other)
            if arr.dtype.kind not in "biuf":
                _bad_kind(arr)
            o, key = Tensor._wrap(arr), arr
        dt = result_type(self, key)
        if floating and dt.kind != "f":
            dt = get_default_dtype()
        return o, a.astype(dt, copy=False), o.data.astype(dt, copy=False)

    def __add__(self, other: Any) -> Tensor:
        o, a, b = self._operands(other)
        return Tensor._wrap(a + b, (self, o), lambda g: (g, g), lambda g: (g, g))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Tensor:
        o, a, b = self._operands(other)
        return Tensor._wrap(a - b, (self, o), lambda g: (g, -g), lambda g: (g, -g))

    def __rsub__(self, other: Any) -> Tensor:
        o, a, b = self._operands(other)
        return Tensor._wrap(b - a, (o, self), lambda g: (g, -g), lambda g: (g, -g))

    def __mul__(self, other: Any) -> Tensor:
        o, a, b = self._operands(other)
        return Tensor._wrap(a * b, (self, o), lambda g: (g * b, g * a),
                            lambda g: (g * o, g * self))

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Tensor:
        o, a, b = self._operands(other, floating=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = a / b

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            with np.errstate(divide="ignore", invalid="ignore"):
                return g / b, -g * out / b

        def double(g: Tensor) -> tuple[Tensor, Tensor]:
            ga = g / o
            return ga, -ga * self / o

        return Tensor._wrap(out, (self, o), backward, double)

    def __rtruediv__(self, other: Any) -> Tensor:
        o, _, _ = self._operands(other)
        return o / self

    def __neg__(self) -> Tensor:
        if self.dtype == np.bool_:
            raise TypeError("negation of a bool tensor is not supported; use ~ (logical not)")
        return Tensor._wrap(-self.data, (self,), lambda g: (-g,), lambda g: (-g,))

    def __pow__(self, exponent: Any) -> Tensor:
        if _is_scalar(exponent):
            # a NumPy scalar exponent would promote float32 to float64: make it a Python number
            p = exponent.item() if isinstance(exponent, np.generic) else exponent
            a = self.data.astype(result_type(self, p), copy=False)
            with np.errstate(divide="ignore", invalid="ignore"):
                out = a**p

            def backward_scalar(g: np.ndarray) -> tuple[np.ndarray]:
                if p == 0:  # d(a^0)/da = 0 everywhere, also at a = 0
                    return (np.zeros_like(g),)
                with np.errstate(divide="ignore", invalid="ignore"):
                    return (g * 2 * a if p == 2 else g * p * a ** (p - 1),)

            def double_scalar(g: Tensor) -> tuple[Tensor]:
                if p == 0:
                    return (g * 0,)
                return (g * 2 * self if p == 2 else g * p * self ** (p - 1),)

            return Tensor._wrap(out, (self,), backward_scalar, double_scalar)
        e, a, ed = self._operands(exponent)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = a**ed

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # PyTorch's conventions at the singular points: d/da is 0 where e = 0, and
            # d/de is 0 where a = 0 and e >= 0 (the limit of a^e * log(a) there)
            with np.errstate(divide="ignore", invalid="ignore"):
                ga = np.where(ed == 0, 0, g * ed * a ** (ed - 1))
                ge = np.where((a == 0) & (ed >= 0), 0, g * out * np.log(a))
            return ga.astype(g.dtype, copy=False), ge.astype(g.dtype, copy=False)

        def double(g: Tensor) -> tuple[Tensor, Tensor]:
            ga = (g * e * self ** (e - 1)).where(ed != 0, 0.0)
            ge = (g * self ** e * self.log()).where(~((a == 0) & (ed >= 0)), 0.0)
            return ga, ge

        return Tensor._wrap(out, (self, e), backward, double)

    def __rpow__(self, base: Any) -> Tensor:
        o, _, _ = self._operands(base)
        return o**self

    def __matmul__(self, other: Any) -> Tensor:
        o = other if isinstance(other, Tensor) else Tensor._wrap(np.asarray(other))
        check_same_dtype("matmul", self=self, other=o)
        a, b = self.data, o.data
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both arguments need at least 1 dimension, got shapes "
                             f"{a.shape} and {b.shape}")
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

        def double(g: Tensor) -> tuple[Tensor, Tensor]:
            a2 = self.unsqueeze(0) if a.ndim == 1 else self
            b2 = o.unsqueeze(-1) if b.ndim == 1 else o
            g2 = g.unsqueeze(-1) if b.ndim == 1 else g
            if a.ndim == 1:
                g2 = g2.unsqueeze(-2)
            ga = g2 @ b2.transpose(-1, -2)
            gb = a2.transpose(-1, -2) @ g2
            if a.ndim == 1:
                ga = ga.squeeze(-2)
            if b.ndim == 1:
                gb = gb.squeeze(-1)
            return ga, gb

        return Tensor._wrap(out, (self, o), backward, double)

    def __rmatmul__(self, other: Any) -> Tensor:
        o = other if isinstance(other, Tensor) else Tensor._wrap(np.asarray(other))
        return o @ self

    __hash__ = object.__hash__  # __eq__ compares elementwise; identity stays the hash


def _topological(roots: Sequence[Tensor]) -> list[Tensor]:
    """Nodes reachable from ``roots`` through tensors that require grad, parents first."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in reversed(roots)]
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


def _identity(g: Any) -> tuple[Any]:
    """The backward (and differentiable backward) of an op that passes its gradient on."""
    return (g,)


def _freed(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
    raise RuntimeError(
        "Trying to backward through the graph a second time (or directly access saved tensors "
        "after they have already been freed). Specify retain_graph=True when calling backward "
        "or convprop.grad the first time")


def _op_name(node: Tensor) -> str:
    """The op a node was made by, read from its backward closure's qualified name
    (``ElementwiseOps.exp.<locals>.<lambda>`` is ``ElementwiseOps.exp``)."""
    name = getattr(node._backward, "__qualname__", repr(node._backward))
    return name.split(".<locals>")[0]


def _no_rule(name: str) -> Backward:
    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise RuntimeError(
            f"higher-order gradient: the op {name!r} has no differentiable backward, so its "
            "gradient cannot be differentiated again")
    backward.__qualname__ = f"{name} (first derivative only)"
    return backward


def _seed(root: Tensor, grad: Any, name: str) -> Any:
    """The gradient flowing into ``root``: ones for a single element, else ``grad``
    checked against its shape (an ndarray, or the Tensor itself when it carries a graph)."""
    if grad is None:
        if root.data.size != 1:
            raise ValueError(
                f"{name}() without a gradient needs a scalar output, got shape {root.shape}; "
                f"pass {'grad=' if name == 'backward' else 'grad_outputs='} with the output's "
                "shape"
            )
        return np.ones_like(root.data)
    arr = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
    if arr.shape != root.shape:
        raise ValueError(f"grad must have the output's shape {root.shape}, got {arr.shape}")
    if isinstance(grad, Tensor) and grad.requires_grad:
        return grad if grad.dtype == root.dtype else grad.to(root.dtype)
    return arr.astype(root.dtype, copy=False)


def _as_graph_grad(seed: Any) -> Tensor:
    return seed if isinstance(seed, Tensor) else Tensor._wrap(np.array(seed))


def _check_versions(node: Tensor) -> None:
    if node._versions != tuple([p._version for p in node._parents]):
        raise RuntimeError(
            "a tensor needed for this gradient was changed by an in-place assignment "
            "after it was used; assign into a clone() instead")


def _free(node: Tensor) -> None:
    node._backward, node._double = _freed, None


def _walk(roots: Sequence[Tensor], seeds: Sequence[np.ndarray], retain: bool,
          wanted: dict[int, Tensor] | None) -> dict[int, np.ndarray]:
    """The first-order walk on ndarrays (the fast path).  With ``wanted`` (ids of the
    inputs of :func:`grad`) it returns their gradients instead of accumulating."""
    order = _topological(roots)
    grads: dict[int, np.ndarray] = {}
    for r, sd in zip(roots, seeds):
        grads[id(r)] = sd if id(r) not in grads else grads[id(r)] + sd
    found: dict[int, np.ndarray] = {}
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if wanted is None:
            if node._backward is None or node._retain:
                node._accumulate(g)
        elif id(node) in wanted:
            found[id(node)] = g
        if node._backward is None:
            continue
        _check_versions(node)
        pgs = node._backward(g)
        if not retain:
            _free(node)
        for parent, pg in zip(node._parents, pgs):
            if pg is None or not parent.requires_grad:
                continue
            if pg.shape != parent.shape:
                pg = unbroadcast(pg, parent.shape)
            if pg.dtype != parent.dtype:
                pg = pg.astype(parent.dtype)
            key = id(parent)
            grads[key] = pg if key not in grads else grads[key] + pg
    return found


def _unbroadcast_graph(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """:func:`unbroadcast` with Tensor ops (differentiable)."""
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axes, keepdim=True)
    return g


def _walk_graph(roots: Sequence[Tensor], seeds: Sequence[Tensor], retain: bool,
                wanted: dict[int, Tensor] | None) -> dict[int, Tensor]:
    """The walk of ``create_graph=True``: gradients are Tensors and each node runs its
    differentiable backward, recording the graph of the gradient.  A node without one
    runs its ndarray backward, and its result refuses to be differentiated (the error
    names the op) -- never a silent zero."""
    order = _topological(roots)
    grads: dict[int, Tensor] = {}
    for r, sd in zip(roots, seeds):
        grads[id(r)] = sd if id(r) not in grads else grads[id(r)] + sd
    found: dict[int, Tensor] = {}
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if wanted is None:
            if node._backward is None or node._retain:
                node._accumulate_graph(g)
        elif id(node) in wanted:
            found[id(node)] = g
        if node._backward is None:
            continue
        _check_versions(node)
        if node._backward is _freed:
            _freed(g.data)
        if node._double is not None:
            pgs: Sequence[Tensor | None] = node._double(g)
        else:
            refuse = _no_rule(_op_name(node))
            pgs = [None if pa is None else Tensor._wrap(pa, (g,) + node._parents, refuse)
                   for pa in node._backward(g.data)]
        if not retain:
            _free(node)
        for parent, pg in zip(node._parents, pgs):
            if pg is None or not parent.requires_grad:
                continue
            if pg.shape != parent.shape:
                pg = _unbroadcast_graph(pg, parent.shape)
            if pg.dtype != parent.dtype:
                pg = pg.to(parent.dtype)
            key = id(parent)
            grads[key] = pg if key not in grads else grads[key] + pg
    return found


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool | None = None, *, materialize_grads: bool = False
         ) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs`` (``torch.autograd.grad``).

    Nothing is accumulated into ``.grad``: the sum over ``outputs`` of
    ``grad_outputs[k] · d outputs[k] / d input`` is returned for each input.

    Args:
        outputs: a Tensor or a sequence of Tensors that require grad.
        inputs: a Tensor or a sequence of Tensors (leaves or not) to differentiate by.
        grad_outputs: one gradient per output (Tensor, array or None; None means ones
            for a single-element output).  A gradient that requires grad is part of
            the graph with ``create_graph=True``.
        retain_graph: keep the graph for another walk; defaults to ``create_graph``.
        create_graph: record the graph of the returned gradients, so they can be
            differentiated again (second and higher derivatives).
        allow_unused: return None for an input that ``outputs`` do not depend on,
            instead of raising.
        materialize_grads: return zeros instead of None for unused inputs.

    Returns:
        A tuple with one Tensor (shape of its input) or None per input.

    Raises:
        RuntimeError: an output does not require grad, an input is unused (without
            ``allow_unused``), or the graph was freed by an earlier walk.
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not outs or not ins:
        raise ValueError("grad: outputs and inputs must not be empty")
    for name, group in (("outputs", outs), ("inputs", ins)):
        for t in group:
            if not isinstance(t, Tensor):
                raise TypeError(f"grad: {name} must be Tensors, got {type(t).__name__}")
    if allow_unused is None:
        allow_unused = materialize_grads
    if materialize_grads and not allow_unused:
        raise ValueError("grad: materialize_grads=True needs allow_unused=True (or None)")
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        gos = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
    else:
        gos = list(grad_outputs)
    if len(gos) != len(outs):
        raise ValueError(f"grad: {len(outs)} outputs but {len(gos)} grad_outputs")
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    for i, t in enumerate(outs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: output {i} does not require grad and has no graph")
    seeds = [_seed(t, go, "grad") for t, go in zip(outs, gos)]
    retain = create_graph if retain_graph is None else bool(retain_graph)
    wanted = {id(t): t for t in ins}
    if create_graph:
        with enable_grad():
            found: dict[int, Any] = _walk_graph(outs, [_as_graph_grad(s) for s in seeds],
                                                retain, wanted)
    else:
        arrays = [s.data if isinstance(s, Tensor) else s for s in seeds]
        found = {k: Tensor._wrap(v) for k, v in _walk(outs, arrays, retain, wanted).items()}
    result: list[Tensor | None] = []
    for i, t in enumerate(ins):
        g = found.get(id(t))
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} was not used to compute the outputs; "
                                   "pass allow_unused=True to get None for it")
            if materialize_grads:
                g = Tensor._wrap(np.zeros_like(t.data))
        elif g.shape != t.shape:
            g = _unbroadcast_graph(g, t.shape) if create_graph else Tensor._wrap(
                unbroadcast(g.data, t.shape))
        result.append(g)
    return tuple(result)


def as_tensor(data: Any) -> Tensor:
    """``data`` itself if it is a Tensor, else a constant Tensor made by :func:`as_array`."""
    return data if isinstance(data, Tensor) else Tensor(data)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing axis (``torch.cat``); dtypes are promoted.

    Args:
        tensors: a non-empty sequence of tensors equal in shape except along ``dim``.
        dim: the axis to join along.
    """
    return ShapeOps._join([as_tensor(t) for t in _sequence(tensors, "cat")], dim, new_axis=False)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join equally shaped tensors along a new axis ``dim`` (``torch.stack``)."""
    return ShapeOps._join([as_tensor(t) for t in _sequence(tensors, "stack")], dim, new_axis=True)


def _sequence(tensors: Any, name: str) -> list[Any]:
    if isinstance(tensors, (Tensor, np.ndarray)) or not isinstance(tensors, Sequence):
        raise TypeError(f"{name}: tensors must be a list or tuple of tensors, "
                        f"got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{name}: expected a non-empty list of tensors")
    return list(tensors)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """``input`` where ``condition`` holds, else ``other`` (``torch.where``), broadcast together.

    Gradients flow to ``input`` where the condition holds and to ``other`` elsewhere.

    Raises:
        TypeError: if ``condition`` is not a bool tensor or array.
    """
    if isinstance(input, Tensor):
        x = input
    elif _is_scalar(input):  # a Python number stays weak: where(c, 1.0, 0.0) is float32
        x = Tensor._wrap(np.asarray(input, dtype=result_type(input, other)))
    else:
        x = Tensor._wrap(np.asarray(input))
    return x.where(condition, other)

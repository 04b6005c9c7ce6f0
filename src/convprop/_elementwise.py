"""The Tensor's elementwise functions and comparisons, each with its backward beside it.

A base class of :class:`convprop.Tensor` (see :mod:`convprop._tensor_ops`).
Comparisons and logic give bool tensors, which record no graph; functions of
integer tensors that need floats (``exp``, ``log``...) compute in the default
dtype, as PyTorch does.  ``maximum``/``minimum`` split the gradient of a tie in
halves; ``where`` and ``clamp`` route it to the operand that was taken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._dtypes import _is_scalar, get_default_dtype, result_type

if TYPE_CHECKING:
    from .autograd import Tensor


def _comparable(x: Any) -> bool:
    """Whether ``==`` with ``x`` compares elementwise (numbers, arrays, tensors, lists)."""
    return x is not None and not isinstance(x, (str, bytes, dict, set))


class ElementwiseOps:
    """Named arithmetic (``add``, ``sub``...), in-place ops, comparisons, logic, unary
    functions, ``maximum``/``minimum``, ``where`` and ``clamp``."""

    __slots__ = ()
    data: np.ndarray

    def add(self, other: Any, *, alpha: float = 1) -> Tensor:
        """``self + alpha * other`` (``torch.add``)."""
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other: Any, *, alpha: float = 1) -> Tensor:
        """``self - alpha * other`` (``torch.sub``)."""
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> Tensor:
        return self * other

    def div(self, other: Any) -> Tensor:
        """True division (``torch.div`` without a rounding mode)."""
        return self / other

    def neg(self) -> Tensor:
        return -self

    def pow(self, exponent: Any) -> Tensor:
        return self**exponent

    def matmul(self, other: Any) -> Tensor:
        return self @ other

    # -------------------------------------------------------------- in place
    def _inplace(self, fn: Callable[..., Tensor], name: str, *operands: Any) -> Tensor:
        """Make ``self`` hold ``fn(self, *operands)``, as PyTorch's in-place ops do.

        Without gradients involved the data is overwritten (tensors sharing it see
        the change).  Otherwise ``self`` becomes the output of ``fn`` applied to its
        old contents and history; ops that used ``self`` before refuse to run
        backward afterwards, as with :meth:`__setitem__`.

        Raises:
            RuntimeError: on a leaf that requires grad outside ``no_grad``.
            TypeError: if the result's dtype cannot be stored in ``self`` (``int += 1.5``).
        """
        if self._recording() and self.requires_grad and self.is_leaf:
            raise RuntimeError(f"{name}: a leaf tensor that requires grad cannot be modified in "
                               "place; do it under convprop.no_grad() or on a clone()")
        old = self._detached_copy_of_history()
        out = fn(old, *(old if o is self else o for o in operands))  # x *= x reads the old x
        if not np.can_cast(out.dtype, self.dtype, "same_kind"):
            raise TypeError(f"{name}: the result's dtype {out.dtype} cannot be stored in a "
                            f"{self.dtype} tensor")
        self._version += 1
        if not out.requires_grad:
            self.data[...] = out.data
        else:
            self._rebase(out.data.astype(self.dtype, copy=False), (out,), lambda g: (g,),
                         lambda g: (g,))
        return self

    def __iadd__(self, other: Any) -> Tensor:
        return self._inplace(lambda t, o: t + o, "+=", other)

    def __isub__(self, other: Any) -> Tensor:
        return self._inplace(lambda t, o: t - o, "-=", other)

    def __imul__(self, other: Any) -> Tensor:
        return self._inplace(lambda t, o: t * o, "*=", other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._inplace(lambda t, o: t / o, "/=", other)

    def add_(self, other: Any, *, alpha: float = 1) -> Tensor:
        return self._inplace(lambda t, o: t.add(o, alpha=alpha), "add_", other)

    def sub_(self, other: Any, *, alpha: float = 1) -> Tensor:
        return self._inplace(lambda t, o: t.sub(o, alpha=alpha), "sub_", other)

    def mul_(self, other: Any) -> Tensor:
        return self._inplace(lambda t, o: t * o, "mul_", other)

    def div_(self, other: Any) -> Tensor:
        return self._inplace(lambda t, o: t / o, "div_", other)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        return self._inplace(lambda t, lo, hi: t.clamp(lo, hi), "clamp_", min, max)

    def zero_(self) -> Tensor:
        return self._inplace(lambda t: t * 0, "zero_")

    def fill_(self, value: Any) -> Tensor:
        """Set every element to ``value`` (a number or a one-element tensor)."""
        return self._inplace(lambda t, v: t * 0 + v, "fill_", value)

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src`` (broadcast to this shape) into this tensor; the gradient flows to ``src``."""
        return self._inplace(lambda t, v: t * 0 + v, "copy_", src)

    # -------------------------------------------- comparisons and logic (bool results)
    def __lt__(self, other: Any) -> Tensor:
        _, a, b = self._operands(other)
        return self._wrap(a < b)

    def __le__(self, other: Any) -> Tensor:
        _, a, b = self._operands(other)
        return self._wrap(a <= b)

    def __gt__(self, other: Any) -> Tensor:
        _, a, b = self._operands(other)
        return self._wrap(a > b)

    def __ge__(self, other: Any) -> Tensor:
        _, a, b = self._operands(other)
        return self._wrap(a >= b)

    def eq(self, other: Any) -> Tensor:
        """Elementwise ``==`` (bool)."""
        _, a, b = self._operands(other)
        return self._wrap(a == b)

    def ne(self, other: Any) -> Tensor:
        """Elementwise ``!=`` (bool)."""
        _, a, b = self._operands(other)
        return self._wrap(a != b)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        # anything that is no number (None, a string) is simply unequal, as in torch
        return self.eq(other) if _comparable(other) else NotImplemented

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return self.ne(other) if _comparable(other) else NotImplemented

    lt, le, gt, ge = __lt__, __le__, __gt__, __ge__

    def _logical(self, other: Any, op: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 name: str) -> Tensor:
        _, a, b = self._operands(other)
        if a.dtype.kind not in "biu":
            raise TypeError(f"{name} needs bool or integer tensors, got dtype {a.dtype}")
        return self._wrap(op(a, b))

    def __and__(self, other: Any) -> Tensor:
        return self._logical(other, np.bitwise_and, "&")

    def __or__(self, other: Any) -> Tensor:
        return self._logical(other, np.bitwise_or, "|")

    def __xor__(self, other: Any) -> Tensor:
        return self._logical(other, np.bitwise_xor, "^")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self) -> Tensor:
        if self.dtype.kind not in "biu":
            raise TypeError(f"~ needs a bool or integer tensor, got dtype {self.dtype}")
        return self._wrap(~self.data)

    # ------------------------------------------------------------- unary ops
    def _floating(self) -> np.ndarray:
        """The data as a floating array (integers become the default dtype, as torch.exp does)."""
        return self.data if self.dtype.kind == "f" else self.data.astype(get_default_dtype())

    def exp(self) -> Tensor:
        with np.errstate(over="ignore"):
            out = np.exp(self._floating())
        return self._wrap(out, (self,), lambda g: (g * out,), lambda g: (g * self.exp(),))

    def log(self) -> Tensor:
        a = self._floating()
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log(a)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            with np.errstate(divide="ignore", invalid="ignore"):
                return (g / a,)

        return self._wrap(out, (self,), backward, lambda g: (g / self,))

    def sqrt(self) -> Tensor:
        with np.errstate(invalid="ignore"):
            out = np.sqrt(self._floating())

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            with np.errstate(divide="ignore", invalid="ignore"):
                return (g * 0.5 / out,)

        return self._wrap(out, (self,), backward, lambda g: (g * 0.5 / self.sqrt(),))

    def abs(self) -> Tensor:
        a = self.data
        return self._wrap(np.abs(a), (self,), lambda g: (g * np.sign(a),),
                          lambda g: (g * self._wrap(np.sign(a)),))

    def sigmoid(self) -> Tensor:
        """Logistic function, stable for any |z|: exp is only taken of -|z|."""
        z = self._floating()
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(-np.abs(z))
            out = np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)

        def double(g: Tensor) -> tuple[Tensor]:
            s = self.sigmoid()
            return (g * s * (1 - s),)

        return self._wrap(out, (self,), lambda g: (g * out * (1 - out),), double)

    def tanh(self) -> Tensor:
        out = np.tanh(self._floating())

        def double(g: Tensor) -> tuple[Tensor]:
            t = self.tanh()
            return (g * (1 - t * t),)

        return self._wrap(out, (self,), lambda g: (g * (1 - out * out),), double)

    def relu(self) -> Tensor:
        """max(z, 0); NaN stays NaN and passes its gradient on, as in PyTorch."""
        a = self.data
        mask = ~(a <= 0)
        return self._wrap(np.maximum(a, 0).astype(a.dtype, copy=False), (self,),
                          lambda g: (g * mask,), lambda g: (g * self._wrap(mask),))

    def _pairwise(self, other: Any, take_self: Any) -> Tensor:
        o, a, b = self._operands(other)
        out = np.where(take_self(a, b) | np.isnan(a), a, b)
        out = np.where(np.isnan(b), b, out)

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            half = np.where(a == b, g / 2, g)
            return (np.where(take_self(b, a) & (a != b), 0, half),
                    np.where(take_self(a, b) & (a != b), 0, half))

        def double(g: Tensor) -> tuple[Tensor, Tensor]:
            half = np.where(a == b, 0.5, 1.0)
            return (g * self._wrap(np.where(take_self(b, a) & (a != b), 0, half)),
                    g * self._wrap(np.where(take_self(a, b) & (a != b), 0, half)))

        return self._wrap(out, (self, o), backward, double)

    def maximum(self, other: Any) -> Tensor:
        """Elementwise larger value (NaN wins); a tie sends half the gradient each way."""
        return self._pairwise(other, np.greater)

    def minimum(self, other: Any) -> Tensor:
        """Elementwise smaller value; see :meth:`maximum`."""
        return self._pairwise(other, np.less)


    # ------------------------------------------------------- where and clamp
    def where(self, condition: Any, other: Any) -> Tensor:
        """``self`` where ``condition``, else ``other`` (``torch.where(condition, self, other)``)."""
        c = condition.data if hasattr(condition, "_backward") else np.asarray(condition)
        if c.dtype != np.bool_:
            raise TypeError(f"where: condition must be a bool tensor, got dtype {c.dtype}")
        o, a, b = self._operands(other)
        return self._wrap(np.where(c, a, b), (self, o),
                          lambda g: (np.where(c, g, 0), np.where(c, 0, g)),
                          lambda g: (g.where(c, 0.0), g.where(~c, 0.0)))

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        """Limit every element to ``[min, max]`` (numbers or tensors, broadcast).

        ``out = minimum(maximum(x, min), max)``, so ``min > max`` gives ``max`` as in
        PyTorch.  The gradient goes to ``x`` where ``min <= x <= max``, to ``min``
        where ``x < min < max``, to ``max`` where ``x > max`` or ``max < min``
        (PyTorch's masks); NaN stays NaN.
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
            # PyTorch's masks; where min == max and x is outside, no one gets a gradient
            to_x = np.ones(out.shape, bool) if lo_d is None else a >= lo_d
            if hi_d is not None:
                to_x = to_x & (a <= hi_d)
            to_lo = None if lo_d is None else (a < lo_d) & (True if hi_d is None else lo_d < hi_d)
            to_hi = None if hi_d is None else (a > hi_d) | (False if lo_d is None else hi_d < lo_d)

        def backward(g: np.ndarray) -> tuple[np.ndarray, ...]:
            grads = [np.where(to_x, g, 0)]
            if lo_d is not None:
                grads.append(np.where(to_lo, g, 0))
            if hi_d is not None:
                grads.append(np.where(to_hi, g, 0))
            return tuple(grads)

        def double(g: Tensor) -> tuple[Tensor, ...]:
            masks = [to_x] + [m for m in (to_lo, to_hi) if m is not None]
            return tuple(g.where(np.broadcast_to(m, g.shape), 0.0) for m in masks)

        return self._wrap(out, tuple(parents), backward, double)

    clip = clamp

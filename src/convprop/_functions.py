"""``torch.<op>(tensor, ...)`` spellings of the Tensor methods (``cp.flatten(x, 1)``,
``cp.max(x, dim=1)``, ``cp.exp(x)``): each calls the method, so there is one
implementation.  Arrays and numbers are accepted as :func:`convprop.as_tensor` converts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .autograd import Tensor, as_tensor

# (the torch names below shadow Python's sum, max, min, abs, any, all and pow in this module)
__all__ = [
    "abs", "add", "all", "amax", "amin", "any", "argmax", "argmin", "chunk", "clamp", "clip",
    "clone", "div", "eq", "exp", "flatten", "ge", "gt", "is_tensor", "le", "log", "logsumexp",
    "lt", "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "narrow", "ne", "neg",
    "norm", "numel", "permute", "pow", "relu", "reshape", "sigmoid", "split", "sqrt",
    "squeeze", "std", "sub", "sum", "t", "tanh", "transpose", "unbind", "unflatten",
    "unsqueeze", "var",
]


def is_tensor(obj: Any) -> bool:
    """Whether ``obj`` is a convprop Tensor."""
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return as_tensor(input).numel()


# ------------------------------------------------------------------- reductions
def sum(input: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    return as_tensor(input).sum(dim, keepdim, dtype=dtype)


def mean(input: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    return as_tensor(input).mean(dim, keepdim, dtype=dtype)


def var(input: Any, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Tensor:
    return as_tensor(input).var(dim, unbiased, keepdim, correction=correction)


def std(input: Any, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Tensor:
    return as_tensor(input).std(dim, unbiased, keepdim, correction=correction)


def logsumexp(input: Any, dim: Any, keepdim: bool = False) -> Tensor:
    return as_tensor(input).logsumexp(dim, keepdim)


def norm(input: Any, p: float | str = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
    return as_tensor(input).norm(p, dim, keepdim)


def max(input: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """``max(x)``, ``max(x, dim)`` -> ``(values, indices)``, or ``max(x, other)``."""
    return as_tensor(input).max(dim, keepdim)


def min(input: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """``min(x)``, ``min(x, dim)`` -> ``(values, indices)``, or ``min(x, other)``."""
    return as_tensor(input).min(dim, keepdim)


def amax(input: Any, dim: Any = (), keepdim: bool = False) -> Tensor:
    return as_tensor(input).amax(dim, keepdim)


def amin(input: Any, dim: Any = (), keepdim: bool = False) -> Tensor:
    return as_tensor(input).amin(dim, keepdim)


def argmax(input: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return as_tensor(input).argmax(dim, keepdim)


def argmin(input: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return as_tensor(input).argmin(dim, keepdim)


def any(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    return as_tensor(input).any(dim, keepdim)


def all(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    return as_tensor(input).all(dim, keepdim)


# ------------------------------------------------------------------ elementwise
def exp(input: Any) -> Tensor:
    return as_tensor(input).exp()


def log(input: Any) -> Tensor:
    return as_tensor(input).log()


def sqrt(input: Any) -> Tensor:
    return as_tensor(input).sqrt()


def abs(input: Any) -> Tensor:
    return as_tensor(input).abs()


def sigmoid(input: Any) -> Tensor:
    return as_tensor(input).sigmoid()


def tanh(input: Any) -> Tensor:
    return as_tensor(input).tanh()


def relu(input: Any) -> Tensor:
    return as_tensor(input).relu()


def neg(input: Any) -> Tensor:
    return -as_tensor(input)


def clamp(input: Any, min: Any = None, max: Any = None) -> Tensor:
    return as_tensor(input).clamp(min, max)


clip = clamp


def maximum(input: Any, other: Any) -> Tensor:
    return as_tensor(input).maximum(other)


def minimum(input: Any, other: Any) -> Tensor:
    return as_tensor(input).minimum(other)


def add(input: Any, other: Any, *, alpha: float = 1) -> Tensor:
    return as_tensor(input).add(other, alpha=alpha)


def sub(input: Any, other: Any, *, alpha: float = 1) -> Tensor:
    return as_tensor(input).sub(other, alpha=alpha)


def mul(input: Any, other: Any) -> Tensor:
    return as_tensor(input) * other


def div(input: Any, other: Any) -> Tensor:
    return as_tensor(input) / other


def pow(input: Any, exponent: Any) -> Tensor:
    return as_tensor(input) ** exponent


def matmul(input: Any, other: Any) -> Tensor:
    return as_tensor(input) @ other


def eq(input: Any, other: Any) -> Tensor:
    return as_tensor(input) == other


def ne(input: Any, other: Any) -> Tensor:
    return as_tensor(input) != other


def lt(input: Any, other: Any) -> Tensor:
    return as_tensor(input) < other


def le(input: Any, other: Any) -> Tensor:
    return as_tensor(input) <= other


def gt(input: Any, other: Any) -> Tensor:
    return as_tensor(input) > other


def ge(input: Any, other: Any) -> Tensor:
    return as_tensor(input) >= other


def clone(input: Any) -> Tensor:
    return as_tensor(input).clone()


# ------------------------------------------------------------------------ shape
def reshape(input: Any, shape: Sequence[int]) -> Tensor:
    return as_tensor(input).reshape(shape)


def flatten(input: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return as_tensor(input).flatten(start_dim, end_dim)


def unflatten(input: Any, dim: int, sizes: Sequence[int]) -> Tensor:
    return as_tensor(input).unflatten(dim, sizes)


def permute(input: Any, dims: Sequence[int]) -> Tensor:
    return as_tensor(input).permute(dims)


def transpose(input: Any, dim0: int, dim1: int) -> Tensor:
    return as_tensor(input).transpose(dim0, dim1)


def t(input: Any) -> Tensor:
    return as_tensor(input).t()


def squeeze(input: Any, dim: Any = None) -> Tensor:
    return as_tensor(input).squeeze(dim)


def unsqueeze(input: Any, dim: int) -> Tensor:
    return as_tensor(input).unsqueeze(dim)


def narrow(input: Any, dim: int, start: int, length: int) -> Tensor:
    return as_tensor(input).narrow(dim, start, length)


def split(tensor: Any, split_size_or_sections: int | Sequence[int], dim: int = 0
          ) -> tuple[Tensor, ...]:
    return as_tensor(tensor).split(split_size_or_sections, dim)


def chunk(input: Any, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    return as_tensor(input).chunk(chunks, dim)


def unbind(input: Any, dim: int = 0) -> tuple[Tensor, ...]:
    return as_tensor(input).unbind(dim)

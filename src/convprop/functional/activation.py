"""Activations as functions: the element-wise ones (also Tensor methods), leaky ReLU
and the stable softmax family."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..autograd import Tensor, as_tensor


def sigmoid(input: Any) -> Tensor:
    """σ(z) = 1 / (1 + e^(−z)), the founding document's eq. (3); stable for any |z|."""
    return as_tensor(input).sigmoid()


def tanh(input: Any) -> Tensor:
    return as_tensor(input).tanh()


def relu(input: Any) -> Tensor:
    """max(z, 0); the gradient at 0 is 0, as in PyTorch."""
    return as_tensor(input).relu()


def exp(input: Any) -> Tensor:
    return as_tensor(input).exp()


def log(input: Any) -> Tensor:
    return as_tensor(input).log()


def leaky_relu(input: Any, negative_slope: float = 0.01) -> Tensor:
    """``x`` where ``x > 0``, else ``negative_slope * x``; at 0 the slope is
    ``negative_slope``, as in PyTorch."""
    x = as_tensor(input)
    a = x.data
    mask = a > 0
    slope = np.where(mask, 1.0, negative_slope).astype(a.dtype, copy=False)
    return Tensor._wrap(a * slope, (x,), lambda g: (g * slope,))


def _implicit_dim(ndim: int, name: str) -> int:
    """PyTorch's legacy rule when ``dim`` is omitted: 0 for 0-, 1- and 3-D input, else 1."""
    warnings.warn(
        f"Implicit dimension choice for {name} is deprecated (as in PyTorch); pass dim=",
        UserWarning,
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Any, dim: int | None = None) -> Tensor:
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim``, computed after subtracting the max.

    Backward (``s`` the output, ``g`` its gradient): ``s * (g - sum(g * s, dim))``.
    """
    x = as_tensor(input)
    if dim is None:
        dim = _implicit_dim(x.ndim, "softmax")
    a = x.data
    if a.ndim == 0:
        return Tensor._wrap(np.ones_like(a), (x,), lambda g: (np.zeros_like(g),))
    e = np.exp(a - a.max(axis=dim, keepdims=True))
    s = e / e.sum(axis=dim, keepdims=True)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        gs = g * s
        return (gs - s * gs.sum(axis=dim, keepdims=True),)

    return Tensor._wrap(s, (x,), backward)


def log_softmax(input: Any, dim: int | None = None) -> Tensor:
    """``x_i - log sum_j exp(x_j)`` along ``dim``, stable for any magnitude.

    Backward: ``g - softmax(x) * sum(g, dim)``.
    """
    x = as_tensor(input)
    if dim is None:
        dim = _implicit_dim(x.ndim, "log_softmax")
    a = x.data
    if a.ndim == 0:
        return Tensor._wrap(np.zeros_like(a), (x,), lambda g: (np.zeros_like(g),))
    out = log_softmax_array(a, dim)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g - np.exp(out) * g.sum(axis=dim, keepdims=True),)

    return Tensor._wrap(out, (x,), backward)


def log_softmax_array(a: np.ndarray, axis: int) -> np.ndarray:
    """Plain-ndarray stable log-softmax (shared with the fused losses)."""
    shifted = a - a.max(axis=axis, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted

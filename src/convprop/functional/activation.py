"""Element-wise activations as functions (each is also a Tensor method)."""

from __future__ import annotations

from typing import Any

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

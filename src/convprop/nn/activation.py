"""Activation layers: parameter-free wrappers of :mod:`convprop.functional`."""

from __future__ import annotations

from typing import Any

from ..autograd import Tensor, as_tensor
from ..functional.activation import leaky_relu, log_softmax, softmax
from .module import Module


class ReLU(Module):
    """``max(x, 0)``.  ``inplace`` is accepted for PyTorch compatibility and ignored
    (convprop never overwrites a tensor another op may need for its backward)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> Tensor:
        return as_tensor(input).relu()


class LeakyReLU(Module):
    """``x`` for ``x > 0``, else ``negative_slope * x``."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Any) -> Tensor:
        return leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``, stable for any ``|x|``."""

    def forward(self, input: Any) -> Tensor:
        return as_tensor(input).sigmoid()


class Tanh(Module):
    """``tanh(x)``."""

    def forward(self, input: Any) -> Tensor:
        return as_tensor(input).tanh()


class Softmax(Module):
    """Softmax along ``dim`` (PyTorch's legacy implicit choice, with a warning, when None)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> Tensor:
        return softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Log-softmax along ``dim``, computed stably."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> Tensor:
        return log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

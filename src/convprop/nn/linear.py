"""Fully connected layers and shape utilities."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dtypes import factory_dtype
from ..autograd import Tensor, as_tensor
from ..functional.linear import linear
from . import init
from ._checks import size_arg
from .module import Module, Parameter


class Linear(Module):
    """``y = x W^T + b`` over the last axis.

    Args:
        in_features: size of each input's last axis.
        out_features: size of each output's last axis.
        bias: learn an additive bias.
        device: ``None``, ``"cpu"`` or a torch CPU device (convprop runs on the CPU).
        dtype: parameter dtype (the default dtype, float32, unless given).

    Shapes:
        input ``(*, in_features)`` -> output ``(*, out_features)``; weight
        ``(out_features, in_features)``, bias ``(out_features,)``, initialised
        ``U(±1/sqrt(in_features))`` as in PyTorch.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dt = factory_dtype("Linear", device, dtype)
        self.in_features = size_arg("Linear", "in_features", in_features, minimum=0)
        self.out_features = size_arg("Linear", "out_features", out_features, minimum=0)
        in_features, out_features = self.in_features, self.out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dt))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_init_(self.weight, self.bias)

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expects input of shape (*, {self.in_features}), "
                             f"got {x.shape}")
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` into one: ``(N, C, H, W)`` -> ``(N, C*H*W)``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        if x.ndim and not (-x.ndim <= self.start_dim < x.ndim and -x.ndim <= self.end_dim < x.ndim):
            raise ValueError(f"{self!r}: dims out of range for input of shape {x.shape}")
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split axis ``dim`` into ``unflattened_size``: ``(N, C*H*W)`` -> ``(N, C, H, W)``
    (the inverse of :class:`Flatten`; one size may be -1).

    Args:
        dim: the axis to split (negative counts from the end).
        unflattened_size: a tuple or list of ints whose product is that axis's size.

    Shapes:
        input ``(*, S, *)`` -> output ``(*, U_1, ..., U_n, *)`` with ``prod(U) = S``.
    """

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"Unflatten: dim must be an int, got {type(dim).__name__}")
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, but found "
                            f"type {type(unflattened_size).__name__}")
        for i, s in enumerate(unflattened_size):
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                raise TypeError(f"Unflatten: unflattened_size must be tuple of ints, but found "
                                f"element of type {type(s).__name__} at pos {i}")
        self.dim, self.unflattened_size = int(dim), unflattened_size

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        if not -max(x.ndim, 1) <= self.dim < max(x.ndim, 1):
            raise ValueError(f"{self!r}: dim {self.dim} is out of range for input of shape "
                             f"{x.shape}")
        return x.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"

"""Channel-wise and alpha dropout layers; the masks come from convprop's default stream.

``nn.Dropout`` (element-wise) lives with the normalisation layers; these are its
relatives, each a few lines over :mod:`convprop.functional.dropout`.  In ``eval()``
every one of them is the identity.
"""

from __future__ import annotations

from typing import Any

from ..autograd import Tensor
from ..functional.dropout import (
    alpha_dropout,
    dropout1d,
    dropout2d,
    dropout3d,
    feature_alpha_dropout,
)
from .module import Module


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError(f"{type(self).__name__}: p must be a number, got {type(p).__name__}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: dropout probability p has to be between "
                             f"0 and 1, got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
    """Zero whole channels of ``(N, C, L)`` or ``(C, L)`` with probability ``p`` in
    training, scaling the kept ones by ``1/(1-p)``; see :func:`convprop.functional.dropout1d`."""

    def forward(self, input: Any) -> Tensor:
        return dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zero whole channels of ``(N, C, H, W)`` with probability ``p`` in training (a 3-D
    input is read as ``(N, C, L)``, as PyTorch); see :func:`convprop.functional.dropout2d`."""

    def forward(self, input: Any) -> Tensor:
        return dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    """Zero whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` with probability
    ``p`` in training; see :func:`convprop.functional.dropout3d`."""

    def forward(self, input: Any) -> Tensor:
        return dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Alpha dropout (keeps a standard normal input's mean and variance; for SELU
    networks) in training; see :func:`convprop.functional.alpha_dropout`.  As PyTorch,
    ``inplace`` is stored but the forward never writes into its input."""

    def forward(self, input: Any) -> Tensor:
        return alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels of ``(N, C, *)`` in training; see
    :func:`convprop.functional.feature_alpha_dropout`.  As PyTorch, ``inplace`` is stored
    but the forward never writes into its input."""

    def forward(self, input: Any) -> Tensor:
        return feature_alpha_dropout(input, self.p, self.training)


__all__ = ["AlphaDropout", "Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout"]

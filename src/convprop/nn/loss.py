"""Losses as modules: ``loss = nn.CrossEntropyLoss()(logits, targets)``.

Each holds its options and calls the fused function in
:mod:`convprop.functional.loss`.  The founding document's loss
``L = sum (o - y)^2`` is ``MSELoss(reduction="sum")``.
"""

from __future__ import annotations

from typing import Any

from ..autograd import Tensor
from ..functional.loss import (
    _check_reduction,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)
from .module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Squared error ``(input - target)^2`` reduced by ``reduction``
    (``'mean'``, ``'sum'``, ``'none'``).  ``MSELoss(reduction="sum")`` is the
    founding document's ``L = sum (o - y)^2``."""

    def forward(self, input: Any, target: Any) -> Tensor:
        return mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Absolute error ``|input - target|`` reduced by ``reduction``."""

    def forward(self, input: Any, target: Any) -> Tensor:
        return l1_loss(input, target, self.reduction)


class _WeightedClassLoss(_Loss):
    def __init__(self, weight: Any = None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index


class CrossEntropyLoss(_WeightedClassLoss):
    """Log-softmax + negative log-likelihood of class-index targets, in one stable op.

    Args:
        weight: optional ``(C,)`` per-class weights.
        ignore_index: target value that contributes nothing.
        reduction: ``'mean'`` (weighted mean over non-ignored targets), ``'sum'`` or ``'none'``.

    Call with logits ``(N, C)`` (or ``(N, C, d1, ...)``, or ``(C,)``) and integer
    targets ``(N,)`` (``(N, d1, ...)``, ``()``): an int ndarray or a Tensor of indices.
    """

    def forward(self, input: Any, target: Any) -> Tensor:
        return cross_entropy(input, target, self.weight, self.ignore_index, self.reduction)


class NLLLoss(_WeightedClassLoss):
    """Negative log-likelihood of class-index targets given log-probabilities;
    arguments as :class:`CrossEntropyLoss`."""

    def forward(self, input: Any, target: Any) -> Tensor:
        return nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities in [0, 1] (logs clamped at -100).

    Args:
        weight: optional rescaling broadcastable to the input.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
    """

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Any, target: Any) -> Tensor:
        return binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of ``sigmoid(input)`` computed stably from logits.

    Args:
        weight: optional rescaling broadcastable to the input.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
        pos_weight: optional weight of positive examples (one per class, last axis).
    """

    def __init__(self, weight: Any = None, reduction: str = "mean",
                 pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input: Any, target: Any) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                self.pos_weight)

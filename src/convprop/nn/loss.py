"""Losses as modules: ``loss = nn.CrossEntropyLoss()(logits, targets)``.

Each holds its options and calls the fused function in
:mod:`convprop.functional.loss`, with PyTorch's constructor arguments, order and
defaults (the deprecated ``size_average``/``reduce`` included).  A class
``weight`` (and ``BCEWithLogitsLoss``'s ``pos_weight``) is a buffer, so it
appears in the ``state_dict`` and follows ``.double()``, as in PyTorch.  The
founding document's loss ``L = sum (o - y)^2`` is ``MSELoss(reduction="sum")``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from ..functional import loss as L
from .module import Module, _as_array


class _Loss(Module):
    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        reduction = L._legacy_reduction(size_average, reduce, reduction)
        if type(self) is not KLDivLoss or reduction != "batchmean":
            L._check_reduction(reduction, type(self).__name__)
        self.reduction = reduction


def _buffer(value: Any) -> Tensor | None:
    """A weight given as array, list, convprop or torch tensor, as a Tensor buffer."""
    if value is None or isinstance(value, Tensor):
        return value
    return Tensor(np.asarray(_as_array(value)))


class _WeightedLoss(_Loss):
    def __init__(self, weight: Any = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _buffer(weight))


class MSELoss(_Loss):
    """Squared error ``(input - target)^2`` reduced by ``reduction``
    (``'mean'``, ``'sum'``, ``'none'``).  ``MSELoss(reduction="sum")`` is the
    founding document's ``L = sum (o - y)^2``."""

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Absolute error ``|input - target|`` reduced by ``reduction``."""

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.l1_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Log-softmax + negative log-likelihood, in one stable op.

    Args:
        weight: optional ``(C,)`` per-class weights (a buffer).
        size_average, reduce: deprecated, mapped onto ``reduction``.
        ignore_index: class-index target that contributes nothing.
        reduction: ``'mean'`` (weighted mean over non-ignored targets), ``'sum'`` or ``'none'``.
        label_smoothing: mix ``label_smoothing / C`` of the uniform distribution into
            the targets.

    Call with logits ``(N, C)`` (or ``(N, C, d1, ...)``, or ``(C,)``) and integer
    targets ``(N,)`` (``(N, d1, ...)``, ``()``), or class probabilities of the
    logits' shape.
    """

    def __init__(self, weight: Any = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], "
                             f"got {label_smoothing}")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class-index targets given log-probabilities;
    arguments as :class:`CrossEntropyLoss` (without ``label_smoothing``)."""

    def __init__(self, weight: Any = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in [0, 1] (logs clamped at -100).

    Args:
        weight: optional rescaling broadcastable to the input (a buffer).
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
    """

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy of ``sigmoid(input)`` computed stably from logits.

    Args:
        weight: optional rescaling broadcastable to the input (a buffer).
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
        pos_weight: optional weight of positive examples (one per class, last axis; a buffer).
    """

    def __init__(self, weight: Any = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean",
                 pos_weight: Any = None) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", _buffer(pos_weight))

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class SmoothL1Loss(_Loss):
    """Quadratic for ``|input - target| < beta``, linear beyond (L1 when ``beta = 0``)."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be >= 0, got {beta}")
        self.beta = beta

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Quadratic for ``|input - target| < delta``, then linear with slope ``delta``."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        if delta <= 0:
            raise ValueError(f"HuberLoss: delta must be > 0, got {delta}")
        self.delta = delta

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.huber_loss(input, target, self.reduction, self.delta)


class KLDivLoss(_Loss):
    """KL divergence of ``target`` from ``exp(input)`` (input: log-probabilities).

    Args:
        reduction: ``'batchmean'`` (the KL divergence per sample), ``'sum'``, ``'none'``,
            or ``'mean'`` (over every element; PyTorch's default, with its warning).
        log_target: the target is given as log-probabilities.
    """

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood (``log_input``: the input is ``log λ``; ``full``:
    add Stirling's term; ``eps`` keeps ``log(λ + eps)`` finite)."""

    def __init__(self, log_input: bool = True, full: bool = False,
                 size_average: bool | None = None, eps: float = 1e-8,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input: Any, target: Any) -> Tensor:
        return L.poisson_nll_loss(log_input, target, self.log_input, self.full, eps=self.eps,
                                  reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood; call with ``(input, target, var)``."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.full, self.eps = full, eps

    def forward(self, input: Any, target: Any, var: Any) -> Tensor:
        return L.gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class HingeEmbeddingLoss(_Loss):
    """``x`` for ``y = 1``, ``max(0, margin - x)`` for ``y = -1``."""

    def __init__(self, margin: float = 1.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.hinge_embedding_loss(input, target, self.margin, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """``max(0, -y (x1 - x2) + margin)``; call with ``(input1, input2, target)``."""

    def __init__(self, margin: float = 0.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Any, input2: Any, target: Any) -> Tensor:
        return L.margin_ranking_loss(input1, input2, target, self.margin,
                                     reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """``log(1 + exp(-y x))`` for labels ``y = ±1``."""

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.soft_margin_loss(input, target, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge loss (``p`` 1 or 2, ``margin``, per-class ``weight`` buffer)."""

    def __init__(self, p: int = 1, margin: float = 1.0, weight: Any = None,
                 size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: p must be 1 or 2, got {p}")
        if weight is not None and np.ndim(_as_array(weight)) != 1:
            raise ValueError("MultiMarginLoss: weight must be 1-D (one per class), got shape "
                             f"{np.shape(_as_array(weight))}")
        super().__init__(weight, size_average, reduce, reduction)
        self.p, self.margin = p, margin

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.multi_margin_loss(input, target, self.p, self.margin, self.weight,
                                   reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    """Multi-label hinge loss; targets list each row's classes, ended by ``-1``."""

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.multilabel_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """Per-sample mean over classes of the binary cross-entropy with logits
    (optional per-class ``weight`` buffer)."""

    def forward(self, input: Any, target: Any) -> Tensor:
        return L.multilabel_soft_margin_loss(input, target, self.weight,
                                             reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    """``1 - cos(x1, x2)`` for ``y = 1``, ``max(0, cos(x1, x2) - margin)`` for ``y = -1``."""

    def __init__(self, margin: float = 0.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Any, input2: Any, target: Any) -> Tensor:
        return L.cosine_embedding_loss(input1, input2, target, self.margin,
                                       reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """``max(0, margin + d(a, p) - d(a, n))`` with the ``p``-norm distance (``swap``: use
    the smaller of ``d(a, n)`` and ``d(p, n)``)."""

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: margin must be > 0, got {margin}")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor: Any, positive: Any, negative: Any) -> Tensor:
        return L.triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps,
                                     self.swap, reduction=self.reduction)

"""Batch normalisation and dropout layers (their behaviour depends on ``train()``/``eval()``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor, as_tensor
from ..functional.normalization import batch_norm, dropout
from . import init
from .conv import _dtype
from .module import Module, Parameter

_LAYOUTS = {2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}


class _BatchNorm(Module):
    ranks: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype: Any = None,
                 *, bias: bool = True) -> None:
        super().__init__()
        self.has_bias = affine and bias
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dt = _dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dt))
        else:
            self.register_parameter("weight", None)
        if self.has_bias:
            self.bias = Parameter(np.zeros(num_features, dtype=dt))
        else:
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor._wrap(np.zeros(num_features, dtype=dt)))
            self.register_buffer("running_var", Tensor._wrap(np.ones(num_features, dtype=dt)))
            self.register_buffer("num_batches_tracked", Tensor._wrap(np.array(0, dtype=np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
        if self.has_bias:
            init.zeros_(self.bias)

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:
            layouts = " or ".join(_LAYOUTS[r] for r in self.ranks)
            raise ValueError(f"{self!r} expects input {layouts} with C={self.num_features}, "
                             f"got {x.shape}")
        factor = 0.0 if self.momentum is None else self.momentum
        tracking = self.training and self.track_running_stats
        if tracking and self.momentum is None:  # cumulative moving average
            factor = 1.0 / (float(self.num_batches_tracked.data) + 1)
        out = batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training or self.running_mean is None, factor, self.eps)
        if tracking:
            self.num_batches_tracked.data += 1
        return out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.has_bias}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` per channel ``C``.

    Args:
        num_features: ``C``.
        eps: added to the variance.
        momentum: weight of each new batch in the running statistics (None: a
            cumulative average over all batches so far).
        affine: learn a per-channel scale (``weight``, ones) and shift (``bias``, zeros).
        bias: with ``affine``, whether to learn the shift (keyword only, PyTorch 2.13).
        track_running_stats: keep ``running_mean``/``running_var`` for ``eval()``.
        dtype: parameter dtype (float32 by default).
    """

    ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` per channel; arguments as :class:`BatchNorm1d`."""

    ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of ``(N, C, D, H, W)`` per channel; arguments as :class:`BatchNorm1d`."""

    ranks = (5,)


class Dropout(Module):
    """Zero each element with probability ``p`` in training, scaling the rest by
    ``1/(1-p)``; the identity in ``eval()``.  Masks come from the generator that
    :func:`convprop.nn.init.manual_seed` seeds."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input: Any) -> Tensor:
        return dropout(input, self.p, self.training, init.generator())

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

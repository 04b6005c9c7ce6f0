"""Normalisation layers (batch, group, layer, instance, local response) and dropout."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._dtypes import factory_dtype
from ..autograd import Tensor, as_tensor
from ..functional.normalization import (
    batch_norm,
    dropout,
    group_norm,
    instance_norm,
    layer_norm,
    local_response_norm,
)
from . import init
from .module import Module, Parameter

_LAYOUTS = {2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}


class _BatchNorm(Module):
    ranks: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        dt = factory_dtype(type(self).__name__, device, dtype)
        self.has_bias = affine and bias
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
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
        device: ``None``, ``"cpu"`` or a torch CPU device (convprop runs on the CPU).
        dtype: parameter and running-statistics dtype (the default dtype, float32, unless given).
    """

    ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` per channel; arguments as :class:`BatchNorm1d`."""

    ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of ``(N, C, D, H, W)`` per channel; arguments as :class:`BatchNorm1d`."""

    ranks = (5,)


class _InstanceNorm(_BatchNorm):
    """Per-sample, per-channel normalisation over the spatial cells; PyTorch's defaults
    (no affine, no running statistics) differ from batch normalisation's."""

    nd = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        name = type(self).__name__
        if x.ndim not in (self.nd + 1, self.nd + 2):
            layout = _LAYOUTS[self.nd + 2]
            raise ValueError(f"{name} expects input {layout} or unbatched {'(' + layout[4:]}, "
                             f"got shape {x.shape}")
        channel = x.ndim - self.nd - 1
        if x.shape[channel] != self.num_features:
            if self.affine:
                raise ValueError(f"{name}: expected input's size at dim={channel} to match "
                                 f"num_features ({self.num_features}), but got: "
                                 f"{x.shape[channel]}")
            warnings.warn(f"{name}: input's size at dim={channel} does not match num_features "
                          f"({self.num_features}); it is not used because affine=False",
                          stacklevel=2)
        unbatched = x.ndim == self.nd + 1
        if unbatched:
            x = x.reshape((1,) + x.shape)
        momentum = 0.0 if self.momentum is None else self.momentum
        try:
            y = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats, momentum, self.eps)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from e
        return y.reshape(y.shape[1:]) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of ``(N, C, L)`` or ``(C, L)``: each sample's channel over ``L``.

    Args:
        num_features: ``C``.
        eps: added to the variance.
        momentum: weight of each new batch in the running statistics (None: they stay put).
        affine: learn a per-channel scale and shift (default False, as PyTorch).
        track_running_stats: keep running statistics and use them in ``eval()``.
        device: ``None``, ``"cpu"`` or a torch CPU device (convprop runs on the CPU).
        dtype: parameter and running-statistics dtype (the default dtype, float32, unless given).
        bias: with ``affine``, whether to learn the shift (keyword only).
    """

    nd = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of ``(N, C, H, W)`` or ``(C, H, W)``; arguments as
    :class:`InstanceNorm1d`."""

    nd = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of ``(N, C, D, H, W)`` or ``(C, D, H, W)``; arguments as
    :class:`InstanceNorm1d`."""

    nd = 3


class GroupNorm(Module):
    """Normalise each group of ``num_channels / num_groups`` channels per sample.

    Args:
        num_groups: ``G``, dividing ``num_channels``.
        num_channels: ``C`` of the ``(N, C, *)`` input.
        eps: added to the variance.
        affine: learn a per-channel scale (ones) and shift (zeros).
        device: ``None``, ``"cpu"`` or a torch CPU device (convprop runs on the CPU).
        dtype: parameter dtype (the default dtype, float32, unless given).
        bias: with ``affine``, whether to learn the shift (keyword only).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__()
        dt = factory_dtype("GroupNorm", device, dtype)
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = (
            num_groups, num_channels, eps, affine)
        self.has_bias = affine and bias
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=dt))
        else:
            self.register_parameter("weight", None)
        if self.has_bias:
            self.bias = Parameter(np.zeros(num_channels, dtype=dt))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.affine:
            init.ones_(self.weight)
        if self.has_bias:
            init.zeros_(self.bias)

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{self!r} expects input (N, {self.num_channels}, *), got {x.shape}")
        try:
            return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from e

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.has_bias}")


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dims of every sample.

    Args:
        normalized_shape: an int or the trailing shape.
        eps: added to the variance.
        elementwise_affine: learn an elementwise scale (ones) and shift (zeros).
        bias: with ``elementwise_affine``, whether to learn the shift.
        device: ``None``, ``"cpu"`` or a torch CPU device (convprop runs on the CPU).
        dtype: parameter dtype (the default dtype, float32, unless given).
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        dt = factory_dtype("LayerNorm", device, dtype)
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(
            normalized_shape)
        if not all(isinstance(v, (int, np.integer)) and v >= 0 for v in shape):
            raise TypeError(f"LayerNorm: normalized_shape must be an int or a sequence of ints, "
                            f"got {normalized_shape!r}")
        self.normalized_shape = tuple(int(v) for v in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dt))
        else:
            self.register_parameter("weight", None)
        if elementwise_affine and bias:
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dt))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: Any) -> Tensor:
        try:
            return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from e

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Normalise each value by its ``size`` neighbouring channels; see
    :func:`convprop.functional.local_response_norm`."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input: Any) -> Tensor:
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class Dropout(Module):
    """Zero each element with probability ``p`` in training, scaling the rest by
    ``1/(1-p)``; the identity in ``eval()``.  Masks come from convprop's default
    stream (:func:`convprop.manual_seed`); see :func:`convprop.functional.dropout`.

    Args:
        p: drop probability in [0, 1].
        inplace: write the result into the input (PyTorch's in-place rules).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"Dropout: p must be a number, got {type(p).__name__}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1] (a probability), got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input: Any) -> Tensor:
        return dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

"""Pooling layers: hold the window arguments, call :mod:`convprop.functional.pool`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._windows import ntuple
from ..autograd import Tensor, as_tensor
from ..functional.adaptive_pool import adaptive_avg_pool_nd, adaptive_max_pool_nd
from ..functional.pool import (
    avg_pool_nd,
    lp_pool_nd,
    max_pool_nd,
    max_unpool_nd,
)
from .module import Module


def _check_rank(layer: Module, x: Tensor, nd: int) -> None:
    if x.ndim not in (nd + 1, nd + 2):
        spatial = ", ".join(("D", "H", "W")[3 - nd:])
        raise ValueError(f"{layer!r} expects input of shape (N, C, {spatial}) or (C, {spatial}), "
                         f"got {x.shape}")


def _call(layer: Module, fn: Any, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    try:
        return fn(x, *args, **kwargs)
    except ValueError as e:
        raise ValueError(f"{layer!r}: {e}") from e


class _MaxPoolNd(Module):
    nd = 0

    def __init__(self, kernel_size: int | Sequence[int], stride: Any = None,
                 padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Any) -> Any:
        x = as_tensor(input)
        _check_rank(self, x, self.nd)
        return _call(self, max_pool_nd, x, self.kernel_size, self.stride, self.padding,
                     self.dilation, self.ceil_mode, self.return_indices, nd=self.nd)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max pooling over ``(N, C, L)``; see :func:`convprop.functional.max_pool1d`."""

    nd = 1


class MaxPool2d(_MaxPoolNd):
    """Max pooling over ``(N, C, H, W)``; see :func:`convprop.functional.max_pool2d`."""

    nd = 2


class MaxPool3d(_MaxPoolNd):
    """Max pooling over ``(N, C, D, H, W)``; see :func:`convprop.functional.max_pool3d`."""

    nd = 3


class _AvgPoolNd(Module):
    nd = 0

    def __init__(self, kernel_size: int | Sequence[int], stride: Any = None,
                 padding: int | Sequence[int] = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        _check_rank(self, x, self.nd)
        return _call(self, avg_pool_nd, x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                     self.count_include_pad, self.divisor_override, nd=self.nd)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Average pooling over ``(N, C, L)``; see :func:`convprop.functional.avg_pool1d`."""

    nd = 1

    def __init__(self, kernel_size: int | Sequence[int], stride: Any = None,
                 padding: int | Sequence[int] = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        # PyTorch keeps AvgPool1d's arguments as 1-tuples (it shows them so)
        self.kernel_size = ntuple(kernel_size, 1, "kernel_size")
        self.stride = ntuple(self.stride, 1, "stride")
        self.padding = ntuple(padding, 1, "padding")


class AvgPool2d(_AvgPoolNd):
    """Average pooling over ``(N, C, H, W)``; see :func:`convprop.functional.avg_pool2d`."""

    nd = 2


class AvgPool3d(_AvgPoolNd):
    """Average pooling over ``(N, C, D, H, W)``; see :func:`convprop.functional.avg_pool3d`."""

    nd = 3


class _AdaptiveAvgPoolNd(Module):
    nd = 0

    def __init__(self, output_size: int | None | Sequence[int | None]) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        _check_rank(self, x, self.nd)
        return _call(self, adaptive_avg_pool_nd, x, self.output_size, nd=self.nd)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Average pooling of ``(N, C, L)`` to a fixed length; see
    :func:`convprop.functional.adaptive_avg_pool1d`."""

    nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average pooling of ``(N, C, H, W)`` to a fixed size (``1``: global average);
    see :func:`convprop.functional.adaptive_avg_pool2d`."""

    nd = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Average pooling of ``(N, C, D, H, W)`` to a fixed size; see
    :func:`convprop.functional.adaptive_avg_pool3d`."""

    nd = 3


class _AdaptiveMaxPoolNd(Module):
    nd = 0

    def __init__(self, output_size: int | None | Sequence[int | None],
                 return_indices: bool = False) -> None:
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Any) -> Any:
        x = as_tensor(input)
        _check_rank(self, x, self.nd)
        return _call(self, adaptive_max_pool_nd, x, self.output_size, self.return_indices,
                     nd=self.nd)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max pooling of ``(N, C, L)`` to a fixed length; see
    :func:`convprop.functional.adaptive_max_pool1d`."""

    nd = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max pooling of ``(N, C, H, W)`` to a fixed size; see
    :func:`convprop.functional.adaptive_max_pool2d`."""

    nd = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Max pooling of ``(N, C, D, H, W)`` to a fixed size; see
    :func:`convprop.functional.adaptive_max_pool3d`."""

    nd = 3


class _MaxUnpoolNd(Module):
    nd = 0

    def __init__(self, kernel_size: int | Sequence[int], stride: Any = None,
                 padding: int | Sequence[int] = 0) -> None:
        super().__init__()
        # PyTorch keeps these as tuples (and shows them so)
        self.kernel_size = ntuple(kernel_size, self.nd, "kernel_size")
        self.stride = ntuple(kernel_size if stride is None else stride, self.nd, "stride")
        self.padding = ntuple(padding, self.nd, "padding")

    def forward(self, input: Any, indices: Any, output_size: Sequence[int] | None = None
                ) -> Tensor:
        x = as_tensor(input)
        _check_rank(self, x, self.nd)
        return _call(self, max_unpool_nd, x, indices, self.kernel_size, self.stride,
                     self.padding, output_size, nd=self.nd)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Inverse of :class:`MaxPool1d` given its indices; see
    :func:`convprop.functional.max_unpool1d`."""

    nd = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """Inverse of :class:`MaxPool2d` given its indices; see
    :func:`convprop.functional.max_unpool2d`."""

    nd = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """Inverse of :class:`MaxPool3d` given its indices; see
    :func:`convprop.functional.max_unpool3d`."""

    nd = 3


class _LPPoolNd(Module):
    nd = 0

    def __init__(self, norm_type: float, kernel_size: int | Sequence[int], stride: Any = None,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, kernel_size
        self.stride, self.ceil_mode = stride, ceil_mode

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        _check_rank(self, x, self.nd)
        return _call(self, lp_pool_nd, x, self.norm_type, self.kernel_size, self.stride,
                     self.ceil_mode, nd=self.nd)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """Power-average pooling over ``(N, C, L)``; see :func:`convprop.functional.lp_pool1d`."""

    nd = 1


class LPPool2d(_LPPoolNd):
    """Power-average pooling over ``(N, C, H, W)``; see :func:`convprop.functional.lp_pool2d`."""

    nd = 2


class LPPool3d(_LPPoolNd):
    """Power-average pooling over ``(N, C, D, H, W)``; see
    :func:`convprop.functional.lp_pool3d`."""

    nd = 3

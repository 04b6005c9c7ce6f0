"""Convolution layers: own a weight and a bias, call :mod:`convprop.functional`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._dtypes import factory_dtype
from .._windows import _is_int, ntuple, positive, transpose_output_shape
from ..autograd import Tensor, as_tensor
from ..functional.conv import PADDING_MODES, conv_nd, conv_transpose_nd
from . import init
from ._checks import size_arg
from .module import Module, Parameter


def check_input(layer: Module, x: Tensor, nd: int, channels: int) -> None:
    """Raise a ValueError naming ``layer`` and both shapes unless ``x`` is
    ``(N, channels, *spatial)`` or unbatched ``(channels, *spatial)`` with ``nd`` spatial dims."""
    spatial = ", ".join(("D", "H", "W")[3 - nd:]) if nd <= 3 else "..."
    if x.ndim not in (nd + 1, nd + 2) or x.shape[x.ndim - nd - 1] != channels:
        raise ValueError(
            f"{layer!r} expects input of shape (N, {channels}, {spatial}) or "
            f"({channels}, {spatial}), got {x.shape}"
        )


class _ConvNd(Module):
    nd: int = 0
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int], padding: Any, dilation: int | Sequence[int],
                 groups: int, bias: bool, padding_mode: str, output_padding: Any = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        nd, name = self.nd, type(self).__name__
        dt = factory_dtype(name, device, dtype)
        in_channels = size_arg(name, "in_channels", in_channels)
        out_channels = size_arg(name, "out_channels", out_channels)
        if not _is_int(groups) or groups < 1:
            raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups "
                             f"({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups "
                             f"({groups})")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, "
                             f"got {padding_mode!r}")
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported (as in PyTorch)")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = positive(kernel_size, nd, "kernel_size")
        self.stride = positive(stride, nd, "stride")
        self.dilation = positive(dilation, nd, "dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid") or self.transposed:
                raise ValueError(f"{name}: invalid padding {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' requires stride 1, got {self.stride}")
            self.padding: Any = padding
        elif isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list))
                                                        for p in padding):
            self.padding = tuple(tuple(p) for p in padding)  # (before, after) pairs
        else:
            self.padding = ntuple(padding, nd, "padding")
        self.output_padding = ntuple(output_padding, nd, "output_padding")
        self.padding_mode = padding_mode
        if self.transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dt))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_init_(self.weight, self.bias)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self.nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: Any = 0,
                 dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, device, dtype)

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        check_input(self, x, self.nd, self.in_channels)
        try:
            return conv_nd(x, self.weight, self.bias, self.stride, self.padding,
                                  self.dilation, self.groups, self.padding_mode, nd=self.nd)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e} (input shape {x.shape})") from e


class Conv1d(_Conv):
    """1-D convolution over ``(N, C_in, L)``; weight ``(C_out, C_in/groups, K)``.

    Arguments as :func:`convprop.functional.conv1d` plus ``in_channels``,
    ``out_channels``, ``kernel_size``, ``bias``, ``device`` (the CPU) and ``dtype``
    (the default dtype, float32, unless given).
    Initialised as PyTorch: weight and bias ``U(±1/sqrt(C_in/groups * K))``.
    """

    nd = 1


class Conv2d(_Conv):
    """2-D convolution over ``(N, C_in, H, W)``; weight ``(C_out, C_in/groups, KH, KW)``.

    Arguments as :func:`convprop.functional.conv2d` plus ``in_channels``,
    ``out_channels``, ``kernel_size``, ``bias``, ``device`` (the CPU) and ``dtype``
    (the default dtype, float32, unless given).
    Initialised as PyTorch: weight and bias ``U(±1/sqrt(C_in/groups * KH * KW))``.
    """

    nd = 2


class Conv3d(_Conv):
    """3-D convolution over ``(N, C_in, D, H, W)``; weight ``(C_out, C_in/groups, KD, KH, KW)``.

    Arguments as :func:`convprop.functional.conv3d` plus ``in_channels``,
    ``out_channels``, ``kernel_size``, ``bias``, ``device`` (the CPU) and ``dtype``
    (the default dtype, float32, unless given).
    """

    nd = 3


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                 output_padding: int | Sequence[int] = 0, groups: int = 1, bias: bool = True,
                 dilation: int | Sequence[int] = 1, padding_mode: str = "zeros",
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device, dtype)

    def _output_padding(self, x: Tensor, output_size: Sequence[int] | None) -> tuple[int, ...]:
        """PyTorch's rule: the ``output_padding`` that makes the output ``output_size``."""
        if output_size is None:
            return self.output_padding
        want = tuple(output_size)[-self.nd:]
        if len(want) != self.nd:
            raise ValueError(f"{self!r}: output_size needs {self.nd} spatial sizes, "
                             f"got {output_size!r}")
        smallest = transpose_output_shape(x.shape[-self.nd:], self.kernel_size, self.stride,
                                          self.padding, (0,) * self.nd, self.dilation)
        extra = tuple(w - s for w, s in zip(want, smallest))
        if any(e < 0 or e >= max(s, d) for e, s, d in zip(extra, self.stride, self.dilation)):
            raise ValueError(
                f"{self!r}: requested output size {want} is not reachable from input "
                f"{x.shape}; the smallest is {smallest}"
            )
        return extra

    def forward(self, input: Any, output_size: Sequence[int] | None = None) -> Tensor:
        x = as_tensor(input)
        check_input(self, x, self.nd, self.in_channels)
        output_padding = self._output_padding(x, output_size)
        try:
            return conv_transpose_nd(x, self.weight, self.bias, self.stride, self.padding,
                                            output_padding, self.groups, self.dilation, nd=self.nd)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e} (input shape {x.shape})") from e


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution; weight ``(C_in, C_out/groups, K)``.

    Arguments as :func:`convprop.functional.conv_transpose1d` plus ``device`` and ``dtype``
    (as :class:`Conv1d`); ``forward`` also
    takes ``output_size`` to pick the ``output_padding``, as in PyTorch.
    """

    nd = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution; weight ``(C_in, C_out/groups, KH, KW)``.

    Arguments as :func:`convprop.functional.conv_transpose2d` plus ``device`` and ``dtype``
    (as :class:`Conv2d`); ``forward`` also
    takes ``output_size`` to pick the ``output_padding``, as in PyTorch.
    """

    nd = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution; weight ``(C_in, C_out/groups, KD, KH, KW)``.

    Arguments as :func:`convprop.functional.conv_transpose3d` plus ``device`` and ``dtype``
    (as :class:`Conv3d`); ``forward`` also
    takes ``output_size`` to pick the ``output_padding``, as in PyTorch.
    """

    nd = 3

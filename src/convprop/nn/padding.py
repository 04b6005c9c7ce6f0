"""Padding layers: ``ZeroPad``, ``ConstantPad``, ``ReflectionPad``, ``ReplicationPad`` and
``CircularPad`` in 1, 2 and 3 dimensions, each a thin module over :func:`convprop.functional.pad`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._windows import _is_int
from ..autograd import Tensor, as_tensor
from ..functional.pad import pad
from .module import Module

_LAYOUTS = {1: "(C, W) or (N, C, W)", 2: "(C, H, W) or (N, C, H, W)",
            3: "(C, D, H, W) or (N, C, D, H, W)"}


def _pad_tuple(padding: int | Sequence[int], nd: int, name: str) -> tuple[int, ...]:
    """An int pads every side; else ``2*nd`` ints in F.pad's order (last axis first)."""
    if _is_int(padding):
        return (int(padding),) * (2 * nd)
    if isinstance(padding, (tuple, list)) and len(padding) == 2 * nd and all(
            _is_int(p) for p in padding):
        return tuple(int(p) for p in padding)
    raise TypeError(f"{name}: padding must be an int or a tuple of {2 * nd} ints "
                    f"(left, right{', top, bottom' if nd > 1 else ''}"
                    f"{', front, back' if nd > 2 else ''}), got {padding!r}")


class _PadNd(Module):
    """A padding layer: ``padding`` only (PyTorch's reflection, replication and circular
    layers take no fill ``value``; the constant layers add one)."""

    nd = 0
    mode = "constant"
    # the ranks PyTorch's module accepts; ZeroPad and ConstantPad accept any rank
    check_rank = True

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__()
        self.padding = _pad_tuple(padding, self.nd, type(self).__name__)

    def _pad(self, x: Tensor) -> Tensor:
        return pad(x, self.padding, self.mode)

    def forward(self, input: Any) -> Tensor:
        x = as_tensor(input)
        if self.check_rank and x.ndim not in (self.nd + 1, self.nd + 2):
            raise ValueError(f"{type(self).__name__} expects input {_LAYOUTS[self.nd]}, "
                             f"got shape {x.shape}")
        if x.ndim < self.nd:
            raise ValueError(f"{type(self).__name__} pads {self.nd} trailing dims, got input of "
                             f"shape {x.shape}")
        try:
            return self._pad(x)
        except ValueError as e:
            raise ValueError(f"{type(self).__name__}{self.padding}: {e}") from e

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    check_rank = False

    def __init__(self, padding: int | Sequence[int], value: float) -> None:
        super().__init__(padding)
        self.value = value

    def _pad(self, x: Tensor) -> Tensor:
        return pad(x, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with ``value``: ``padding`` is an int or ``(left, right)``;
    negative entries crop."""

    nd = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last 2 dims with ``value``: an int or ``(left, right, top, bottom)``."""

    nd = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last 3 dims with ``value``: an int or ``(left, right, top, bottom, front, back)``."""

    nd = 3


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd):
    """Pad the last dim with zeros: an int or ``(left, right)``; negative entries crop."""

    nd = 1


class ZeroPad2d(_ZeroPadNd):
    """Pad the last 2 dims with zeros: an int or ``(left, right, top, bottom)``."""

    nd = 2


class ZeroPad3d(_ZeroPadNd):
    """Pad the last 3 dims with zeros: an int or ``(left, right, top, bottom, front, back)``."""

    nd = 3


class ReflectionPad1d(_PadNd):
    """Mirror ``(N, C, W)`` about its edges (the edge not repeated); each pad < W."""

    nd, mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Mirror ``(N, C, H, W)`` about its edges; ``(left, right, top, bottom)``."""

    nd, mode = 2, "reflect"


class ReflectionPad3d(_PadNd):
    """Mirror ``(N, C, D, H, W)`` about its edges; ``(left, right, top, bottom, front, back)``."""

    nd, mode = 3, "reflect"


class ReplicationPad1d(_PadNd):
    """Repeat the edge cells of ``(N, C, W)``."""

    nd, mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Repeat the edge cells of ``(N, C, H, W)``; ``(left, right, top, bottom)``."""

    nd, mode = 2, "replicate"


class ReplicationPad3d(_PadNd):
    """Repeat the edge cells of ``(N, C, D, H, W)``."""

    nd, mode = 3, "replicate"


class CircularPad1d(_PadNd):
    """Wrap ``(N, C, W)`` around (periodic padding); each pad <= W."""

    nd, mode = 1, "circular"


class CircularPad2d(_PadNd):
    """Wrap ``(N, C, H, W)`` around; ``(left, right, top, bottom)``."""

    nd, mode = 2, "circular"


class CircularPad3d(_PadNd):
    """Wrap ``(N, C, D, H, W)`` around; ``(left, right, top, bottom, front, back)``."""

    nd, mode = 3, "circular"

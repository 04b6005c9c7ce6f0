"""Pure-ndarray convolution algorithms behind one interface, and the one place that picks.

Every algorithm module provides the same three functions with the same
normalised arguments (see :mod:`convprop.kernels.gemm`):

* ``conv_forward(xp, w, stride, dilation, groups)``
* ``conv_input_grad(gy, w, padded_shape, stride, dilation, groups)``
* ``conv_weight_grad(xp, gy, kernel, stride, dilation, groups)``

:func:`conv_forward`, :func:`conv_input_grad` and :func:`conv_weight_grad` here
dispatch to the algorithm chosen for the shape.  :func:`force` pins one
algorithm (tests use it to hold every path to the same reference).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from types import ModuleType

import numpy as np

from . import gemm

ALGORITHMS: dict[str, ModuleType] = {"gemm": gemm}
_forced: str | None = None


@contextlib.contextmanager
def force(name: str | None) -> Iterator[None]:
    """Use algorithm ``name`` for every convolution inside the ``with`` block."""
    global _forced
    if name is not None and name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    previous, _forced = _forced, name
    try:
        yield
    finally:
        _forced = previous


def _choose(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
            groups: int, channels: int) -> ModuleType:
    if _forced is not None:
        return ALGORITHMS[_forced]
    return gemm


def conv_forward(xp: np.ndarray, w: np.ndarray, stride: Sequence[int],
                 dilation: Sequence[int], groups: int) -> np.ndarray:
    algo = _choose(w.shape[2:], stride, dilation, groups, xp.shape[1])
    return algo.conv_forward(xp, w, stride, dilation, groups)


def conv_input_grad(gy: np.ndarray, w: np.ndarray, padded_shape: Sequence[int],
                    stride: Sequence[int], dilation: Sequence[int], groups: int) -> np.ndarray:
    algo = _choose(w.shape[2:], stride, dilation, groups, w.shape[1] * groups)
    return algo.conv_input_grad(gy, w, padded_shape, stride, dilation, groups)


def conv_weight_grad(xp: np.ndarray, gy: np.ndarray, kernel: Sequence[int],
                     stride: Sequence[int], dilation: Sequence[int], groups: int) -> np.ndarray:
    algo = _choose(kernel, stride, dilation, groups, xp.shape[1])
    return algo.conv_weight_grad(xp, gy, kernel, stride, dilation, groups)

"""The one description of a convolution that every algorithm receives, and their protocol.

A :class:`ConvSpec` is built once per call (from the already-normalised
arguments: :mod:`convprop._windows` did the checking) and passed, frozen,
through the chooser and into every algorithm, instead of 6-9 positional
arguments repeated through each layer.

An algorithm is an object with the four methods of :class:`Algorithm`.  It
takes the **unpadded** input and the bias, so it may fuse the zero padding into
its first copy and the bias into its last; what its forward leaves for the
backward is a small typed object of its own (a subclass of :class:`Saved`),
never a dict.  For one output position ``p`` and tap ``t`` (one spatial axis;
more axes only add indices), with ``xp`` the input zero-padded by ``pads``::

    y[n, o, p]  = b[o] + sum_{c in group(o), t} w[o, c, t] * xp[n, c, p*s + t*d]
    dxp[n, c, q] = sum_{o, t, p : p*s + t*d = q} gy[n, o, p] * w[o, c, t]
    dw[o, c, t] = sum_{n, p} gy[n, o, p] * xp[n, c, p*s + t*d]
    db[o]       = sum_{n, p} gy[n, o, p]

``input_grad`` returns ``dx``, the interior of ``dxp`` (the gradient of the
unpadded input); ``weight_grad`` returns ``(dw, db)`` (``db`` is None when the
spec has no bias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .._windows import Pairs, conv_output_shape


@dataclass(frozen=True)
class ConvSpec:
    """Shapes and hyper-parameters of one convolution, with the sizes derived from them.

    Attributes:
        n, c, o: batch size, input channels, output channels.
        size: unpadded input spatial sizes.
        kernel: kernel spatial sizes.
        stride, dilation: one per spatial axis (>= 1).
        pads: ``(before, after)`` zero padding per spatial axis (>= 0).
        groups: channel groups; ``c`` and ``o`` are multiples of it.
        dtype: the data type of input, weight, bias and output.
        bias: whether a bias is added (and its gradient wanted).
        out: output spatial sizes (eq. 1 with dilation), derived.
        padded: padded input spatial sizes, derived.
    """

    n: int
    c: int
    o: int
    size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: Pairs
    groups: int
    dtype: np.dtype
    bias: bool = False
    out: tuple[int, ...] = field(init=False)
    padded: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        nd = len(self.size)
        if not (len(self.kernel) == len(self.stride) == len(self.dilation) == len(self.pads) == nd):
            raise ValueError(f"ConvSpec: every per-axis field needs {nd} entries: {self!r}")
        if self.c % self.groups or self.o % self.groups:
            raise ValueError(f"ConvSpec: channels {self.c}->{self.o} not divisible by groups "
                             f"{self.groups}")
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        object.__setattr__(self, "padded",
                           tuple(x + pb + pa for x, (pb, pa) in zip(self.size, self.pads)))
        object.__setattr__(self, "out", conv_output_shape(self.size, self.kernel, self.stride,
                                                          self.pads, self.dilation))

    @classmethod
    def of(cls, x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: int | tuple[int, ...] = 1,
           padding: int | tuple[int, ...] | Pairs = 0, dilation: int | tuple[int, ...] = 1,
           groups: int = 1, dtype: np.dtype | type = np.float32, bias: bool = False) -> ConvSpec:
        """The spec of convolving an ``x_shape`` input with a ``w_shape`` weight: ints stand
        for every axis, and ``padding`` is an int, one int per axis or one ``(before,
        after)`` pair per axis.  (The functional ops build specs from ``_windows``'s
        checked arguments; this is for tests, benchmarks and the chooser's callers.)"""
        nd = len(x_shape) - 2

        def axes(v: int | tuple[int, ...]) -> tuple[int, ...]:
            return (v,) * nd if isinstance(v, int) else tuple(v)

        if isinstance(padding, int):
            pads: Pairs = ((padding, padding),) * nd
        else:
            pads = tuple((p, p) if isinstance(p, int) else (p[0], p[1]) for p in padding)
        return cls(x_shape[0], x_shape[1], w_shape[0], tuple(x_shape[2:]), tuple(w_shape[2:]),
                   axes(stride), axes(dilation), pads, groups, np.dtype(dtype), bias)

    @property
    def nd(self) -> int:
        """Number of spatial axes."""
        return len(self.size)

    @property
    def cg(self) -> int:
        """Input channels per group."""
        return self.c // self.groups

    @property
    def og(self) -> int:
        """Output channels per group."""
        return self.o // self.groups

    @property
    def taps(self) -> int:
        """Kernel elements per (out, in) channel pair: ``prod(kernel)``."""
        return math.prod(self.kernel)

    @property
    def positions(self) -> int:
        """Output positions per (sample, channel): ``prod(out)``."""
        return math.prod(self.out)

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.n, self.c, *self.size)

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.o, self.cg, *self.kernel)

    @property
    def y_shape(self) -> tuple[int, ...]:
        return (self.n, self.o, *self.out)

    @property
    def padded_any(self) -> bool:
        """Whether any side is padded."""
        return any(p for pair in self.pads for p in pair)

    @property
    def depthwise(self) -> bool:
        """One input and one output channel per group."""
        return self.groups == self.c == self.o

    @property
    def flops(self) -> int:
        """Multiply-adds of the forward, times two."""
        return 2 * self.n * self.o * self.positions * self.cg * self.taps


class Saved:
    """Base of the typed state an algorithm's forward leaves for its backward.

    Each algorithm subclasses it (a dataclass with named fields); the autograd op
    holds it only until its backward has run.
    """


class Algorithm(Protocol):
    """What every convolution algorithm provides (see the module docstring for the maths)."""

    name: str

    def supports(self, spec: ConvSpec) -> bool:
        """Whether this algorithm can compute ``spec`` at all."""
        ...

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, Saved | None]:
        """``y`` of shape ``spec.y_shape`` from unpadded ``x`` and optional bias ``b``; when
        ``save``, also the state the backward reuses (else None)."""
        ...

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        """``dx`` of shape ``spec.x_shape`` (the unpadded input's gradient)."""
        ...

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(dw, db)``: ``dw`` of shape ``spec.w_shape``; ``db`` of shape ``(o,)`` or None
        when ``spec.bias`` is false."""
        ...


@dataclass(frozen=True)
class Plan:
    """The algorithm for each of the three passes of one convolution, decided in one place.

    A backward algorithm receives the forward's :class:`Saved` state only when it is
    the same algorithm as the forward; otherwise it gets None and works from the arrays.
    """

    forward: Algorithm
    input_grad: Algorithm
    weight_grad: Algorithm

    @property
    def names(self) -> tuple[str, str, str]:
        """``(forward, input_grad, weight_grad)`` algorithm names, as the benchmark prints them."""
        return self.forward.name, self.input_grad.name, self.weight_grad.name

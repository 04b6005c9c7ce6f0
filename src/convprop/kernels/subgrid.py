"""Dilated convolution as dense convolutions on interleaved sub-grids (any backend).

Along one axis, with stride ``s``, dilation ``d`` and ``xp`` the input zero-padded by
``pb`` before, output ``p`` reads ``xp[p*s + t*d]`` for taps ``t < K``.  Let ``g =
gcd(s, d)``, ``m = d/g`` and ``s' = s/g``.  The outputs ``p = p0 + j*m`` of one residue
``p0 < m`` read::

    xp[p0*s + j*m*s + t*d] = xp[p0*s + d*(j*s' + t)]
                           = x[r + d*(e + j*s' + t)],   p0*s - pb = r + d*e,  0 <= r < d

so they are a *dense* convolution (dilation 1, stride ``s'``) of the phase ``x[r::d]``
of the unpadded input, shifted by ``e``: a negative ``e`` is zero padding before it, a
positive one crops its start, and the padding after (or crop) is whatever makes the
phase give exactly ``ceil((OUT - p0)/m)`` outputs.  Different residues read different
phases (``s'`` and ``m`` are coprime), so the ``m`` sub-convolutions partition the
outputs and read disjoint inputs.  Several axes take every combination of one residue
per axis.  At stride 1 that is the familiar picture: a dilation-2 3x3 convolution is
four dense 3x3 convolutions on the even/odd rows and columns.

The three passes follow from the partition: the forward writes each sub-output into
its strided view of ``y`` (bias added once, since every output belongs to one
sub-grid); the input gradient writes each sub-input's gradient into its strided view
of ``dx`` (zero where no tap reads, e.g. phases skipped when ``g > 1``); the weight
gradient is the *sum* over sub-grids, and the bias gradient comes out of the same sums.

Sub-grids of equal shape (the usual case: all four phases of an even-sized image)
are stacked along the batch axis and run as one convolution, so a layer costs one
call per distinct shape.  Each sub-convolution runs on the plan that the ``choose``
given to :class:`Subgrid` picks for its own (dense) spec -- the backend module passes
its calling thread's chooser -- so it composes with whatever is fastest there for dense
convolutions; that plan is decided once per spec, here.  This module imports no
backend: the chooser comes in as an argument.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .spec import ConvSpec, Plan, Saved


@dataclass(frozen=True)
class AxisPhase:
    """One output residue along one axis and the dense sub-convolution that computes it.

    Attributes:
        out: the outputs ``y[p0::m]`` (a slice of the output axis).
        count: how many outputs that slice holds (``ceil((OUT - p0)/m)``).
        inp: the input elements the sub-convolution reads, ``x[start:stop:d]`` (cropped
            to the elements some tap reaches), or None when every tap falls into the
            padding.
        pads: zero padding ``(before, after)`` of that cropped phase.
        stride: the sub-convolution's stride ``s' = s/gcd(s, d)``.
    """

    out: slice
    count: int
    inp: slice | None
    pads: tuple[int, int]
    stride: int

    @property
    def size(self) -> int:
        """Length of the cropped phase (0 when :attr:`inp` is None)."""
        return 0 if self.inp is None else len(range(self.inp.start, self.inp.stop, self.inp.step))


def axis_phases(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int],
                out: int) -> list[AxisPhase]:
    """The dense sub-convolutions of one axis (see the module docstring), one per output
    residue ``p0 < m`` that has outputs.

    Args:
        size: unpadded input length ``X``; kernel ``K``; stride ``s``; dilation ``d``.
        pads: ``(before, after)`` zero padding of the original convolution.
        out: its output length.
    """
    d = dilation
    g = math.gcd(stride, d)
    m, s1 = d // g, stride // g
    pb = pads[0]
    phases = []
    for p0 in range(min(m, out)):
        count = (out - p0 + m - 1) // m
        r, e = (p0 * stride - pb) % d, (p0 * stride - pb) // d  # p0*s - pb = r + d*e
        length = (size - r + d - 1) // d if r < size else 0  # len(x[r::d])
        need = (count - 1) * s1 + kernel  # padded length that gives exactly `count` outputs
        before = max(0, -e)
        crop = max(0, e)
        used = min(length - crop, need - before)  # elements of the phase that taps reach
        out_slice = slice(p0, p0 + (count - 1) * m + 1, m)
        if used <= 0:
            phases.append(AxisPhase(out_slice, count, None, (0, 0), s1))
            continue
        start = r + d * crop
        inp = slice(start, start + d * (used - 1) + 1, d)
        phases.append(AxisPhase(out_slice, count, inp, (before, need - before - used), s1))
    return phases


@dataclass(frozen=True)
class SubGroup:
    """Sub-grids of one shape, stacked along the batch axis and run as one convolution.

    Attributes:
        spec: the dense convolution of the stack (batch ``P*N`` for ``P`` sub-grids).
        plan: the backend's plan for :attr:`spec`.
        inputs: per sub-grid, the index of its input elements in ``x[:, :, ...]``.
        outputs: per sub-grid, the index of its outputs in ``y[:, :, ...]``.
    """

    spec: ConvSpec
    plan: Plan
    inputs: tuple[tuple[slice, ...], ...]
    outputs: tuple[tuple[slice, ...], ...]

    def stack(self, a: np.ndarray, index: tuple[tuple[slice, ...], ...]) -> np.ndarray:
        """``a[:, :, *index[k]]`` for every sub-grid ``k``, stacked as ``(P*N, C, ...)``."""
        if len(index) == 1:
            return a[(Ellipsis, *index[0])]
        return np.stack([a[(Ellipsis, *i)] for i in index]).reshape(
            (-1,) + a.shape[1:2] + a[(Ellipsis, *index[0])].shape[2:])

    def scatter(self, a: np.ndarray, into: np.ndarray,
                index: tuple[tuple[slice, ...], ...]) -> None:
        """``into[:, :, *index[k]] = a[k*N:(k+1)*N]``: the inverse of :meth:`stack`."""
        n = into.shape[0]
        for k, i in enumerate(index):
            into[(Ellipsis, *i)] = a[k * n:(k + 1) * n]


@dataclass(frozen=True)
class Split:
    """A convolution as dense sub-convolutions (see :func:`split`).

    Attributes:
        groups: the stacks of sub-grids that read input.
        empty: output indices of the sub-grids whose taps all fall into the padding
            (their outputs are the bias alone).
    """

    groups: tuple[SubGroup, ...]
    empty: tuple[tuple[slice, ...], ...]


def split(spec: ConvSpec, choose: Callable[[ConvSpec], Plan]) -> Split:
    """``spec`` as dense sub-convolutions, each planned by ``choose``."""
    per_axis = [axis_phases(*args) for args in zip(spec.size, spec.kernel, spec.stride,
                                                   spec.dilation, spec.pads, spec.out)]
    shapes: dict[tuple, tuple[list, list]] = {}
    empty = []
    for combo in itertools.product(*per_axis):
        outs = tuple(a.out for a in combo)
        if any(a.inp is None for a in combo):
            empty.append(outs)
            continue
        key = tuple((a.size, a.pads, a.stride) for a in combo)
        ins, outs_list = shapes.setdefault(key, ([], []))
        ins.append(tuple(a.inp for a in combo))
        outs_list.append(outs)
    groups = []
    for key, (ins, outs) in shapes.items():
        sub = ConvSpec(spec.n * len(ins), spec.c, spec.o, tuple(k[0] for k in key), spec.kernel,
                       tuple(k[2] for k in key), (1,) * spec.nd, tuple(k[1] for k in key),
                       spec.groups, spec.dtype, spec.bias)
        groups.append(SubGroup(sub, choose(sub), tuple(ins), tuple(outs)))
    return Split(tuple(groups), tuple(empty))


@dataclass
class SubgridSaved(Saved):
    """The split and, per stack of sub-grids, what its forward algorithm saved."""

    split: Split
    saved: list[Saved | None]


class Subgrid:
    """Dilated convolutions as dense sub-grid convolutions; see the module docstring.

    Each sub-convolution runs on the plan ``choose`` picks for its dense spec (the
    backend module passes its calling thread's chooser), so this algorithm works on
    any backend.
    """

    name = "subgrid"

    def __init__(self, choose: Callable[[ConvSpec], Plan]) -> None:
        self.choose = choose

    def supports(self, spec: ConvSpec) -> bool:
        """Any convolution with a dilation above 1 along some axis, with every stride
        (stride and dilation sharing a factor only leaves some input phases unread)."""
        return any(d > 1 for d in spec.dilation)

    def forward(self, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                save: bool) -> tuple[np.ndarray, Saved | None]:
        """``y (N, O, *out)`` from unpadded ``x (N, C, *size)``, ``w (O, C/G, *kernel)`` and
        ``b (O,)`` or None."""
        parts = split(spec, self.choose)
        y = np.empty(spec.y_shape, dtype=spec.dtype)
        kept: list[Saved | None] = []
        for group in parts.groups:
            ys, saved = group.plan.forward.forward(group.spec, group.stack(x, group.inputs), w, b,
                                                   save)
            group.scatter(ys, y, group.outputs)
            kept.append(saved)
        bias = (np.zeros(spec.o, spec.dtype) if b is None else np.asarray(b, spec.dtype))
        for outs in parts.empty:
            y[(Ellipsis, *outs)] = bias.reshape((spec.o,) + (1,) * spec.nd)
        return y, (SubgridSaved(parts, kept) if save else None)

    def input_grad(self, spec: ConvSpec, gy: np.ndarray, w: np.ndarray,
                   saved: Saved | None) -> np.ndarray:
        """``dx (N, C, *size)`` from ``gy (N, O, *out)`` and ``w (O, C/G, *kernel)``."""
        parts, kept = self._parts(spec, saved)
        dx = np.zeros(spec.x_shape, dtype=spec.dtype)
        for group, own in zip(parts.groups, kept):
            algo = group.plan.input_grad
            dxs = algo.input_grad(group.spec, group.stack(gy, group.outputs), w,
                                  own if algo is group.plan.forward else None)
            group.scatter(dxs, dx, group.inputs)
        return dx

    def weight_grad(self, spec: ConvSpec, x: np.ndarray, gy: np.ndarray,
                    saved: Saved | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(dw (O, C/G, *kernel), db (O,) or None)``: the sums over the sub-grids."""
        parts, kept = self._parts(spec, saved)
        dw = np.zeros(spec.w_shape, dtype=spec.dtype)
        db = np.zeros(spec.o, dtype=spec.dtype) if spec.bias else None
        for group, own in zip(parts.groups, kept):
            algo = group.plan.weight_grad
            gws, gbs = algo.weight_grad(group.spec, group.stack(x, group.inputs),
                                        group.stack(gy, group.outputs),
                                        own if algo is group.plan.forward else None)
            dw += gws
            if db is not None:
                db += gbs
        if db is not None:
            for outs in parts.empty:
                g = np.asarray(gy)[(Ellipsis, *outs)]
                db += g.sum(axis=(0, *range(2, g.ndim)), dtype=spec.dtype)
        return dw, db

    def _parts(self, spec: ConvSpec, saved: Saved | None) -> tuple[Split, list[Saved | None]]:
        if isinstance(saved, SubgridSaved):
            return saved.split, saved.saved
        parts = split(spec, self.choose)
        return parts, [None] * len(parts.groups)

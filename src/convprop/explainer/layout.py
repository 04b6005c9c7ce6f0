"""Which cells meet which: the index structure every derivation is written from.

A :class:`Layout` describes one operation (``conv``, ``conv_transpose``, ``maxpool``,
``avgpool``) for one shape, in the founding document's notation, and answers, for
every output, the list of :class:`Tap` products its sum is made of.  Everything the
derivation writes (each ``z``, each term of ``∂L/∂k``, ``∂L/∂x`` and ``∂L/∂b``), and
everything the figures, the page and the animation draw, comes from these taps.

Cells are tuples of 1-based ints.  A *full* cell always carries its channels:
inputs ``(c, i, j)``, outputs ``(c, x, y)``, weights ``(a, b, i, j)`` (PyTorch's
layout: conv ``(C_out, C_in/G, K_H, K_W)``, transposed ``(C_in, C_out/G, K_H, K_W)``).
Internally every shape is 2-D, ``(W, H)`` first as in the document, or 3-D ``(W, H, D)``
(depth last); a 1-D layout is a 2-D one of height 1.  A 3-D input cell is
``(c, i, j, l)`` (``l`` the depth index).  The *shown* cell is what the notation writes:
without channels the channel indices are left out (``x_{i,j}``), and in 1-D the row is
(``x_{i}``).  The derivation's dictionaries are keyed by shown cells.

Window positions come from :func:`convprop._windows.windows` (the one source of
window arithmetic): the convolution and pooling from windows over the padded input,
the transposed convolution from windows over the zero-inserted, re-padded input —
the guide's equivalent direct convolution.  The transposed convolution's other view,
each input scattering ``x_n k_t`` into output ``(n − 1)S + (t − 1)d + 1 − P``, is
:meth:`Layout.scatter`, written from that definition; the two are compared.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._windows import pad_constant, transpose_output_shape, windows
from ..seed import Pair, as_pair, divisor_rule, resolve_divisor

Cell = tuple[int, ...]
OPS = ("conv", "conv_transpose", "maxpool", "avgpool")
AXES = "WHD"  # the document's axis names: width, height, (depth)
_PAD, _INSERTED = -1, -2  # markers in the index tables: a padded zero, an inserted zero


@dataclass(frozen=True)
class Tap:
    """One product of an output's forward sum, in reading order.

    ``kernel`` is the full weight cell (None for pooling); ``input`` the full input
    cell, or None when the tap meets a zero, in which case ``zero`` says which:
    ``"padding"`` or ``"inserted"`` (between the inputs of a transposed
    convolution's equivalent direct convolution).  ``position`` is the spatial
    kernel position ``(i, j)`` the sum reads: for the transposed convolution that is
    the *flipped* kernel's position, ``(K_W + 1 − i, K_H + 1 − j)`` of the weight cell.
    """

    kernel: Cell | None
    input: Cell | None
    position: Pair
    zero: str | None = None


@dataclass(frozen=True)
class Layout:
    """One operation on one shape; build with :meth:`create`.

    Sizes are ``(W, H)`` pairs, or ``(W, H, D)`` triples for a 3-D layout (``dims`` axes).
    """

    op: str
    nd: int
    input_shape: Pair
    kernel_shape: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    output_padding: Pair
    in_channels: int
    out_channels: int
    groups: int
    multichannel: bool
    bias: bool
    divisor: int | float
    divisor_rule: str

    @classmethod
    def create(cls, input_shape: int | tuple[int, ...], kernel_shape: int | tuple[int, ...],
               stride: int | tuple[int, ...] = 1, padding: int | tuple[int, ...] = 0,
               dilation: int | tuple[int, ...] = 1, divisor: str | float = "kernel", *,
               op: str = "conv", channels: tuple[int, int] | None = None, groups: int = 1,
               output_padding: int | tuple[int, ...] = 0) -> Layout:
        """Validate and normalise.  A 1-tuple ``input_shape`` is 1-D, a 3-tuple ``(W, H, D)``
        3-D; an int is square 2-D.

        Raises ``ValueError`` naming the argument and the rule it breaks.
        """
        if op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}, got {op!r}")
        nd = len(input_shape) if isinstance(input_shape, (tuple, list)) else 2
        if nd not in (1, 2, 3):
            raise ValueError(f"input_shape: 1, 2 or 3 sizes (W, W x H or W x H x D), got "
                             f"{input_shape!r}")

        def pair(v: int | tuple[int, ...], name: str, minimum: int, one: int) -> Pair:
            if nd == 3:
                return _triple(v, name, minimum)
            if nd == 1:
                if isinstance(v, (tuple, list)):
                    if len(v) != 1:
                        raise ValueError(f"{name}: a 1-D derivation takes one number, got {v!r}")
                    v = v[0]
                return as_pair((v, one), name, minimum)
            return as_pair(v, name, minimum)

        inp = pair(input_shape, "input_shape", 1, 1)
        ker = pair(kernel_shape, "kernel_shape", 1, 1)
        st = pair(stride, "stride", 1, 1)
        pad = pair(padding, "padding", 0, 0)
        dil = pair(dilation, "dilation", 1, 1)
        opad = pair(output_padding, "output_padding", 0, 0)
        pool = op in ("maxpool", "avgpool")
        if op != "conv_transpose" and any(opad):
            raise ValueError("output_padding applies only to the transposed convolution")
        if pool and (channels is not None or groups != 1):
            raise ValueError(f"{op} works on one channel: leave out channels and groups")
        if op == "avgpool" and any(v != 1 for v in dil):
            raise ValueError("avgpool has no dilation (PyTorch's avg_pool2d takes none)")
        if pool and any(2 * p > k for p, k in zip(pad, ker)):
            raise ValueError(f"{op}: padding must be at most half the kernel size, got padding "
                             f"{pad[:nd]} for kernel {ker[:nd]}")
        cin, cout = channels if channels is not None else (1, 1)
        if cin < 1 or cout < 1:
            raise ValueError(f"channels must be >= 1, got {channels!r}")
        if groups < 1 or cin % groups or cout % groups:
            raise ValueError(f"groups must be >= 1 and divide both channel counts, got groups "
                             f"{groups} for channels {cin},{cout}")
        if op == "conv_transpose":
            for n, axis in enumerate(AXES[:nd]):
                if opad[n] >= max(st[n], dil[n]):
                    raise ValueError(
                        f"output_padding must be smaller than the stride or the dilation: "
                        f"output_padding_{axis} = {opad[n]}, S_{axis} = {st[n]}, "
                        f"d_{axis} = {dil[n]}")
            transpose_output_shape(inp[::-1], ker[::-1], st[::-1], pad[::-1], opad[::-1],
                                   dil[::-1])  # raises when the output would be empty
        else:
            for n, axis in enumerate(AXES[:nd]):
                span = ker[n] + (ker[n] - 1) * (dil[n] - 1)
                if span > inp[n] + 2 * pad[n]:
                    size = f"K_{axis} = {ker[n]}" if dil[n] == 1 else \
                        f"K_{axis} + (K_{axis} - 1)(d_{axis} - 1) = {span}"
                    raise ValueError(f"the kernel does not fit: {size} > X_{axis} + 2P_{axis} = "
                                     f"{inp[n]} + 2·{pad[n]}")
        if pool:
            d, rule = (math.prod(ker), _product("K", nd)) if op == "avgpool" else (1, "none")
        elif nd == 3 and divisor in ("kernel", "stride"):
            d, rule = math.prod(ker if divisor == "kernel" else st), _product(divisor[0].upper(), 3)
        else:
            d, rule = resolve_divisor(divisor, ker[:2], st[:2]), divisor_rule(divisor)
        multi = channels is not None or groups != 1
        return cls(op, nd, inp, ker, st, pad, dil, opad, cin, cout, groups, multi, multi, d, rule)

    # -------------------------------------------------------------- shapes
    @property
    def dims(self) -> int:
        """How many spatial axes cells carry: 3 for a 3-D layout, else 2 (1-D has height 1)."""
        return 3 if self.nd == 3 else 2

    @property
    def dilated(self) -> bool:
        """Whether any axis has a dilation other than 1."""
        return any(d != 1 for d in self.dilation)

    @property
    def transposed(self) -> bool:
        return self.op == "conv_transpose"

    @property
    def pooling(self) -> bool:
        return self.op in ("maxpool", "avgpool")

    @cached_property
    def output_shape(self) -> Pair:
        """``(Z_W, Z_H)``: eq. 1 with dilation, or the transposed convolution's relationship."""
        if self.transposed:
            return tuple(transpose_output_shape(
                self.input_shape[::-1], self.kernel_shape[::-1], self.stride[::-1],
                self.padding[::-1], self.output_padding[::-1], self.dilation[::-1]))[::-1]
        return tuple(self._table.shape[self.dims:][::-1])

    @property
    def effective_kernel(self) -> Pair:
        """The guide's dilated kernel size ``K + (K − 1)(d − 1)`` per axis."""
        return tuple(k + (k - 1) * (d - 1) for k, d in zip(self.kernel_shape, self.dilation))

    @property
    def weight_channels(self) -> Pair:
        """The weight's two leading sizes: conv ``(C_out, C_in/G)``, transposed ``(C_in, C_out/G)``."""
        if self.transposed:
            return self.in_channels, self.out_channels // self.groups
        return self.out_channels, self.in_channels // self.groups

    def array_shape(self, kind: str) -> tuple[int, ...]:
        """Full array shape of ``x``, ``k`` or ``z``: ``(C, H, W)`` / ``(A, B, K_H, K_W)``."""
        if kind == "x":
            return (self.in_channels, *self.input_shape[::-1])
        if kind == "k":
            return (*self.weight_channels, *self.kernel_shape[::-1])
        return (self.out_channels, *self.output_shape[::-1])

    def shown_shape(self, kind: str) -> tuple[int, ...]:
        """The shape of the arrays a user gives and reads (channels and a 1-D row left out)."""
        full = self.array_shape(kind)
        lead = 1 if kind in ("x", "z", "y") else 2
        spatial = full[lead:] if self.nd != 1 else full[-1:]
        return (*full[:lead], *spatial) if self.multichannel else spatial

    def to_shown(self, kind: str, a: np.ndarray) -> np.ndarray:
        return np.asarray(a).reshape(self.shown_shape(kind))

    def to_full(self, kind: str, a: np.ndarray) -> np.ndarray:
        return np.asarray(a).reshape(self.array_shape("z" if kind == "y" else kind))

    # --------------------------------------------------------------- cells
    def show(self, cell: Cell | None) -> Cell | None:
        """The shown cell of a full one: channels dropped without channels, the row in 1-D."""
        if cell is None:
            return None
        lead = len(cell) - self.dims
        spatial = cell[lead:] if self.nd != 1 else cell[lead:lead + 1]
        return (*cell[:lead], *spatial) if self.multichannel else spatial

    def index(self, cell: Cell) -> tuple[int, ...]:
        """The 0-based array index of a full cell: channels, then (depth,) row, then column."""
        lead = len(cell) - self.dims
        return (*(c - 1 for c in cell[:lead]), *(c - 1 for c in cell[lead:][::-1]))

    def inputs(self) -> list[Cell]:
        """Every full input cell, channel by channel, ``x_{1,1}, x_{2,1}, …`` (column fastest)."""
        return [(c, *s) for c in range(1, self.in_channels + 1) for s in _cells(self.input_shape)]

    def outputs(self) -> list[Cell]:
        return [(c, *s) for c in range(1, self.out_channels + 1) for s in _cells(self.output_shape)]

    def kernels(self) -> list[Cell]:
        """Every full weight cell (none for pooling)."""
        if self.pooling:
            return []
        a, b = self.weight_channels
        return [(p, q, *s) for p in range(1, a + 1) for q in range(1, b + 1)
                for s in _cells(self.kernel_shape)]

    def connected(self, out_channel: int) -> list[tuple[int, tuple[int, int]]]:
        """``(input channel, weight channels (a, b))`` that output channel ``out_channel`` sums over."""
        if self.pooling:
            return [(out_channel, (0, 0))]
        cin_g, cout_g = self.in_channels // self.groups, self.out_channels // self.groups
        g = (out_channel - 1) // cout_g
        chans = range(g * cin_g + 1, (g + 1) * cin_g + 1)
        if self.transposed:
            return [(c, (c, out_channel - g * cout_g)) for c in chans]
        return [(c, (out_channel, c - g * cin_g)) for c in chans]

    def channels_of(self, weight: Cell) -> tuple[int, int]:
        """``(input channel, output channel)`` that the weight cell ``(a, b, …)`` connects."""
        a, b = weight[0], weight[1]
        cin_g, cout_g = self.in_channels // self.groups, self.out_channels // self.groups
        if self.transposed:
            return a, (a - 1) // cin_g * cout_g + b
        return (a - 1) // cout_g * cin_g + b, a

    def reached_by(self, inp: Cell) -> list[int]:
        """The output channels whose sums read input channel ``inp[0]``."""
        if self.pooling:
            return [inp[0]]
        cin_g, cout_g = self.in_channels // self.groups, self.out_channels // self.groups
        g = (inp[0] - 1) // cin_g
        return list(range(g * cout_g + 1, (g + 1) * cout_g + 1))

    @cached_property
    def _inverse(self) -> dict[tuple[Pair, Pair], Pair]:
        """``(weight tap, spatial input) -> spatial output``: where each tap reads each input."""
        inv = {}
        for t in _cells(self.kernel_shape):
            for o in _cells(self.output_shape):
                src, _ = self.source(t, o)
                if src is not None:
                    inv[(t, src)] = o
        return inv

    def reader(self, tap: Pair, inp: Pair) -> Pair | None:
        """The spatial output in whose sum weight tap ``tap`` multiplies spatial input ``inp``."""
        return self._inverse.get((tap, inp))

    # ---------------------------------------------------------------- taps
    @cached_property
    def _table(self) -> np.ndarray:
        """``[t_j, t_i, y, x]``: flat input index met by weight tap ``(i, j)`` in output ``(x, y)``,
        or ``_PAD`` / ``_INSERTED`` (0-based)."""
        rev = self.input_shape[::-1]  # array order: (depth,) rows, columns
        kernel = self.kernel_shape[::-1]
        index = np.arange(math.prod(rev), dtype=np.int64).reshape(rev)
        if not self.transposed:
            pads = tuple((p, p) for p in self.padding[::-1])
            padded = pad_constant(index[None, None], pads, value=_PAD)
            return np.array(windows(padded, kernel, self.stride[::-1], self.dilation[::-1])[0, 0])
        # the guide's equivalent direct convolution: zeros inserted between the inputs
        # (S - 1 of them), padded by d(K - 1) - P on each side (plus the output padding
        # after), read with stride 1 by the flipped kernel
        srev = self.stride[::-1]
        spread = np.full(tuple((n - 1) * s + 1 for n, s in zip(rev, srev)), _INSERTED,
                         dtype=np.int64)
        spread[tuple(slice(None, None, s) for s in srev)] = index
        for axis in range(self.dims):  # array axis `axis` is the document's axis dims-1-axis
            n = self.dims - 1 - axis
            before = self.dilation[n] * (self.kernel_shape[n] - 1) - self.padding[n]
            after = before + self.output_padding[n]
            spread = _pad_or_crop(spread, axis, before, after)
        view = windows(spread[None, None], kernel, (1,) * self.dims, self.dilation[::-1],
                       self.output_shape[::-1])[0, 0]
        # weight tap (i, j) is the flipped kernel's (K+1-i, K+1-j)
        return np.array(view[(slice(None, None, -1),) * self.dims])

    def source(self, kernel: Pair, output: Pair) -> tuple[Pair | None, str | None]:
        """The spatial input cell weight tap ``kernel`` meets in output ``output``, and why not."""
        flat = int(self._table[tuple(c - 1 for c in (*kernel[::-1], *output[::-1]))])
        if flat < 0:
            return None, "padding" if flat == _PAD else "inserted"
        return tuple(int(c) + 1 for c in np.unravel_index(flat, self.input_shape[::-1])[::-1]), None

    def taps(self, out: Cell) -> list[Tap]:
        """The products of ``z_out``'s sum, channel by channel, in the order the sum is read.

        For the transposed convolution the order is the flipped kernel's (the equivalent
        direct convolution's), so its first tap is the weight's last element.
        """
        oc, spatial = out[0], out[1:]
        kcells = _cells(self.kernel_shape)
        out_taps = []
        for c, (a, b) in self.connected(oc):
            for pos in kcells:
                kc = tuple(k + 1 - p for k, p in zip(self.kernel_shape, pos)) \
                    if self.transposed else pos
                src, zero = self.source(kc, spatial)
                out_taps.append(Tap(None if self.pooling else (a, b, *kc),
                                    None if src is None else (c, *src), pos, zero))
        return out_taps

    def scatter(self, inp: Cell) -> list[tuple[Cell, Cell]]:
        """Transposed convolution as the adjoint of the forward: where ``x_inp`` goes.

        ``(output, weight)`` for every weight tap ``t`` whose target
        ``(n − 1)S + (t − 1)d + 1 − P`` lies inside the output (per axis).
        """
        if not self.transposed:
            raise ValueError("scatter describes the transposed convolution only")
        c, n = inp[0], inp[1:]
        cin_g, cout_g = self.in_channels // self.groups, self.out_channels // self.groups
        g = (c - 1) // cin_g
        out = []
        for b in range(1, cout_g + 1):
            for t in _cells(self.kernel_shape):
                o = tuple((n[a] - 1) * self.stride[a] + (t[a] - 1) * self.dilation[a] + 1
                          - self.padding[a] for a in range(self.dims))
                if all(1 <= o[a] <= self.output_shape[a] for a in range(self.dims)):
                    out.append(((g * cout_g + b, *o), (c, b, *t)))
        return out

    def triples(self) -> set[tuple[Cell, Cell | None, Cell]]:
        """Every non-vanishing ``(output, weight, input)`` product of the forward sums."""
        return {(o, t.kernel, t.input) for o in self.outputs() for t in self.taps(o)
                if t.input is not None}

    def touched_inputs(self) -> set[Cell]:
        """Full input cells that enter at least one output (a stride > kernel skips some)."""
        return {t.input for o in self.outputs() for t in self.taps(o) if t.input is not None}

    def equivalent_padding(self) -> Pair:
        """The transposed convolution's equivalent direct convolution pads ``d(K − 1) − P``
        before each axis (and ``output_padding`` more after)."""
        return tuple(d * (k - 1) - p for k, p, d in
                     zip(self.kernel_shape, self.padding, self.dilation))


def _cells(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every 1-based cell of ``shape``, the first axis (the column) fastest."""
    return [c[::-1] for c in itertools.product(*(range(1, n + 1) for n in shape[::-1]))]


def _triple(v: int | tuple[int, ...], name: str, minimum: int) -> tuple[int, int, int]:
    """An int (every axis) or a ``(W, H, D)`` triple, each entry >= ``minimum``."""
    t = (v,) * 3 if isinstance(v, int) else tuple(v)
    if len(t) != 3 or not all(isinstance(n, (int, np.integer)) for n in t):
        raise ValueError(f"{name}: a 3-D derivation takes one number or three (W, H, D), got {v!r}")
    if any(n < minimum for n in t):
        raise ValueError(f"{name} must be >= {minimum} along every axis, got {v!r}")
    return int(t[0]), int(t[1]), int(t[2])


def _product(letter: str, nd: int) -> str:
    """``'K_W·K_H'`` (``'K_W·K_H·K_D'`` in 3-D): the size product a divisor rule names."""
    return "·".join(f"{letter}_{a}" for a in AXES[:max(nd, 2)])


def _pad_or_crop(a: np.ndarray, axis: int, before: int, after: int) -> np.ndarray:
    """Pad ``axis`` with ``_PAD`` markers (negative amounts crop), as the equivalent conv does."""
    pads = [(0, 0)] * a.ndim
    pads[axis] = (max(before, 0), max(after, 0))
    a = np.pad(a, pads, constant_values=_PAD)
    start, stop = max(-before, 0), a.shape[axis] - max(-after, 0)
    return a[(slice(None),) * axis + (slice(start, stop),)]

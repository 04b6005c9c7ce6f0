"""The derivation model: the founding document's sections as SymPy expressions.

:class:`DerivationModel` holds, with SymPy, for any input/kernel shape, stride, zero padding
and dilation, what sections I–III of the document write out for the 3×3 / 2×2 case:
the output shape (eq. 1 with numbers), every ``z_{x,y}`` expanded (eq. 5), every
``o_{x,y}`` (eq. 6), ``L`` expanded (eq. 4) and, for **every** kernel element,
``∂L/∂k_{i,j}`` as the chain-rule sum over the outputs it touches::

    ∂L/∂k_{i,j} = Σ_{x,y} ∂L/∂o_{x,y} · ∂o_{x,y}/∂z_{x,y} · ∂z_{x,y}/∂k_{i,j}
    ∂L/∂o_{x,y} = 2(o_{x,y} − y_{x,y}),   ∂o/∂z = σ(z)(1 − σ(z)),   ∂z_{x,y}/∂k_{i,j} = x_{…}/D

and, for every input, ``∂L/∂x`` (a transposed convolution of ``∂L/∂Z`` with the
kernel).  The same model covers several channels with groups and a bias, the
transposed convolution (derived both as the adjoint of the forward and as the
guide's equivalent direct convolution), 1-D shapes and max/average pooling; the
index structure comes from :class:`.layout.Layout`.

Terms that meet a padded (or inserted) zero are kept, shown to vanish, and dropped.
With values, every quantity is evaluated and the symbolic gradients are checked
against convprop's autograd (``convprop.functional`` conv, transposed conv and
pooling, ``Tensor.sigmoid`` and ``backward()``).

Notation and the ``(W, H)`` order of every shape are those of :mod:`convprop.seed`.
This module imports none of the renderers (:mod:`.render`, :mod:`.sections`,
:mod:`.figures`, :mod:`.page`, :mod:`.animate`): they import it.  :mod:`.derivation`,
above both, is the public face (:func:`~.derivation.explain` and ``Derivation``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..seed import Geometry, Pair
from .layout import Cell, Layout, Tap, _cells
from .values import Values, autograd_gradients, compile_exprs, sym

__all__ = ["TOLERANCE", "DerivationModel", "InputTerm", "Term", "first_max", "sigmoid"]

TOLERANCE = 1e-12
"""Largest difference allowed between the symbolic and the autograd gradient (float64)."""

first_max = sp.Function("first_max")
"""``first_max(x_c, z_o)``: 1 when ``x_c`` is the first maximum of ``z_o``'s window, else 0
(max pooling's ``∂z_o/∂x_c``; PyTorch sends the gradient to the first maximum in scan order)."""


def sigmoid(z: sp.Expr) -> sp.Expr:
    """σ(z) = 1/(1 + e^(−z)), eq. 3, as a SymPy expression."""
    return 1 / (1 + sp.exp(-z))


@dataclass(frozen=True)
class Term:
    """One term of the chain-rule sum for ``∂L/∂k``.

    ``source`` is the input cell that ``kernel`` multiplies in ``z_{output}``, or None
    when it is a zero (``zero``: ``"padding"``, or ``"inserted"`` between the inputs of a
    transposed convolution), in which case the term vanishes.  Cells are shown cells
    (see :mod:`.layout`): ``(i, j)`` for one channel in 2-D.
    """

    kernel: Cell
    output: Cell
    source: Cell | None
    dl_do: sp.Expr  # 2(o_{x,y} − y_{x,y})
    do_dz: sp.Expr  # σ(z_{x,y})(1 − σ(z_{x,y}))
    dz_dk: sp.Expr  # x_{source}/D, or 0 on padding
    zero: str | None = None

    @property
    def vanishes(self) -> bool:
        return self.source is None

    @property
    def expr(self) -> sp.Expr:
        return self.dl_do * self.do_dz * self.dz_dk


@dataclass(frozen=True)
class InputTerm:
    """One term of ``∂L/∂x_{input} = Σ ∂L/∂z_{output} · ∂z_{output}/∂x_{input}``.

    ``output`` is None when the kernel element ``kernel`` would read ``∂L/∂z`` at a
    zero of the transposed convolution that computes ``∂L/∂X`` (the zeros inserted
    between the outputs, or its padding): the term vanishes.  ``kernel`` is None for
    pooling.  ``dl_dz`` is ``2(o − y)·σ(z)(1 − σ(z))``; ``dz_dx`` is ``k/D`` (convolution),
    ``1/D`` (average pooling) or ``first_max(x, z)`` (max pooling).
    """

    input: Cell
    output: Cell | None
    kernel: Cell | None
    dl_dz: sp.Expr
    dz_dx: sp.Expr

    @property
    def vanishes(self) -> bool:
        return self.output is None

    @property
    def expr(self) -> sp.Expr:
        return self.dl_dz * self.dz_dx


class DerivationModel:
    """Sections I–III of the founding document for one shape and operation, as SymPy expressions.

    The model only: it imports none of its renderers (they import it).  The public
    :class:`.derivation.Derivation` adds ``to_text``, ``to_markdown``, ``to_latex`` and
    ``figure`` on top.

    Attributes (cells are *shown* cells, 1-based, column first as in the document:
    ``(x, y)`` outputs and ``(i, j)`` kernel elements for one channel in 2-D;
    ``(c, x, y)`` and ``(o, c, i, j)`` with channels; ``(x,)`` and ``(i,)`` in 1-D;
    ``(x, y, t)`` and ``(i, j, l)`` in 3-D, depth last):

    * ``layout``: the :class:`.layout.Layout` (operation, shapes, channels, index maps).
    * ``geometry``: the :class:`convprop.seed.Geometry` of a single-channel 2-D
      convolution or pooling (with ``dilation``); None for the transposed convolution,
      with channels and in 3-D (use ``layout``).
    * ``X``, ``K``, ``Y``, ``Zs``, ``Os``: SymPy matrices (arrays with channels, in 1-D or 3-D)
      of the symbols, laid out like the value arrays (``X[j-1, i-1]`` is ``x_{i,j}``);
      ``K`` is None for pooling, ``Bs`` the bias symbols ``b_{c}`` (empty without a bias).
    * ``z[cell]``: eq. 5, ``Σ x·k / D (+ b)``, ``Max`` of the window (max pooling) or the
      window's sum over ``K_W K_H`` (average pooling).
    * ``o[cell]``: ``σ(z)`` in the z symbol.  ``loss``: ``Σ (o − y)²``.
    * ``footprints[z cell]``: the :class:`.layout.Tap` list of that output's sum with
      shown cells (``kernel``, ``input`` or None for a zero, ``position``, ``zero``): which
      input cells and kernel cells each output reads, in reading order.
    * ``terms[k cell]``: the :class:`Term` list of the chain rule for that kernel element,
      one per output of its channel (vanishing ones included): which outputs and input
      cells each ``∂L/∂k`` sums over.  ``grad[k cell]``: the sum of the non-vanishing terms.
    * ``x_terms[x cell]``: the :class:`InputTerm` list of ``∂L/∂x`` (one per kernel element
      and output channel for a convolution, vanishing ones included; one per window for
      pooling); ``grad_x[x cell]``: their sum.
    * ``bias_terms[(c,)]`` (outputs of channel c) and ``grad_b[(c,)] = Σ ∂L/∂z`` with a bias.
    * ``dl_dz[z cell]``: ``2(o − y)·σ(z)(1 − σ(z))``.
    * :meth:`loss_full`, :meth:`grad_full`: in x, k (b) and y only.
    * ``values``: a :class:`Values` when numbers were given, else None.
    """

    def __init__(self, layout: Layout | Geometry) -> None:
        if isinstance(layout, Geometry):
            g = layout
            layout = dataclasses.replace(
                Layout.create(g.input_shape, g.kernel_shape, g.stride, g.padding, g.dilation,
                              g.divisor), divisor_rule=g.divisor_rule)
        self.layout = L = layout
        self.geometry = None if (L.transposed or L.multichannel or L.nd == 3) else Geometry(
            L.input_shape, L.kernel_shape, L.stride, L.padding, L.divisor, L.divisor_rule,
            L.dilation)
        show = L.show
        self._sym: dict[tuple[str, Cell], sp.Symbol] = {}
        self.X = self._array("x", L.inputs(), L.shown_shape("x"))
        self.K = None if L.pooling else self._array("k", L.kernels(), L.shown_shape("k"))
        self.Y = self._array("y", L.outputs(), L.shown_shape("z"))
        self.Zs = self._array("z", L.outputs(), L.shown_shape("z"))
        self.Os = self._array("o", L.outputs(), L.shown_shape("z"))
        chans = [(c,) for c in range(1, L.out_channels + 1)]
        self.Bs = [self.s("b", c) for c in chans] if L.bias else []
        d = sp.sympify(L.divisor)
        self.z: dict[Cell, sp.Expr] = {}
        self.o: dict[Cell, sp.Expr] = {}
        self.footprints: dict[Cell, list[Tap]] = {}
        self.dl_dz: dict[Cell, sp.Expr] = {}
        for out in L.outputs():
            oc = show(out)
            taps = L.taps(out)
            self.footprints[oc] = [Tap(show(t.kernel), show(t.input), t.position, t.zero)
                                   for t in taps]
            xs = [self.s("x", show(t.input)) for t in taps if t.input is not None]
            if L.op == "maxpool":
                self.z[oc] = sp.Max(*xs, evaluate=False)  # pairwise simplification is slow
            elif L.op == "avgpool":
                self.z[oc] = sp.Add(*xs) / d
            else:
                self.z[oc] = sp.Add(*[self.s("x", show(t.input)) * self.s("k", show(t.kernel))
                                      for t in taps if t.input is not None]) / d
                if L.bias:
                    self.z[oc] += self.s("b", (out[0],))
            self.o[oc] = sigmoid(self.s("z", oc))
            s = sigmoid(self.s("z", oc))
            self.dl_dz[oc] = 2 * (self.s("o", oc) - self.s("y", oc)) * s * (1 - s)
        self.loss: sp.Expr = sp.Add(*[(self.s("o", c) - self.s("y", c)) ** 2 for c in self.z])
        self.terms: dict[Cell, list[Term]] = {}
        self.grad: dict[Cell, sp.Expr] = {}
        for kc in L.kernels():
            cin, cout = L.channels_of(kc)
            terms = []
            for o_sp in _spatial(L.output_shape):
                oc = show((cout, *o_sp))
                src, zero = L.source(kc[2:], o_sp)
                src_c = None if src is None else show((cin, *src))
                s = sigmoid(self.s("z", oc))
                terms.append(Term(show(kc), oc, src_c, 2 * (self.s("o", oc) - self.s("y", oc)),
                                  s * (1 - s), self.s("x", src_c) / d if src_c else sp.S.Zero,
                                  zero))
            self.terms[show(kc)] = terms
            self.grad[show(kc)] = sp.Add(*[t.expr for t in terms if not t.vanishes])
        self.x_terms: dict[Cell, list[InputTerm]] = {}
        self.grad_x: dict[Cell, sp.Expr] = {}
        for inp in L.inputs():
            xc = show(inp)
            terms = []
            for oc_ in L.reached_by(inp):
                for t in _spatial(L.kernel_shape):
                    o_sp = L.reader(t, inp[1:])
                    if L.pooling and o_sp is None:
                        continue  # pooling: only the windows that hold x
                    out = None if o_sp is None else show((oc_, *o_sp))
                    kc = None
                    if not L.pooling:
                        a, b = (inp[0], oc_ - (L.reached_by(inp)[0] - 1)) if L.transposed else \
                            (oc_, inp[0] - (L.connected(oc_)[0][0] - 1))
                        kc = show((a, b, *t))
                    if L.op == "maxpool":
                        dz = first_max(self.s("x", xc), self.s("z", out))
                    elif L.op == "avgpool":
                        dz = 1 / d
                    else:
                        dz = self.s("k", kc) / d
                    terms.append(InputTerm(xc, out, kc, self.dl_dz[out] if out else sp.S.Zero,
                                           dz if out else sp.S.Zero))
            self.x_terms[xc] = terms
            self.grad_x[xc] = sp.Add(*[t.expr for t in terms if not t.vanishes])
        self.bias_terms: dict[Cell, list[Cell]] = {}
        self.grad_b: dict[Cell, sp.Expr] = {}
        for c in (chans if L.bias else []):
            outs = [oc for oc in self.z if oc[0] == c[0]]
            self.bias_terms[c] = outs
            self.grad_b[c] = sp.Add(*[self.dl_dz[oc] for oc in outs])
        self.values: Values | None = None

    # ------------------------------------------------------------- symbols
    def s(self, name: str, cell: Cell) -> sp.Symbol:
        """The symbol ``name_{cell}`` for a shown cell (``x``, ``k``, ``b``, ``y``, ``z``, ``o``)."""
        key = (name, tuple(cell))
        if key not in self._sym:
            self._sym[key] = sp.Symbol(sym(name, cell), real=True)
        return self._sym[key]

    def _array(self, name: str, full: list[Cell], shape: tuple[int, ...]) -> Any:
        cells = np.empty(self.layout.array_shape("z" if name in ("y", "o") else name), dtype=object)
        for c in full:
            cells[self.layout.index(c)] = self.s(name, self.layout.show(c))
        cells = cells.reshape(shape)
        return sp.Matrix(cells.tolist()) if cells.ndim == 2 else sp.Array(cells.tolist())

    # symbol look-ups in the document's (column, row) order
    def x_(self, cell: Cell) -> sp.Symbol:
        return self.s("x", cell)

    def k_(self, cell: Cell) -> sp.Symbol:
        return self.s("k", cell)

    def y_(self, cell: Cell) -> sp.Symbol:
        return self.s("y", cell)

    def z_(self, cell: Cell) -> sp.Symbol:
        return self.s("z", cell)

    def o_(self, cell: Cell) -> sp.Symbol:
        return self.s("o", cell)

    def _full(self, e: sp.Expr) -> sp.Expr:
        o_done = e.xreplace({self.o_(c): self.o[c] for c in self.z})
        return o_done.xreplace({self.z_(c): self.z[c] for c in self.z})

    def loss_full(self) -> sp.Expr:
        """``L`` in the x, k, b and y symbols (o and z substituted)."""
        return self._full(self.loss)

    def grad_full(self, *cell: int) -> sp.Expr:
        """``∂L/∂k_{cell}`` (the chain-rule sum) in the x, k, b and y symbols."""
        return self._full(self.grad[tuple(cell)])

    # ------------------------------------------------------------ numbers
    def evaluate(self, x: Any, k: Any, y: Any, source: str = "given", b: Any = None) -> Values:
        """Evaluate every quantity from arrays in the shown layout and cross-check with autograd.

        ``z`` from its expression, ``o`` from σ, ``L``, and each chain-rule term from its
        SymPy expression (compiled with ``lambdify``, float64), then compared with
        convprop's autograd.  Sets and returns ``self.values``.
        """
        L = self.layout
        arrays = {"x": x, "k": k, "y": y, "b": b}
        if L.pooling:
            arrays.pop("k")
        if not L.bias:
            arrays.pop("b")
        full = {}
        for name, a in arrays.items():
            if a is None:
                raise ValueError(f"values: {name} is missing (this derivation needs "
                                 f"{', '.join(arrays)})")
            a = np.asarray(a, dtype=np.float64)
            want = (L.out_channels,) if name == "b" else L.shown_shape(name)
            if a.shape != want:
                raise ValueError(f"values: {name} must have shape {want} for this derivation, "
                                 f"got {a.shape}")
            full[name] = a if name == "b" else L.to_full(name, a)
        env: dict[sp.Symbol, float] = {}
        for cell in L.inputs():
            env[self.s("x", L.show(cell))] = full["x"][L.index(cell)]
        for cell in L.kernels():
            env[self.s("k", L.show(cell))] = full["k"][L.index(cell)]
        for c, s_ in enumerate(self.Bs):
            env[s_] = full["b"][c]
        for cell in L.outputs():
            env[self.s("y", L.show(cell))] = full["y"][L.index(cell)]
        outs = list(self.z)
        zv = compile_exprs(list(env), [self.z[c] for c in outs])(env)
        env.update({self.z_(c): v for c, v in zip(outs, zv)})
        ov = compile_exprs([self.z_(c) for c in outs], [self.o[c] for c in outs])(env)
        env.update({self.o_(c): v for c, v in zip(outs, ov)})
        winners = self._winners(env) if L.op == "maxpool" else None
        picks = {} if winners is None else {
            first_max(self.x_(t.input), self.z_(t.output)): int(winners[t.output] == t.input)
            for ts in self.x_terms.values() for t in ts if not t.vanishes}
        kcells, xcells = list(self.terms), list(self.x_terms)
        # every term is a product of a few factors (2(o - y), σ(z)(1 - σ(z)), x/D, k/D, …):
        # each distinct factor is compiled once and the terms multiply their values
        term_factors = [(t.dl_do, t.do_dz, t.dz_dk) for kc in kcells for t in self.terms[kc]]
        xterm_factors = [(t.dl_dz, t.dz_dx.xreplace(picks)) for xc in xcells
                         for t in self.x_terms[xc]]
        bias_factors = [(self.grad_b[c],) for c in self.grad_b]
        groups = term_factors + xterm_factors + bias_factors + [(self.loss,)]
        distinct = list({f: None for fs in groups for f in fs})
        value = dict(zip(distinct, compile_exprs(list(env), distinct)(env)))
        every = [float(np.prod([value[f] for f in fs])) for fs in groups]
        nk, nx = len(term_factors), len(xterm_factors)
        loss = every[-1]
        zfull = np.zeros(L.array_shape("z"))
        ofull = np.zeros(L.array_shape("z"))
        for cell in L.outputs():
            zfull[L.index(cell)] = env[self.z_(L.show(cell))]
            ofull[L.index(cell)] = env[self.o_(L.show(cell))]
        ag = autograd_gradients(L, full)
        terms = grad = None
        if not L.pooling:
            tfull = np.zeros(L.array_shape("k") + L.array_shape("z"))
            n = 0
            for kc in L.kernels():
                for t in self.terms[L.show(kc)]:
                    out_full = _full_cell(L, t.output, L.channels_of(kc)[1])
                    tfull[L.index(kc) + L.index(out_full)] = every[n]
                    n += 1
            nk_axes = len(L.array_shape("k"))
            gfull = tfull.sum(axis=tuple(range(nk_axes, nk_axes + len(L.array_shape("z")))))
            shown_k, shown_z = L.shown_shape("k"), L.shown_shape("z")
            terms = tfull.reshape(shown_k + shown_z)
            grad = L.to_shown("k", gfull)
        gx = np.zeros(L.array_shape("x"))
        n = nk
        for cell in L.inputs():
            gx[L.index(cell)] = sum(every[n:n + len(self.x_terms[L.show(cell)])])
            n += len(self.x_terms[L.show(cell)])
        gb = np.array(every[nk + nx:-1]) if L.bias else None
        diffs = [np.abs(gx - ag["x"]).max()]
        if grad is not None:
            diffs.append(np.abs(L.to_full("k", grad) - ag["k"]).max())
        if gb is not None:
            diffs.append(np.abs(gb - ag["b"]).max())
        self.values = Values(
            source, L.to_shown("x", full["x"]), None if L.pooling else L.to_shown("k", full["k"]),
            L.to_shown("z", full["y"]), L.to_shown("z", zfull), L.to_shown("z", ofull), loss,
            terms, grad, None if L.pooling else L.to_shown("k", ag["k"]),
            float(max(diffs)), L.to_shown("x", gx), L.to_shown("x", ag["x"]),
            full.get("b"), gb, ag.get("b"), winners, dict(env))
        self._x_term_values = dict(zip(
            [(xc, n) for xc in xcells for n in range(len(self.x_terms[xc]))], every[nk:nk + nx]))
        return self.values

    def x_term_value(self, cell: Cell, n: int) -> float:
        """The value of term ``n`` of ``∂L/∂x_{cell}`` (after :meth:`evaluate`)."""
        return self._x_term_values[(tuple(cell), n)]

    def _winners(self, env: dict[sp.Symbol, float]) -> dict[Cell, Cell]:
        """Max pooling: the input each output picks, the first maximum in scan order (PyTorch)."""
        out = {}
        for oc, taps in self.footprints.items():
            best = None
            for t in taps:
                if t.input is not None and (best is None or
                                            env[self.x_(t.input)] > env[self.x_(best)]):
                    best = t.input
            out[oc] = best
        return out

    def __repr__(self) -> str:
        L = self.layout
        n = L.nd

        def show(p: Pair) -> Any:
            return p[0] if n == 1 else p

        parts = [f"input_shape={L.input_shape[:n]}", f"kernel_shape={L.kernel_shape[:n]}",
                 f"stride={show(L.stride)}", f"padding={show(L.padding)}", f"divisor={L.divisor}"]
        if L.op != "conv":
            parts.insert(0, f"op={L.op!r}")
        if L.dilated:
            parts.append(f"dilation={show(L.dilation)}")
        if L.transposed and any(L.output_padding):
            parts.append(f"output_padding={show(L.output_padding)}")
        if L.multichannel:
            parts.append(f"channels={(L.in_channels, L.out_channels)}, groups={L.groups}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _spatial(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every 1-based spatial cell of ``shape``, the first axis (the column) fastest."""
    return _cells(shape)


def _full_cell(L: Layout, shown: Cell, channel: int) -> Cell:
    """The full cell of a shown output/input cell whose channel is ``channel``."""
    spatial = shown[-L.dims:] if L.nd != 1 else (shown[-1], 1)
    return (channel, *spatial)

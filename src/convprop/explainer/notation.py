"""The derivation's building blocks and its two notations (plain Unicode and LaTeX).

:mod:`.sections` says *what* a derivation writes as a list of blocks (headings, prose,
aligned equations, matrices) through a notation object; :mod:`.render` says how each
block looks in text, Markdown and LaTeX.  The plain notation writes ``∂L/∂k_{1,1}`` and
``x_{1,1}·k_{1,1}``, the LaTeX one ``\\frac{\\partial L}{\\partial k_{1,1}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..seed import fmt
from .text import LINE_CHARS, chunks_within, latex_width


# ------------------------------------------------------------------ blocks
@dataclass
class Heading:
    level: int
    title: str  # ASCII prose


@dataclass
class Math:
    s: str


@dataclass
class Para:
    parts: list[str | Math]


@dataclass
class Eqs:
    """Aligned equations: ``(left, right)`` rows, ``right`` starting with ``=`` or ``+``;
    a row with an empty ``left`` continues the equation above it."""

    rows: list[tuple[str, str]]


@dataclass
class Matrices:
    items: list[tuple[str, str, list[list[str]]]]  # (name in math, letter for S_?, cells)


Block = Heading | Para | Eqs | Matrices
OUT_IX = ("x", "y", "t")
"""The spatial indices of an output ``z``: column, row, depth (``z`` itself names the sum)."""
K_IX = ("i", "j", "l")
"""The spatial indices of a kernel element ``k``: column, row, depth."""
MATRIX_COLUMNS = 10  # amsmath's bmatrix stops at 10 columns: wider matrices go in column blocks


# --------------------------------------------------------------- notations
class Plain:
    """Unicode text, one equation per line where it fits."""

    latex = False
    dots = "…"

    def s(self, name: str, cell: Sequence[int | str]) -> str:
        """``x_{i,j}``, ``k_{o,c,i,j}``, ``x_{i}``; a cell may hold index expressions (``"x+i-1"``)."""
        return f"{name}_{{{','.join(str(c) for c in cell)}}}"

    def to(self) -> str:
        return "→"

    def maximum(self, items: Sequence[str]) -> str:
        return f"Max({', '.join(items)})"

    def inserted_zero(self) -> str:
        """A zero inserted between the inputs of a transposed convolution's equivalent conv."""
        return "0"

    def num(self, v: float) -> str:
        t = fmt(v)
        return f"({t})" if t.startswith("-") else t

    def times(self, *fs: str) -> str:
        return "·".join(fs)

    def over(self, num: str, d: float, group: bool = True) -> str:
        """``num / D``; ``num`` is parenthesised when it is a sum."""
        if d == 1:
            return num
        return f"({num})/{fmt(d)}" if group else f"{num}/{fmt(d)}"

    def sum_over(self, terms: Sequence[str], d: float) -> list[str]:
        return [self.over(" + ".join(terms), d, group=len(terms) > 1)]

    def numprod(self, a: float, b: float) -> str:
        return f"{self.num(a)}·{self.num(b)}"

    def d(self, f: str, v: str) -> str:
        return f"∂{f}/∂{v}"

    def conv(self) -> str:
        return "conv(X, K)"

    sep = ", "  # between the per-axis indices of x_general

    def x_general(self, dilated: bool = False, nd: int = 2) -> str:
        """The input index of eq. 5 with stride, padding (and dilation), one entry per axis."""
        parts = [f"({o}-1)S_{a}+({k}-1)d_{a}+1-P_{a}" if dilated else f"({o}-1)S_{a}+{k}-P_{a}"
                 for o, k, a in zip(OUT_IX, K_IX, "WHD")][:nd]
        return f"x_{{{self.sep.join(parts)}}}"

    def sigma(self, z: str) -> str:
        return f"σ({z})"

    def sq(self, a: str) -> str:
        return f"({a})²"

    def sigmoid_def(self, z: str) -> str:
        return f"1/(1 + e^(-{z}))"

    def sigmoid_num(self, z: float) -> str:
        return f"1/(1 + e^({fmt(-z)}))"

    def dl_do(self, o: str, y: str) -> str:
        return f"2·({o} - {y})"

    def do_dz(self, z: str) -> str:
        return f"{self.sigma(z)}·(1 - {self.sigma(z)})"

    def pad_zero(self, d: float) -> str:
        return "0" if d == 1 else f"0/{fmt(d)}"

    def eq5(self, dilated: bool = False, nd: int = 2) -> str:
        sums = " ".join(f"Σ_{{{k}=1..K_{a}}}" for k, a in zip(K_IX, "WHD"[:nd]))
        return f"({sums} {self.x_general(dilated, nd)}·{self.s('k', K_IX[:nd])})/D"

    def eq1(self, axis: str, dilated: bool = False) -> str:
        if dilated:
            return f"(X_{axis} - K_{axis} - (K_{axis} - 1)(d_{axis} - 1) + 2P_{axis})/S_{axis} + 1"
        return f"(X_{axis} - K_{axis} + 2P_{axis})/S_{axis} + 1"

    def eq1_dilated_num(self, xs: int, ks: int, d: int, p: int, s: int, exact: bool) -> str:
        inner = f"({xs} - {ks} - ({ks} - 1)·({d} - 1) + 2·{p})/{s}"
        return f"{inner} + 1" if exact else f"⌊{inner}⌋ + 1"

    def eq1_transposed(self, axis: str) -> str:
        return f"(X_{axis} - 1)·S_{axis} - 2P_{axis} + d_{axis}·(K_{axis} - 1) + A_{axis} + 1"

    def eq1_transposed_num(self, xs: int, ks: int, s: int, p: int, d: int, a: int) -> str:
        return f"({xs} - 1)·{s} - 2·{p} + {d}·({ks} - 1) + {a} + 1"

    def eq1_num(self, xs: int, ks: int, p: int, s: int, exact: bool) -> str:
        inner = f"({xs} - {ks} + 2·{p})/{s}"
        return f"{inner} + 1" if exact else f"⌊{inner}⌋ + 1"

    def loss_def(self, index: Sequence[str] = ("x", "y")) -> str:
        """``Σ (o - y)²`` over the output cells, indexed by ``index`` (``("o", "x", "y")`` …)."""
        i = ",".join(index)
        return f"Σ_{{{i}}} ({self.s('o', index)} - {self.s('y', index)})²"

    def chain_K(self) -> str:
        return "∂L/∂O·∂O/∂Z·∂Z/∂K"

    def text(self, s: str) -> str:
        return s


class Latex(Plain):
    """amsmath LaTeX, also used inside Markdown's ``$…$``."""

    latex = True
    dots = r"\dots"

    def times(self, *fs: str) -> str:
        return r"\,".join(fs)

    def over(self, num: str, d: float, group: bool = True) -> str:
        return num if d == 1 else rf"\frac{{{num}}}{{{fmt(d)}}}"

    def sum_over(self, terms: Sequence[str], d: float) -> list[str]:
        """Rows of a long sum under one ``1/D``, as many terms a row as fit on a line."""
        if sum(latex_width(t) + 3 for t in terms) <= LINE_CHARS - 6:
            return [self.over(" + ".join(terms), d)]
        rows = [" + ".join(g) for g in chunks_within(terms, LINE_CHARS - 12, latex_width)]
        if d != 1:
            rows[0] = rf"\frac{{1}}{{{fmt(d)}}}\bigl({rows[0]}"
            rows[-1] += r"\bigr)"
        return rows

    def num(self, v: float) -> str:
        t = fmt(v)
        if "e" in t:
            mant, exp = t.split("e")
            t = rf"{mant} \times 10^{{{exp}}}"
        return rf"\left({t}\right)" if t.startswith("-") else t

    def numprod(self, a: float, b: float) -> str:
        return rf"{self.num(a)} \cdot {self.num(b)}"

    def d(self, f: str, v: str) -> str:
        return rf"\frac{{\partial {f}}}{{\partial {v}}}"

    def conv(self) -> str:
        return r"\operatorname{conv}(X, K)"

    def to(self) -> str:
        return r"\to"

    def maximum(self, items: Sequence[str]) -> str:
        return rf"\max({', '.join(items)})"

    def inserted_zero(self) -> str:
        return r"\underbrace{0}_{\text{ins}}"

    sep = r",\,"

    def sigma(self, z: str) -> str:
        return rf"\sigma({z})"

    def sq(self, a: str) -> str:
        return f"({a})^2"

    def sigmoid_def(self, z: str) -> str:
        return rf"\frac{{1}}{{1 + e^{{-{z}}}}}"

    def sigmoid_num(self, z: float) -> str:
        return rf"\frac{{1}}{{1 + e^{{{fmt(-z)}}}}}"

    def dl_do(self, o: str, y: str) -> str:
        return f"2({o} - {y})"

    def do_dz(self, z: str) -> str:
        return rf"{self.sigma(z)}\bigl(1 - {self.sigma(z)}\bigr)"

    def pad_zero(self, d: float) -> str:
        zero = "0" if d == 1 else rf"\frac{{0}}{{{fmt(d)}}}"
        return rf"\underbrace{{{zero}}}_{{\text{{pad}}}}"

    def eq5(self, dilated: bool = False, nd: int = 2) -> str:
        sums = "".join(rf"\sum_{{{k}=1}}^{{K_{a}}}" for k, a in zip(K_IX, "WHD"[:nd]))
        return rf"\frac{{1}}{{D}}{sums} {self.x_general(dilated, nd)}\, {self.s('k', K_IX[:nd])}"

    def eq1(self, axis: str, dilated: bool = False) -> str:
        if dilated:
            return (rf"\frac{{X_{axis} - K_{axis} - (K_{axis} - 1)(d_{axis} - 1) + 2P_{axis}}}"
                    rf"{{S_{axis}}} + 1")
        return rf"\frac{{X_{axis} - K_{axis} + 2P_{axis}}}{{S_{axis}}} + 1"

    def eq1_dilated_num(self, xs: int, ks: int, d: int, p: int, s: int, exact: bool) -> str:
        inner = rf"\frac{{{xs} - {ks} - ({ks} - 1)({d} - 1) + 2 \cdot {p}}}{{{s}}}"
        return f"{inner} + 1" if exact else rf"\left\lfloor {inner} \right\rfloor + 1"

    def eq1_transposed(self, axis: str) -> str:
        return rf"(X_{axis} - 1) S_{axis} - 2P_{axis} + d_{axis} (K_{axis} - 1) + A_{axis} + 1"

    def eq1_transposed_num(self, xs: int, ks: int, s: int, p: int, d: int, a: int) -> str:
        return rf"({xs} - 1) \cdot {s} - 2 \cdot {p} + {d} \cdot ({ks} - 1) + {a} + 1"

    def eq1_num(self, xs: int, ks: int, p: int, s: int, exact: bool) -> str:
        inner = rf"\frac{{{xs} - {ks} + 2 \cdot {p}}}{{{s}}}"
        return f"{inner} + 1" if exact else rf"\left\lfloor {inner} \right\rfloor + 1"

    def loss_def(self, index: Sequence[str] = ("x", "y")) -> str:
        bounds = {"c": r"C_{\text{out}}", "x": "O_W", "y": "O_H", "t": "O_D"}
        sums = " ".join(rf"\sum_{{{n}=1}}^{{{bounds[n]}}}" for n in index)
        return rf"{sums} ({self.s('o', index)} - {self.s('y', index)})^2"

    def chain_K(self) -> str:
        return (r"\frac{\partial L}{\partial O} \frac{\partial O}{\partial Z} "
                r"\frac{\partial Z}{\partial K}")

    def text(self, s: str) -> str:
        return rf"\text{{{s}}}"



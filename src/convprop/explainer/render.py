"""Text, Markdown and LaTeX renderings of a :class:`convprop.explainer.derivation.Derivation`.

One function, :func:`blocks`, says *what* is written (headings, prose, aligned
equations, matrices) using a notation object; the plain notation writes
``∂L/∂k_{1,1}`` and ``x_{1,1}·k_{1,1}``, the LaTeX one ``\\frac{\\partial L}{\\partial
k_{1,1}}``.  Three small emitters say *how* each block looks in text, Markdown
(GitHub math, ``$…$``) and LaTeX (amsmath).  In the text format every right-hand
side that contains no ``∂`` or ``Σ`` is a SymPy-parsable expression once ``·`` is
read as ``*``, ``²`` as ``**2``, ``σ`` as the sigmoid and ``e^(…)`` as ``exp(…)``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..seed import Pair, fmt
from .text import side_by_side

if TYPE_CHECKING:
    from .derivation import Derivation, Term


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
MATRIX_COLUMNS = 10  # wider matrices are left out (amsmath's bmatrix stops at 10 columns)


# --------------------------------------------------------------- notations
class Plain:
    """Unicode text, one equation per line where it fits."""

    latex = False
    dots = "…"

    def s(self, name: str, cell: Sequence[int | str]) -> str:
        """``x_{i,j}``; ``cell`` may hold numbers or index expressions such as ``"x+i-1"``."""
        return f"{name}_{{{cell[0]},{cell[1]}}}"

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

    def x_general(self) -> str:
        return "x_{(x-1)S_W+i-P_W, (y-1)S_H+j-P_H}"

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

    def eq5(self) -> str:
        return ("(Σ_{i=1..K_W} Σ_{j=1..K_H} x_{(x-1)S_W+i-P_W, (y-1)S_H+j-P_H}·k_{i,j})/D")

    def eq1(self, axis: str) -> str:
        return f"(X_{axis} - K_{axis} + 2P_{axis})/S_{axis} + 1"

    def eq1_num(self, xs: int, ks: int, p: int, s: int, exact: bool) -> str:
        inner = f"({xs} - {ks} + 2·{p})/{s}"
        return f"{inner} + 1" if exact else f"⌊{inner}⌋ + 1"

    def loss_def(self) -> str:
        return "Σ_{x,y} (o_{x,y} - y_{x,y})²"

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
        """Rows of a long sum (four terms a row) under one ``1/D``."""
        if len(terms) <= 4:
            return [self.over(" + ".join(terms), d)]
        rows = [" + ".join(terms[n:n + 4]) for n in range(0, len(terms), 4)]
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

    def x_general(self) -> str:
        return r"x_{(x-1)S_W+i-P_W,\,(y-1)S_H+j-P_H}"

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

    def eq5(self) -> str:
        return (r"\frac{1}{D}\sum_{i=1}^{K_W}\sum_{j=1}^{K_H} "
                r"x_{(x-1)S_W+i-P_W,\,(y-1)S_H+j-P_H}\, k_{i,j}")

    def eq1(self, axis: str) -> str:
        return rf"\frac{{X_{axis} - K_{axis} + 2P_{axis}}}{{S_{axis}}} + 1"

    def eq1_num(self, xs: int, ks: int, p: int, s: int, exact: bool) -> str:
        inner = rf"\frac{{{xs} - {ks} + 2 \cdot {p}}}{{{s}}}"
        return f"{inner} + 1" if exact else rf"\left\lfloor {inner} \right\rfloor + 1"

    def loss_def(self) -> str:
        return r"\sum_{x=1}^{O_W} \sum_{y=1}^{O_H} (o_{x,y} - y_{x,y})^2"

    def chain_K(self) -> str:
        return (r"\frac{\partial L}{\partial O} \frac{\partial O}{\partial Z} "
                r"\frac{\partial Z}{\partial K}")

    def text(self, s: str) -> str:
        return rf"\text{{{s}}}"


# ----------------------------------------------------------------- content
def blocks(d: Derivation, N: Plain) -> list[Block]:
    """Everything a derivation says, in reading order (sections I–III of the document)."""
    return [*_section_i(d, N), *_section_ii(d, N), *_section_iii(d, N)]


def _pair_math(name: str, p: Pair, scalar: bool = False) -> str:
    """``S = (2, 1)``; with ``scalar`` an equal pair is written ``S = 2`` as the document does."""
    return f"{name} = {p[0]}" if scalar and p[0] == p[1] else f"{name} = ({p[0]}, {p[1]})"


def _section_i(d: Derivation, N: Plain) -> list[Block]:
    g, v = d.geometry, d.values
    dd = fmt(g.divisor)
    rule = {"K_W·K_H": "K_W K_H" if N.latex else "K_W·K_H",
            "S_W·S_H": "S_W S_H" if N.latex else "S_W·S_H"}.get(g.divisor_rule)
    div = f"D = {rule} = {dd}" if rule else f"D = {dd}"
    out: list[Block] = [
        Heading(1, "Convolution forward and backward, step by step"),
        Para(["Input ", Math(_pair_math("S_X", g.input_shape)), ", kernel ",
              Math(_pair_math("S_K", g.kernel_shape)), ", stride ",
              Math(_pair_math("S", g.stride, True)), ", zero padding ",
              Math(_pair_math("P", g.padding, True)), ", divisor ", Math(div), ". ",
              Math(N.s("x", ("i", "j"))),
              " is column i and row j, counted from 1, as in the document; shapes are "
              "(width, height)."]),
    ]
    if v is not None:
        out.append(Para([f"Values: {v.source}."]))
        shown = [("X", _num_cells(v.x)), ("K", _num_cells(v.k)), ("Y", _num_cells(v.y))]
    else:
        shown = [("X", _sym_cells(N, "x", g.input_shape)), ("K", _sym_cells(N, "k", g.kernel_shape))]
    shown = [(name, name, cells) for name, cells in shown if len(cells[0]) <= MATRIX_COLUMNS]
    if shown:
        out.append(Matrices(shown))
    out.append(Heading(2, "I. Output shape (eq. 1)"))
    rows = []
    for axis, n in (("W", 0), ("H", 1)):
        xs, ks, s, p = g.input_shape[n], g.kernel_shape[n], g.stride[n], g.padding[n]
        exact = (xs - ks + 2 * p) % s == 0
        rows += [(f"Z_{axis}", f"= {N.eq1(axis)}"),
                 ("", f"= {N.eq1_num(xs, ks, p, s, exact)}"),
                 ("", f"= {g.output_shape[n]}")]
    rows.append(("S_Z", f"= ({g.output_shape[0]}, {g.output_shape[1]})"))
    out.append(Eqs(rows))
    untouched = [c for c in g.inputs() if c not in g.touched_inputs()]
    if untouched:
        out.append(Para(["With this stride no window reaches ",
                         Math(", ".join(N.s("x", c) for c in untouched)),
                         ": these inputs enter no z, and no kernel gradient sums over them."]))
    return out


def _num_cells(a: np.ndarray) -> list[list[str]]:
    return [[fmt(v) for v in row] for row in a]


def _sym_cells(N: Plain, name: str, shape: Pair) -> list[list[str]]:
    return [[N.s(name, (i, j)) for i in range(1, shape[0] + 1)] for j in range(1, shape[1] + 1)]


def _section_ii(d: Derivation, N: Plain) -> list[Block]:
    g, v = d.geometry, d.values
    D = g.divisor
    out: list[Block] = [
        Heading(2, "II. Forward propagation"),
        Para(["Eq. 5 with stride and padding; for S = 1 and P = 0 the index is ",
              Math(N.s("x", ("x+i-1", "y+j-1"))),
              ": the document's ", Math(N.s("x", ("i+x", "j+y"))),
              " is off by one."]),
        Eqs([(N.s("z", ("x", "y")), f"= {N.eq5()}")]),
    ]
    note = {"K_W·K_H": "D is the kernel size, the division the document's worked equations make "
                       "(by 4 for a 2x2 kernel); eq. 5 as printed divides by the stride product, "
                       "and the standard convolution divides by 1.",
            "S_W·S_H": "D is the stride product, eq. 5 as printed; the document's worked "
                       "equations divide by the kernel size instead."}.get(g.divisor_rule)
    if note:
        out.append(Para([note]))
    if any(p for p in g.padding):
        out.append(Para(["Cells outside the input are padded zeros, written ", Math(N.pad_zero(1)),
                         ": their products vanish, and so do the gradient terms that meet them."]))
    rows = []
    wins = g.windows(v.x) if v is not None else None
    for (x, y) in g.outputs():
        syms, kept, nums = [], [], []
        for (i, j) in g.kernel_elements():
            src = g.source(i, j, x, y)
            k = N.s("k", (i, j))
            if src is None:
                syms.append(N.times(N.pad_zero(1), k))
            else:
                syms.append(N.times(N.s("x", src), k))
                kept.append(syms[-1])
            if v is not None:
                a, b = wins[j - 1, i - 1, y - 1, x - 1], v.k[j - 1, i - 1]
                nums.append(N.numprod(a, b))
        rows += _rows(N.s("z", (x, y)), N.sum_over(syms, D))
        if len(kept) < len(syms):
            rows += _rows("", N.sum_over(kept, D) if kept else ["0"])
        if v is not None:
            rows += _rows("", N.sum_over(nums, D))
            total = float((wins[:, :, y - 1, x - 1] * v.k).sum())
            last = f"{N.over(fmt(total), D, group=False)} = {fmt(v.z[y - 1, x - 1])}" if D != 1 \
                else fmt(v.z[y - 1, x - 1])
            rows.append(("", f"= {last}"))
    out.append(Eqs(rows))
    out.append(Para(["Then ", Math("O = " + N.sigma("Z")), " element-wise (eq. 6):"]))
    rows = []
    for (x, y) in g.outputs():
        z = N.s("z", (x, y))
        r = f"= {N.sigma(z)} = {N.sigmoid_def(z)}"
        if v is not None:
            zv = v.z[y - 1, x - 1]
            r += f" = {N.sigmoid_num(zv)} = {fmt(v.o[y - 1, x - 1])}"
        rows.append((N.s("o", (x, y)), r))
    out.append(Eqs(rows))
    out.append(Para(["and the loss (eq. 4):"]))
    cells = g.outputs()
    sq = [N.sq(f"{N.s('o', c)} - {N.s('y', c)}") for c in cells]
    rows = [("L", f"= {N.loss_def()}"), *_plus_rows(sq, 2)]
    if v is not None:
        ov = [v.o[c[1] - 1, c[0] - 1] for c in cells]
        yv = [v.y[c[1] - 1, c[0] - 1] for c in cells]
        rows += _plus_rows([N.sq(f"{fmt(a)} - {fmt(b)}") for a, b in zip(ov, yv)], 2)
        rows += _plus_rows([fmt((a - b) ** 2) for a, b in zip(ov, yv)], 4)
        rows.append(("", f"= {fmt(v.loss)}"))
    out.append(Eqs(rows))
    return out


def _rows(left: str, parts: list[str]) -> list[tuple[str, str]]:
    """The rows of one sum: ``= first`` then ``+ rest``."""
    return [(left, f"= {parts[0]}")] + [("", f"+ {p}") for p in parts[1:]]


def _plus_rows(terms: list[str], per_row: int) -> list[tuple[str, str]]:
    chunks = [" + ".join(terms[n:n + per_row]) for n in range(0, len(terms), per_row)]
    return _rows("", chunks)


def _section_iii(d: Derivation, N: Plain) -> list[Block]:
    g, v = d.geometry, d.values
    D = g.divisor
    o, y, z, k = (N.s(n, c) for n, c in (("o", "xy"), ("y", "xy"), ("z", "xy"), ("k", "ij")))
    conv = N.over(N.conv(), D, group=False)
    out: list[Block] = [
        Heading(2, "III. Backward propagation"),
        Para(["With ", Math("L = " + N.sq("O - Y")), ", ", Math("O = " + N.sigma("Z")), " and ",
              Math(f"Z = {conv}"),
              ", the chain rule gives"]),
        Eqs([(N.d("L", "K"), f"= {N.chain_K()}")]),
        Para(["where, for every output ", Math(z), " and kernel element ", Math(k), " it uses,"]),
        Eqs([(N.d("L", o), f"= {N.dl_do(o, y)}"),
             (N.d(o, z), f"= {N.do_dz(z)}"),
             (N.d(z, k), f"= {N.over(N.x_general(), D, group=False)}")]),
    ]
    if D != 1:
        x11, k11, z11 = N.s("x", (1, 1)), N.s("k", (1, 1)), N.s("z", (1, 1))
        out.append(Para(["The document writes ", Math(f"{N.d(z11, k11)} = {x11}"),
                         ", dropping the 1/D of its own eq. 5; the factor used here is ",
                         Math(f"{N.d(z11, k11)} = {N.over(x11, D, group=False)}"), "."]))
    for kc in g.kernel_elements():
        out.append(Eqs(_gradient_rows(d, N, kc)))
    if v is not None:
        grad = [(N.d("L", "K"), "K", _num_cells(v.grad))]
        out.append(Para([f"The symbolic gradient (SymPy, evaluated in float64) and convprop's "
                         f"autograd differ by at most {v.max_difference:.2g} "
                         f"(tolerance 1e-12): ",
                         "they agree." if v.max_difference <= 1e-12 else "THEY DISAGREE."]))
        if g.kernel_shape[0] <= MATRIX_COLUMNS:
            out.append(Matrices(grad))
    return out


def _gradient_rows(d: Derivation, N: Plain, kc: Pair) -> list[tuple[str, str]]:
    """``∂L/∂k_{i,j}``: the generic chain rule, its factors, what survives, and numbers."""
    v, D = d.values, d.geometry.divisor
    terms: list[Term] = d.terms[kc]
    k = N.s("k", kc)
    generic, factored, kept, nums = [], [], [], []
    for t in terms:
        o, y, z = N.s("o", t.output), N.s("y", t.output), N.s("z", t.output)
        generic.append(N.times(N.d("L", o), N.d(o, z), N.d(z, k)) if N.latex
                       else "·".join([N.d("L", o), N.d(o, z), N.d(z, k)]))
        dz = N.pad_zero(D) if t.vanishes else N.over(N.s("x", t.source), D, group=False)
        f = N.times(N.dl_do(o, y), N.do_dz(z), dz)
        factored.append(f)
        if not t.vanishes:
            kept.append(f)
            if v is not None:
                (x_, y_), (i, j) = t.output, kc
                nums.append(N.num(v.terms[j - 1, i - 1, y_ - 1, x_ - 1]))
    rows = _rows(N.d("L", k), generic) + _rows("", factored)
    if len(kept) < len(factored):
        rows += _rows("", kept) if kept else [("", "= 0")]
    if v is not None and kept:
        i, j = kc
        rows += _plus_rows(nums, 4) if len(nums) > 1 else []
        rows.append(("", f"= {fmt(v.grad[j - 1, i - 1])}"))
    return rows


# ---------------------------------------------------------------- emitters
def render(d: Derivation, fmt_: str, standalone: bool = True) -> str:
    """``fmt_`` is ``'text'``, ``'markdown'`` or ``'latex'``."""
    if fmt_ == "text":
        return _emit_text(blocks(d, Plain()))
    if fmt_ == "markdown":
        return _emit_markdown(blocks(d, Latex()))
    if fmt_ == "latex":
        body = _emit_latex(blocks(d, Latex()))
        if not standalone:
            return body
        return "\n".join([r"\documentclass{article}", r"\usepackage{amsmath}",
                          r"\allowdisplaybreaks", r"\begin{document}", body, r"\end{document}"])
    raise ValueError(f"format must be 'text', 'markdown' or 'latex', got {fmt_!r}")


def equations_latex(d: Derivation) -> str:
    """Only the equations, as ``$$\\begin{aligned}…\\end{aligned}$$`` (Jupyter's text/latex)."""
    return "\n".join(f"$${_aligned(b.rows)}$$" for b in blocks(d, Latex()) if isinstance(b, Eqs))


def _text_equation(left: str, width: int, rights: list[str]) -> list[str]:
    one = f"{left.ljust(width)} " + " ".join(rights)
    if len(one) <= 100 and not any(r.startswith("+") for r in rights):
        return [one]
    lines = []
    for n, r in enumerate(rights):
        lead = left.ljust(width) if n == 0 else " " * width
        lines.append(f"{lead} {'  ' if r.startswith('+') else ''}{r}")
    return lines


def _emit_text(bs: list[Block]) -> str:
    out: list[str] = []
    for b in bs:
        if isinstance(b, Heading):
            out += ["", b.title, "=" * len(b.title) if b.level == 1 else "-" * len(b.title)]
        elif isinstance(b, Para):
            text = "".join(p.s if isinstance(p, Math) else p for p in b.parts)
            out += ["", textwrap.fill(text, 100, break_long_words=False, break_on_hyphens=False)]
        elif isinstance(b, Matrices):
            out += ["", *side_by_side([_text_matrix(name, cells) for name, _, cells in b.items])]
        else:
            out.append("")
            groups: list[tuple[str, list[str]]] = []
            for left, right in b.rows:
                if left or not groups:
                    groups.append((left, [right]))
                else:
                    groups[-1][1].append(right)
            width = max(len(left) for left, _ in groups)
            for left, rights in groups:
                out += ["  " + s for s in _text_equation(left, width, rights)]
    return "\n".join(out).strip("\n")


def _text_matrix(name: str, cells: list[list[str]]) -> list[str]:
    width = max(len(c) for row in cells for c in row)
    rows = ["  [ " + "  ".join(c.rjust(width) for c in row) + " ]" for row in cells]
    return [f"{name} ="] + rows


def _aligned(rows: list[tuple[str, str]], env: str = "aligned") -> str:
    lines = []
    for left, right in rows:
        if right.startswith("+"):
            lines.append(rf"{left} &\quad {right}")
        else:
            lines.append(f"{left} &{right}")
    return f"\\begin{{{env}}}\n" + " \\\\\n".join(lines) + f"\n\\end{{{env}}}"


def _latex_matrix(cells: list[list[str]]) -> str:
    body = r" \\ ".join(" & ".join(row) for row in cells)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


def _matrices_math(b: Matrices) -> str:
    return r", \quad ".join(f"{name} = {_latex_matrix(c)}" for name, _, c in b.items)


def _emit_markdown(bs: list[Block]) -> str:
    out: list[str] = []
    for b in bs:
        if isinstance(b, Heading):
            out += ["#" * (b.level + 1) + " " + b.title, ""]
        elif isinstance(b, Para):
            out += ["".join(f"${p.s}$" if isinstance(p, Math) else p for p in b.parts), ""]
        elif isinstance(b, Matrices):
            out += ["$$", _matrices_math(b), "$$", ""]
        else:
            out += ["$$", _aligned(b.rows), "$$", ""]
    return "\n".join(out).strip("\n")


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def _escape(s: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in s)


def _emit_latex(bs: list[Block]) -> str:
    out: list[str] = []
    for b in bs:
        if isinstance(b, Heading):
            cmd = "section*" if b.level == 1 else "subsection*"
            out += [rf"\{cmd}{{{_escape(b.title)}}}", ""]
        elif isinstance(b, Para):
            out += ["".join(f"${p.s}$" if isinstance(p, Math) else _escape(p) for p in b.parts), ""]
        elif isinstance(b, Matrices):
            out += [r"\[", _matrices_math(b), r"\]", ""]
        else:
            out += [_aligned(b.rows, "align*"), ""]
    return "\n".join(out).strip("\n")

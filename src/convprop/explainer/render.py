"""Text, Markdown and LaTeX renderings of a :class:`convprop.explainer.derivation.Derivation`.

:func:`.sections.blocks` says *what* is written (headings, prose, aligned equations,
matrices) using a notation object from :mod:`.notation`; the emitters here say *how*
each block looks in text, Markdown (GitHub math, ``$…$``) and LaTeX (amsmath).  In the
text format every right-hand side that contains no ``∂``, ``Σ`` or ``→`` is a
SymPy-parsable expression once ``·`` is read as ``*``, ``²`` as ``**2``, ``σ`` as the
sigmoid and ``e^(…)`` as ``exp(…)``.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from .notation import MATRIX_COLUMNS, Block, Eqs, Heading, Latex, Math, Matrices, Para, Plain
from .sections import blocks
from .text import LINE_CHARS, chunks_within, latex_width, side_by_side, wrap_sum

if TYPE_CHECKING:
    from .model import DerivationModel as Derivation

__all__ = ["Block", "Eqs", "Heading", "Latex", "Math", "Matrices", "Para", "Plain", "blocks",
           "equations_latex", "render", "render_blocks"]


# ---------------------------------------------------------------- emitters
def render(d: Derivation, fmt_: str, standalone: bool = True) -> str:
    """``fmt_`` is ``'text'``, ``'markdown'`` or ``'latex'``."""
    if fmt_ not in ("text", "markdown", "latex"):
        raise ValueError(f"format must be 'text', 'markdown' or 'latex', got {fmt_!r}")
    return render_blocks(blocks(d, Plain() if fmt_ == "text" else Latex()), fmt_, standalone)


def render_blocks(bs: list[Block], fmt_: str, standalone: bool = True) -> str:
    """Lay out blocks written in the notation of ``fmt_`` (plain for text, LaTeX otherwise)."""
    if fmt_ == "text":
        return _emit_text(bs)
    if fmt_ == "markdown":
        return _emit_markdown(bs)
    if fmt_ == "latex":
        body = _emit_latex(bs)
        if not standalone:
            return body
        return "\n".join([r"\documentclass{article}", r"\usepackage{amsmath}",
                          r"\allowdisplaybreaks", r"\sloppy", r"\begin{document}", body,
                          r"\end{document}"])
    raise ValueError(f"format must be 'text', 'markdown' or 'latex', got {fmt_!r}")


def equations_latex(d: Derivation) -> str:
    """Only the equations, as ``$$\\begin{aligned}…\\end{aligned}$$`` (Jupyter's text/latex)."""
    return "\n".join(f"$${_aligned(b.rows)}$$" for b in blocks(d, Latex()) if isinstance(b, Eqs))


def _text_equation(left: str, width: int, rights: list[str]) -> list[str]:
    """One equation's lines: on one line where it fits in 100 columns, else one right side a
    line, a long one broken before the ``+`` of its sum (see :func:`.text.wrap_sum`)."""
    one = f"{left.ljust(width)} " + " ".join(rights)
    if len(one) <= 100 and not any(r.startswith("+") for r in rights):
        return [one]
    lines = []
    for n, r in enumerate(rights):
        lead = left.ljust(width) if n == 0 else " " * width
        indent = "  " if r.startswith("+") else ""
        pieces = wrap_sum(r, 100 - 2 - width - 1 - len(indent) - 2)
        lines.append(f"{lead} {indent}{pieces[0]}")
        lines += [f"{' ' * width} {indent}  {p}" for p in pieces[1:]]
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
            row: list[list[str]] = []
            for name, _, cells in b.items:  # side by side while they fit in 100 columns
                for m in _text_matrices(name, cells, 100):
                    if row and max(len(line) for line in side_by_side([*row, m])) > 100:
                        out += ["", *side_by_side(row)]
                        row = []
                    row.append(m)
            out += ["", *side_by_side(row)]
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


def _text_matrices(name: str, cells: list[list[str]], limit: int) -> list[list[str]]:
    """``name = [cells]``, split into column blocks ``name (columns a-b) =`` wider than ``limit``."""
    whole = _text_matrix(name, cells)
    if max(len(line) for line in whole) <= limit:
        return [whole]
    width = max(len(c) for row in cells for c in row)
    per = max(1, (limit - 6) // (width + 2))
    n = len(cells[0])
    return [_text_matrix(f"{name} (columns {a + 1}-{min(a + per, n)})",
                         [row[a:a + per] for row in cells]) for a in range(0, n, per)]


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


def _matrices_math(b: Matrices) -> list[str]:
    """Displays of ``name = [matrix]``, as many side by side as fit on a line (then wrapped).

    A matrix too wide for a line by itself, or with more than :data:`.notation.MATRIX_COLUMNS`
    columns, is split into column blocks, each written ``name (columns a-b) = [...]``.
    """
    lines: list[list[str]] = [[]]
    used = 0.0
    for name, _, cells in b.items:
        widths = [max(latex_width(row[c]) for row in cells) + 2 for c in range(len(cells[0]))]
        pieces = [(name, cells, sum(widths))]
        if latex_width(name) + sum(widths) > LINE_CHARS or len(widths) > MATRIX_COLUMNS:
            fitting = chunks_within([str(c) for c in range(len(widths))], LINE_CHARS
                                    - latex_width(name) - 12, lambda c, w=widths: w[int(c)], sep=0)
            cols = [g[n:n + MATRIX_COLUMNS] for g in fitting  # amsmath's bmatrix: 10 columns
                    for n in range(0, len(g), MATRIX_COLUMNS)]
            pieces = []
            for group in cols:
                a, z = int(group[0]), int(group[-1])
                label = rf"{name}\ (\text{{columns {a + 1}--{z + 1}}})"
                pieces.append((label, [row[a:z + 1] for row in cells], sum(widths[a:z + 1]) + 12))
        for label, part, w in pieces:
            width = latex_width(name) + w
            if lines[-1] and used + width > LINE_CHARS:
                lines.append([])
                used = 0
            lines[-1].append(f"{label} = {_latex_matrix(part)}")
            used += width + 3
    return [r", \quad ".join(line) for line in lines]


def _emit_markdown(bs: list[Block]) -> str:
    out: list[str] = []
    for b in bs:
        if isinstance(b, Heading):
            out += ["#" * (b.level + 1) + " " + b.title, ""]
        elif isinstance(b, Para):
            out += ["".join(f"${p.s}$" if isinstance(p, Math) else p for p in b.parts), ""]
        elif isinstance(b, Matrices):
            for line in _matrices_math(b):
                out += ["$$", line, "$$", ""]
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
            for line in _matrices_math(b):
                out += [r"\[", line, r"\]", ""]
        else:
            out += [_aligned(b.rows, "align*"), ""]
    return "\n".join(out).strip("\n")


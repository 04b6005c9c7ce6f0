"""``convprop demo``: the founding document's 3×3 / 2×2 example, with numbers, then trained.

Prints X, K, Y, the output shape (eq. 1), every ``z_{x,y}`` with the numbers
substituted, every ``o_{x,y}``, ``L``, and every ``∂L/∂k_{i,j}`` as the chain-rule
sum term by term, all in the document's notation; then trains K by gradient
descent (:func:`convprop.seed.train`) and prints the loss step by step.  The
numbers and the pipeline come from :mod:`convprop.seed`; this module only writes
them out (NumPy only; tqdm and matplotlib are imported when used).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from .explainer.text import side_by_side
from .seed import (
    DEFAULT_LR,
    DEFAULT_STEPS,
    Geometry,
    History,
    Pass,
    chain_rule,
    demo_values,
    fmt,
    sym,
    train,
)


def _factor(v: float) -> str:
    """A number inside a product: negatives in parentheses."""
    s = fmt(v)
    return f"({s})" if s.startswith("-") else s


def matrix_lines(name: str, a: np.ndarray, letter: str) -> list[str]:
    """``name =`` above the rows of ``a`` in brackets, columns aligned."""
    cells = [[fmt(v) for v in row] for row in a]
    width = max(len(c) for row in cells for c in row)
    rows = ["  [ " + "  ".join(c.rjust(width) for c in row) + " ]" for row in cells]
    shape = f"S_{letter} = ({a.shape[1]}, {a.shape[0]})"
    return [f"{name} ({shape}) ="] + rows


def shape_lines(geo: Geometry) -> list[str]:
    """Eq. 1 with the numbers substituted, once per dimension."""
    lines = []
    for axis, n in (("W", 0), ("H", 1)):
        xs, ks, s, p = geo.input_shape[n], geo.kernel_shape[n], geo.stride[n], geo.padding[n]
        num = xs - ks + 2 * p
        rhs = f"({xs} - {ks} + 2·{p})/{s} + 1"
        exact = num % s == 0
        if not exact:
            rhs = f"⌊{rhs[:-4]}⌋ + 1 = ⌊{fmt(num / s, 4)}⌋ + 1"
        lines.append(f"Z_{axis} = (X_{axis} - K_{axis} + 2P_{axis})/S_{axis} + 1 = {rhs} "
                     f"= {geo.output_shape[n]}")
    return lines


def _describe(geo: Geometry) -> str:
    st = geo.stride[0] if geo.stride[0] == geo.stride[1] else geo.stride
    pad = geo.padding[0] if geo.padding[0] == geo.padding[1] else geo.padding
    d = geo.divisor_rule
    div = f"D = {d} = {fmt(geo.divisor)}" if d != "given" else f"D = {fmt(geo.divisor)}"
    return (f"S_X = {geo.input_shape}, S_K = {geo.kernel_shape}, stride S = {st}, "
            f"padding P = {pad}, divisor {div}")


def forward_lines(p: Pass) -> list[str]:
    """Section II with numbers: every z, o and L, expanded then evaluated."""
    geo, d = p.geometry, fmt(p.geometry.divisor)
    out = [f"II. Forward (eq. 5, 6, 4): Z = conv(X, K)/{d}, O = σ(Z), L = Σ(o - y)²"]
    wins = geo.windows(p.x)
    for (x, y) in geo.outputs():
        syms, nums = [], []
        for (i, j) in geo.kernel_elements():
            src = geo.source(i, j, x, y)
            xs = sym("x", src) if src else "0"
            syms.append(f"{xs}·{sym('k', (i, j))}")
            nums.append(f"{_factor(wins[j - 1, i - 1, y - 1, x - 1])}·{_factor(p.k[j - 1, i - 1])}")
        total = float((wins[:, :, y - 1, x - 1] * p.k).sum())
        lhs = f"  {sym('z', (x, y))} = "
        pad = " " * (len(lhs) - 2)
        out.append(f"{lhs}({' + '.join(syms)})/{d}")
        out.append(f"{pad}= ({' + '.join(nums)})/{d}")
        out.append(f"{pad}= {fmt(total)}/{d} = {fmt(p.z[y - 1, x - 1])}")
    out.append("")
    for (x, y) in geo.outputs():
        z = p.z[y - 1, x - 1]
        out.append(f"  {sym('o', (x, y))} = σ({sym('z', (x, y))}) = 1/(1 + e^({fmt(-z)})) "
                   f"= {fmt(p.o[y - 1, x - 1])}")
    out.append("")
    cells = geo.outputs()
    sq = [f"({sym('o', c)} - {sym('y', c)})²" for c in cells]
    nums = [f"({fmt(p.o[c[1] - 1, c[0] - 1])} - {fmt(p.y[c[1] - 1, c[0] - 1])})²" for c in cells]
    vals = [fmt((p.o[c[1] - 1, c[0] - 1] - p.y[c[1] - 1, c[0] - 1]) ** 2) for c in cells]
    out.append("  L = " + _wrap(sq, 2, "      + "))
    out.append("    = " + _wrap(nums, 2, "      + "))
    out.append("    = " + " + ".join(vals))
    out.append(f"    = {fmt(p.loss)}")
    return out


def _wrap(parts: list[str], per_line: int, cont: str) -> str:
    lines = [" + ".join(parts[n:n + per_line]) for n in range(0, len(parts), per_line)]
    return ("\n" + cont).join(lines)


def backward_lines(p: Pass) -> list[str]:
    """Section III with numbers: every ∂L/∂k_{i,j} as the chain-rule sum, term by term."""
    geo, d = p.geometry, fmt(p.geometry.divisor)
    cr = chain_rule(p)
    out = [
        "III. Backward (chain rule): ∂L/∂k_{i,j} = Σ ∂L/∂o_{x,y} · ∂o_{x,y}/∂z_{x,y} · "
        "∂z_{x,y}/∂k_{i,j}",
        f"  with ∂L/∂o = 2(o - y),  ∂o/∂z = σ(z)(1 - σ(z)) = o(1 - o),  ∂z/∂k = x/{d}",
    ]
    if geo.divisor != 1:
        out.append(f"  (the document writes ∂z_{{1,1}}/∂k_{{1,1}} = x_{{1,1}}; eq. 5 divides by "
                   f"{d}, so the factor is x_{{1,1}}/{d})")
    for (i, j) in geo.kernel_elements():
        kij = sym("k", (i, j))
        head = ["output", "∂L/∂o", "∂o/∂z", f"∂z/∂{kij}", "term"]
        rows = []
        for (x, y) in geo.outputs():
            src = geo.source(i, j, x, y)
            xs = sym("x", src) if src else "0 (pad)"
            r, c = y - 1, x - 1
            rows.append([sym("z", (x, y)), fmt(cr.dl_do[r, c]), fmt(cr.do_dz[r, c]),
                         f"{xs}/{d} = {fmt(cr.dz_dk[j - 1, i - 1, r, c])}",
                         fmt(cr.terms[j - 1, i - 1, r, c])])
        out.append("")
        out.append(f"  ∂L/∂{kij}:")
        out.extend("    " + line for line in table([head] + rows, "lrrlr"))
        out.append(f"    ∂L/∂{kij} = sum of the terms = {fmt(cr.grad[j - 1, i - 1])}")
    out.append("")
    out.extend("  " + s for s in matrix_lines("∂L/∂K", p.grad, "K"))
    return out


def table(rows: list[list[str]], align: str) -> list[str]:
    """Columns two spaces apart; ``align`` has one ``l`` or ``r`` per column."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  ".join(v.ljust(w) if a == "l" else v.rjust(w)
                      for v, w, a in zip(r, widths, align)).rstrip() for r in rows]


def training_lines(h: History, every: int | None = None) -> list[str]:
    """The loss after each step: every step for short runs, about 20 rows for long ones."""
    n = h.steps
    every = every or max(1, math.ceil(n / 20))
    shown = sorted({t for t in range(0, n + 1, every)} | {n})
    rows = [["step", "L", "change"]]
    for t in shown:
        change = "" if t == 0 else fmt(h.losses[t] - h.losses[t - 1], 4)
        rows.append([str(t), f"{h.losses[t]:.6f}", change])
    return ["  " + line for line in table(rows, "rrr")]


def demo_report(x: np.ndarray, k: np.ndarray, y: np.ndarray, h: History) -> str:
    """Everything ``convprop demo`` prints to stdout."""
    p = h.first
    geo = p.geometry
    lines = [
        "The founding document's example, with numbers",
        f"  {_describe(geo)}",
        "  x_{i,j} is column i, row j, counted from 1 (the document's notation)",
        "",
        *side_by_side([matrix_lines("X", x, "X"), matrix_lines("K", k, "K"),
                       matrix_lines("Y", y, "Y")]),
        "",
        "I. Output shape (eq. 1)",
        *("  " + s for s in shape_lines(geo)),
        "",
        *forward_lines(p),
        "",
        *backward_lines(p),
        "",
        f"Training: K ← K - {fmt(h.lr)}·∂L/∂K, repeated "
        f"({h.steps} step{'' if h.steps == 1 else 's'})",
        *training_lines(h),
    ]
    if h.steps:
        lines.append(f"  L fell from {fmt(h.losses[0])} to {fmt(h.losses[-1])} "
                     f"(by {fmt(h.losses[0] - h.losses[-1], 4)}), at every step")
    if h.stopped:
        lines.append(f"  stopped: {h.stopped}")
    lines += ["", *side_by_side([matrix_lines("K before", h.kernels[0], "K"),
                                 matrix_lines("K after", h.kernels[-1], "K")])]
    return "\n".join(lines)


# ------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``convprop demo`` options."""
    from ._args import divisor_arg, non_negative_int, output_file, positive_float

    parser.add_argument("--seed", type=non_negative_int, default=None,
                        help="random X, K, Y from this seed instead of the documented defaults")
    parser.add_argument("--lr", type=positive_float, default=DEFAULT_LR,
                        help=f"learning rate (default {fmt(DEFAULT_LR)})")
    parser.add_argument("--steps", type=non_negative_int, default=DEFAULT_STEPS,
                        help=f"gradient-descent steps at most (default {DEFAULT_STEPS}); "
                             "training also stops when the loss stops falling")
    parser.add_argument("--divisor", default="kernel", type=divisor_arg, metavar="kernel|stride|N",
                        help="what eq. 5 divides by: 'kernel' (K_W*K_H = 4, the document's "
                             "worked equations; default), 'stride' (S_W*S_H) or a number "
                             "(1 = standard convolution)")
    parser.add_argument("--plot", metavar="FILE.png", default=None, type=output_file(".png"),
                        help="write a PNG: the loss curve and K before and after")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    """``convprop demo``: the 3×3 / 2×2 example, evaluated, then trained."""
    x, k, y = demo_values(args.seed)
    h = train(x, k, y, lr=args.lr, steps=args.steps, divisor=args.divisor,
              progress=not args.no_progress)
    print(demo_report(x, k, y, h))
    if args.plot:
        from .explainer.figures import demo_figure

        demo_figure(h, args.plot)
        print(f"\nPlot written to {args.plot}")
    return 0

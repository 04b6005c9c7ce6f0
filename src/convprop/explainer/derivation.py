"""Symbolic derivations in the founding document's notation (``convprop explain``).

:func:`explain` builds, with SymPy, for any input/kernel shape, stride and zero
padding, what sections I–III of the document write out for the 3×3 / 2×2 case:
the output shape (eq. 1 with numbers), every ``z_{x,y}`` expanded (eq. 5),
every ``o_{x,y}`` (eq. 6), ``L`` expanded (eq. 4) and, for **every** kernel
element, ``∂L/∂k_{i,j}`` as the chain-rule sum over the outputs it touches::

    ∂L/∂k_{i,j} = Σ_{x,y} ∂L/∂o_{x,y} · ∂o_{x,y}/∂z_{x,y} · ∂z_{x,y}/∂k_{i,j}
    ∂L/∂o_{x,y} = 2(o_{x,y} − y_{x,y}),   ∂o/∂z = σ(z)(1 − σ(z)),   ∂z_{x,y}/∂k_{i,j} = x_{…}/D

Terms that meet a padded zero are kept, shown to vanish, and dropped.  With
values, every quantity is evaluated and the symbolic gradient is checked
against convprop's autograd (:func:`convprop.seed.forward_backward`).

Notation and the ``(W, H)`` order of every shape are those of :mod:`convprop.seed`.
SymPy is imported here and only here; ``import convprop`` does not load it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from .. import seed
from ..seed import Divisor, Geometry, Pair, sym

MAX_OUTPUTS = 64
"""Largest number of outputs z written out: beyond it the equations stop reading well."""
MAX_KERNEL = 25
"""Largest number of kernel elements (5×5)."""
MAX_INPUTS = 256
TOLERANCE = 1e-12
"""Largest difference allowed between the symbolic and the autograd gradient (float64)."""


def sigmoid(z: sp.Expr) -> sp.Expr:
    """σ(z) = 1/(1 + e^(−z)), eq. 3, as a SymPy expression."""
    return 1 / (1 + sp.exp(-z))


@dataclass(frozen=True)
class Term:
    """One term of the chain-rule sum for ``∂L/∂k_{i,j}``.

    ``source`` is the input cell ``(column, row)`` that ``k_{i,j}`` multiplies in
    ``z_{x,y}``, or None when it is a padded zero, in which case the term vanishes.
    """

    kernel: Pair
    output: Pair
    source: Pair | None
    dl_do: sp.Expr  # 2(o_{x,y} − y_{x,y})
    do_dz: sp.Expr  # σ(z_{x,y})(1 − σ(z_{x,y}))
    dz_dk: sp.Expr  # x_{source}/D, or 0 on padding

    @property
    def vanishes(self) -> bool:
        return self.source is None

    @property
    def expr(self) -> sp.Expr:
        return self.dl_do * self.do_dz * self.dz_dk


@dataclass
class Values:
    """Numbers for one derivation.  Arrays are row-major ``(H, W)``, like the document's matrices.

    ``grad`` is the symbolic gradient evaluated in float64, ``grad_autograd``
    convprop's autograd result, and ``max_difference`` the largest ``|difference|``.
    """

    source: str
    x: np.ndarray
    k: np.ndarray
    y: np.ndarray
    z: np.ndarray
    o: np.ndarray
    loss: float
    terms: np.ndarray  # (K_H, K_W, Z_H, Z_W): every chain-rule term, evaluated
    grad: np.ndarray
    grad_autograd: np.ndarray
    max_difference: float


class Derivation:
    """Sections I–III of the founding document for one geometry, as SymPy expressions.

    Attributes (``(x, y)`` keys are output cells, ``(i, j)`` kernel cells, 1-based,
    column first as in the document):

    * ``X``, ``K``, ``Y``, ``Zs``, ``Os``: SymPy matrices of the symbols
      ``x_{i,j}`` … laid out row-major like the arrays (``X[j-1, i-1]`` is ``x_{i,j}``).
    * ``z[(x, y)]``: eq. 5, ``Σ x·k / D`` in the x and k symbols.
    * ``o[(x, y)]``: ``σ(z_{x,y})`` in the z symbol.
    * ``loss``: ``Σ (o − y)²`` in the o and y symbols.
    * ``terms[(i, j)]``: the :class:`Term` list of the chain rule for ``k_{i,j}``.
    * ``grad[(i, j)]``: ``Σ`` of the non-vanishing terms, in o, y, z and x symbols.
    * :meth:`loss_full`, :meth:`grad_full`: the same in x, k and y only.
    * ``values``: a :class:`Values` when numbers were given, else None.
    """

    def __init__(self, geometry: Geometry) -> None:
        self.geometry = g = geometry
        (w, h), (kw, kh), (zw, zh) = g.input_shape, g.kernel_shape, g.output_shape
        self.X = _symbols("x", w, h)
        self.K = _symbols("k", kw, kh)
        self.Y = _symbols("y", zw, zh)
        self.Zs = _symbols("z", zw, zh)
        self.Os = _symbols("o", zw, zh)
        d = sp.sympify(g.divisor)
        self.z: dict[Pair, sp.Expr] = {}
        self.o: dict[Pair, sp.Expr] = {}
        for (x, y) in g.outputs():
            products = [self.x_(src) * self.k_((i, j))
                        for (i, j) in g.kernel_elements()
                        if (src := g.source(i, j, x, y)) is not None]
            self.z[(x, y)] = sp.Add(*products) / d
            self.o[(x, y)] = sigmoid(self.z_((x, y)))
        self.loss: sp.Expr = sp.Add(*[(self.o_(c) - self.y_(c)) ** 2 for c in g.outputs()])
        self.terms: dict[Pair, list[Term]] = {}
        self.grad: dict[Pair, sp.Expr] = {}
        for (i, j) in g.kernel_elements():
            terms = []
            for (x, y) in g.outputs():
                src = g.source(i, j, x, y)
                s = sigmoid(self.z_((x, y)))
                terms.append(Term((i, j), (x, y), src, 2 * (self.o_((x, y)) - self.y_((x, y))),
                                  s * (1 - s), self.x_(src) / d if src else sp.S.Zero))
            self.terms[(i, j)] = terms
            self.grad[(i, j)] = sp.Add(*[t.expr for t in terms if not t.vanishes])
        self.values: Values | None = None

    # symbol look-ups in the document's (column, row) order
    def x_(self, cell: Pair) -> sp.Symbol:
        return self.X[cell[1] - 1, cell[0] - 1]

    def k_(self, cell: Pair) -> sp.Symbol:
        return self.K[cell[1] - 1, cell[0] - 1]

    def y_(self, cell: Pair) -> sp.Symbol:
        return self.Y[cell[1] - 1, cell[0] - 1]

    def z_(self, cell: Pair) -> sp.Symbol:
        return self.Zs[cell[1] - 1, cell[0] - 1]

    def o_(self, cell: Pair) -> sp.Symbol:
        return self.Os[cell[1] - 1, cell[0] - 1]

    def _full(self, e: sp.Expr) -> sp.Expr:
        o_done = e.xreplace({self.o_(c): self.o[c] for c in self.geometry.outputs()})
        return o_done.xreplace({self.z_(c): self.z[c] for c in self.geometry.outputs()})

    def loss_full(self) -> sp.Expr:
        """``L`` in the x, k and y symbols (o and z substituted)."""
        return self._full(self.loss)

    def grad_full(self, i: int, j: int) -> sp.Expr:
        """``∂L/∂k_{i,j}`` (the chain-rule sum) in the x, k and y symbols."""
        return self._full(self.grad[(i, j)])

    # ------------------------------------------------------------ numbers
    def evaluate(self, x: Any, k: Any, y: Any, source: str = "given") -> Values:
        """Evaluate every quantity from row-major arrays and cross-check with autograd.

        ``z`` from eq. 5, ``o`` from σ, ``L``, and each chain-rule term from its
        SymPy expression (compiled with ``lambdify``, float64), then compared with
        :func:`convprop.seed.forward_backward`.  Sets and returns ``self.values``.
        """
        g = self.geometry
        xa, ka, ya = (np.asarray(a, dtype=np.float64) for a in (x, k, y))
        for name, a, want in (("x", xa, g.input_shape), ("k", ka, g.kernel_shape),
                              ("y", ya, g.output_shape)):
            if a.shape != want[::-1]:
                raise ValueError(f"values: {name} must have shape (H, W) = {want[::-1]} "
                                 f"for this geometry, got {a.shape}")
        outs = g.outputs()
        (kw, kh), (zw, zh) = g.kernel_shape, g.output_shape
        env: dict[sp.Symbol, float] = {}
        env.update(zip(self.X, xa.ravel()))
        env.update(zip(self.K, ka.ravel()))
        env.update(zip(self.Y, ya.ravel()))
        zv = _compile(list(self.X) + list(self.K), [self.z[c] for c in outs])(env)
        env.update({self.z_(c): v for c, v in zip(outs, zv)})
        ov = _compile([self.z_(c) for c in outs], [self.o[c] for c in outs])(env)
        env.update({self.o_(c): v for c, v in zip(outs, ov)})
        term_exprs = [t.expr for kc in g.kernel_elements() for t in self.terms[kc]]
        terms = np.array(_compile(list(env), term_exprs)(env)).reshape(kh, kw, zh, zw)
        loss = _compile(list(env), [self.loss])(env)[0]
        o_arr = np.array(ov).reshape(zh, zw)
        grad = terms.sum(axis=(2, 3))
        p = seed.forward_backward(xa, ka, ya, g.stride, g.padding, g.divisor)
        self.values = Values(source, xa, ka, ya, np.array(zv).reshape(zh, zw), o_arr, loss,
                             terms, grad, p.grad, float(np.abs(grad - p.grad).max()))
        return self.values

    # ----------------------------------------------------------- renderers
    def to_text(self) -> str:
        """Plain text (Unicode ∂, σ, ·); every equation's right side parses with SymPy."""
        from .render import render

        return render(self, "text")

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown with ``$…$`` / ``$$…$$`` math."""
        from .render import render

        return render(self, "markdown")

    def to_latex(self, standalone: bool = True) -> str:
        """LaTeX (amsmath): a complete document, or with ``standalone=False`` its body."""
        from .render import render

        return render(self, "latex", standalone=standalone)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_latex_(self) -> str:
        from .render import equations_latex

        return equations_latex(self)

    def figure(self, path: str | Path) -> None:
        """Write a PNG of what the equations say (see :func:`.figures.explain_figure`)."""
        from .figures import explain_figure

        explain_figure(self, path)

    def __repr__(self) -> str:
        g = self.geometry
        return (f"Derivation(input_shape={g.input_shape}, kernel_shape={g.kernel_shape}, "
                f"stride={g.stride}, padding={g.padding}, divisor={g.divisor})")


def _compile(args: list[sp.Symbol], exprs: list[sp.Expr]) -> Any:
    """``env -> [float(e) for e in exprs]`` in float64, through ``lambdify`` (``math`` module).

    The symbols are renamed to plain identifiers first, in one pass: lambdify would
    otherwise replace names like ``x_{1,1}`` one symbol at a time over every
    expression, which is quadratic.
    """
    plain = {s: sp.Symbol(f"_a{n}") for n, s in enumerate(args)}
    fn = sp.lambdify([list(plain.values())], [e.xreplace(plain) for e in exprs], "math",
                     dummify=False)
    return lambda env: [float(v) for v in fn([float(env[s]) for s in args])]


def _symbols(name: str, w: int, h: int) -> sp.Matrix:
    return sp.Matrix(h, w, lambda r, c: sp.Symbol(sym(name, (c + 1, r + 1)), real=True))


def check_size(geo: Geometry) -> None:
    """Refuse geometries whose derivation would not read well, suggesting smaller ones."""
    (w, h), (kw, kh), (zw, zh) = geo.input_shape, geo.kernel_shape, geo.output_shape
    problems = []
    if zw * zh > MAX_OUTPUTS:
        problems.append(f"{zw}x{zh} = {zw * zh} outputs z (at most {MAX_OUTPUTS})")
    if kw * kh > MAX_KERNEL:
        problems.append(f"{kw}x{kh} = {kw * kh} kernel elements (at most {MAX_KERNEL})")
    if w * h > MAX_INPUTS:
        problems.append(f"{w}x{h} = {w * h} inputs (at most {MAX_INPUTS})")
    if problems:
        raise ValueError(
            f"too large to write out: {' and '.join(problems)}; every equation is printed, so "
            f"try smaller shapes (e.g. --input 5x5 --kernel 3x3) or a larger stride"
        )


def explain(input_shape: int | Sequence[int] = (3, 3), kernel_shape: int | Sequence[int] = (2, 2),
            stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
            divisor: Divisor = "kernel", values: Any = None, seed: int | None = None
            ) -> Derivation:
    """The founding document's derivation for any shape, as SymPy expressions.

    Args:
        input_shape: ``S_X = (X_W, X_H)``, **width first** as in the document
            (an int means square).
        kernel_shape: ``S_K = (K_W, K_H)``.
        stride: ``S`` or ``(S_W, S_H)``.
        padding: zero padding ``P`` or ``(P_W, P_H)`` on both sides of each axis.
        divisor: what eq. 5 divides by: ``"kernel"`` (``K_W·K_H``, the document's
            worked equations; default), ``"stride"`` (``S_W·S_H``) or a number.
        values: None (symbols only); ``"seed"`` (the demo's numbers, 3×3 / 2×2
            only); ``"random"`` (from ``seed``); a path to ``.npz`` or ``.json``
            with arrays ``x``, ``k``, ``y``; or a mapping/tuple of those arrays.
            Arrays are row-major ``(H, W)``.
        seed: random seed for ``values="random"`` (default 0).

    Returns:
        A :class:`Derivation` (``.to_text()``, ``.to_markdown()``, ``.to_latex()``,
        the SymPy expressions, and ``.values`` when numbers were given).

    Raises:
        ValueError: bad shapes, a kernel larger than the padded input, sizes
            beyond :data:`MAX_OUTPUTS`/:data:`MAX_KERNEL`, or unusable values.
    """
    geo = Geometry.create(input_shape, kernel_shape, stride, padding, divisor)
    check_size(geo)
    d = Derivation(geo)
    if values is not None:
        x, k, y, source = load_values(values, geo, seed)
        d.evaluate(x, k, y, source)
    return d


def load_values(values: Any, geo: Geometry, seed_: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``(x, k, y, description)`` from any spelling :func:`explain` accepts."""
    if isinstance(values, str) and values == "seed":
        if (geo.input_shape, geo.kernel_shape, geo.output_shape) != ((3, 3), (2, 2), (2, 2)):
            raise ValueError("values 'seed' are the demo's 3x3 input, 2x2 kernel and 2x2 target; "
                             "use 'random' or a file for other shapes")
        x, k, y = seed.demo_values()
        return x, k, y, "the demo's numbers (convprop.seed.DEFAULT_X, DEFAULT_K, DEFAULT_Y)"
    if isinstance(values, str) and values == "random":
        s = 0 if seed_ is None else seed_
        rng = np.random.default_rng(s)
        (w, h), (kw, kh), (zw, zh) = geo.input_shape, geo.kernel_shape, geo.output_shape
        x = np.round(rng.normal(size=(h, w)), 2)
        k = np.round(rng.normal(scale=0.5, size=(kh, kw)), 2)
        y = np.round(rng.uniform(0.05, 0.95, size=(zh, zw)), 2)
        return x, k, y, f"random (seed {s})"
    if isinstance(values, (str, Path)):
        return (*_read_values(Path(values)), f"file {values}")
    if isinstance(values, Mapping):
        return (*_pick(values, "values"), "given")
    if isinstance(values, (tuple, list)) and len(values) == 3:
        x, k, y = (np.asarray(v, dtype=np.float64) for v in values)
        return x, k, y, "given"
    raise ValueError("values must be 'seed', 'random', a .npz/.json file, or arrays (x, k, y)")


def _pick(m: Mapping, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [n for n in ("x", "k", "y") if n not in m]
    if missing:
        raise ValueError(f"{where} needs arrays x, k and y; missing {', '.join(missing)}")
    return tuple(np.asarray(m[n], dtype=np.float64) for n in ("x", "k", "y"))  # type: ignore


def _read_values(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not path.is_file():
        raise ValueError(f"values file {str(path)!r} not found (expected 'seed', 'random' or a "
                         f".npz/.json file with arrays x, k, y)")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return _pick(dict(data), f"values file {path}")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"values file {path}: invalid JSON ({e.msg}, line {e.lineno})") from None
        if not isinstance(data, dict):
            raise ValueError(f"values file {path}: expected an object with keys x, k, y")
        return _pick(data, f"values file {path}")
    raise ValueError(f"values file {path}: expected a .npz or .json file")


# ------------------------------------------------------------------- CLI
FORMATS = ("text", "markdown", "latex")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``convprop explain`` options.  Shapes are WxH: width first, as S_X = (X_W, X_H)."""
    from .._args import divisor_arg, pair_arg, shape_arg

    parser.add_argument("--input", type=shape_arg, default=(3, 3), metavar="WxH",
                        help="input shape S_X = (X_W, X_H), width x height (default 3x3)")
    parser.add_argument("--kernel", type=shape_arg, default=(2, 2), metavar="WxH",
                        help="kernel shape S_K = (K_W, K_H), width x height (default 2x2)")
    parser.add_argument("--stride", type=shape_arg, default=(1, 1), metavar="S|WxH",
                        help="stride S, or S_W x S_H (default 1)")
    parser.add_argument("--padding", type=pair_arg, default=(0, 0), metavar="P|WxH",
                        help="zero padding P on every side, or P_W x P_H (default 0)")
    parser.add_argument("--divisor", type=divisor_arg, default="kernel", metavar="kernel|stride|N",
                        help="what eq. 5 divides by: 'kernel' (K_W*K_H, the document's worked "
                             "equations; default), 'stride' (S_W*S_H, eq. 5 as printed) or a "
                             "number (1 = standard convolution)")
    parser.add_argument("--format", choices=(*FORMATS, "html"), default="text",
                        help="text (default), markdown (GitHub math), latex (a full document) or "
                             "html (an interactive offline page; needs --output FILE.html)")
    parser.add_argument("--values", default=None, metavar="seed|random|FILE",
                        help="evaluate everything with numbers: the demo's ('seed'), random ones, "
                             "or a .npz/.json file with row-major arrays x, k, y; the symbolic "
                             "gradient is then checked against convprop's autograd")
    parser.add_argument("--seed", type=int, default=None, help="seed for --values random")
    parser.add_argument("--output", metavar="FILE", default=None,
                        help="write the derivation to FILE instead of stdout")
    parser.add_argument("--figure", metavar="FILE", default=None,
                        help="also draw the kernel footprints and gradient cells as a PNG")
    parser.add_argument("--animate", metavar="FILE.gif", default=None,
                        help="also write a GIF: the window sliding forward, each dL/dk adding up "
                             "its terms")


def run(args: argparse.Namespace) -> int:
    """``convprop explain``: print (or write) the derivation; exit 1 if the cross-check fails."""
    from .page import check_output  # output paths are refused before any work

    if args.format == "html" and not args.output:
        raise ValueError("--format html writes a page: give --output FILE.html")
    check_output(args.output, "--output", (".html", ".htm") if args.format == "html" else ())
    check_output(args.animate, "--animate", (".gif",))
    d = explain(args.input, args.kernel, args.stride, args.padding, args.divisor,
                values=args.values, seed=args.seed)
    if args.format == "text":
        out = d.to_text()
    elif args.format == "markdown":
        out = d.to_markdown()
    elif args.format == "html":
        from .page import html_page

        out = html_page(d)
    else:
        out = d.to_latex(standalone=True)
    if args.output:
        Path(args.output).write_text(out + "\n", encoding="utf-8")
        print(f"wrote {args.format} derivation to {args.output}")
    else:
        print(out)
    if args.figure:
        d.figure(args.figure)
        print(f"wrote figure to {args.figure}")
    if args.animate:
        from .animate import write_gif

        write_gif(d, args.animate)
        print(f"wrote animation to {args.animate}")
    if d.values is not None and not d.values.max_difference <= TOLERANCE:
        print(f"convprop: symbolic and autograd gradients differ by {d.values.max_difference:.3g}",
              file=sys.stderr)
        return 1
    return 0

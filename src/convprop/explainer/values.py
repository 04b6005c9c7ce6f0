"""Numbers for a derivation: loading values, evaluating SymPy trees, and the autograd cross-check.

:func:`load_values` reads every spelling ``explain(values=…)`` accepts; :func:`compile_exprs`
evaluates SymPy expressions in float64; :func:`autograd_gradients` runs the same pipeline
on convprop's autograd engine (``convprop.functional`` conv, transposed conv or pooling,
then σ and the squared loss) for the check.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from .. import seed
from .layout import Cell, Layout


def sym(name: str, cell: Sequence[int]) -> str:
    """``x_{i,j}``, ``k_{o,c,i,j}``, ``x_{i}``: the document's notation for any number of indices."""
    return f"{name}_{{{','.join(str(c) for c in cell)}}}"


@dataclass
class Values:
    """Numbers for one derivation, in the shown layout (see :meth:`.layout.Layout.shown_shape`).

    For one channel in 2-D, arrays are row-major ``(H, W)`` like the document's matrices;
    with channels ``(C, H, W)`` and weights ``(A, B, K_H, K_W)`` as in PyTorch; in 1-D the
    row axis is left out.  ``terms`` holds every ``∂L/∂k`` chain-rule term at
    ``[kernel index + output index]`` (0 where they do not meet), ``grad`` is the symbolic
    ``∂L/∂K`` evaluated in float64, ``grad_autograd`` convprop's autograd result, the
    same for ``grad_x`` (``∂L/∂X``) and ``grad_b`` (``∂L/∂b``, with a bias), and
    ``max_difference`` the largest ``|difference|`` over all of them.  Pooling has no
    ``k``, ``terms`` or ``grad`` (None); ``winners`` maps each max-pooling output to the
    input cell it picked.
    """

    source: str
    x: np.ndarray
    k: np.ndarray | None
    y: np.ndarray
    z: np.ndarray
    o: np.ndarray
    loss: float
    terms: np.ndarray | None
    grad: np.ndarray | None
    grad_autograd: np.ndarray | None
    max_difference: float
    grad_x: np.ndarray | None = None
    grad_x_autograd: np.ndarray | None = None
    b: np.ndarray | None = None
    grad_b: np.ndarray | None = None
    grad_b_autograd: np.ndarray | None = None
    winners: dict[Cell, Cell] | None = None
    number: dict[sp.Symbol, float] | None = None  # every symbol's value (x, k, b, y, z, o)

    def at(self, name: str, cell: Cell) -> float:
        """The value of ``name_{cell}`` (``x``, ``k``, ``b``, ``y``, ``z``, ``o``) for a shown cell."""
        return float(self.number[sp.Symbol(sym(name, cell), real=True)])


def autograd_gradients(L: Layout, full: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """convprop's autograd on the same numbers: the gradients of ``L`` for x, k and b (full layout)."""
    from .. import functional as F
    from ..autograd import Tensor

    def spatial(a: np.ndarray) -> np.ndarray:  # 1-D: drop the height-1 row axis
        return a[..., 0, :] if L.nd == 1 else a

    def pick(p: tuple[int, int]) -> Any:
        return p[0] if L.nd == 1 else p[::-1]

    X = Tensor(spatial(full["x"])[None], requires_grad=True, dtype=np.float64)
    Y = Tensor(spatial(full["y"])[None], dtype=np.float64)
    st, pad, dil = pick(L.stride), pick(L.padding), pick(L.dilation)
    nd = L.nd
    n = nd - 1  # conv1d, conv2d or conv3d, …
    out = {}
    if L.op == "maxpool":
        Z = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[n](X, pick(L.kernel_shape), st, pad, dil)
    elif L.op == "avgpool":
        Z = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[n](X, pick(L.kernel_shape), st, pad)
    else:
        K = Tensor(spatial(full["k"]), requires_grad=True, dtype=np.float64)
        if L.transposed:
            conv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n]
            Z = conv(X, K, None, st, pad, pick(L.output_padding), L.groups, dil)
        else:
            Z = (F.conv1d, F.conv2d, F.conv3d)[n](X, K, None, st, pad, dil, L.groups)
        Z = Z / L.divisor
        if L.bias:
            B = Tensor(full["b"], requires_grad=True, dtype=np.float64)
            Z = Z + B.reshape((1, L.out_channels) + (1,) * nd)
    O = Z.sigmoid()
    loss = ((O - Y) ** 2).sum()
    loss.backward()
    out["x"] = X.grad[0].reshape(L.array_shape("x"))
    if not L.pooling:
        out["k"] = K.grad.reshape(L.array_shape("k"))
    if L.bias:
        out["b"] = B.grad
    return out


def compile_exprs(args: list[sp.Symbol], exprs: list[sp.Expr]) -> Any:
    """``env -> [float(e) for e in exprs]``: each SymPy expression evaluated in float64.

    The expression trees (sums, products, powers, ``exp``, ``Max``, symbols and numbers)
    are walked directly, each distinct subexpression once: lambdify would print every
    expression to Python source first, which for a few hundred terms costs seconds.
    ``args`` names the symbols ``env`` must provide.
    """
    def run(env: Mapping[sp.Symbol, float]) -> list[float]:
        memo: dict[sp.Basic, float] = {s_: float(env[s_]) for s_ in args}
        return [_evaluate(sp.sympify(e), memo) for e in exprs]

    return run


def _evaluate(e: sp.Basic, memo: dict[sp.Basic, float]) -> float:
    """``e`` in float64; ``memo`` holds the symbols' values and every subexpression done so far."""
    if e in memo:
        return memo[e]
    if e.is_Number:
        v = float(e)
    elif isinstance(e, sp.Add):
        v = math.fsum(_evaluate(a, memo) for a in e.args)
    elif isinstance(e, sp.Mul):
        v = math.prod(_evaluate(a, memo) for a in e.args)
    elif isinstance(e, sp.Pow):
        v = _evaluate(e.base, memo) ** _evaluate(e.exp, memo)
    elif isinstance(e, sp.exp):
        v = math.exp(_evaluate(e.args[0], memo))
    elif isinstance(e, sp.Max):
        v = max(_evaluate(a, memo) for a in e.args)
    else:
        raise TypeError(f"cannot evaluate {e!r} numerically (a symbol without a value?)")
    memo[e] = v
    return v


def load_values(values: Any, layout: Layout, seed_: int | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None, str]:
    """``(x, k, y, b, description)`` from any spelling :func:`explain` accepts (k/b None if unused)."""
    L = layout
    if isinstance(values, str) and values == "seed":
        if (L.op, L.nd, L.multichannel, L.input_shape, L.kernel_shape, L.output_shape) != (
                "conv", 2, False, (3, 3), (2, 2), (2, 2)):
            raise ValueError("values 'seed' are the demo's 3x3 input, 2x2 kernel and 2x2 target; "
                             "use 'random' or a file for other shapes")
        x, k, y = seed.demo_values()
        return x, k, y, None, "the demo's numbers (convprop.seed.DEFAULT_X, DEFAULT_K, DEFAULT_Y)"
    if isinstance(values, str) and values == "random":
        s = 0 if seed_ is None else seed_
        rng = np.random.default_rng(s)
        x = np.round(rng.normal(size=L.shown_shape("x")), 2)
        k = None if L.pooling else np.round(rng.normal(scale=0.5, size=L.shown_shape("k")), 2)
        y = np.round(rng.uniform(0.05, 0.95, size=L.shown_shape("z")), 2)
        b = np.round(rng.normal(scale=0.5, size=L.out_channels), 2) if L.bias else None
        return x, k, y, b, f"random (seed {s})"
    names = _names(L)
    if isinstance(values, (str, Path)):
        return (*_read_values(Path(values), names), f"file {values}")
    if isinstance(values, Mapping):
        return (*_pick(values, "values", names), "given")
    if isinstance(values, (tuple, list)) and len(values) in (3, 4):
        x, k, y, *b = (None if v is None else np.asarray(v, dtype=np.float64) for v in values)
        return x, k, y, (b[0] if b else None), "given"
    raise ValueError("values must be 'seed', 'random', a .npz/.json file, or arrays (x, k, y)")


def _names(L: Layout) -> tuple[str, ...]:
    return ("x", *(() if L.pooling else ("k",)), "y", *(("b",) if L.bias else ()))


def _pick(m: Mapping, where: str, names: Sequence[str] = ("x", "k", "y")) -> tuple[Any, ...]:
    """``(x, k, y, b)`` from a mapping holding ``names`` (k and b None when not needed)."""
    missing = [n for n in names if n not in m]
    if missing:
        raise ValueError(f"{where} needs arrays {', '.join(names)}; missing {', '.join(missing)}")
    return tuple(np.asarray(m[n], dtype=np.float64) if n in names else None
                 for n in ("x", "k", "y", "b"))


def _read_values(path: Path, names: Sequence[str]) -> tuple[Any, ...]:
    if not path.is_file():
        raise ValueError(f"values file {str(path)!r} not found (expected 'seed', 'random' or a "
                         f".npz/.json file with arrays x, k, y)")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return _pick(dict(data), f"values file {path}", names)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"values file {path}: invalid JSON ({e.msg}, line {e.lineno})") from None
        if not isinstance(data, dict):
            raise ValueError(f"values file {path}: expected an object with keys x, k, y")
        return _pick(data, f"values file {path}", names)
    raise ValueError(f"values file {path}: expected a .npz or .json file")

"""The founding document's pipeline, exactly (``convprop.seed``); ``convprop demo`` prints it.

The document (``shared/seed/convolutions.md``) derives, for one unbatched input::

    Z = conv(X, K) / D            eq. (5), D the divisor
    O = σ(Z)                      eq. (3), (6)
    L = Σ_x Σ_y (o_{x,y} − y_{x,y})²          eq. (4)
    ∂L/∂K = ∂L/∂O · ∂O/∂Z · ∂Z/∂K             section III
    K ← K − lr · ∂L/∂K,  repeated until the loss stops falling.

Notation (the document's, kept in everything this module prints):

* ``x_{i,j}`` is column ``i`` (width) and row ``j`` (height), counted from 1, and
  ``S_X = (X_W, X_H)``.  The arrays themselves are ordinary row-major NumPy
  arrays of shape ``(H, W)``: ``x_{i,j} == X[j - 1, i - 1]``.  Every *pair* this
  module accepts (shapes, stride, padding) is in the document's ``(W, H)`` order.
* With stride ``S = (S_W, S_H)`` and zero padding ``P = (P_W, P_H)``::

      z_{x,y} = Σ_{i=1}^{K_W} Σ_{j=1}^{K_H} x_{(x−1)S_W + i − P_W, (y−1)S_H + j − P_H} k_{i,j} / D

  which for ``S = 1, P = 0`` is ``x_{x+i−1, y+j−1}``: the document's
  ``x_{i+x, j+y}`` is off by one.  Cells outside the input are padded zeros.
* ``D`` (``divisor``): ``"kernel"`` = ``K_W·K_H`` (what the worked equations of
  section II do, /4 for a 2×2 kernel; the default), ``"stride"`` = ``S_W·S_H``
  (eq. 5 read literally), or a number (1 = the standard convolution).
* Gradients carry the ``1/D``: ``∂z_{x,y}/∂k_{i,j} = x_{…}/D``.  The document
  writes ``∂z_{1,1}/∂k_{1,1} = x_{1,1}``, dropping the ``1/4`` of its own eq. 5.

The forward and backward run on convprop's autograd engine (``F.conv2d``,
``Tensor.sigmoid``, ``.backward()``); :func:`chain_rule` recomputes the gradient
as the document's sum, term by term, so the two can be compared.  Window
positions come from :mod:`convprop._windows`, as everywhere else.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from . import functional as F
from ._windows import ntuple, output_size, pad_constant, windows
from .autograd import Tensor

Pair = tuple[int, int]
Divisor = str | float | int

# The demo's documented numbers.  Arrays are row-major (H, W): X[j-1, i-1] = x_{i,j}.
DEFAULT_X = np.array([[2.0, 1.0, 0.0],
                      [0.0, 1.0, 3.0],
                      [1.0, 2.0, 1.0]])
"""Input X of the demo: x_{1,1} = 2, x_{2,1} = 1, x_{3,1} = 0, x_{1,2} = 0, … ."""
DEFAULT_K = np.array([[0.5, -0.5],
                      [0.25, 1.0]])
"""Initial kernel K: k_{1,1} = 0.5, k_{2,1} = −0.5, k_{1,2} = 0.25, k_{2,2} = 1."""
DEFAULT_Y = np.array([[0.9, 0.2],
                      [0.1, 0.8]])
"""Target Y: y_{1,1} = 0.9, y_{2,1} = 0.2, y_{1,2} = 0.1, y_{2,2} = 0.8."""
DEFAULT_LR = 4.0
"""Learning rate of the demo: the loss falls at every one of the default steps."""
DEFAULT_STEPS = 20


# ---------------------------------------------------------------- arguments
def as_pair(value: int | Sequence[int], name: str, minimum: int = 1) -> Pair:
    """An int (used for both dimensions) or a ``(W, H)`` pair, each entry >= ``minimum``."""
    pair = ntuple(value, 2, name)
    if any(v < minimum for v in pair):
        raise ValueError(f"{name} must be >= {minimum} in both dimensions, got {value!r}")
    return pair[0], pair[1]


def resolve_divisor(divisor: Divisor, kernel_shape: Pair, stride: Pair) -> int | float:
    """The number ``D`` that eq. 5 divides by.

    ``"kernel"`` → ``K_W·K_H``; ``"stride"`` → ``S_W·S_H``; a positive number (or
    its string spelling) → itself.  Integral values come back as ``int``.
    """
    if isinstance(divisor, str):
        if divisor == "kernel":
            return kernel_shape[0] * kernel_shape[1]
        if divisor == "stride":
            return stride[0] * stride[1]
        try:
            divisor = float(divisor)
        except ValueError:
            raise ValueError(
                f"divisor must be 'kernel', 'stride' or a positive number, got {divisor!r}"
            ) from None
    if isinstance(divisor, bool) or not isinstance(divisor, numbers.Real):
        raise TypeError(f"divisor must be 'kernel', 'stride' or a number, got {divisor!r}")
    d = float(divisor)
    if not (math.isfinite(d) and d > 0):
        raise ValueError(f"divisor must be a positive finite number, got {divisor!r}")
    return int(d) if d.is_integer() else d


def divisor_rule(divisor: Divisor) -> str:
    """How ``D`` was chosen, in words: ``'K_W·K_H'``, ``'S_W·S_H'`` or ``'given'``."""
    return {"kernel": "K_W·K_H", "stride": "S_W·S_H"}.get(divisor, "given") \
        if isinstance(divisor, str) else "given"


# ----------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Geometry:
    """Where every kernel element meets the input, in the document's ``(W, H)`` notation.

    Build with :meth:`create`.  ``output_shape`` is eq. 1 per dimension,
    ``Z_S = floor((X_S − K_S + 2P) / S) + 1`` (via :func:`convprop.output_size`); with
    dilation ``d`` the kernel's footprint spans the guide's effective size
    ``K_S + (K_S − 1)(d − 1)`` and that replaces ``K_S`` in eq. 1.
    """

    input_shape: Pair
    kernel_shape: Pair
    stride: Pair
    padding: Pair
    divisor: int | float
    divisor_rule: str
    dilation: Pair = (1, 1)

    @classmethod
    def create(cls, input_shape: int | Sequence[int], kernel_shape: int | Sequence[int],
               stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
               divisor: Divisor = "kernel", dilation: int | Sequence[int] = 1) -> Geometry:
        """Validate and normalise; every pair is ``(W, H)``, an int means both."""
        inp = as_pair(input_shape, "input_shape")
        ker = as_pair(kernel_shape, "kernel_shape")
        st = as_pair(stride, "stride")
        pad = as_pair(padding, "padding", minimum=0)
        dil = as_pair(dilation, "dilation")
        for n, axis in ((0, "W"), (1, "H")):
            span = ker[n] + (ker[n] - 1) * (dil[n] - 1)
            if span > inp[n] + 2 * pad[n]:
                size = f"K_{axis} = {ker[n]}" if dil[n] == 1 else \
                    f"K_{axis} + (K_{axis} - 1)(d_{axis} - 1) = {span}"
                raise ValueError(
                    f"the kernel does not fit: {size} > X_{axis} + 2P_{axis} = "
                    f"{inp[n]} + 2·{pad[n]} (S_K = {ker}, S_X = {inp}, P = {pad})")
        return cls(inp, ker, st, pad, resolve_divisor(divisor, ker, st), divisor_rule(divisor),
                   dil)

    @cached_property
    def output_shape(self) -> Pair:
        """``S_Z = (Z_W, Z_H)`` by eq. 1."""
        oh, ow = output_size(self.input_shape[::-1], self.kernel_shape[::-1],
                             self.stride[::-1], self.padding[::-1], self.dilation[::-1])
        return ow, oh

    @property
    def pads(self) -> tuple[Pair, Pair]:
        """Padding as ``_windows`` wants it: ``((P_H, P_H), (P_W, P_W))`` for ``(H, W)`` arrays."""
        return (self.padding[1], self.padding[1]), (self.padding[0], self.padding[0])

    def windows(self, x: np.ndarray) -> np.ndarray:
        """Every window of the zero-padded ``x`` ``(H, W)``: shape ``(K_H, K_W, Z_H, Z_W)``.

        Element ``[j-1, i-1, y-1, x-1]`` is the input value that ``k_{i,j}`` multiplies
        in ``z_{x,y}`` (0 where that cell is padding).
        """
        xp = pad_constant(np.asarray(x)[None, None], self.pads)
        return windows(xp, self.kernel_shape[::-1], self.stride[::-1], self.dilation[::-1],
                       self.output_shape[::-1])[0, 0]

    @cached_property
    def _flat_sources(self) -> np.ndarray:
        w, h = self.input_shape
        index = np.arange(w * h, dtype=np.int64).reshape(1, 1, h, w)
        padded = pad_constant(index, self.pads, value=-1)
        return np.array(windows(padded, self.kernel_shape[::-1], self.stride[::-1],
                                self.dilation[::-1], self.output_shape[::-1])[0, 0])

    def source(self, i: int, j: int, x: int, y: int) -> Pair | None:
        """The input cell ``(column, row)`` that ``k_{i,j}`` meets in ``z_{x,y}``, None for padding."""
        flat = int(self._flat_sources[j - 1, i - 1, y - 1, x - 1])
        if flat < 0:
            return None
        width = self.input_shape[0]
        return flat % width + 1, flat // width + 1

    def outputs(self) -> list[Pair]:
        """Every ``(x, y)`` of Z in the document's order: ``z_{1,1}, z_{2,1}, …`` (x fastest)."""
        return _cells(self.output_shape)

    def kernel_elements(self) -> list[Pair]:
        """Every ``(i, j)`` of K, ``k_{1,1}, k_{2,1}, …``."""
        return _cells(self.kernel_shape)

    def inputs(self) -> list[Pair]:
        return _cells(self.input_shape)

    def touched_inputs(self) -> set[Pair]:
        """Input cells that enter at least one ``z`` (a stride > kernel skips some)."""
        src = self._flat_sources[self._flat_sources >= 0]
        w = self.input_shape[0]
        return {(int(f) % w + 1, int(f) // w + 1) for f in np.unique(src)}


def _cells(shape: Pair) -> list[Pair]:
    return [(a, b) for b in range(1, shape[1] + 1) for a in range(1, shape[0] + 1)]


# ------------------------------------------------------------- the pipeline
@dataclass
class Pass:
    """One forward and backward pass.  Arrays are row-major ``(H, W)``.

    ``dl_do`` and ``dl_dz`` are the gradients the autograd engine computed for
    ``O`` and ``Z`` (kept with ``retain_grad``); ``grad`` is ``∂L/∂K``.
    """

    geometry: Geometry
    x: np.ndarray
    k: np.ndarray
    y: np.ndarray
    z: np.ndarray
    o: np.ndarray
    loss: float
    grad: np.ndarray
    dl_do: np.ndarray
    dl_dz: np.ndarray


def _matrix(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, columns), got shape {arr.shape}")
    return arr


def forward_backward(x: Any, k: Any, y: Any, stride: int | Sequence[int] = 1,
                     padding: int | Sequence[int] = 0, divisor: Divisor = "kernel",
                     dilation: int | Sequence[int] = 1) -> Pass:
    """Run the document's pipeline once on the autograd engine, in float64.

    Args:
        x: input, ``(X_H, X_W)``.
        k: kernel, ``(K_H, K_W)``.
        y: target, ``(Z_H, Z_W)`` (the output shape, eq. 1).
        stride, padding: int or ``(W, H)`` pair; padding is zeros on both sides.
        dilation: spacing of the kernel taps, int or ``(W, H)`` (1 = none).
        divisor: ``"kernel"``, ``"stride"`` or a number (see the module docstring).

    Returns:
        A :class:`Pass` with ``Z = conv(X, K)/D``, ``O = σ(Z)``, ``L = Σ(o − y)²``
        and ``∂L/∂K``, all computed by :func:`convprop.functional.conv2d` and backward().
    """
    xa, ka, ya = _matrix(x, "x"), _matrix(k, "k"), _matrix(y, "y")
    geo = Geometry.create(xa.shape[::-1], ka.shape[::-1], stride, padding, divisor, dilation)
    if ya.shape != geo.output_shape[::-1]:
        raise ValueError(
            f"y must have the output's shape (Z_H, Z_W) = {geo.output_shape[::-1]}, got {ya.shape}"
        )
    X = Tensor(xa[None, None], dtype=np.float64)
    K = Tensor(ka[None, None], requires_grad=True, dtype=np.float64)
    Y = Tensor(ya, dtype=np.float64)
    Z = F.conv2d(X, K, stride=geo.stride[::-1], padding=geo.padding[::-1],
                 dilation=geo.dilation[::-1])[0, 0] / geo.divisor
    O = Z.sigmoid()
    Z.retain_grad()
    O.retain_grad()
    L = ((O - Y) ** 2).sum()
    L.backward()
    return Pass(geo, xa, ka, ya, Z.data.copy(), O.data.copy(), float(L.item()),
                K.grad[0, 0].copy(), O.grad.copy(), Z.grad.copy())


@dataclass
class ChainRule:
    """Section III's sum, term by term, from the values of one :class:`Pass`.

    ``terms[j-1, i-1, y-1, x-1] = ∂L/∂o_{x,y} · ∂o_{x,y}/∂z_{x,y} · ∂z_{x,y}/∂k_{i,j}``,
    shape ``(K_H, K_W, Z_H, Z_W)``, and ``grad = terms.sum((2, 3))``.
    """

    dl_do: np.ndarray  # 2(o − y), (Z_H, Z_W)
    do_dz: np.ndarray  # σ(z)(1 − σ(z)) = o(1 − o)
    dz_dk: np.ndarray  # x/D for every (kernel element, output), (K_H, K_W, Z_H, Z_W)
    terms: np.ndarray
    grad: np.ndarray


def chain_rule(p: Pass) -> ChainRule:
    """The document's chain rule, written out with NumPy (no autograd)."""
    dl_do = 2 * (p.o - p.y)
    do_dz = p.o * (1 - p.o)
    dz_dk = p.geometry.windows(p.x) / p.geometry.divisor
    terms = dl_do * do_dz * dz_dk
    return ChainRule(dl_do, do_dz, dz_dk, terms, terms.sum(axis=(2, 3)))


@dataclass
class History:
    """A training run: ``losses[t]`` and ``kernels[t]`` after ``t`` updates (``t = 0`` is the start)."""

    first: Pass
    lr: float
    losses: list[float] = field(default_factory=list)
    kernels: list[np.ndarray] = field(default_factory=list)
    stopped: str | None = None  # why training ended before ``steps``, if it did

    @property
    def steps(self) -> int:
        return len(self.losses) - 1


def train(x: Any, k: Any, y: Any, lr: float = DEFAULT_LR, steps: int = DEFAULT_STEPS,
          stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
          divisor: Divisor = "kernel", progress: bool = False) -> History:
    """Gradient descent on K, ``K ← K − lr·∂L/∂K``, for at most ``steps`` updates.

    Training stops early, as the document says, when the loss stops falling: an
    update that would not lower the loss is not applied, and ``History.stopped``
    says so.  With ``progress`` a tqdm bar is written to stderr (only on a terminal).
    """
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    p = forward_backward(x, k, y, stride, padding, divisor)
    hist = History(p, float(lr), [p.loss], [p.k])
    for step in _progress(range(1, steps + 1), progress):
        q = forward_backward(p.x, p.k - lr * p.grad, p.y, stride, padding, divisor)
        if not q.loss < p.loss:
            hist.stopped = (f"the loss stopped falling: step {step} would give L = "
                            f"{fmt(q.loss)} ≥ {fmt(p.loss)}")
            break
        p = q
        hist.losses.append(p.loss)
        hist.kernels.append(p.k)
    return hist


def _progress(it: Iterable[int], enabled: bool) -> Iterable[int]:
    if not enabled:
        return it
    from tqdm import tqdm  # optional extra: only the CLI's progress bar needs it

    return tqdm(it, desc="training", unit="step", file=sys.stderr, disable=None, leave=False)


# ------------------------------------------------------------ demo numbers
def demo_values(seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, K, Y)`` of the demo: the documented defaults, or random ones for ``seed``.

    Random values are short decimals so that the printed equations stay readable:
    X integers in [−3, 3], K in [−1, 1] and Y in [0.05, 0.95], two decimals.
    """
    if seed is None:
        return DEFAULT_X.copy(), DEFAULT_K.copy(), DEFAULT_Y.copy()
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=DEFAULT_X.shape).astype(np.float64)
    k = np.round(rng.uniform(-1, 1, size=DEFAULT_K.shape), 2)
    y = np.round(rng.uniform(0.05, 0.95, size=DEFAULT_Y.shape), 2)
    return x, k, y


# ---------------------------------------------------------------- notation
def fmt(v: float, digits: int = 6) -> str:
    """A number as a person writes it: ``2``, ``0.375``, ``-0.0741948``."""
    v = float(v)
    if v == 0:
        return "0"
    s = f"{v:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        return f"{mant}e{int(exp)}"
    return s


def sym(name: str, cell: Pair) -> str:
    """``x_{i,j}`` in the document's notation."""
    return f"{name}_{{{cell[0]},{cell[1]}}}"

"""Activations as functions: the element-wise family, the learnable and random
leaky ReLUs, GLU and the stable softmax family.

Each element-wise op computes its output and, beside it, the local derivative
``dy/dx`` that its backward multiplies into the upstream gradient.  At a kink
the derivative is the one PyTorch uses (said on each function), so gradients
agree with ``torch`` everywhere, not only almost everywhere.

``inplace=`` is accepted wherever PyTorch has it and changes nothing:
convprop always computes out of place (an overwritten input could still be
needed by another op's backward).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..autograd import Tensor, as_tensor, cat

try:  # SciPy's erf is vectorised; math.erf is exact but per element
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - SciPy is an optional extra
    _erf = np.vectorize(math.erf, otypes=[np.float64])

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_ONE_SIXTH_F32 = float(np.float32(1.0) / np.float32(6.0))


def _pointwise(x: Tensor, out: np.ndarray, slope: Callable[[], np.ndarray],
               slope_graph: Callable[[], Tensor] | None = None) -> Tensor:
    """Wrap an element-wise op: ``slope()`` gives ``dy/dx`` and is only evaluated
    by the backward (inference never pays for it).  ``slope_graph()`` is the same
    derivative written with Tensor ops of ``x``, for higher-order gradients
    (``create_graph=True``); :func:`_constant` serves a piecewise-constant slope."""
    out = np.asarray(out).astype(x.dtype, copy=False)
    double = None if slope_graph is None else lambda g: (g * slope_graph(),)
    return Tensor._wrap(out, (x,), lambda g: (g * slope(),), double)


def _constant(slope: Callable[[], np.ndarray]) -> Callable[[], Tensor]:
    """A slope that is constant where it is defined: its own derivative is 0."""
    return lambda: Tensor._wrap(np.asarray(slope()))


def _normal_cdf(x: Tensor) -> Tensor:
    """Φ(x) as an op of its own (no erf among the Tensor ops); Φ' is the normal density."""
    a = x.data

    def density(t: Tensor) -> Tensor:
        return (t * t * -0.5).exp() * _INV_SQRT_2PI

    return Tensor._wrap(0.5 * (1 + _erf(a / math.sqrt(2.0))), (x,),
                        lambda g: (g * _INV_SQRT_2PI * np.exp(-0.5 * a * a),),
                        lambda g: (g * density(x),))


def _stable_sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(z: np.ndarray) -> np.ndarray:
    """``log(1 + e^z)`` without overflow."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def sigmoid(input: Any) -> Tensor:
    """σ(z) = 1 / (1 + e^(−z)), the founding document's eq. (3); stable for any |z|."""
    return as_tensor(input).sigmoid()


def tanh(input: Any) -> Tensor:
    return as_tensor(input).tanh()


def relu(input: Any, inplace: bool = False) -> Tensor:
    """max(z, 0); the gradient at 0 is 0, as in PyTorch."""
    return as_tensor(input).relu()


def exp(input: Any) -> Tensor:
    return as_tensor(input).exp()


def log(input: Any) -> Tensor:
    return as_tensor(input).log()


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` where ``x > 0``, else ``negative_slope * x``; at 0 the slope is
    ``negative_slope``, as in PyTorch."""
    x = as_tensor(input)
    a = x.data
    slope = np.where(a > 0, 1.0, negative_slope).astype(a.dtype, copy=False)
    return Tensor._wrap(a * slope, (x,), lambda g: (g * slope,),
                        lambda g: (g * Tensor._wrap(slope),))


# ----------------------------------------------------------- the ELU family
def _elu(x: Tensor, alpha: float, scale: float, input_scale: float) -> Tensor:
    """``scale * x`` for ``x > 0``, else ``scale * alpha * (exp(input_scale * x) - 1)``;
    the derivative at 0 is the left one, ``scale * alpha * input_scale`` (PyTorch's)."""
    a = x.data
    neg = a <= 0
    e = np.exp(np.where(neg, a * input_scale, 0))
    out = np.where(neg, scale * alpha * (e - 1), scale * a)
    return _pointwise(x, out, lambda: np.where(neg, scale * alpha * input_scale * e, scale),
                      lambda: ((x.where(neg, 0.0) * input_scale).exp()
                               * (scale * alpha * input_scale)).where(neg, scale))


def elu(input: Any, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` for ``x > 0``, else ``alpha * (e^x - 1)``."""
    return _elu(as_tensor(input), alpha, 1.0, 1.0)


def celu(input: Any, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (e^(x / alpha) - 1))``; ``alpha`` must not be 0."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (the exponent divides by it)")
    return _elu(as_tensor(input), alpha, 1.0, 1.0 / alpha)


def selu(input: Any, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalising constants
    ``alpha ≈ 1.6733``, ``scale ≈ 1.0507``."""
    return _elu(as_tensor(input), _SELU_ALPHA, _SELU_SCALE, 1.0)


# ------------------------------------------------------ smooth activations
def gelu(input: Any, approximate: str = "none") -> Tensor:
    """``x * Φ(x)`` with Φ the standard normal CDF (``approximate='none'``), or the
    tanh approximation ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`` (``'tanh'``).

    Derivatives: ``Φ(x) + x φ(x)``; for ``'tanh'``, with ``t`` the tanh,
    ``0.5 (1 + t) + 0.5 x (1 - t²) √(2/π) (1 + 3 · 0.044715 x²)``.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x = as_tensor(input)
    a = x.data
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a**3))

        def tanh_slope() -> Tensor:
            tt = ((x + x**3 * 0.044715) * _SQRT_2_OVER_PI).tanh()
            return (0.5 * (1 + tt) + 0.5 * x * (1 - tt * tt) * _SQRT_2_OVER_PI
                    * (1 + 3 * 0.044715 * x * x))

        return _pointwise(x, 0.5 * a * (1 + t), lambda: 0.5 * (1 + t) + 0.5 * a * (1 - t * t)
                          * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a), tanh_slope)
    cdf = 0.5 * (1 + _erf(a / math.sqrt(2.0)))
    return _pointwise(x, a * cdf, lambda: cdf + a * _INV_SQRT_2PI * np.exp(-0.5 * a * a),
                      lambda: _normal_cdf(x) + x * _INV_SQRT_2PI * (x * x * -0.5).exp())


def silu(input: Any, inplace: bool = False) -> Tensor:
    """``x * σ(x)`` (swish); derivative ``σ(x) (1 + x (1 - σ(x)))``."""
    x = as_tensor(input)
    s = _stable_sigmoid(x.data)

    def slope_graph() -> Tensor:
        st = x.sigmoid()
        return st * (1 + x * (1 - st))

    return _pointwise(x, x.data * s, lambda: s * (1 + x.data * (1 - s)), slope_graph)


def mish(input: Any, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``; derivative ``t + x (1 - t²) σ(x)`` with ``t`` the tanh."""
    x = as_tensor(input)
    a = x.data
    t = np.tanh(_softplus(a))

    def slope_graph() -> Tensor:
        tt = softplus(x).tanh()
        return tt + x * (1 - tt * tt) * x.sigmoid()

    return _pointwise(x, a * t, lambda: t + a * (1 - t * t) * _stable_sigmoid(a), slope_graph)


def softplus(input: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + e^(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``.

    Derivative: ``σ(beta x)``, or 1 above the threshold.
    """
    x = as_tensor(input)
    a = x.data
    z = a * beta
    linear = z > threshold
    out = np.where(linear, a, _softplus(z) / beta)
    return _pointwise(x, out, lambda: np.where(linear, 1.0, _stable_sigmoid(z)),
                      lambda: (x * beta).sigmoid().where(~linear, 1.0))


def softsign(input: Any) -> Tensor:
    """``x / (1 + |x|)``; derivative ``1 / (1 + |x|)²``."""
    x = as_tensor(input)
    d = 1 + np.abs(x.data)
    return _pointwise(x, x.data / d, lambda: 1 / (d * d), lambda: (1 + x.abs()) ** -2)


def logsigmoid(input: Any) -> Tensor:
    """``log σ(x) = min(x, 0) - log(1 + e^(-|x|))``, stable; derivative ``σ(-x)``."""
    x = as_tensor(input)
    a = x.data
    return _pointwise(x, -_softplus(-a), lambda: _stable_sigmoid(-a), lambda: (-x).sigmoid())


def tanhshrink(input: Any) -> Tensor:
    """``x - tanh(x)``; derivative ``tanh(x)²``."""
    x = as_tensor(input)
    t = np.tanh(x.data)
    return _pointwise(x, x.data - t, lambda: t * t, lambda: x.tanh() ** 2)


# -------------------------------------------------- piecewise-linear family
def hardtanh(input: Any, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """``clamp(x, min_val, max_val)``; the gradient is 0 at and beyond both ends
    (PyTorch's rule, unlike ``clamp``)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    x = as_tensor(input)
    a = x.data
    inside = (a > min_val) & (a < max_val)
    return _pointwise(x, np.clip(a, min_val, max_val), lambda: inside, _constant(lambda: inside))


def relu6(input: Any, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)`` = ``hardtanh(x, 0, 6)`` (gradient 0 at 0 and at 6)."""
    return hardtanh(input, 0.0, 6.0)


def hardsigmoid(input: Any, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6``; derivative 1/6 strictly inside (-3, 3), else 0.

    PyTorch's backward multiplies by 1/6 rounded to float32 (its kernel constant
    ``1.0f / 6.0f``) even for float64; we use the same number to agree to the last bit.
    """
    x = as_tensor(input)
    a = x.data
    slope = lambda: ((a > -3) & (a < 3)) * _ONE_SIXTH_F32  # noqa: E731
    return _pointwise(x, np.clip(a + 3, 0, 6) / 6, slope, _constant(slope))


def hardswish(input: Any, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6``; derivative ``x/3 + 1/2`` strictly inside (-3, 3), 0 at
    and below -3, 1 at and above 3 (PyTorch's values at the two kinks)."""
    x = as_tensor(input)
    a = x.data
    return _pointwise(x, a * np.clip(a + 3, 0, 6) / 6,
                      lambda: np.where(a <= -3, 0.0, np.where(a < 3, a / 3 + 0.5, 1.0)),
                      lambda: (x / 3 + 0.5).where((a > -3) & (a < 3), Tensor._wrap(
                          np.where(a <= -3, 0.0, 1.0).astype(a.dtype))))


def threshold(input: Any, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x`` where ``x > threshold``, else ``value``; gradient 1 where kept, else 0."""
    x = as_tensor(input)
    a = x.data
    keep = a > threshold
    return _pointwise(x, np.where(keep, a, value), lambda: keep, _constant(lambda: keep))


def _check_lambd(lambd: float, name: str) -> None:
    if lambd < 0:
        raise ValueError(f"{name}: lambd must be >= 0, got {lambd}")


def softshrink(input: Any, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0."""
    _check_lambd(lambd, "softshrink")
    x = as_tensor(input)
    a = x.data
    out = np.where(a > lambd, a - lambd, np.where(a < -lambd, a + lambd, 0.0))
    slope = lambda: (a < -lambd) | (a > lambd)  # noqa: E731
    return _pointwise(x, out, slope, _constant(slope))


def hardshrink(input: Any, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0 (a negative ``lambd`` keeps every ``x``, as in
    PyTorch, which only rejects it for :func:`softshrink`)."""
    x = as_tensor(input)
    a = x.data
    keep = (a < -lambd) | (a > lambd)
    return _pointwise(x, np.where(keep, a, 0.0), lambda: keep, _constant(lambda: keep))


# ------------------------------------------------ learnable / random slopes
def prelu(input: Any, weight: Any) -> Tensor:
    """``x`` where ``x > 0``, else ``weight * x``, with one slope per channel.

    Args:
        input: ``(N, C, ...)``; the channel axis is 1 (inputs of 0 or 1 dims have
            one channel, as in PyTorch).
        weight: ``(C,)`` slopes, or ``(1,)`` or a scalar shared by every channel (learnable).

    Backward: ``dx = g`` (``x > 0``) or ``weight * g``; ``dweight = sum(g * x)`` over
    the non-positive elements of each channel.
    """
    x, w = as_tensor(input), as_tensor(weight)
    if w.ndim > 1:
        raise ValueError(f"prelu: weight must be 1-D (one slope per channel) or a scalar, "
                         f"got shape {w.shape}")
    a = x.data
    count = w.shape[0] if w.ndim else 1
    channels = a.shape[1] if a.ndim >= 2 else 1
    if count not in (1, channels):
        raise ValueError(f"prelu: weight has {count} slopes but the input has {channels} "
                         f"channel(s) (axis 1; inputs of fewer than 2 dims have one); "
                         f"use 1 or {channels}")
    shape = [1] * a.ndim
    if count > 1:
        shape[1] = count
    wb = w.data.reshape(shape)
    pos = a > 0
    out = np.where(pos, a, wb * a).astype(a.dtype, copy=False)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gw = np.where(pos, 0, g * a)
        if count > 1:
            gw = gw.sum(axis=tuple(i for i in range(a.ndim) if shape[i] == 1))
        else:
            gw = np.reshape(gw.sum(), w.shape)
        return np.where(pos, g, g * wb), gw

    def double(g: Tensor) -> tuple[Tensor, Tensor]:
        gw = (g * x).where(~pos, 0.0)
        if count > 1:
            gw = gw.sum(tuple(i for i in range(a.ndim) if shape[i] == 1))
        else:
            gw = gw.sum().reshape(w.shape)
        return g.where(pos, g * w.reshape(shape)), gw

    return Tensor._wrap(out, (x, w), backward, double)


def rrelu(input: Any, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False, generator: np.random.Generator | None = None) -> Tensor:
    """Randomised leaky ReLU.

    In training each non-positive element gets its own slope drawn uniformly from
    ``[lower, upper]`` (the backward reuses it); otherwise the slope is the fixed
    ``(lower + upper) / 2``, i.e. ``leaky_relu``.

    Args:
        generator: NumPy generator for the slopes; ``nn.RReLU`` passes the one that
            :func:`convprop.nn.init.manual_seed` seeds (without one, a fresh
            unseeded generator is used).  The draws differ from PyTorch's.
    """
    if not 0 <= lower <= upper:
        raise ValueError(f"rrelu: need 0 <= lower <= upper, got lower={lower}, upper={upper}")
    if not training:
        return leaky_relu(input, (lower + upper) / 2)
    x = as_tensor(input)
    a = x.data
    rng = generator if generator is not None else np.random.default_rng()
    slope = np.where(a <= 0, rng.uniform(lower, upper, a.shape), 1.0).astype(a.dtype, copy=False)
    return Tensor._wrap(a * slope, (x,), lambda g: (g * slope,),
                        lambda g: (g * Tensor._wrap(slope),))


def glu(input: Any, dim: int = -1) -> Tensor:
    """Gated linear unit: split ``input`` in halves ``a, b`` along ``dim``; ``a * σ(b)``.

    Backward: ``da = g σ(b)``, ``db = g a σ(b) (1 - σ(b))``.
    """
    x = as_tensor(input)
    a = x.data
    if a.ndim == 0:
        raise ValueError("glu: does not support scalars (it halves an axis)")
    if not -a.ndim <= dim < a.ndim:
        raise ValueError(f"glu: dim {dim} is out of range for a {a.ndim}-D input")
    n = a.shape[dim]
    if n % 2:
        raise ValueError(f"glu: halving dimension must be even, but dimension {dim} is size {n}")
    first, second = np.split(a, 2, axis=dim)
    s = _stable_sigmoid(second)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.concatenate([g * s, g * first * s * (1 - s)], axis=dim),)

    def double(g: Tensor) -> tuple[Tensor]:
        half_a, half_b = x.chunk(2, dim)
        st = half_b.sigmoid()
        return (cat([g * st, g * half_a * st * (1 - st)], dim),)

    return Tensor._wrap((first * s).astype(a.dtype, copy=False), (x,), backward, double)


# ------------------------------------------------------------ softmax family
def _implicit_dim(ndim: int, name: str) -> int:
    """PyTorch's legacy rule when ``dim`` is omitted: 0 for 0-, 1- and 3-D input, else 1."""
    warnings.warn(
        f"Implicit dimension choice for {name} is deprecated (as in PyTorch); pass dim=",
        UserWarning,
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_input(input: Any, dim: int | None, dtype: Any, name: str) -> tuple[Tensor, int]:
    """The input (cast to ``dtype`` first, as PyTorch does) and the checked axis."""
    x = as_tensor(input)
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"{name}: dtype must be a floating type, got {dt}")
        x = x.astype(dt)
    if dim is None:
        dim = _implicit_dim(x.ndim, name)
    if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
        raise ValueError(f"{name}: dim {dim} is out of range for a {x.ndim}-D input")
    return x, dim


def softmax(input: Any, dim: int | None = None, _stacklevel: int = 3,
            dtype: Any = None) -> Tensor:
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim``, computed after subtracting the max.

    Args:
        input: any shape (an empty one gives an empty result, as in PyTorch).
        dim: the axis that sums to 1.
        dtype: cast the input to this floating dtype first.

    Backward (``s`` the output, ``g`` its gradient): ``s * (g - sum(g * s, dim))``.
    """
    x, dim = _softmax_input(input, dim, dtype, "softmax")
    a = x.data
    if a.ndim == 0:
        return Tensor._wrap(np.ones_like(a), (x,), lambda g: (np.zeros_like(g),),
                            lambda g: (g * 0,))
    if a.size == 0:
        return Tensor._wrap(a.copy(), (x,), lambda g: (np.zeros_like(g),), lambda g: (g * 0,))
    e = np.exp(a - a.max(axis=dim, keepdims=True))
    s = e / e.sum(axis=dim, keepdims=True)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        gs = g * s
        return (gs - s * gs.sum(axis=dim, keepdims=True),)

    def double(g: Tensor) -> tuple[Tensor]:
        st = softmax(x, dim)
        gs = g * st
        return (gs - st * gs.sum(dim, keepdim=True),)

    return Tensor._wrap(s, (x,), backward, double)


def log_softmax(input: Any, dim: int | None = None, _stacklevel: int = 3,
                dtype: Any = None) -> Tensor:
    """``x_i - log sum_j exp(x_j)`` along ``dim``, stable for any magnitude.

    Arguments as :func:`softmax`.  Backward: ``g - softmax(x) * sum(g, dim)``.
    """
    x, dim = _softmax_input(input, dim, dtype, "log_softmax")
    a = x.data
    if a.ndim == 0:
        return Tensor._wrap(np.zeros_like(a), (x,), lambda g: (np.zeros_like(g),),
                            lambda g: (g * 0,))
    out = log_softmax_array(a, dim)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g - np.exp(out) * g.sum(axis=dim, keepdims=True),)

    def double(g: Tensor) -> tuple[Tensor]:
        return (g - softmax(x, dim) * g.sum(dim, keepdim=True),)

    return Tensor._wrap(out, (x,), backward, double)


def softmin(input: Any, dim: int | None = None, _stacklevel: int = 3,
            dtype: Any = None) -> Tensor:
    """``softmax(-x)`` along ``dim``: the smallest entries get the most weight."""
    x, dim = _softmax_input(input, dim, dtype, "softmin")
    return softmax(-x, dim)


def softmax2d(input: Any) -> Tensor:
    """Softmax over the channels of ``(N, C, H, W)`` or ``(C, H, W)`` (axis -3)."""
    x = as_tensor(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"Softmax2d: expected a 3-D or 4-D input (C, H, W) or (N, C, H, W), "
                         f"got {x.ndim}-D")
    return softmax(x, -3)


def log_softmax_array(a: np.ndarray, axis: int) -> np.ndarray:
    """Plain-ndarray stable log-softmax (shared with the fused losses)."""
    if a.size == 0:
        return a.copy()
    shifted = a - a.max(axis=axis, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted

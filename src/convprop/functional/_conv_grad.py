"""A convolution's three passes as differentiable ops, so gradients of any order are exact.

For one :class:`~convprop.kernels.ConvSpec` (stride ``s``, dilation ``d``, pads,
groups) the three passes are bilinear maps::

    y  = C(x, w)     the convolution                                (forward)
    dx = T(gy, w)    its input gradient, a transposed convolution   (input_grad)
    dw = W(x, gy)    its weight gradient, a convolution of x by gy  (weight_grad)

All three come from one trilinear form (one spatial axis, one group; ``xp`` is
``x`` zero-padded by the spec's pads)::

    F(x, w, gy) = sum_{n, o, c, t, p} gy[n, o, p] * w[o, c, t] * xp[n, c, p*s + t*d]

    C(x, w) = dF/dgy,    T(gy, w) = dF/dx,    W(x, gy) = dF/dw

(the module docstring of :mod:`convprop.functional.conv` derives the last two).  The
gradient of one of these maps, contracted with the gradient ``h`` of its output, is
``F`` with ``h`` put in that output's place, differentiated by an operand -- again
one of the three maps:

* ``C(x, w)`` given ``h`` (shape of y):  ``d/dx = T(h, w)``,   ``d/dw = W(x, h)``;
* ``T(gy, w)`` given ``h`` (shape of x): ``<h, T(gy, w)> = F(h, w, gy)``, so
  ``d/dgy = C(h, w)`` and ``d/dw = W(h, gy)``;
* ``W(x, gy)`` given ``h`` (shape of w): ``<h, W(x, gy)> = F(x, h, gy)``, so
  ``d/dx = T(gy, h)`` and ``d/dgy = C(x, h)``.

Each op's differentiable backward is two others of the family, which closes it:
every derivative of every order is a convolution or a transposed convolution of
the same spec, run by the same kernels (the thread's backend and plan).  Bias and
non-zero padding modes stay outside (a sum and :func:`~convprop.functional.pad`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import kernels
from ..autograd import Tensor
from ..kernels import ConvSpec


def without_bias(spec: ConvSpec) -> ConvSpec:
    """``spec`` with no bias: the gradient ops below never add or return one."""
    return dataclasses.replace(spec, bias=False) if spec.bias else spec


def _arr(t: Tensor, spec: ConvSpec) -> np.ndarray:
    """The operand as the contiguous array of the spec's dtype the kernels expect."""
    return np.ascontiguousarray(t.data, dtype=spec.dtype)


def conv(x: Tensor, w: Tensor, spec: ConvSpec) -> Tensor:
    """``C(x, w)``: the convolution of ``x`` ``(N, C, *size)`` with ``w`` ``(O, C/g, *kernel)``,
    ``(N, O, *out)``, without bias."""
    plan = kernels.plan(spec)
    y, _ = plan.forward.forward(spec, _arr(x, spec), _arr(w, spec), None, False)

    def backward(h: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        h = np.ascontiguousarray(h, dtype=spec.dtype)
        gx = plan.input_grad.input_grad(spec, h, _arr(w, spec), None) if x.requires_grad else None
        gw = plan.weight_grad.weight_grad(spec, _arr(x, spec), h, None)[0] if w.requires_grad \
            else None
        return gx, gw

    def double(h: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return (input_grad(h, w, spec) if x.requires_grad else None,
                weight_grad(x, h, spec) if w.requires_grad else None)

    return Tensor._wrap(y, (x, w), backward, double)


def input_grad(gy: Tensor, w: Tensor, spec: ConvSpec) -> Tensor:
    """``T(gy, w)``: the input gradient ``(N, C, *size)`` of the convolution for the output
    gradient ``gy`` ``(N, O, *out)`` -- a transposed convolution of ``gy`` with ``w``."""
    plan = kernels.plan(spec)
    dx = plan.input_grad.input_grad(spec, _arr(gy, spec), _arr(w, spec), None)

    def backward(h: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        h = np.ascontiguousarray(h, dtype=spec.dtype)
        ggy = plan.forward.forward(spec, h, _arr(w, spec), None, False)[0] if gy.requires_grad \
            else None
        gw = plan.weight_grad.weight_grad(spec, h, _arr(gy, spec), None)[0] if w.requires_grad \
            else None
        return ggy, gw

    def double(h: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return (conv(h, w, spec) if gy.requires_grad else None,
                weight_grad(h, gy, spec) if w.requires_grad else None)

    return Tensor._wrap(np.ascontiguousarray(dx), (gy, w), backward, double)


def weight_grad(x: Tensor, gy: Tensor, spec: ConvSpec) -> Tensor:
    """``W(x, gy)``: the weight gradient ``(O, C/g, *kernel)`` of the convolution of ``x``
    ``(N, C, *size)`` for the output gradient ``gy`` ``(N, O, *out)`` -- a convolution of
    ``x`` with ``gy`` as the kernel (stride and dilation exchanged)."""
    plan = kernels.plan(spec)
    dw, _ = plan.weight_grad.weight_grad(spec, _arr(x, spec), _arr(gy, spec), None)

    def backward(h: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        h = np.ascontiguousarray(h, dtype=spec.dtype)
        gx = plan.input_grad.input_grad(spec, _arr(gy, spec), h, None) if x.requires_grad \
            else None
        ggy = plan.forward.forward(spec, _arr(x, spec), h, None, False)[0] if gy.requires_grad \
            else None
        return gx, ggy

    def double(h: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return (input_grad(gy, h, spec) if x.requires_grad else None,
                conv(x, h, spec) if gy.requires_grad else None)

    return Tensor._wrap(np.ascontiguousarray(dw), (x, gy), backward, double)

"""Convolution and transposed convolution in 1, 2 and 3 spatial dimensions.

Derivation of the backward (one spatial axis, stride ``s``, dilation ``d``, one
group; more axes and groups only add indices).  The forward is the
cross-correlation of the padded input with the kernel::

    y[n, o, p] = sum_{c, t} w[o, c, t] * xp[n, c, p*s + t*d]

Differentiating by ``xp[n, c, q]`` keeps the terms with ``p*s + t*d = q``::

    dxp[n, c, q] = sum_{o, t, p : p*s + t*d = q} gy[n, o, p] * w[o, c, t]

which is the transposed convolution of ``gy`` with ``w`` (scatter each output
gradient back through the kernel), and ``dx`` is the interior of ``dxp``.
Differentiating by ``w[o, c, t]``::

    dw[o, c, t] = sum_{n, p} gy[n, o, p] * xp[n, c, p*s + t*d]

which is again a cross-correlation, of the input with ``gy`` as the kernel
(stride and dilation change roles).  A transposed convolution is the input
gradient of some convolution, so its forward and backward are the same three
passes with the roles exchanged.

Each call builds one :class:`~convprop.kernels.ConvSpec` and asks
:func:`convprop.kernels.plan` once for the algorithm of each pass (this thread's
backend, see :mod:`convprop.kernels`); the algorithms take the unpadded input
and the bias, so zero padding and bias happen inside them.  As in PyTorch, the
operands must share one dtype (a ``TypeError`` otherwise; nothing is promoted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import kernels
from .._windows import (
    Pairs,
    _is_int,
    conv_output_shape,
    conv_padding,
    ntuple,
    positive,
    transpose_output_shape,
)
from ..autograd import Tensor, as_tensor, is_grad_enabled
from ..kernels import ConvSpec
from . import _conv_grad
from .pad import pad as _pad

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_dtypes(x: Tensor, w: Tensor, b: Tensor | None, name: str) -> None:
    """PyTorch's rule: the operands of a convolution share one dtype; nothing is promoted
    silently (a float64 input would otherwise turn a float32 model's step into float64)."""
    if w.dtype != x.dtype:
        raise TypeError(f"{name}: input is {x.dtype} but weight is {w.dtype}; convert one "
                        f"(tensor.astype(dtype))")
    if b is not None and b.dtype != x.dtype:
        raise TypeError(f"{name}: input and weight are {x.dtype} but bias is {b.dtype}; convert "
                        f"one (tensor.astype(dtype))")


def _check_groups(groups: Any) -> int:
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    return int(groups)


def _prepare(input: Any, weight: Any, bias: Any, nd: int, name: str
             ) -> tuple[Tensor, Tensor, Tensor | None, bool]:
    """Lift arguments to Tensors, check ranks, add the batch axis to unbatched input."""
    x, w = as_tensor(input), as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    if w.ndim != nd + 2:
        raise ValueError(
            f"{name}: weight must have {nd + 2} dims (out, in/groups, *kernel), got shape {w.shape}"
        )
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{name}: input must have {nd + 2} dims (N, C, *spatial) or {nd + 1} (C, *spatial), "
            f"got shape {x.shape}"
        )
    if any(k < 1 for k in w.shape[2:]):
        raise ValueError(f"{name}: kernel sizes must be >= 1, got weight shape {w.shape}")
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x.reshape((1,) + x.shape)
    return x, w, b, unbatched


def _bias_grad_axes(nd: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, nd + 2))


def conv_nd(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: int | Sequence[int] = 1,
    padding: int | str | Sequence = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    nd: int,
) -> Tensor:
    """N-dimensional convolution; see :func:`conv2d` for the arguments."""
    name = f"conv{nd}d"
    x, w, b, unbatched = _prepare(input, weight, bias, nd, name)
    groups = _check_groups(groups)
    c, o = x.shape[1], w.shape[0]
    if o % groups:
        raise ValueError(f"{name}: out_channels ({o}) must be divisible by groups ({groups})")
    if c % groups:
        raise ValueError(f"{name}: in_channels ({c}) must be divisible by groups ({groups})")
    if w.shape[1] * groups != c:
        raise ValueError(
            f"{name}: input has {c} channels but weight expects {w.shape[1]} x groups "
            f"({groups}) = {w.shape[1] * groups}"
        )
    if b is not None and b.shape != (o,):
        raise ValueError(f"{name}: bias must have shape ({o},), got {b.shape}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    kernel = w.shape[2:]
    stride_t = positive(stride, nd, "stride")
    dil = positive(dilation, nd, "dilation")
    pads = conv_padding(padding, nd, kernel, stride_t, dil)
    conv_output_shape(x.shape[2:], kernel, stride_t, pads, dil)  # validates sizes
    _check_dtypes(x, w, b, name)
    if padding_mode != "zeros" and any(p for pair in pads for p in pair):
        flat = [v for pair in reversed(pads) for v in pair]
        x = _pad(x, flat, mode=padding_mode)
        pads = ((0, 0),) * nd
    y = _conv(x, w, b, stride_t, pads, dil, groups)
    return y.reshape(y.shape[1:]) if unbatched else y


def _conv(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple[int, ...], pads: Pairs,
          dilation: tuple[int, ...], groups: int) -> Tensor:
    """The differentiable op: cross-correlation of ``x`` zero-padded by ``pads`` (+ bias).

    One :class:`~convprop.kernels.ConvSpec` and one plan per call; the algorithms take
    the unpadded input and the bias (padding and bias happen inside them).  The forward's
    saved state goes only to a backward pass of the same algorithm, and is dropped once
    the backward has read it."""
    nd = len(stride)
    spec = ConvSpec(x.shape[0], x.shape[1], w.shape[0], x.shape[2:], w.shape[2:], stride,
                    dilation, pads, groups, x.dtype, bias=b is not None)
    bd = None if b is None else b.data
    # what the forward keeps (im2col columns, transformed tiles) serves the weight gradient
    save = w.requires_grad and is_grad_enabled()
    plan = kernels.plan(spec, x.data, w.data, bd, backward=save)
    y, saved = plan.forward.forward(spec, x.data, w.data, bd, save)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        nonlocal saved
        state, saved = saved, None  # nothing outlives the backward that reads it
        gx = gw = gb = None
        if x.requires_grad:
            own = state if plan.input_grad is plan.forward else None
            gx = plan.input_grad.input_grad(spec, g, w.data, own)
        if w.requires_grad:
            own = state if plan.weight_grad is plan.forward else None
            gw, gb = plan.weight_grad.weight_grad(spec, x.data, g, own)
        elif b is not None and b.requires_grad:
            gb = g.sum(axis=_bias_grad_axes(nd))
        if b is None or not b.requires_grad:
            gb = None
        return gx, gw, gb

    def double(g: Tensor) -> tuple[Tensor | None, ...]:  # see _conv_grad: exact to any order
        bare = _conv_grad.without_bias(spec)
        return (_conv_grad.input_grad(g, w, bare) if x.requires_grad else None,
                _conv_grad.weight_grad(x, g, bare) if w.requires_grad else None,
                g.sum(_bias_grad_axes(nd)) if b is not None and b.requires_grad else None)

    parents = (x, w) if b is None else (x, w, b)
    return Tensor._wrap(y, parents, backward, double)


def conv_transpose_nd(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
    *,
    nd: int,
) -> Tensor:
    """N-dimensional transposed convolution; see :func:`conv_transpose2d` for the arguments."""
    name = f"conv_transpose{nd}d"
    x, w, b, unbatched = _prepare(input, weight, bias, nd, name)
    groups = _check_groups(groups)
    c = x.shape[1]
    if w.shape[0] != c:
        raise ValueError(
            f"{name}: input has {c} channels but weight (in, out/groups, *kernel) expects "
            f"{w.shape[0]}"
        )
    if c % groups:
        raise ValueError(f"{name}: in_channels ({c}) must be divisible by groups ({groups})")
    o = w.shape[1] * groups
    if b is not None and b.shape != (o,):
        raise ValueError(f"{name}: bias must have shape ({o},), got {b.shape}")
    if isinstance(padding, str):
        raise ValueError(f"{name}: padding must be an int or a tuple of ints, got {padding!r}")
    kernel = w.shape[2:]
    stride_t = positive(stride, nd, "stride")
    dil = positive(dilation, nd, "dilation")
    pad_t = ntuple(padding, nd, "padding")
    if any(p < 0 for p in pad_t):
        raise ValueError(f"{name}: padding must be non-negative, got {padding!r}")
    out_pad = ntuple(output_padding, nd, "output_padding")
    for op, s, d in zip(out_pad, stride_t, dil):
        if op < 0 or (op >= s and op >= d):
            raise ValueError(
                f"{name}: output_padding must be >= 0 and smaller than either stride or dilation, "
                f"got output_padding={out_pad}, stride={stride_t}, dilation={dil}"
            )
    transpose_output_shape(x.shape[2:], kernel, stride_t, pad_t, out_pad, dil)  # validates
    _check_dtypes(x, w, b, name)
    y = _conv_transpose(x, w, b, stride_t, pad_t, out_pad, dil, groups)
    return y.reshape(y.shape[1:]) if unbatched else y


def _transpose_spec(x: Tensor, w: Tensor, stride: tuple[int, ...], padding: tuple[int, ...],
                    output_padding: tuple[int, ...], dilation: tuple[int, ...],
                    groups: int) -> tuple[ConvSpec, tuple[int, ...]]:
    """The convolution a transposed convolution is the input gradient of, and the output
    sizes.

    Its input is the transposed output ``y`` (sizes ``Y``), padded by ``(p, p - op)``:
    then its output has the sizes of ``x``.  When ``op > p`` the far side would be
    cropped instead: the spec's input is ``Y - (op - p)`` long with pads ``(p, 0)``, and
    the ``op - p`` positions past it -- which no output reaches -- are zero in ``y``."""
    full = transpose_output_shape(x.shape[2:], w.shape[2:], stride, padding, output_padding,
                                  dilation)
    pads = tuple((p, max(p - op, 0)) for p, op in zip(padding, output_padding))
    size = tuple(f - max(op - p, 0) for f, p, op in zip(full, padding, output_padding))
    spec = ConvSpec(x.shape[0], w.shape[1] * groups, x.shape[1], size, w.shape[2:], stride,
                    dilation, pads, groups, x.dtype)
    return spec, full


def _conv_transpose(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple[int, ...],
                    padding: tuple[int, ...], output_padding: tuple[int, ...],
                    dilation: tuple[int, ...], groups: int) -> Tensor:
    """The differentiable op: ``y`` is the input gradient of the convolution of
    :func:`_transpose_spec` (``x`` in the role of its output gradient, ``w`` its weight),
    so the forward is that convolution's ``input_grad``, ``dx`` its forward and ``dw``
    its ``weight_grad`` with the roles of input and output gradient exchanged."""
    nd = len(stride)
    spec, full = _transpose_spec(x, w, stride, padding, output_padding, dilation, groups)
    plan = kernels.plan(spec)
    y = plan.input_grad.input_grad(spec, x.data, w.data, None)
    if full != spec.size:  # the far positions no output of the convolution reaches
        grown = np.zeros(spec.x_shape[:2] + full, dtype=y.dtype)
        grown[(slice(None), slice(None)) + tuple(slice(0, s) for s in spec.size)] = y
        y = grown
    else:
        y = np.ascontiguousarray(y)
    if b is not None:
        y += b.data.reshape((-1,) + (1,) * nd)
    reach = (slice(None), slice(None)) + tuple(slice(0, s) for s in spec.size)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        gx = gw = gb = None
        gs = g[reach]
        if x.requires_grad:
            gx, _ = plan.forward.forward(spec, gs, w.data, None, False)
        if w.requires_grad:
            gw, _ = plan.weight_grad.weight_grad(spec, gs, x.data, None)
        if b is not None and b.requires_grad:
            gb = g.sum(axis=_bias_grad_axes(nd))
        return gx, gw, gb

    def double(g: Tensor) -> tuple[Tensor | None, ...]:  # see _conv_grad: exact to any order
        gs = g[reach]
        return (_conv_grad.conv(gs, w, spec) if x.requires_grad else None,
                _conv_grad.weight_grad(gs, x, spec) if w.requires_grad else None,
                g.sum(_bias_grad_axes(nd)) if b is not None and b.requires_grad else None)

    parents = (x, w) if b is None else (x, w, b)
    return Tensor._wrap(y, parents, backward, double)


_CONV_DOC = """{nd}-D convolution (cross-correlation, as in PyTorch), differentiable in all inputs.

    Args:
        input: ``(N, C, {sp})`` or unbatched ``(C, {sp})``.
        weight: ``(O, C/groups, {kp})``.
        bias: ``(O,)`` or None.
        stride: int or one per dimension (>= 1).
        padding: int, one int per dimension, one ``(before, after)`` pair per
            dimension, ``'valid'`` or ``'same'`` (stride 1; an odd total puts
            the extra element after).
        dilation: spacing between kernel taps (1 = none).
        groups: split channels into this many independent groups
            (``groups == C`` is depthwise).
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    Returns:
        ``(N, O, {op})`` where each output size is
        ``floor((X + P_before + P_after - dilation*(K-1) - 1) / stride) + 1``.
    """

_TRANSPOSE_DOC = """{nd}-D transposed convolution (the adjoint of conv{nd}d), differentiable.

    Args:
        input: ``(N, C_in, {sp})`` or unbatched ``(C_in, {sp})``.
        weight: ``(C_in, C_out/groups, {kp})``.
        bias: ``(C_out,)`` or None.
        stride, padding, dilation: ints or one per dimension; ``padding`` crops
            that many elements from both sides of the full output.
        output_padding: extra size on the far side, smaller than stride or dilation.
        groups: number of channel groups.

    Returns:
        ``(N, C_out, {op})`` with sizes
        ``(X - 1)*stride - 2*padding + dilation*(K - 1) + output_padding + 1``.
    """


def _spatial(nd: int, letter: str) -> str:
    return ", ".join(f"{letter}{i}" for i in ("D", "H", "W")[3 - nd :])


def conv1d(input: Any, weight: Any, bias: Any = None, stride: int | Sequence[int] = 1,
           padding: int | str | Sequence = 0, dilation: int | Sequence[int] = 1,
           groups: int = 1, padding_mode: str = "zeros") -> Tensor:
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, padding_mode, nd=1)


def conv2d(input: Any, weight: Any, bias: Any = None, stride: int | Sequence[int] = 1,
           padding: int | str | Sequence = 0, dilation: int | Sequence[int] = 1,
           groups: int = 1, padding_mode: str = "zeros") -> Tensor:
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, padding_mode, nd=2)


def conv3d(input: Any, weight: Any, bias: Any = None, stride: int | Sequence[int] = 1,
           padding: int | str | Sequence = 0, dilation: int | Sequence[int] = 1,
           groups: int = 1, padding_mode: str = "zeros") -> Tensor:
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, padding_mode, nd=3)


def conv_transpose1d(input: Any, weight: Any, bias: Any = None, stride: int | Sequence[int] = 1,
                     padding: int | Sequence[int] = 0, output_padding: int | Sequence[int] = 0,
                     groups: int = 1, dilation: int | Sequence[int] = 1) -> Tensor:
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, nd=1)


def conv_transpose2d(input: Any, weight: Any, bias: Any = None, stride: int | Sequence[int] = 1,
                     padding: int | Sequence[int] = 0, output_padding: int | Sequence[int] = 0,
                     groups: int = 1, dilation: int | Sequence[int] = 1) -> Tensor:
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, nd=2)


def conv_transpose3d(input: Any, weight: Any, bias: Any = None, stride: int | Sequence[int] = 1,
                     padding: int | Sequence[int] = 0, output_padding: int | Sequence[int] = 0,
                     groups: int = 1, dilation: int | Sequence[int] = 1) -> Tensor:
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, nd=3)


for _nd, _f in ((1, conv1d), (2, conv2d), (3, conv3d)):
    _f.__doc__ = _CONV_DOC.format(nd=_nd, sp=_spatial(_nd, ""), kp=_spatial(_nd, "K"),
                                  op=_spatial(_nd, "O"))
for _nd, _f in ((1, conv_transpose1d), (2, conv_transpose2d), (3, conv_transpose3d)):
    _f.__doc__ = _TRANSPOSE_DOC.format(nd=_nd, sp=_spatial(_nd, ""), kp=_spatial(_nd, "K"),
                                       op=_spatial(_nd, "O"))

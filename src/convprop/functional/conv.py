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
kernels with the roles exchanged.  The kernels live in :mod:`convprop.kernels`.
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
    interior,
    ntuple,
    pad_constant,
    positive,
    transpose_full_shape,
    transpose_output_shape,
)
from ..autograd import Tensor, as_tensor, is_grad_enabled
from .pad import pad as _pad

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _common_dtype(*tensors: Tensor | None) -> np.dtype:
    return np.result_type(*(t.data for t in tensors if t is not None))


def _cast(t: Tensor | None, dtype: np.dtype) -> Tensor | None:
    return t if t is None or t.dtype == dtype else t.astype(dtype)


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
    dtype = _common_dtype(x, w, b)
    x, w, b = _cast(x, dtype), _cast(w, dtype), _cast(b, dtype)
    if padding_mode != "zeros" and any(p for pair in pads for p in pair):
        flat = [v for pair in reversed(pads) for v in pair]
        x = _pad(x, flat, mode=padding_mode)
        pads = ((0, 0),) * nd
    y = _conv(x, w, b, stride_t, pads, dil, groups)
    return y.reshape(y.shape[1:]) if unbatched else y


def _conv(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple[int, ...], pads: Pairs,
          dilation: tuple[int, ...], groups: int) -> Tensor:
    """The differentiable op: zero padding by ``pads``, then cross-correlation (+ bias)."""
    nd = len(stride)
    kernel = w.shape[2:]
    xp = pad_constant(x.data, pads)
    # work the forward leaves for the weight gradient (im2col columns, transformed tiles)
    cache = {} if w.requires_grad and is_grad_enabled() else None
    y = kernels.conv_forward(xp, w.data, stride, dilation, groups, cache=cache)
    if b is not None:
        y += b.data.reshape((-1,) + (1,) * nd)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        gx = gw = gb = None
        if x.requires_grad:
            gxp = kernels.conv_input_grad(g, w.data, xp.shape[2:], stride, dilation, groups,
                                          cache=cache)
            gx = gxp[interior(pads, x.shape[2:])]
        if w.requires_grad:
            gw = kernels.conv_weight_grad(xp, g, kernel, stride, dilation, groups, cache=cache)
        if b is not None and b.requires_grad:
            gb = g.sum(axis=_bias_grad_axes(nd))
        return gx, gw, gb

    parents = (x, w) if b is None else (x, w, b)
    return Tensor._wrap(y, parents, backward)


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
    dtype = _common_dtype(x, w, b)
    x, w, b = _cast(x, dtype), _cast(w, dtype), _cast(b, dtype)
    y = _conv_transpose(x, w, b, stride_t, pad_t, out_pad, dil, groups)
    return y.reshape(y.shape[1:]) if unbatched else y


def _conv_transpose(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple[int, ...],
                    padding: tuple[int, ...], output_padding: tuple[int, ...],
                    dilation: tuple[int, ...], groups: int) -> Tensor:
    """The differentiable op.  ``y`` is the input gradient of the convolution whose
    padded input has the 'full' size below; cropping ``padding`` from each side gives
    the output, and ``output_padding`` extends the far side."""
    nd = len(stride)
    kernel = w.shape[2:]
    full = transpose_full_shape(x.shape[2:], kernel, stride, output_padding, dilation)
    pads = tuple((p, p) for p in padding)
    yfull = kernels.conv_input_grad(x.data, w.data, full, stride, dilation, groups)
    y = np.ascontiguousarray(yfull[interior(pads, [f - 2 * p for f, p in zip(full, padding)])])
    if b is not None:
        y += b.data.reshape((-1,) + (1,) * nd)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        gx = gw = gb = None
        gfull = pad_constant(g, pads)
        if x.requires_grad:
            gx = kernels.conv_forward(gfull, w.data, stride, dilation, groups)
            gx = gx[(slice(None), slice(None)) + tuple(slice(0, i) for i in x.shape[2:])]
        if w.requires_grad:
            gw = kernels.conv_weight_grad(gfull, x.data, kernel, stride, dilation, groups)
        if b is not None and b.requires_grad:
            gb = g.sum(axis=_bias_grad_axes(nd))
        return gx, gw, gb

    parents = (x, w) if b is None else (x, w, b)
    return Tensor._wrap(y, parents, backward)


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

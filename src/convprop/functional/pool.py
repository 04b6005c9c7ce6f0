"""Max, average and adaptive average pooling in 1, 2 and 3 spatial dimensions.

Pooling slides a window exactly as convolution does, so it asks the same
module, :mod:`convprop._windows`, for the output size, the padding and the
strided window view ``(N, C, *kernel, *out)``; the backward is the adjoint of
that view, :func:`~convprop._windows.fold_add`, fed with

* max pooling: the output gradient placed at each window's arg-max tap (the
  first maximum in window scan order, as PyTorch picks it; overlapping windows
  add up), the rest zero;
* average pooling: the output gradient divided by the window's divisor,
  broadcast to every tap.

Max pooling pads with ``-inf`` so a padded cell never wins; average pooling
pads with zeros and, with ``count_include_pad=False``, divides by the number of
real cells, found by pooling a mask of ones through the same view.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._windows import (
    Pairs,
    _is_int,
    adaptive_bounds,
    conv_output_shape,
    disjoint,
    fold_add,
    interior,
    ntuple,
    pad_constant,
    positive,
    windows,
)
from ..autograd import Tensor, as_tensor


def _prepare(input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
             ceil_mode: bool, nd: int, name: str
             ) -> tuple[Tensor, bool, tuple[int, ...], tuple[int, ...], Pairs, tuple[int, ...]]:
    """Lift and check the arguments; add the batch axis to unbatched input."""
    x = as_tensor(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{name}: input must have {nd + 2} dims (N, C, *spatial) or {nd + 1} (C, *spatial), "
            f"got shape {x.shape}"
        )
    if ceil_mode:
        raise NotImplementedError(f"{name}: ceil_mode=True is not supported; use ceil_mode=False")
    kernel = positive(kernel_size, nd, "kernel_size")
    stride_t = kernel if stride is None or stride == [] else positive(stride, nd, "stride")
    dil = positive(dilation, nd, "dilation")
    pad = ntuple(padding, nd, "padding")
    if any(p < 0 or 2 * p > k for p, k in zip(pad, kernel)):
        raise ValueError(
            f"{name}: padding must be >= 0 and at most half the kernel size, "
            f"got padding={pad}, kernel_size={kernel}"
        )
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x.reshape((1,) + x.shape)
    pads = tuple((p, p) for p in pad)
    conv_output_shape(x.shape[2:], kernel, stride_t, pads, dil)  # validates sizes
    return x, unbatched, kernel, stride_t, pads, dil


def max_pool_nd(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
                padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                ceil_mode: bool = False, *, nd: int) -> Tensor:
    """N-dimensional max pooling; see :func:`max_pool2d`."""
    x, unbatched, kernel, stride_t, pads, dil = _prepare(
        input, kernel_size, stride, padding, dilation, ceil_mode, nd, f"max_pool{nd}d")
    n, c = x.shape[:2]
    xp = pad_constant(x.data, pads, -np.inf)
    view = windows(xp, kernel, stride_t, dil)
    out_shape = view.shape[2 + nd:]
    taps = [(slice(None), slice(None)) + t for t in itertools.product(*(range(k) for k in kernel))]
    y = view[taps[0]].copy()
    for tap in taps[1:]:
        np.maximum(y, view[tap], out=y)  # propagates NaN, as PyTorch does

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # each window's gradient goes to its first maximum in scan order (PyTorch's pick
        # among ties); in a window whose maximum is NaN, to its last NaN (PyTorch again)
        # disjoint windows (2x2 pooling at stride 2): write straight into the gradient
        gxp = np.zeros(xp.shape, dtype=g.dtype)
        fold = not disjoint(kernel, stride_t, dil)
        gcols = (np.empty((n, c) + kernel + out_shape, dtype=g.dtype) if fold
                 else windows(gxp, kernel, stride_t, dil, out_shape, writeable=True))
        nan_out = np.isnan(y)
        taken = nan_out.copy()
        valid = None
        if any(p for pair in pads for p in pair) and np.isneginf(y).any():
            # a window of -inf values: its maximum must not be claimed by a padded cell
            real = pad_constant(np.ones((1, 1) + x.shape[2:], dtype=bool), pads, False)
            valid = windows(real, kernel, stride_t, dil)
        for tap in taps:
            hit = view[tap] == y
            hit &= ~taken
            if valid is not None:
                hit &= valid[tap]
            taken |= hit
            np.multiply(g, hit, out=gcols[tap])
        if nan_out.any():  # the NaN pass: scan backwards, the last NaN wins
            for tap in reversed(taps):
                hit = np.isnan(view[tap]) & nan_out
                nan_out &= ~hit
                gcols[tap] += g * hit
        if fold:
            fold_add(gxp, gcols, kernel, stride_t, dil)
        return (gxp[interior(pads, x.shape[2:])],)

    out = Tensor._wrap(y, (x,), backward)
    return out.reshape(out.shape[1:]) if unbatched else out


def avg_pool_nd(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
                padding: int | Sequence[int] = 0, ceil_mode: bool = False,
                count_include_pad: bool = True, divisor_override: int | None = None,
                *, nd: int) -> Tensor:
    """N-dimensional average pooling; see :func:`avg_pool2d`."""
    name = f"avg_pool{nd}d"
    x, unbatched, kernel, stride_t, pads, dil = _prepare(
        input, kernel_size, stride, padding, 1, ceil_mode, nd, name)
    if divisor_override is not None and (not _is_int(divisor_override)
                                         or divisor_override < 1):
        raise ValueError(f"{name}: divisor_override must be a positive int, got {divisor_override!r}")
    n, c = x.shape[:2]
    xp = pad_constant(x.data, pads)
    view = windows(xp, kernel, stride_t, dil)
    out_shape = view.shape[2 + nd:]
    taps = tuple(range(2, 2 + nd))
    if divisor_override is not None:
        divisor: Any = divisor_override
    elif count_include_pad or not any(p for pair in pads for p in pair):
        divisor = math.prod(kernel)
    else:  # count the real cells of each window by pooling a mask of ones
        mask = pad_constant(np.ones((1, 1) + x.shape[2:], dtype=x.dtype), pads)
        divisor = windows(mask, kernel, stride_t, dil).sum(axis=taps)
    y = view.sum(axis=taps) / divisor

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        share = (g / divisor).reshape((n, c) + (1,) * nd + out_shape)
        gxp = np.zeros(xp.shape, dtype=g.dtype)
        fold_add(gxp, np.broadcast_to(share, view.shape), kernel, stride_t, dil)
        return (gxp[interior(pads, x.shape[2:])],)

    out = Tensor._wrap(y.astype(x.dtype, copy=False), (x,), backward)
    return out.reshape(out.shape[1:]) if unbatched else out


def _averaging_matrix(in_size: int, out_size: int, dtype: np.dtype) -> np.ndarray:
    """``A`` of shape ``(out, in)`` with ``1/len`` over each adaptive window: ``y = A @ x``."""
    a = np.zeros((out_size, in_size), dtype=dtype)
    for i, (start, end) in enumerate(adaptive_bounds(in_size, out_size)):
        a[i, start:end] = 1.0 / (end - start)
    return a


def adaptive_avg_pool_nd(input: Any, output_size: int | None | Sequence[int | None],
                         *, nd: int) -> Tensor:
    """N-dimensional adaptive average pooling; see :func:`adaptive_avg_pool2d`.

    An adaptive window's average is separable (a product of 1-D averages), so
    the op applies one averaging matrix per spatial axis; its backward applies
    the transposes.  A global pool (every output size 1) is a plain mean.
    """
    name = f"adaptive_avg_pool{nd}d"
    x = as_tensor(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{name}: input must have {nd + 2} dims (N, C, *spatial) or {nd + 1} (C, *spatial), "
            f"got shape {x.shape}"
        )
    lead = x.ndim - nd
    sizes = x.shape[lead:]
    if output_size is None or _is_int(output_size):
        output_size = (output_size,) * nd
    if not isinstance(output_size, (tuple, list)) or len(output_size) != nd:
        raise ValueError(f"{name}: output_size must be an int or {nd} ints, got {output_size!r}")
    out = tuple(s if o is None else o for o, s in zip(output_size, sizes))
    out = tuple(int(o) if _is_int(o) else o for o in out)
    if any(not _is_int(o) or o < 1 for o in out):
        raise ValueError(f"{name}: output sizes must be positive ints, got {output_size!r}")
    if any(s < 1 for s in sizes):
        raise ValueError(f"{name}: input spatial sizes must be >= 1, got shape {x.shape}")
    axes = tuple(range(lead, x.ndim))
    a = x.data

    if all(o == 1 for o in out):
        count = math.prod(sizes)
        y = a.mean(axis=axes, keepdims=True)
        return Tensor._wrap(
            y, (x,), lambda g: (np.broadcast_to(g / count, a.shape),))

    mats = [_averaging_matrix(s, o, a.dtype) for s, o in zip(sizes, out)]

    def apply(arr: np.ndarray, transpose: bool) -> np.ndarray:
        for axis, m in zip(reversed(axes), reversed(mats)):
            arr = np.moveaxis(np.tensordot(arr, m, axes=([axis], [0 if transpose else 1])), -1, axis)
        return arr

    return Tensor._wrap(np.ascontiguousarray(apply(a, False)), (x,),
                        lambda g: (apply(g, True),))


_MAX_DOC = """{nd}-D max pooling, differentiable.

    Args:
        input: ``(N, C, {sp})`` or unbatched ``(C, {sp})``.
        kernel_size: window size, an int or one per dimension.
        stride: window step; defaults to ``kernel_size``.
        padding: implicit ``-inf`` padding on both sides, at most half the kernel.
        dilation: spacing between window taps (1 = none).
        ceil_mode: only ``False`` is supported.

    Returns:
        ``(N, C, {op})`` with ``O = floor((X + 2P - dilation*(K-1) - 1) / S) + 1``.
        The gradient of each output goes to the first maximum of its window in
        scan order (PyTorch's choice among ties).
    """

_AVG_DOC = """{nd}-D average pooling, differentiable.

    Args:
        input: ``(N, C, {sp})`` or unbatched ``(C, {sp})``.
        kernel_size: window size, an int or one per dimension.
        stride: window step; defaults to ``kernel_size``.
        padding: implicit zero padding on both sides, at most half the kernel.
        ceil_mode: only ``False`` is supported.
        count_include_pad: divide by the full window size (PyTorch's default)
            rather than by the number of real cells in it.
        divisor_override: divide every window's sum by this instead.

    Returns:
        ``(N, C, {op})`` with ``O = floor((X + 2P - K) / S) + 1``.
    """

_ADAPTIVE_DOC = """{nd}-D adaptive average pooling to a fixed output size, differentiable.

    Output ``i`` averages input cells ``[floor(i*X/O), ceil((i+1)*X/O))`` along
    each axis, as PyTorch does.

    Args:
        input: ``(N, C, {sp})`` or unbatched ``(C, {sp})``.
        output_size: an int, or one int (or None: keep the input size) per dimension.

    Returns:
        ``(N, C, {op})``.
    """


def max_pool1d(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
               padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False) -> Tensor:
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, nd=1)


def max_pool2d(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
               padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False) -> Tensor:
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, nd=2)


def max_pool3d(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
               padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False) -> Tensor:
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, nd=3)


def avg_pool1d(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
               padding: int | Sequence[int] = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    return avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, nd=1)


def avg_pool2d(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
               padding: int | Sequence[int] = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    return avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, nd=2)


def avg_pool3d(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
               padding: int | Sequence[int] = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    return avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, nd=3)


def adaptive_avg_pool1d(input: Any, output_size: int | Sequence[int]) -> Tensor:
    return adaptive_avg_pool_nd(input, output_size, nd=1)


def adaptive_avg_pool2d(input: Any, output_size: int | None | Sequence[int | None]) -> Tensor:
    return adaptive_avg_pool_nd(input, output_size, nd=2)


def adaptive_avg_pool3d(input: Any, output_size: int | None | Sequence[int | None]) -> Tensor:
    return adaptive_avg_pool_nd(input, output_size, nd=3)


def _spatial(nd: int, letter: str) -> str:
    return ", ".join(f"{letter}{i}" for i in ("D", "H", "W")[3 - nd:])


for _nd, _max, _avg, _ada in ((1, max_pool1d, avg_pool1d, adaptive_avg_pool1d),
                              (2, max_pool2d, avg_pool2d, adaptive_avg_pool2d),
                              (3, max_pool3d, avg_pool3d, adaptive_avg_pool3d)):
    _fmt = {"nd": _nd, "sp": _spatial(_nd, ""), "op": _spatial(_nd, "O")}
    _max.__doc__ = _MAX_DOC.format(**_fmt)
    _avg.__doc__ = _AVG_DOC.format(**_fmt)
    _ada.__doc__ = _ADAPTIVE_DOC.format(**_fmt)

"""Pooling in 1, 2 and 3 spatial dimensions: max (with indices), max unpooling, average,
power-average (LP); adaptive pooling lives in :mod:`.adaptive_pool`.

Pooling slides a window exactly as convolution does, so it asks the same
module, :mod:`convprop._windows`, for the output size (``ceil_mode`` included:
:func:`~convprop._windows.pool_geometry` grows the right padding by what the
last window needs), the padding and the strided window view
``(N, C, *kernel, *out)``; the backward is the adjoint of that view,
:func:`~convprop._windows.fold_add`, fed with

* max pooling: the output gradient placed at each window's winning tap (the
  first maximum in window scan order, or the last NaN, as PyTorch picks it;
  overlapping windows add up), the rest zero; the same winners, mapped to input
  positions by :func:`~convprop._windows.window_source`, are ``return_indices``;
* average pooling: the output gradient divided by the window's divisor,
  broadcast to every tap.

Max pooling pads with ``-inf`` so a padded cell never wins; average pooling
pads with zeros and, where a window holds cells that do not count (padding with
``count_include_pad=False``, or the cells past the padding that ``ceil_mode``'s
last window reaches), divides by the count of the cells that do, found by
pooling a mask of ones through the same view.  LP pooling is composed from
average pooling as PyTorch composes it; max unpooling scatters by the indices
and gathers them back in its backward.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from .._tensor_ops import linear_map
from .._windows import (
    Pairs,
    _is_int,
    disjoint,
    fold_add,
    interior,
    ntuple,
    pad_constant,
    pool_geometry,
    positive,
    unpool_output_shape,
    window_source,
    windows,
)
from ..autograd import Tensor, as_tensor


def _single(value: Any) -> Any:
    """PyTorch's pooling takes a one-element sequence as that element for every axis."""
    return value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value


def _prepare(input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
             ceil_mode: bool, nd: int, name: str
             ) -> tuple[Tensor, bool, tuple[int, ...], tuple[int, ...], Pairs, tuple[int, ...]]:
    """Lift and check the arguments; add the batch axis to unbatched input.

    The returned pads include, with ``ceil_mode``, the extra cells after the right
    padding that the last window reaches (:func:`~convprop._windows.pool_geometry`).
    """
    x = as_tensor(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{name}: input must have {nd + 2} dims (N, C, *spatial) or {nd + 1} (C, *spatial), "
            f"got shape {x.shape}"
        )
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"{name}: ceil_mode must be a bool, got {ceil_mode!r}")
    kernel = positive(_single(kernel_size), nd, "kernel_size")
    empty = stride is None or (isinstance(stride, (tuple, list)) and not stride)
    stride_t = kernel if empty else positive(_single(stride), nd, "stride")
    dil = positive(_single(dilation), nd, "dilation")
    pad = ntuple(_single(padding), nd, "padding")
    if any(p < 0 or 2 * p > k for p, k in zip(pad, kernel)):
        raise ValueError(
            f"{name}: padding must be >= 0 and at most half the kernel size, "
            f"got padding={pad}, kernel_size={kernel}"
        )
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x.reshape((1,) + x.shape)
    if any(s < 1 for s in x.shape[1:]):
        raise ValueError(f"{name}: channels and spatial sizes must be >= 1 (only the batch may be "
                         f"empty), got shape {x.shape}")
    _, pads = pool_geometry(x.shape[2:], kernel, stride_t, pad, dil, ceil_mode)
    return x, unbatched, kernel, stride_t, pads, dil


def _padded_cells(pads: Pairs) -> bool:
    return any(p for pair in pads for p in pair)


def max_pool_nd(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
                padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                ceil_mode: bool = False, return_indices: bool = False, *, nd: int
                ) -> Tensor | tuple[Tensor, Tensor]:
    """N-dimensional max pooling; see :func:`max_pool2d`."""
    x, unbatched, kernel, stride_t, pads, dil = _prepare(
        input, kernel_size, stride, padding, dilation, ceil_mode, nd, f"max_pool{nd}d")
    out_shape = pool_geometry(x.shape[2:], kernel, stride_t, [p[0] for p in pads], dil, ceil_mode)[0]
    if _compiled().compiled_pool("max", x.data, kernel, stride_t, dil, pads, out_shape):
        return _compiled_max_pool(x, unbatched, kernel, stride_t, dil, pads, out_shape,
                                  return_indices)
    n, c = x.shape[:2]
    xp = pad_constant(x.data, pads, -np.inf)
    view = windows(xp, kernel, stride_t, dil)
    out_shape = view.shape[2 + nd:]
    taps = [(slice(None), slice(None)) + t for t in itertools.product(*(range(k) for k in kernel))]
    y = view[taps[0]].copy()
    for tap in taps[1:]:
        np.maximum(y, view[tap], out=y)  # propagates NaN, as PyTorch does

    def winners() -> Iterator[tuple[int, np.ndarray, bool]]:
        """``(tap, mask, again)``: the windows whose winner is ``tap``, as PyTorch's scan
        settles it.  The scan starts at a window's first real cell and takes every larger
        cell (so the first of tied maxima wins) and every NaN (so the last NaN wins):
        one pass in tap order finds the first maximum of every window without NaN, then
        ``again=True`` masks, in reverse tap order, give the NaN windows their last NaN."""
        nan_out = np.isnan(y)
        taken = nan_out.copy()
        valid = None
        if _padded_cells(pads) and np.isneginf(y).any():
            # a window of -inf values: its maximum must not be claimed by a padded cell
            real = pad_constant(np.ones((1, 1) + x.shape[2:], dtype=bool), pads, False)
            valid = windows(real, kernel, stride_t, dil)
        for i, tap in enumerate(taps):
            hit = view[tap] == y
            hit &= ~taken
            if valid is not None:
                hit &= valid[tap]
            taken |= hit
            yield i, hit, False
        if nan_out.any():
            for i in reversed(range(len(taps))):
                hit = np.isnan(view[taps[i]]) & nan_out
                nan_out &= ~hit
                yield i, hit, True

    index = None
    if return_indices:
        arg = np.zeros(y.shape, dtype=np.intp)
        for i, hit, _ in winners():
            np.copyto(arg, i, where=hit)
        index = window_source(arg, kernel, stride_t, dil, pads, x.shape[2:])

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # each window's gradient goes to its winner; disjoint windows (2x2 pooling at
        # stride 2) write straight into the gradient, overlapping ones fold back
        gxp = np.zeros(xp.shape, dtype=g.dtype)
        fold = not disjoint(kernel, stride_t, dil)
        gcols = (np.empty((n, c) + kernel + out_shape, dtype=g.dtype) if fold
                 else windows(gxp, kernel, stride_t, dil, out_shape, writeable=True))
        for i, hit, again in winners():
            if again:
                gcols[taps[i]] += g * hit
            else:
                np.multiply(g, hit, out=gcols[taps[i]])
        if fold:
            fold_add(gxp, gcols, kernel, stride_t, dil)
        return (gxp[interior(pads, x.shape[2:])],)

    def gather(h: np.ndarray) -> np.ndarray:
        """The adjoint of the scatter above: each window reads ``h`` at its winner."""
        hv = windows(pad_constant(h, pads), kernel, stride_t, dil)
        picked = np.zeros(y.shape, dtype=h.dtype)
        for i, hit, _ in winners():
            picked += np.where(hit, hv[taps[i]], 0)
        return picked

    def double(g: Tensor) -> tuple[Tensor]:  # a scatter to the argmax; its adjoint gathers
        return (linear_map(g, lambda h: backward(h)[0], gather),)

    out = Tensor._wrap(y, (x,), backward, double)
    if unbatched:
        out = out.reshape(out.shape[1:])
    if index is None:
        return out
    return out, Tensor._wrap(index[0] if unbatched else index)


def _compiled() -> ModuleType:
    """The compiled pooling kernels and their dispatch rule (importing them imports no Numba)."""
    from ..kernels.numba import pool

    return pool


def _compiled_max_pool(x: Tensor, unbatched: bool, kernel: tuple[int, ...],
                       stride: tuple[int, ...], dilation: tuple[int, ...], pads: Pairs,
                       out_shape: tuple[int, ...], return_indices: bool
                       ) -> Tensor | tuple[Tensor, Tensor]:
    """:func:`max_pool_nd` by the compiled kernels: the same winners (first maximum, last
    NaN), found in one pass that also records their input positions, which the backward
    scatters to and the double backward gathers from."""
    kern = _compiled()
    y, index = kern.max_pool(x.data, kernel, stride, dilation, pads, out_shape)
    planes = index.reshape(index.shape[:2] + (math.prod(out_shape),))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (kern.max_pool_grad(np.asarray(g, dtype=y.dtype), index, x.shape),)

    def gather(h: np.ndarray) -> np.ndarray:  # the adjoint of the scatter: read h at the winner
        flat = np.ascontiguousarray(h).reshape(h.shape[:2] + (math.prod(h.shape[2:]),))
        return np.take_along_axis(flat, planes, axis=2).reshape(y.shape)

    out = Tensor._wrap(y, (x,), backward,
                       lambda g: (linear_map(g, lambda h: backward(h)[0], gather),))
    if unbatched:
        out = out.reshape(out.shape[1:])
    if not return_indices:
        return out
    return out, Tensor._wrap(index[0] if unbatched else index)


def _compiled_avg_pool(x: Tensor, unbatched: bool, kernel: tuple[int, ...],
                       stride: tuple[int, ...], pads: Pairs, out_shape: tuple[int, ...],
                       divs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Tensor:
    """:func:`avg_pool_nd` by the compiled kernels, with the divisors of
    :func:`convprop.kernels.numba.pool.divisors`."""
    kern = _compiled()
    y = kern.avg_pool(x.data, kernel, stride, pads, out_shape, divs)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (kern.avg_pool_grad(np.asarray(g, dtype=y.dtype), x.shape, kernel, stride, pads,
                                   divs),)

    def average(h: np.ndarray) -> np.ndarray:  # the adjoint of the backward: the pooling itself
        return kern.avg_pool(np.asarray(h, dtype=y.dtype), kernel, stride, pads, out_shape, divs)

    out = Tensor._wrap(y, (x,), backward,
                       lambda g: (linear_map(g, lambda h: backward(h)[0], average),))
    return out.reshape(out.shape[1:]) if unbatched else out


def max_unpool_nd(input: Any, indices: Any, kernel_size: int | Sequence[int], stride: Any = None,
                  padding: int | Sequence[int] = 0, output_size: Sequence[int] | None = None,
                  *, nd: int) -> Tensor:
    """N-dimensional max unpooling; see :func:`max_unpool2d`."""
    name = f"max_unpool{nd}d"
    x = as_tensor(input)
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{name}: input must have {nd + 2} dims (N, C, *spatial) or {nd + 1} "
                         f"(C, *spatial), got shape {x.shape}")
    if idx.shape != x.shape:
        raise ValueError(f"{name}: indices must have the input's shape {x.shape}, got {idx.shape}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name}: indices must be integers (as max pooling returns them), "
                        f"got dtype {idx.dtype}")
    kernel = positive(kernel_size, nd, "kernel_size")
    stride_t = kernel if stride is None else positive(stride, nd, "stride")
    pad = ntuple(padding, nd, "padding")
    if any(p < 0 for p in pad):
        raise ValueError(f"{name}: padding must be >= 0, got {padding!r}")
    lead = x.shape[: x.ndim - nd]
    size = unpool_output_shape(x.shape[x.ndim - nd:], kernel, stride_t, pad, output_size)
    plane = math.prod(size)
    rows = x.data.reshape(math.prod(lead), math.prod(x.shape[x.ndim - nd:]))
    where = idx.reshape(rows.shape).astype(np.int64, copy=False)
    if where.size and (where.min() < 0 or where.max() >= plane):
        bad = where[(where < 0) | (where >= plane)][0]
        raise ValueError(f"{name}: index {bad} is outside the output plane of {plane} cells "
                         f"(output size {size})")
    y = np.zeros((rows.shape[0], plane), dtype=x.dtype)
    np.put_along_axis(y, where, rows, axis=1)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.take_along_axis(g.reshape(y.shape), where, axis=1).reshape(x.shape),)

    def scatter(h: np.ndarray) -> np.ndarray:  # the adjoint of the gather: the op itself
        full = np.zeros(y.shape, dtype=h.dtype)
        np.put_along_axis(full, where, h.reshape(rows.shape), axis=1)
        return full.reshape(lead + size)

    return Tensor._wrap(y.reshape(lead + size), (x,), backward,
                        lambda g: (linear_map(g, lambda h: backward(h)[0], scatter),))


def avg_pool_nd(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
                padding: int | Sequence[int] = 0, ceil_mode: bool = False,
                count_include_pad: bool = True, divisor_override: int | None = None,
                *, nd: int) -> Tensor:
    """N-dimensional average pooling; see :func:`avg_pool2d`."""
    name = f"avg_pool{nd}d"
    x, unbatched, kernel, stride_t, pads, dil = _prepare(
        input, kernel_size, stride, padding, 1, ceil_mode, nd, name)
    if divisor_override is not None and (not _is_int(divisor_override) or divisor_override == 0):
        raise ValueError(f"{name}: divisor_override must be a non-zero int, got {divisor_override!r}")
    out_shape = pool_geometry(x.shape[2:], kernel, stride_t, [p[0] for p in pads], dil, ceil_mode)[0]
    compiled = _compiled()
    if compiled.compiled_pool("avg", x.data, kernel, stride_t, dil, pads, out_shape):
        divs = compiled.divisors(x.shape, kernel, stride_t, pads, out_shape, count_include_pad,
                                 divisor_override)
        return _compiled_avg_pool(x, unbatched, kernel, stride_t, pads, out_shape, divs)
    n, c = x.shape[:2]
    xp = pad_constant(x.data, pads)
    view = windows(xp, kernel, stride_t, dil)
    taps = tuple(range(2, 2 + nd))
    sym = tuple((pb, pb) for pb, _ in pads)  # the padding proper, without ceil_mode's extra
    if divisor_override is not None:
        divisor: Any = divisor_override
    elif not _padded_cells(pads) or (count_include_pad and sym == pads):
        divisor = math.prod(kernel)
    else:  # count the cells of each window that count, by pooling a mask of ones
        counted = x.shape[2:]
        if count_include_pad:  # the padding counts, the cells past it (ceil_mode) do not
            counted = tuple(s + 2 * pb for s, (pb, _) in zip(x.shape[2:], pads))
            inner = tuple((0, pa - pb) for pb, pa in pads)
        else:
            inner = pads
        mask = pad_constant(np.ones((1, 1) + counted, dtype=x.dtype), inner)
        divisor = windows(mask, kernel, stride_t, dil).sum(axis=taps)
    y = view.sum(axis=taps) / divisor

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        share = (g / divisor).reshape((n, c) + (1,) * nd + out_shape)
        gxp = np.zeros(xp.shape, dtype=g.dtype)
        fold_add(gxp, np.broadcast_to(share, view.shape), kernel, stride_t, dil)
        return (gxp[interior(pads, x.shape[2:])],)

    def average(h: np.ndarray) -> np.ndarray:  # the adjoint of the fold: the pooling itself
        return windows(pad_constant(h, pads), kernel, stride_t, dil).sum(axis=taps) / divisor

    out = Tensor._wrap(y.astype(x.dtype, copy=False), (x,), backward,
                       lambda g: (linear_map(g, lambda h: backward(h)[0], average),))
    return out.reshape(out.shape[1:]) if unbatched else out


def lp_pool_nd(input: Any, norm_type: float, kernel_size: int | Sequence[int], stride: Any = None,
               ceil_mode: bool = False, *, nd: int) -> Tensor:
    """N-dimensional power-average pooling; see :func:`lp_pool2d`.

    PyTorch's definition: ``(K * avg_pool(x ** p)) ** (1/p)`` with ``K`` the
    window size, no padding; a window whose power sum is 0 gets gradient 0.
    """
    name = f"lp_pool{nd}d"
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float, np.number)):
        raise TypeError(f"{name}: norm_type must be a number, got {norm_type!r}")
    if norm_type == 0:
        raise ValueError(f"{name}: norm_type must be non-zero, got {norm_type!r}")
    kernel = positive(kernel_size, nd, "kernel_size")
    x = as_tensor(input)
    s = avg_pool_nd(x ** norm_type, kernel, stride, 0, ceil_mode, nd=nd) * float(math.prod(kernel))
    p = float(norm_type)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = s.data ** (1.0 / p)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            gs = g * (1.0 / p) * y / s.data
        return (np.where(s.data == 0, 0, gs).astype(g.dtype, copy=False),)

    def double(g: Tensor) -> tuple[Tensor]:
        zero = s.data == 0
        safe = s + Tensor._wrap(zero.astype(s.dtype))  # no 0 ** negative where masked out
        return ((g * (1.0 / p) * safe ** (1.0 / p - 1)).where(~zero, 0.0),)

    return Tensor._wrap(y, (s,), backward, double)


_MAX_DOC = """{nd}-D max pooling, differentiable.

    Args:
        input: ``(N, C, {sp})`` or unbatched ``(C, {sp})``; ``N`` may be 0.
        kernel_size: window size, an int or one per dimension.
        stride: window step; defaults to ``kernel_size``.
        padding: implicit ``-inf`` padding on both sides, at most half the kernel.
        dilation: spacing between window taps (1 = none).
        ceil_mode: round the output size up: one more window when the last one
            starts inside the input or the left padding (it may run past the end).
        return_indices: also return, for every output, the flat index (within
            its ``{sp}`` plane) of the input cell it took, for :func:`max_unpool{nd}d`.

    Returns:
        ``(N, C, {op})`` with ``O = floor((X + 2P - dilation*(K-1) - 1) / S) + 1``
        (``ceil`` with ``ceil_mode``), and with ``return_indices`` an int64 Tensor
        of indices of the same shape.  The gradient of each output goes to the
        first maximum of its window in scan order (PyTorch's choice among ties),
        or to its last NaN.
    """

_AVG_DOC = """{nd}-D average pooling, differentiable.

    Args:
        input: ``(N, C, {sp})`` or unbatched ``(C, {sp})``; ``N`` may be 0.
        kernel_size: window size, an int or one per dimension.
        stride: window step; defaults to ``kernel_size``.
        padding: implicit zero padding on both sides, at most half the kernel.
        ceil_mode: round the output size up (see :func:`max_pool{nd}d`); cells
            of the last window past the right padding are not counted.
        count_include_pad: divide by the window's cells inside the padded input
            (PyTorch's default) rather than by its real cells only.
        divisor_override: divide every window's sum by this instead.

    Returns:
        ``(N, C, {op})`` with ``O = floor((X + 2P - K) / S) + 1`` (``ceil`` with ``ceil_mode``).
    """

_UNPOOL_DOC = """{nd}-D max unpooling: the partial inverse of :func:`max_pool{nd}d`.

    Every input value is written at its index in a zero output plane; the
    gradient of each input is the output gradient at its index.

    Args:
        input: ``(N, C, {sp})`` or unbatched ``(C, {sp})``.
        indices: int Tensor of the input's shape, as ``max_pool{nd}d(...,
            return_indices=True)`` returns it (flat indices within one output plane).
        kernel_size, stride, padding: those of the pooling (stride defaults to kernel_size).
        output_size: the output's spatial size (``{nd}`` or ``{nd2}`` ints), which must lie
            strictly within one stride of the default ``(X - 1)*S - 2P + K``; use the
            pooled input's size where pooling floored.

    Returns:
        ``(N, C, {op})``.
    """

_LP_DOC = """{nd}-D power-average pooling: ``(sum over the window of x**p) ** (1/p)``.

    Computed as PyTorch does, ``(K * avg_pool{nd}d(x ** p)) ** (1/p)`` with
    ``K`` the window size: no padding, and with ``ceil_mode`` the partial last
    window's average is still multiplied by the full ``K``.

    Args:
        input: ``(N, C, {sp})`` or unbatched ``(C, {sp})``.
        norm_type: ``p`` (``p = 1`` is sum pooling, large ``p`` tends to max pooling).
        kernel_size: window size; stride defaults to it.
        ceil_mode: round the output size up.

    Returns:
        ``(N, C, {op})``; odd ``p`` with negative window sums gives NaN, as in PyTorch.
    """


def max_pool1d(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
               padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                       nd=1)


def max_pool2d(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
               padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                       nd=2)


def max_pool3d(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
               padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                       nd=3)


def max_unpool1d(input: Any, indices: Any, kernel_size: int | Sequence[int], stride: Any = None,
                 padding: int | Sequence[int] = 0,
                 output_size: Sequence[int] | None = None) -> Tensor:
    return max_unpool_nd(input, indices, kernel_size, stride, padding, output_size, nd=1)


def max_unpool2d(input: Any, indices: Any, kernel_size: int | Sequence[int], stride: Any = None,
                 padding: int | Sequence[int] = 0,
                 output_size: Sequence[int] | None = None) -> Tensor:
    return max_unpool_nd(input, indices, kernel_size, stride, padding, output_size, nd=2)


def max_unpool3d(input: Any, indices: Any, kernel_size: int | Sequence[int], stride: Any = None,
                 padding: int | Sequence[int] = 0,
                 output_size: Sequence[int] | None = None) -> Tensor:
    return max_unpool_nd(input, indices, kernel_size, stride, padding, output_size, nd=3)


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


def lp_pool1d(input: Any, norm_type: float, kernel_size: int | Sequence[int], stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    return lp_pool_nd(input, norm_type, kernel_size, stride, ceil_mode, nd=1)


def lp_pool2d(input: Any, norm_type: float, kernel_size: int | Sequence[int], stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    return lp_pool_nd(input, norm_type, kernel_size, stride, ceil_mode, nd=2)


def lp_pool3d(input: Any, norm_type: float, kernel_size: int | Sequence[int], stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    return lp_pool_nd(input, norm_type, kernel_size, stride, ceil_mode, nd=3)


def max_pool1d_with_indices(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
                            padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                            ceil_mode: bool = False, return_indices: bool = True) -> Any:
    """:func:`max_pool1d` returning the indices too (PyTorch's name)."""
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, True, nd=1)


def max_pool2d_with_indices(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
                            padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                            ceil_mode: bool = False, return_indices: bool = True) -> Any:
    """:func:`max_pool2d` returning the indices too (PyTorch's name)."""
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, True, nd=2)


def max_pool3d_with_indices(input: Any, kernel_size: int | Sequence[int], stride: Any = None,
                            padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                            ceil_mode: bool = False, return_indices: bool = True) -> Any:
    """:func:`max_pool3d` returning the indices too (PyTorch's name)."""
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, True, nd=3)


def _spatial(nd: int, letter: str) -> str:
    return ", ".join(f"{letter}{i}" for i in ("D", "H", "W")[3 - nd:])


for _nd, _fns in ((1, (max_pool1d, avg_pool1d, max_unpool1d, lp_pool1d)),
                  (2, (max_pool2d, avg_pool2d, max_unpool2d, lp_pool2d)),
                  (3, (max_pool3d, avg_pool3d, max_unpool3d, lp_pool3d))):
    _fmt = {"nd": _nd, "nd2": _nd + 2, "sp": _spatial(_nd, ""), "op": _spatial(_nd, "O")}
    for _fn, _doc in zip(_fns, (_MAX_DOC, _AVG_DOC, _UNPOOL_DOC, _LP_DOC)):
        _fn.__doc__ = _doc.format(**_fmt)

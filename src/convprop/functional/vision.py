"""Ops that rearrange or resample images: ``unfold``/``fold`` (im2col and col2im),
``pixel_shuffle``/``pixel_unshuffle`` and ``interpolate``.

``unfold`` is the strided window view convolution itself is built on
(:func:`convprop._windows.windows`), copied into columns; ``fold`` is its
adjoint, the overlap-add :func:`~convprop._windows.fold_add`, so each is the
other's backward.  Resampling is separable: along every spatial axis the output
is a fixed linear map of the input (nearest: a selection; linear: two taps per
output), so ``interpolate`` applies one small matrix per axis, built from
:func:`~convprop._windows.nearest_source` / :func:`~convprop._windows.linear_source`
(PyTorch's index rules), and its backward applies the transposes.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._tensor_ops import linear_map
from .._windows import (
    Pairs,
    _is_int,
    conv_output_shape,
    fold_add,
    interior,
    linear_source,
    nearest_source,
    ntuple,
    pad_constant,
    positive,
    windows,
)
from ..autograd import Tensor, as_tensor
from .adaptive_pool import adaptive_avg_pool_nd


def _window_args(kernel_size: Any, dilation: Any, padding: Any, stride: Any
                 ) -> tuple[tuple[int, ...], tuple[int, ...], Pairs, tuple[int, ...]]:
    kernel = positive(kernel_size, 2, "kernel_size")
    dil = positive(dilation, 2, "dilation")
    stride_t = positive(stride, 2, "stride")
    pad = ntuple(padding, 2, "padding")
    if any(p < 0 for p in pad):
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    return kernel, dil, tuple((p, p) for p in pad), stride_t


def unfold(input: Any, kernel_size: int | Sequence[int], dilation: int | Sequence[int] = 1,
           padding: int | Sequence[int] = 0, stride: int | Sequence[int] = 1) -> Tensor:
    """Extract sliding blocks (im2col), differentiably.

    Args:
        input: ``(N, C, H, W)`` or unbatched ``(C, H, W)``.
        kernel_size, dilation, padding, stride: as for ``conv2d`` (zero padding, both sides).

    Returns:
        ``(N, C*kh*kw, L)`` with ``L = OH*OW`` the number of blocks; column ``l``
        holds the block at output position ``l`` (row-major), channel-major then
        kernel taps in row-major order, as PyTorch.
    """
    x = as_tensor(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"unfold: input must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    kernel, dil, pads, stride_t = _window_args(kernel_size, dilation, padding, stride)
    unbatched = x.ndim == 3
    a = x.data[None] if unbatched else x.data
    out = conv_output_shape(a.shape[2:], kernel, stride_t, pads, dil)
    xp = pad_constant(a, pads)
    n, c = a.shape[:2]
    cols = windows(xp, kernel, stride_t, dil, out).reshape(n, c * math.prod(kernel), math.prod(out))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        gxp = np.zeros(xp.shape, dtype=g.dtype)
        fold_add(gxp, g.reshape((n, c) + kernel + out), kernel, stride_t, dil)
        gx = gxp[interior(pads, a.shape[2:])]
        return (gx[0] if unbatched else gx,)

    def unfold_again(h: np.ndarray) -> np.ndarray:  # the adjoint of the fold in backward
        hb = pad_constant(h[None] if unbatched else h, pads)
        blocks = windows(hb, kernel, stride_t, dil, out).reshape(cols.shape)
        return blocks[0] if unbatched else np.ascontiguousarray(blocks)

    return Tensor._wrap(cols[0] if unbatched else cols, (x,), backward,
                        lambda g: (linear_map(g, lambda h: backward(h)[0], unfold_again),))


def fold(input: Any, output_size: int | Sequence[int], kernel_size: int | Sequence[int],
         dilation: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
         stride: int | Sequence[int] = 1) -> Tensor:
    """Sum sliding blocks back into an image (col2im), the adjoint of :func:`unfold`.

    Args:
        input: ``(N, C*kh*kw, L)`` or unbatched ``(C*kh*kw, L)``, ``L`` the number
            of blocks that fit in ``output_size`` (padded).
        output_size: ``(H, W)`` (or an int) of the result.
        kernel_size, dilation, padding, stride: as for :func:`unfold`.

    Returns:
        ``(N, C, H, W)``; where blocks overlap their values add up.
    """
    x = as_tensor(input)
    if x.ndim not in (2, 3):
        raise ValueError(f"fold: input must be (N, C*kh*kw, L) or (C*kh*kw, L), got shape {x.shape}")
    kernel, dil, pads, stride_t = _window_args(kernel_size, dilation, padding, stride)
    size = positive(output_size, 2, "output_size")
    unbatched = x.ndim == 2
    a = x.data[None] if unbatched else x.data
    n, ck, length = a.shape
    k = math.prod(kernel)
    if ck % k:
        raise ValueError(f"fold: input's dim 1 ({ck}) must be divisible by the kernel's "
                         f"{k} taps (kernel_size={kernel})")
    out = conv_output_shape(size, kernel, stride_t, pads, dil)
    if length != math.prod(out):
        raise ValueError(f"fold: input has {length} blocks but output_size={size} with "
                         f"kernel_size={kernel}, dilation={dil}, padding={tuple(p for p, _ in pads)}, "
                         f"stride={stride_t} holds {out[0]}*{out[1]} = {math.prod(out)}")
    c = ck // k
    padded = tuple(s + pb + pa for s, (pb, pa) in zip(size, pads))
    y = np.zeros((n, c) + padded, dtype=a.dtype)
    fold_add(y, a.reshape((n, c) + kernel + out), kernel, stride_t, dil)
    y = y[interior(pads, size)]

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        gp = pad_constant(g[None] if unbatched else g, pads)
        cols = windows(gp, kernel, stride_t, dil, out).reshape(a.shape)
        return (cols[0] if unbatched else np.ascontiguousarray(cols),)

    def fold_again(h: np.ndarray) -> np.ndarray:  # the adjoint of the unfold in backward
        full = np.zeros((n, c) + padded, dtype=h.dtype)
        hb = np.ascontiguousarray(h[None] if unbatched else h)
        fold_add(full, hb.reshape((n, c) + kernel + out), kernel, stride_t, dil)
        full = np.ascontiguousarray(full[interior(pads, size)])
        return full[0] if unbatched else full

    y = np.ascontiguousarray(y)
    return Tensor._wrap(y[0] if unbatched else y, (x,), backward,
                        lambda g: (linear_map(g, lambda h: backward(h)[0], fold_again),))


def pixel_shuffle(input: Any, upscale_factor: int) -> Tensor:
    """Rearrange ``(*, C*r*r, H, W)`` into ``(*, C, H*r, W*r)``: channel ``c*r*r + i*r + j``
    becomes the sub-pixel ``(i, j)`` of every ``r x r`` cell of channel ``c``."""
    x = as_tensor(input)
    r = _factor(upscale_factor, "upscale_factor")
    if x.ndim < 3 or x.shape[-3] % (r * r):
        raise ValueError(f"pixel_shuffle: input must be (*, C*r*r, H, W) with r={r}, so its "
                         f"channels divisible by {r * r}, got shape {x.shape}")
    *lead, c, h, w = x.shape
    lead = tuple(lead)
    k = len(lead)
    y = x.reshape(lead + (c // (r * r), r, r, h, w))
    y = y.permute(tuple(range(k)) + (k, k + 3, k + 1, k + 4, k + 2))
    return y.reshape(lead + (c // (r * r), h * r, w * r))


def pixel_unshuffle(input: Any, downscale_factor: int) -> Tensor:
    """Rearrange ``(*, C, H*r, W*r)`` into ``(*, C*r*r, H, W)``, the inverse of
    :func:`pixel_shuffle`."""
    x = as_tensor(input)
    r = _factor(downscale_factor, "downscale_factor")
    if x.ndim < 3 or x.shape[-2] % r or x.shape[-1] % r:
        raise ValueError(f"pixel_unshuffle: input must be (*, C, H*r, W*r) with r={r}, so its "
                         f"height and width divisible by {r}, got shape {x.shape}")
    *lead, c, h, w = x.shape
    lead = tuple(lead)
    k = len(lead)
    y = x.reshape(lead + (c, h // r, r, w // r, r))
    y = y.permute(tuple(range(k)) + (k, k + 2, k + 4, k + 1, k + 3))
    return y.reshape(lead + (c * r * r, h // r, w // r))


def _factor(value: Any, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}
MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area")


def _resample_matrix(mode: str, in_size: int, out_size: int, scale: float | None,
                     align_corners: bool, dtype: np.dtype) -> np.ndarray:
    """``A`` of shape ``(out, in)`` with ``y = A @ x`` along one axis."""
    a = np.zeros((out_size, in_size), dtype=dtype)
    rows = np.arange(out_size)
    if mode in ("nearest", "nearest-exact"):
        a[rows, nearest_source(in_size, out_size, scale, mode == "nearest-exact")] = 1
    else:
        i0, i1, w = linear_source(in_size, out_size, scale, align_corners)
        np.add.at(a, (rows, i0), 1 - w)
        np.add.at(a, (rows, i1), w)
    return a


def interpolate(input: Any, size: int | Sequence[int] | None = None,
                scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize ``(N, C, *spatial)`` by ``size`` or ``scale_factor``, differentiably.

    Args:
        input: ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
        size: output spatial size (an int for every axis, or one per axis).
        scale_factor: multiplier per axis (or one for all); the output size is
            ``floor(X * scale_factor)``.
        mode: ``'nearest'`` (PyTorch's ``floor(dst * in/out)`` rule, in float32),
            ``'nearest-exact'`` (pixel centres), ``'linear'`` (3-D input),
            ``'bilinear'`` (4-D), ``'trilinear'`` (5-D), or ``'area'`` (adaptive
            average pooling).
        align_corners: linear modes only: corner samples coincide (``True``) or
            samples sit at cell centres (``False``, the default).
        recompute_scale_factor: with ``scale_factor``, resample by the ratio of
            the sizes rather than by the factor itself (it matters when the
            product is not whole).
        antialias: only ``False`` (antialiasing belongs to bicubic/bilinear downsampling,
            outside convprop's scope).

    Returns:
        ``(N, C, *out)``.
    """
    x = as_tensor(input)
    nd = x.ndim - 2
    if nd not in (1, 2, 3):
        raise ValueError(f"interpolate: input must be (N, C, *spatial) with 1 to 3 spatial dims, "
                         f"got shape {x.shape}")
    if mode not in MODES:
        if mode == "bicubic":
            raise NotImplementedError("interpolate: mode='bicubic' is outside convprop's scope; "
                                      f"use one of {MODES}")
        raise ValueError(f"interpolate: mode must be one of {MODES}, got {mode!r}")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is outside convprop's scope")
    if mode in _LINEAR and _LINEAR[mode] != nd:
        raise ValueError(f"interpolate: mode={mode!r} needs {_LINEAR[mode] + 2}-D input, got "
                         f"{x.ndim}-D input of shape {x.shape}")
    if mode not in _LINEAR and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with the interpolating "
                         "modes linear, bilinear and trilinear")
    align = bool(align_corners)
    sizes = x.shape[2:]
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: give only one of size and scale_factor")
    scales: tuple[float, ...] | None = None
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an "
                             "explicit size")
        out = size if isinstance(size, (tuple, list)) else (size,) * nd
        if len(out) != nd or not all(_is_int(v) for v in out):
            raise ValueError(f"interpolate: size must be an int or {nd} ints for input of shape "
                             f"{x.shape}, got {size!r}")
        out = tuple(int(v) for v in out)
    elif scale_factor is not None:
        factors = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * nd
        if len(factors) != nd or not all(isinstance(f, numbers.Real) for f in factors):
            raise ValueError(f"interpolate: scale_factor must be a number or {nd} numbers for "
                             f"input of shape {x.shape}, got {scale_factor!r}")
        if any(f <= 0 for f in factors):
            raise ValueError(f"interpolate: scale_factor must be positive, got {scale_factor!r}")
        out = tuple(math.floor(float(s) * float(f)) for s, f in zip(sizes, factors))
        if not recompute_scale_factor and mode != "area":
            scales = tuple(float(f) for f in factors)
    else:
        raise ValueError("interpolate: either size or scale_factor must be given")
    if any(o < 1 for o in out) or any(s < 1 for s in sizes):
        raise ValueError(f"interpolate: input and output sizes must be > 0, got input {sizes} "
                         f"and output {out}")
    if mode == "area":
        return adaptive_avg_pool_nd(x, out, nd=nd)
    a = x.data
    mats = [_resample_matrix(mode, s, o, None if scales is None else scales[i], align, a.dtype)
            for i, (s, o) in enumerate(zip(sizes, out))]
    axes = range(2, 2 + nd)

    def apply(arr: np.ndarray, transpose: bool) -> np.ndarray:
        for axis, m in zip(axes, mats):
            arr = np.moveaxis(np.tensordot(arr, m, axes=([axis], [0 if transpose else 1])), -1, axis)
        return np.ascontiguousarray(arr)

    return Tensor._wrap(apply(a, False), (x,), lambda g: (apply(g, True),),
                        lambda g: (linear_map(g, lambda h: apply(h, True),
                                              lambda h: apply(h, False)),))


def upsample(input: Any, size: int | Sequence[int] | None = None,
             scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """PyTorch's older name for :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Any, size: int | Sequence[int] | None = None,
                     scale_factor: float | Sequence[float] | None = None) -> Tensor:
    """:func:`interpolate` with ``mode='nearest'`` (PyTorch's older name)."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Any, size: int | Sequence[int] | None = None,
                      scale_factor: float | Sequence[float] | None = None) -> Tensor:
    """:func:`interpolate` with ``mode='bilinear', align_corners=True`` (PyTorch's older name)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)

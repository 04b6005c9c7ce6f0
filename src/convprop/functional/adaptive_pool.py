"""Adaptive average and max pooling in 1, 2 and 3 spatial dimensions: pooling to a fixed
output size, with PyTorch's windows ``[floor(i*X/O), ceil((i+1)*X/O))`` along each axis
(:func:`~convprop._windows.adaptive_bounds`, the only place that computes them).

Adaptive average pooling is separable, one averaging matrix per axis (its backward
applies the transposes); adaptive max pooling takes one vectorised reduction per
output cell and adds each output's gradient back at its winner's flat index.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._tensor_ops import linear_map
from .._windows import _is_int, adaptive_bounds
from ..autograd import Tensor, as_tensor


def _averaging_matrix(in_size: int, out_size: int, dtype: np.dtype) -> np.ndarray:
    """``A`` of shape ``(out, in)`` with ``1/len`` over each adaptive window: ``y = A @ x``."""
    a = np.zeros((out_size, in_size), dtype=dtype)
    for i, (start, end) in enumerate(adaptive_bounds(in_size, out_size)):
        a[i, start:end] = 1.0 / (end - start)
    return a


def _adaptive_prepare(input: Any, output_size: Any, nd: int, name: str
                      ) -> tuple[Tensor, int, tuple[int, ...], tuple[int, ...]]:
    """Lift the input; expand ``output_size`` (None keeps an axis) to ``nd`` positive ints."""
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
    if any(s < 1 for s in x.shape[max(lead - 1, 0):lead]) or any(s < 1 for s in sizes):
        raise ValueError(f"{name}: channels and spatial sizes must be >= 1 (only the batch may be "
                         f"empty), got shape {x.shape}")
    return x, lead, sizes, out


def adaptive_avg_pool_nd(input: Any, output_size: int | None | Sequence[int | None],
                         *, nd: int) -> Tensor:
    """N-dimensional adaptive average pooling; see :func:`adaptive_avg_pool2d`.

    An adaptive window's average is separable (a product of 1-D averages), so
    the op applies one averaging matrix per spatial axis; its backward applies
    the transposes.  A global pool (every output size 1) is a plain mean.
    """
    x, lead, sizes, out = _adaptive_prepare(input, output_size, nd, f"adaptive_avg_pool{nd}d")
    axes = tuple(range(lead, x.ndim))
    a = x.data

    if all(o == 1 for o in out):
        count = math.prod(sizes)
        y = a.mean(axis=axes, keepdims=True)
        return Tensor._wrap(
            y, (x,), lambda g: (np.broadcast_to(g / count, a.shape),),
            lambda g: ((g / count).expand(a.shape),))

    mats = [_averaging_matrix(s, o, a.dtype) for s, o in zip(sizes, out)]

    def apply(arr: np.ndarray, transpose: bool) -> np.ndarray:
        for axis, m in zip(reversed(axes), reversed(mats)):
            arr = np.moveaxis(np.tensordot(arr, m, axes=([axis], [0 if transpose else 1])), -1, axis)
        return arr

    return Tensor._wrap(np.ascontiguousarray(apply(a, False)), (x,),
                        lambda g: (apply(g, True),),
                        lambda g: (linear_map(g, lambda h: apply(h, True),
                                              lambda h: apply(h, False)),))


def adaptive_max_pool_nd(input: Any, output_size: int | None | Sequence[int | None],
                         return_indices: bool = False, *, nd: int
                         ) -> Tensor | tuple[Tensor, Tensor]:
    """N-dimensional adaptive max pooling; see :func:`adaptive_max_pool2d`.

    One vectorised reduction per output cell over its window
    (:func:`~convprop._windows.adaptive_bounds` along each axis); the winner is
    PyTorch's: the first maximum in scan order, or the last NaN.  The backward
    adds each output's gradient at its winner's flat index.
    """
    x, lead, sizes, out = _adaptive_prepare(input, output_size, nd, f"adaptive_max_pool{nd}d")
    a = x.data
    rows = a.reshape((math.prod(a.shape[:lead]),) + sizes)
    y = np.empty((rows.shape[0],) + out, dtype=a.dtype)
    index = np.empty(y.shape, dtype=np.int64)
    bounds = [adaptive_bounds(s, o) for s, o in zip(sizes, out)]
    for cell in itertools.product(*(range(o) for o in out)):
        box = [bounds[i][o] for i, o in enumerate(cell)]
        block = rows[(slice(None),) + tuple(slice(b, e) for b, e in box)]
        block = block.reshape(len(rows), math.prod(block.shape[1:]))
        if not len(rows):
            continue
        local = block.argmax(axis=1)  # the first maximum (or the first NaN)
        nan = np.isnan(block)
        if nan.any():
            last_nan = block.shape[1] - 1 - nan[:, ::-1].argmax(axis=1)
            local = np.where(nan.any(axis=1), last_nan, local)
        at = (slice(None),) + cell
        y[at] = np.take_along_axis(block, local[:, None], axis=1)[:, 0]
        pos = np.unravel_index(local, tuple(e - b for b, e in box))
        index[at] = np.ravel_multi_index(tuple(p + b for p, (b, _) in zip(pos, box)), sizes)
    plane = math.prod(sizes)
    flat = index.reshape(len(rows), math.prod(out))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        gx = np.zeros((len(rows), plane), dtype=g.dtype)
        offset = flat + (np.arange(len(rows)) * plane)[:, None]
        gx.reshape(-1)[:] = np.bincount(offset.reshape(-1), g.reshape(-1), gx.size)
        return (gx.reshape(a.shape),)

    shape = a.shape[:lead] + out

    def gather(h: np.ndarray) -> np.ndarray:  # the adjoint of the scatter to the winners
        return np.take_along_axis(h.reshape(len(rows), plane), flat, axis=1).reshape(shape)

    y_t = Tensor._wrap(y.reshape(shape), (x,), backward,
                       lambda g: (linear_map(g, lambda h: backward(h)[0], gather),))
    return (y_t, Tensor._wrap(index.reshape(shape))) if return_indices else y_t


def adaptive_avg_pool1d(input: Any, output_size: int | Sequence[int]) -> Tensor:
    return adaptive_avg_pool_nd(input, output_size, nd=1)


def adaptive_avg_pool2d(input: Any, output_size: int | None | Sequence[int | None]) -> Tensor:
    return adaptive_avg_pool_nd(input, output_size, nd=2)


def adaptive_avg_pool3d(input: Any, output_size: int | None | Sequence[int | None]) -> Tensor:
    return adaptive_avg_pool_nd(input, output_size, nd=3)


def adaptive_max_pool1d(input: Any, output_size: int | Sequence[int],
                        return_indices: bool = False) -> Any:
    return adaptive_max_pool_nd(input, output_size, return_indices, nd=1)


def adaptive_max_pool2d(input: Any, output_size: int | None | Sequence[int | None],
                        return_indices: bool = False) -> Any:
    return adaptive_max_pool_nd(input, output_size, return_indices, nd=2)


def adaptive_max_pool3d(input: Any, output_size: int | None | Sequence[int | None],
                        return_indices: bool = False) -> Any:
    return adaptive_max_pool_nd(input, output_size, return_indices, nd=3)


def adaptive_max_pool1d_with_indices(input: Any, output_size: Any,
                                     return_indices: bool = True) -> Any:
    """:func:`adaptive_max_pool1d` returning the indices too (PyTorch's name)."""
    return adaptive_max_pool_nd(input, output_size, True, nd=1)


def adaptive_max_pool2d_with_indices(input: Any, output_size: Any,
                                     return_indices: bool = True) -> Any:
    """:func:`adaptive_max_pool2d` returning the indices too (PyTorch's name)."""
    return adaptive_max_pool_nd(input, output_size, True, nd=2)


def adaptive_max_pool3d_with_indices(input: Any, output_size: Any,
                                     return_indices: bool = True) -> Any:
    """:func:`adaptive_max_pool3d` returning the indices too (PyTorch's name)."""
    return adaptive_max_pool_nd(input, output_size, True, nd=3)


def _spatial(nd: int, letter: str) -> str:
    return ", ".join(f"{letter}{i}" for i in ("D", "H", "W")[3 - nd:])


_ADAPTIVE_DOC = """{nd}-D adaptive average pooling to a fixed output size, differentiable.

    Output ``i`` averages input cells ``[floor(i*X/O), ceil((i+1)*X/O))`` along
    each axis, as PyTorch does.

    Args:
        input: ``(N, C, {sp})`` or unbatched ``(C, {sp})``.
        output_size: an int, or one int (or None: keep the input size) per dimension.

    Returns:
        ``(N, C, {op})``.
    """

_ADAPTIVE_MAX_DOC = """{nd}-D adaptive max pooling to a fixed output size, differentiable.

    Output ``i`` is the maximum over input cells ``[floor(i*X/O), ceil((i+1)*X/O))``
    along each axis, as PyTorch does.

    Args:
        input: ``(N, C, {sp})`` or unbatched ``(C, {sp})``.
        output_size: an int, or one int (or None: keep the input size) per dimension.
        return_indices: also return each output's flat index within its input plane.

    Returns:
        ``(N, C, {op})``, and with ``return_indices`` the int64 indices of that shape.
    """


for _nd, _avg, _max in ((1, adaptive_avg_pool1d, adaptive_max_pool1d),
                        (2, adaptive_avg_pool2d, adaptive_max_pool2d),
                        (3, adaptive_avg_pool3d, adaptive_max_pool3d)):
    _fmt = {"nd": _nd, "sp": _spatial(_nd, ""), "op": _spatial(_nd, "O")}
    _avg.__doc__ = _ADAPTIVE_DOC.format(**_fmt)
    _max.__doc__ = _ADAPTIVE_MAX_DOC.format(**_fmt)

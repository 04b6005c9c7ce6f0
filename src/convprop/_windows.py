"""Window arithmetic: the one place that knows how a kernel slides over an input.

Everything that convolves, pools, unfolds or resamples asks this module for
output sizes (pooling's ``ceil_mode`` and unpooling included), for the
normalised padding of every accepted spelling, for the strided window view
(im2col without a copy) and for its adjoint, the overlap-add back onto the input
(col2im), for the input position a window's tap reads (max pooling's indices),
for adaptive windows, for the source index of every padded cell, and for the
source indices and weights of nearest and linear resampling.  Nothing else in
convprop computes window bounds.

Conventions are PyTorch's: arrays are ``(N, C, *spatial)``, ``dilation=1`` means
no dilation, and a padding pair is ``(before, after)`` along one spatial axis.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterator, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

Pairs = tuple[tuple[int, int], ...]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def ntuple(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    """Expand an int (or check a sequence) into ``n`` ints, naming ``name`` in errors."""
    if _is_int(value):
        return (int(value),) * n
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{name} must contain ints, got {value!r}")
        return tuple(int(v) for v in value)
    raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {type(value).__name__}")


def positive(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    """Like :func:`ntuple`, and every entry must be >= 1 (stride, dilation, kernel size)."""
    out = ntuple(value, n, name)
    if any(v < 1 for v in out):
        raise ValueError(f"{name} must be >= 1 in every dimension, got {value!r}")
    return out


def same_padding(kernel: Sequence[int], dilation: Sequence[int]) -> Pairs:
    """Padding for ``padding='same'`` at stride 1.

    The total is ``d*(k-1)``; when it is odd the extra element goes *after*,
    as PyTorch does.
    """
    pairs = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pairs.append((total // 2, total - total // 2))
    return tuple(pairs)


def conv_padding(
    padding: int | str | Sequence,
    n: int,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> Pairs:
    """Normalise a convolution's ``padding`` argument to ``(before, after)`` pairs.

    Accepted: an int; one int per spatial dim; one ``(before, after)`` pair per
    spatial dim (asymmetric); ``'valid'`` (no padding); ``'same'`` (stride 1 only).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"padding='same' requires stride 1 in every dimension, got stride={tuple(stride)}"
                )
            return same_padding(kernel, dilation)
        raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == n and all(
        isinstance(p, (tuple, list)) for p in padding
    ):
        pairs = []
        for p in padding:
            if len(p) != 2 or not all(_is_int(v) for v in p):
                raise ValueError(f"padding pairs must be (before, after) ints, got {padding!r}")
            pairs.append((int(p[0]), int(p[1])))
        pairs = tuple(pairs)
    else:
        pairs = tuple((p, p) for p in ntuple(padding, n, "padding"))
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return pairs


def output_size(
    input_size: int | Sequence[int],
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence = 0,
    dilation: int | Sequence[int] = 1,
) -> int | tuple[int, ...]:
    """Output length of a convolution: the founding document's eq. (1) with dilation.

    ``O = floor((X + P_before + P_after - d*(K - 1) - 1) / S) + 1``, which for
    symmetric padding ``P`` and ``d = 1`` is ``(X - K + 2P) / S + 1`` as in the
    document.  When ``S`` does not divide the numerator the result is floored,
    as every framework does: the trailing rows the kernel never reaches are
    simply unused (and receive a zero gradient).

    Args:
        input_size: ``X``, an int or one int per dimension.
        kernel_size: ``K``, likewise.
        stride: ``S`` (>= 1).
        padding: ``P`` per side (int or per-dimension ints), or per-dimension
            ``(before, after)`` pairs, ``'valid'`` or ``'same'``.
        dilation: spacing between kernel taps (1 = none).

    Returns:
        An int when every argument is an int, else a tuple with one size per dimension.

    Raises:
        ValueError: if any output size would be < 1, or arguments break their rules.
    """
    scalar = all(_is_int(v) for v in (input_size, kernel_size, stride, dilation)) and (
        _is_int(padding) or isinstance(padding, str)
    )
    if _is_int(input_size):
        n = 1
        for other in (kernel_size, stride, dilation):
            if isinstance(other, (tuple, list)):
                n = len(other)
                break
    else:
        n = len(input_size)
    sizes = ntuple(input_size, n, "input_size")
    kernel = positive(kernel_size, n, "kernel_size")
    stride_t = positive(stride, n, "stride")
    dil = positive(dilation, n, "dilation")
    pads = conv_padding(padding, n, kernel, stride_t, dil)
    out = conv_output_shape(sizes, kernel, stride_t, pads, dil)
    return out[0] if scalar else out


# what a user calls each spatial axis, by the number of spatial axes (PyTorch's L, DHW)
_AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def conv_output_shape(
    sizes: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    pads: Pairs,
    dilation: Sequence[int],
) -> tuple[int, ...]:
    """Per-dimension output sizes; raises if the dilated kernel exceeds the padded input,
    naming the axis (length; height, width; depth, height, width) in plain words."""
    out = []
    names = _AXIS_NAMES.get(len(sizes))
    for i, (x, k, s, (pb, pa), d) in enumerate(zip(sizes, kernel, stride, pads, dilation)):
        span = d * (k - 1) + 1
        padded = x + pb + pa
        if span > padded:
            what = f"dilated kernel {span} ({k} taps, dilation {d})" if d > 1 else f"kernel {k}"
            axis = f"{names[i]} {x}" if names else f"size {x} along spatial axis {i}"
            raise ValueError(f"{what} is larger than the input's {axis} (+{pb + pa} padding)")
        out.append((padded - span) // s + 1)
    return tuple(out)


def transpose_full_shape(
    sizes: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
) -> tuple[int, ...]:
    """Uncropped sizes of a transposed convolution: ``(X - 1)*S + d*(K - 1) + 1 + output_padding``.

    This is the padded input size of the convolution whose input gradient the
    transposed convolution is; cropping ``padding`` from both sides gives the output.
    """
    return tuple(
        (x - 1) * s + d * (k - 1) + 1 + op
        for x, k, s, op, d in zip(sizes, kernel, stride, output_padding, dilation)
    )


def transpose_output_shape(
    sizes: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
) -> tuple[int, ...]:
    """Output sizes of a transposed convolution:
    ``(X - 1)*S - 2P + d*(K - 1) + output_padding + 1``."""
    full = transpose_full_shape(sizes, kernel, stride, output_padding, dilation)
    out = tuple(f - 2 * p for f, p in zip(full, padding))
    names = _AXIS_NAMES.get(len(out))
    for i, o in enumerate(out):
        if o < 1:
            axis = f"the {names[i]}" if names else f"spatial axis {i}"
            raise ValueError(f"transposed convolution output size would be {o} (< 1) along "
                             f"{axis}; reduce padding")
    return out


def pool_geometry(
    sizes: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool = False,
) -> tuple[tuple[int, ...], Pairs]:
    """Output sizes of a pooling window and the ``(before, after)`` padding every window fits in.

    ``O = floor((X + 2P - d*(K-1) - 1) / S) + 1``, or with ``ceil_mode`` the same
    fraction rounded up, as PyTorch: the extra last window must start inside the
    input or the left padding (``(O-1)*S < X + P``), else it is dropped.  Such a
    window may run past the right padding; the returned ``after`` padding is
    grown by exactly what it needs, so :func:`windows` over the padded input
    yields ``O`` windows.  Cells of that extra padding count neither as input nor
    as padding (average pooling's divisor leaves them out, as PyTorch does).

    Raises:
        ValueError: if the dilated kernel is larger than the padded input.
    """
    out, grown = [], []
    for x, k, s, p, d in zip(sizes, kernel, stride, padding, dilation):
        span = d * (k - 1) + 1
        if ceil_mode:
            o = -(-(x + 2 * p - span) // s) + 1
            if (o - 1) * s >= x + p:
                o -= 1
        else:
            o = (x + 2 * p - span) // s + 1
        out.append(o)
        grown.append((p, max(p, (o - 1) * s + span - x - p)))
    if any(o < 1 for o in out):  # the window does not fit: say so as convolution does
        conv_output_shape(sizes, kernel, stride, tuple((p, p) for p in padding), dilation)
    return tuple(out), tuple(grown)


def window_source(
    tap: np.ndarray,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    pads: Pairs,
    sizes: Sequence[int],
) -> np.ndarray:
    """Flat input index (row-major within one plane of shape ``sizes``) read by each window.

    ``tap`` has shape ``(..., *out)`` and holds, for every output position ``o``,
    a kernel tap as a row-major index into ``kernel``; the input position it
    reads is ``o*stride + t*dilation - pad_before`` per axis (PyTorch's
    ``return_indices`` layout for max pooling).
    """
    nd = len(kernel)
    out_shape = tap.shape[tap.ndim - nd:]
    t = np.unravel_index(tap, tuple(kernel))
    flat = np.zeros(tap.shape, dtype=np.int64)
    for i in range(nd):
        o = np.arange(out_shape[i]).reshape((-1,) + (1,) * (nd - 1 - i))
        flat = flat * sizes[i] + (o * stride[i] + t[i] * dilation[i] - pads[i][0])
    return flat


def unpool_output_shape(
    sizes: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    output_size: Sequence[int] | None,
) -> tuple[int, ...]:
    """Output sizes of max unpooling: ``(X - 1)*S - 2P + K`` per axis, or ``output_size``
    (its trailing ``len(kernel)`` entries) when it lies strictly within one stride of that,
    PyTorch's rule."""
    nd = len(kernel)
    default = tuple((x - 1) * s + k - 2 * p for x, k, s, p in zip(sizes, kernel, stride, padding))
    if output_size is None:
        if any(d < 1 for d in default):
            raise ValueError(f"max_unpool: output size would be {default}; reduce padding")
        return default
    size = tuple(output_size)
    if len(size) == nd + 2:
        size = size[2:]
    if len(size) != nd or not all(_is_int(v) for v in size):
        raise ValueError(f"output_size must be {nd} or {nd + 2} ints, got {tuple(output_size)!r}")
    for i, (want, d, s) in enumerate(zip(size, default, stride)):
        if not d - s < want < d + s:
            raise ValueError(f"output_size {tuple(output_size)!r}: dim {i} must be between "
                             f"{d - s} and {d + s} (exclusive)")
    return tuple(int(v) for v in size)


def adaptive_bounds(in_size: int, out_size: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive windows: ``[floor(i*I/O), ceil((i+1)*I/O))`` for each output ``i``."""
    return [(i * in_size // out_size, -(-(i + 1) * in_size // out_size)) for i in range(out_size)]


def nearest_source(in_size: int, out_size: int, scale: float | None, exact: bool = False
                   ) -> np.ndarray:
    """Input index read by every output of nearest-neighbour resampling, PyTorch's rule.

    ``src = min(floor(dst * r), in - 1)`` (``'nearest'``) or
    ``min(floor((dst + 0.5) * r), in - 1)`` (``'nearest-exact'``), with the ratio
    ``r = 1/scale`` when a scale factor is used, else ``in/out``, and the
    product taken in float32 as PyTorch's kernel does (so a ratio like 1/3
    rounds exactly as there).
    """
    one = np.float32
    r = one(1.0 / scale) if scale is not None and scale > 0 else one(in_size) / one(out_size)
    dst = np.arange(out_size, dtype=np.float32)
    if exact:
        dst = dst + one(0.5)
    return np.minimum(np.floor(dst * r).astype(np.int64), in_size - 1)


def linear_source(in_size: int, out_size: int, scale: float | None, align_corners: bool
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two input indices and the weight of the second for every output of linear
    resampling along one axis, PyTorch's rule: ``y[j] = (1 - w) x[i0] + w x[i1]``.

    With ``align_corners`` the corner samples coincide:
    ``src = j * (in - 1)/(out - 1)``; otherwise samples sit at cell centres,
    ``src = max((j + 0.5) * r - 0.5, 0)`` with ``r = 1/scale`` (scale factor
    given) or ``in/out``.  ``i0 = floor(src)`` and ``i1 = i0 + 1`` except at the
    last input, where both are the edge.
    """
    if align_corners:
        r = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = r * np.arange(out_size, dtype=np.float64)
    else:
        r = 1.0 / scale if scale is not None and scale > 0 else in_size / out_size
        src = np.maximum(r * (np.arange(out_size, dtype=np.float64) + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    w = np.clip(src - i0, 0.0, 1.0)
    i1 = i0 + (i0 < in_size - 1)
    return i0, i1, w


def disjoint(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> bool:
    """Whether no two windows share an input position: along every axis the stride is at
    least the dilated kernel span (2x2 pooling at stride 2, for instance)."""
    return all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))


def windows(
    x: np.ndarray,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out_shape: Sequence[int] | None = None,
    writeable: bool = False,
) -> np.ndarray:
    """Strided view of every kernel window of ``x`` (no copy), read-only unless
    ``writeable`` (allowed only for :func:`disjoint` windows, where every element of
    the view is a distinct element of ``x``).

    ``x`` has shape ``(N, C, *spatial)`` (already padded).  The view has shape
    ``(N, C, *kernel, *out)`` and element ``[n, c, *t, *o]`` is
    ``x[n, c, *(o*stride + t*dilation)]``: kernel taps first, so that reshaping
    a copy to ``(N, C*prod(kernel), prod(out))`` gives im2col columns whose
    matrix product with an ``(O, C*prod(kernel))`` weight is already channel-first.
    """
    nd = len(kernel)
    spatial = x.shape[2:]
    if writeable and not disjoint(kernel, stride, dilation):
        raise ValueError("a writeable window view needs disjoint windows")
    if out_shape is None:
        out_shape = tuple(
            (sz - d * (k - 1) - 1) // s + 1 for sz, k, s, d in zip(spatial, kernel, stride, dilation)
        )
    st = x.strides
    sp_strides = st[2:]
    shape = x.shape[:2] + tuple(kernel) + tuple(out_shape)
    strides = (
        st[:2]
        + tuple(sp_strides[i] * dilation[i] for i in range(nd))
        + tuple(sp_strides[i] * stride[i] for i in range(nd))
    )
    return as_strided(x, shape=shape, strides=strides, writeable=writeable)


def fold_add(
    dst: np.ndarray,
    cols: np.ndarray,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """Adjoint of :func:`windows` (col2im): add every window back where it was read.

    ``cols`` has the layout of :func:`windows`, ``(N, C, *kernel, *out)``; ``dst``
    is ``(N, C, *spatial)`` and is accumulated into in place and returned.  One
    strided add per kernel tap: the loop is over ``prod(kernel)`` taps, every
    add is vectorised over batch, channels and output positions.  Disjoint windows
    (:func:`disjoint`) take a single add through a writeable window view.
    """
    nd = len(kernel)
    out_shape = cols.shape[2 + nd :]
    if disjoint(kernel, stride, dilation):  # every position is read once: one add
        target = windows(dst, kernel, stride, dilation, out_shape, writeable=True)
        target += cols
        return dst
    for tap, index in window_taps(kernel, stride, dilation, out_shape):
        dst[(slice(None), slice(None)) + index] += cols[(slice(None), slice(None)) + tap]
    return dst


def window_taps(
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out_shape: Sequence[int],
) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """Every kernel tap with the spatial index of the input positions it reads.

    For tap ``t`` the output position ``o`` reads input ``o*stride + t*dilation``,
    so the positions read by one tap over all outputs are the strided slice
    yielded here; ``windows(x)[:, :, *t]`` equals ``x[:, :, *index]``.
    """
    for tap in itertools.product(*(range(k) for k in kernel)):
        yield tap, tuple(
            slice(t * d, t * d + s * (o - 1) + 1, s)
            for t, d, s, o in zip(tap, dilation, stride, out_shape)
        )


def flat_taps(
    spatial: Sequence[int], kernel: Sequence[int], dilation: Sequence[int]
) -> tuple[list[int], int]:
    """Stride-1 windows on a *flattened* (row-major) plane of shape ``spatial``.

    Output ``o`` (an index into ``spatial`` with every ``o_i < out_i``) at flat
    position ``q = ravel(o)`` reads, for each tap ``t``, flat input ``q + off_t``
    with ``off_t = ravel(t * dilation)``.  Returns the offsets (taps in row-major
    order) and ``Q = ravel(out - 1) + 1``, the flat length that covers every
    output; positions in between whose trailing indices reach past ``out`` are
    not outputs (they wrap into the next row) and must be ignored or zero.
    """
    strides = [math.prod(spatial[i + 1 :]) for i in range(len(spatial))]
    out = [x - d * (k - 1) for x, k, d in zip(spatial, kernel, dilation)]
    offsets = [
        sum(t * d * st for t, d, st in zip(tap, dilation, strides))
        for tap in itertools.product(*(range(k) for k in kernel))
    ]
    return offsets, sum((o - 1) * st for o, st in zip(out, strides)) + 1


def flat_windows(
    rows: np.ndarray, spatial: Sequence[int], kernel: Sequence[int], dilation: Sequence[int],
    length: int,
) -> np.ndarray:
    """Read-only view ``(R, *kernel, length)`` of the stride-1 windows of flattened planes.

    ``rows`` is ``(R, L)`` with unit stride along ``L``: each row holds planes of
    shape ``spatial`` laid end to end (row-major).  Element ``[r, *t, q]`` is
    ``rows[r, q + off_t]`` with ``off_t`` the flat offset of tap ``t`` from
    :func:`flat_taps`; positions ``q`` that are not outputs of their plane (row
    and plane ends) read neighbouring data and must be ignored or zero.
    """
    item = rows.itemsize
    if rows.ndim != 2 or rows.strides[1] != item:
        raise ValueError("flat_windows needs a 2-D array with contiguous rows")
    offsets, _ = flat_taps(spatial, kernel, dilation)
    if length + offsets[-1] > rows.shape[1]:
        raise ValueError(f"windows of length {length} reach past rows of {rows.shape[1]}")
    plane = [math.prod(spatial[i + 1 :]) for i in range(len(spatial))]
    return as_strided(
        rows,
        shape=(rows.shape[0],) + tuple(kernel) + (length,),
        strides=(rows.strides[0],) + tuple(p * d * item for p, d in zip(plane, dilation)) + (item,),
        writeable=False,
    )


def flat_fold_add(
    rows: np.ndarray, cols: np.ndarray, spatial: Sequence[int], kernel: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """Adjoint of :func:`flat_windows`: ``rows[:, q + off_t] += cols[:, *t, q]`` for every
    tap, in place (one vectorised add per tap); returns ``rows``."""
    offsets, _ = flat_taps(spatial, kernel, dilation)
    length = cols.shape[-1]
    taps = cols.reshape(cols.shape[0], len(offsets), length)
    for i, off in enumerate(offsets):
        rows[:, off : off + length] += taps[:, i]
    return rows


def flat_valid(spatial: Sequence[int], out: Sequence[int]) -> tuple[slice, ...]:
    """Index, into planes of shape ``spatial``, of the stride-1 outputs (the leading
    ``out`` corner) among the flattened positions of :func:`flat_taps`."""
    return tuple(slice(0, o) for o in out)


def pad_constant(x: np.ndarray, pads: Pairs, value: float = 0.0) -> np.ndarray:
    """New array: ``x`` with its trailing ``len(pads)`` axes padded by ``value``."""
    if not any(p for pair in pads for p in pair):
        return x
    lead = x.ndim - len(pads)
    shape = x.shape[:lead] + tuple(s + pb + pa for s, (pb, pa) in zip(x.shape[lead:], pads))
    out = np.full(shape, value, dtype=x.dtype) if value else np.zeros(shape, dtype=x.dtype)
    out[interior(pads, x.shape[lead:], lead)] = x
    return out


def interior(pads: Pairs, sizes: Sequence[int], lead: int = 2) -> tuple[slice, ...]:
    """Index of the unpadded region inside an array padded by ``pads``."""
    return (slice(None),) * lead + tuple(slice(pb, pb + s) for (pb, _), s in zip(pads, sizes))


def pad_indices(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """Source index for every position of one axis padded in ``mode``.

    ``reflect`` mirrors without repeating the edge, ``replicate`` repeats the
    edge, ``circular`` wraps around (PyTorch's three non-constant modes).
    Negative amounts crop.  Reflect and replicate pad about the original edges
    (``pos`` runs from ``-before`` to ``size + after``); circular, as PyTorch,
    crops first and wraps around what is left.
    """
    if mode == "circular":
        lo, kept = max(-before, 0), size - max(-before, 0) - max(-after, 0)
        return lo + np.mod(np.arange(-max(before, 0), kept + max(after, 0)), max(kept, 1))
    pos = np.arange(-before, size + after)
    if mode == "reflect":
        if size == 1:
            return np.zeros_like(pos)
        period = 2 * (size - 1)
        pos = np.mod(pos, period)
        return np.where(pos >= size, period - pos, pos)
    if mode == "replicate":
        return np.clip(pos, 0, size - 1)
    raise ValueError(f"unknown padding mode {mode!r}")

"""``F.pad``: differentiable padding in PyTorch's four modes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._tensor_ops import linear_map
from .._windows import Pairs, _is_int, interior, pad_constant, pad_indices
from ..autograd import Tensor, as_tensor

MODES = ("constant", "reflect", "replicate", "circular")


def pad_pairs(pad: Sequence[int], ndim: int) -> Pairs:
    """Turn PyTorch's flat ``pad`` (last axis first) into per-axis pairs for trailing axes."""
    if not isinstance(pad, (tuple, list)) or not all(_is_int(p) for p in pad):
        raise TypeError(f"pad must be a sequence of ints, got {pad!r}")
    if len(pad) % 2:
        raise ValueError(f"pad must have an even length (before, after per axis), got {len(pad)}")
    if len(pad) // 2 > ndim:
        raise ValueError(f"pad has {len(pad) // 2} axis pairs but the input has only {ndim} dims")
    pairs = [(int(pad[i]), int(pad[i + 1])) for i in range(0, len(pad), 2)]
    return tuple(reversed(pairs))


def pad(input: Any, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the trailing axes of ``input``, differentiably.

    Args:
        input: Tensor (or array) of any rank.
        pad: PyTorch's layout: ``(last_before, last_after, prev_before, prev_after, ...)``.
            Negative entries crop, in every mode (after the positive ones pad,
            as PyTorch: a crop on one side and a reflection on the other reflect
            about the original edge).
        mode: ``'constant'`` (fill with ``value``), ``'reflect'`` (mirror without
            repeating the edge; each pad < that axis' size), ``'replicate'``
            (repeat the edge), ``'circular'`` (wrap; each pad <= that axis' size,
            after any crop: circular crops first and wraps what is left, as PyTorch).
        value: fill value for ``'constant'``.

    Returns:
        A new Tensor; the gradient of every padded cell flows back to the cell
        it was copied from (or nowhere, for constants).
    """
    x = as_tensor(input)
    if mode not in MODES:
        raise ValueError(f"padding mode must be one of {MODES}, got {mode!r}")
    pairs = pad_pairs(pad, x.ndim)
    if mode == "constant":
        return pad_constant_tensor(x, pairs, value)
    lead = x.ndim - len(pairs)
    for i, (before, after) in enumerate(pairs):
        size = x.shape[lead + i]
        out = size + before + after
        where = f"along dim {lead + i}"
        if mode == "reflect" and max(before, after) >= size and (before > 0 or after > 0):
            raise ValueError(f"reflect padding ({before}, {after}) must be smaller than the input "
                             f"size {size} {where}")
        kept = size - max(-before, 0) - max(-after, 0)  # circular wraps what the crop leaves
        if mode == "circular" and kept < 0:
            raise ValueError(f"circular padding ({before}, {after}) removes more than the input "
                             f"holds (input size {size}) {where}")
        if mode == "circular" and (before > kept or after > kept):
            left = "" if kept == size else f" left after cropping, {kept}, not {size}"
            raise ValueError(f"circular padding ({before}, {after}) must not exceed the input "
                             f"size {kept} {where}{left}: it would wrap around more than once")
        if mode in ("reflect", "replicate") and out < 1 and (before or after):
            raise ValueError(f"{mode} padding ({before}, {after}) leaves {out} cells of the input "
                             f"size {size} {where}; at least 1 must remain")
    return pad_gather(x, pairs, mode)


def pad_constant_tensor(x: Tensor, pairs: Pairs, value: float = 0.0) -> Tensor:
    """Constant padding of the trailing axes by ``pairs`` (negative entries crop)."""
    lead = x.ndim - len(pairs)
    # a slice never has negative length, so check the crop before taking it
    if any(s + min(b, 0) + min(a, 0) < 0 for (b, a), s in zip(pairs, x.shape[lead:])):
        raise ValueError(f"negative padding {pairs} removes more than the input holds")
    crop = (slice(None),) * lead + tuple(
        slice(-min(b, 0), s + min(a, 0)) for (b, a), s in zip(pairs, x.shape[lead:])
    )
    grow = tuple((max(b, 0), max(a, 0)) for b, a in pairs)
    kept = x.data[crop]
    out = pad_constant(kept, grow, value)
    if out is kept:  # nothing added: ``kept`` is a view of the input, never hand that out
        out = kept.copy()
    shape, dtype = x.shape, x.dtype

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        inner = g[interior(grow, kept.shape[lead:], lead)]
        if kept.shape == shape:
            return (inner,)
        full = np.zeros(shape, dtype=dtype)
        full[crop] = inner
        return (full,)

    def zero_pad(h: np.ndarray) -> np.ndarray:  # the adjoint of the crop in backward
        return np.array(pad_constant(h[crop], grow, 0.0))

    def double(g: Tensor) -> tuple[Tensor]:
        return (linear_map(g, lambda h: backward(h)[0], zero_pad),)

    return Tensor._wrap(out, (x,), backward, double)


def pad_gather(x: Tensor, pairs: Pairs, mode: str) -> Tensor:
    """Reflect / replicate / circular padding as one gather per axis; backward scatters back."""
    lead = x.ndim - len(pairs)
    plan = []
    out = x.data
    for i, (before, after) in enumerate(pairs):
        if before == 0 and after == 0:
            continue
        axis = lead + i
        idx = pad_indices(x.shape[axis], before, after, mode)
        plan.append((axis, before, x.shape[axis], idx))
        out = np.take(out, idx, axis=axis)
    if out is x.data:
        out = x.data.copy()

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        for axis, before, size, idx in reversed(plan):
            # the cells kept in place take one block copy; the padded ones add back one by one
            g = np.moveaxis(g, axis, 0)
            first, skip = max(before, 0), max(-before, 0)
            kept = max(0, min(size - skip, len(idx) - first))
            src = np.zeros((size,) + g.shape[1:], dtype=g.dtype)
            src[skip : skip + kept] = g[first : first + kept]
            for j in (*range(first), *range(first + kept, len(idx))):
                src[idx[j]] += g[j]
            g = np.moveaxis(src, 0, axis)
        return (g,)

    def gather(h: np.ndarray) -> np.ndarray:  # the adjoint of the scatter: the padding again
        for axis, _, _, idx in plan:
            h = np.take(h, idx, axis=axis)
        return h

    def double(g: Tensor) -> tuple[Tensor]:
        return (linear_map(g, lambda h: backward(h)[0], gather),)

    return Tensor._wrap(out, (x,), backward, double)

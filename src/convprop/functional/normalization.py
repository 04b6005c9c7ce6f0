"""Batch normalisation and dropout, each one fused op."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor, as_tensor
from ..random import numpy_generator


def _array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return value.data if isinstance(value, Tensor) else value


def _channel_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``sum(a)`` (or ``sum(a * b)``) per channel of ``(N, C, *spatial)``.

    einsum over the contiguous spatial axis, then a sum over the batch: several
    times faster than ``sum(axis=(0, 2, ...))``, and each inner sum stays short.
    Half-precision input is accumulated, and the sum returned, in float32 (a
    float16 sum overflows past 65504), as PyTorch does; callers cast back.
    """
    a3 = a.reshape(a.shape[0], a.shape[1], -1)
    acc = np.float32 if a.dtype.kind == "f" and a.dtype.itemsize < 4 else None
    if b is None:
        s = np.einsum("ncl->nc", a3, dtype=acc).sum(axis=0)
    else:
        s = np.einsum("ncl,ncl->nc", a3, b.reshape(a3.shape), dtype=acc).sum(axis=0)
    return s


def batch_norm(input: Any, running_mean: Any, running_var: Any, weight: Any = None,
               bias: Any = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel over the batch and spatial axes, then scale and shift.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with, in training, the
    batch's mean and biased variance per channel; the running statistics (if
    given) are then updated in place, the variance unbiased, as in PyTorch::

        running = (1 - momentum) * running + momentum * batch_statistic

    Outside training the running statistics are used instead (batch statistics
    when there are none).  The training backward, with ``xh`` the normalised
    input and ``M`` the count per channel, is the usual fused form::

        dx = weight / sqrt(var + eps) * (g - sum(g)/M - xh * sum(g * xh)/M)

    Args:
        input: ``(N, C)`` or ``(N, C, *spatial)``.
        running_mean, running_var: ``(C,)`` Tensors or arrays, or None.
        weight, bias: ``(C,)`` affine parameters, or None.
        training: use and update batch statistics.
        momentum: weight of the new batch in the running average.
        eps: added to the variance.

    Returns:
        A Tensor of the input's shape.
    """
    x = as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, *spatial), got shape {x.shape}")
    c = x.shape[1]
    w = None if weight is None else as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    rm, rv = _array(running_mean), _array(running_var)
    for label, t in (("weight", w), ("bias", b), ("running_mean", rm), ("running_var", rv)):
        if t is not None and t.shape != (c,):
            raise ValueError(f"batch_norm: {label} must have shape ({c},) for input {x.shape}, "
                             f"got {t.shape}")
    a = x.data
    bshape = (1, c) + (1,) * (a.ndim - 2)
    count = a.size // c if c else 0
    use_batch = training or rm is None or rv is None
    if use_batch:
        if training and count <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, "
                f"got input of shape {x.shape}")
        mean = (_channel_sum(a) / count).astype(a.dtype, copy=False)
        xc = a - mean.reshape(bshape)
        var = (_channel_sum(xc, xc) / count).astype(a.dtype, copy=False)
        if training and rm is not None and rv is not None:
            rm *= 1 - momentum
            rm += momentum * mean
            rv *= 1 - momentum
            rv += momentum * var * (count / (count - 1))
    else:
        mean, var = rm, rv
        xc = a - mean.reshape(bshape)
    invstd = (1.0 / np.sqrt(var + eps)).astype(a.dtype, copy=False)
    xc *= invstd.reshape(bshape)
    xhat = xc  # normalised in place: xc is this op's own temporary
    gamma = None if w is None else w.data
    y = xhat if gamma is None else xhat * gamma.reshape(bshape)
    if b is not None:
        y = y + b.data.reshape(bshape) if y is xhat else np.add(y, b.data.reshape(bshape), out=y)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        gb32 = _channel_sum(g)
        gw32 = _channel_sum(g, xhat)
        gb = gb32.astype(g.dtype, copy=False)
        gw = gw32.astype(g.dtype, copy=False)
        scale = invstd if gamma is None else gamma * invstd
        if use_batch:
            gx = xhat * (-gw32 / count).astype(g.dtype, copy=False).reshape(bshape)
            gx += g
            gx -= (gb32 / count).astype(g.dtype, copy=False).reshape(bshape)
            gx *= scale.reshape(bshape)
        else:
            gx = g * scale.reshape(bshape)
        grads: list[np.ndarray | None] = [gx]
        if w is not None:
            grads.append(gw)
        if b is not None:
            grads.append(gb)
        return tuple(grads)

    parents = (x,) + tuple(t for t in (w, b) if t is not None)
    return Tensor._wrap(y.astype(a.dtype, copy=False), parents, backward)


def dropout(input: Any, p: float = 0.5, training: bool = True,
            generator: Any = None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1 - p)``.

    Outside training (or with ``p = 0``) the input is returned unchanged.  The
    backward multiplies by the same mask.

    Args:
        input: any shape.
        p: drop probability in [0, 1].
        training: apply dropout at all.
        generator: a :class:`convprop.Generator` (or NumPy generator) for the mask;
            without one, convprop's default stream, which :func:`convprop.manual_seed` seeds.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    x = as_tensor(input)
    if not training or p == 0.0:
        return x
    rng = numpy_generator(generator)
    if p == 1.0:
        mask = np.zeros(x.shape, dtype=x.dtype)
    else:
        mask = (rng.random(x.shape) < 1.0 - p).astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return Tensor._wrap(x.data * mask, (x,), lambda g: (g * mask,))

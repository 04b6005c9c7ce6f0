"""Normalisation (batch, group, layer, instance, local response) and dropout.

Batch normalisation is one fused op.  Group, layer and instance normalisation
share :func:`_standardize`, one fused op that normalises equal blocks of the
input (their only difference is which cells a block holds); their affine
scale and shift are ordinary broadcast products, so their gradients come from
the autograd core.  Local response normalisation is composed, as PyTorch
composes it, from padding and average pooling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..autograd import Tensor, as_tensor
from .dropout import _check_p, _dropout


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
    a3 = a.reshape(a.shape[0], a.shape[1], int(np.prod(a.shape[2:])))
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
    if x.shape == (0,):  # PyTorch accepts an empty 1-D input (with empty statistics)
        for label, t in (("running_mean", running_mean), ("running_var", running_var),
                         ("weight", weight), ("bias", bias)):
            if t is not None and _array(t).size:
                raise ValueError(f"batch_norm: {label} must be empty for an empty 1-D input")
        return Tensor._wrap(x.data.copy(), (x,), lambda g: (g,), lambda g: (g,))
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
    if training and not eps > 0:
        raise ValueError(f"batch_norm: eps must be positive in training, got {eps}")
    if not eps >= 0:
        raise ValueError(f"batch_norm: eps must be non-negative, got {eps}")
    a = x.data
    bshape = (1, c) + (1,) * (a.ndim - 2)
    count = a.size // c if c else 0
    use_batch = training or rm is None or rv is None
    if use_batch and count == 0:
        # an empty batch (PyTorch accepts it, in training too): there are no statistics to
        # take or to learn from, and every cell of the (empty) output is constant
        mean, var, use_batch = np.zeros(c, dtype=a.dtype), np.ones(c, dtype=a.dtype), False
        xc = a - mean.reshape(bshape)
    elif use_batch:
        if training and count == 1:
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

    def double(g: Tensor) -> tuple[Tensor | None, ...]:
        """The same backward with Tensor ops; batch statistics are recomputed from ``x``
        so that their dependence on it is differentiated too."""
        axes = (0,) + tuple(range(2, a.ndim))
        if use_batch:
            xc_t = x - x.mean(axes, keepdim=True)
            inv = ((xc_t * xc_t).mean(axes, keepdim=True) + eps) ** -0.5
        else:
            xc_t = x - Tensor._wrap(np.asarray(mean, dtype=a.dtype).reshape(bshape))
            inv = Tensor._wrap(invstd.reshape(bshape))
        xh = xc_t * inv
        gb, gw = g.sum(axes), (g * xh).sum(axes)
        scale = inv if w is None else w.reshape(bshape) * inv
        if use_batch:
            gx = (g - gb.reshape(bshape) / count - xh * gw.reshape(bshape) / count) * scale
        else:
            gx = g * scale
        return (gx,) + ((gw,) if w is not None else ()) + ((gb,) if b is not None else ())

    parents = (x,) + tuple(t for t in (w, b) if t is not None)
    return Tensor._wrap(y.astype(a.dtype, copy=False), parents, backward, double)


def _standardize(x: Tensor, rows: int, m: int, eps: float
                 ) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """``(x - mean) / sqrt(var + eps)`` over each of ``rows`` blocks of ``m`` consecutive cells.

    ``x`` is read row-major as ``(rows, M)``; mean and (biased) variance are taken
    along ``M``.  With ``xh`` the result and ``invstd = 1/sqrt(var + eps)`` the
    backward is the fused form (all means along ``M``)::

        dx = invstd * (g - mean(g) - xh * mean(g * xh))

    Returns the normalised Tensor (the input's shape) and each block's mean and
    variance, shape ``(rows,)``.
    """
    a = x.data
    a2 = a.reshape(rows, m)
    mean = a2.mean(axis=1, keepdims=True) if m else np.zeros((rows, 1), dtype=a.dtype)
    xc = a2 - mean
    var = (xc * xc).mean(axis=1, keepdims=True) if m else np.zeros((rows, 1), dtype=a.dtype)
    invstd = 1.0 / np.sqrt(var + eps)
    xh = xc * invstd

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        g2 = g.reshape(rows, m)
        gx = g2 - g2.mean(axis=1, keepdims=True) - xh * (g2 * xh).mean(axis=1, keepdims=True)
        return ((gx * invstd).reshape(a.shape),)

    def double(g: Tensor) -> tuple[Tensor]:  # statistics recomputed with Tensor ops
        x2 = x.reshape(rows, m)
        xc_t = x2 - x2.mean(1, keepdim=True)
        inv = ((xc_t * xc_t).mean(1, keepdim=True) + eps) ** -0.5
        xh_t, g2 = xc_t * inv, g.reshape(rows, m)
        gx = g2 - g2.mean(1, keepdim=True) - xh_t * (g2 * xh_t).mean(1, keepdim=True)
        return ((gx * inv).reshape(a.shape),)

    return (Tensor._wrap(xh.reshape(a.shape).astype(a.dtype, copy=False), (x,), backward,
                         double),
            mean[:, 0], var[:, 0])


def _affine(y: Tensor, weight: Any, bias: Any, shape: tuple[int, ...]) -> Tensor:
    """``y * weight + bias`` with both reshaped to ``shape`` (either may be None)."""
    if weight is not None:
        y = y * as_tensor(weight).reshape(shape)
    if bias is not None:
        y = y + as_tensor(bias).reshape(shape)
    return y


def _check_param(name: str, label: str, t: Any, shape: tuple[int, ...]) -> None:
    if t is not None and tuple(as_tensor(t).shape) != shape:
        raise ValueError(f"{name}: {label} must have shape {shape}, got {tuple(as_tensor(t).shape)}")


def group_norm(input: Any, num_groups: int, weight: Any = None, bias: Any = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise each group of ``C / num_groups`` channels (with its spatial cells) per sample.

    Args:
        input: ``(N, C, *spatial)``; ``N`` may be 0.
        num_groups: ``G``, which must divide ``C``.
        weight, bias: ``(C,)`` per-channel scale and shift, or None.
        eps: added to the variance.

    Returns:
        A Tensor of the input's shape.
    """
    x = as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"group_norm: input must be (N, C, *spatial), got shape {x.shape}")
    n, c = x.shape[:2]
    if not isinstance(num_groups, (int, np.integer)) or num_groups < 1 or c % num_groups:
        raise ValueError(f"group_norm: num_groups must be a positive int that divides the "
                         f"{c} channels, got {num_groups!r}")
    for label, t in (("weight", weight), ("bias", bias)):
        _check_param("group_norm", label, t, (c,))
    if n * c // num_groups * int(np.prod(x.shape[2:])) == 1:
        raise ValueError(f"group_norm: expected more than 1 value per group, got input of "
                         f"shape {x.shape} with {num_groups} groups")
    y, _, _ = _standardize(x, n * num_groups, c // num_groups * int(np.prod(x.shape[2:])), eps)
    return _affine(y, weight, bias, (1, c) + (1,) * (x.ndim - 2))


def layer_norm(input: Any, normalized_shape: int | Sequence[int], weight: Any = None,
               bias: Any = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims of every sample.

    Args:
        input: ``(*, *normalized_shape)``.
        normalized_shape: an int or the trailing shape.
        weight, bias: elementwise scale and shift of shape ``normalized_shape``, or None.
        eps: added to the variance.

    Returns:
        A Tensor of the input's shape.
    """
    x = as_tensor(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(
        normalized_shape)
    k = len(shape)
    if not shape or x.shape[x.ndim - k:] != shape or x.ndim < k:
        raise ValueError(f"layer_norm: normalized_shape={shape} must equal the input's trailing "
                         f"dims, got input of shape {x.shape}")
    for label, t in (("weight", weight), ("bias", bias)):
        _check_param("layer_norm", label, t, shape)
    y, _, _ = _standardize(x, int(np.prod(x.shape[: x.ndim - k])), int(np.prod(shape)), eps)
    return _affine(y, weight, bias, shape)


def instance_norm(input: Any, running_mean: Any = None, running_var: Any = None,
                  weight: Any = None, bias: Any = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise every channel of every sample over its spatial cells.

    With ``use_input_stats`` (training, or no running statistics) the statistics
    are each instance's own, and the running statistics, if given, are updated
    in place with their mean over the batch (the variance unbiased), as PyTorch::

        running = (1 - momentum) * running + momentum * mean_over_N(instance statistic)

    Otherwise the running statistics normalise, as batch normalisation in eval mode.

    Args:
        input: ``(N, C, *spatial)``; ``N`` may be 0.
        running_mean, running_var: ``(C,)`` Tensors or arrays, or None.
        weight, bias: ``(C,)`` affine parameters, or None.
        use_input_stats: normalise with each instance's statistics.
        momentum: weight of the new statistics in the running average.
        eps: added to the variance.

    Returns:
        A Tensor of the input's shape.
    """
    x = as_tensor(input)
    if x.ndim < 3:
        raise ValueError(f"instance_norm: input must be (N, C, *spatial), got shape {x.shape}")
    n, c = x.shape[:2]
    rm, rv = _array(running_mean), _array(running_var)
    for label, t in (("weight", weight), ("bias", bias), ("running_mean", rm),
                     ("running_var", rv)):
        _check_param("instance_norm", label, t, (c,))
    if not use_input_stats:
        if rm is None or rv is None:
            raise ValueError("instance_norm: use_input_stats=False needs running_mean and "
                             "running_var")
        return batch_norm(x, rm, rv, weight, bias, False, momentum, eps)
    m = int(np.prod(x.shape[2:]))
    if m <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element when training, "
                         f"got input of shape {x.shape}")
    y, mean, var = _standardize(x, n * c, m, eps)
    if rm is not None and rv is not None and n:
        rm *= 1 - momentum
        rm += momentum * mean.reshape(n, c).mean(axis=0)
        rv *= 1 - momentum
        rv += momentum * (var.reshape(n, c) * (m / (m - 1))).mean(axis=0)
    return _affine(y, weight, bias, (1, c) + (1,) * (x.ndim - 2))


def local_response_norm(input: Any, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Divide each value by a power of the mean square over ``size`` neighbouring channels.

    ``y[n, c] = x[n, c] / (k + alpha * mean(x[n, c'] ** 2)) ** beta`` with ``c'`` over
    ``c - size//2 .. c + (size-1)//2`` (zeros outside the channels, counted in
    the mean), built as PyTorch builds it: zero padding along the channels,
    then average pooling.

    Args:
        input: ``(N, C, *spatial)``, at least 3 dims.
        size: channels in the neighbourhood.
        alpha, beta, k: the formula's constants.

    Returns:
        A Tensor of the input's shape.
    """
    from .pad import pad
    from .pool import avg_pool_nd

    x = as_tensor(input)
    if x.ndim < 3:
        raise ValueError(f"local_response_norm: input must have 3 or more dims (N, C, *spatial), "
                         f"got shape {x.shape}")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive int, got {size!r}")
    if x.data.size == 0:
        return x
    div = x * x
    if x.ndim == 3:
        div = pad(div.reshape((x.shape[0], 1) + x.shape[1:]), (0, 0, size // 2, (size - 1) // 2))
        div = avg_pool_nd(div, (size, 1), 1, nd=2).reshape(x.shape)
    else:
        n, c = x.shape[:2]
        div = div.reshape((n, 1, c, x.shape[2], -1))
        div = pad(div, (0, 0, 0, 0, size // 2, (size - 1) // 2))
        div = avg_pool_nd(div, (size, 1, 1), 1, nd=3).reshape(x.shape)
    return x / (div * alpha + k) ** beta


def dropout(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            generator: Any = None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1 - p)``.

    Outside training, with ``p = 0`` or on an empty input the input itself is
    returned; ``p = 1`` gives zeros.  The backward multiplies by the same mask
    (``dx = g * m``).  The mask is the one :func:`convprop.functional.dropout2d` and
    its relatives draw, one entry per element.

    Args:
        input: any shape.
        p: drop probability in [0, 1].
        training: apply dropout at all.
        inplace: make ``input`` hold the result (PyTorch's in-place rules: inside a
            graph it takes on the new history; a leaf that requires grad is refused).
        generator: a :class:`convprop.Generator` (or NumPy generator) for the mask;
            without one, convprop's default stream, which :func:`convprop.manual_seed` seeds.

    Returns:
        the input's shape.
    """
    p = _check_p("dropout", p)
    return _dropout("dropout", as_tensor(input), p, training, inplace, False, False, generator)

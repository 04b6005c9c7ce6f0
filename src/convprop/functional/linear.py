"""``F.linear``: the affine map of a fully connected layer, one fused op."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor, as_tensor, check_same_dtype


def linear(input: Any, weight: Any, bias: Any = None) -> Tensor:
    """``y = x @ W.T + b`` over the last axis, as ``torch.nn.functional.linear``.

    The backward is written out rather than composed from a transpose, a matmul
    and an add, so one call records one graph node::

        dx = g @ W          dW = g^T @ x          db = sum of g over leading axes

    (with ``x`` and ``g`` flattened to 2-D over their leading axes).

    Args:
        input: ``(*, in_features)``.
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or None.

    Returns:
        ``(*, out_features)``, in the arguments' dtype.

    Raises:
        TypeError: if the arguments' dtypes differ (a float32 model given float64
            input), as in PyTorch; convert one side with ``.float()``/``.double()``.
    """
    x, w = as_tensor(input), as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input's last dim must be in_features={w.shape[1]}, got input shape {x.shape}"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"linear: bias must have shape ({w.shape[0]},), got {b.shape}")
    check_same_dtype("linear", input=x, weight=w, bias=b)

    xs, wd = x.data, w.data
    x2 = xs.reshape(-1, wd.shape[1])
    y = x2 @ wd.T
    if b is not None:
        y += b.data
    out_shape = xs.shape[:-1] + (wd.shape[0],)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        g2 = g.reshape(-1, wd.shape[0])
        gx = (g2 @ wd).reshape(xs.shape) if x.requires_grad else None
        gw = g2.T @ x2 if w.requires_grad else None
        if b is None:
            return gx, gw
        return gx, gw, (g2.sum(axis=0) if b.requires_grad else None)

    def double(g: Tensor) -> tuple[Tensor | None, ...]:  # the same rule with Tensor ops
        g2 = g.reshape(-1, wd.shape[0])
        gx = (g2 @ w).reshape(xs.shape) if x.requires_grad else None
        gw = g2.t() @ x.reshape(-1, wd.shape[1]) if w.requires_grad else None
        if b is None:
            return gx, gw
        return gx, gw, (g2.sum(0) if b.requires_grad else None)

    parents = (x, w) if b is None else (x, w, b)
    return Tensor._wrap(y.reshape(out_shape), parents, backward, double)

"""Loss functions, each one fused op: the loss and its gradient side by side.

Every loss takes ``reduction``: ``'none'`` (the per-element losses),
``'sum'`` or ``'mean'`` (PyTorch's default).  The founding document's loss
``L = sum (o - y)^2`` is ``mse_loss(o, y, reduction='sum')``.

The class-index losses (:func:`cross_entropy`, :func:`nll_loss`) take input
``(N, C)``, ``(N, C, d1, ...)`` or unbatched ``(C,)`` and integer targets of
the input's shape without the class axis; a ``weight`` per class rescales each
term, and ``'mean'`` divides by the summed weights of the non-ignored targets,
as PyTorch does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..autograd import Tensor, as_tensor
from .activation import log_softmax_array

REDUCTIONS = ("mean", "sum", "none")
_BCE_EPS = float(np.float32(1e-12))  # PyTorch's clamp, a float32 constant


class TargetError(IndexError, ValueError):
    """A class target outside ``[0, C)``.  PyTorch raises ``IndexError`` here; it is
    also a ``ValueError``, which is what it is."""


def _check_reduction(reduction: str, name: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(losses: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return losses
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(losses.sum() if reduction == "sum" else losses.mean())


def _per_element(g: np.ndarray, shape: tuple[int, ...], reduction: str) -> np.ndarray:
    """The upstream gradient as seen by each element's loss (the adjoint of :func:`_reduce`)."""
    if reduction == "none":
        return g
    if reduction == "mean":
        count = int(np.prod(shape))
        g = g / count if count else np.full_like(g, np.nan)
    return np.broadcast_to(g, shape)


def _pair(input: Any, target: Any, name: str) -> tuple[Tensor, Tensor]:
    x, y = as_tensor(input), as_tensor(target)
    if x.shape != y.shape:
        raise ValueError(
            f"{name}: input shape {x.shape} and target shape {y.shape} must be equal"
        )
    return x, y


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error ``(x - y)^2``, reduced; ``reduction='sum'`` is the document's
    ``L = sum (o - y)^2``.

    Args:
        input: any shape.
        target: same shape as ``input`` (differentiable too).
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.

    Returns:
        A scalar, or the per-element losses (input's shape) for ``'none'``.
    """
    _check_reduction(reduction, "mse_loss")
    x, y = _pair(input, target, "mse_loss")
    d = x.data - y.data

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gx = 2 * d * _per_element(g, d.shape, reduction)
        return gx, -gx

    return Tensor._wrap(_reduce(d * d, reduction), (x, y), backward)


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Absolute error ``|x - y|``, reduced; the gradient at ``x == y`` is 0.

    Args:
        input: any shape.
        target: same shape as ``input`` (differentiable too).
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
    """
    _check_reduction(reduction, "l1_loss")
    x, y = _pair(input, target, "l1_loss")
    d = x.data - y.data

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gx = np.sign(d) * _per_element(g, d.shape, reduction)
        return gx, -gx

    return Tensor._wrap(_reduce(np.abs(d), reduction), (x, y), backward)


def _plain(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def binary_cross_entropy(input: Any, target: Any, weight: Any = None,
                         reduction: str = "mean") -> Tensor:
    """``-w [y log x + (1 - y) log(1 - x)]`` for probabilities ``x`` in [0, 1].

    Each log is clamped at -100, as in PyTorch, so a saturated ``x`` costs at
    most 100 instead of ``inf``; the input gradient divides by
    ``max(x (1 - x), 1e-12)`` for the same reason.

    Args:
        input: probabilities, any shape.
        target: same shape, usually in [0, 1] (differentiable too).
        weight: optional rescaling, broadcastable to the input (no gradient).
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
    """
    _check_reduction(reduction, "binary_cross_entropy")
    x, y = _pair(input, target, "binary_cross_entropy")
    p, t, w = x.data, y.data, _plain(weight)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("binary_cross_entropy: every input must be in [0, 1] (probabilities); "
                         "use binary_cross_entropy_with_logits for raw scores")
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), -100)
        log_q = np.maximum(np.log1p(-p), -100)
    losses = -(t * log_p + (1 - t) * log_q)
    if w is not None:
        losses = losses * w

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ge = _per_element(g, p.shape, reduction)
        if w is not None:
            ge = ge * w
        gx = ge * (p - t) / np.maximum(p * (1 - p), _BCE_EPS)
        return gx, ge * (log_q - log_p)

    return Tensor._wrap(_reduce(losses.astype(p.dtype, copy=False), reduction), (x, y), backward)


def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """Binary cross-entropy of ``sigmoid(x)``, computed from the logits ``x`` stably.

    With ``l_w = 1 + (pos_weight - 1) y`` the loss is
    ``(1 - y) x + l_w softplus(-x)``, where ``softplus(-x) = log(1 + e^-|x|) + max(-x, 0)``
    never overflows.  Its gradients: ``d/dx = (1 - y) - l_w sigmoid(-x)``,
    ``d/dy = -x + (pos_weight - 1) softplus(-x)``.

    Args:
        input: logits, any shape.
        target: same shape (differentiable too).
        weight: optional rescaling, broadcastable to the input (no gradient).
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
        pos_weight: optional weight of positive examples, broadcast along the
            last axis (one per class).
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    x, y = _pair(input, target, "binary_cross_entropy_with_logits")
    z, t, w, pw = x.data, y.data, _plain(weight), _plain(pos_weight)
    softplus_neg = np.log1p(np.exp(-np.abs(z))) + np.maximum(-z, 0)
    lw = 1 if pw is None else 1 + (pw - 1) * t
    losses = (1 - t) * z + lw * softplus_neg
    if w is not None:
        losses = losses * w

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ge = _per_element(g, z.shape, reduction)
        if w is not None:
            ge = ge * w
        e = np.exp(-np.abs(z))  # sigmoid(-z) without overflow
        sig_neg = np.where(z >= 0, e / (1 + e), 1 / (1 + e))
        gx = ge * ((1 - t) - lw * sig_neg)
        gy = ge * (-z if pw is None else -z + (pw - 1) * softplus_neg)
        return gx, gy

    return Tensor._wrap(_reduce(losses.astype(z.dtype, copy=False), reduction), (x, y), backward)


def _class_targets(x: Tensor, target: Any, weight: Any, ignore_index: int, name: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """Input as ``(M, C)`` rows, targets ``(M,)`` (ignored ones set to 0), the per-row
    weights (0 where ignored), and the target shape."""
    if x.ndim < 1:
        raise ValueError(f"{name}: input must have a class axis, got a scalar")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    expected = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    if t.shape != expected:
        raise ValueError(
            f"{name}: input of shape {x.shape} needs class-index targets of shape {expected}, "
            f"got {t.shape} (probability targets are not supported)"
        )
    if t.dtype.kind == "f":
        if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
            raise ValueError(f"{name}: targets must be integer class indices, got non-integers")
        t = t.astype(np.int64)
    elif t.dtype.kind not in "iu":
        raise TypeError(f"{name}: targets must be integer class indices, got dtype {t.dtype}")
    c = x.shape[1] if x.ndim > 1 else x.shape[0]
    t = t.reshape(-1).astype(np.int64, copy=False)
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= c))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        where = np.unravel_index(first, expected) if expected else ()
        raise TargetError(
            f"{name}: target {int(t[first])} at position {tuple(int(i) for i in where)} is out "
            f"of range for {c} classes (valid: 0..{c - 1}, or ignore_index={ignore_index})"
        )
    t = np.where(keep, t, 0)
    if weight is None:
        row_w = keep.astype(x.dtype)
    else:
        w = _plain(weight)
        if w.shape != (c,):
            raise ValueError(f"{name}: weight must have shape ({c},), got {w.shape}")
        row_w = np.where(keep, w[t], 0).astype(x.dtype)
    a = x.data
    rows = a.reshape(1, c) if a.ndim == 1 else (
        a if a.ndim == 2 else np.moveaxis(a, 1, -1).reshape(-1, c))
    return rows, t, row_w, expected


def _unrows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of the ``(M, C)`` layout of :func:`_class_targets`."""
    if len(shape) <= 2:
        return rows.reshape(shape)
    moved = rows.reshape(shape[:1] + shape[2:] + shape[1:2])
    return np.moveaxis(moved, -1, 1)


def _class_loss(x: Tensor, rows_logp: np.ndarray, t: np.ndarray, row_w: np.ndarray,
                expected: tuple[int, ...], reduction: str,
                grad_rows: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
                ) -> Tensor:
    """Shared reduction of ``-w_t * logp[t]`` and the backward scaffolding."""
    m = np.arange(t.size)
    losses = -row_w * rows_logp[m, t]
    if reduction == "none":
        out = losses.reshape(expected)
    elif reduction == "sum":
        out = np.asarray(losses.sum())
    else:
        total = row_w.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.asarray(losses.sum() / total)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        if reduction == "none":
            coef = g.reshape(-1) * row_w
        elif reduction == "sum":
            coef = g * row_w
        else:
            if total == 0:
                # every target ignored: the loss is 0/0 = nan (as in torch), the gradient zero
                return (np.zeros(x.shape, dtype=x.dtype),)
            coef = g * row_w / total
        return (_unrows(grad_rows(coef, m, t), x.shape),)

    return Tensor._wrap(out.astype(x.dtype, copy=False), (x,), backward)


def cross_entropy(input: Any, target: Any, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean") -> Tensor:
    """``-w[t] log softmax(x)[t]``: log-softmax and negative log-likelihood in one stable op.

    Backward, per row: ``coef * (softmax(x) - onehot(t))`` with ``coef`` the
    row's weight times the reduced upstream gradient.

    Args:
        input: logits ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``.
        target: class indices (int array, or a Tensor holding integers) of
            shape ``(N,)``, ``(N, d1, ...)`` or ``()``.
        weight: optional ``(C,)`` per-class weight.
        ignore_index: targets equal to this contribute nothing.
        reduction: ``'mean'`` (weighted mean over non-ignored targets), ``'sum'`` or ``'none'``.

    Raises:
        TargetError: (an ``IndexError`` and ``ValueError``) for a target outside ``[0, C)``.
    """
    _check_reduction(reduction, "cross_entropy")
    x = as_tensor(input)
    rows, t, row_w, expected = _class_targets(x, target, weight, ignore_index, "cross_entropy")
    logp = log_softmax_array(rows, 1)

    def grad_rows(coef: np.ndarray, m: np.ndarray, t: np.ndarray) -> np.ndarray:
        d = np.exp(logp)
        d[m, t] -= 1
        d *= coef[:, None]
        return d

    return _class_loss(x, logp, t, row_w, expected, reduction, grad_rows)


def nll_loss(input: Any, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood ``-w[t] x[t]`` of log-probabilities ``x``.

    Args and shapes as :func:`cross_entropy`; ``input`` holds log-probabilities
    (e.g. from :func:`log_softmax`).  ``cross_entropy(x, t) == nll_loss(log_softmax(x, 1), t)``.
    """
    _check_reduction(reduction, "nll_loss")
    x = as_tensor(input)
    rows, t, row_w, expected = _class_targets(x, target, weight, ignore_index, "nll_loss")

    def grad_rows(coef: np.ndarray, m: np.ndarray, t: np.ndarray) -> np.ndarray:
        d = np.zeros(rows.shape, dtype=rows.dtype)
        d[m, t] = -coef
        return d

    return _class_loss(x, rows, t, row_w, expected, reduction, grad_rows)

"""Loss functions, each one fused op: the loss and its gradient side by side.

Every loss takes ``reduction``: ``'none'`` (the per-element losses),
``'sum'`` or ``'mean'`` (PyTorch's default).  The founding document's loss
``L = sum (o - y)^2`` is ``mse_loss(o, y, reduction='sum')``.

The class-index losses (:func:`cross_entropy`, :func:`nll_loss`) take input
``(N, C)``, ``(N, C, d1, ...)`` or unbatched ``(C,)`` and integer targets of
the input's shape without the class axis; a ``weight`` per class rescales each
term, and ``'mean'`` divides by the summed weights of the non-ignored targets,
as PyTorch does.  :func:`cross_entropy` also takes class-probability targets
(the input's shape) and ``label_smoothing``.

The deprecated ``size_average``/``reduce`` pair is accepted where PyTorch still
has it and mapped to ``reduction`` as PyTorch maps it (with its warning).  A
loss whose target PyTorch cannot differentiate (class indices, the ±1 labels
of the margin losses) gives the target no gradient.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..autograd import Tensor, _unbroadcast_graph, as_tensor, unbroadcast
from .activation import _softplus, _stable_sigmoid, log_softmax, log_softmax_array, softmax, softplus

REDUCTIONS = ("mean", "sum", "none")
_BCE_EPS = float(np.float32(1e-12))  # PyTorch's clamp, a float32 constant


class TargetError(IndexError, ValueError):
    """A class target outside ``[0, C)``.  PyTorch raises ``IndexError`` here; it is
    also a ``ValueError``, which is what it is."""


def _check_reduction(reduction: str, name: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's mapping of the deprecated ``size_average``/``reduce`` flags (when
    either is given) onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    new = "mean" if size_average and reduce else ("sum" if reduce else "none")
    warnings.warn(f"size_average and reduce args will be deprecated, please use "
                  f"reduction='{new}' instead.", UserWarning, stacklevel=3)
    return new


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


def _per_element_graph(g: Tensor, shape: tuple[int, ...], reduction: str) -> Tensor:
    """:func:`_per_element` with Tensor ops, for higher-order gradients."""
    if reduction == "none":
        return g
    if reduction == "mean":
        count = int(np.prod(shape))
        g = g / count if count else g * np.nan
    return g.expand(shape)


def _pair(input: Any, target: Any, name: str) -> tuple[Tensor, Tensor]:
    x, y = as_tensor(input), as_tensor(target)
    if x.shape != y.shape:
        raise ValueError(
            f"{name}: input shape {x.shape} and target shape {y.shape} must be equal"
        )
    return x, y


def _weighted_pointwise(name: str, input: Any, target: Any, weight: Any, reduction: str,
                        loss: Callable[[np.ndarray], np.ndarray],
                        slope: Callable[[np.ndarray], np.ndarray],
                        slope_graph: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """An element-wise loss of ``d = x - y``; with a ``weight`` of the input's shape,
    ``'mean'`` is ``sum(w loss) / sum(w)`` (PyTorch's rule for mse and l1)."""
    _check_reduction(reduction, name)
    x, y = _pair(input, target, name)
    w = _plain(weight)
    if w is not None and w.shape != x.shape:
        raise ValueError(f"{name}: weight must have the input's shape {x.shape}, got {w.shape}")
    d = x.data - y.data
    scale = 1.0 if w is None else (1.0 / w.sum() if reduction == "mean" else 1.0)

    def slopes_graph() -> list[Tensor]:  # the slopes as Tensor ops of x and y
        sg = slope_graph(x - y)
        if w is not None:
            sg = sg * Tensor._wrap(np.asarray(w * scale))
        return [sg, -sg]

    graph = None if slope_graph is None else slopes_graph
    if w is None:
        return _pointwise_loss(loss(d), (x, y), lambda: [slope(d), -slope(d)], reduction, x.dtype,
                               graph)
    inner = "sum" if reduction == "mean" else reduction

    def slopes() -> list[np.ndarray]:
        s = slope(d) * w * scale
        return [s, -s]

    return _pointwise_loss(loss(d) * w * scale, (x, y), slopes, inner, x.dtype, graph)


def mse_loss(input: Any, target: Any, size_average: bool | None = None,
             reduce: bool | None = None, reduction: str = "mean", weight: Any = None) -> Tensor:
    """Squared error ``(x - y)^2``, reduced; ``reduction='sum'`` is the document's
    ``L = sum (o - y)^2``.

    Args:
        input: any shape.
        target: same shape as ``input`` (differentiable too).
        size_average, reduce: deprecated; mapped onto ``reduction`` as PyTorch does.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
        weight: optional per-element weights of the input's shape (no gradient);
            ``'mean'`` then divides by their sum.

    Returns:
        A scalar, or the per-element losses (input's shape) for ``'none'``.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _weighted_pointwise("mse_loss", input, target, weight, reduction,
                               lambda d: d * d, lambda d: 2 * d, lambda d: 2 * d)


def l1_loss(input: Any, target: Any, size_average: bool | None = None,
            reduce: bool | None = None, reduction: str = "mean", weight: Any = None) -> Tensor:
    """Absolute error ``|x - y|``, reduced; the gradient at ``x == y`` is 0.

    Args as :func:`mse_loss`.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _weighted_pointwise("l1_loss", input, target, weight, reduction, np.abs, np.sign,
                               lambda d: Tensor._wrap(np.sign(d.data)))


def _plain(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def binary_cross_entropy(input: Any, target: Any, weight: Any = None,
                         size_average: bool | None = None, reduce: bool | None = None,
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
    reduction = _legacy_reduction(size_average, reduce, reduction)
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

    def double(g: Tensor) -> tuple[Tensor, Tensor]:
        ge = _per_element_graph(g, p.shape, reduction)
        if w is not None:
            ge = ge * Tensor._wrap(np.asarray(w))
        gx = ge * (x - y) / (x * (1 - x)).clamp(min=_BCE_EPS)
        return gx, ge * ((1 - x).log().clamp(min=-100) - x.log().clamp(min=-100))

    return Tensor._wrap(_reduce(losses.astype(p.dtype, copy=False), reduction), (x, y), backward,
                        double)


def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any = None,
                                     size_average: bool | None = None,
                                     reduce: bool | None = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
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
    reduction = _legacy_reduction(size_average, reduce, reduction)
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

    def double(g: Tensor) -> tuple[Tensor, Tensor]:
        ge = _per_element_graph(g, z.shape, reduction)
        if w is not None:
            ge = ge * Tensor._wrap(np.asarray(w))
        pwt = None if pw is None else Tensor._wrap(np.asarray(pw))
        lwt = 1 if pwt is None else 1 + (pwt - 1) * y
        gx = ge * ((1 - y) - lwt * (-x).sigmoid())
        gy = ge * (-x if pwt is None else -x + (pwt - 1) * softplus(-x))
        return gx, gy

    return Tensor._wrap(_reduce(losses.astype(z.dtype, copy=False), reduction), (x, y), backward,
                        double)


def _class_targets(x: Tensor, target: Any, weight: Any, ignore_index: int, name: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """Input as ``(M, C)`` rows, targets ``(M,)`` (ignored ones set to 0), the mask of
    kept rows, the per-row weights (0 where ignored), and the target shape."""
    if x.ndim < 1:
        raise ValueError(f"{name}: input must have a class axis, got a scalar")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    expected = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    if t.shape != expected:
        raise ValueError(
            f"{name}: input of shape {x.shape} needs class-index targets of shape {expected}"
            + (" or class probabilities of the input's shape" if name == "cross_entropy" else "")
            + f", got {t.shape}"
        )
    if t.dtype.kind == "f":
        if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
            raise ValueError(f"{name}: targets must be integer class indices, got non-integers")
        t = t.astype(np.int64)
    elif t.dtype.kind not in "iu":
        raise TypeError(f"{name}: targets must be integer class indices, got dtype {t.dtype}")
    c = _classes(x)
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
    w = _class_weight(weight, c, name)
    row_w = np.where(keep, 1.0 if w is None else w[t], 0).astype(x.dtype)
    return _rows(x.data), t, keep, row_w, expected


def _classes(x: Tensor) -> int:
    return x.shape[1] if x.ndim > 1 else x.shape[0]


def _class_weight(weight: Any, c: int, name: str) -> np.ndarray | None:
    w = _plain(weight)
    if w is not None and w.shape != (c,):
        raise ValueError(f"{name}: weight must have shape ({c},) (one per class), got {w.shape}")
    return w


def _rows(a: np.ndarray) -> np.ndarray:
    """``(N, C, d1, ...)`` (or ``(C,)``) as ``(M, C)`` rows, class axis last."""
    c = a.shape[1] if a.ndim > 1 else a.shape[0]
    if a.ndim == 1:
        return a.reshape(1, c)
    return a if a.ndim == 2 else np.moveaxis(a, 1, -1).reshape(-1, c)


def _unrows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`_rows`."""
    if len(shape) <= 2:
        return rows.reshape(shape)
    moved = rows.reshape(shape[:1] + shape[2:] + shape[1:2])
    return np.moveaxis(moved, -1, 1)


def _rows_graph(x: Tensor) -> Tensor:
    """:func:`_rows` with Tensor ops."""
    c = _classes(x)
    if x.ndim == 1:
        return x.reshape(1, c)
    return x if x.ndim == 2 else x.permute((0,) + tuple(range(2, x.ndim)) + (1,)).reshape(-1, c)


def _unrows_graph(rows: Tensor, shape: tuple[int, ...]) -> Tensor:
    """:func:`_unrows` with Tensor ops."""
    if len(shape) <= 2:
        return rows.reshape(shape)
    moved = rows.reshape(shape[:1] + shape[2:] + shape[1:2])
    return moved.permute((0, len(shape) - 1) + tuple(range(1, len(shape) - 1)))


def _row_loss(x: Tensor, losses: np.ndarray, total: float, shape: tuple[int, ...],
              reduction: str, grad_rows: Callable[[np.ndarray], Sequence[np.ndarray | None]],
              parents: tuple[Tensor, ...],
              grad_rows_graph: Callable[[Tensor], Sequence[Tensor | None]] | None = None
              ) -> Tensor:
    """Reduce per-row losses (``'mean'`` divides by ``total``) and scaffold the backward:
    ``grad_rows(coef)`` gets each row's share of the upstream gradient and returns one
    gradient per parent, in the parents' own layout."""
    if reduction == "none":
        out = losses.reshape(shape)
    elif reduction == "sum":
        out = np.asarray(losses.sum())
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.asarray(losses.sum() / total)

    def backward(g: np.ndarray) -> Sequence[np.ndarray | None]:
        if reduction == "none":
            coef = g.reshape(-1)
        elif reduction == "sum":
            coef = np.full(losses.shape, g)
        else:
            if total == 0:
                # nothing counted: the loss is 0/0 = nan (as in torch), the gradient zero
                return tuple(np.zeros(p.shape, dtype=p.dtype) for p in parents)
            coef = np.full(losses.shape, g / total)
        return grad_rows(coef)

    def double(g: Tensor) -> Sequence[Tensor | None]:  # the same scaffold with Tensor ops
        if reduction == "none":
            coef = g.reshape(-1)
        elif reduction == "sum":
            coef = g.expand(losses.shape)
        else:
            if total == 0:
                return tuple(Tensor._wrap(np.zeros(p.shape, dtype=p.dtype)) for p in parents)
            coef = (g / total).expand(losses.shape)
        return grad_rows_graph(coef)

    return Tensor._wrap(out.astype(x.dtype, copy=False), parents, backward,
                        None if grad_rows_graph is None else double)


def cross_entropy(input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
                  ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """``-sum_c q_c log softmax(x)_c``: log-softmax and negative log-likelihood in one stable op.

    With class-index targets ``t`` and smoothing ``ε``, ``q = (1 - ε) w[t] onehot(t) +
    (ε / C) w`` (``w`` the class weights, 1 without ``weight``); ``'mean'`` divides by the
    summed ``w[t]`` of the non-ignored targets.  With probability targets ``p`` (the
    input's shape), ``q = w ((1 - ε) p + ε / C)`` and ``'mean'`` divides by the number of
    rows.  Backward, per row: ``coef * (sum(q) softmax(x) - q)``; for probability
    targets also ``d/dp = -(1 - ε) w log softmax(x)``.

    Args:
        input: logits ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``.
        target: class indices (int array, or a Tensor holding integers) of shape ``(N,)``,
            ``(N, d1, ...)`` or ``()``; or class probabilities of the input's shape
            (floating, differentiable).
        weight: optional ``(C,)`` per-class weight.
        size_average, reduce: deprecated; mapped onto ``reduction`` as PyTorch does.
        ignore_index: class-index targets equal to this contribute nothing (not
            allowed with probability targets).
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (the per-target losses).
        label_smoothing: ``ε`` in [0, 1].

    Raises:
        TargetError: (an ``IndexError`` and ``ValueError``) for a target outside ``[0, C)``.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    x = as_tensor(input)
    eps = float(label_smoothing)
    target_shape = target.shape if isinstance(target, Tensor) else np.shape(target)
    if x.ndim >= 1 and tuple(target_shape) == x.shape:
        return _cross_entropy_probs(x, target, weight, ignore_index, reduction, eps)
    rows, t, keep, row_w, expected = _class_targets(x, target, weight, ignore_index,
                                                    "cross_entropy")
    c = rows.shape[1]
    logp = log_softmax_array(rows, 1)
    m = np.arange(t.size)
    q = np.zeros_like(rows)
    q[m, t] = (1 - eps) * row_w
    if eps:
        w = _class_weight(weight, c, "cross_entropy")
        q += (eps / c) * keep[:, None] * (1.0 if w is None else w[None, :])
    losses = -(q * logp).sum(axis=1)

    def grad_rows(coef: np.ndarray) -> tuple[np.ndarray]:
        d = q.sum(axis=1, keepdims=True) * np.exp(logp) - q
        return (_unrows(d * coef[:, None], x.shape),)

    def grad_rows_graph(coef: Tensor) -> tuple[Tensor]:
        qt = Tensor._wrap(q)
        d = Tensor._wrap(q.sum(axis=1, keepdims=True)) * softmax(_rows_graph(x), 1) - qt
        return (_unrows_graph(d * coef.unsqueeze(1), x.shape),)

    return _row_loss(x, losses, row_w.sum(), expected, reduction, grad_rows, (x,),
                     grad_rows_graph)


def _cross_entropy_probs(x: Tensor, target: Any, weight: Any, ignore_index: int,
                         reduction: str, eps: float) -> Tensor:
    """:func:`cross_entropy` with class-probability targets of the input's shape."""
    y = as_tensor(target)
    if target is not y and np.asarray(target).dtype.kind != "f":
        raise TypeError(f"cross_entropy: class-probability targets must be floating, got dtype "
                        f"{np.asarray(target).dtype}")
    if ignore_index != -100:
        raise ValueError("cross_entropy: ignore_index is not supported for class-probability "
                         "targets")
    c = _classes(x)
    w = _class_weight(weight, c, "cross_entropy")
    wr = np.ones((1, c)) if w is None else w.reshape(1, c)
    rows, p = _rows(x.data), _rows(y.data)
    logp = log_softmax_array(rows, 1)
    q = wr * ((1 - eps) * p + eps / c)
    losses = -(q * logp).sum(axis=1)
    shape = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()

    def grad_rows(coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gx = (q.sum(axis=1, keepdims=True) * np.exp(logp) - q) * coef[:, None]
        gy = -(1 - eps) * wr * logp * coef[:, None]
        return _unrows(gx, x.shape), _unrows(gy, x.shape)

    def grad_rows_graph(coef: Tensor) -> tuple[Tensor, Tensor]:
        wt = Tensor._wrap(wr.astype(x.dtype))
        qt = wt * ((1 - eps) * _rows_graph(y) + eps / c)
        xr, cf = _rows_graph(x), coef.unsqueeze(1)
        gx = (qt.sum(1, keepdim=True) * softmax(xr, 1) - qt) * cf
        gy = -(1 - eps) * wt * log_softmax(xr, 1) * cf
        return _unrows_graph(gx, x.shape), _unrows_graph(gy, x.shape)

    return _row_loss(x, losses, float(rows.shape[0]), shape, reduction, grad_rows, (x, y),
                     grad_rows_graph)


def nll_loss(input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
             ignore_index: int = -100, reduce: bool | None = None,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood ``-w[t] x[t]`` of log-probabilities ``x``.

    Args and shapes as :func:`cross_entropy` (class indices only); ``input`` holds
    log-probabilities (e.g. from :func:`log_softmax`).
    ``cross_entropy(x, t) == nll_loss(log_softmax(x, 1), t)``.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "nll_loss")
    x = as_tensor(input)
    rows, t, _, row_w, expected = _class_targets(x, target, weight, ignore_index, "nll_loss")
    m = np.arange(t.size)

    def grad_rows(coef: np.ndarray) -> tuple[np.ndarray]:
        d = np.zeros(rows.shape, dtype=rows.dtype)
        d[m, t] = -coef * row_w
        return (_unrows(d, x.shape),)

    def grad_rows_graph(coef: Tensor) -> tuple[Tensor]:  # linear in coef: a fixed one-hot
        onehot = np.zeros(rows.shape, dtype=rows.dtype)
        onehot[m, t] = -row_w
        return (_unrows_graph(coef.unsqueeze(1) * Tensor._wrap(onehot), x.shape),)

    return _row_loss(x, -row_w * rows[m, t], row_w.sum(), expected, reduction, grad_rows, (x,),
                     grad_rows_graph)


# ----------------------------------------------------------- regression losses
def _pointwise_loss(losses: np.ndarray, parents: tuple[Tensor, ...],
                    slopes: Callable[[], Sequence[np.ndarray | None]], reduction: str,
                    dtype: np.dtype,
                    slopes_graph: Callable[[], Sequence[Tensor | None]] | None = None) -> Tensor:
    """Reduce element-wise losses; the backward scales each parent's local derivative
    (``slopes()``, ``None`` for no gradient) by the upstream gradient per element."""

    def backward(g: np.ndarray) -> list[np.ndarray | None]:
        ge = _per_element(g, losses.shape, reduction)
        return [None if s is None else ge * s for s in slopes()]

    def double(g: Tensor) -> list[Tensor | None]:
        ge = _per_element_graph(g, losses.shape, reduction)
        return [None if s is None else ge * s for s in slopes_graph()]

    out = _reduce(np.asarray(losses), reduction)
    return Tensor._wrap(out.astype(dtype, copy=False), parents, backward,
                        None if slopes_graph is None else double)


def smooth_l1_loss(input: Any, target: Any, size_average: bool | None = None,
                   reduce: bool | None = None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """``0.5 d² / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = x - y``);
    ``beta = 0`` is the L1 loss.  Derivative in ``d``: ``d / beta`` inside, ``sign(d)`` outside.

    Args:
        input: any shape.
        target: same shape (differentiable too).
        beta: the width of the quadratic zone, >= 0.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    x, y = _pair(input, target, "smooth_l1_loss")
    d = x.data - y.data
    if beta == 0:
        return l1_loss(x, y, reduction=reduction)
    small = np.abs(d) < beta
    losses = np.where(small, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta)

    def slopes() -> list[np.ndarray]:
        s = np.where(small, d / beta, np.sign(d))
        return [s, -s]

    def slopes_graph() -> list[Tensor]:
        sg = ((x - y) / beta).where(small, Tensor._wrap(np.sign(d)))
        return [sg, -sg]

    return _pointwise_loss(losses, (x, y), slopes, reduction, x.dtype, slopes_graph)


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0,
               weight: Any = None) -> Tensor:
    """``0.5 d²`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``; the derivative
    is ``clip(d, -delta, delta)``.  ``huber_loss = delta * smooth_l1_loss(beta=delta)``.

    Args:
        input: any shape.
        target: same shape (differentiable too).
        delta: where the loss turns linear, > 0.
        weight: optional per-element weights of the input's shape (no gradient).
    """
    _check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    x, y = _pair(input, target, "huber_loss")
    w = _plain(weight)
    if w is not None and w.shape != x.shape:
        raise ValueError(f"huber_loss: weight must have the input's shape {x.shape}, got {w.shape}")
    d = x.data - y.data
    z = np.abs(d)
    losses = np.where(z < delta, 0.5 * d * d, delta * (z - 0.5 * delta))
    if w is not None:
        losses = losses * w

    def slopes() -> list[np.ndarray]:
        s = np.clip(d, -delta, delta) * (1 if w is None else w)
        return [s, -s]

    def slopes_graph() -> list[Tensor]:
        sg = (x - y).clamp(-delta, delta)
        if w is not None:
            sg = sg * Tensor._wrap(np.asarray(w))
        return [sg, -sg]

    return _pointwise_loss(losses, (x, y), slopes, reduction, x.dtype, slopes_graph)


def kl_div(input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence of ``target`` from ``exp(input)``, element-wise
    ``y (log y - x)`` (``0`` where ``y = 0``), or ``e^y (y - x)`` with ``log_target``.

    Args:
        input: log-probabilities, any shape.
        target: probabilities (log-probabilities with ``log_target``), same shape;
            differentiable too.
        reduction: ``'batchmean'`` (the sum over the batch size ``input.shape[0]``, the
            mathematical KL divergence), ``'sum'``, ``'none'``, or ``'mean'`` (over every
            element, as PyTorch, with its warning).

    Derivatives: ``d/dx = -y`` (``-e^y``); ``d/dy = log y + 1 - x`` (``e^y (y - x + 1)``).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in REDUCTIONS + ("batchmean",):
        raise ValueError(f"kl_div: reduction must be one of {REDUCTIONS + ('batchmean',)}, "
                         f"got {reduction!r}")
    if reduction == "mean" and size_average is None and reduce is None:
        warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch size "
                      "and the support size; 'batchmean' divides only by the batch size and "
                      "matches the definition of the KL divergence (as PyTorch warns)",
                      UserWarning, stacklevel=2)
    x, y = _pair(input, target, "kl_div")
    a, t = x.data, y.data
    with np.errstate(divide="ignore", invalid="ignore"):
        if log_target:
            et = np.exp(t)
            losses = et * (t - a)
        else:
            losses = np.where(t == 0, 0.0, t * np.log(t)) - t * a
    inner = "sum" if reduction == "batchmean" else reduction
    scale = 1.0
    if reduction == "batchmean" and a.ndim:  # an empty batch: 0 / 0 = nan, as torch
        scale = 1.0 / a.shape[0] if a.shape[0] else math.nan

    def slopes() -> list[np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            if log_target:
                return [-et, et * (t - a + 1)]
            # PyTorch differentiates xlogy(y, y): at y = 0 that is 0 + 0/0 = nan
            return [-t, np.where(t != 0, np.log(t), 0.0) + t / t - a]

    def slopes_graph() -> list[Tensor]:
        if log_target:
            return [-y.exp(), y.exp() * (y - x + 1)]
        return [-y, y.log().where(t != 0, 0.0) + y / y - x]

    out = _pointwise_loss(losses, (x, y), slopes, inner, x.dtype, slopes_graph)
    return out if scale == 1.0 else out * scale


def poisson_nll_loss(input: Any, target: Any, log_input: bool = True, full: bool = False,
                     size_average: bool | None = None, eps: float = 1e-8,
                     reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of ``target ~ Poisson(λ)``: ``e^x - y x`` with ``λ = e^x``
    (``log_input``), else ``x - y log(x + eps)``.

    ``full`` adds Stirling's ``y log y - y + 0.5 log(2π y)`` where ``y > 1``.

    Args:
        input: ``log λ`` (or ``λ``), any shape.
        target: counts, same shape (differentiable too).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "poisson_nll_loss")
    x, y = _pair(input, target, "poisson_nll_loss")
    a, t = x.data, y.data
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if log_input:
            ea = np.exp(a)
            losses = ea - t * a
        else:
            la = np.log(a + eps)
            losses = a - t * la
        big = t > 1
        if full:
            ts = np.where(big, t, 2.0)
            losses = losses + np.where(big, ts * np.log(ts) - ts + 0.5 * np.log(2 * np.pi * ts), 0)

    def slopes() -> list[np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            dx, dy = (ea - t, -a) if log_input else (1 - t / (a + eps), -la)
            if full:
                # PyTorch masks Stirling's term after computing it, so its zeroed gradient
                # still meets log(0) at y = 0: 0 * -inf = nan there, as in torch
                dy = dy + np.where(big, np.log(ts) + 0.5 / ts, 0 * (np.log(t) + 0.5 / t))
        return [dx, dy]

    def slopes_graph() -> list[Tensor]:  # (Stirling's term, full=True, has no rule)
        if log_input:
            return [x.exp() - y, -x]
        return [1 - y / (x + eps), -(x + eps).log()]

    return _pointwise_loss(losses, (x, y), slopes, reduction, x.dtype,
                           None if full else slopes_graph)


def gaussian_nll_loss(input: Any, target: Any, var: Any, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of ``target ~ N(input, var)``:
    ``0.5 (log v + (x - y)² / v)`` with ``v = max(var, eps)`` (+ ``0.5 log 2π`` if ``full``).

    ``var`` may be a float, the input's shape, the input's shape without its last axis
    (one variance per row), or the input's shape with exactly one axis of size 1,
    as in PyTorch.  The clamp at ``eps`` is not differentiated (PyTorch clamps under
    ``no_grad``): ``d/dvar = 0.5 (1/v - (x - y)²/v²)`` everywhere.

    Args:
        input: means, any shape.
        target: same shape as ``input`` or broadcastable to it (differentiable).
        var: variances, >= 0 (differentiable).
    """
    _check_reduction(reduction, "gaussian_nll_loss")
    x, y = as_tensor(input), as_tensor(target)
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError("gaussian_nll_loss: var has negative entries")
        v_t = Tensor._wrap(np.full(x.shape, float(var), dtype=x.dtype))
    else:
        v_t = as_tensor(var)
    if np.any(v_t.data < 0):
        raise ValueError("gaussian_nll_loss: var has negative entries")
    vshape = v_t.shape
    if vshape != x.shape:
        if x.shape[:-1] == vshape:
            vshape = vshape + (1,)
        elif not (len(vshape) == x.ndim
                  and sum(v for s, v in zip(x.shape, vshape) if s != v) == 1):
            raise ValueError(f"gaussian_nll_loss: var of shape {v_t.shape} does not fit the input "
                             f"{x.shape}: give the input's shape, its shape without the last "
                             "axis, or its shape with one axis of size 1")
    v = np.maximum(v_t.data.reshape(vshape), eps)
    d = x.data - y.data
    losses = 0.5 * (np.log(v) + d * d / v)
    if full:
        losses = losses + 0.5 * math.log(2 * math.pi)
    size = losses.size

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ge = _per_element(g, losses.shape, reduction)
        gx = ge * d / v
        gv = unbroadcast(ge * 0.5 * (1 / v - d * d / (v * v)), vshape).reshape(v_t.shape)
        return gx, -gx, gv

    def double(g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # the clamped variance, with the clamp's offset held constant (not differentiated)
        vg = v_t.reshape(vshape) + Tensor._wrap(v - v_t.data.reshape(vshape))
        ge = _per_element_graph(g, losses.shape, reduction)
        dd = x - y
        gx = ge * dd / vg
        gv = _unbroadcast_graph(ge * 0.5 * (1 / vg - dd * dd / (vg * vg)), vshape)
        return gx, -gx, gv.reshape(v_t.shape)

    out = _reduce(losses, reduction) if size or reduction != "mean" else np.asarray(np.nan)
    return Tensor._wrap(out.astype(x.dtype, copy=False), (x, y, v_t), backward, double)


# --------------------------------------------------------------- margin losses
def _labels(target: Any) -> np.ndarray:
    return target.data if isinstance(target, Tensor) else np.asarray(target)


def hinge_embedding_loss(input: Any, target: Any, margin: float = 1.0,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """``x`` where ``y = 1``, ``max(0, margin - x)`` where ``y = -1`` (labels other than
    ±1 get both terms, as in PyTorch).  No gradient for the labels.

    Args:
        input: distances, any shape.
        target: labels ``±1``, broadcastable with ``input``.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "hinge_embedding_loss")
    x = as_tensor(input)
    a, t = np.broadcast_arrays(x.data, _labels(target))
    hinge = margin - a
    losses = np.where(t != 1, np.maximum(hinge, 0), 0) + np.where(t != -1, a, 0)

    def slopes() -> list[np.ndarray]:
        return [(t != -1) * 1.0 - ((t != 1) & (hinge >= 0))]

    return _pointwise_loss(losses, (x,), slopes, reduction, x.dtype,
                           lambda: [Tensor._wrap(np.asarray(slopes()[0], dtype=x.dtype))])


def _same_ndim(name: str, **tensors: Tensor) -> None:
    if len({t.ndim for t in tensors.values()}) > 1:
        shapes = ", ".join(f"{k} {t.shape}" for k, t in tensors.items())
        raise ValueError(f"{name}: all inputs must have the same number of dimensions, "
                         f"got {shapes}")


def margin_ranking_loss(input1: Any, input2: Any, target: Any, margin: float = 0.0,
                        size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> Tensor:
    """``max(0, -y (x1 - x2) + margin)``: ``x1`` should rank above ``x2`` where ``y = 1``.

    Args:
        input1, input2: scores; same number of dimensions, broadcastable.
        target: ``±1`` of the same number of dimensions (differentiable, as in PyTorch).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "margin_ranking_loss")
    x1, x2, y = as_tensor(input1), as_tensor(input2), as_tensor(target)
    _same_ndim("margin_ranking_loss", input1=x1, input2=x2, target=y)
    diff = x1.data - x2.data
    z = -y.data * diff + margin
    on = z >= 0  # PyTorch's clamp_min passes the gradient at 0

    def slopes() -> list[np.ndarray]:
        return [-y.data * on, y.data * on, -diff * on]

    def slopes_graph() -> list[Tensor]:
        mask = Tensor._wrap(on.astype(x1.dtype))
        return [-y * mask, y * mask, -(x1 - x2) * mask]

    return _pointwise_loss(np.maximum(z, 0), (x1, x2, y), slopes, reduction, x1.dtype,
                           slopes_graph)


def soft_margin_loss(input: Any, target: Any, size_average: bool | None = None,
                     reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """``log(1 + e^(-y x))``, stable, for labels ``y = ±1``; ``d/dx = -y σ(-y x)``.

    Args:
        input: scores, any shape.
        target: labels of the same shape (no gradient, as in PyTorch).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "soft_margin_loss")
    x = as_tensor(input)
    t = _labels(target)
    if t.shape != x.shape:
        raise ValueError(f"soft_margin_loss: input shape {x.shape} and target shape {t.shape} "
                         "must be equal")
    z = -t * x.data
    tt = Tensor._wrap(np.asarray(t, dtype=x.dtype))
    return _pointwise_loss(_softplus(z), (x,), lambda: [-t * _stable_sigmoid(z)], reduction,
                           x.dtype, lambda: [-tt * (-tt * x).sigmoid()])


def multilabel_soft_margin_loss(input: Any, target: Any, weight: Any = None,
                                size_average: bool | None = None, reduce: bool | None = None,
                                reduction: str = "mean") -> Tensor:
    """Per sample, the mean over classes of ``-w [y log σ(x) + (1 - y) log σ(-x)]``.

    Args:
        input: ``(N, C)`` or ``(C,)``.
        target: 0/1 (or soft) labels of the same shape (differentiable, as in PyTorch).
        weight: optional per-class weights broadcastable to the input (no gradient).

    Returns:
        The ``(N,)`` (or ``()``) per-sample losses for ``'none'``, else a scalar.
    Derivatives: ``d/dx = w (σ(x) - y) / C``, ``d/dy = -w x / C``.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "multilabel_soft_margin_loss")
    x, y = _pair(input, target, "multilabel_soft_margin_loss")
    if x.ndim == 0:
        raise ValueError("multilabel_soft_margin_loss: input must have a class axis, got a scalar")
    a, t, w = x.data, y.data, _plain(weight)
    c = a.shape[-1]
    elem = t * _softplus(-a) + (1 - t) * _softplus(a)
    if w is not None:
        elem = elem * w
    losses = elem.sum(axis=-1) / c

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ge = np.expand_dims(_per_element(g, losses.shape, reduction), -1) / c
        if w is not None:
            ge = ge * w
        return ge * (_stable_sigmoid(a) - t), -ge * a

    def double(g: Tensor) -> tuple[Tensor, Tensor]:
        ge = (_per_element_graph(g, losses.shape, reduction) / c).unsqueeze(-1)
        if w is not None:
            ge = ge * Tensor._wrap(np.asarray(w))
        return ge * (x.sigmoid() - y), -ge * x

    out = _reduce(losses, reduction)
    return Tensor._wrap(out.astype(x.dtype, copy=False), (x, y), backward, double)


def _class_rows(x: Tensor, target: Any, name: str) -> tuple[np.ndarray, np.ndarray,
                                                            tuple[int, ...]]:
    """``(N, C)`` (or ``(C,)``) scores as rows, their class-index targets ``(N,)``,
    and the per-sample output shape."""
    if x.ndim > 2:
        raise ValueError(f"{name}: input must be (N, C), (C,) or a scalar, got shape {x.shape}")
    t = _labels(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices, got dtype {t.dtype}")
    n = x.shape[0] if x.ndim == 2 else 1
    if t.size != n or t.ndim > 1:
        raise ValueError(f"{name}: input of shape {x.shape} needs {n} class indices, got target "
                         f"of shape {t.shape}")
    c = x.shape[-1] if x.ndim else 1
    shape = (n,) if x.ndim == 2 else t.shape  # a 1-D input: () or (1,), as the target
    t = t.reshape(-1).astype(np.int64)
    if np.any((t < 0) | (t >= c)):
        bad = int(t[(t < 0) | (t >= c)][0])
        raise TargetError(f"{name}: target {bad} is out of range for {c} classes (0..{c - 1})")
    return x.data.reshape(n, c), t, shape


def multi_margin_loss(input: Any, target: Any, p: int = 1, margin: float = 1.0,
                      weight: Any = None, size_average: bool | None = None,
                      reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Multi-class hinge: per sample ``sum_{i != y} w[y] max(0, margin - x[y] + x[i])^p / C``.

    Args:
        input: ``(N, C)``, ``(C,)`` or a scalar (one class).
        target: class indices ``(N,)`` (``()`` or ``(1,)`` for a 1-D or scalar input).
        p: 1 or 2.
        weight: optional ``(C,)`` per-class weights.

    Backward: each ``i != y`` with a positive hinge ``z`` gets ``w[y] p z^(p-1) / C``,
    and ``x[y]`` the negated sum.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "multi_margin_loss")
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    x = as_tensor(input)
    rows, t, shape = _class_rows(x, target, "multi_margin_loss")
    n, c = rows.shape
    w = _class_weight(weight, c, "multi_margin_loss")
    m = np.arange(n)
    z = margin - rows[m, t][:, None] + rows
    z[m, t] = 0
    pos = z > 0
    wy = np.ones(n) if w is None else w[t]
    h = np.where(pos, z, 0)
    losses = wy * (h if p == 1 else h * h).sum(axis=1) / c

    def grad_rows(coef: np.ndarray) -> tuple[np.ndarray]:
        d = (coef * wy / c)[:, None] * (pos * 1.0 if p == 1 else 2 * h)
        d[m, t] = -d.sum(axis=1)
        return (d.reshape(x.shape),)

    def grad_rows_graph(coef: Tensor) -> tuple[Tensor]:
        scale = (coef * Tensor._wrap((wy / c).astype(x.dtype))).unsqueeze(1)
        if p == 1:  # a constant pattern of hinges: linear in coef
            d = scale * Tensor._wrap(pos.astype(x.dtype))
        else:
            xr = x.reshape(n, c)
            hinge = (margin - xr[m, t].unsqueeze(1) + xr).where(pos, 0.0)
            d = scale * 2 * hinge
        onehot = np.zeros((n, c), dtype=x.dtype)
        onehot[m, t] = 1
        return ((d - Tensor._wrap(onehot) * d.sum(1, keepdim=True)).reshape(x.shape),)

    return _row_loss(x, losses, float(n), shape, reduction, grad_rows, (x,), grad_rows_graph)


def multilabel_margin_loss(input: Any, target: Any, size_average: bool | None = None,
                           reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Multi-label hinge: per sample ``sum_j sum_i max(0, 1 - (x[j] - x[i])) / C`` over the
    target classes ``j`` and the non-target classes ``i``.

    Args:
        input: ``(N, C)``, ``(C,)`` or a scalar (one class).
        target: integer array of the input's shape: each row lists its target classes,
            ended by the first ``-1`` (the rest is ignored).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "multilabel_margin_loss")
    x = as_tensor(input)
    t = _labels(target)
    if x.ndim > 2:
        raise ValueError(f"multilabel_margin_loss: input must be (N, C), (C,) or a scalar, "
                         f"got {x.shape}")
    if t.shape != x.shape:
        raise ValueError(f"multilabel_margin_loss: target must have the input's shape {x.shape}, "
                         f"got {t.shape}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"multilabel_margin_loss: target must hold integer class indices, got "
                        f"dtype {t.dtype}")
    c = x.shape[-1] if x.ndim else 1
    rows, t = x.data.reshape(-1, c), t.reshape(-1, c).astype(np.int64)
    n = rows.shape[0]
    valid = np.cumprod(t != -1, axis=1).astype(bool)  # up to the first -1
    if np.any(valid & ((t < 0) | (t >= c))):
        bad = int(t[valid & ((t < 0) | (t >= c))][0])
        raise TargetError(f"multilabel_margin_loss: target {bad} is out of range for {c} "
                          f"classes (0..{c - 1}, -1 ends a row)")
    tj = np.where(valid, t, 0)
    m = np.arange(n)[:, None]
    is_target = np.zeros((n, c), dtype=bool)
    is_target[np.broadcast_to(m, t.shape)[valid], tj[valid]] = True
    z = 1 - rows[m, tj][:, :, None] + rows[:, None, :]  # (n, target k, class i)
    on = valid[:, :, None] & ~is_target[:, None, :] & (z > 0)
    losses = np.where(on, z, 0).sum(axis=(1, 2)) / c
    shape = (n,) if x.ndim == 2 else ()

    def grad_rows(coef: np.ndarray) -> tuple[np.ndarray]:
        share = on * (coef / c)[:, None, None]
        d = share.sum(axis=1)
        np.add.at(d, (np.broadcast_to(m, tj.shape), tj), -share.sum(axis=2))
        return (d.reshape(x.shape),)

    # the hinges that are on form a constant pattern: the gradient is linear in coef
    pattern = on.sum(axis=1).astype(x.dtype)
    np.add.at(pattern, (np.broadcast_to(m, tj.shape), tj), -on.sum(axis=2))

    def grad_rows_graph(coef: Tensor) -> tuple[Tensor]:
        return ((coef.unsqueeze(1) * Tensor._wrap(pattern / c)).reshape(x.shape),)

    return _row_loss(x, losses, float(n), shape, reduction, grad_rows, (x,), grad_rows_graph)


_COSINE_EPS = 1e-12  # PyTorch's EPSILON in the squared norms


def cosine_embedding_loss(input1: Any, input2: Any, target: Any, margin: float = 0.0,
                          size_average: bool | None = None, reduce: bool | None = None,
                          reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` where ``y = 1``, ``max(0, cos(x1, x2) - margin)`` where ``y = -1``.

    ``cos = <x1, x2> / sqrt((|x1|² + ε)(|x2|² + ε))`` with PyTorch's ``ε = 1e-12``;
    ``d cos / d x1 = x2 / denom - cos x1 / (|x1|² + ε)``.

    Args:
        input1, input2: ``(N, D)`` or ``(D,)``.
        target: ``(N,)`` or ``()`` labels ``±1`` (no gradient).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "cosine_embedding_loss")
    x1, x2 = as_tensor(input1), as_tensor(input2)
    t = _labels(target)
    if t.ndim > 1:
        raise ValueError(f"cosine_embedding_loss: target must be 0-D or 1-D (one label per "
                         f"pair), got shape {t.shape}")
    if x1.shape != x2.shape or x1.ndim != t.ndim + 1:
        raise ValueError(f"cosine_embedding_loss: input1 {x1.shape} and input2 {x2.shape} must "
                         f"have equal shapes, with one more axis than the target {t.shape}")
    a, b = x1.data, x2.data
    m1 = (a * a).sum(axis=-1) + _COSINE_EPS
    m2 = (b * b).sum(axis=-1) + _COSINE_EPS
    denom = np.sqrt(m1 * m2)
    cos = (a * b).sum(axis=-1) / denom
    pos, neg = t == 1, t == -1
    hinge = cos - margin
    losses = np.where(pos, 1 - cos, 0) + np.where(neg, np.maximum(hinge, 0), 0)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ge = _per_element(g, losses.shape, reduction)
        dcos = (np.where(neg & (hinge >= 0), 1.0, 0.0) - pos) * ge
        dcos, dn, cs = dcos[..., None], denom[..., None], cos[..., None]
        return (dcos * (b / dn - cs * a / m1[..., None]),
                dcos * (a / dn - cs * b / m2[..., None]))

    # which branch each pair takes is constant; cos and its gradient are smooth in x1, x2
    branch = (np.where(neg & (hinge >= 0), 1.0, 0.0) - pos).astype(x1.dtype)

    def double(g: Tensor) -> tuple[Tensor, Tensor]:
        dcos = (_per_element_graph(g, losses.shape, reduction) * Tensor._wrap(branch)).unsqueeze(-1)
        n1 = ((x1 * x1).sum(-1) + _COSINE_EPS).unsqueeze(-1)
        n2 = ((x2 * x2).sum(-1) + _COSINE_EPS).unsqueeze(-1)
        dn = (n1 * n2).sqrt()
        cs = (x1 * x2).sum(-1).unsqueeze(-1) / dn
        return dcos * (x2 / dn - cs * x1 / n1), dcos * (x1 / dn - cs * x2 / n2)

    out = _reduce(losses, reduction)
    return Tensor._wrap(np.asarray(out).astype(x1.dtype, copy=False), (x1, x2), backward, double)


def _pairwise_distance(u: np.ndarray, v: np.ndarray, p: float, eps: float
                       ) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``||u - v + eps||_p`` over the last axis, and the map from its gradient to ``u``'s
    (``v``'s is the negation).  PyTorch's norm gradient: ``sign(d) |d|^(p-1) / n^(p-1)``,
    ``sign(d)`` split among the largest ``|d|`` for ``p = inf``, and 0 where ``n = 0``."""
    d = u - v + eps
    ad = np.abs(d)
    if math.isinf(p):
        n = ad.max(axis=-1)
        top = ad == n[..., None]
        scale = np.sign(d) * top / top.sum(axis=-1, keepdims=True)
    else:
        n = (ad**p).sum(axis=-1) ** (1.0 / p)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.sign(d) * ad ** (p - 1) / n[..., None] ** (p - 1)
        scale = np.where(n[..., None] == 0, 0.0, scale)
    return n, lambda g: g[..., None] * scale


def _pairwise_distance_graph(u: Tensor, v: Tensor, p: float, eps: float
                             ) -> Callable[[Tensor], Tensor]:
    """:func:`_pairwise_distance`'s gradient map with Tensor ops (for higher-order
    gradients): the signs, the ``p = inf`` maxima and the ``n = 0`` rows are constant."""
    d = u - v + eps
    sign = np.sign(d.data)
    if math.isinf(p) or p == 1:
        if p == 1:
            scale = sign
        else:
            ad = np.abs(d.data)
            top = ad == ad.max(axis=-1, keepdims=True)
            scale = sign * top / top.sum(axis=-1, keepdims=True)
        const = Tensor._wrap(scale.astype(d.dtype, copy=False))
        return lambda g: g.unsqueeze(-1) * const
    ad = d * Tensor._wrap(sign.astype(d.dtype, copy=False))  # |d|
    n = ((ad**p).sum(-1) ** (1.0 / p)).unsqueeze(-1)
    zero = n.data == 0
    safe = n + Tensor._wrap(zero.astype(d.dtype))  # no 0 ** negative on the n = 0 rows
    scale = (Tensor._wrap(sign.astype(d.dtype, copy=False)) * ad ** (p - 1) / safe ** (p - 1))
    scale = scale.where(~zero, 0.0)
    return lambda g: g.unsqueeze(-1) * scale


def triplet_margin_loss(anchor: Any, positive: Any, negative: Any, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False,
                        size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> Tensor:
    """``max(0, margin + d(a, p) - d(a, n))`` with ``d(u, v) = ||u - v + eps||_p`` over the
    last axis; ``swap`` uses ``min(d(a, n), d(p, n))`` as the negative distance.

    Args:
        anchor, positive, negative: ``(N, D)`` or ``(D,)`` (the same number of dims).
        margin: > 0.
        p: the norm's order (> 0, ``inf`` allowed).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "triplet_margin_loss")
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin must be > 0, got {margin}")
    if not p > 0:
        raise ValueError(f"triplet_margin_loss: p must be > 0, got {p}")
    a, pv, nv = as_tensor(anchor), as_tensor(positive), as_tensor(negative)
    _same_ndim("triplet_margin_loss", anchor=a, positive=pv, negative=nv)
    if a.ndim == 0:
        raise ValueError("triplet_margin_loss: inputs need at least one axis (the embedding)")
    d_ap, grad_ap = _pairwise_distance(a.data, pv.data, p, eps)
    d_an, grad_an = _pairwise_distance(a.data, nv.data, p, eps)
    if swap:
        d_pn, grad_pn = _pairwise_distance(pv.data, nv.data, p, eps)
        # torch.min's gradient at a tie goes half to each side
        share = np.where(d_an < d_pn, 1.0, np.where(d_an == d_pn, 0.5, 0.0))
        neg = np.minimum(d_an, d_pn)
    else:
        share, neg = np.ones_like(d_an), d_an
    z = margin + d_ap - neg
    on = z >= 0
    losses = np.maximum(z, 0)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ge = _per_element(g, losses.shape, reduction) * on
        g_ap, g_an = grad_ap(ge), grad_an(-ge * share)
        ga, gp, gn = g_ap + g_an, -g_ap, -g_an
        if swap:
            g_pn = grad_pn(-ge * (1 - share))
            gp, gn = gp + g_pn, gn - g_pn
        return ga, gp, gn

    def double(g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ge = _per_element_graph(g, losses.shape, reduction) * Tensor._wrap(on.astype(a.dtype))
        g_ap = _pairwise_distance_graph(a, pv, p, eps)(ge)
        g_an = _pairwise_distance_graph(a, nv, p, eps)(-ge * Tensor._wrap(share.astype(a.dtype)))
        ga, gp, gn = g_ap + g_an, -g_ap, -g_an
        if swap:
            g_pn = _pairwise_distance_graph(pv, nv, p, eps)(
                -ge * Tensor._wrap((1 - share).astype(a.dtype)))
            gp, gn = gp + g_pn, gn - g_pn
        return ga, gp, gn

    out = _reduce(losses, reduction)
    return Tensor._wrap(np.asarray(out).astype(a.dtype, copy=False), (a, pv, nv), backward, double)

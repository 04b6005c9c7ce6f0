"""Gradient utilities with PyTorch's names: clipping, and parameters as one flat vector.

``clip_grad_norm_`` and ``clip_grad_value_`` change ``.grad`` in place, between
``backward()`` and ``optimizer.step()``; ``parameters_to_vector`` /
``vector_to_parameters`` flatten every parameter into one 1-D Tensor and back
(for line searches, second-order methods, or averaging weights).
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Iterable

import numpy as np

from ..autograd import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "parameters_to_vector", "vector_to_parameters"]


def _tensors(parameters: Tensor | Iterable[Tensor], fn: str) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    is_generator = isinstance(parameters, types.GeneratorType)
    params = list(parameters)
    if is_generator and not params:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.",
                      UserWarning, stacklevel=3)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: parameters must be Tensors, got {type(p).__name__}")
    return params


def _number(value: object, name: str, fn: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: {name} must be a number, got {value!r}") from None


def _vector_norm(x: np.ndarray, ord: float) -> np.ndarray:
    """``torch.linalg.vector_norm(x, ord)`` of all elements, as a 0-d array of x's dtype:
    ``max|x|`` (inf), ``min|x|`` (-inf), the count of non-zeros (0), else
    ``(sum |x|^ord)^(1/ord)``."""
    a = np.abs(x)
    if ord == math.inf:
        out = a.max(initial=0)
    elif ord == -math.inf:
        out = a.min(initial=math.inf)
    elif ord == 0:
        out = np.count_nonzero(a)
    elif ord == 1:
        out = a.sum()
    elif ord == 2:
        out = np.sqrt((a * a).sum())
    else:
        out = (a**ord).sum() ** (1.0 / ord)
    return np.asarray(out, dtype=x.dtype)


def get_total_norm(tensors: Tensor | np.ndarray | Iterable[Tensor | np.ndarray],
                   norm_type: float | str = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """The ``norm_type`` norm of all elements of ``tensors`` together: the norm of the
    vector of each tensor's own norm (usually the gradients: ``[p.grad for p in params]``).

    Args:
        tensors: Tensors or arrays (or one of them).
        norm_type: the p of the p-norm; ``inf`` (or ``"inf"``) for the largest magnitude.
        error_if_nonfinite: raise if the norm is nan or inf.
        foreach: accepted for PyTorch compatibility; NumPy has one code path.

    Returns:
        A 0-d Tensor (float32 0 for no tensors).

    Raises:
        RuntimeError: the norm is not finite and ``error_if_nonfinite`` is set.
    """
    if isinstance(tensors, (Tensor, np.ndarray)):
        tensors = [tensors]
    arrays = [t.data if isinstance(t, Tensor) else np.asarray(t) for t in tensors]
    norm_type = _number(norm_type, "norm_type", "get_total_norm")
    if not arrays:
        return Tensor._wrap(np.zeros((), dtype=np.float32))
    total = _vector_norm(np.stack([_vector_norm(a, norm_type) for a in arrays]), norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` "
                           "is non-finite, so it cannot be clipped. To disable this error and "
                           "scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    return Tensor._wrap(total)


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                          total_norm: Tensor | float, foreach: bool | None = None) -> None:
    """Multiply every ``.grad``, in place, by ``min(1, max_norm / (total_norm + 1e-6))``
    (the second half of :func:`clip_grad_norm_`, for a norm computed elsewhere)."""
    params = _tensors(parameters, "clip_grads_with_norm_")
    max_norm = _number(max_norm, "max_norm", "clip_grads_with_norm_")
    total = total_norm.data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    coef = np.minimum(max_norm / (total + 1e-6), 1.0)
    for p in params:
        if p.grad is not None:
            p.grad *= coef.astype(p.grad.dtype)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float | str = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The total norm is :func:`get_total_norm` of the gradients (the norm of all gradient
    elements concatenated); each ``.grad`` is then multiplied, in place, by
    ``min(1, max_norm / (total_norm + 1e-6))``, as PyTorch does.

    Args:
        parameters: a Tensor or an iterable of Tensors; those without ``.grad`` are skipped.
        max_norm: the largest allowed total norm.
        norm_type: the p of the p-norm; ``inf`` (or ``"inf"``) for the largest magnitude.
        error_if_nonfinite: raise if the total norm is nan or inf (else the gradients are
            scaled by it anyway, as in PyTorch).
        foreach: accepted for PyTorch compatibility; NumPy has one code path.

    Returns:
        The total norm of the gradients before clipping, a 0-d Tensor (float32 0 when
        no parameter has a gradient).

    Raises:
        RuntimeError: the total norm is not finite and ``error_if_nonfinite`` is set.
    """
    params = _tensors(parameters, "clip_grad_norm_")
    max_norm = _number(max_norm, "max_norm", "clip_grad_norm_")
    norm_type = _number(norm_type, "norm_type", "clip_grad_norm_")
    total = get_total_norm([p.grad for p in params if p.grad is not None], norm_type,
                           error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient element, in place, to ``[-clip_value, clip_value]``.

    Args:
        parameters: a Tensor or an iterable of Tensors; those without ``.grad`` are skipped.
        clip_value: the largest allowed magnitude.
        foreach: accepted for PyTorch compatibility; NumPy has one code path.
    """
    params = _tensors(parameters, "clip_grad_value_")
    clip_value = _number(clip_value, "clip_value", "clip_grad_value_")
    for p in params:
        if p.grad is not None:
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Concatenate every parameter, flattened, into one 1-D Tensor of length
    ``sum(p.numel())`` (differentiable: its gradient splits back into the parameters').

    Raises:
        ValueError: for no parameters.
    """
    params = _tensors(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    shapes = [p.shape for p in params]
    sizes = [p.data.size for p in params]
    data = np.concatenate([p.data.ravel() for p in params])

    def backward(g: np.ndarray) -> tuple[np.ndarray, ...]:
        pieces = np.split(g, np.cumsum(sizes)[:-1])
        return tuple(piece.reshape(shape) for piece, shape in zip(pieces, shapes))

    def double(g: Tensor) -> tuple[Tensor, ...]:  # the same split with Tensor ops
        starts = np.cumsum([0] + sizes)
        return tuple(g[int(lo):int(hi)].reshape(shape)
                     for lo, hi, shape in zip(starts[:-1], starts[1:], shapes))

    return Tensor._wrap(data, tuple(params), backward, double)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters, in place (the
    inverse of :func:`parameters_to_vector`; each parameter keeps its dtype and its
    array, where PyTorch would make it a view of ``vec``).

    Raises:
        TypeError: ``vec`` is not a Tensor.
        ValueError: ``vec`` is not 1-D or its length is not the parameters' total size.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a convprop Tensor for vec, but got: "
                        f"{type(vec).__name__}")
    params = _tensors(parameters, "vector_to_parameters")
    total = sum(p.data.size for p in params)
    if vec.data.ndim != 1 or vec.data.size != total:
        raise ValueError(f"vector_to_parameters: vec must be 1-D with one entry per parameter "
                         f"element ({total}), got shape {vec.shape}")
    start = 0
    for p in params:
        p.data[...] = vec.data[start:start + p.data.size].reshape(p.shape)
        start += p.data.size

"""Finite-difference gradient checking, shipped with the package (as PyTorch and JAX do)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd import Tensor, cat, enable_grad, grad, no_grad


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when analytic and numeric gradients disagree."""


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Compare ``fn``'s autograd gradients with centred finite differences.

    Every input Tensor with ``requires_grad=True`` is checked (others are held
    constant).  A random projection ``v`` of the output reduces the check to
    one backward pass: the analytic ``d(v·fn)/dx`` from :meth:`Tensor.backward`
    must match ``(v·fn(x + eps e_i) − v·fn(x − eps e_i)) / 2eps`` for every
    element ``i``.  Use float64 inputs; float32 is too coarse for ``eps``.

    Returns:
        True when every gradient matches within ``atol + rtol * |numeric|``.

    Raises:
        GradcheckError: with the worst mismatch, unless ``raise_exception=False``.
        TypeError: when no input requires grad.
    """
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise TypeError("gradcheck: no input Tensor has requires_grad=True")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64, got {t.dtype}")
    out = fn(*inputs)
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(out.shape)
    saved = [t.grad for t in checked]
    for t in checked:
        t.grad = None
    (out * Tensor._wrap(v)).sum().backward()
    analytic = [np.zeros(t.shape) if t.grad is None else t.grad for t in checked]
    for t, g in zip(checked, saved):
        t.grad = g

    def projected() -> float:
        with no_grad():
            return float(np.sum(fn(*inputs).data * v))

    for k, (t, ana) in enumerate(zip(checked, analytic)):
        numeric = np.zeros(t.shape)
        data = t.data  # perturbed in place, each element restored right after
        for i in np.ndindex(t.shape):
            orig = data[i]
            data[i] = orig + eps
            plus = projected()
            data[i] = orig - eps
            minus = projected()
            data[i] = orig
            numeric[i] = (plus - minus) / (2 * eps)
        err = np.abs(ana - numeric)
        bad = err > atol + rtol * np.abs(numeric)
        if bad.any():
            i = np.unravel_index(np.argmax(err), err.shape)
            message = (f"gradcheck: input {k} (shape {t.shape}) gradient mismatch at {i}: "
                       f"analytic {ana[i]!r} vs numeric {numeric[i]!r}")
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def gradgradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check ``fn``'s second derivatives: :func:`gradcheck` of its analytic gradient.

    With a fixed random projection ``v`` of the output, the function
    ``x -> d(v·fn(x))/dx`` (computed by :func:`convprop.grad` with
    ``create_graph=True``, so it carries a graph) is itself checked against
    centred finite differences, which compares every Hessian-vector product
    ``d/dx (u · d(v·fn)/dx)`` with the change of the analytic gradient.  Use
    float64 inputs.

    Returns:
        True when the second derivatives match within ``atol + rtol * |numeric|``.

    Raises:
        GradcheckError: with the worst mismatch, unless ``raise_exception=False``.
        TypeError: when no input requires grad, or an input is not float64.
    """
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise TypeError("gradgradcheck: no input Tensor has requires_grad=True")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradgradcheck: inputs must be float64, got {t.dtype}")
    with no_grad():
        shape = fn(*inputs).shape
    v = Tensor._wrap(np.random.default_rng(seed + 1).standard_normal(shape))

    def first_gradients(*args: Any) -> Tensor:
        with enable_grad():  # gradcheck evaluates under no_grad; this gradient needs a graph
            wrt = [a for a in args if any(a is t for t in checked)]
            grads = grad((fn(*args) * v).sum(), wrt, create_graph=True, allow_unused=True,
                         materialize_grads=True)
            return cat([g.reshape(-1) for g in grads])

    return gradcheck(first_gradients, *inputs, eps=eps, atol=atol, rtol=rtol, seed=seed,
                     raise_exception=raise_exception)

"""Finite-difference gradient checking, shipped with the package (as PyTorch and JAX do)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd import Tensor, enable_grad, grad, no_grad


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when analytic and numeric gradients disagree."""


def _central_differences(t: Tensor, f: Callable[[], float], eps: float) -> np.ndarray:
    """``(f(t + eps e_i) - f(t - eps e_i)) / (2 eps)`` for every element ``i`` of ``t``.

    ``t.data`` is perturbed in place, each element restored right after its two calls.
    """
    numeric = np.zeros(t.shape)
    data = t.data
    for i in np.ndindex(t.shape):
        orig = data[i]
        data[i] = orig + eps
        plus = f()
        data[i] = orig - eps
        minus = f()
        data[i] = orig
        numeric[i] = (plus - minus) / (2 * eps)
    return numeric


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
        numeric = _central_differences(t, projected, eps)
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
    """Check ``fn``'s second derivatives against finite differences of its gradient.

    With random projections ``v`` (of the output) and ``u`` (of each checked input):

    1. the gradient ``g = d(v·fn)/dx`` recorded with ``create_graph=True`` (each op's
       differentiable backward) must equal the first-order gradient of the plain
       backward pass;
    2. the analytic ``d(u·g)/dx`` (a Hessian-vector product, by a second backward
       through ``g``'s graph) must match centred finite differences of ``u·g``,
       where ``g`` comes from the plain first-order backward -- so a wrong
       differentiable backward cannot agree with itself.

    Every input Tensor with ``requires_grad=True`` is checked; use float64.

    Returns:
        True when both checks pass within ``atol + rtol * |reference|``.

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
    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    v = Tensor._wrap(rng.standard_normal(out.shape))
    us = [rng.standard_normal(t.shape) for t in checked]

    def first_order() -> list[np.ndarray]:
        """The plain (ndarray) backward's gradient of ``v·fn`` at the current inputs."""
        with enable_grad():
            gs = grad((fn(*inputs) * v).sum(), checked, allow_unused=True,
                      materialize_grads=True)
        return [g.data for g in gs]

    def fail(message: str) -> bool:
        if raise_exception:
            raise GradcheckError(message)
        return False

    with enable_grad():
        graph = grad((out * v).sum(), checked, create_graph=True, allow_unused=True,
                     materialize_grads=True)
    plain = first_order()
    for k, (g, ref) in enumerate(zip(graph, plain)):
        bad = np.abs(g.data - ref) > atol + rtol * np.abs(ref)
        if bad.any():
            i = np.unravel_index(np.argmax(np.abs(g.data - ref)), ref.shape)
            return fail(f"gradgradcheck: input {k}: the create_graph gradient {g.data[i]!r} "
                        f"differs from the first-order gradient {ref[i]!r} at {i}")
    dot = sum(((g * Tensor._wrap(u)).sum() for g, u in zip(graph, us)),
              start=Tensor._wrap(np.zeros(())))
    if dot.requires_grad:
        analytic = [h.data for h in grad(dot, checked, allow_unused=True, materialize_grads=True)]
    else:  # no input reaches the gradient: every second derivative is zero
        analytic = [np.zeros(t.shape) for t in checked]

    def projected() -> float:
        return float(sum(np.sum(g * u) for g, u in zip(first_order(), us)))

    for k, (t, ana) in enumerate(zip(checked, analytic)):
        numeric = _central_differences(t, projected, eps)
        err = np.abs(ana - numeric)
        if (err > atol + rtol * np.abs(numeric)).any():
            i = np.unravel_index(np.argmax(err), err.shape)
            return fail(f"gradgradcheck: input {k} (shape {t.shape}) second-derivative mismatch "
                        f"at {i}: analytic {ana[i]!r} vs numeric {numeric[i]!r}")
    return True

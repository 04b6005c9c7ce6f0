"""Products with second derivatives and Jacobians, built on ``create_graph=True``.

``torch.autograd.functional``'s ``vjp``, ``jvp`` and ``hvp``: each takes a function
of Tensors and the point to evaluate it at, and returns ``(fn(inputs), product)``.
Both products run reverse mode twice, the second time through the graph the first
one recorded:

* ``hvp(fn, x, v) = d/dx (grad fn(x) · v)`` (double reverse: the Hessian is
  symmetric, so this is ``H v``);
* ``jvp(fn, x, v) = J v``: ``u -> J^T u`` is linear in ``u``, and its own vector-
  Jacobian product with ``v`` is ``(J^T)^T v = J v`` (the double-vjp trick), so
  no forward mode is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..autograd import Tensor, as_tensor, grad

Inputs = Any  # a Tensor or a tuple of Tensors


def _points(inputs: Inputs, name: str) -> tuple[list[Tensor], bool]:
    """Fresh leaves that require grad holding the inputs' values, and whether a single
    Tensor (not a tuple) was given."""
    single = not isinstance(inputs, (tuple, list))
    items = [inputs] if single else list(inputs)
    leaves = []
    for i, t in enumerate(items):
        t = as_tensor(t)
        if t.dtype.kind != "f":
            raise TypeError(f"{name}: input {i} must be floating, got dtype {t.dtype}")
        leaves.append(Tensor(t.data, requires_grad=True))
    return leaves, single


def _vectors(v: Any, like: Sequence[Tensor], name: str, what: str) -> list[Tensor]:
    items = [v] if isinstance(v, (Tensor, np.ndarray)) or not isinstance(v, (tuple, list)) \
        else list(v)
    if len(items) != len(like):
        raise ValueError(f"{name}: v must have one entry per {what} ({len(like)}), "
                         f"got {len(items)}")
    out = []
    for i, (a, ref) in enumerate(zip(items, like)):
        a = as_tensor(a)
        if a.shape != ref.shape:
            raise ValueError(f"{name}: v[{i}] must have the {what}'s shape {ref.shape}, "
                             f"got {a.shape}")
        out.append(Tensor._wrap(a.data.astype(ref.dtype, copy=False)))
    return out


def _shape_like(items: list[Any], single: bool) -> Any:
    return items[0] if single else tuple(items)


def _zeros_for_unused(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> list[Tensor]:
    return [Tensor._wrap(np.zeros_like(t.data)) if g is None else g for g, t in zip(grads, like)]


def vjp(func: Callable[..., Any], inputs: Inputs, v: Any = None,
        create_graph: bool = False) -> tuple[Any, Any]:
    """``(func(inputs), v^T J)``: the vector-Jacobian product at ``inputs``.

    Args:
        func: maps the inputs (positional Tensors) to a Tensor or a tuple of Tensors.
        inputs: a Tensor or a tuple of Tensors.
        v: one vector per output, of its shape (may be omitted for one single-element
            output).
        create_graph: keep the product differentiable.

    Returns:
        The outputs (detached unless ``create_graph``) and the product, shaped like ``inputs``.
    """
    xs, single = _points(inputs, "vjp")
    out = func(*xs)
    outs = [out] if isinstance(out, Tensor) else list(out)
    vs = None if v is None else _vectors(v, outs, "vjp", "output")
    gs = grad(outs, xs, vs, create_graph=create_graph, allow_unused=True)
    gs = _zeros_for_unused(gs, xs)
    if not create_graph:
        out = out.detach() if isinstance(out, Tensor) else tuple(o.detach() for o in out)
    return out, _shape_like([g if create_graph else g.detach() for g in gs], single)


def hvp(func: Callable[..., Tensor], inputs: Inputs, v: Any,
        create_graph: bool = False) -> tuple[Tensor, Any]:
    """``(func(inputs), H v)``: the Hessian-vector product of a scalar function.

    Reverse over reverse: the gradient is recorded with ``create_graph=True``, and the
    gradient of its dot product with ``v`` is ``H v`` (the Hessian is symmetric).  The cost
    is about two backward passes; the Hessian is never formed.

    Args:
        func: maps the inputs to a single-element Tensor (a loss).
        inputs: a Tensor or a tuple of Tensors.
        v: a vector of each input's shape (a Tensor, or a tuple like ``inputs``).
        create_graph: keep the product differentiable (third derivatives).

    Returns:
        ``func(inputs)`` and ``H v``, shaped like ``inputs``.

    Raises:
        ValueError: if ``func`` does not return a single element, or ``v`` is misshapen.
    """
    xs, single = _points(inputs, "hvp")
    out = func(*xs)
    if not isinstance(out, Tensor) or out.data.size != 1:
        raise ValueError("hvp: func must return a single-element Tensor (a scalar loss)")
    vs = _vectors(v, xs, "hvp", "input")
    if not out.requires_grad:
        return out.detach(), _shape_like([Tensor._wrap(np.zeros_like(x.data)) for x in xs],
                                         single)
    gs = _zeros_for_unused(grad(out, xs, create_graph=True, allow_unused=True), xs)
    dot = sum(((g * vv).sum() for g, vv in zip(gs, vs)), start=Tensor._wrap(np.zeros((), out.dtype)))
    if not dot.requires_grad:  # func is at most linear: the Hessian is zero
        hv = [Tensor._wrap(np.zeros_like(x.data)) for x in xs]
    else:
        hv = _zeros_for_unused(grad(dot, xs, create_graph=create_graph, allow_unused=True), xs)
    return (out if create_graph else out.detach()), _shape_like(
        [h if create_graph else h.detach() for h in hv], single)


def jvp(func: Callable[..., Any], inputs: Inputs, v: Any,
        create_graph: bool = False) -> tuple[Any, Any]:
    """``(func(inputs), J v)``: the Jacobian-vector product (directional derivative).

    Computed by the double-vjp trick: with ``u`` a dummy cotangent, ``g(u) = J^T u`` is
    linear in ``u`` and recorded with ``create_graph=True``; the gradient of
    ``g(u) · v`` with respect to ``u`` is ``J v``.

    Args:
        func: maps the inputs to a Tensor or a tuple of Tensors.
        inputs: a Tensor or a tuple of Tensors.
        v: a vector of each input's shape.
        create_graph: keep the product differentiable.

    Returns:
        The outputs and ``J v``, shaped like the outputs.
    """
    xs, _ = _points(inputs, "jvp")
    vs = _vectors(v, xs, "jvp", "input")
    out = func(*xs)
    single_out = isinstance(out, Tensor)
    outs = [out] if single_out else list(out)
    us = [Tensor(np.zeros_like(o.data), requires_grad=True) for o in outs]
    live = [k for k, o in enumerate(outs) if o.requires_grad]
    products: list[Tensor] = [Tensor._wrap(np.zeros_like(o.data)) for o in outs]
    if live:
        gs = grad([outs[k] for k in live], xs, [us[k] for k in live], create_graph=True,
                  allow_unused=True)
        dot = sum(((g * vv).sum() for g, vv in zip(gs, vs) if g is not None),
                  start=Tensor._wrap(np.zeros((), outs[0].dtype)))
        if dot.requires_grad:
            found = grad(dot, [us[k] for k in live], create_graph=create_graph,
                         allow_unused=True)
            for k, f in zip(live, found):
                if f is not None:
                    products[k] = f if create_graph else f.detach()
    if not create_graph:
        outs = [o.detach() for o in outs]
    return _shape_like(outs, single_out), _shape_like(products, single_out)

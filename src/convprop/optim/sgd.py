"""Stochastic gradient descent, PyTorch's formulation step for step."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov and
    L2 weight decay, PyTorch's formulation::

        g = grad + weight_decay * p
        b = g                                        (first step)
        b = momentum * b + (1 - dampening) * g       (later steps)
        g = g + momentum * b  if nesterov  else  b   (when momentum != 0)
        p = p - lr * g

    State per parameter (only when ``momentum != 0``): ``momentum_buffer`` (shape of p).
    """

    _nonnegative = ("momentum", "weight_decay", "dampening")

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize})

    def _validate(self, options: dict[str, Any]) -> None:
        super()._validate(options)
        if options.get("nesterov") and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening "
                             f"(got momentum={options['momentum']!r}, "
                             f"dampening={options['dampening']!r})")

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any],
                state: dict[str, Any]) -> None:
        d_p = -grad if group["maximize"] else grad
        if group["weight_decay"] != 0:
            d_p = d_p + group["weight_decay"] * p.data
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(d_p, dtype=p.data.dtype, copy=True)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * d_p
            d_p = d_p + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * d_p

"""Per-coordinate step sizes from accumulated squared gradients: RMSprop and Adagrad.

Both follow PyTorch's single-tensor implementations operation by operation
(``addcdiv(t1, t2, value=c)`` is ``(c * t1) / t2``), so float64 trajectories
agree with ``torch.optim`` to rounding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer, lerp_, new_step


class RMSprop(Optimizer):
    """RMSprop (Hinton), PyTorch's formulation::

        g = grad + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g                  (state "square_avg")
        a = lerp(a, g, 1 - alpha)  and  avg = sqrt(v - a*a)  (centered; state "grad_avg")
        avg = sqrt(v)                                        (otherwise)
        b = momentum * b + g / (avg + eps);  p = p - lr * b  (momentum > 0)
        p = p - lr * g / (avg + eps)                         (otherwise)

    State per parameter: ``step``, ``square_avg``, and ``momentum_buffer`` (momentum > 0)
    and ``grad_avg`` (centered).
    """

    _nonnegative = ("eps", "momentum", "weight_decay", "alpha")

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                                  "centered": centered, "weight_decay": weight_decay,
                                  "maximize": maximize})

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any],
                state: dict[str, Any]) -> None:
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        if not state:
            state["step"] = new_step()
            state["square_avg"] = np.zeros_like(p.data)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        g = -grad if group["maximize"] else grad
        state["step"] += 1
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.data
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += ((1 - alpha) * g) * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, g, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / avg
            p.data -= lr * buf
        else:
            p.data += (-lr * g) / avg


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), PyTorch's formulation::

        g = grad + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                                   (state "sum")
        p = p - clr * g / (sqrt(s) + eps)

    State per parameter: ``step`` and ``sum``, created for every parameter at
    construction with ``sum = initial_accumulator_value`` (as PyTorch, which takes
    that value from the constructor's argument, not from a param group's option).
    """

    _nonnegative = ("lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "maximize": maximize})
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, self.state.setdefault(p, {}))

    def _init_state(self, p: Tensor, state: dict[str, Any]) -> None:
        state["step"] = new_step()
        state["sum"] = np.full_like(p.data, self.defaults["initial_accumulator_value"])

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any],
                state: dict[str, Any]) -> None:
        if not state:  # a parameter added later with add_param_group
            self._init_state(p, state)
        state["step"] += 1
        step = float(state["step"])
        g = -grad if group["maximize"] else grad
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.data
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        state["sum"] += g * g
        std = np.sqrt(state["sum"])
        std += group["eps"]
        p.data += (-clr * g) / std

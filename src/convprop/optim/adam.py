"""The Adam family: Adam, AdamW, NAdam and RAdam.

Each follows PyTorch's single-tensor implementation operation by operation
(``addcdiv(t1, t2, value=c)`` is ``(c * t1) / t2``, ``addcmul`` is
``(c * t1) * t2``), so float64 trajectories agree with ``torch.optim`` to
rounding.  All four keep, per parameter, ``step`` (a 0-d float32 counter, as in
PyTorch) and the moment estimates ``exp_avg`` / ``exp_avg_sq`` (shape of p).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer, lerp_, new_step


def _decay(p: Tensor, g: np.ndarray, group: dict[str, Any]) -> np.ndarray:
    """Weight decay: decoupled (``p *= 1 - lr * wd``) or L2 (``g + wd * p``); returns g."""
    wd = group["weight_decay"]
    if wd != 0:
        if group["decoupled_weight_decay"]:
            p.data *= 1 - group["lr"] * wd
        else:
            g = g + wd * p.data
    return g


def _moments(state: dict[str, Any], g: np.ndarray, beta1: float, beta2: float) -> None:
    """``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g^2``, in place."""
    lerp_(state["exp_avg"], g, 1 - beta1)
    v = state["exp_avg_sq"]
    v *= beta2
    v += ((1 - beta2) * g) * g


def _init_moments(p: Tensor, state: dict[str, Any]) -> None:
    state["step"] = new_step()
    state["exp_avg"] = np.zeros_like(p.data)
    state["exp_avg_sq"] = np.zeros_like(p.data)


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's formulation, bias correction applied to the step::

        g = grad + weight_decay * p                     (L2; or decoupled, see AdamW)
        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                           (amsgrad: use v_max below)
        denom = sqrt(v) / sqrt(1 - beta2^t) + eps
        p = p - lr / (1 - beta1^t) * m / denom

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with ``amsgrad``,
    ``max_exp_avg_sq``.
    """

    _nonnegative = ("eps", "weight_decay")

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False, *,
                 decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad,
                                  "maximize": maximize,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any],
                state: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        if not state:
            _init_moments(p, state)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        g = -grad if group["maximize"] else grad
        state["step"] += 1
        step = float(state["step"])
        g = _decay(p, g, group)
        _moments(state, g, beta1, beta2)
        v = state["exp_avg_sq"]
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = lr / (1 - beta1**step)
        denom = np.sqrt(v)
        denom /= math.sqrt(1 - beta2**step)
        denom += eps
        p.data += (-step_size * state["exp_avg"]) / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): before the Adam
    update, ``p = p * (1 - lr * weight_decay)``.  Default ``weight_decay=0.01``."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize,
                         decoupled_weight_decay=True)


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat), PyTorch's formulation with momentum decay::

        mu_t = beta1 (1 - 0.96^(t psi) / 2),   psi = momentum_decay
        prod_t = mu_1 ... mu_t                            (state "mu_product")
        m, v as in Adam;  denom = sqrt(v / (1 - beta2^t)) + eps
        p = p - lr (1 - mu_t) / (1 - prod_t) * g / denom
              - lr mu_{t+1} / (1 - prod_t mu_{t+1}) * m / denom

    ``decoupled_weight_decay=True`` gives NAdamW.  State per parameter: ``step``,
    ``mu_product`` (a 0-d float32 array, as PyTorch keeps it: its float32 rounding is
    part of the trajectory), ``exp_avg``, ``exp_avg_sq``.  Loading a state dict keeps
    ``mu_product``'s dtype, so a resumed run repeats the uninterrupted one exactly
    (PyTorch casts it to the parameter's dtype on load, which moves its resumed runs
    by about 1e-12).
    """

    _nonnegative = ("eps", "weight_decay", "momentum_decay")
    _scalar_state = ("step", "mu_product")

    def __init__(self, params: Iterable[Any], lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "momentum_decay": momentum_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "maximize": maximize})

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any],
                state: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps, psi = (group["lr"], group["betas"], group["eps"],
                                        group["momentum_decay"])
        if not state:
            _init_moments(p, state)
            state["mu_product"] = np.ones((), dtype=np.float32)
        g = -grad if group["maximize"] else grad
        state["step"] += 1
        step = float(state["step"])
        bias_correction2 = 1 - beta2**step
        g = _decay(p, g, group)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
        state["mu_product"] *= mu  # in the counter's own dtype, as PyTorch
        mu_product = float(state["mu_product"])
        _moments(state, g, beta1, beta2)
        denom = np.sqrt(state["exp_avg_sq"] / bias_correction2)
        denom += eps
        p.data += ((-lr * (1.0 - mu) / (1.0 - mu_product)) * g) / denom
        p.data += (((-lr * mu_next) / (1.0 - mu_product * mu_next)) * state["exp_avg"]) / denom


class RAdam(Optimizer):
    """Rectified Adam (Liu et al.), PyTorch's formulation::

        m, v as in Adam;  m_hat = m / (1 - beta1^t)
        rho_inf = 2 / (1 - beta2) - 1,   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        rho_t > 5:  r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                    p = p - m_hat lr sqrt(1 - beta2^t) / (sqrt(v) + eps) r
        otherwise:  p = p - m_hat lr                     (plain momentum while v is unreliable)

    ``decoupled_weight_decay=True`` decays ``p`` directly, as AdamW.  State per parameter:
    ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    _nonnegative = ("eps", "weight_decay")

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "maximize": maximize,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any],
                state: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        if not state:
            _init_moments(p, state)
        g = -grad if group["maximize"] else grad
        state["step"] += 1
        step = float(state["step"])
        g = _decay(p, g, group)
        _moments(state, g, beta1, beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        m_hat = state["exp_avg"] / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                    / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive = bias_correction2**0.5 / (np.sqrt(state["exp_avg_sq"]) + eps)
            p.data -= m_hat * lr * adaptive * rect
        else:
            p.data -= m_hat * lr

"""Double backward for every public op: each differentiable name in
``convprop.functional.__all__``, each Tensor method with a gradient, each function of the
``convprop`` namespace and ``convprop.nn.utils``, and each layer of ``convprop.nn`` runs
:func:`convprop.gradgradcheck` (float64) on a small valid input.  A public op with
neither a case nor a reasoned exclusion fails the sweep, an op without a differentiable
backward fails it by name, and every exclusion must refuse a derivative.

:func:`double_backward_table` (built from :data:`CASES`, :data:`TENSOR_CASES`,
:data:`TOP_CASES`, :data:`MODULES` and :data:`EXCLUDED`) is also read by
``docs/make_coverage.py`` for the "double backward" column of ``docs/pytorch-coverage.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import convprop as cp
import convprop.functional as F


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def normal(*shape: int, seed: int = 0) -> np.ndarray:
    return _rng(seed).standard_normal(shape)


def positive(*shape: int, seed: int = 0) -> np.ndarray:
    return _rng(seed).uniform(0.5, 2.0, shape)


def away(*shape: int, seed: int = 0) -> np.ndarray:
    """Values at least 0.2 from 0 (no kinks of relu, abs, shrinks near them)."""
    return _rng(seed).uniform(0.2, 1.5, shape) * _rng(seed + 1).choice([-1.0, 1.0], shape)


def probs(*shape: int, seed: int = 0) -> np.ndarray:
    return _rng(seed).uniform(0.1, 0.9, shape)


def _t(a, dtype=cp.float64) -> cp.Tensor:
    return cp.tensor(a, dtype=dtype)


def _cube(f: Callable[..., cp.Tensor]) -> Callable[..., cp.Tensor]:
    """``f(...) ** 3``: a piecewise-linear op's second derivative then matters."""
    return lambda *xs: f(*xs) ** 3


_LABELS = [0, 3, 1]
_SIGNS = [1.0, -1.0, 1.0]

#: public name -> (fn(*xs), input arrays): gradgradcheck runs on each (small inputs only)
CASES: dict[str, tuple[Callable[..., cp.Tensor], tuple[np.ndarray, ...]]] = {
    # convolution and linear
    "conv1d": (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1).tanh(),
               (normal(1, 2, 5), normal(2, 2, 2, seed=1), normal(2, seed=2))),
    "conv2d": (lambda x, w: F.conv2d(x, w, padding=1, dilation=2).tanh(),
               (normal(1, 2, 3, 3), normal(2, 2, 2, 2, seed=1))),
    "conv3d": (lambda x, w: F.conv3d(x, w, stride=2) ** 2,
               (normal(1, 1, 3, 3, 3), normal(2, 1, 2, 2, 2, seed=1))),
    "conv_transpose1d": (lambda x, w: F.conv_transpose1d(x, w, stride=2, groups=2) ** 2,
                         (normal(1, 2, 3), normal(2, 1, 2, seed=1))),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, padding=1).tanh(),
                         (normal(1, 2, 2, 3), normal(2, 2, 2, 2, seed=1), normal(2, seed=2))),
    "conv_transpose3d": (lambda x, w: F.conv_transpose3d(x, w) ** 2,
                         (normal(1, 1, 2, 2, 2), normal(1, 1, 2, 1, 2, seed=1))),
    "linear": (lambda x, w, b: F.linear(x, w, b).tanh(),
               (normal(2, 3), normal(4, 3, seed=1), normal(4, seed=2))),
    # activations
    "celu": (lambda x: F.celu(x, 0.5), (away(3, 4),)),
    "elu": (lambda x: F.elu(x, 0.7), (away(3, 4),)),
    "exp": (lambda x: F.exp(x), (normal(3, 4),)),
    "gelu": (lambda x: F.gelu(x), (normal(3, 4),)),
    "glu": (lambda x: F.glu(x, 1), (normal(3, 4),)),
    "hardshrink": (_cube(lambda x: F.hardshrink(x, 0.3)), (away(3, 4),)),
    "hardsigmoid": (_cube(lambda x: F.hardsigmoid(x * 4)), (away(3, 4),)),
    "hardswish": (lambda x: F.hardswish(x * 4), (away(3, 4),)),
    "hardtanh": (_cube(lambda x: F.hardtanh(x, -0.5, 0.6)), (away(3, 4),)),
    "leaky_relu": (_cube(lambda x: F.leaky_relu(x, 0.1)), (away(3, 4),)),
    "log": (lambda x: F.log(x), (positive(3, 4),)),
    "log_softmax": (lambda x: F.log_softmax(x, 1), (normal(3, 4),)),
    "logsigmoid": (lambda x: F.logsigmoid(x), (normal(3, 4),)),
    "mish": (lambda x: F.mish(x), (normal(3, 4),)),
    "prelu": (_cube(lambda x, w: F.prelu(x, w)), (away(2, 3, 2), positive(3, seed=1))),
    "relu": (_cube(lambda x: F.relu(x)), (away(3, 4),)),
    "relu6": (_cube(lambda x: F.relu6(x * 4)), (away(3, 4),)),
    "rrelu": (_cube(lambda x: F.rrelu(x, 0.1, 0.3, training=True, generator=_rng(5))),
              (away(3, 4),)),
    "selu": (lambda x: F.selu(x), (away(3, 4),)),
    "sigmoid": (lambda x: F.sigmoid(x), (normal(3, 4),)),
    "silu": (lambda x: F.silu(x), (normal(3, 4),)),
    "softmax": (lambda x: F.softmax(x, 0), (normal(3, 4),)),
    "softmax2d": (lambda x: F.softmax2d(x), (normal(1, 3, 2, 2),)),
    "softmin": (lambda x: F.softmin(x, 1), (normal(3, 4),)),
    "softplus": (lambda x: F.softplus(x, beta=2.0, threshold=2.0), (normal(3, 4),)),
    "softshrink": (_cube(lambda x: F.softshrink(x, 0.1)), (away(3, 4),)),
    "softsign": (lambda x: F.softsign(x), (away(3, 4),)),
    "tanh": (lambda x: F.tanh(x), (normal(3, 4),)),
    "tanhshrink": (lambda x: F.tanhshrink(x), (normal(3, 4),)),
    "threshold": (_cube(lambda x: F.threshold(x, 0.1, -2.0)), (away(3, 4),)),
    # dropout in training mode, with a generator seeded afresh per call (one mask throughout)
    "alpha_dropout": (_cube(lambda x: F.alpha_dropout(x, 0.5, True, generator=_rng(5))),
                      (normal(3, 4),)),
    "dropout": (_cube(lambda x: F.dropout(x, 0.5, generator=_rng(5))), (normal(3, 4),)),
    "dropout1d": (_cube(lambda x: F.dropout1d(x, 0.5, generator=_rng(5))), (normal(2, 3, 2),)),
    "dropout2d": (_cube(lambda x: F.dropout2d(x, 0.5, generator=_rng(5))), (normal(2, 3, 2, 1),)),
    "dropout3d": (_cube(lambda x: F.dropout3d(x, 0.5, generator=_rng(5))), (normal(1, 2, 2, 2),)),
    "feature_alpha_dropout": (_cube(lambda x: F.feature_alpha_dropout(x, 0.5, True,
                                                                      generator=_rng(5))),
                              (normal(2, 3, 2),)),
    # normalisation
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True) ** 2,
                   (normal(4, 2, 2), normal(2, seed=1), normal(2, seed=2))),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b) ** 2,
                   (normal(2, 4, 2), normal(4, seed=1), normal(4, seed=2))),
    "instance_norm": (lambda x: F.instance_norm(x) ** 2, (normal(2, 2, 4),)),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (3,), w, b) ** 2,
                   (normal(3, 3), normal(3, seed=1), normal(3, seed=2))),
    "local_response_norm": (lambda x: F.local_response_norm(x, 3, alpha=0.5, k=1.5),
                            (normal(2, 4, 2),)),
    # pooling, padding, resampling, vision
    "adaptive_avg_pool1d": (_cube(lambda x: F.adaptive_avg_pool1d(x, 3)), (normal(1, 2, 5),)),
    "adaptive_avg_pool2d": (_cube(lambda x: F.adaptive_avg_pool2d(x, (2, 3))), (normal(1, 2, 3, 4),)),
    "adaptive_avg_pool3d": (_cube(lambda x: F.adaptive_avg_pool3d(x, 2)), (normal(1, 1, 3, 3, 2),)),
    "adaptive_max_pool1d": (_cube(lambda x: F.adaptive_max_pool1d(x, 3)), (normal(1, 2, 5),)),
    "adaptive_max_pool1d_with_indices": (
        _cube(lambda x: F.adaptive_max_pool1d_with_indices(x, 3)[0]), (normal(1, 2, 5),)),
    "adaptive_max_pool2d": (_cube(lambda x: F.adaptive_max_pool2d(x, 2)), (normal(1, 2, 3, 3),)),
    "adaptive_max_pool2d_with_indices": (
        _cube(lambda x: F.adaptive_max_pool2d_with_indices(x, 2)[0]), (normal(1, 2, 3, 3),)),
    "adaptive_max_pool3d": (_cube(lambda x: F.adaptive_max_pool3d(x, 2)), (normal(1, 1, 3, 3, 2),)),
    "adaptive_max_pool3d_with_indices": (
        _cube(lambda x: F.adaptive_max_pool3d_with_indices(x, 2)[0]), (normal(1, 1, 3, 3, 2),)),
    "avg_pool1d": (_cube(lambda x: F.avg_pool1d(x, 2, ceil_mode=True)), (normal(1, 2, 5),)),
    "avg_pool2d": (_cube(lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
                   (normal(1, 1, 4, 4),)),
    "avg_pool3d": (_cube(lambda x: F.avg_pool3d(x, 2)), (normal(1, 1, 3, 3, 2),)),
    "max_pool1d": (_cube(lambda x: F.max_pool1d(x, 3, 2, 1)), (normal(1, 2, 7),)),
    "max_pool1d_with_indices": (_cube(lambda x: F.max_pool1d_with_indices(x, 2)[0]),
                                (normal(1, 2, 6),)),
    "max_pool2d": (_cube(lambda x: F.max_pool2d(x, 2)), (normal(1, 2, 4, 4),)),
    "max_pool2d_with_indices": (_cube(lambda x: F.max_pool2d_with_indices(x, 2)[0]),
                                (normal(1, 1, 4, 4),)),
    "max_pool3d": (_cube(lambda x: F.max_pool3d(x, 2)), (normal(1, 1, 2, 4, 2),)),
    "max_pool3d_with_indices": (_cube(lambda x: F.max_pool3d_with_indices(x, 2)[0]),
                                (normal(1, 1, 2, 4, 2),)),
    "max_unpool1d": (_cube(lambda x: F.max_unpool1d(*F.max_pool1d(x, 2, return_indices=True), 2)),
                     (normal(1, 2, 6),)),
    "max_unpool2d": (_cube(lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2)),
                     (normal(1, 1, 4, 4),)),
    "max_unpool3d": (_cube(lambda x: F.max_unpool3d(*F.max_pool3d(x, 2, return_indices=True), 2)),
                     (normal(1, 1, 2, 4, 2),)),
    "lp_pool1d": (lambda x: F.lp_pool1d(x, 2, 2), (positive(1, 2, 6),)),
    "lp_pool2d": (lambda x: F.lp_pool2d(x, 3, 2), (positive(1, 1, 4, 4),)),
    "lp_pool3d": (lambda x: F.lp_pool3d(x, 1.5, 2), (positive(1, 1, 2, 4, 2),)),
    "pad": (_cube(lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect")), (normal(1, 1, 3, 4),)),
    "fold": (_cube(lambda x: F.fold(x, (3, 4), 2, padding=1, stride=2)), (normal(1, 4, 6),)),
    "unfold": (_cube(lambda x: F.unfold(x, 2, padding=1, stride=2)), (normal(1, 1, 3, 4),)),
    "interpolate": (_cube(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear")),
                    (normal(1, 1, 2, 3),)),
    "upsample": (_cube(lambda x: F.upsample(x, size=5, mode="linear")), (normal(1, 2, 3),)),
    "upsample_bilinear": (_cube(lambda x: F.upsample_bilinear(x, scale_factor=2)),
                          (normal(1, 1, 2, 3),)),
    "upsample_nearest": (_cube(lambda x: F.upsample_nearest(x, scale_factor=2)),
                         (normal(1, 1, 2, 3),)),
    "pixel_shuffle": (_cube(lambda x: F.pixel_shuffle(x, 2)), (normal(1, 4, 2, 2),)),
    "pixel_unshuffle": (_cube(lambda x: F.pixel_unshuffle(x, 2)), (normal(1, 1, 4, 4),)),
    # losses
    "binary_cross_entropy": (lambda x, y: F.binary_cross_entropy(x, y),
                             (probs(3, 4), probs(3, 4, seed=1))),
    "binary_cross_entropy_with_logits": (lambda x, y: F.binary_cross_entropy_with_logits(x, y),
                                         (normal(3, 4), probs(3, 4, seed=1))),
    "cosine_embedding_loss": (lambda a, b: F.cosine_embedding_loss(a, b, _t(_SIGNS), margin=-0.5),
                              (normal(3, 4), normal(3, 4, seed=1))),
    "cross_entropy": (lambda x: F.cross_entropy(x, cp.tensor(_LABELS)), (normal(3, 4),)),
    "gaussian_nll_loss": (lambda x, y, v: F.gaussian_nll_loss(x, y, v),
                          (normal(2, 3), normal(2, 3, seed=1), positive(2, 1, seed=2))),
    "hinge_embedding_loss": (_cube(lambda x: F.hinge_embedding_loss(
        x, _t([1.0, -1, 1, -1]), reduction="none")), (away(4),)),
    "huber_loss": (lambda x, y: F.huber_loss(x ** 3, y, delta=0.7),
                   (normal(3, 4), normal(3, 4, seed=1))),
    "kl_div": (lambda x, y: F.kl_div(F.log_softmax(x, 1), F.softmax(y, 1), reduction="batchmean"),
               (normal(3, 4), normal(3, 4, seed=1))),
    "l1_loss": (lambda x, y: F.l1_loss(x ** 3, y, reduction="none"),
                (normal(3, 4), normal(3, 4, seed=1))),
    "margin_ranking_loss": (_cube(lambda a, b: F.margin_ranking_loss(a, b, _t(_SIGNS), 0.2,
                                                                     reduction="none")),
                            (normal(3), normal(3, seed=1))),
    "mse_loss": (lambda x, y: F.mse_loss(x.tanh(), y), (normal(3, 4), normal(3, 4, seed=1))),
    "multi_margin_loss": (lambda x: F.multi_margin_loss(x, cp.tensor(_LABELS), p=2), (normal(3, 4),)),
    "multilabel_margin_loss": (_cube(lambda x: F.multilabel_margin_loss(
        x, cp.tensor([[3, 0, -1, 1], [1, -1, 0, 0], [-1, 2, 2, 2]]), reduction="none")),
        (normal(3, 4),)),
    "multilabel_soft_margin_loss": (lambda x, y: F.multilabel_soft_margin_loss(x, y),
                                    (normal(3, 4), probs(3, 4, seed=1))),
    "nll_loss": (lambda x: F.nll_loss(F.log_softmax(x, 1), cp.tensor(_LABELS)), (normal(3, 4),)),
    "poisson_nll_loss": (lambda x, y: F.poisson_nll_loss(x, y), (normal(3, 4), positive(3, 4))),
    "smooth_l1_loss": (lambda x, y: F.smooth_l1_loss(x ** 3, y, beta=0.5),
                       (normal(3, 4), normal(3, 4, seed=1))),
    "soft_margin_loss": (lambda x: F.soft_margin_loss(x, _t([[1.0, -1, 1, -1]] * 3)), (normal(3, 4),)),
    "triplet_margin_loss": (lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=3.0),
                            (normal(3, 4), normal(3, 4, seed=1), normal(3, 4, seed=2))),
}

#: public names of convprop.functional that are not ops on tensors
FUNCTIONAL_NOT_OPS = {
    "TargetError": "an exception class",
    "hvp": "a derivative itself (a Hessian-vector product); differentiable as its graph is",
    "jvp": "a derivative itself (forward-over-reverse); differentiable as its graph is",
    "vjp": "a derivative itself (a vector-Jacobian product); differentiable as its graph is",
}


def _setitem(x: cp.Tensor, y: cp.Tensor) -> cp.Tensor:
    z = x * 1.0
    z[0:2, 1] = y * y
    return z**3


def _in_place(method: str) -> Callable[[cp.Tensor, cp.Tensor], cp.Tensor]:
    def fn(x: cp.Tensor, y: cp.Tensor) -> cp.Tensor:
        z = x * 1.0
        getattr(z, method)(y)
        return z**3
    return fn


def _filled(method: str, *args: float) -> Callable[[cp.Tensor], cp.Tensor]:
    def fn(x: cp.Tensor) -> cp.Tensor:
        z = x * x
        getattr(z[1], method)(*args)  # a view: only row 1 loses its gradient
        return z**2
    return fn


#: Tensor method -> (fn(*xs), input arrays), as :data:`CASES`
TENSOR_CASES: dict[str, tuple[Callable[..., cp.Tensor], tuple[np.ndarray, ...]]] = {
    "T": (_cube(lambda x: x.T), (normal(3, 4),)),
    "abs": (_cube(lambda x: x.abs()), (away(3, 4),)),
    "add": (lambda x, y: x.add(y, alpha=2.0) * x, (normal(3, 4), normal(4, seed=1))),
    "add_": (_in_place("add_"), (normal(3, 4), normal(3, 4, seed=1))),
    "amax": (_cube(lambda x: x.amax(1)), (normal(3, 4),)),
    "amin": (_cube(lambda x: x.amin(0)), (normal(3, 4),)),
    "astype": (_cube(lambda x: x.astype(cp.float64)), (normal(3, 4),)),
    "chunk": (_cube(lambda x: x.chunk(2, 1)[1]), (normal(3, 4),)),
    "clamp": (_cube(lambda x: x.clamp(-0.5, 0.7)), (away(3, 4),)),
    "clamp_": (_cube(lambda x: (x * 1.0).clamp_(max=0.6)), (away(3, 4),)),
    "clip": (_cube(lambda x: x.clip(min=-0.4)), (away(3, 4),)),
    "clone": (_cube(lambda x: x.clone()), (normal(3, 4),)),
    "contiguous": (_cube(lambda x: x.T.contiguous()), (normal(3, 4),)),
    "copy_": (lambda x, y: (x * 1.0).copy_(y * y) * x, (normal(3, 4), normal(4, seed=1))),
    "cpu": (_cube(lambda x: x.cpu()), (normal(3, 4),)),
    "div": (lambda x, y: x.div(y) + y.div(x), (away(3, 4), away(3, 4, seed=1))),
    "div_": (_in_place("div_"), (normal(3, 4), away(3, 4, seed=1))),
    "double": (_cube(lambda x: x.double()), (normal(3, 4),)),
    "exp": (lambda x: x.exp(), (normal(3, 4),)),
    "expand": (_cube(lambda x: x.expand(2, 3, 4)), (normal(3, 1),)),
    "expand_as": (lambda x, y: x.expand_as(y) * y, (normal(3, 1), normal(3, 4, seed=1))),
    "fill_": (_filled("fill_", 0.5), (normal(3, 4),)),
    "flatten": (_cube(lambda x: x.flatten()), (normal(3, 4),)),
    "float": (lambda x: x.float().double() ** 3, (normal(3, 4),)),
    "half": (lambda x: x.half().double() ** 2, (normal(3, 4),)),
    "log": (lambda x: x.log(), (positive(3, 4),)),
    "logsumexp": (lambda x: x.logsumexp(1), (normal(3, 4),)),
    "matmul": (lambda a, b: a.matmul(b).tanh(), (normal(3, 4), normal(4, 2, seed=1))),
    "max": (_cube(lambda x: x.max(1).values), (normal(3, 4),)),
    "maximum": (_cube(lambda x, y: x.maximum(y)), (normal(3, 4), normal(3, 4, seed=1))),
    "mean": (_cube(lambda x: x.mean(0)), (normal(3, 4),)),
    "min": (_cube(lambda x: x.min()), (normal(3, 4),)),
    "minimum": (_cube(lambda x, y: x.minimum(y)), (normal(3, 4), normal(3, 4, seed=1))),
    "mT": (_cube(lambda x: x.mT), (normal(2, 3, 4),)),
    "mul": (lambda x, y: x.mul(y) * y, (normal(3, 4), normal(3, 4, seed=1))),
    "mul_": (_in_place("mul_"), (normal(3, 4), normal(3, 4, seed=1))),
    "narrow": (_cube(lambda x: x.narrow(1, 1, 2)), (normal(3, 4),)),
    "neg": (_cube(lambda x: x.neg()), (normal(3, 4),)),
    "norm": (lambda x: x.norm(3, 1), (away(3, 4),)),
    "permute": (_cube(lambda x: x.permute(2, 0, 1)), (normal(2, 3, 2),)),
    "pow": (lambda a, e: a.pow(e), (positive(3, 4), normal(3, 4, seed=1))),
    "relu": (_cube(lambda x: x.relu()), (away(3, 4),)),
    "repeat": (_cube(lambda x: x.repeat(2, 1, 2)), (normal(2, 3),)),
    "reshape": (_cube(lambda x: x.reshape(4, 3)), (normal(3, 4),)),
    "reshape_as": (lambda x, y: x.reshape_as(y) * y, (normal(3, 4), normal(4, 3, seed=1))),
    "sigmoid": (lambda x: x.sigmoid(), (normal(3, 4),)),
    "split": (_cube(lambda x: x.split([1, 3], 1)[1]), (normal(3, 4),)),
    "sqrt": (lambda x: x.sqrt(), (positive(3, 4),)),
    "squeeze": (_cube(lambda x: x.squeeze(1)), (normal(3, 1, 4),)),
    "std": (lambda x: x.std(1), (normal(3, 4),)),
    "sub": (lambda x, y: x.sub(y, alpha=0.5) * x, (normal(3, 4), normal(3, 4, seed=1))),
    "sub_": (_in_place("sub_"), (normal(3, 4), normal(3, 4, seed=1))),
    "sum": (_cube(lambda x: x.sum((0, 2), keepdim=True)), (normal(2, 3, 2),)),
    "swapaxes": (_cube(lambda x: x.swapaxes(0, 1)), (normal(3, 4),)),
    "t": (_cube(lambda x: x.t()), (normal(3, 4),)),
    "tanh": (lambda x: x.tanh(), (normal(3, 4),)),
    "to": (_cube(lambda x: x.to(cp.float64, copy=True)), (normal(3, 4),)),
    "transpose": (_cube(lambda x: x.transpose(0, 1)), (normal(3, 4),)),
    "unbind": (_cube(lambda x: x.unbind(1)[2]), (normal(3, 4),)),
    "unflatten": (_cube(lambda x: x.unflatten(1, (2, 2))), (normal(3, 4),)),
    "unsqueeze": (_cube(lambda x: x.unsqueeze(1)), (normal(3, 4),)),
    "var": (lambda x: x.var(0), (normal(3, 4),)),
    "view": (_cube(lambda x: x.view(2, 6)), (normal(3, 4),)),
    "view_as": (lambda x, y: x.view_as(y) * y, (normal(3, 4), normal(6, 2, seed=1))),
    "where": (_cube(lambda x, y: x.where(x > y, y * 2)), (normal(3, 4), normal(3, 4, seed=1))),
    "zero_": (_filled("zero_"), (normal(3, 4),)),
    "__getitem__": (_cube(lambda x: x[[0, 2, 0], 1:]), (normal(3, 4),)),
    "__setitem__": (_setitem, (normal(3, 4), normal(2, seed=1))),
    "__rpow__": (lambda e: 2.0**e, (normal(3, 4),)),
    "__rtruediv__": (lambda x: 1.0 / x, (away(3, 4),)),
    "__rsub__": (_cube(lambda x: 1.0 - x), (normal(3, 4),)),
}

#: Tensor methods whose result has no derivative at all (integer, boolean or detached
#: results): differentiating them is refused, as in PyTorch, never a silent zero
EXCLUDED: dict[str, tuple[str, Callable[[cp.Tensor], cp.Tensor]]] = {
    "argmax": ("an index: piecewise constant, its derivative is 0 or undefined",
               lambda x: x.argmax(1)),
    "argmin": ("an index: piecewise constant, its derivative is 0 or undefined",
               lambda x: x.argmin(1)),
    "eq": ("a boolean comparison", lambda x: x.eq(0.5)),
    "ne": ("a boolean comparison", lambda x: x.ne(0.5)),
    "ge": ("a boolean comparison", lambda x: x.ge(0.5)),
    "gt": ("a boolean comparison", lambda x: x.gt(0.5)),
    "le": ("a boolean comparison", lambda x: x.le(0.5)),
    "lt": ("a boolean comparison", lambda x: x.lt(0.5)),
    "all": ("a boolean reduction", lambda x: x.all()),
    "any": ("a boolean reduction", lambda x: x.any()),
    "bool": ("a cast to booleans", lambda x: x.bool()),
    "int": ("a cast to integers, piecewise constant", lambda x: x.int()),
    "long": ("a cast to integers, piecewise constant", lambda x: x.long()),
    "detach": ("cuts the graph by definition", lambda x: x.detach()),
    "max_pool2d(return_indices=True)[1]": (
        "the index output of max pooling (the same for every *_with_indices)",
        lambda x: F.max_pool2d(x.reshape(1, 1, 3, 4), 2, return_indices=True)[1]),
    "adaptive_max_pool2d(return_indices=True)[1]": (
        "the index output of adaptive max pooling",
        lambda x: F.adaptive_max_pool2d(x.reshape(1, 1, 3, 4), 2, return_indices=True)[1]),
}

#: Python's operators on Tensor -> the method whose case (or exclusion) covers them
OPERATORS = {
    "__add__": "add", "__radd__": "add", "__iadd__": "add_", "__sub__": "sub", "__isub__": "sub_",
    "__mul__": "mul", "__rmul__": "mul", "__imul__": "mul_", "__truediv__": "div",
    "__itruediv__": "div_", "__pow__": "pow", "__matmul__": "matmul", "__rmatmul__": "matmul",
    "__neg__": "neg", "__eq__": "eq", "__ne__": "ne", "__ge__": "ge", "__gt__": "gt", "__le__": "le",
    "__lt__": "lt",
}
EXCLUDED.update({
    "__and__": ("boolean logic", lambda x: (x > 0) & (x < 1)),
    "__or__": ("boolean logic", lambda x: (x > 0) | (x < 1)),
    "__xor__": ("boolean logic", lambda x: (x > 0) ^ (x < 1)),
    "__rand__": ("boolean logic", lambda x: True & (x > 0)),
    "__ror__": ("boolean logic", lambda x: False | (x > 0)),
    "__rxor__": ("boolean logic", lambda x: True ^ (x > 0)),
    "__invert__": ("boolean logic", lambda x: ~(x > 0)),
})

#: public Tensor attributes that are not differentiable ops (data, metadata, autograd's own API,
#: conversions out of the graph)
TENSOR_NOT_OPS = {
    "backward", "cuda", "data", "device", "dim", "dtype", "grad", "grad_tensor", "is_floating_point",
    "is_leaf", "item", "ndim", "numel", "numpy", "requires_grad", "requires_grad_", "retain_grad",
    "shape", "size", "tolist",
}


def double_backward_refusal(fn: Callable[..., cp.Tensor], arrays: tuple[np.ndarray, ...]) -> str | None:
    """The error raised when a second derivative is asked of ``fn`` (None if it has one)."""
    xs = [cp.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*xs)
    gs = cp.grad((y * cp.tensor(normal(*y.shape, seed=7))).sum(), xs, create_graph=True,
                 allow_unused=True)
    dot = sum(((g * g).sum() for g in gs if g is not None and g.requires_grad), start=cp.tensor(0.0))
    if not dot.requires_grad:
        return None
    try:
        cp.grad(dot, xs, allow_unused=True)
    except RuntimeError as e:
        return str(e)
    return None


#: casts through a lower precision: finite differences need steps above its rounding
LOW_PRECISION = {"float": {"eps": 1e-2, "atol": 1e-4}, "half": {"eps": 0.25, "atol": 2e-2}}


def _check(case: tuple[Callable[..., cp.Tensor], tuple[np.ndarray, ...]], **tolerances: float
           ) -> None:
    fn, arrays = case
    refused = double_backward_refusal(fn, arrays)
    assert refused is None, refused
    xs = [cp.tensor(a, requires_grad=True) for a in arrays]
    assert cp.gradgradcheck(fn, *xs, **tolerances)


def test_every_functional_op_has_a_case():
    public = set(F.__all__)
    missing = public - set(CASES) - set(FUNCTIONAL_NOT_OPS)
    assert not missing, f"public ops with no double-backward case: {sorted(missing)}"
    assert not (set(CASES) | set(FUNCTIONAL_NOT_OPS)) - public, "cases for names no longer public"


def test_every_tensor_method_is_classified():
    public = {n for n in dir(cp.Tensor) if not n.startswith("_")}
    listed = {n for n in (*TENSOR_CASES, *EXCLUDED) if not n.startswith("_")} | TENSOR_NOT_OPS
    assert not public - listed, f"Tensor methods with no double-backward case: {sorted(public - listed)}"
    assert not {n for n in listed - public if "(" not in n}, "cases for names no longer public"
    dunders = [n for n in (*TENSOR_CASES, *EXCLUDED, *OPERATORS) if n.startswith("__")]
    assert all(hasattr(cp.Tensor, n) for n in dunders)
    assert not set(TENSOR_CASES) & set(EXCLUDED)
    assert all(m in TENSOR_CASES or m in EXCLUDED for m in OPERATORS.values())


@pytest.mark.parametrize("name", sorted(CASES))
def test_functional_double_backward(name):
    _check(CASES[name])


@pytest.mark.parametrize("name", sorted(TENSOR_CASES))
def test_tensor_method_double_backward(name):
    _check(TENSOR_CASES[name], **LOW_PRECISION.get(name, {}))


@pytest.mark.parametrize("name", sorted(EXCLUDED))
def test_excluded_ops_refuse_a_derivative(name):
    """No higher (or first) derivative: the result is outside the graph, and asking for
    its gradient is an error, not zeros."""
    _, fn = EXCLUDED[name]
    x = cp.tensor(normal(3, 4), requires_grad=True)
    y = fn(x)
    assert not y.requires_grad and y.dtype in (cp.int64, cp.bool, cp.int32) or name == "detach"
    with pytest.raises(RuntimeError, match="does not require grad"):
        cp.grad(y.sum() if y.dtype != cp.bool else y.any(), x)


def _square_first_order_only(x: cp.Tensor) -> cp.Tensor:
    """An op with a first-order backward and no differentiable one."""
    return cp.Tensor._wrap(x.data**2, (x,), lambda g: (2 * x.data * g,))


def test_the_sweep_catches_an_op_without_a_rule():
    """A first-order-only op is reported by name, so a new op without a rule fails the sweep."""
    square = _square_first_order_only
    refused = double_backward_refusal(square, (normal(3),))
    assert refused is not None and "no differentiable backward" in refused
    assert "'_square_first_order_only'" in refused
    with pytest.raises(AssertionError, match="_square_first_order_only"):
        _check((square, (normal(3),)))


def test_double_backward_table_matches_the_sweep():
    """What ``docs/make_coverage.py`` reads: every op with a case, every refusal with a reason."""
    table = double_backward_table()
    assert all(table["convprop.functional." + n] == "yes" for n in CASES)
    assert all(table["convprop.Tensor." + n] == "yes" for n in TENSOR_CASES)
    assert all(table["convprop.nn." + n] == "yes" for n in MODULES)
    assert table["convprop.nn.utils.parameters_to_vector"] == "yes"
    assert all(table["convprop.Tensor." + n].startswith("no: ") for n in EXCLUDED if "(" not in n)
    assert "convprop.double" not in table and "convprop.long" not in table  # dtypes, not methods
    assert table["convprop.argmax"].startswith("no: ") and table["convprop.any"].startswith("no: ")


def double_backward_table() -> dict[str, str]:
    """Qualified public name (``convprop.functional.relu``, ``convprop.Tensor.relu``,
    ``convprop.relu``, ``convprop.nn.ReLU``) -> ``"yes"`` (checked here) or
    ``"no: <reason>"`` (an exclusion); Python's operators take their method's entry."""
    table = {f"convprop.functional.{n}": "yes" for n in CASES}
    table.update({f"convprop.nn.{n}": "yes" for n in MODULES})
    methods = {n: "yes" for n in TENSOR_CASES}
    methods.update({n: f"no: {reason}" for n, (reason, _) in EXCLUDED.items() if "(" not in n})
    methods.update({op: methods[method] for op, method in OPERATORS.items()})
    table.update({f"convprop.Tensor.{n}": v for n, v in methods.items()})
    utils = set(cp.nn.utils.__all__)
    for n in TOP_CASES:
        table[f"convprop.nn.utils.{n}" if n in utils else f"convprop.{n}"] = "yes"
    table.update({f"convprop.{n}": methods[n] for n in EXCLUDED  # argmax, eq, ... (not dtypes)
                  if callable(getattr(cp, n, None)) and not isinstance(getattr(cp, n), np.dtype)})
    return table


def test_the_coverage_doc_says_yes_for_every_functional_op():
    """``docs/pytorch-coverage.md``'s column, as committed (``tests/test_coverage_doc.py``
    checks it is current): every functional op's row reads "yes"."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "pytorch-coverage.md").read_text(
        encoding="utf-8")
    section = doc.split("## Functional ops\n", 1)[1].split("\n## ", 1)[0]
    rows = {r.split("|")[2].strip(" `"): r.split("|")[3].strip() for r in section.splitlines()
            if r.startswith("| `") or r.startswith("| —")}
    assert {n: v for n, v in rows.items() if n in CASES} == {n: "yes" for n in CASES}


#: functions of the ``convprop`` namespace -> (fn(*xs), input arrays), as :data:`CASES`
TOP_CASES: dict[str, tuple[Callable[..., cp.Tensor], tuple[np.ndarray, ...]]] = {
    "abs": (_cube(lambda x: cp.abs(x)), (away(3, 4),)),
    "add": (lambda x, y: cp.add(x, y, alpha=2.0) * y, (normal(3, 4), normal(4, seed=1))),
    "amax": (_cube(lambda x: cp.amax(x, 1)), (normal(3, 4),)),
    "amin": (_cube(lambda x: cp.amin(x, (0, 1))), (normal(3, 4),)),
    "cat": (_cube(lambda x, y: cp.cat([x, y * y], 1)), (normal(3, 4), normal(3, 2, seed=1))),
    "chunk": (_cube(lambda x: cp.chunk(x, 2)[0]), (normal(4, 3),)),
    "clamp": (_cube(lambda x: cp.clamp(x, -0.5, 0.7)), (away(3, 4),)),
    "clip": (_cube(lambda x: cp.clip(x, max=0.3)), (away(3, 4),)),
    "clone": (_cube(lambda x: cp.clone(x)), (normal(3, 4),)),
    "div": (lambda x, y: cp.div(x, y) * x, (normal(3, 4), away(3, 4, seed=1))),
    "exp": (lambda x: cp.exp(x), (normal(3, 4),)),
    "flatten": (_cube(lambda x: cp.flatten(x, 1)), (normal(2, 3, 2),)),
    "log": (lambda x: cp.log(x), (positive(3, 4),)),
    "logsumexp": (lambda x: cp.logsumexp(x, 0), (normal(3, 4),)),
    "matmul": (lambda a, b: cp.matmul(a, b).tanh(), (normal(2, 3, 4), normal(4, 2, seed=1))),
    "maximum": (_cube(lambda x, y: cp.maximum(x, y)), (normal(3, 4), normal(3, 4, seed=1))),
    "max": (_cube(lambda x: cp.max(x, 0).values), (normal(3, 4),)),
    "mean": (_cube(lambda x: cp.mean(x, 1, keepdim=True)), (normal(3, 4),)),
    "min": (_cube(lambda x: cp.min(x)), (normal(3, 4),)),
    "minimum": (_cube(lambda x, y: cp.minimum(x, y)), (normal(3, 4), normal(3, 4, seed=1))),
    "mul": (lambda x, y: cp.mul(x, y) * x, (normal(3, 4), normal(3, 4, seed=1))),
    "narrow": (_cube(lambda x: cp.narrow(x, 0, 1, 2)), (normal(3, 4),)),
    "neg": (_cube(lambda x: cp.neg(x)), (normal(3, 4),)),
    "norm": (lambda x: cp.norm(x, 2, 1), (normal(3, 4),)),
    "permute": (_cube(lambda x: cp.permute(x, (1, 0))), (normal(3, 4),)),
    "pow": (lambda a, e: cp.pow(a, e) + cp.pow(a, 1.5), (positive(3, 4), normal(3, 4, seed=1))),
    "relu": (_cube(lambda x: cp.relu(x)), (away(3, 4),)),
    "reshape": (_cube(lambda x: cp.reshape(x, (2, 6))), (normal(3, 4),)),
    "sigmoid": (lambda x: cp.sigmoid(x), (normal(3, 4),)),
    "split": (_cube(lambda x: cp.split(x, 2, 1)[1]), (normal(3, 4),)),
    "sqrt": (lambda x: cp.sqrt(x), (positive(3, 4),)),
    "squeeze": (_cube(lambda x: cp.squeeze(x)), (normal(3, 1, 4),)),
    "stack": (_cube(lambda x, y: cp.stack([x, y], 1)), (normal(3, 4), normal(3, 4, seed=1))),
    "std": (lambda x: cp.std(x, 0), (normal(3, 4),)),
    "sub": (lambda x, y: cp.sub(x, y) * y, (normal(3, 4), normal(3, 4, seed=1))),
    "sum": (_cube(lambda x: cp.sum(x, 1)), (normal(3, 4),)),
    "t": (_cube(lambda x: cp.t(x)), (normal(3, 4),)),
    "tanh": (lambda x: cp.tanh(x), (normal(3, 4),)),
    "transpose": (_cube(lambda x: cp.transpose(x, 0, 1)), (normal(3, 4),)),
    "unbind": (_cube(lambda x: cp.unbind(x, 1)[0]), (normal(3, 4),)),
    "unflatten": (_cube(lambda x: cp.unflatten(x, 1, (2, 2))), (normal(3, 4),)),
    "unsqueeze": (_cube(lambda x: cp.unsqueeze(x, 0)), (normal(3, 4),)),
    "var": (lambda x: cp.var(x, 1, correction=0), (normal(3, 4),)),
    "where": (_cube(lambda x, y: cp.where(x > y, x, y * 2)), (normal(3, 4), normal(3, 4, seed=1))),
    "parameters_to_vector": (_cube(lambda x, y: cp.nn.utils.parameters_to_vector([x, y])),
                             (normal(3, 4), normal(2, seed=1))),
}

#: names in ``convprop.__all__`` (and ``convprop.nn.utils``) that are not differentiable ops:
#: creation, dtypes, random numbers, autograd's own API, saving, and the utilities that write
#: parameters or their gradients in place
TOP_NOT_OPS = {
    "Generator", "GradcheckError", "Tensor", "arange", "as_tensor", "double", "empty", "empty_like",
    "enable_grad", "eye", "float16", "float32", "float64", "from_numpy", "full", "full_like",
    "functional", "get_default_dtype", "get_rng_state", "grad", "gradcheck", "gradgradcheck", "half",
    "initial_seed", "int16", "int32", "int64", "int8", "is_grad_enabled", "is_tensor", "linspace",
    "load", "long", "manual_seed", "nn", "no_grad", "numel", "ones", "ones_like", "optim",
    "output_size", "rand", "rand_like", "randint", "randn", "randn_like", "randperm", "result_type",
    "save", "set_default_dtype", "set_rng_state", "short", "tensor", "uint8", "zeros", "zeros_like",
    "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
    "vector_to_parameters",
}


#: functions outside ``convprop.__all__`` (``from convprop import *`` keeps Python's builtins)
BUILTIN_NAMES = {"abs", "all", "any", "max", "min", "pow", "sum"}


def test_every_top_level_function_is_classified():
    public = set(cp.__all__) | set(cp.nn.utils.__all__) | BUILTIN_NAMES
    listed = set(TOP_CASES) | TOP_NOT_OPS | set(EXCLUDED)
    assert not public - listed, f"functions with no double-backward case: {sorted(public - listed)}"
    assert set(TOP_CASES) | TOP_NOT_OPS <= public


@pytest.mark.parametrize("name", sorted(TOP_CASES))
def test_top_level_function_double_backward(name):
    _check(TOP_CASES[name])


# ------------------------------------------------------------------ nn modules
def _unpool(nd: int) -> Callable[[cp.Tensor], cp.Tensor]:
    pool = getattr(cp.nn, f"MaxPool{nd}d")(2, return_indices=True)
    unpool = getattr(cp.nn, f"MaxUnpool{nd}d")(2)
    return lambda x: unpool(*pool(x))


_I1, _I2, _I3 = normal(2, 3, 4), normal(1, 2, 4, 4), normal(1, 2, 2, 4, 2)
_AWAY = away(2, 3, 4)

#: nn module -> (a factory, input arrays): the module's forward (and the targets the losses
#: take, as constants) must have a double backward through its input and every parameter
MODULES: dict[str, tuple[Callable[[], Callable[..., cp.Tensor]], tuple[np.ndarray, ...]]] = {
    "AdaptiveAvgPool1d": (lambda: cp.nn.AdaptiveAvgPool1d(3), (_I1,)),
    "AdaptiveAvgPool2d": (lambda: cp.nn.AdaptiveAvgPool2d(3), (_I2,)),
    "AdaptiveAvgPool3d": (lambda: cp.nn.AdaptiveAvgPool3d(2), (_I3,)),
    "AdaptiveMaxPool1d": (lambda: cp.nn.AdaptiveMaxPool1d(3), (_I1,)),
    "AdaptiveMaxPool2d": (lambda: cp.nn.AdaptiveMaxPool2d(3), (_I2,)),
    "AdaptiveMaxPool3d": (lambda: cp.nn.AdaptiveMaxPool3d(2), (_I3,)),
    "AlphaDropout": (lambda: cp.nn.AlphaDropout(0.3), (_I1,)),
    "AvgPool1d": (lambda: cp.nn.AvgPool1d(2), (_I1,)),
    "AvgPool2d": (lambda: cp.nn.AvgPool2d(2), (_I2,)),
    "AvgPool3d": (lambda: cp.nn.AvgPool3d(2), (_I3,)),
    "BCELoss": (lambda: lambda x: cp.nn.BCELoss()(x.sigmoid(), _t(probs(2, 3, 4))), (_I1,)),
    "BCEWithLogitsLoss": (lambda: lambda x: cp.nn.BCEWithLogitsLoss()(x, _t(probs(2, 3, 4))), (_I1,)),
    "BatchNorm1d": (lambda: cp.nn.BatchNorm1d(3, dtype=cp.float64), (_I1,)),
    "BatchNorm2d": (lambda: cp.nn.BatchNorm2d(2, dtype=cp.float64), (_I2,)),
    "BatchNorm3d": (lambda: cp.nn.BatchNorm3d(2, dtype=cp.float64), (_I3,)),
    "CELU": (lambda: cp.nn.CELU(0.5), (_AWAY,)),
    "CircularPad1d": (lambda: cp.nn.CircularPad1d((1, 2)), (_I1,)),
    "CircularPad2d": (lambda: cp.nn.CircularPad2d(1), (_I2,)),
    "CircularPad3d": (lambda: cp.nn.CircularPad3d(1), (_I3,)),
    "ConstantPad1d": (lambda: cp.nn.ConstantPad1d(2, 0.5), (_I1,)),
    "ConstantPad2d": (lambda: cp.nn.ConstantPad2d(1, 0.5), (_I2,)),
    "ConstantPad3d": (lambda: cp.nn.ConstantPad3d(1, 0.5), (_I3,)),
    "Conv1d": (lambda: cp.nn.Conv1d(3, 2, 2, dtype=cp.float64), (_I1,)),
    "Conv2d": (lambda: cp.nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect", dtype=cp.float64),
               (_I2,)),
    "Conv3d": (lambda: cp.nn.Conv3d(2, 1, 2, dtype=cp.float64), (_I3,)),
    "ConvTranspose1d": (lambda: cp.nn.ConvTranspose1d(3, 2, 2, stride=2, dtype=cp.float64), (_I1,)),
    "ConvTranspose2d": (lambda: cp.nn.ConvTranspose2d(2, 2, 2, dtype=cp.float64), (_I2,)),
    "ConvTranspose3d": (lambda: cp.nn.ConvTranspose3d(2, 1, 2, dtype=cp.float64), (_I3,)),
    "CosineEmbeddingLoss": (lambda: lambda a, b: cp.nn.CosineEmbeddingLoss(-0.5)(a, b, _t(_SIGNS)),
                            (normal(3, 4), normal(3, 4, seed=1))),
    "CrossEntropyLoss": (lambda: lambda x: cp.nn.CrossEntropyLoss(label_smoothing=0.1)(
        x, cp.tensor(_LABELS)), (normal(3, 4),)),
    "Dropout": (lambda: cp.nn.Dropout(0.3), (_I1,)),
    "Dropout1d": (lambda: cp.nn.Dropout1d(0.3), (_I1,)),
    "Dropout2d": (lambda: cp.nn.Dropout2d(0.3), (_I2,)),
    "Dropout3d": (lambda: cp.nn.Dropout3d(0.3), (_I3,)),
    "ELU": (lambda: cp.nn.ELU(0.7), (_AWAY,)),
    "FeatureAlphaDropout": (lambda: cp.nn.FeatureAlphaDropout(0.3), (_I1,)),
    "Flatten": (lambda: cp.nn.Flatten(), (_I2,)),
    "Fold": (lambda: cp.nn.Fold((3, 4), 2, padding=1, stride=2), (normal(1, 4, 6),)),
    "GELU": (lambda: cp.nn.GELU("tanh"), (_I1,)),
    "GLU": (lambda: cp.nn.GLU(), (_I1,)),
    "GaussianNLLLoss": (lambda: lambda x, v: cp.nn.GaussianNLLLoss()(x, _t(normal(2, 3, 4, seed=1)), v),
                        (_I1, positive(2, 3, 1, seed=2))),
    "GroupNorm": (lambda: cp.nn.GroupNorm(1, 3, dtype=cp.float64), (_I1,)),
    "Hardshrink": (lambda: cp.nn.Hardshrink(0.1), (_AWAY,)),
    "Hardsigmoid": (lambda: lambda x: cp.nn.Hardsigmoid()(4 * x), (_AWAY,)),
    "Hardswish": (lambda: lambda x: cp.nn.Hardswish()(4 * x), (_AWAY,)),
    "Hardtanh": (lambda: cp.nn.Hardtanh(-0.5, 0.6), (_AWAY,)),
    "HingeEmbeddingLoss": (lambda: lambda x: cp.nn.HingeEmbeddingLoss()(x, _t([1.0, -1, 1, -1])),
                           (away(4),)),
    "HuberLoss": (lambda: lambda x: cp.nn.HuberLoss(delta=0.7)(x, _t(normal(2, 3, 4, seed=1))),
                  (_I1,)),
    "Identity": (lambda: cp.nn.Identity(), (_I1,)),
    "InstanceNorm1d": (lambda: cp.nn.InstanceNorm1d(3, affine=True, dtype=cp.float64), (_I1,)),
    "InstanceNorm2d": (lambda: cp.nn.InstanceNorm2d(2), (_I2,)),
    "InstanceNorm3d": (lambda: cp.nn.InstanceNorm3d(2), (_I3,)),
    "KLDivLoss": (lambda: lambda x: cp.nn.KLDivLoss(reduction="batchmean")(
        x, _t(probs(2, 3, 4, seed=1))), (_I1,)),
    "L1Loss": (lambda: lambda x: cp.nn.L1Loss()(x, _t(normal(2, 3, 4, seed=1))), (_I1,)),
    "LPPool1d": (lambda: cp.nn.LPPool1d(2, 2), (positive(2, 3, 4),)),
    "LPPool2d": (lambda: cp.nn.LPPool2d(3, 2), (positive(1, 2, 4, 4),)),
    "LPPool3d": (lambda: cp.nn.LPPool3d(2, 2), (positive(1, 2, 2, 4, 2),)),
    "LayerNorm": (lambda: cp.nn.LayerNorm(4, dtype=cp.float64), (_I1,)),
    "LeakyReLU": (lambda: cp.nn.LeakyReLU(0.1), (_AWAY,)),
    "Linear": (lambda: cp.nn.Linear(4, 2, dtype=cp.float64), (_I1,)),
    "LocalResponseNorm": (lambda: cp.nn.LocalResponseNorm(2, alpha=0.5), (_I1,)),
    "LogSigmoid": (lambda: cp.nn.LogSigmoid(), (_I1,)),
    "LogSoftmax": (lambda: cp.nn.LogSoftmax(1), (_I1,)),
    "MSELoss": (lambda: lambda x: cp.nn.MSELoss()(x, _t(normal(2, 3, 4, seed=1))), (_I1,)),
    "MarginRankingLoss": (lambda: lambda a, b: cp.nn.MarginRankingLoss(0.2)(a, b, _t(_SIGNS)),
                          (normal(3), normal(3, seed=1))),
    "MaxPool1d": (lambda: cp.nn.MaxPool1d(2), (_I1,)),
    "MaxPool2d": (lambda: cp.nn.MaxPool2d(2), (_I2,)),
    "MaxPool3d": (lambda: cp.nn.MaxPool3d(2), (_I3,)),
    "MaxUnpool1d": (lambda: _unpool(1), (_I1,)),
    "MaxUnpool2d": (lambda: _unpool(2), (_I2,)),
    "MaxUnpool3d": (lambda: _unpool(3), (_I3,)),
    "Mish": (lambda: cp.nn.Mish(), (_I1,)),
    "MultiLabelMarginLoss": (lambda: lambda x: cp.nn.MultiLabelMarginLoss()(
        x, cp.tensor([[3, 0, -1, 1], [1, -1, 0, 0], [-1, 2, 2, 2]])), (normal(3, 4),)),
    "MultiLabelSoftMarginLoss": (lambda: lambda x: cp.nn.MultiLabelSoftMarginLoss()(
        x, _t(probs(3, 4, seed=1))), (normal(3, 4),)),
    "MultiMarginLoss": (lambda: lambda x: cp.nn.MultiMarginLoss(p=2)(x, cp.tensor(_LABELS)),
                        (normal(3, 4),)),
    "NLLLoss": (lambda: lambda x: cp.nn.NLLLoss()(x, cp.tensor(_LABELS)), (normal(3, 4),)),
    "PReLU": (lambda: cp.nn.PReLU(3, dtype=cp.float64), (_AWAY,)),
    "PixelShuffle": (lambda: cp.nn.PixelShuffle(2), (normal(1, 4, 2, 2),)),
    "PixelUnshuffle": (lambda: cp.nn.PixelUnshuffle(2), (_I2,)),
    "PoissonNLLLoss": (lambda: lambda x: cp.nn.PoissonNLLLoss()(x, _t(positive(2, 3, 4))), (_I1,)),
    "RReLU": (lambda: cp.nn.RReLU(0.1, 0.3), (_AWAY,)),
    "ReLU": (lambda: cp.nn.ReLU(), (_AWAY,)),
    "ReLU6": (lambda: lambda x: cp.nn.ReLU6()(x * 8), (_AWAY,)),
    "ReflectionPad1d": (lambda: cp.nn.ReflectionPad1d(2), (_I1,)),
    "ReflectionPad2d": (lambda: cp.nn.ReflectionPad2d(1), (_I2,)),
    "ReflectionPad3d": (lambda: cp.nn.ReflectionPad3d(1), (_I3,)),
    "ReplicationPad1d": (lambda: cp.nn.ReplicationPad1d(2), (_I1,)),
    "ReplicationPad2d": (lambda: cp.nn.ReplicationPad2d(1), (_I2,)),
    "ReplicationPad3d": (lambda: cp.nn.ReplicationPad3d(1), (_I3,)),
    "SELU": (lambda: cp.nn.SELU(), (_AWAY,)),
    "Sequential": (lambda: cp.nn.Sequential(cp.nn.Linear(4, 3, dtype=cp.float64), cp.nn.Tanh()),
                   (_I1,)),
    "SiLU": (lambda: cp.nn.SiLU(), (_I1,)),
    "Sigmoid": (lambda: cp.nn.Sigmoid(), (_I1,)),
    "SmoothL1Loss": (lambda: lambda x: cp.nn.SmoothL1Loss(beta=0.5)(x, _t(normal(2, 3, 4, seed=1))),
                     (_I1,)),
    "SoftMarginLoss": (lambda: lambda x: cp.nn.SoftMarginLoss()(x, _t([[1.0, -1, 1, -1]] * 3)),
                       (normal(3, 4),)),
    "Softmax": (lambda: cp.nn.Softmax(1), (_I1,)),
    "Softmax2d": (lambda: cp.nn.Softmax2d(), (_I2,)),
    "Softmin": (lambda: cp.nn.Softmin(1), (_I1,)),
    "Softplus": (lambda: cp.nn.Softplus(2.0, 2.0), (_I1,)),
    "Softshrink": (lambda: cp.nn.Softshrink(0.1), (_AWAY,)),
    "Softsign": (lambda: cp.nn.Softsign(), (_AWAY,)),
    "Tanh": (lambda: cp.nn.Tanh(), (_I1,)),
    "Tanhshrink": (lambda: cp.nn.Tanhshrink(), (_I1,)),
    "Threshold": (lambda: cp.nn.Threshold(0.1, -2.0), (_AWAY,)),
    "TripletMarginLoss": (lambda: lambda a, p, n: cp.nn.TripletMarginLoss(3.0, swap=True)(a, p, n),
                          (normal(3, 4), normal(3, 4, seed=1), normal(3, 4, seed=2))),
    "Unflatten": (lambda: cp.nn.Unflatten(2, (2, 2)), (_I1,)),
    "Unfold": (lambda: cp.nn.Unfold(2, padding=1, stride=2), (_I2,)),
    "Upsample": (lambda: cp.nn.Upsample(scale_factor=2, mode="linear"), (_I1,)),
    "UpsamplingBilinear2d": (lambda: cp.nn.UpsamplingBilinear2d(scale_factor=2), (_I2,)),
    "UpsamplingNearest2d": (lambda: cp.nn.UpsamplingNearest2d(scale_factor=2), (_I2,)),
    "ZeroPad1d": (lambda: cp.nn.ZeroPad1d(2), (_I1,)),
    "ZeroPad2d": (lambda: cp.nn.ZeroPad2d(1), (_I2,)),
    "ZeroPad3d": (lambda: cp.nn.ZeroPad3d(1), (_I3,)),
}

#: names in ``convprop.nn.__all__`` that are not layers with a forward on tensors
NN_NOT_LAYERS = {"IncompatibleKeys", "Module", "ModuleDict", "ModuleList", "Parameter",
                 "StateDictError", "functional", "init"}


def test_every_nn_module_has_a_case():
    public = set(cp.nn.__all__)
    missing = public - set(MODULES) - NN_NOT_LAYERS
    assert not missing, f"nn modules with no double-backward case: {sorted(missing)}"
    assert set(MODULES) <= public


@pytest.mark.parametrize("name", sorted(MODULES))
def test_nn_module_double_backward(name):
    """A second derivative through the input and every parameter, and ``gradgradcheck`` on
    the input (the default stream is reseeded before each call: one dropout mask throughout)."""
    factory, arrays = MODULES[name]
    module = factory()
    params = list(module.parameters()) if isinstance(module, cp.nn.Module) else []
    xs = [cp.tensor(a, requires_grad=True) for a in arrays]
    cp.manual_seed(0)
    y = module(*xs)
    targets = xs + params
    gs = cp.grad((y * cp.tensor(normal(*y.shape, seed=7))).sum() ** 2, targets, create_graph=True,
                 allow_unused=True)
    dot = sum((g.sum() ** 2 for g in gs if g is not None and g.requires_grad), start=cp.tensor(0.0))
    cp.grad(dot, targets, allow_unused=True)  # raises, naming the op, where a rule is missing

    def seeded(*ts: cp.Tensor) -> cp.Tensor:
        cp.manual_seed(0)
        return module(*ts)
    assert cp.gradgradcheck(seeded, *xs)

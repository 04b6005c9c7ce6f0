"""Higher-order gradients: ``create_graph=True``, :func:`convprop.grad`, second and third
derivatives of every covered op against PyTorch (float64, <= 1e-10), ``gradgradcheck``
on each op, a hypothesis sweep over convolution configurations, ``hvp``/``jvp``, and the
error rules (freed graphs, ops without a differentiable backward, unused inputs).

Most cases are written once as ``fn(M, F, *xs)`` and run twice: with ``M, F`` =
``convprop, convprop.functional`` and with ``torch, torch.nn.functional`` (the two
share names, argument orders and defaults).
"""

from __future__ import annotations

import runpy
from pathlib import Path

import backends
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import require_torch as import_torch

import convprop as cp
import convprop.functional as F
from convprop.gradcheck import GradcheckError

TOL = 1e-10
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: worst error and number of compared derivatives of the conv sweep (read by the report)
SWEEP = {"cases": 0, "worst": 0.0}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def normal(*shape, seed=0):
    return _rng(seed).standard_normal(shape)


def positive(*shape, seed=0):
    return _rng(seed).uniform(0.5, 2.0, shape)


def away(*shape, seed=0):
    """Values at least 0.2 from 0 (no kinks of abs/relu/... near them)."""
    a = _rng(seed).uniform(0.2, 1.5, shape)
    return a * _rng(seed + 1).choice([-1.0, 1.0], shape)


def probs(*shape, seed=0):
    return _rng(seed).uniform(0.1, 0.9, shape)


def second_order(torch, fn, arrays, const=(), seed=0):
    """Compare ``fn``'s value, first derivatives (``create_graph=True``) and second
    derivatives (the gradient of a random projection of the first) with PyTorch.

    ``fn(M, F, *xs, *const)``: ``xs`` are differentiable Tensors built from ``arrays``,
    ``const`` extra non-differentiable arguments (each a function of the module ``M``).
    Returns the largest difference, relative to the size of PyTorch's value where that
    exceeds 1 (``|ours - torch| / max(1, |torch|)``)."""
    rng = _rng(seed + 100)
    ours = [cp.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(cp, F, *ours, *(c(cp) for c in const))
    ty = fn(torch, torch.nn.functional, *theirs, *(c(torch) for c in const))
    worst = _err(y.data, ty.detach().numpy())
    v = rng.standard_normal(y.shape)
    g = cp.grad((y * cp.tensor(v)).sum(), ours, create_graph=True, allow_unused=True)
    tg = torch.autograd.grad((ty * torch.tensor(v)).sum(), theirs, create_graph=True,
                             allow_unused=True)
    us = [rng.standard_normal(a.shape) for a in arrays]
    dot = sum((a * cp.tensor(u)).sum() for a, u in zip(g, us) if a is not None)
    tdot = sum((a * torch.tensor(u)).sum() for a, u in zip(tg, us) if a is not None)
    for a, t in zip(g, tg):
        assert (a is None) == (t is None)
        if a is not None:
            worst = max(worst, _err(a.data, t.detach().numpy()))
    h = cp.grad(dot, ours, allow_unused=True) if isinstance(dot, cp.Tensor) and \
        dot.requires_grad else [None] * len(ours)
    th = torch.autograd.grad(tdot, theirs, allow_unused=True) if isinstance(
        tdot, torch.Tensor) and tdot.requires_grad else [None] * len(ours)
    for a, t in zip(h, th):
        ad = 0.0 if a is None else a.data
        td = 0.0 if t is None else t.numpy()
        worst = max(worst, _err(ad, td))
    return worst


def _err(ours, theirs) -> float:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    return float(np.max(np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs)), initial=0.0))


def cube(f):
    """``f(...) ** 3``: makes every op's second derivative matter, linear ones included."""
    return lambda M, F, *xs: f(M, F, *xs) ** 3


def _assign(M, F, x, y):
    """``z[index] = value`` on a non-leaf (a recorded assignment)."""
    z = x * 1.0
    z[0:2, 1] = y * y
    return z**3


def _in_place(M, F, x, y):
    z = x * 1.0
    z *= y
    z += 1.0
    return z**2


# (id, fn(M, F, *xs), arrays) -- each runs against PyTorch and through gradgradcheck
OPS = [
    ("add", lambda M, F, x, y: (x + y) * x * y, (normal(3, 4), normal(4, seed=1))),
    ("sub", lambda M, F, x, y: (x - y) * (x - 2.5 * y), (normal(3, 4), normal(3, 1, seed=1))),
    ("mul", lambda M, F, x, y: x * y * y, (normal(3, 4), normal(3, 4, seed=1))),
    ("div", lambda M, F, x, y: x / y + 1 / x, (away(3, 4), away(3, 4, seed=1))),
    ("neg", cube(lambda M, F, x: -x), (normal(3, 4),)),
    ("pow-int", lambda M, F, x: x**3 + x**2, (normal(3, 4),)),
    ("pow-frac", lambda M, F, x: x**1.7 + x**-0.5, (positive(3, 4),)),
    ("pow-tensor", lambda M, F, a, e: a**e, (positive(3, 4), normal(3, 4, seed=1))),
    ("rpow", lambda M, F, e: 2.0**e, (normal(3, 4),)),
    ("exp", lambda M, F, x: x.exp(), (normal(3, 4),)),
    ("log", lambda M, F, x: x.log(), (positive(3, 4),)),
    ("sqrt", lambda M, F, x: x.sqrt(), (positive(3, 4),)),
    ("abs", cube(lambda M, F, x: x.abs()), (away(3, 4),)),
    ("sigmoid", lambda M, F, x: x.sigmoid(), (normal(3, 4),)),
    ("tanh", lambda M, F, x: x.tanh(), (normal(3, 4),)),
    ("relu", cube(lambda M, F, x: x.relu()), (away(3, 4),)),
    ("maximum", cube(lambda M, F, x, y: M.maximum(x, y)), (normal(3, 4), normal(3, 4, seed=1))),
    ("minimum", cube(lambda M, F, x, y: M.minimum(x, y)), (normal(3, 4), normal(3, 4, seed=1))),
    ("where", cube(lambda M, F, x, y: M.where(x > y, x, y * 2)),
     (normal(3, 4), normal(3, 4, seed=1))),
    ("clamp", cube(lambda M, F, x: x.clamp(-0.5, 0.7)), (away(3, 4),)),
    ("clamp-tensor", cube(lambda M, F, x, lo: x.clamp(min=lo)),
     (normal(3, 4), normal(3, 4, seed=1))),
    ("matmul", lambda M, F, a, b: (a @ b).tanh(), (normal(3, 4), normal(4, 5, seed=1))),
    ("matmul-vec", lambda M, F, a, b: (a @ b).tanh(), (normal(4), normal(4, 5, seed=1))),
    ("matmul-batch", lambda M, F, a, b: (a @ b).tanh(), (normal(2, 3, 4), normal(4, seed=1))),
    ("matmul-dot", lambda M, F, a, b: (a @ b) ** 2, (normal(4), normal(4, seed=1))),
    ("sum", cube(lambda M, F, x: x.sum(1)), (normal(3, 4),)),
    ("sum-keepdim", cube(lambda M, F, x: x.sum((0, 2), keepdim=True)), (normal(2, 3, 4),)),
    ("mean", cube(lambda M, F, x: x.mean(0)), (normal(3, 4),)),
    ("var", lambda M, F, x: x.var(1), (normal(3, 4),)),
    ("var-biased", lambda M, F, x: x.var(0, unbiased=False), (normal(3, 4),)),
    ("std", lambda M, F, x: x.std(1), (normal(3, 4),)),
    ("logsumexp", lambda M, F, x: x.logsumexp(1), (normal(3, 4),)),
    ("norm-2", lambda M, F, x: x.norm(), (normal(3, 4),)),
    ("norm-dim", lambda M, F, x: x.norm(2, 1), (normal(3, 4),)),
    ("norm-3", lambda M, F, x: x.norm(3, 1), (away(3, 4),)),
    ("norm-1.5", lambda M, F, x: x.norm(1.5), (away(3, 4),)),
    ("norm-1", cube(lambda M, F, x: x.norm(1, 0)), (away(3, 4),)),
    ("norm-inf", cube(lambda M, F, x: x.norm(float("inf"), 1)), (normal(3, 4),)),
    ("amax", cube(lambda M, F, x: x.amax(1)), (normal(3, 4),)),
    ("max-all", cube(lambda M, F, x: x.max()), (normal(3, 4),)),
    ("max-dim", cube(lambda M, F, x: x.max(1).values), (normal(3, 4),)),
    ("min-dim", cube(lambda M, F, x: x.min(0, keepdim=True).values), (normal(3, 4),)),
    ("reshape", cube(lambda M, F, x: x.reshape(4, 3)), (normal(3, 4),)),
    ("permute", cube(lambda M, F, x: x.permute(2, 0, 1)), (normal(2, 3, 4),)),
    ("transpose", cube(lambda M, F, x: x.transpose(0, 1)), (normal(3, 4),)),
    ("expand", cube(lambda M, F, x: x.expand(2, 3, 4)), (normal(3, 1),)),
    ("repeat", cube(lambda M, F, x: x.repeat(2, 1, 2)), (normal(3, 4),)),
    ("squeeze", cube(lambda M, F, x: x.unsqueeze(0).squeeze(0).flatten()), (normal(3, 4),)),
    ("getitem-basic", cube(lambda M, F, x: x[1:, ::2]), (normal(3, 4),)),
    ("getitem-advanced", cube(lambda M, F, x: x[[0, 2, 0], [1, 1, 3]]), (normal(3, 4),)),
    ("getitem-mask", cube(lambda M, F, x: x[x > 0]), (normal(3, 4),)),
    ("cat", cube(lambda M, F, x, y: M.cat([x, y * y], 1)), (normal(3, 4), normal(3, 2, seed=1))),
    ("stack", cube(lambda M, F, x, y: M.stack([x, y], 0)), (normal(3, 4), normal(3, 4, seed=1))),
    ("clone", cube(lambda M, F, x: x.clone()), (normal(3, 4),)),
    ("setitem", _assign, (normal(3, 4), normal(2, seed=1))),
    ("in-place", _in_place, (normal(3, 4), normal(3, 4, seed=1))),
    ("parameters_to_vector", cube(lambda M, F, x, y: M.nn.utils.parameters_to_vector([x, y])),
     (normal(3, 4), normal(2, seed=1))),
    ("linear", lambda M, F, x, w, b: F.linear(x, w, b).tanh(),
     (normal(2, 3, 4), normal(5, 4, seed=1), normal(5, seed=2))),
    ("linear-nobias", lambda M, F, x, w: F.linear(x, w) ** 2, (normal(3, 4), normal(5, 4, seed=1))),
    # activations
    ("leaky_relu", cube(lambda M, F, x: F.leaky_relu(x, 0.1)), (away(3, 4),)),
    ("elu", lambda M, F, x: F.elu(x, 0.7), (away(3, 4),)),
    ("celu", lambda M, F, x: F.celu(x, 0.5), (away(3, 4),)),
    ("selu", lambda M, F, x: F.selu(x), (away(3, 4),)),
    ("gelu", lambda M, F, x: F.gelu(x), (normal(3, 4),)),
    ("gelu-tanh", lambda M, F, x: F.gelu(x, approximate="tanh"), (normal(3, 4),)),
    ("silu", lambda M, F, x: F.silu(x), (normal(3, 4),)),
    ("mish", lambda M, F, x: F.mish(x), (normal(3, 4),)),
    ("softplus", lambda M, F, x: F.softplus(x, beta=2.0, threshold=2.0), (normal(3, 4),)),
    ("softsign", lambda M, F, x: F.softsign(x), (away(3, 4),)),
    ("logsigmoid", lambda M, F, x: F.logsigmoid(x), (normal(3, 4),)),
    ("tanhshrink", lambda M, F, x: F.tanhshrink(x), (normal(3, 4),)),
    ("hardtanh", cube(lambda M, F, x: F.hardtanh(x, -0.5, 0.6)), (away(3, 4),)),
    ("hardswish", lambda M, F, x: F.hardswish(x * 4), (away(3, 4),)),
    ("softshrink", cube(lambda M, F, x: F.softshrink(x, 0.1)), (away(3, 4),)),
    ("prelu", cube(lambda M, F, x, w: F.prelu(x, w)), (away(2, 3, 4), positive(3, seed=1))),
    ("glu", lambda M, F, x: F.glu(x, 1), (normal(3, 4),)),
    ("softmax", lambda M, F, x: F.softmax(x, 1), (normal(3, 4),)),
    ("log_softmax", lambda M, F, x: F.log_softmax(x, 0), (normal(3, 4),)),
    # losses
    ("mse", lambda M, F, x, y: F.mse_loss(x.tanh(), y), (normal(3, 4), normal(3, 4, seed=1))),
    ("mse-sum", lambda M, F, x, y: F.mse_loss(x, y.exp(), reduction="sum"),
     (normal(3, 4), normal(3, 4, seed=1))),
    ("l1", lambda M, F, x, y: F.l1_loss(x ** 3, y, reduction="none"),
     (normal(3, 4), normal(3, 4, seed=1))),
    ("smooth_l1", lambda M, F, x, y: F.smooth_l1_loss(x ** 3, y, beta=0.5),
     (normal(3, 4), normal(3, 4, seed=1))),
    ("huber", lambda M, F, x, y: F.huber_loss(x ** 3, y, delta=0.7),
     (normal(3, 4), normal(3, 4, seed=1))),
    ("bce", lambda M, F, x, y: F.binary_cross_entropy(x, y), (probs(3, 4), probs(3, 4, seed=1))),
    ("bce-logits", lambda M, F, x, y: F.binary_cross_entropy_with_logits(x, y),
     (normal(3, 4), probs(3, 4, seed=1))),
    ("cross_entropy", lambda M, F, x: F.cross_entropy(x, M.tensor([0, 3, 1])), (normal(3, 4),)),
    ("cross_entropy-2d", lambda M, F, x: F.cross_entropy(
        x, M.tensor([[[0, 2], [1, 1]], [[2, 0], [1, 2]]]),
        weight=M.tensor([0.5, 1.0, 2.0], dtype=M.float64),
        label_smoothing=0.1, reduction="sum"), (normal(2, 3, 2, 2),)),
    ("cross_entropy-probs", lambda M, F, x, p: F.cross_entropy(x, F.softmax(p, 1)),
     (normal(3, 4), normal(3, 4, seed=1))),
    ("nll", lambda M, F, x: F.nll_loss(F.log_softmax(x, 1), M.tensor([0, 3, 1])),
     (normal(3, 4),)),
    ("kl_div", lambda M, F, x, y: F.kl_div(F.log_softmax(x, 1), F.softmax(y, 1),
                                           reduction="batchmean"),
     (normal(3, 4), normal(3, 4, seed=1))),
    ("kl_div-log_target", lambda M, F, x, y: F.kl_div(x, y, reduction="sum", log_target=True),
     (normal(3, 4), normal(3, 4, seed=1))),
    ("poisson_nll", lambda M, F, x, y: F.poisson_nll_loss(x, y), (normal(3, 4), positive(3, 4))),
    ("poisson_nll-rate", lambda M, F, x, y: F.poisson_nll_loss(x, y, log_input=False),
     (positive(3, 4), positive(3, 4, seed=1))),
    ("margin_ranking", cube(lambda M, F, a, b, y: F.margin_ranking_loss(a, b, y, 0.2,
                                                                       reduction="none")),
     (normal(6), normal(6, seed=1), np.array([1.0, -1, 1, 1, -1, -1]))),
    ("soft_margin", lambda M, F, x: F.soft_margin_loss(x, M.tensor([[1.0, -1, 1, -1]] * 3,
                                                                    dtype=M.float64)),
     (normal(3, 4),)),
    ("hinge_embedding", cube(lambda M, F, x: F.hinge_embedding_loss(
        x, M.tensor([1.0, -1, 1, -1], dtype=M.float64), reduction="none")), (away(4),)),
    ("gaussian_nll", lambda M, F, x, y, v: F.gaussian_nll_loss(x, y, v),
     (normal(3, 4), normal(3, 4, seed=1), positive(3, 1, seed=2))),
    ("gaussian_nll-row", lambda M, F, x, y, v: F.gaussian_nll_loss(x, y, v, reduction="sum"),
     (normal(3, 4), normal(3, 4, seed=1), positive(3, seed=2))),
    ("multilabel_soft_margin", lambda M, F, x, y: F.multilabel_soft_margin_loss(
        x, y, weight=M.tensor([0.5, 1.0, 2.0, 1.5], dtype=M.float64)),
     (normal(3, 4), probs(3, 4, seed=1))),
    # pooling and padding
    ("max_pool1d", cube(lambda M, F, x: F.max_pool1d(x, 3, 2, 1)), (normal(2, 2, 7),)),
    ("max_pool2d", cube(lambda M, F, x: F.max_pool2d(x, 2)), (normal(2, 2, 4, 4),)),
    ("max_pool2d-overlap", cube(lambda M, F, x: F.max_pool2d(x, 3, 1, 1, dilation=1)),
     (normal(1, 2, 4, 5),)),
    ("max_pool3d", cube(lambda M, F, x: F.max_pool3d(x, 2, ceil_mode=True)), (normal(1, 2, 3, 3, 3),)),
    ("avg_pool2d", cube(lambda M, F, x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
     (normal(2, 2, 5, 5),)),
    ("avg_pool1d", cube(lambda M, F, x: F.avg_pool1d(x, 2, ceil_mode=True)), (normal(2, 2, 5),)),
    ("adaptive_avg_pool2d", cube(lambda M, F, x: F.adaptive_avg_pool2d(x, (2, 3))),
     (normal(2, 2, 5, 4),)),
    ("adaptive_avg_pool-global", cube(lambda M, F, x: F.adaptive_avg_pool2d(x, 1)),
     (normal(2, 2, 5, 4),)),
    ("adaptive_max_pool2d", cube(lambda M, F, x: F.adaptive_max_pool2d(x, (2, 3))),
     (normal(2, 2, 5, 4),)),
    ("lp_pool2d", lambda M, F, x: F.lp_pool2d(x, 3, 2), (positive(1, 2, 4, 4),)),
    ("max_unpool2d", cube(lambda M, F, x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True),
                                                          2)), (normal(1, 2, 4, 4),)),
    ("pad-constant", cube(lambda M, F, x: F.pad(x, (1, 2, -1, 1), value=0.5)), (normal(1, 2, 3, 4),)),
    ("pad-reflect", cube(lambda M, F, x: F.pad(x, (2, 1, 1, 2), mode="reflect")),
     (normal(1, 2, 3, 4),)),
    ("pad-replicate", cube(lambda M, F, x: F.pad(x, (2, 1), mode="replicate")), (normal(1, 2, 3),)),
    ("pad-circular", cube(lambda M, F, x: F.pad(x, (1, 2, 2, 1), mode="circular")),
     (normal(1, 2, 3, 4),)),
    ("unfold", cube(lambda M, F, x: F.unfold(x, 2, padding=1, stride=2)), (normal(1, 2, 3, 4),)),
    ("fold", cube(lambda M, F, x: F.fold(x, (3, 4), 2, padding=1, stride=2)), (normal(1, 8, 6),)),
    ("interpolate-bilinear", cube(lambda M, F, x: F.interpolate(
        x, scale_factor=2, mode="bilinear", align_corners=False)), (normal(1, 2, 2, 3),)),
    ("interpolate-nearest", cube(lambda M, F, x: F.interpolate(x, size=5)), (normal(1, 2, 3),)),
    # normalisation
    ("batch_norm-train", lambda M, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True)
     ** 2, (normal(4, 3, 2), normal(3, seed=1), normal(3, seed=2))),
    ("batch_norm-eval", lambda M, F, x, w, b: F.batch_norm(
        x, M.tensor([0.1, -0.2, 0.3], dtype=M.float64), M.tensor([1.5, 0.5, 2.0], dtype=M.float64),
        w, b) ** 3, (normal(4, 3, 2), normal(3, seed=1), normal(3, seed=2))),
    ("layer_norm", lambda M, F, x, w, b: F.layer_norm(x, (3, 2), w, b) ** 2,
     (normal(4, 3, 2), normal(3, 2, seed=1), normal(3, 2, seed=2))),
    ("group_norm", lambda M, F, x, w, b: F.group_norm(x, 2, w, b) ** 2,
     (normal(3, 4, 3), normal(4, seed=1), normal(4, seed=2))),
    ("instance_norm", lambda M, F, x: F.instance_norm(x) ** 2, (normal(2, 2, 4),)),
    # convolution (the sweep below covers the options; these also run gradgradcheck)
    ("conv1d", lambda M, F, x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2).tanh(),
     (normal(2, 2, 7), normal(3, 2, 2, seed=1), normal(3, seed=2))),
    ("conv2d-groups", lambda M, F, x, w: F.conv2d(x, w, groups=2, padding="same").tanh(),
     (normal(1, 4, 4, 3), normal(2, 2, 3, 3, seed=1))),
    ("conv2d-reflect", lambda M, F, x, w: F.conv2d(x, w, padding=1, padding_mode="reflect")
     if M is cp else F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w), (
         normal(1, 2, 4, 3), normal(2, 2, 2, 2, seed=1))),
    ("conv3d", lambda M, F, x, w: F.conv3d(x, w, stride=(1, 2, 1)) ** 2,
     (normal(1, 2, 3, 4, 3), normal(2, 2, 2, 2, 2, seed=1))),
    ("conv_transpose2d", lambda M, F, x, w, b: F.conv_transpose2d(
        x, w, b, stride=2, padding=1, output_padding=1).tanh(),
     (normal(1, 2, 3, 3), normal(2, 3, 2, 2, seed=1), normal(3, seed=2))),
    ("conv_transpose1d-groups", lambda M, F, x, w: F.conv_transpose1d(
        x, w, groups=2, dilation=2) ** 2, (normal(2, 4, 3), normal(4, 1, 2, seed=1))),
    # the pair and triplet losses, and the ops merged after the rules above
    ("cosine_embedding", lambda M, F, a, b: F.cosine_embedding_loss(
        a, b, M.tensor([1.0, -1, -1, 1], dtype=M.float64), margin=-0.3),
     (normal(4, 3), normal(4, 3, seed=1))),
    ("cosine_embedding-1d-sum", lambda M, F, a, b: F.cosine_embedding_loss(
        a, b, M.tensor(-1.0, dtype=M.float64), reduction="sum"), (normal(5), normal(5, seed=3))),
    ("cosine_embedding-none", lambda M, F, a, b: F.cosine_embedding_loss(
        a, b, M.tensor([1.0, -1, 1], dtype=M.float64), margin=-0.9, reduction="none") ** 2,
     (normal(3, 4), normal(3, 4, seed=1))),
    ("triplet_margin", lambda M, F, a, p, n: F.triplet_margin_loss(a, p, n, margin=3.0),
     (normal(3, 4), normal(3, 4, seed=1), normal(3, 4, seed=2))),
    ("triplet_margin-p3-swap", lambda M, F, a, p, n: F.triplet_margin_loss(
        a, p, n, margin=2.0, p=3, swap=True, reduction="sum"),
     (normal(4, 3), normal(4, 3, seed=1), normal(4, 3, seed=5))),
    ("triplet_margin-p1.5-none", lambda M, F, a, p, n: F.triplet_margin_loss(
        a, p, n, margin=4.0, p=1.5, reduction="none") ** 2,
     (normal(3, 4), normal(3, 4, seed=1), normal(3, 4, seed=2))),
    ("triplet_margin-1d", lambda M, F, a, p, n: F.triplet_margin_loss(a, p, n, margin=2.5, p=2.5),
     (normal(4), normal(4, seed=1), normal(4, seed=2))),
    ("triplet_margin-p1", lambda M, F, a, p, n: F.triplet_margin_loss(a, p, n, margin=5.0, p=1) ** 3,
     (normal(3, 4), normal(3, 4, seed=1), normal(3, 4, seed=2))),
    ("triplet_margin-inf", lambda M, F, a, p, n: F.triplet_margin_loss(
        a, p, n, margin=3.0, p=float("inf")) ** 3,
     (normal(3, 4), normal(3, 4, seed=1), normal(3, 4, seed=2))),
    ("pixel_shuffle", cube(lambda M, F, x: F.pixel_shuffle(x, 2)), (normal(1, 8, 2, 3),)),
    ("pixel_unshuffle", cube(lambda M, F, x: F.pixel_unshuffle(x, 2)), (normal(2, 1, 4, 2),)),
    ("local_response_norm", lambda M, F, x: F.local_response_norm(x, 3, alpha=0.5, beta=0.6, k=1.5),
     (normal(2, 5, 3),)),
    ("local_response_norm-2d", lambda M, F, x: F.local_response_norm(x, 2, alpha=0.3),
     (normal(1, 4, 2, 3),)),
    ("rrelu-eval", cube(lambda M, F, x: F.rrelu(x, 0.1, 0.3)), (away(3, 4),)),
    ("softmax2d", lambda M, F, x: F.softmax2d(x) if M is cp else F.softmax(x, -3),
     (normal(2, 3, 2, 2),)),
    ("softmin", lambda M, F, x: F.softmin(x, 1), (normal(3, 4),)),
    ("relu6", cube(lambda M, F, x: F.relu6(x * 4)), (away(3, 4),)),
    ("threshold", cube(lambda M, F, x: F.threshold(x, 0.1, -2.0)), (away(3, 4),)),
    ("hardshrink", cube(lambda M, F, x: F.hardshrink(x, 0.3)), (away(3, 4),)),
    ("prelu-shared", cube(lambda M, F, x, w: F.prelu(x, w)), (away(2, 3, 2), positive(1, seed=1))),
    ("glu-dim0", lambda M, F, x: F.glu(x, 0).exp(), (normal(4, 3),)),
    ("lp_pool1d", lambda M, F, x: F.lp_pool1d(x, 2, 3, 2), (positive(2, 2, 7),)),
    ("lp_pool3d", lambda M, F, x: F.lp_pool3d(x, 1.5, 2), (positive(1, 1, 2, 4, 2),)),
    ("max_unpool1d", cube(lambda M, F, x: F.max_unpool1d(*F.max_pool1d(x, 2, return_indices=True),
                                                          2, output_size=[7])), (normal(1, 2, 7),)),
    ("max_unpool3d", cube(lambda M, F, x: F.max_unpool3d(*F.max_pool3d(x, 2, return_indices=True),
                                                          2)), (normal(1, 1, 2, 4, 2),)),
    ("adaptive_avg_pool1d", cube(lambda M, F, x: F.adaptive_avg_pool1d(x, 3)), (normal(2, 2, 5),)),
    ("adaptive_max_pool3d", cube(lambda M, F, x: F.adaptive_max_pool3d(x, 2)), (normal(1, 1, 3, 3, 2),)),
    ("avg_pool3d", cube(lambda M, F, x: F.avg_pool3d(x, 2, 1, 1, count_include_pad=False)),
     (normal(1, 1, 2, 3, 2),)),
    ("interpolate-linear-corners", cube(lambda M, F, x: F.interpolate(x, size=5, mode="linear",
                                                                     align_corners=True)),
     (normal(1, 2, 3),)),
    ("interpolate-area", cube(lambda M, F, x: F.interpolate(x, size=(2, 3), mode="area")),
     (normal(1, 1, 4, 5),)),
    ("interpolate-trilinear", cube(lambda M, F, x: F.interpolate(x, scale_factor=2, mode="trilinear")),
     (normal(1, 1, 2, 1, 2),)),
    ("dropout-eval", cube(lambda M, F, x: F.dropout(x, 0.4, training=False)), (normal(3, 4),)),
    ("alpha_dropout-eval", cube(lambda M, F, x: F.alpha_dropout(x, 0.4)), (normal(3, 4),)),
    ("unflatten", cube(lambda M, F, x: M.nn.Unflatten(1, (2, 2))(x)), (normal(3, 4),)),
    ("flatten-module", cube(lambda M, F, x: M.nn.Flatten()(x)), (normal(2, 3, 2),)),
    ("narrow-split-chunk", lambda M, F, x: x.narrow(1, 1, 3).split([1, 2], 1)[1].chunk(2, 0)[0] ** 3,
     (normal(4, 4),)),
]


# ops whose second derivative PyTorch does not implement ("derivative for
# aten::multi_margin_loss_backward is not implemented", the same for
# multilabel_margin_loss and hardsigmoid): gradgradcheck only
BEYOND_TORCH = [
    ("multilabel_margin", cube(lambda M, F, x: F.multilabel_margin_loss(
        x, M.tensor([[3, 0, -1, 1], [1, -1, 0, 0], [-1, 2, 2, 2]]), reduction="none")),
     (normal(3, 4),)),
    ("multilabel_margin-mean", cube(lambda M, F, x: F.multilabel_margin_loss(
        x, M.tensor([[2, 1, -1, 0], [0, 3, 1, 2]]))), (normal(2, 4),)),
    ("hardsigmoid", cube(lambda M, F, x: F.hardsigmoid(x * 4)), (away(3, 4),)),
    ("multi_margin", cube(lambda M, F, x: F.multi_margin_loss(x, M.tensor([0, 3, 1]), margin=2.0,
                                                             reduction="none")),
     (normal(3, 4),)),
    ("multi_margin-p2", lambda M, F, x: F.multi_margin_loss(
        x, M.tensor([0, 3, 1]), p=2, weight=M.tensor([0.5, 1.0, 2.0, 1.5], dtype=M.float64)),
     (normal(3, 4),)),
]


@pytest.mark.parametrize("case", OPS, ids=[c[0] for c in OPS])
def test_second_derivatives_match_torch(torch, case):
    _, fn, arrays = case
    assert second_order(torch, fn, arrays) <= TOL


# gradgradcheck takes 2 evaluations per input element: small inputs only
GRADGRAD = [c for c in OPS + BEYOND_TORCH if sum(a.size for a in c[2]) <= 40]


@pytest.mark.parametrize("case", GRADGRAD, ids=[c[0] for c in GRADGRAD])
def test_gradgradcheck(case):
    _, fn, arrays = case
    xs = [cp.tensor(a, requires_grad=True) for a in arrays]
    assert cp.gradgradcheck(lambda *t: fn(cp, F, *t), *xs)


def test_every_op_case_runs_gradgradcheck_or_is_large():
    """The size filter above must not silently drop most cases."""
    assert len(GRADGRAD) >= 0.8 * len(OPS)


# ------------------------------------------------------------------ the conv sweep
@st.composite
def conv_configs(draw):
    nd = draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    groups = draw(st.integers(1, 2))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    size = tuple(e + draw(st.integers(0, 3)) for e in extent)
    if nd == 3:  # keep 3-D cases small
        size = tuple(min(s, 4) for s in size)
        size = tuple(max(s, e) for s, e in zip(size, extent))
    cfg = dict(nd=nd, transposed=transposed, groups=groups, cin=cin, cout=cout, kernel=kernel,
               stride=stride, dilation=dilation, size=size, bias=draw(st.booleans()),
               batch=draw(st.integers(1, 2)), mode="zeros")
    if transposed:
        cfg["padding"] = tuple(draw(st.integers(0, (d * (k - 1)) // 2))
                               for k, d in zip(kernel, dilation))
        cfg["output_padding"] = tuple(draw(st.integers(0, max(s, d) - 1))
                                      for s, d in zip(stride, dilation))
        return cfg
    form = draw(st.sampled_from(["int", "tuple", "same", "valid", "mode"]))
    if form == "same":
        cfg["stride"] = (1,) * nd
        cfg["padding"] = "same"
    elif form == "valid":
        cfg["padding"] = "valid"
    elif form == "int":
        cfg["padding"] = draw(st.integers(0, 2))
    else:
        cfg["padding"] = tuple(draw(st.integers(0, 2)) for _ in range(nd))
        if form == "mode":
            cfg["mode"] = draw(st.sampled_from(["reflect", "replicate", "circular"]))
            cfg["padding"] = tuple(min(p, s - 1) for p, s in zip(cfg["padding"], size))
    return cfg


def _conv_fn(cfg):
    nd = cfg["nd"]

    def fn(M, F, x, w, *b):
        bias = b[0] if b else None
        if cfg["transposed"]:
            op = getattr(F, f"conv_transpose{nd}d")
            y = op(x, w, bias, cfg["stride"], cfg["padding"], cfg["output_padding"],
                   cfg["groups"], cfg["dilation"])
        elif cfg["mode"] != "zeros" and M is not cp:  # torch: explicit padding, then conv
            flat = [p for p in reversed(cfg["padding"]) for p in (p, p)]
            y = getattr(F, f"conv{nd}d")(F.pad(x, flat, mode=cfg["mode"]), w, bias,
                                         cfg["stride"], 0, cfg["dilation"], cfg["groups"])
        else:
            extra = (cfg["mode"],) if M is cp else ()  # torch's F.conv has no padding_mode
            y = getattr(F, f"conv{nd}d")(x, w, bias, cfg["stride"], cfg["padding"],
                                         cfg["dilation"], cfg["groups"], *extra)
        return y.tanh()  # a non-linearity so that every second derivative is non-zero

    return fn


def _conv_arrays(cfg, seed):
    rng = _rng(seed)
    nd, g = cfg["nd"], cfg["groups"]
    x = rng.standard_normal((cfg["batch"], cfg["cin"]) + cfg["size"]) * 0.5
    if cfg["transposed"]:
        w = rng.standard_normal((cfg["cin"], cfg["cout"] // g) + cfg["kernel"]) * 0.5
    else:
        w = rng.standard_normal((cfg["cout"], cfg["cin"] // g) + cfg["kernel"]) * 0.5
    arrays = [x, w]
    if cfg["bias"]:
        arrays.append(rng.standard_normal(cfg["cout"]))
    assert len(cfg["size"]) == nd
    return arrays


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("backend", backends.params())
@settings(max_examples=100)
@given(conv_configs(), st.integers(0, 2**16))
def test_conv_second_derivatives_sweep(backend, cfg, seed):
    torch = import_torch()
    with backends.running_on(backend):
        err = second_order(torch, _conv_fn(cfg), _conv_arrays(cfg, seed), seed=seed)
    SWEEP["cases"] += 1
    SWEEP["worst"] = max(SWEEP["worst"], err)
    assert err <= TOL, cfg


# ------------------------------------------------------------------ third derivatives
def _third(torch, fn, arrays, seed=0):
    """d/dx_k of (u2 · d/dx_j (u1 · d/dx_i (v · fn))) for all inputs, against torch."""
    results = []
    for lib, mod, make in ((cp, F, lambda a: cp.tensor(a, requires_grad=True)),
                           (torch, torch.nn.functional,
                            lambda a: torch.tensor(a, requires_grad=True))):
        xs = [make(a) for a in arrays]
        grad = cp.grad if lib is cp else torch.autograd.grad
        wrap = cp.tensor if lib is cp else torch.tensor
        r = np.random.default_rng(seed)
        y = fn(lib, mod, *xs)
        s = (y * wrap(r.standard_normal(tuple(y.shape)))).sum()
        for _ in range(2):
            gs = grad(s, xs, create_graph=True)
            s = sum((g * wrap(r.standard_normal(tuple(g.shape)))).sum() for g in gs)
        out = grad(s, xs)
        results.append([np.asarray(o.data if lib is cp else o.numpy()) for o in out])
    return max(float(np.max(np.abs(a - b))) for a, b in zip(*results))


def test_third_derivative_sigmoid(torch):
    assert _third(torch, lambda M, F, x: x.sigmoid(), [normal(3, 4)]) <= TOL


@pytest.mark.parametrize("transposed", [False, True])
def test_third_derivative_conv(torch, transposed):
    def fn(M, F, x, w):
        if transposed:
            return F.conv_transpose2d(x, w, stride=2, padding=1).sigmoid()
        return F.conv2d(x, w, stride=(2, 1), dilation=(1, 2), padding=1).sigmoid()

    w = normal(*((2, 3) if transposed else (3, 2)), 2, 3, seed=1) * 0.5
    assert _third(torch, fn, [normal(1, 2, 5, 5) * 0.5, w]) <= TOL


def test_third_derivative_by_finite_differences():
    """d^3/dx^3 of sum(sigmoid(x)) is s(1-s)(1-6s+6s^2), elementwise."""
    x = cp.tensor(normal(5), requires_grad=True)
    (g,) = cp.grad(x.sigmoid().sum(), x, create_graph=True)
    (h,) = cp.grad(g.sum(), x, create_graph=True)
    (t,) = cp.grad(h.sum(), x)
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(t.data, s * (1 - s) * (1 - 6 * s + 6 * s * s), rtol=1e-12)


# ------------------------------------------------------------------ the mechanism
def test_grad_returns_and_does_not_accumulate():
    x = cp.tensor(normal(3), requires_grad=True)
    (g,) = cp.grad((x * x).sum(), x)
    np.testing.assert_allclose(g.data, 2 * x.data)
    assert x.grad is None and not g.requires_grad


def test_grad_of_a_non_leaf_and_several_outputs(torch):
    a = normal(3)
    x, tx = cp.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    h, th = x.exp(), tx.exp()
    outs = [(h * h).sum(), h.sin().sum()] if hasattr(h, "sin") else [(h * h).sum(), h.tanh().sum()]
    touts = [(th * th).sum(), th.tanh().sum()]
    ours = cp.grad(outs, [h, x])
    theirs = torch.autograd.grad(touts, [th, tx])
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.data, t.numpy(), rtol=1e-13)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph")
def test_backward_create_graph_keeps_grad_an_array_and_grad_tensor_differentiable(torch):
    a = normal(4)
    x, tx = cp.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (x.tanh() ** 3).sum().backward(create_graph=True)
    (tx.tanh() ** 3).sum().backward(create_graph=True)
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_allclose(x.grad, tx.grad.detach().numpy(), rtol=1e-13)
    assert x.grad_tensor.requires_grad
    (h,) = cp.grad((x.grad_tensor ** 2).sum(), x)
    (th,) = torch.autograd.grad((tx.grad ** 2).sum(), tx)
    np.testing.assert_allclose(h.data, th.numpy(), rtol=1e-12)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph")
def test_backward_create_graph_accumulates_like_torch(torch):
    a = normal(3)
    x, tx = cp.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    (x.exp()).sum().backward(create_graph=True)
    (tx ** 3).sum().backward(create_graph=True)
    (tx.exp()).sum().backward(create_graph=True)
    np.testing.assert_allclose(x.grad, tx.grad.detach().numpy(), rtol=1e-13)
    (h,) = cp.grad(x.grad_tensor.sum(), x)
    (th,) = torch.autograd.grad(tx.grad.sum(), tx)
    np.testing.assert_allclose(h.data, th.numpy(), rtol=1e-13)


def test_optimizer_steps_after_create_graph_backward():
    """``.grad`` stays an ndarray: the optimizers need nothing new."""
    w = cp.nn.Parameter(cp.tensor(normal(3)))
    opt = cp.optim.SGD([w], lr=0.1)
    before = w.data.copy()
    (w ** 2).sum().backward(create_graph=True)
    opt.step()
    np.testing.assert_allclose(w.data, before - 0.1 * 2 * before)


def test_grad_outputs_with_a_graph(torch):
    """A ``grad_outputs`` that requires grad is part of the recorded graph (double-vjp)."""
    a, v = normal(3), normal(3, seed=1)
    x, tx = cp.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    u, tu = cp.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    (g,) = cp.grad(x.tanh(), x, u, create_graph=True)
    (tg,) = torch.autograd.grad(tx.tanh(), tx, tu, create_graph=True)
    ours = cp.grad((g * g).sum(), [x, u])
    theirs = torch.autograd.grad((tg * tg).sum(), [tx, tu])
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.data, t.numpy(), rtol=1e-12)


def test_retain_graph_defaults_to_create_graph():
    x = cp.tensor(normal(3), requires_grad=True)
    y = (x.exp() * x).sum()
    cp.grad(y, x, create_graph=True)
    cp.grad(y, x)  # the graph was kept by create_graph=True; this call frees it
    with pytest.raises(RuntimeError, match="second time"):
        cp.grad(y, x)


def test_float32_stays_float32():
    x = cp.tensor(normal(2, 3).astype(np.float32), requires_grad=True)
    (g,) = cp.grad((x.sigmoid() * x).sum(), x, create_graph=True)
    (h,) = cp.grad(g.sum(), x)
    assert g.dtype == np.float32 and h.dtype == np.float32


# ------------------------------------------------------------------ hvp / jvp / vjp
def _cnn_loss(M, F, x, w1, w2):
    h = F.conv2d(x, w1, padding=1).tanh()
    h = F.max_pool2d(h, 2)
    return F.cross_entropy(F.conv2d(h, w2).flatten(1), M.tensor([1, 0]))


def test_hvp_matches_torch_and_finite_differences(torch):
    x = normal(2, 1, 4, 4)
    w1, w2 = normal(3, 1, 3, 3, seed=1) * 0.5, normal(2, 3, 2, 2, seed=2) * 0.5
    v1, v2 = normal(3, 1, 3, 3, seed=3), normal(2, 3, 2, 2, seed=4)
    xt = cp.tensor(x)
    out, (h1, h2) = F.hvp(lambda a, b: _cnn_loss(cp, F, xt, a, b), (cp.tensor(w1), cp.tensor(w2)),
                          (cp.tensor(v1), cp.tensor(v2)))
    tx = torch.tensor(x)
    tout, (t1, t2) = torch.autograd.functional.hvp(
        lambda a, b: _cnn_loss(torch, torch.nn.functional, tx, a, b),
        (torch.tensor(w1), torch.tensor(w2)), (torch.tensor(v1), torch.tensor(v2)))
    assert abs(out.item() - tout.item()) <= TOL
    assert np.abs(h1.data - t1.numpy()).max() <= TOL
    assert np.abs(h2.data - t2.numpy()).max() <= TOL
    # central differences of the gradient along v
    eps = 1e-5

    def gradient(a, b):
        p, q = cp.tensor(a, requires_grad=True), cp.tensor(b, requires_grad=True)
        return [g.data for g in cp.grad(_cnn_loss(cp, F, xt, p, q), [p, q])]

    plus = gradient(w1 + eps * v1, w2 + eps * v2)
    minus = gradient(w1 - eps * v1, w2 - eps * v2)
    np.testing.assert_allclose(h1.data, (plus[0] - minus[0]) / (2 * eps), atol=1e-6)
    np.testing.assert_allclose(h2.data, (plus[1] - minus[1]) / (2 * eps), atol=1e-6)


def test_jvp_and_vjp_match_torch(torch):
    a, v = normal(2, 3), normal(2, 3, seed=1)

    def fn(M, x):
        return (x.tanh() @ x.transpose(0, 1)).exp()

    out, j = F.jvp(lambda x: fn(cp, x), cp.tensor(a), cp.tensor(v))
    _, tj = torch.autograd.functional.jvp(lambda x: fn(torch, x), torch.tensor(a),
                                          torch.tensor(v))
    assert np.abs(j.data - tj.numpy()).max() <= TOL
    u = normal(2, 2, seed=2)
    _, vj = F.vjp(lambda x: fn(cp, x), cp.tensor(a), cp.tensor(u))
    _, tvj = torch.autograd.functional.vjp(lambda x: fn(torch, x), torch.tensor(a),
                                           torch.tensor(u))
    assert np.abs(vj.data - tvj.numpy()).max() <= TOL
    assert out.shape == (2, 2)


def test_hvp_errors():
    with pytest.raises(ValueError, match="single-element"):
        F.hvp(lambda x: x * 2, cp.tensor(normal(3)), cp.tensor(normal(3)))
    with pytest.raises(ValueError, match="shape"):
        F.hvp(lambda x: (x * x).sum(), cp.tensor(normal(3)), cp.tensor(normal(4)))


# ------------------------------------------------------------------ error rules
def test_second_backward_through_a_freed_graph_is_an_error():
    x = cp.tensor(normal(3), requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    z = (x * x).sum()
    cp.grad(z, x)
    with pytest.raises(RuntimeError, match="second time"):
        cp.grad(z, x, create_graph=True)


def test_retain_graph_allows_a_second_walk():
    x = cp.tensor(normal(3), requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * (x.data + 1) * np.exp(x.data))


def _square_without_rule(x):
    """A test op with only a first-order backward (no differentiable one)."""
    return cp.Tensor._wrap(x.data**2, (x,), lambda g: (2 * x.data * g,))


def test_op_without_a_differentiable_backward_names_itself():
    x = cp.tensor(normal(3), requires_grad=True)
    (g,) = cp.grad(_square_without_rule(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 2 * x.data)  # the first derivative is fine
    with pytest.raises(RuntimeError, match="_square_without_rule.*no differentiable backward"):
        cp.grad(g.sum(), x)


def test_op_without_rule_does_not_block_other_second_derivatives():
    """Only the gradient that flows through the op is refused: ``y`` enters linearly."""
    x = cp.tensor(normal(3), requires_grad=True)
    y = cp.tensor(normal(3, seed=1), requires_grad=True)
    (gx, gy) = cp.grad((_square_without_rule(x) + y**3).sum(), [x, y], create_graph=True)
    (h,) = cp.grad(gy.sum(), y)
    np.testing.assert_allclose(h.data, 6 * y.data)


def test_unused_inputs():
    x = cp.tensor(normal(3), requires_grad=True)
    unused = cp.tensor(normal(3), requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        cp.grad(y, [x, unused], retain_graph=True)
    gx, gu = cp.grad(y, [x, unused], allow_unused=True, retain_graph=True)
    assert gu is None
    _, gz = cp.grad(y, [x, unused], allow_unused=True, materialize_grads=True)
    np.testing.assert_array_equal(gz.data, np.zeros(3))


def test_grad_argument_errors():
    x = cp.tensor(normal(3), requires_grad=True)
    y = x * 2
    with pytest.raises(ValueError, match="scalar output"):
        cp.grad(y, x, retain_graph=True)
    with pytest.raises(ValueError, match="output's shape"):
        cp.grad(y, x, cp.ones(4), retain_graph=True)
    with pytest.raises(ValueError, match="grad_outputs"):
        cp.grad([y], x, [cp.ones(3), cp.ones(3)], retain_graph=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        cp.grad(cp.tensor(normal(3)).sum(), x)
    with pytest.raises(RuntimeError, match="input 0 does not require grad"):
        cp.grad(y.sum(), cp.tensor(normal(3)))
    with pytest.raises(TypeError, match="inputs must be Tensors"):
        cp.grad(y.sum(), [np.ones(3)])


def test_gradgradcheck_catches_a_wrong_second_derivative():
    def frozen(x):  # right values, but the differentiable backward treats 3x^2 as a constant
        return cp.Tensor._wrap(x.data**3, (x,), lambda g: (3 * x.data**2 * g,),
                               lambda g: (g * cp.Tensor._wrap(3 * x.data**2),))

    def wrong_values(x):  # the differentiable backward disagrees with the plain one
        return cp.Tensor._wrap(x.data**3, (x,), lambda g: (3 * x.data**2 * g,),
                               lambda g: (3 * x * g,))

    x = cp.tensor(normal(4), requires_grad=True)
    assert cp.gradcheck(frozen, x) and cp.gradcheck(wrong_values, x)
    with pytest.raises(GradcheckError, match="second-derivative mismatch"):
        cp.gradgradcheck(frozen, x)
    with pytest.raises(GradcheckError, match="differs from the first-order gradient"):
        cp.gradgradcheck(wrong_values, x)
    assert not cp.gradgradcheck(frozen, x, raise_exception=False)
    with pytest.raises(TypeError, match="float64"):
        cp.gradgradcheck(lambda t: t * t, cp.tensor(normal(3).astype(np.float32),
                                                    requires_grad=True))


# ------------------------------------------------------------------ the examples
@pytest.mark.parametrize("name", ["gradient_penalty.py", "hessian_vector.py"])
def test_examples_run(torch, name, capsys):
    main = runpy.run_path(str(EXAMPLES / name))["main"]
    assert main() == 0
    assert "OK" in capsys.readouterr().out

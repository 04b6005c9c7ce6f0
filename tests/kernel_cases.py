"""Shared helpers of the compiled-kernel tests: a spec from a tuple, seeded operands, and
PyTorch's float64 answer for the forward and all three gradients."""

from __future__ import annotations

import numpy as np
from oracle import torch  # the real module, or a skip on first use

from convprop.kernels.spec import ConvSpec


def make_spec(shape, dtype=np.float64) -> ConvSpec:
    """``shape`` = (n, c, o, size, kernel, stride, pads, dilation, groups, bias)."""
    n, c, o, size, kernel, stride, pads, dilation, groups, bias = shape
    return ConvSpec(n, c, o, size, kernel, stride, dilation, pads, groups, np.dtype(dtype), bias)


def arrays(spec: ConvSpec, seed: int = 0):
    """Float64 ``x, w, b, gy`` for ``spec`` (``b`` None without bias)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(spec.x_shape)
    w = rng.standard_normal(spec.w_shape)
    b = rng.standard_normal(spec.o) if spec.bias else None
    gy = rng.standard_normal(spec.y_shape)
    return x, w, b, gy


def torch_answer(spec: ConvSpec, x, w, b, gy):
    """``[y, dx, dw, db]`` from PyTorch in float64 (``db`` None without bias; zeros where
    PyTorch leaves a gradient unset, as for an empty batch)."""
    tx, tw = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w))
    tb = None if b is None else torch.tensor(b, dtype=torch.float64, requires_grad=True)
    flat = [p for pair in reversed(spec.pads) for p in pair]
    conv = getattr(torch.nn.functional, f"conv{spec.nd}d")
    y = conv(torch.nn.functional.pad(tx, flat), tw, tb, spec.stride, 0, spec.dilation, spec.groups)
    y.backward(torch.tensor(gy, dtype=torch.float64))
    grads = [tx.grad, tw.grad, None if tb is None else tb.grad]
    zero = [np.zeros(spec.x_shape), np.zeros(spec.w_shape), None if b is None else np.zeros(spec.o)]
    return [y.detach().numpy()] + [z if g is None else g.numpy() for g, z in zip(grads, zero)]

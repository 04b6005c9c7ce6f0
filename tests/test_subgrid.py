"""Dilated convolutions as dense sub-grid convolutions (``convprop.kernels.subgrid``).

The per-axis split is checked against the definition (every output reads exactly
the input elements, or padding, that the dilated window reads); the algorithm
against PyTorch float64 (<= 1e-10: output, input, weight and bias gradients) and in
float32 (within 1e-4 of the float64 answer) over dilation 1-3 per axis, strides that
share a factor with the dilation, padding asymmetric and larger than the kernel,
odd sizes (phases of unequal length), sub-grids that read only padding, 1-3-D,
groups, bias or none and N = 0 or 1, on both backends (the sub-convolutions run on
each backend's own plans); and through ``conv2d``, forced, with finite differences.
"""

from __future__ import annotations

import itertools

import backends
import numpy as np
import pytest
from kernel_cases import arrays, make_spec, torch_answer  # noqa: E402

import convprop
from convprop import kernels
from convprop.functional import conv2d
from convprop.kernels.spec import ConvSpec
from convprop.kernels.subgrid import Subgrid, SubgridSaved, axis_phases, split

SUBGRID = Subgrid(kernels.choose)  # plans on the calling thread's backend, as the backend's own

# (n, c, o, size, kernel, stride, pads, dilation, groups, bias)
SHAPES = [
    (2, 4, 6, (9, 8), (3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 1, True),
    (2, 4, 6, (11, 10), (3, 2), (1, 1), ((1, 0), (4, 3)), (3, 2), 2, False),
    (1, 3, 3, (13, 12), (3, 3), (1, 1), ((5, 0), (0, 6)), (2, 3), 3, True),
    (2, 4, 6, (9, 8), (3, 3), (2, 1), ((2, 0), (1, 3)), (2, 2), 2, True),
    (2, 3, 4, (12, 11), (2, 3), (2, 3), ((1, 2), (3, 0)), (3, 2), 1, True),
    (1, 2, 2, (2,), (2,), (1,), ((3, 3),), (3,), 1, True),
    (2, 3, 5, (17,), (4,), (1,), ((2, 5),), (2,), 1, False),
    (2, 2, 4, (7, 6, 7), (3, 2, 3), (1, 2, 1), ((1, 0), (0, 2), (1, 1)), (3, 1, 2), 2, True),
    (1, 4, 4, (9, 8), (3, 3), (1, 1), ((2, 2), (2, 2)), (1, 2), 4, True),
    (0, 3, 4, (8, 7), (3, 3), (1, 1), ((1, 1), (1, 1)), (2, 2), 1, True),
]



def run(spec: ConvSpec, x, w, b, gy, keep_saved: bool = True):
    x, w, gy = (a.astype(spec.dtype) for a in (x, w, gy))
    b = None if b is None else b.astype(spec.dtype)
    y, saved = SUBGRID.forward(spec, x, w, b, True)
    assert isinstance(saved, SubgridSaved)
    if not keep_saved:
        saved = None
    dx = SUBGRID.input_grad(spec, gy, w, saved)
    dw, db = SUBGRID.weight_grad(spec, x, gy, saved)
    return y, dx, dw, db


def rel_err(a, ref) -> float:
    assert a.shape == ref.shape, (a.shape, ref.shape)
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    return float(np.max(np.abs(np.asarray(a, np.float64) - ref), initial=0.0)) / scale


# --- the split, against the definition ---------------------------------------------------------


@pytest.mark.parametrize("size,kernel,stride,dilation,pads", [
    (size, kernel, stride, dilation, pads)
    for size, kernel, stride, dilation in itertools.product((1, 2, 5, 8, 13), (1, 2, 3, 5),
                                                            (1, 2, 3, 4), (1, 2, 3))
    for pads in ((0, 0), (1, 2), (4, 0), (7, 6))
    if dilation * (kernel - 1) + 1 <= size + sum(pads)
])
def test_axis_phases_read_what_the_dilated_window_reads(size, kernel, stride, dilation, pads):
    out = (size + sum(pads) - dilation * (kernel - 1) - 1) // stride + 1
    seen = []
    for ph in axis_phases(size, kernel, stride, dilation, pads, out):
        outs = range(out)[ph.out]
        assert len(outs) == ph.count
        seen += list(outs)
        phase = [] if ph.inp is None else list(range(size)[ph.inp])
        padded = [None] * ph.pads[0] + phase + [None] * ph.pads[1]
        assert len(padded) == (ph.count - 1) * ph.stride + kernel or ph.inp is None
        for j, p in enumerate(outs):
            for t in range(kernel):
                i = p * stride + t * dilation - pads[0]
                want = i if 0 <= i < size else None
                got = None if ph.inp is None else padded[j * ph.stride + t]
                assert got == want, (p, t)
    assert sorted(seen) == list(range(out))  # the sub-grids partition the outputs


def test_equal_phases_are_stacked_into_one_convolution():
    """A dilation-2 3x3 layer on an even image is one dense convolution of 4N samples;
    odd sizes give phases of unequal length, so several."""
    even = split(make_spec((2, 4, 6, (28, 28), (3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 1, True)),
                 kernels.choose)
    assert len(even.groups) == 1 and not even.empty
    sub = even.groups[0].spec
    assert (sub.n, sub.size, sub.pads, sub.dilation) == (8, (14, 14), ((1, 1), (1, 1)), (1, 1))
    odd = split(make_spec((2, 4, 6, (9, 8), (3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 1, True)),
                kernels.choose)
    assert len(odd.groups) == 2
    assert sum(len(g.outputs) for g in odd.groups) == 4


def test_sub_grids_that_read_only_padding():
    spec = make_spec((1, 2, 2, (2,), (2,), (1,), ((3, 3),), (3,), 1, True))
    parts = split(spec, kernels.choose)
    assert parts.empty  # output 2 reads input -1 and 2: padding only


def test_sub_plans_come_from_the_calling_threads_backend():
    spec = make_spec((16, 64, 64, (28, 28), (3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 1, True),
                     np.float32)
    registered = kernels.algorithms("numba").get("subgrid")
    if registered is None:
        pytest.skip("numba is not installed: the subgrid algorithm is registered with its backend")
    with kernels.use_backend("numpy"):
        want = kernels.choose(split(spec, kernels.choose).groups[0].spec)
        assert split(spec, registered.choose).groups[0].plan == want
        assert not any(n.startswith("numba") for n in want.names)


def test_supports_only_dilated_convolutions():
    assert not SUBGRID.supports(make_spec((2, 4, 6, (9, 8), (3, 3), (1, 1), ((1, 1),) * 2, (1, 1),
                                          1, True)))
    assert SUBGRID.supports(make_spec(SHAPES[8]))  # dilated along one axis only


# --- parity --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", backends.params())
@pytest.mark.parametrize("shape", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
def test_matches_torch(backend_name, shape):
    spec = make_spec(shape)
    x, w, b, gy = arrays(spec)
    ref = torch_answer(spec, x, w, b, gy)
    with backends.running_on(backend_name):
        got64 = run(spec, x, w, b, gy)
        got64_nosave = run(spec, x, w, b, gy, keep_saved=False)
        got32 = run(make_spec(shape, np.float32), x, w, b, gy)
    for a64, a64n, a32, r in zip(got64, got64_nosave, got32, ref):
        if r is None:
            assert a64 is None and a32 is None
            continue
        assert a64.dtype == np.float64 and a32.dtype == np.float32
        assert rel_err(a64, r) <= 1e-10
        assert rel_err(a64n, r) <= 1e-10
        assert rel_err(a32, a64) <= 1e-4


@pytest.mark.parametrize("backend_name", backends.params())
def test_layer_sized_float32(backend_name):
    """A layer large enough that the sub-convolutions take the backend's fast paths."""
    shape = (4, 16, 16, (20, 19), (3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 1, True)
    spec = make_spec(shape)
    x, w, b, gy = arrays(spec, seed=1)
    ref = torch_answer(spec, x, w, b, gy)
    with backends.running_on(backend_name):
        got32 = run(make_spec(shape, np.float32), x, w, b, gy)
    for a32, r in zip(got32, ref):
        assert rel_err(a32, r) <= 1e-4


@pytest.mark.skipif(backends.unavailable("numba") is not None, reason="numba backend unavailable")
def test_forced_through_conv2d_with_finite_differences():
    rng = np.random.default_rng(3)
    x = convprop.Tensor(rng.standard_normal((1, 2, 7, 6)), requires_grad=True)
    w = convprop.Tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=True)
    b = convprop.Tensor(rng.standard_normal(3), requires_grad=True)
    with backends.running_on("numba"), kernels.force("subgrid", strict=True):
        assert convprop.gradcheck(lambda x, w, b: conv2d(x, w, b, 1, ((2, 1), (0, 3)), (2, 3)),
                                  x, w, b)

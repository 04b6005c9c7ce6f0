"""The engine against the naive loops of ``tests/reference.py`` (and the loops against torch).

The references are written from the definitions, so agreement here says the
engine computes *the* convolution, not merely the same thing as PyTorch.  The
loops themselves are checked against PyTorch on a few fixed cases, and the
engine's transposed convolution is checked to be the adjoint of its convolution.
"""

from __future__ import annotations

import backends
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference import (
    conv_arrays,
    conv_cases,
    conv_ref,
    conv_ref_vjp,
    conv_transpose_ref,
    conv_transpose_ref_vjp,
    pad_ref,
    pad_ref_vjp,
    transpose_cases,
)

import convprop as cp
import convprop.functional as F

TOL = 1e-12  # float64; both sides sum the same few products in different orders
NAMES = ("output", "d_input", "d_weight", "d_bias")


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max(1, max|b|)``, ``b`` the reference."""
    assert a.shape == b.shape, (a.shape, b.shape)
    if b.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def _flat(pairs) -> list[int]:
    """Per-axis (before, after) pairs -> PyTorch's flat pad, last axis first."""
    return [v for pair in reversed(pairs) for v in pair]


def _leaves(x, w, b):
    xt, wt = cp.tensor(x, requires_grad=True), cp.tensor(w, requires_grad=True)
    return xt, wt, None if b is None else cp.tensor(b, requires_grad=True)


def _grads(*tensors):
    return tuple(None if t is None else t.grad for t in tensors)


def ref_conv(case, x, w, b):
    kwargs = dict(stride=case["stride_t"], dilation=case["dilation_t"], groups=case["groups"])
    if case["mode"] == "zeros":
        return conv_ref(x, w, b, pads=case["pairs"], **kwargs)
    return conv_ref(pad_ref(x, _flat(case["pairs"]), case["mode"]), w, b, **kwargs)


def ref_conv_vjp(case, x, w, g):
    """Non-zero modes: the pad's vjp after the convolution's (the chain rule, by hand)."""
    kwargs = dict(stride=case["stride_t"], dilation=case["dilation_t"], groups=case["groups"])
    if case["mode"] == "zeros":
        return conv_ref_vjp(x, w, g, pads=case["pairs"], **kwargs)
    flat = _flat(case["pairs"])
    xp = pad_ref(x, flat, case["mode"])
    dxp, dw, db = conv_ref_vjp(xp, w, g, **kwargs)
    return pad_ref_vjp(x, dxp, flat, case["mode"]), dw, db


@pytest.mark.parametrize("backend", backends.params())
@settings(max_examples=200)
@given(conv_cases())
def test_conv_matches_reference(backend, case):
    with backends.running_on(backend):
        check_conv_against_reference(case)


def check_conv_against_reference(case: dict, label: str = "default") -> None:
    """convprop's conv (whichever algorithm is in force) against the naive loops:
    the output and all three gradients."""
    arr = conv_arrays(case)
    x, w, b = arr["x"], arr["w"], arr["b"]
    want_y = ref_conv(case, x, w, b)
    g = arr["rng"].standard_normal(want_y.shape)
    want = (want_y,) + ref_conv_vjp(case, x, w, g)

    xt, wt, bt = _leaves(x, w, b)
    y = getattr(F, f"conv{case['nd']}d")(
        xt, wt, bt, stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
        groups=case["groups"], padding_mode=case["mode"])
    y.backward(g)
    _assert_matches((y.data,) + _grads(xt, wt, bt), want, b, label, case)


def _assert_matches(got, want, b, label, case) -> None:
    """Output and gradients within :data:`TOL` of the reference; no bias, no bias gradient."""
    for name, a, r in zip(NAMES, got, want):
        if a is None:
            assert name == "d_bias" and b is None
            continue
        assert rel_err(a, r) <= TOL, (label, name, case)


def ref_transpose_kwargs(case):
    return dict(stride=case["stride_t"], padding=case["padding_t"],
                output_padding=case["output_padding_t"], dilation=case["dilation_t"],
                groups=case["groups"])


@pytest.mark.parametrize("backend", backends.params())
@settings(max_examples=150)
@given(transpose_cases())
def test_conv_transpose_matches_reference(backend, case):
    with backends.running_on(backend):
        check_conv_transpose_against_reference(case)


def check_conv_transpose_against_reference(case: dict, label: str = "default") -> None:
    """convprop's transposed conv (whichever algorithm is in force) against the naive
    loops: the output and all three gradients."""
    arr = conv_arrays(case, transpose=True)
    x, w, b = arr["x"], arr["w"], arr["b"]
    want_y = conv_transpose_ref(x, w, b, **ref_transpose_kwargs(case))
    g = arr["rng"].standard_normal(want_y.shape)
    want = (want_y,) + conv_transpose_ref_vjp(x, w, g, **ref_transpose_kwargs(case))

    xt, wt, bt = _leaves(x, w, b)
    y = getattr(F, f"conv_transpose{case['nd']}d")(
        xt, wt, bt, stride=case["stride"], padding=case["padding"],
        output_padding=case["output_padding"], groups=case["groups"],
        dilation=case["dilation"])
    y.backward(g)
    _assert_matches((y.data,) + _grads(xt, wt, bt), want, b, label, case)


@settings(max_examples=60)
@given(transpose_cases(batches=(1, 2)))
def test_conv_transpose_is_adjoint_of_conv(case):
    """<conv(u, w), v> == <u, conv_transpose(v, w)> for the matching conv (output_padding 0).

    The transposed convolution's output size is the convolution's input size, so
    ``u`` lives there; ``v`` has the transposed convolution's input shape.
    """
    case = dict(case, output_padding=0, output_padding_t=(0,) * case["nd"])
    assume(all((i - 1) * s - 2 * p + d * (k - 1) + 1 >= 1 for i, s, p, d, k in zip(
        case["spatial"], case["stride_t"], case["padding_t"], case["dilation_t"], case["kernel"])))
    arr = conv_arrays(case, transpose=True)
    v, w = arr["x"], arr["w"]
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
              groups=case["groups"])
    t = getattr(F, f"conv_transpose{case['nd']}d")(v, w, **kw)
    u = arr["rng"].standard_normal(t.shape)
    y = getattr(F, f"conv{case['nd']}d")(u, w, **kw)
    assert y.shape == v.shape
    lhs, rhs = float(np.sum(y.data * v)), float(np.sum(u * t.data))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


# ------------------------------------------------------------------ the oracle itself
from oracle import tF, torch  # noqa: E402  (torch, or a skip on first use)

ORACLE_CASES = [
    # nd, N, C, O, groups, spatial, kernel, stride, pairs, dilation
    (1, 2, 2, 4, 2, (9,), (3,), (2,), ((1, 2),), (2,)),
    (2, 1, 3, 3, 3, (5, 6), (2, 3), (1, 2), ((0, 1), (2, 0)), (1, 2)),
    (3, 2, 2, 2, 1, (4, 3, 5), (2, 2, 3), (2, 1, 1), ((1, 1), (0, 0), (0, 2)), (1, 1, 2)),
]


@pytest.mark.parametrize("case", ORACLE_CASES)
def test_reference_conv_matches_torch(case):
    nd, n, c, o, groups, spatial, kernel, stride, pairs, dilation = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c) + spatial)
    w = rng.standard_normal((o, c // groups) + kernel)
    b = rng.standard_normal(o)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = getattr(tF, f"conv{nd}d")(tF.pad(tx, _flat(pairs)), tw, tb, stride, 0, dilation, groups)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.from_numpy(g))
    y = conv_ref(x, w, b, stride, pairs, dilation, groups)
    grads = conv_ref_vjp(x, w, g, stride, pairs, dilation, groups)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    for got, t in zip(grads, (tx, tw, tb)):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12, atol=1e-12)


TRANSPOSE_ORACLE_CASES = [
    # nd, N, C_in, C_out, groups, spatial, kernel, stride, padding, output_padding, dilation
    (1, 2, 2, 4, 2, (4,), (3,), (2,), (1,), (1,), (1,)),
    (2, 1, 3, 3, 3, (3, 2), (2, 3), (3, 1), (0, 1), (2, 1), (1, 2)),
    (3, 1, 2, 2, 1, (2, 3, 2), (2, 1, 2), (1, 2, 2), (0, 0, 1), (0, 1, 1), (2, 1, 1)),
]


@pytest.mark.parametrize("case", TRANSPOSE_ORACLE_CASES)
def test_reference_conv_transpose_matches_torch(case):
    nd, n, c, o, groups, spatial, kernel, stride, padding, out_pad, dilation = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c) + spatial)
    w = rng.standard_normal((c, o // groups) + kernel)
    b = rng.standard_normal(o)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = getattr(tF, f"conv_transpose{nd}d")(tx, tw, tb, stride, padding, out_pad, groups,
                                             dilation)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.from_numpy(g))
    kw = dict(stride=stride, padding=padding, output_padding=out_pad, dilation=dilation,
              groups=groups)
    np.testing.assert_allclose(conv_transpose_ref(x, w, b, **kw), ty.detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    for got, t in zip(conv_transpose_ref_vjp(x, w, g, **kw), (tx, tw, tb)):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_reference_pad_matches_torch(mode):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5))
    pad = (2, 1, 0, 3)
    tx = torch.tensor(x, requires_grad=True)
    kwargs = {"value": 1.5} if mode == "constant" else {}
    ty = tF.pad(tx, pad, mode=mode, **kwargs)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(pad_ref(x, pad, mode, **kwargs), ty.detach().numpy())
    np.testing.assert_allclose(pad_ref_vjp(x, g, pad, mode), tx.grad.numpy(), rtol=1e-13)


# ------------------------------------------------------------------ engine paths
def _conv_case(nd, n, c, o, groups, spatial, kernel, stride=1, padding=0, dilation=1, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + spatial)
    w = rng.standard_normal((o, c // groups) + kernel)
    b = rng.standard_normal(o)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x, w, b, kw, rng


def test_non_contiguous_input_and_weight():
    """Views with odd strides (a permuted Tensor, a Fortran-ordered array) convolve the same."""
    x, w, b, kw, rng = _conv_case(2, 2, 4, 6, 2, (5, 6), (3, 2), stride=(2, 1), padding=1)
    want = F.conv2d(x, w, b, **kw).data
    xt = cp.tensor(np.ascontiguousarray(x.transpose(0, 1, 3, 2)), requires_grad=True)
    got = F.conv2d(xt.permute(0, 1, 3, 2), np.asfortranarray(w), b, **kw)
    np.testing.assert_allclose(got.data, want, rtol=1e-13, atol=1e-13)
    g = rng.standard_normal(got.shape)
    got.backward(g)
    xr = cp.tensor(x, requires_grad=True)
    F.conv2d(xr, w, b, **kw).backward(g)
    np.testing.assert_allclose(xt.grad, xr.grad.transpose(0, 1, 3, 2), rtol=1e-13, atol=1e-13)


def test_batch_processed_in_chunks(monkeypatch):
    """A tiny chunk budget forces one sample per chunk: same result as one chunk."""
    from convprop.kernels.numpy import _common

    x, w, b, kw, rng = _conv_case(2, 5, 4, 4, 2, (6, 5), (3, 3), stride=2, padding=(1, 0),
                                  dilation=(1, 2))
    with cp.kernels.force("gemm"):
        g = None
        results = []
        for budget in (None, 1):
            if budget is not None:
                monkeypatch.setattr(_common, "CHUNK_BYTES", budget)
            xt, wt = cp.tensor(x, requires_grad=True), cp.tensor(w, requires_grad=True)
            y = F.conv2d(xt, wt, b, **kw)
            g = rng.standard_normal(y.shape) if g is None else g
            y.backward(g)
            t = F.conv_transpose2d(y.data, w, stride=2)
            results.append((y.data, xt.grad, wt.grad, t.data))
    for a, r in zip(*results):
        np.testing.assert_allclose(a, r, rtol=1e-13, atol=1e-13)


def test_second_backward_through_a_convolution_accumulates():
    """Whatever the forward kept for the backward must serve a second backward too
    (``retain_graph=True``, as in PyTorch; without it the second walk is refused)."""
    x, w, b, kw, rng = _conv_case(2, 2, 3, 4, 1, (6, 6), (3, 3), padding=1)
    xt, wt, bt = (cp.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, **kw)
    g = rng.standard_normal(y.shape)
    y.backward(g, retain_graph=True)
    first = [t.grad.copy() for t in (xt, wt, bt)]
    y.backward(g)
    for t, f in zip((xt, wt, bt), first):
        np.testing.assert_allclose(t.grad, 2 * f, rtol=1e-13)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward(g)


def test_integer_inputs_convolve_in_float32():
    x = np.arange(2 * 7).reshape(1, 2, 7)
    w = np.ones((3, 2, 2), dtype=np.int64)
    y = F.conv1d(x, w, stride=2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, conv_ref(x.astype(np.float64), w.astype(np.float64),
                                                   stride=(2,)))


def test_no_grad_convolution_records_nothing():
    x, w, b, kw, _ = _conv_case(1, 1, 2, 2, 1, (5,), (2,))
    xt, wt = cp.tensor(x, requires_grad=True), cp.tensor(w, requires_grad=True)
    with cp.no_grad():
        y = F.conv1d(xt, wt, b, **kw)
        t = F.conv_transpose1d(xt, wt.permute(1, 0, 2))
        p = F.pad(xt, (1, 1), "reflect")
    assert not (y.requires_grad or t.requires_grad or p.requires_grad)
    np.testing.assert_allclose(y.data, conv_ref(x, w, b), rtol=1e-13)


# Draws aimed at the shapes each algorithm takes (anything else falls back to the chooser).
AIMS = {
    "pointwise": dict(kernels=(1,)),
    "depthwise": dict(per_group=(1,)),
    "winograd": dict(kernels=(3,), max_stride=1, max_dilation=1, max_groups=1),
    "fft": dict(max_stride=1, max_dilation=1, max_groups=1),
    "flat": dict(max_stride=1),
    "numba_winograd": dict(nds=(2, 3), kernels=(3,), max_stride=1, max_dilation=1),
    "subgrid": dict(max_dilation=3),
}


def _aimed_at(backend: str, algorithm: str, case: dict, transposed: bool = False) -> bool:
    """Whether ``algorithm`` supports the case's convolution (for a transposed case: the
    convolution it is the adjoint of, which maps ``o`` channels to ``c``)."""
    if transposed:  # its input is the transposed output: any size the kernel fits
        c, o, pads = case["o"], case["c"], ((0, 0),) * case["nd"]
        size = tuple(d * (k - 1) + 1 for k, d in zip(case["kernel"], case["dilation_t"]))
    else:
        c, o, pads, size = case["c"], case["o"], case["pairs"], case["spatial"]
    spec = cp.kernels.ConvSpec(1, c, o, size, case["kernel"], case["stride_t"],
                               case["dilation_t"], pads, case["groups"], np.float64)
    return cp.kernels.algorithms(backend)[algorithm].supports(spec)


@pytest.mark.parametrize("backend,algorithm", backends.algorithm_params())
@settings(max_examples=40)
@given(data=st.data())
def test_every_algorithm_matches_reference(backend, algorithm, data):
    """Each convolution algorithm of each backend, forced, against the naive loops: forward
    and all three gradients, for shapes the algorithm says it supports."""
    case = data.draw(conv_cases(modes=("zeros",), **AIMS.get(algorithm, {})))
    assume(_aimed_at(backend, algorithm, case))
    with backends.running_on(backend), cp.kernels.force(algorithm):
        check_conv_against_reference(case, algorithm)


@pytest.mark.parametrize("backend,algorithm", backends.algorithm_params())
@settings(max_examples=30)
@given(data=st.data())
def test_every_algorithm_matches_reference_transposed(backend, algorithm, data):
    """The same for transposed convolution, whose forward is the algorithm's input gradient."""
    case = data.draw(transpose_cases(**AIMS.get(algorithm, {})))
    assume(_aimed_at(backend, algorithm, case, transposed=True))
    with backends.running_on(backend), cp.kernels.force(algorithm):
        check_conv_transpose_against_reference(case, algorithm)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_empty_batch(nd):
    """N = 0: empty results of the right shape, and backward gives empty/zero gradients."""
    x = cp.tensor(np.zeros((0, 2) + (4,) * nd), requires_grad=True)
    w = cp.tensor(np.ones((4, 1) + (2,) * nd), requires_grad=True)
    b = cp.tensor(np.ones(4), requires_grad=True)
    y = getattr(F, f"conv{nd}d")(x, w, b, stride=2, padding=1, groups=2,
                                 padding_mode="reflect")
    assert y.shape == (0, 4) + (3,) * nd
    y.sum().backward()
    assert x.grad.shape == x.shape
    np.testing.assert_array_equal(w.grad, 0)
    np.testing.assert_array_equal(b.grad, 0)
    wt = cp.tensor(np.ones((2, 3) + (2,) * nd), requires_grad=True)
    t = getattr(F, f"conv_transpose{nd}d")(x, wt, stride=2, output_padding=1)
    assert t.shape == (0, 3) + (9,) * nd
    t.sum().backward()
    np.testing.assert_array_equal(wt.grad, 0)


@pytest.mark.parametrize("padding,mode", [(0, "zeros"), (1, "zeros"), (1, "reflect"),
                                          (((1, 0), (0, 2)), "circular"), ("same", "replicate")])
def test_inputs_are_never_modified_in_place(padding, mode):
    """Neither the arrays handed in nor the Tensors' own data change in forward + backward."""
    rng = np.random.default_rng(9)
    x_arr, w_arr, b_arr = (rng.standard_normal(s) for s in ((2, 2, 5, 4), (3, 2, 2, 3), (3,)))
    copies = [a.copy() for a in (x_arr, w_arr, b_arr)]
    xt, wt, bt = (cp.tensor(a, requires_grad=True) for a in (x_arr, w_arr, b_arr))
    held = [t.data.copy() for t in (xt, wt, bt)]
    y = F.conv2d(xt, wt, bt, padding=padding, padding_mode=mode)
    y.backward(rng.standard_normal(y.shape), retain_graph=True)
    y.sum().backward(retain_graph=True)  # conv_transpose2d(y, ...) walks y again
    F.conv2d(x_arr, w_arr, b_arr, padding=padding, padding_mode=mode)
    t = F.conv_transpose2d(y, wt, padding=1)
    t.sum().backward()
    F.conv_transpose2d(y.data, w_arr)
    for before, after in zip(copies + held, [x_arr, w_arr, b_arr, xt.data, wt.data, bt.data]):
        np.testing.assert_array_equal(before, after)

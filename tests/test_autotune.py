"""Measured algorithm selection (``kernels.set_benchmark`` / ``kernels.benchmark``).

The measuring only chooses: answers equal the default path's and the forced
algorithms'.  Timings are counted through the backend module's clock, never
asserted on.  Everything here runs on the NumPy backend (the state is per thread
and per backend; ``test_kernels`` checks that).
"""

from __future__ import annotations

import numpy as np
import pytest

import convprop
from convprop import kernels
from convprop.functional import conv1d, conv2d, conv_transpose2d
from convprop.kernels import ConvSpec, backend

#: The setting at import, before any fixture touches it.
DEFAULT = kernels.benchmark_enabled()


@pytest.fixture(autouse=True)
def fresh_table(monkeypatch):
    """Each test starts on the NumPy backend, benchmarking off and no measured choices."""
    monkeypatch.setattr(backend, "_local", backend._Local())
    with kernels.use_backend("numpy"):
        yield


@pytest.fixture
def clock(monkeypatch):
    """Counts the clock reads of the measuring (two per timed run)."""
    calls = []
    real = backend._clock

    def counted() -> float:
        calls.append(1)
        return real()

    monkeypatch.setattr(backend, "_clock", counted)
    return calls


def _step(x, w, b, gy, **kw):
    """Forward + backward through conv2d: output and the three gradients."""
    cx, cw, cb = (convprop.Tensor(a, requires_grad=True) for a in (x, w, b))
    y = conv2d(cx, cw, cb, **kw)
    y.backward(gy)
    return y.data, cx.grad, cw.grad, cb.grad


def _data(shape_x, shape_w, o_size, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape_x).astype(dtype)
    w = rng.standard_normal(shape_w).astype(dtype)
    b = rng.standard_normal(shape_w[0]).astype(dtype)
    gy = rng.standard_normal((shape_x[0], shape_w[0]) + o_size).astype(dtype)
    return x, w, b, gy


def test_off_by_default(clock):
    assert DEFAULT is False
    x, w, b, gy = _data((2, 4, 9, 8), (6, 4, 3, 3), (9, 8))
    _step(x, w, b, gy, padding=1)
    assert not clock and kernels.benchmark_choices() == {}


def test_selection_is_cached(clock):
    x, w, b, gy = _data((2, 4, 9, 8), (6, 4, 3, 3), (9, 8))
    with kernels.benchmark():
        first = _step(x, w, b, gy, padding=1)
        measured = len(clock)
        assert measured > 0 and len(kernels.benchmark_choices()) == 1
        second = _step(x, w, b, gy, padding=1)
    assert len(clock) == measured  # the second call only looked the choice up
    for a, c in zip(first, second):
        np.testing.assert_array_equal(a, c)


def test_times_every_supported_algorithm_and_only_those(monkeypatch):
    """Every algorithm whose supports() holds is run (forward and both gradients when the
    weight gradient is needed); the unsupported ones never are."""
    ran: dict[str, set] = {}
    for name, algo in kernels.algorithms().items():
        for fn in ("forward", "input_grad", "weight_grad"):
            real = getattr(algo, fn)

            def spy(*args, _real=real, _name=name, _fn=fn, **kwargs):
                ran.setdefault(_name, set()).add(_fn)
                return _real(*args, **kwargs)

            monkeypatch.setattr(algo, fn, spy)
    x, w, b, gy = _data((2, 4, 9, 8), (6, 4, 3, 3), (9, 8))
    with kernels.benchmark():
        _step(x, w, b, gy, padding=1)
    spec = ConvSpec.of(x.shape, w.shape, 1, 1, 1, 1, np.float64, bias=True)
    supported = {n for n, a in kernels.algorithms().items() if a.supports(spec)}
    assert set(ran) == supported and {"gemm", "winograd", "flat"} <= supported
    assert "pointwise" not in ran and "depthwise" not in ran
    assert all(fns == {"forward", "input_grad", "weight_grad"} for fns in ran.values())
    (choice,) = kernels.benchmark_choices().values()
    assert choice in supported


def test_never_picks_an_unsupported_algorithm(monkeypatch):
    """Whatever the clock reads (here: every later run looks faster), the choice is one
    whose supports() holds."""
    ticks = iter(np.cumsum(np.arange(10**4, 0, -1), dtype=float))
    monkeypatch.setattr(backend, "_clock", lambda: float(next(ticks)))
    rng = np.random.default_rng(1)
    for x_shape, w_shape, kw in [
        ((2, 6, 11, 10), (6, 1, 3, 3), dict(groups=6, padding=1)),  # depthwise, gemm, flat
        ((2, 4, 12, 12), (6, 4, 3, 3), dict(stride=2)),  # strided: gemm only
        ((2, 4, 9, 8), (6, 4, 1, 1), dict()),  # 1x1
    ]:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        with kernels.benchmark():
            conv2d(x, convprop.Tensor(w, requires_grad=True), **kw)
    for (spec, _), name in kernels.benchmark_choices().items():
        assert kernels.algorithms()[name].supports(spec)
    assert len(kernels.benchmark_choices()) == 3


def test_keys_differ_by_dtype_shape_and_gradient(clock):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((6, 4, 3, 3))
    with kernels.benchmark():
        conv2d(rng.standard_normal((2, 4, 9, 8)), w, padding=1)
        n1 = len(clock)
        conv2d(rng.standard_normal((2, 4, 9, 8)).astype(np.float32), w.astype(np.float32),
               padding=1)
        n2 = len(clock)
        conv2d(rng.standard_normal((2, 4, 10, 8)), w, padding=1)
        n3 = len(clock)
        conv2d(rng.standard_normal((2, 4, 9, 8)), convprop.Tensor(w, requires_grad=True),
               padding=1)
        n4 = len(clock)
        conv2d(rng.standard_normal((2, 4, 9, 8)), w, padding=1, stride=1, dilation=1)
    assert 0 < n1 < n2 < n3 < n4 == len(clock)
    keys = list(kernels.benchmark_choices())
    assert len(keys) == 4
    assert {spec.dtype for spec, _ in keys} == {np.dtype(np.float64), np.dtype(np.float32)}
    assert {backward for _, backward in keys} == {False, True}


def test_force_wins_over_the_measured_choice(clock):
    x, w, b, gy = _data((2, 4, 9, 8), (6, 4, 3, 3), (9, 8))
    spec = ConvSpec.of(x.shape, w.shape, 1, 1, 1, 1, np.float64, bias=True)
    with kernels.benchmark():
        measured = kernels.plan(spec, x, w, b, backward=True).forward.name
        assert list(kernels.benchmark_choices().values()) == [measured]
        other = "gemm" if measured != "gemm" else "winograd"
        n = len(clock)
        with kernels.force(other):
            assert kernels.plan(spec, x, w, b, backward=True).names == (other,) * 3
        assert len(clock) == n


def test_measuring_a_new_shape_under_force_does_not_time(clock):
    x, w, b, gy = _data((2, 4, 9, 8), (6, 4, 3, 3), (9, 8))
    with kernels.benchmark(), kernels.force("gemm"):
        _step(x, w, b, gy, padding=1)
    assert not clock and kernels.benchmark_choices() == {}


@pytest.mark.parametrize("x_shape,w_shape,kw", [
    ((2, 4, 9, 8), (6, 4, 3, 3), dict(padding=1)),
    ((2, 6, 11, 10), (6, 1, 3, 3), dict(padding=1, groups=6)),
    ((2, 6, 9, 8), (4, 6, 1, 1), dict()),
    ((2, 4, 13, 12), (6, 2, 3, 3), dict(stride=2, dilation=2, padding=2, groups=2)),
    ((2, 3, 17, 15), (4, 3, 5, 4), dict(padding=2)),
])
def test_results_equal_default_and_forced(x_shape, w_shape, kw):
    out = tuple((s + 2 * kw.get("padding", 0) - kw.get("dilation", 1) * (k - 1) - 1)
                // kw.get("stride", 1) + 1 for s, k in zip(x_shape[2:], w_shape[2:]))
    x, w, b, gy = _data(x_shape, w_shape, out)
    inputs = [a.copy() for a in (x, w, b, gy)]
    default = _step(x, w, b, gy, **kw)
    with kernels.benchmark():
        tuned = _step(x, w, b, gy, **kw)
        again = _step(x, w, b, gy, **kw)
    for a, c in zip(inputs, (x, w, b, gy)):
        np.testing.assert_array_equal(a, c)  # measuring wrote nothing into the arguments
    (name,) = kernels.benchmark_choices().values()
    with kernels.force(name, strict=True):
        forced = _step(x, w, b, gy, **kw)
    for d, t, a, f in zip(default, tuned, again, forced):
        np.testing.assert_allclose(t, d, rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(t, a)
        np.testing.assert_array_equal(t, f)


def test_the_real_call_keeps_only_its_own_state():
    """The timing runs' saved state is not the call's: the call's forward saves afresh, and
    its weight gradient (reading it) equals the forced algorithm's."""
    x, w, b, gy = _data((2, 4, 12, 12), (6, 4, 3, 3), (12, 12))
    spec = ConvSpec.of(x.shape, w.shape, 1, 1, 1, 1, np.float64, bias=True)
    with kernels.benchmark():
        plan = kernels.plan(spec, x, w, b, backward=True)
    y, saved = plan.forward.forward(spec, x, w, b, True)
    with kernels.force(plan.forward.name):
        forced = kernels.plan(spec)
    assert forced.names == plan.names
    y_forced, saved_forced = forced.forward.forward(spec, x, w, b, True)
    assert type(saved) is type(saved_forced) and saved is not saved_forced
    dw, db = plan.weight_grad.weight_grad(spec, x, gy, saved)
    dw_forced, db_forced = forced.weight_grad.weight_grad(spec, x, gy, saved_forced)
    np.testing.assert_array_equal(y, y_forced)
    np.testing.assert_array_equal(dw, dw_forced)
    np.testing.assert_array_equal(db, db_forced)


def test_no_weight_gradient_and_transpose_use_the_lookup(clock):
    """Without a cache (weight gradient not needed) the input gradient and the transposed
    convolution look up the forward's measured choice and time nothing more."""
    rng = np.random.default_rng(4)
    x = convprop.Tensor(rng.standard_normal((2, 4, 9)), requires_grad=True)
    w = rng.standard_normal((6, 4, 3))
    with kernels.benchmark():
        y = conv1d(x, w, padding=1)
        n = len(clock)
        y.backward(np.ones(y.shape))
        assert len(clock) == n
    ref = conv1d(convprop.Tensor(x.data, requires_grad=True), w, padding=1)
    np.testing.assert_allclose(y.data, ref.data, rtol=1e-10, atol=1e-10)
    xt = rng.standard_normal((2, 6, 7, 7))
    wt = rng.standard_normal((6, 4, 3, 3))
    with kernels.benchmark():
        yt = conv_transpose2d(xt, wt, stride=2)
    np.testing.assert_allclose(yt.data, conv_transpose2d(xt, wt, stride=2).data,
                               rtol=1e-10, atol=1e-10)


def test_float16_leaves_winograd_out(monkeypatch):
    ran = []
    winograd = kernels.algorithms()["winograd"]
    real = winograd.forward
    monkeypatch.setattr(winograd, "forward", lambda *a, **k: ran.append(1) or real(*a, **k))
    x, w, b, gy = _data((2, 4, 9, 8), (6, 4, 3, 3), (9, 8), dtype=np.float16)
    with kernels.benchmark():
        _step(x, w, b, gy, padding=1)
    assert not ran and "winograd" not in kernels.benchmark_choices().values()


def test_context_manager_restores_and_clear_forgets(clock):
    kernels.set_benchmark(True)
    with kernels.benchmark(False):
        conv2d(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)))
        assert not clock
    assert kernels.benchmark_enabled() is True
    conv2d(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)))
    assert clock and kernels.benchmark_choices()
    kernels.clear_benchmark()
    assert kernels.benchmark_choices() == {}
    kernels.set_benchmark(False)

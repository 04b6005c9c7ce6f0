"""Compiled (Numba) max and average pooling against PyTorch, the NumPy path, and finite differences.

The compiled kernels of :mod:`convprop.kernels.numba.pool` run here on small inputs
(their size threshold is lowered for the test); every case checks float64 values,
max pooling's indices and the input gradient within 1e-10 of PyTorch over 1-3-D,
kernel, stride, padding, dilation and ``ceil_mode``, ties (the gradient goes to the
first maximum) and NaN, N = 0 and N = 1, float32 within 1e-4 of float64, and that
the compiled path really ran.  Also: the dispatch rule, two Python threads running
compiled convolutions and poolings at once, and ``convprop demo`` loading no Numba.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import convprop
import convprop.functional as F
from convprop import kernels
from convprop.gradcheck import gradcheck
from convprop.kernels.numba import pool

pytest.importorskip("numba", reason="numba is not installed: the compiled backend is unavailable")
from oracle import torch  # noqa: E402  (the real module, or a skip on first use)

TF = {1: "max_pool1d", 2: "max_pool2d", 3: "max_pool3d"}
TA = {1: "avg_pool1d", 2: "avg_pool2d", 3: "avg_pool3d"}


@pytest.fixture
def compiled(monkeypatch):
    """The numba backend with every pooling call compiled; yields the calls counted."""
    calls = {"max": 0, "avg": 0}
    max_pool, avg_pool = pool.max_pool, pool.avg_pool

    def counted_max(*args, **kw):
        calls["max"] += 1
        return max_pool(*args, **kw)

    def counted_avg(*args, **kw):
        calls["avg"] += 1
        return avg_pool(*args, **kw)

    monkeypatch.setattr(pool, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(pool, "MAX_POOL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(pool, "max_pool", counted_max)
    monkeypatch.setattr(pool, "avg_pool", counted_avg)
    with kernels.use_backend("numba") as be:
        assert be.name == "numba"
        yield calls


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return np.inf
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def _input(shape: tuple[int, ...], seed: int = 0, ties: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: many windows hold several equal maxima
        return rng.integers(-2, 3, shape).astype(np.float64)
    return rng.standard_normal(shape)


# kernel, stride, padding, dilation, ceil_mode per spatial size
MAX_CASES = [
    (2, None, 0, 1, False),
    (3, 1, 1, 1, False),
    (3, 2, 1, 1, True),
    (2, 3, 1, 1, True),
    (3, 2, 0, 2, False),
    (3, 1, 1, 2, True),
    (4, 3, 2, 1, True),
    (1, 2, 0, 1, False),
]


def _sizes(nd: int) -> tuple[int, ...]:
    return {1: (11,), 2: (7, 9), 3: (5, 6, 7)}[nd]


def _max_case(nd: int, case: tuple, n: int, ties: bool, seed: int = 0) -> None:
    k, s, p, d, ceil = case
    x = _input((n, 3) + _sizes(nd), seed, ties)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = getattr(torch.nn.functional, TF[nd])(xt, k, s, p, d, ceil, return_indices=True)
    gy = _input(tuple(yt.shape), seed + 1)
    yt.backward(torch.tensor(gy))
    xc = convprop.tensor(x, requires_grad=True)
    yc, ic = getattr(F, TF[nd])(xc, k, s, p, d, ceil, return_indices=True)
    yc.backward(convprop.tensor(gy))
    assert _rel(yc.data, yt.detach().numpy()) <= 1e-10
    assert np.array_equal(ic.data, it.numpy())
    assert _rel(xc.grad.data, xt.grad.numpy()) <= 1e-10


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool_matches_torch(compiled, nd, case):
    _max_case(nd, case, 2, ties=False)
    assert compiled["max"] == 1


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("case", MAX_CASES[:4])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(compiled, nd, case):
    _max_case(nd, case, 2, ties=True, seed=3)
    assert compiled["max"] == 1


def test_max_pool_nan_and_minus_infinity_as_torch(compiled):
    x = _input((2, 2, 6, 6), 5)
    x[0, 0, 0, :2] = np.nan
    x[0, 1, 1, 1] = np.nan
    x[1, 0, :3, :3] = -np.inf  # a window of -inf: its index is its first real cell
    for k, s, p in ((2, 2, 0), (3, 2, 1), (3, 1, 1)):
        xt = torch.tensor(x, requires_grad=True)
        yt, it = torch.nn.functional.max_pool2d(xt, k, s, p, return_indices=True)
        yt.backward(torch.ones_like(yt))
        xc = convprop.tensor(x, requires_grad=True)
        yc, ic = F.max_pool2d(xc, k, s, p, return_indices=True)
        yc.backward(convprop.tensor(np.ones(yc.shape)))
        np.testing.assert_array_equal(yc.data, yt.detach().numpy())
        np.testing.assert_array_equal(ic.data, it.numpy())
        np.testing.assert_array_equal(xc.grad.data, xt.grad.numpy())
    assert compiled["max"] == 3


AVG_CASES = [  # kernel, stride, padding, ceil_mode, count_include_pad
    (2, None, 0, False, True),
    (3, 1, 1, False, True),
    (3, 1, 1, False, False),
    (3, 2, 1, True, True),
    (3, 2, 1, True, False),
    (2, 3, 1, True, True),
    (4, 3, 2, True, False),
]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool_matches_torch(compiled, nd, case):
    k, s, p, ceil, inc = case
    x = _input((2, 3) + _sizes(nd))
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn.functional, TA[nd])(xt, k, s, p, ceil, inc)
    gy = _input(tuple(yt.shape), 1)
    yt.backward(torch.tensor(gy))
    xc = convprop.tensor(x, requires_grad=True)
    yc = getattr(F, TA[nd])(xc, k, s, p, ceil, inc)
    yc.backward(convprop.tensor(gy))
    assert _rel(yc.data, yt.detach().numpy()) <= 1e-10
    assert _rel(xc.grad.data, xt.grad.numpy()) <= 1e-10
    assert compiled["avg"] == 1


@pytest.mark.parametrize("nd", [2, 3])
def test_avg_pool_divisor_override_matches_torch(compiled, nd):
    x = _input((2, 3) + _sizes(nd))
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn.functional, TA[nd])(xt, 3, 2, 1, True, True, -5)
    yt.backward(torch.ones_like(yt))
    xc = convprop.tensor(x, requires_grad=True)
    yc = getattr(F, TA[nd])(xc, 3, 2, 1, True, True, -5)
    yc.backward(convprop.tensor(np.ones(yc.shape)))
    assert _rel(yc.data, yt.detach().numpy()) <= 1e-10
    assert _rel(xc.grad.data, xt.grad.numpy()) <= 1e-10


@pytest.mark.parametrize("n", [0, 1])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_empty_and_single_batch_and_unbatched(compiled, n, kind):
    x = _input((n, 2, 6, 5))
    name = TF[2] if kind == "max" else TA[2]
    for arr in (x, x[0] if n else None):
        if arr is None:
            continue
        xt = torch.tensor(arr, requires_grad=True)
        yt = getattr(torch.nn.functional, name)(xt, 3, 2, 1, ceil_mode=True)
        yt.sum().backward()
        xc = convprop.tensor(arr, requires_grad=True)
        yc = getattr(F, name)(xc, 3, 2, 1, ceil_mode=True)
        yc.sum().backward()
        assert yc.shape == tuple(yt.shape)
        assert _rel(yc.data, yt.detach().numpy()) <= 1e-10
        assert _rel(xc.grad.data, xt.grad.numpy()) <= 1e-10
    assert compiled[kind] == (2 if n else 1)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_float32_within_1e4_of_float64(compiled, kind):
    x = _input((3, 4, 9, 8))
    fn = getattr(F, TF[2] if kind == "max" else TA[2])
    ys = []
    for dtype in (np.float64, np.float32):
        xc = convprop.tensor(x.astype(dtype), requires_grad=True)
        y = fn(xc, 3, 2, 1, ceil_mode=True)
        v = np.linspace(-1, 1, y.data.size).reshape(y.shape).astype(dtype)
        (y * convprop.tensor(v)).sum().backward()
        assert y.dtype == dtype and xc.grad.dtype == dtype
        ys.append((y.data, xc.grad.data))
    assert _rel(ys[1][0], ys[0][0]) <= 1e-4 and _rel(ys[1][1], ys[0][1]) <= 1e-4
    assert compiled[kind] == 2


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_compiled_path_agrees_with_the_numpy_reference(compiled, kind):
    x = _input((2, 3, 10, 9), 7)
    fn = getattr(F, TF[2] if kind == "max" else TA[2])
    out = {}
    for backend in ("numba", "numpy"):
        with kernels.use_backend(backend):
            xc = convprop.tensor(x, requires_grad=True)
            y = fn(xc, 3, 2, 1, ceil_mode=True)
            y.backward(convprop.tensor(np.cos(np.arange(y.data.size)).reshape(y.shape)))
            out[backend] = (y.data, xc.grad.data)
    assert _rel(out["numba"][0], out["numpy"][0]) <= 1e-12
    assert _rel(out["numba"][1], out["numpy"][1]) <= 1e-12
    assert compiled[kind] == 1  # only the numba backend's call


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_gradcheck_and_double_backward(compiled, kind):
    x = convprop.tensor(_input((2, 2, 7, 6), 11), requires_grad=True)
    if kind == "max":
        def fn(t):
            return F.max_pool2d(t, 3, 2, 1, ceil_mode=True)
    else:
        def fn(t):
            return F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    assert gradcheck(fn, x, eps=1e-6, atol=1e-8, rtol=1e-6)
    # double backward: d/dx of <grad of (fn(x) * v).sum(), u> is zero (pooling is piecewise
    # linear), and the gradient of the gradient with respect to the upstream gradient is the
    # pooling itself: compare that against torch
    xt = torch.tensor(x.data, requires_grad=True)
    tfn = (lambda t: torch.nn.functional.max_pool2d(t, 3, 2, 1, ceil_mode=True)) if kind == "max" \
        else (lambda t: torch.nn.functional.avg_pool2d(t, 3, 2, 1, ceil_mode=True,
                                                       count_include_pad=False))
    yt = tfn(xt)
    v = np.sin(np.arange(yt.numel())).reshape(tuple(yt.shape))
    vt = torch.tensor(v, requires_grad=True)
    (gt,) = torch.autograd.grad(yt, xt, vt, create_graph=True)
    u = np.cos(np.arange(x.data.size)).reshape(x.shape)
    (ggt,) = torch.autograd.grad((gt * torch.tensor(u)).sum(), vt)
    vc = convprop.tensor(v, requires_grad=True)
    yc = fn(x)
    (gc,) = convprop.autograd.grad(yc, x, vc, create_graph=True)
    (ggc,) = convprop.autograd.grad((gc * convprop.tensor(u)).sum(), vc)
    assert _rel(gc.data, gt.detach().numpy()) <= 1e-10
    assert _rel(ggc.data, ggt.numpy()) <= 1e-10


# --- the dispatch rule -------------------------------------------------------------------------


def test_rule_keeps_small_calls_other_backends_and_other_dtypes_on_numpy(monkeypatch):
    pads = ((0, 0), (0, 0))
    big = np.zeros((4, 16, 128, 128), np.float32)
    mid = big[:, :4]
    assert big.size >= pool.MAX_POOL_MIN_ELEMENTS > mid.size >= pool.MIN_ELEMENTS
    with kernels.use_backend("numba"):
        assert pool.compiled_pool("max", big, (2, 2), (2, 2), (1, 1), pads, (64, 64))
        assert not pool.compiled_pool("max", mid, (2, 2), (2, 2), (1, 1), pads, (64, 64))
        assert pool.compiled_pool("avg", mid, (2, 2), (2, 2), (1, 1), pads, (64, 64))
        small = big[:1, :1, :4, :4]
        assert not pool.compiled_pool("avg", small, (2, 2), (2, 2), (1, 1), pads, (2, 2))
        for dtype in (np.float16, np.int64):
            assert not pool.compiled_pool("avg", mid.astype(dtype), (2, 2), (2, 2), (1, 1), pads,
                                          (64, 64))
        # kernel 2, dilation 5, padding 1 over 4 cells: the window at -1 reads -1 and 4
        monkeypatch.setattr(pool, "MAX_POOL_MIN_ELEMENTS", 0)
        assert not pool.compiled_pool("max", np.zeros((1, 1, 4)), (2,), (1,), (5,), ((1, 2),),
                                      (1,))
    with kernels.use_backend("numpy"):
        assert not pool.compiled_pool("max", big, (2, 2), (2, 2), (1, 1), pads, (64, 64))
        assert not pool.compiled_pool("avg", mid, (2, 2), (2, 2), (1, 1), pads, (64, 64))


def test_window_between_input_and_padding_stays_on_numpy(compiled):
    x = _input((1, 1, 4))
    y = F.max_pool1d(convprop.tensor(x), 2, 1, 1, 5)
    assert compiled["max"] == 0 and y.shape == (1, 1, 1)


def test_large_call_runs_compiled_by_default(monkeypatch):
    x = _input((4, 8, 32, 32))
    assert x.size >= pool.MIN_ELEMENTS
    ran = []
    avg_pool = pool.avg_pool
    monkeypatch.setattr(pool, "avg_pool", lambda *a: ran.append(1) or avg_pool(*a))
    with kernels.use_backend("numba"):
        y = F.avg_pool2d(convprop.tensor(x), 2)
    np.testing.assert_allclose(y.data, x.reshape(4, 8, 16, 2, 16, 2).mean(axis=(3, 5)),
                               rtol=0, atol=1e-12)
    assert ran == [1]


# --- threads, laziness -------------------------------------------------------------------------


def test_two_python_threads_run_compiled_convs_and_pools_at_once(compiled):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((8, 4, 16, 16)) for _ in range(2)]
    w = rng.standard_normal((6, 4, 3, 3))
    expected = []
    for x in xs:
        xt = torch.tensor(x, requires_grad=True)
        y = torch.nn.functional.max_pool2d(torch.nn.functional.conv2d(xt, torch.tensor(w),
                                                                       padding=1), 2)
        y = torch.nn.functional.avg_pool2d(y, 3, 1, 1)
        y.sum().backward()
        expected.append((y.detach().numpy(), xt.grad.numpy()))
    errors: list[str] = []
    start = threading.Barrier(2)

    def work(i: int) -> None:
        try:
            with kernels.use_backend("numba"), kernels.force("numba_im2col", strict=True):
                start.wait()
                for _ in range(20):
                    xc = convprop.tensor(xs[i], requires_grad=True)
                    y = F.avg_pool2d(F.max_pool2d(F.conv2d(xc, convprop.tensor(w), padding=1), 2),
                                     3, 1, 1)
                    y.sum().backward()
                    want_y, want_dx = expected[i]
                    if _rel(y.data, want_y) > 1e-10 or _rel(xc.grad.data, want_dx) > 1e-10:
                        errors.append(f"thread {i}: wrong answer")
                        return
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {exc!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_blas_hold_works_from_a_second_python_thread():
    """SciPy's BLAS drops to one thread inside the hold in any Python thread, also after
    another thread set a limit through threadpoolctl (which then ignores the others)."""
    from threadpoolctl import threadpool_limits

    from convprop.kernels.numba import _common

    with threadpool_limits(2, user_api="blas"):  # this thread now "controls" OpenBLAS
        with _common.one_blas_thread():
            pass  # looks the libraries up
        seen: list[list[int]] = []

        def hold() -> None:
            with _common.one_blas_thread():
                seen.append([lib.num_threads() for lib in _common._blas["libs"]])

        worker = threading.Thread(target=hold)
        worker.start()
        worker.join()
        assert seen and seen[0] and all(n == 1 for n in seen[0])
        assert all(lib.num_threads() == 2 for lib in _common._blas["libs"])


def _clean_env(**env: str) -> dict[str, str]:
    """This process's environment without the OpenMP and threading-layer settings, plus ``env``."""
    import os

    clean = {k: v for k, v in os.environ.items()
             if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_THREADING_LAYER")}
    return dict(clean, **env)


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_clean_env(**env), timeout=300)


#: Runs one compiled pooling, then prints Numba's threading layer, the environment's wait
#: policy and what libgomp (the copy Numba's ``omp`` layer links) reports on stderr.
_SHOW_OMP = """
import ctypes, os, numpy as np, numba
from convprop.kernels.numba import pool
pool.max_pool(np.zeros((1, 1, 4, 4)), (2, 2), (2, 2), (1, 1), ((0, 0), (0, 0)), (2, 2))
print(numba.threading_layer(), os.environ.get('OMP_WAIT_POLICY'), flush=True)
gomp = ctypes.CDLL('libgomp.so.1.0.0')
if hasattr(gomp, 'omp_display_env'):
    gomp.omp_display_env(1)
"""


def test_numba_openmp_threads_are_passive_and_the_environment_is_restored():
    done = _run(_SHOW_OMP)
    assert done.returncode == 0, done.stderr
    layer, policy = done.stdout.split()
    if layer != "omp" or "GOMP_SPINCOUNT" not in done.stderr:
        pytest.skip(f"threading layer {layer}, or libgomp cannot display its settings")
    assert policy == "None"  # the setting was Numba's runtime's only
    assert "GOMP_SPINCOUNT = '0'" in done.stderr


def test_numba_gets_its_own_passive_runtime_with_torch_imported_first():
    """PyTorch's wheel loads its own libgomp with global symbols; Numba's omp layer is loaded
    so that it binds to the libgomp it links, which took the passive setting."""
    done = _run("import torch\n" + _SHOW_OMP, LD_DEBUG="bindings")
    assert done.returncode == 0, done.stderr[-2000:]
    layer, policy = done.stdout.split()
    binds = [line for line in done.stderr.splitlines()
             if "omppool" in line and "`GOMP_parallel'" in line]
    if layer != "omp" or not binds or "GOMP_SPINCOUNT" not in done.stderr:
        pytest.skip(f"threading layer {layer}, or the loader or libgomp cannot report")
    assert policy == "None"
    assert all("/torch/" not in line for line in binds), binds
    assert "GOMP_SPINCOUNT = '0'" in done.stderr


def test_the_users_openmp_wait_policy_wins():
    done = _run(_SHOW_OMP, OMP_WAIT_POLICY="ACTIVE")
    assert done.returncode == 0, done.stderr
    layer, policy = done.stdout.split()
    if layer != "omp" or "OMP_WAIT_POLICY" not in done.stderr:
        pytest.skip(f"threading layer {layer}, or libgomp cannot display its settings")
    assert policy == "ACTIVE" and "OMP_WAIT_POLICY = 'ACTIVE'" in done.stderr


def test_workqueue_layer_launches_take_turns_from_two_python_threads():
    """Numba's ``workqueue`` layer aborts on concurrent launches: chosen by the user, every
    parallel kernel is wrapped so that launches hold one lock (two Python threads pooling
    and convolving at once still get the right answers), keeping the dispatcher's
    attributes."""
    code = """
import threading, numpy as np, numba, convprop, convprop.functional as F
from convprop import kernels
from convprop.kernels.numba import _common, pool
pool.MIN_ELEMENTS = pool.MAX_POOL_MIN_ELEMENTS = 0
rng = np.random.default_rng(0)
x, w = rng.standard_normal((8, 4, 16, 16)), rng.standard_normal((6, 4, 3, 3))
def run():
    with kernels.use_backend('numba'), kernels.force('numba_im2col', strict=True):
        y = F.conv2d(convprop.tensor(x), convprop.tensor(w), padding=1)
        y = F.avg_pool2d(F.max_pool2d(y, 2), 3, 1, 1)
    return y.data
want = run()
bad = []
def work():
    for _ in range(20):
        if np.abs(run() - want).max() > 1e-12:
            bad.append(1)
threads = [threading.Thread(target=work) for _ in range(2)]
[t.start() for t in threads]; [t.join() for t in threads]
kernel = pool._max_forward
print(numba.threading_layer(), isinstance(kernel, _common.Serialised), bool(kernel.signatures), len(bad))
"""
    done = _run(code, NUMBA_THREADING_LAYER="workqueue")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["workqueue", "True", "True", "0"]


def test_demo_loads_no_numba():
    code = ("import sys, contextlib, io; from convprop.cli import main; "
            "out = io.StringIO(); ctx = contextlib.redirect_stdout(out); ctx.__enter__(); "
            "main(['demo']); ctx.__exit__(None, None, None); "
            "assert 'numba' not in sys.modules, 'numba imported'; print('ok')")
    env = dict(__import__("os").environ, CONVPROP_BACKEND="numba")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr

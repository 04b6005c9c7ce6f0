"""PyTorch parity of conv1d/2d/3d and conv_transpose1d/2d/3d: forward and all gradients.

A hypothesis sweep draws ranks, batch (unbatched and empty included), channels,
groups (depthwise included), kernel sizes, strides (non-dividing included),
padding in every spelling and mode, dilations, output_padding and bias on/off.
Each case runs forward and backward (with a random upstream gradient) in
convprop and in PyTorch and compares output, d input, d weight and d bias.

Every test runs on each kernel backend (``numpy``, and ``numba`` where it is
available; see ``tests/backends.py``).  Relative error is ``max|a - b| / max(1,
max|b|)`` with ``b`` PyTorch's value; the bound is 1e-10 in float64 and 1e-4 in
float32.  The number of cases and the worst error seen are printed at the end of
the run, and written as JSON to ``parity_summary.json`` in the run's temporary
directory (pytest's ``tmp_path_factory``; nothing is written anywhere else)::

    python -m pytest tests/test_conv_parity.py -q
"""

from __future__ import annotations

import json
from collections.abc import Callable

import backends
import numpy as np
import pytest
from hypothesis import given, settings
from oracle import tF, torch  # noqa: E402  (torch, or a skip on first use)
from reference import conv_arrays, conv_cases, transpose_cases

import convprop as cp
import convprop.functional as F

# PyTorch notes that it copies the input for some 'same' paddings; not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

TOL = {np.float64: 1e-10, np.float32: 1e-4}
STATS: dict[str, dict] = {}


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max(1, max|b|)``; 0 for empty arrays (shapes are checked apart)."""
    assert a.shape == b.shape, (a.shape, b.shape)
    if b.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def record(kind: str, dtype, errors: dict[str, float], case: dict) -> None:
    key = f"{kind}/{np.dtype(dtype).name}"
    s = STATS.setdefault(key, {"cases": 0, "worst_rel_err": 0.0, "worst_case": None})
    s["cases"] += 1
    worst = max(errors.values())
    if worst >= s["worst_rel_err"]:
        s["worst_rel_err"] = worst
        s["worst_case"] = {k: v for k, v in case.items() if k != "seed"} | {"seed": case["seed"]}
    for name, err in errors.items():
        assert err <= TOL[dtype], f"{name}: rel err {err:.3g} > {TOL[dtype]:g} for {case}"


@pytest.fixture(scope="module", autouse=True)
def parity_summary(request, tmp_path_factory):
    """Write and print the sweep's size and worst relative error once the module is done.

    PyTorch runs single-threaded meanwhile: on these tiny tensors its thread pool
    only adds overhead (several-fold on a loaded 2-core machine).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
    if not STATS:
        return
    by_dtype = {}
    for key, s in STATS.items():
        dt = key.split("/")[1]
        d = by_dtype.setdefault(dt, {"cases": 0, "worst_rel_err": 0.0})
        d["cases"] += s["cases"]
        d["worst_rel_err"] = max(d["worst_rel_err"], s["worst_rel_err"])
    summary_path = tmp_path_factory.mktemp("parity") / "parity_summary.json"
    with open(summary_path, "w") as fh:
        json.dump({"by_dtype": by_dtype, "by_op": STATS}, fh, indent=1, default=str)
    lines = [f"convprop/PyTorch parity: {d['cases']} cases in {dt}, worst rel err "
             f"{d['worst_rel_err']:.3g}" for dt, d in sorted(by_dtype.items())]
    lines.append(f"(details in {summary_path})")
    plugins = request.config.pluginmanager
    reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # show the lines even under output capture
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


def _torch_leaf(a: np.ndarray | None):
    return None if a is None else torch.tensor(a, requires_grad=True)


def _grads(tensors, torch_tensors) -> dict:
    out = {}
    for name, t, tt in zip(("d_input", "d_weight", "d_bias"), tensors, torch_tensors):
        if t is None:
            continue
        assert t.grad is not None and t.grad.dtype == t.dtype, name
        out[name] = (t.grad, tt.grad.numpy())
    return out


def _check_parity(case: dict, dtype, name: str, transpose: bool, run: Callable,
                  run_torch: Callable) -> None:
    """Run ``run`` (convprop) and ``run_torch`` on the same leaves; compare the output
    and every gradient, check that no input was modified, and record the errors."""
    arr = conv_arrays(case, transpose=transpose)
    x, w, b = arr["x"], arr["w"], arr["b"]
    if case["n"] is None:
        x = x[0]
    x, w = x.astype(dtype), w.astype(dtype)
    b = None if b is None else b.astype(dtype)
    arrays = [a for a in (x, w, b) if a is not None]
    originals = [a.copy() for a in arrays]

    xt, wt = cp.tensor(x, requires_grad=True), cp.tensor(w, requires_grad=True)
    bt = None if b is None else cp.tensor(b, requires_grad=True)
    leaves = [t for t in (xt, wt, bt) if t is not None]
    held = [t.data.copy() for t in leaves]
    y = run(xt, wt, bt)
    assert y.dtype == dtype
    g = arr["rng"].standard_normal(y.shape).astype(dtype)
    y.backward(g)

    tx, tw, tb = _torch_leaf(x), _torch_leaf(w), _torch_leaf(b)
    ty = run_torch(tx, tw, tb)
    ty.backward(torch.from_numpy(g))

    errors = {"output": rel_err(y.data, ty.detach().numpy())}
    for grad_name, (a, ref) in _grads((xt, wt, bt), (tx, tw, tb)).items():
        errors[grad_name] = rel_err(a, ref)
    # inputs never modified in place: neither the caller's arrays nor the Tensors' data
    for orig, now in zip(originals + held, arrays + [t.data for t in leaves]):
        np.testing.assert_array_equal(orig, now)
    record(name, dtype, errors, case)


def check_conv(case: dict, dtype) -> None:
    nd = case["nd"]
    conv, tconv = getattr(F, f"conv{nd}d"), getattr(tF, f"conv{nd}d")
    p = case["padding"]
    pairs_form = isinstance(p, tuple) and isinstance(p[0], tuple)

    def run(xt, wt, bt):
        return conv(xt, wt, bt, stride=case["stride"], padding=case["padding"],
                    dilation=case["dilation"], groups=case["groups"], padding_mode=case["mode"])

    def run_torch(tx, tw, tb):
        if case["mode"] == "zeros" and not pairs_form:
            # PyTorch's own spelling (int, tuple, 'valid', 'same')
            return tconv(tx, tw, tb, case["stride_t"], case["padding"], case["dilation_t"],
                         case["groups"])
        # asymmetric pairs or a non-zero mode: pad explicitly, as nn.ConvNd does
        flat = [v for pair in reversed(case["pairs"]) for v in pair]
        mode = "constant" if case["mode"] == "zeros" else case["mode"]
        return tconv(tF.pad(tx, flat, mode=mode), tw, tb, case["stride_t"], 0,
                     case["dilation_t"], case["groups"])

    _check_parity(case, dtype, f"conv{nd}d", False, run, run_torch)


def check_transpose(case: dict, dtype) -> None:
    nd = case["nd"]
    conv, tconv = getattr(F, f"conv_transpose{nd}d"), getattr(tF, f"conv_transpose{nd}d")

    def run(xt, wt, bt):
        return conv(xt, wt, bt, stride=case["stride"], padding=case["padding"],
                    output_padding=case["output_padding"], groups=case["groups"],
                    dilation=case["dilation"])

    def run_torch(tx, tw, tb):
        return tconv(tx, tw, tb, case["stride_t"], case["padding_t"], case["output_padding_t"],
                     case["groups"], case["dilation_t"])

    _check_parity(case, dtype, f"conv_transpose{nd}d", True, run, run_torch)


@pytest.mark.parametrize("backend", backends.params())
@settings(max_examples=500)
@given(conv_cases())
def test_conv_parity_float64(backend, case):
    with backends.running_on(backend):
        check_conv(case, np.float64)


@pytest.mark.parametrize("backend", backends.params())
@settings(max_examples=300)
@given(transpose_cases())
def test_conv_transpose_parity_float64(backend, case):
    with backends.running_on(backend):
        check_transpose(case, np.float64)


@pytest.mark.parametrize("backend", backends.params())
@settings(max_examples=200)
@given(conv_cases())
def test_conv_parity_float32(backend, case):
    with backends.running_on(backend):
        check_conv(case, np.float32)


@pytest.mark.parametrize("backend", backends.params())
@settings(max_examples=150)
@given(transpose_cases())
def test_conv_transpose_parity_float32(backend, case):
    with backends.running_on(backend):
        check_transpose(case, np.float32)


# Hand-picked corners, so they run whatever hypothesis draws.
CORNERS = [
    # depthwise, non-dividing stride, asymmetric pairs, reflect
    dict(nd=2, n=2, c=4, o=8, groups=4, spatial=(7, 6), kernel=(3, 2), stride=(2, 3),
         dilation=1, padding=((1, 2), (0, 1)), mode="reflect"),
    # 'same' with an even dilated kernel: odd total, extra cell after
    dict(nd=1, n=None, c=3, o=2, groups=1, spatial=(6,), kernel=(4,), stride=1,
         dilation=1, padding="same", mode="zeros"),
    dict(nd=2, n=1, c=2, o=2, groups=2, spatial=(5, 5), kernel=(2, 3), stride=1,
         dilation=(2, 1), padding="same", mode="circular"),
    dict(nd=3, n=2, c=2, o=3, groups=1, spatial=(4, 5, 3), kernel=(2, 2, 2),
         stride=(1, 2, 2), dilation=(1, 2, 1), padding=(1, 0, 2), mode="replicate"),
    # kernel exactly as large as the padded input
    dict(nd=2, n=1, c=1, o=1, groups=1, spatial=(2, 3), kernel=(3, 3), stride=1,
         dilation=1, padding=((1, 0), (0, 0)), mode="zeros"),
    # empty batch
    dict(nd=2, n=0, c=2, o=2, groups=1, spatial=(4, 4), kernel=(2, 2), stride=1,
         dilation=1, padding=1, mode="zeros"),
]


def _complete(case: dict) -> dict:
    nd = case["nd"]

    def per_dim(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd

    c = dict(case, stride_t=per_dim(case["stride"]), dilation_t=per_dim(case["dilation"]),
             bias=True, seed=1234)
    p = case["padding"]
    if p == "same":
        c["pairs"] = tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                           for d, k in zip(c["dilation_t"], case["kernel"]))
    elif p == "valid":
        c["pairs"] = ((0, 0),) * nd
    elif isinstance(p, tuple) and isinstance(p[0], tuple):
        c["pairs"] = p
    else:
        c["pairs"] = tuple((q, q) for q in per_dim(p))
    return c


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CORNERS, ids=lambda c: f"conv{c['nd']}d-{c['padding']}-{c['mode']}")
def test_conv_parity_corners(backend, case, dtype):
    check_conv(_complete(case), dtype)


TRANSPOSE_CORNERS = [
    dict(nd=1, n=2, c=2, o=3, groups=1, spatial=(4,), kernel=(3,), stride=1, padding=1,
         output_padding=1, dilation=2),  # output_padding >= stride but < dilation
    dict(nd=2, n=None, c=4, o=4, groups=4, spatial=(3, 2), kernel=(3, 2), stride=(3, 2),
         padding=(1, 0), output_padding=(2, 1), dilation=1),  # depthwise
    dict(nd=3, n=1, c=2, o=2, groups=2, spatial=(2, 3, 2), kernel=(2, 1, 2), stride=(2, 1, 3),
         padding=(0, 0, 1), output_padding=(1, 0, 2), dilation=(1, 1, 2)),
    dict(nd=2, n=0, c=2, o=2, groups=1, spatial=(3, 3), kernel=(2, 2), stride=2, padding=0,
         output_padding=0, dilation=1),  # empty batch
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", TRANSPOSE_CORNERS, ids=lambda c: f"conv_transpose{c['nd']}d")
def test_conv_transpose_parity_corners(backend, case, dtype):
    nd = case["nd"]

    def per_dim(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd

    c = dict(case, bias=True, seed=4321)
    for key in ("stride", "dilation", "padding", "output_padding"):
        c[f"{key}_t"] = per_dim(case[key])
    check_transpose(c, dtype)

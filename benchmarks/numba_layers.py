"""The compiled (Numba) convolution algorithms against PyTorch CPU, per suite layer, one process.

For each layer of :data:`convprop.bench.LAYERS` and each compiled algorithm that
supports it, times forward + backward (output, input, weight and bias gradients;
float32) and the forward alone, interleaved with PyTorch (and, with ``--numpy``,
with convprop's NumPy path), each timed sample after a pause of
:data:`convprop.bench.SETTLE_S` and one untimed call; the best of ``--repeats`` is
kept.  It prints times, ratios to PyTorch (``numpy r``: the NumPy path's f+b ratio),
the float32 and float64 errors against PyTorch's float64 answer (largest over output
and gradients, relative to the largest value), and the first-call time of each
algorithm (compile, or load from Numba's cache: run it twice to see both).

On a machine whose cores are busy with other work, wall-clock samples mostly measure
waiting for a core; ``--threads 1 --clock cpu`` then still compares the work done.

Usage::

    PYTHONPATH=src python benchmarks/numba_layers.py [--layers a,b] [--repeats 5]
        [--algorithms numba_winograd,numba_im2col] [--threads 2] [--numpy] [--clock wall|cpu]

``NUMBA_THREADING_LAYER=workqueue`` (or ``omp``) compares Numba's threading layers.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from convprop.bench import LAYERS, MIN_SAMPLE_S, SETTLE_S, Layer, _Case
from convprop.kernels.numba import ALGORITHMS
from convprop.kernels.spec import ConvSpec


def spec_of(layer: Layer, dtype: type = np.float32) -> ConvSpec:
    nd = layer.nd
    return ConvSpec(layer.n, layer.c, layer.o, layer.size, layer.kernel, (layer.stride,) * nd,
                    (layer.dilation,) * nd, ((layer.padding, layer.padding),) * nd, layer.groups,
                    np.dtype(dtype), True)


#: The clock samples are timed with: wall time, or (``--clock cpu``) the CPU time of all of
#: the process's threads, which on a machine whose cores are busy with other work leaves
#: out the time spent waiting for a core (but counts threads that spin while they wait).
CLOCK = time.perf_counter


def interleave(fns: dict, repeats: int) -> dict[str, float]:
    """Best seconds per call of each function, timed in turn with the pause rule."""
    inner = {}
    for key, fn in fns.items():
        fn()
        t = time.perf_counter()
        fn()
        inner[key] = max(1, math.ceil(MIN_SAMPLE_S / max(time.perf_counter() - t, 1e-6)))
    res = dict.fromkeys(fns, math.inf)
    for _ in range(repeats):
        for key, fn in fns.items():
            time.sleep(SETTLE_S)
            fn()  # untimed: wakes this library's threads and caches after the pause
            t = CLOCK()
            for _ in range(inner[key]):
                fn()
            res[key] = min(res[key], (CLOCK() - t) / inner[key])
    return res


def run_layer(L: Layer, torch, convprop, repeats: int, with_numpy: bool,
              first_call: dict[str, float], names: tuple[str, ...] = ()) -> None:
    """Time and check every compiled algorithm that supports layer ``L`` (those in ``names``
    when given); print one row each."""
    spec = spec_of(L)
    case = _Case(L, torch)  # the conv suite's operands (seed 0) and PyTorch closures
    x, w, b, gy = case.x, case.w, case.b, case.gy
    torch_fwd, torch_step = case.torch_forward, case.torch_step
    ref = list(case.reference64())


    def numpy_step():  # the NumPy backend's plan (the default backend would be numba's)
        with convprop.kernels.use_backend("numpy"):
            case.convprop_step()
    for algo in ALGORITHMS:
        if not algo.supports(spec) or (names and algo.name not in names):
            continue

        def fwd(algo=algo, spec=spec):
            return algo.forward(spec, x, w, b, False)[0]

        def step(algo=algo, spec=spec, x=x, w=w, b=b, gy=gy):
            y, saved = algo.forward(spec, x, w, b, True)
            dx = algo.input_grad(spec, gy, w, saved)
            dw, db = algo.weight_grad(spec, x, gy, saved)
            return y, dx, dw, db

        start = time.perf_counter()
        got = step()
        first_call.setdefault(algo.name, time.perf_counter() - start)
        err = max(_rel(a, r) for a, r in zip(got, ref))
        spec64 = spec_of(L, np.float64)
        got64 = [algo.forward(spec64, *(a.astype(np.float64) for a in (x, w, b)), False)[0]]
        start = time.perf_counter()
        got64 += [algo.input_grad(spec64, gy.astype(np.float64), w.astype(np.float64), None),
                  *algo.weight_grad(spec64, x.astype(np.float64), gy.astype(np.float64), None)]
        first_call.setdefault(algo.name + " float64", time.perf_counter() - start)
        err64 = max(_rel(a, r) for a, r in zip(got64, ref))
        fns = {"fwd": fwd, "tfwd": torch_fwd, "step": step, "tstep": torch_step}
        if with_numpy:
            fns["numpy"] = numpy_step
        t = interleave(fns, repeats)
        print(f"{L.name:<11} {algo.name:<16} {t['fwd'] * 1e3:8.2f} {t['tfwd'] * 1e3:8.2f} "
              f"{t['fwd'] / t['tfwd']:6.2f} {t['step'] * 1e3:8.2f} {t['tstep'] * 1e3:8.2f} "
              f"{t['step'] / t['tstep']:6.2f} "
              f"{t.get('numpy', math.nan) / t['tstep']:9.2f} {err:8.1e} {err64:8.1e}",
              flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="", help="comma-separated layer names (default: all)")
    parser.add_argument("--algorithms", default="",
                        help="comma-separated compiled algorithm names (default: all), e.g. "
                        "numba_winograd,numba_im2col")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--numpy", action="store_true", help="also time convprop's NumPy path")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time samples by wall clock or by the process's CPU time")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    import numba
    import torch

    import convprop
    from convprop import kernels

    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    kernels.set_threads(args.threads)
    names = [s for s in args.layers.split(",") if s]
    layers = [L for L in LAYERS if not names or L.name in names]
    print(f"{args.clock} clock, threads {args.threads}, Numba threading layer requested "
          f"{numba.config.THREADING_LAYER}, repeats {args.repeats}; times in ms, f+b = forward "
          "+ all gradients; ratio = time / PyTorch's")
    first_call: dict[str, float] = {}
    header = (f"{'layer':<11} {'algorithm':<16} {'fwd':>8} {'torch':>8} {'ratio':>6} {'f+b':>8} "
              f"{'torch':>8} {'ratio':>6} {'numpy r':>9} {'f32 err':>8} {'f64 err':>8}")
    print(header)
    print("-" * len(header))
    for L in layers:
        run_layer(L, torch, convprop, args.repeats, args.numpy, first_call,
                  tuple(s for s in args.algorithms.split(",") if s))
    print("first call per algorithm (compile, or load from cache), s: "
          + ", ".join(f"{k} {v:.2f}" for k, v in first_call.items()))
    print(f"threading layer used: {numba.threading_layer()}")
    return 0


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.max(np.abs(ref), initial=0.0))
    diff = float(np.max(np.abs(np.asarray(a, np.float64) - ref), initial=0.0))
    return diff / scale if scale else diff


if __name__ == "__main__":
    raise SystemExit(main())

"""Chosen algorithms of the numba backend against PyTorch CPU, per layer, in one process.

For each layer (the conv suite's :data:`convprop.bench.LAYERS` plus the training-step
models' convolutions, :data:`EXTRA`) and each named algorithm of the ``numba`` backend
that supports it (or ``plan``: the backend's chooser's plan, one algorithm per pass),
times the forward and forward + backward (output, input, weight and bias gradients;
float32) interleaved with PyTorch, with the pause rule of
``benchmarks/numba_layers.py`` (whose timing loop this reuses), and prints times, the
ratios to PyTorch and the float32 error against PyTorch's float64 answer.  Ratios, not
times, are what to compare on a shared machine: both libraries wait for the same cores.

Usage::

    PYTHONPATH=src python benchmarks/decompositions.py [--layers dilated3x3,lenet5x5b]
        [--algorithms plan,subgrid,numba_direct,numba_im2col] [--repeats 5] [--threads 2]
        [--clock wall|cpu] [--passes]

``--passes`` times each algorithm's forward, input gradient and weight gradient alone
(the measurements behind the numba chooser's ``numba_direct`` rules).
"""

from __future__ import annotations

import argparse
import time

import numba_layers
from numba_layers import _rel, interleave, spec_of

from convprop.bench import LAYERS, Layer, _Case

#: The training-step models' convolutions (``benchmarks/train_step.py``, batch 100).
EXTRA: tuple[Layer, ...] = (
    Layer("issue1x8", 100, 1, 8, (28, 28), (3, 3), padding=1),
    Layer("issue8x16", 100, 8, 16, (14, 14), (3, 3), padding=1),
    Layer("lenet1x16", 100, 1, 16, (8, 8), (3, 3), padding=1),
    Layer("lenet16x32", 100, 16, 32, (4, 4), (3, 3), padding=1),
)


def run_passes(L: Layer, names: list[str], kernels, repeats: int) -> None:
    """Time each pass (forward, input gradient, weight gradient) of each named algorithm
    alone, interleaved; print one row per algorithm."""
    spec = spec_of(L)
    case = _Case(L, None)
    x, w, b, gy = case.x, case.w, case.b, case.gy
    algos = kernels.algorithms("numba")
    fns = {}
    for name in names:
        algo = algos.get(name)
        if algo is None or not algo.supports(spec):
            continue
        fns[name, "fwd"] = lambda a=algo: a.forward(spec, x, w, b, False)
        fns[name, "dx"] = lambda a=algo: a.input_grad(spec, gy, w, None)
        fns[name, "dw"] = lambda a=algo: a.weight_grad(spec, x, gy, None)
    t = interleave(fns, repeats)
    for name in dict.fromkeys(n for n, _ in fns):
        print(f"{L.name:<11} {name:<24} fwd {t[name, 'fwd'] * 1e3:8.2f}  dx {t[name, 'dx'] * 1e3:8.2f}"
              f"  dw {t[name, 'dw'] * 1e3:8.2f}", flush=True)


def run_layer(L: Layer, names: list[str], torch, kernels, repeats: int) -> None:
    spec = spec_of(L)
    case = _Case(L, torch)  # the conv suite's operands (seed 0) and PyTorch closures
    x, w, b, gy = case.x, case.w, case.b, case.gy
    torch_fwd, torch_step = case.torch_forward, case.torch_step
    ref = list(case.reference64())

    fns = {"tfwd": torch_fwd, "tstep": torch_step}
    algos = kernels.algorithms("numba")
    errs = {}
    for name in names:
        if name == "plan":  # the numba backend's chooser: one algorithm per pass
            plan = kernels.choose(spec)
            label = "plan " + "/".join(n.replace("numba_", "") for n in plan.names)
        elif algos[name].supports(spec):
            plan = kernels.Plan(algos[name], algos[name], algos[name])
            label = name
        else:
            continue

        def fwd(plan=plan):
            return plan.forward.forward(spec, x, w, b, False)[0]

        def step(plan=plan):
            y, saved = plan.forward.forward(spec, x, w, b, True)
            own = saved if plan.input_grad is plan.forward else None
            dx = plan.input_grad.input_grad(spec, gy, w, own)
            own = saved if plan.weight_grad is plan.forward else None
            dw, db = plan.weight_grad.weight_grad(spec, x, gy, own)
            return y, dx, dw, db

        name = label

        errs[name] = max(_rel(a, r) for a, r in zip(step(), ref))
        fns[name + " fwd"], fns[name + " step"] = fwd, step
    t = interleave(fns, repeats)
    for name in errs:
        f, s = t[name + " fwd"], t[name + " step"]
        print(f"{L.name:<11} {name:<24} {f * 1e3:8.2f} {t['tfwd'] * 1e3:8.2f} {f / t['tfwd']:6.2f} "
              f"{s * 1e3:8.2f} {t['tstep'] * 1e3:8.2f} {s / t['tstep']:6.2f} {errs[name]:8.1e}",
              flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="dilated3x3,lenet5x5,lenet5x5b",
                        help="comma-separated layer names ('all': every one)")
    parser.add_argument("--algorithms", default="plan,subgrid,numba_direct,numba_im2col",
                        help="algorithm names of the numba backend, or 'plan': its chooser's plan")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--passes", action="store_true",
                        help="time each algorithm's three passes alone (ms), no PyTorch")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time samples by wall clock or by the process's CPU time (on a busy "
                        "machine, --threads 1 --clock cpu still compares the work done)")
    args = parser.parse_args()
    numba_layers.CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    import numba
    import torch

    from convprop import kernels

    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    kernels.set_threads(args.threads)
    every = LAYERS + EXTRA
    wanted = [s for s in args.layers.split(",") if s]
    layers = [L for L in every if "all" in wanted or L.name in wanted]
    names = [s for s in args.algorithms.split(",") if s]
    if args.passes:
        print(f"{args.clock} clock, threads {args.threads}, repeats {args.repeats}; ms per pass")
        with kernels.use_backend("numba"):
            for L in layers:
                run_passes(L, [n for n in names if n != "plan"], kernels, args.repeats)
        return 0
    print(f"{args.clock} clock, threads {args.threads}, repeats {args.repeats}; times in ms; "
          "f+b = forward + all gradients; ratio = time / PyTorch's")
    header = (f"{'layer':<11} {'algorithm':<24} {'fwd':>8} {'torch':>8} {'ratio':>6} {'f+b':>8} "
              f"{'torch':>8} {'ratio':>6} {'f32 err':>8}")
    print(header)
    print("-" * len(header))
    with kernels.use_backend("numba"):
        for L in layers:
            run_layer(L, names, torch, kernels, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One training step (forward + backward + Adam) of a small CNN, convprop vs PyTorch CPU.

Usage: ``python benchmarks/train_step.py [--batch-size 100] [--threads 2] [--repeats 7]
[--steps 10] [--model issue|lenet|all] [--profile] [--backends] [--pool-sizes]``.

Both libraries train the same model from the same weights on the same batch,
in one process, interleaved (convprop, PyTorch, convprop, ...) with a pause before
each timed sample (so neither is timed while the other's worker threads spin), with the same
number of threads; each library's best mean over ``--steps`` steps is kept.
Models:

* ``issue``: the README/issue example, Conv(1->8) ReLU MaxPool Conv(8->16) ReLU
  AdaptiveAvgPool Flatten Linear(16->10), on 1x28x28 images;
* ``lenet``: the ``convprop train digits`` network (with BatchNorm) on 1x8x8 images.

The printed ratio is convprop time / PyTorch time (lower is better).  With
``--profile`` the convprop step is also run under cProfile and the most
expensive functions are listed, which separates kernel time from per-op
Python overhead.  ``--backends`` instead times the convprop step on the numba and
the numpy backend, interleaved, with the CPU time of all the process's threads
beside the wall time (threads that spin while they wait show up there; see
``convprop.kernels.numba._common`` on the threading layer); ``--pool-sizes`` times
pooling compiled and on the NumPy path per input size (the compiled pooling's
thresholds in ``convprop.kernels.numba.pool``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

import numpy as np

from convprop.bench import SETTLE_S  # pause before each timed sample: see its comment


def issue_model(lib):
    return lib.Sequential(
        lib.Conv2d(1, 8, 3, padding=1), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(8, 16, 3, padding=1), lib.ReLU(), lib.AdaptiveAvgPool2d(1),
        lib.Flatten(), lib.Linear(16, 10))


def lenet_model(lib):
    return lib.Sequential(
        lib.Conv2d(1, 16, 3, padding=1), lib.BatchNorm2d(16), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(16, 32, 3, padding=1), lib.BatchNorm2d(32), lib.ReLU(), lib.MaxPool2d(2),
        lib.Flatten(), lib.Linear(128, 64), lib.ReLU(), lib.Linear(64, 10))


MODELS = {"issue": (issue_model, 28), "lenet": (lenet_model, 8)}


def graph_size(loss) -> int:
    """Number of recorded ops behind ``loss`` (each costs one Python backward call)."""
    seen, stack = set(), [loss]
    while stack:
        t = stack.pop()
        if id(t) in seen or t._backward is None:
            continue
        seen.add(id(t))
        stack.extend(t._parents)
    return len(seen)


def bench_model(name: str, batch: int, repeats: int, steps: int, profile: bool) -> float:
    import torch

    import convprop as cp
    from convprop import nn, optim

    make, size = MODELS[name]
    nn.init.manual_seed(0)
    model = make(nn)
    tmodel = make(torch.nn)
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, size, size)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    criterion, tcriterion = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()

    def cp_step():
        loss = criterion(model(cp.Tensor._wrap(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def torch_step():
        loss = tcriterion(tmodel(xt), yt)
        topt.zero_grad()
        loss.backward()
        topt.step()
        return loss

    first, tfirst = cp_step().item(), torch_step().item()
    assert abs(first - tfirst) < 1e-4, (first, tfirst)  # the same computation
    for _ in range(2):
        cp_step(), torch_step()
    best = {"convprop": np.inf, "torch": np.inf}
    for _ in range(repeats):
        for label, fn in (("convprop", cp_step), ("torch", torch_step)):
            time.sleep(SETTLE_S)
            fn()  # untimed: wakes this library's own threads after the pause
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            best[label] = min(best[label], (time.perf_counter() - start) / steps)
    ops = graph_size(criterion(model(cp.Tensor._wrap(x)), y))
    # Python overhead: the whole step on a single image, where the arrays are tiny
    x1, y1 = x[:1], y[:1]
    tiny = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            loss = criterion(model(cp.Tensor._wrap(x1)), y1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        tiny = min(tiny, (time.perf_counter() - start) / steps)
    ratio = best["convprop"] / best["torch"]
    print(f"{name:6s} batch {batch:4d} {size}x{size}: convprop {best['convprop'] * 1e3:8.3f} ms"
          f"   torch {best['torch'] * 1e3:8.3f} ms   ratio {ratio:5.2f}x   "
          f"(overhead: {ops} recorded ops, a 1-image step takes {tiny * 1e3:.2f} ms "
          f"= {tiny / ops * 1e6:.0f} us per op incl. the {len(list(model.parameters()))}-tensor "
          f"Adam step)")
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(steps):
            cp_step()
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
        print(out.getvalue())
    return ratio


def bench_backends(name: str, batch: int, repeats: int) -> None:
    """The convprop step on the numba and on the numpy backend, interleaved in one process:
    best wall time and best CPU time of all the process's threads per step (a thread
    spinning while it waits shows up in the CPU time), and their ratios."""
    import convprop as cp
    from convprop import kernels, nn, optim

    make, size = MODELS[name]
    nn.init.manual_seed(0)
    model = make(nn)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, size, size)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()

    def step(backend: str) -> None:
        with kernels.use_backend(backend):
            loss = criterion(model(cp.Tensor._wrap(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    backends = ("numba", "numpy")
    for backend in backends:
        for _ in range(3):
            step(backend)
    wall = dict.fromkeys(backends, np.inf)
    cpu = dict.fromkeys(backends, np.inf)
    for _ in range(repeats):
        for backend in backends:
            time.sleep(0.02)
            step(backend)
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(3):
                step(backend)
            wall[backend] = min(wall[backend], (time.perf_counter() - start) / 3)
            cpu[backend] = min(cpu[backend], (time.process_time() - start_cpu) / 3)
    print(f"{name:6s} batch {batch}: wall numba {wall['numba'] * 1e3:7.2f} ms  numpy "
          f"{wall['numpy'] * 1e3:7.2f} ms  ratio {wall['numba'] / wall['numpy']:5.2f}   "
          f"CPU numba {cpu['numba'] * 1e3:7.2f} ms  numpy {cpu['numpy'] * 1e3:7.2f} ms  ratio "
          f"{cpu['numba'] / cpu['numpy']:5.2f}")


#: Input shapes of the pooling size sweep (``--pool-sizes``), from single images to a batch.
POOL_SHAPES = ((1, 4, 8, 8), (4, 8, 8, 8), (16, 8, 16, 16), (100, 16, 8, 8), (100, 32, 4, 4),
               (100, 8, 28, 28), (32, 64, 32, 32))


def bench_pool_sizes(repeats: int) -> None:
    """Forward + backward of 2x2 max pooling and 3x3 (stride 1, padding 1) average pooling,
    float32, on the NumPy path and compiled, per input size: where the compiled kernels
    start to pay (``convprop.kernels.numba.pool.MIN_ELEMENTS``).  Best wall time, and the
    ratio of the best CPU times of all the process's threads (with ``--threads 1``: the
    work each path does, whatever else runs on the machine)."""
    import convprop as cp
    import convprop.functional as F
    from convprop import kernels
    from convprop.kernels.numba import pool

    pool.MIN_ELEMENTS = 0  # every size compiled on the numba backend
    rng = np.random.default_rng(0)

    def step(x: np.ndarray, backend: str, kind: str) -> None:
        with kernels.use_backend(backend):
            t = cp.Tensor._wrap(x)
            t.requires_grad = True
            y = F.max_pool2d(t, 2) if kind == "max" else F.avg_pool2d(t, 3, 1, 1)
            y.backward(cp.Tensor._wrap(np.ones(y.shape, x.dtype)))

    for kind in ("max", "avg"):
        for shape in POOL_SHAPES:
            x = rng.standard_normal(shape).astype(np.float32)
            calls = max(3, 200_000 // x.size)
            best = {"numba": np.inf, "numpy": np.inf}
            cpu = dict(best)
            for backend in best:
                step(x, backend, kind)
            for _ in range(repeats):
                for backend in best:
                    time.sleep(0.01)
                    step(x, backend, kind)
                    start, start_cpu = time.perf_counter(), time.process_time()
                    for _ in range(calls):
                        step(x, backend, kind)
                    best[backend] = min(best[backend], (time.perf_counter() - start) / calls)
                    cpu[backend] = min(cpu[backend], (time.process_time() - start_cpu) / calls)
            print(f"{kind}_pool {str(shape):18s} {x.size:8d} elements: wall compiled "
                  f"{best['numba'] * 1e6:7.0f} us  numpy {best['numpy'] * 1e6:7.0f} us  ratio "
                  f"{best['numba'] / best['numpy']:5.2f}   CPU ratio {cpu['numba'] / cpu['numpy']:5.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="threads for both libraries")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (best kept)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--model", choices=[*MODELS, "all"], default="all")
    parser.add_argument("--profile", action="store_true", help="cProfile the convprop step")
    parser.add_argument("--backends", action="store_true",
                        help="instead: the convprop step on the numba vs the numpy backend")
    parser.add_argument("--pool-sizes", action="store_true",
                        help="instead: time pooling compiled vs NumPy per input size")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is needed for this comparison")
        return 2
    torch.set_num_threads(args.threads)
    limiter = None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads, user_api="blas")
    except ImportError:
        print("threadpoolctl not installed: NumPy's BLAS uses its default thread count")
    from convprop import kernels

    if hasattr(kernels, "set_threads"):
        kernels.set_threads(args.threads)
    print(f"threads: {args.threads}; numpy {np.__version__}, torch {torch.__version__}; "
          f"best of {args.repeats} x {args.steps} steps, interleaved")
    try:
        if args.pool_sizes:
            bench_pool_sizes(args.repeats)
            return 0
        names = list(MODELS) if args.model == "all" else [args.model]
        if args.backends:
            for name in names:
                bench_backends(name, args.batch_size, args.repeats)
            return 0
        for name in names:
            bench_model(name, args.batch_size, args.repeats, args.steps, args.profile)
    finally:
        if limiter is not None:
            limiter.unregister()
    return 0


if __name__ == "__main__":
    sys.exit(main())

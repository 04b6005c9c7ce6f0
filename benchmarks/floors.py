"""Lower bounds: how fast could a convprop convolution be at best, next to PyTorch CPU?

Usage: ``python benchmarks/floors.py [--repeats 5] [--threads 2] [--layers NAME,...]
[--backend numpy|numba]``.

For each layer of the conv suite (:data:`convprop.bench.LAYERS`) this times, in one
process and with the same thread count as PyTorch, only the *unavoidable* arithmetic
of each formulation that convprop can use, on ready-made contiguous operands: no
window copies, no transforms, no layout changes, no Python overhead.  Anything real
costs more.  Next to it, PyTorch's whole forward + backward (input, weight and bias
gradients), timed the same way (pause, untimed call, timed call, best of N):

* ``GEMM``: the three matrix products of the im2col formulation, forward
  ``W (O, C*T) @ cols (C*T, P)``, input gradient ``W^T @ gy`` and weight gradient
  ``gy @ cols^T`` (``T`` kernel taps, ``P`` output positions over the batch);
* ``Winograd`` (3x3 and 3x3x3 stride-1 layers): F(4x4, 3x3)'s 36 (216 in 3-D)
  per-point products for the same three, plus writing the transformed input and
  the products once each per pass -- the transforms themselves are left out;
* ``taps`` (depthwise): the ``3 x T`` multiply-and-add passes (forward, input
  gradient, weight gradient; one ``T``-tap pass each) over cache-sized blocks on one
  thread, divided by the thread count as if they split perfectly.

The compiled (Numba) backend schedules its products differently: each of its threads
runs single-threaded BLAS products on its own samples (or transformed points), one
pool of threads instead of NumPy's multi-threaded BLAS.  Its floors are the columns
``pooled GEMM`` (the same three products sample by sample) and ``pooled Wino`` (the
Winograd products point by point), timed on one BLAS thread and divided by the thread
count as if they split perfectly.  ``--backend numba`` (the default where Numba is
installed) prints those; ``--backend numpy`` the multi-threaded ones above; the best
of each layer's applicable floors is the last column either way.

The printed ratio is floor / PyTorch.  A ratio above 1 means that formulation
cannot match PyTorch on that layer however its copies are arranged; the last line
is the geometric mean of each layer's best floor.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable

import numpy as np

from convprop.bench import LAYERS, SETTLE_S, Layer, _Case, _geomean, positive_int


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    """Best milliseconds of one call: pause, one untimed call, one timed call, ``repeats`` times."""
    fn()
    best = math.inf
    for _ in range(repeats):
        time.sleep(SETTLE_S)
        fn()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def gemm_floor(L: Layer, rng: np.random.Generator, repeats: int, threads: int) -> float:
    k = L.c * math.prod(L.kernel)
    p = L.n * math.prod(L.out)
    w = rng.standard_normal((L.o, k), dtype=np.float32)
    cols = rng.standard_normal((k, p), dtype=np.float32)
    gy = rng.standard_normal((L.o, p), dtype=np.float32)
    return best_ms(lambda: (w @ cols, w.T @ gy, gy @ cols.T), repeats)


def pooled_gemm_floor(L: Layer, rng: np.random.Generator, repeats: int, threads: int) -> float:
    """The GEMM floor as the compiled backend runs it: per-sample products on one BLAS thread,
    divided by ``threads`` (a perfect split over its pool)."""
    from threadpoolctl import threadpool_limits

    k = L.c * math.prod(L.kernel)
    p = math.prod(L.out)
    w = rng.standard_normal((L.o, k), dtype=np.float32)
    cols = rng.standard_normal((L.n, k, p), dtype=np.float32)
    gy = rng.standard_normal((L.n, L.o, p), dtype=np.float32)
    y, dcols, dw = np.empty((L.o, p), np.float32), np.empty((k, p), np.float32), np.empty_like(w)

    def run() -> None:
        for n in range(L.n):
            np.dot(w, cols[n], out=y)
            np.dot(w.T, gy[n], out=dcols)
            np.dot(gy[n], cols[n].T, out=dw)

    with threadpool_limits(1, user_api="blas"):
        return best_ms(run, repeats) / threads


def pooled_winograd_floor(L: Layer, rng: np.random.Generator, repeats: int, threads: int) -> float:
    """The Winograd floor as a compiled kernel in one pool would run it: each transformed
    point's three products on one BLAS thread, divided by ``threads``."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        return winograd_floor(L, rng, repeats, 1) / threads


def winograd_floor(L: Layer, rng: np.random.Generator, repeats: int, threads: int) -> float:
    points = 6 ** len(L.kernel)
    tiles = L.n * math.prod(-(-o // 4) for o in L.out)
    u = rng.standard_normal((points, L.o, L.c), dtype=np.float32)
    v = rng.standard_normal((points, L.c, tiles), dtype=np.float32)
    g = rng.standard_normal((points, L.o, tiles), dtype=np.float32)
    m = np.empty_like(g)
    v2 = np.empty_like(v)

    def run() -> None:
        np.matmul(u, v, out=m)  # forward
        np.matmul(u.transpose(0, 2, 1), g, out=v2)  # input gradient
        np.matmul(g, v.transpose(0, 2, 1))  # weight gradient
        for _ in range(2):  # the transformed input and the products, written once per pass
            np.copyto(v2, v)
            np.copyto(m, g)

    return best_ms(run, repeats)


def taps_floor(L: Layer, rng: np.random.Generator, repeats: int, threads: int) -> float:
    planes = L.n * L.c
    size = math.prod(s + 2 * L.padding for s in L.size)
    x = rng.standard_normal((planes, size), dtype=np.float32)
    w = rng.standard_normal((planes, 1), dtype=np.float32)
    y = np.zeros_like(x)
    t = np.empty_like(x)
    block = max(1, (256 * 2**10) // (size * 4))
    taps = 3 * math.prod(L.kernel)

    def run() -> None:
        for s in range(0, planes, block):
            xs, ys, ts, ws = x[s : s + block], y[s : s + block], t[s : s + block], w[s : s + block]
            for _ in range(taps):
                np.multiply(xs, ws, out=ts)
                np.add(ys, ts, out=ys)

    return best_ms(run, repeats) / threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--layers", default="", help="comma-separated layer names (default: all)")
    parser.add_argument("--backend", choices=("numpy", "numba"), default=None,
                        help="whose schedule the GEMM and Winograd floors follow (default: "
                             "numba where installed, else numpy)")
    args = parser.parse_args(argv)
    from convprop import kernels

    backend = args.backend or kernels.default_backend_name()
    pooled = backend == "numba"
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads, user_api="blas")
    names = [s for s in args.layers.split(",") if s]
    layers = [L for L in LAYERS if not names or L.name in names]
    rng = np.random.default_rng(0)
    print(f"threads: {args.threads}; floor / PyTorch f+b (see the module docstring); "
          f"best of {args.repeats}; schedule of the {backend} backend")
    gemm_name, wino_name = ("pooled GEMM", "pooled Wino") if pooled else ("GEMM", "Winograd")
    print(f"{'layer':<12} {'torch f+b':>9} {gemm_name:>11} {'ratio':>6} {wino_name:>11} {'ratio':>6} "
          f"{'taps':>8} {'ratio':>6} {'best':>6}")
    bests = []
    for L in layers:
        torch_ms = best_ms(_Case(L, torch).torch_step, args.repeats)
        cells, ratios = [], []
        floors = (
            (pooled_gemm_floor if pooled else gemm_floor, L.groups == 1),
            (pooled_winograd_floor if pooled else winograd_floor,
             L.groups == 1 and set(L.kernel) == {3} and len(L.kernel) > 1
             and L.stride == 1 and L.dilation == 1),
            (taps_floor, L.groups == L.c == L.o),
        )
        for measure, applies in floors:
            if applies:
                ms = measure(L, rng, args.repeats, args.threads)
                ratios.append(ms / torch_ms)
                cells.append(f"{ms:11.2f} {ms / torch_ms:6.2f}")
            else:
                cells.append(f"{'-':>11} {'-':>6}")
        bests.append(min(ratios))
        print(f"{L.name:<12} {torch_ms:9.2f} {cells[0]} {cells[1]} {cells[2][3:]} {min(ratios):6.2f}",
              flush=True)
    print(f"geometric mean of the best floor / PyTorch: {_geomean(bests):.2f}; "
          f"worst {max(bests):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

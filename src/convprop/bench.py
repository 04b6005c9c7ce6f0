"""Convolution benchmark suite: convprop against PyTorch CPU, side by side in one process.

Each layer of :data:`LAYERS` is timed forward-only and forward + backward
(gradients of input, weight and bias), float32, convprop and PyTorch
interleaved (convprop, torch, convprop, torch, ...) and the best of
``repeats`` kept for each (every timed sample repeats the call enough times to
last at least ``MIN_SAMPLE_S``, after a warm-up), so that a noisy neighbour slows both alike.  Both
libraries are held to the same number of threads, and every timed sample starts after a pause of
``SETTLE_S`` (see there: without it each library's idle worker threads spin on the cores the
other one is timed on).  The table reports times,
GFLOP/s, the ratio convprop/PyTorch per layer and its geometric mean, convprop's
peak temporary memory (see :func:`temporary_memory`: measured in a child process so that
the compiled kernels' own buffers count too) as MiB and as a multiple of the layer's
input + weight + output bytes, its float32 error relative to the float64 answer,
and the plan convprop ran: the algorithm of each of the three passes (forward,
input gradient, weight gradient).  Each row is printed as soon as its layer is
measured (a progress bar goes to stderr when tqdm is installed and stderr is a terminal).
``--backend numpy|numba`` picks the kernel backend (default: the process default,
see :mod:`convprop.kernels.backend`); ``--autotune`` turns on measured algorithm
selection (:func:`convprop.kernels.set_benchmark`) for the run; the measuring
happens in the untimed warm-up calls.

Run ``python benchmarks/conv_suite.py`` or ``convprop bench``; nothing in the
test suite times anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .functional import conv1d, conv2d, conv3d


@dataclass(frozen=True)
class Layer:
    """One convolution layer: input ``(n, c, *size)``, weight ``(o, c/groups, *kernel)``."""

    name: str
    n: int
    c: int
    o: int
    size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1

    @property
    def nd(self) -> int:
        return len(self.size)

    @property
    def out(self) -> tuple[int, ...]:
        d, s, p = self.dilation, self.stride, self.padding
        return tuple((x + 2 * p - d * (k - 1) - 1) // s + 1 for x, k in zip(self.size, self.kernel))

    @property
    def flops(self) -> float:
        """Multiply-adds x 2 of the forward; the backward costs twice that (dx and dw)."""
        return 2.0 * self.n * self.o * (self.c // self.groups) * math.prod(self.kernel) * math.prod(
            self.out
        )


LAYERS: tuple[Layer, ...] = (
    Layer("lenet5x5", 64, 1, 6, (28, 28), (5, 5)),
    Layer("lenet5x5b", 64, 6, 16, (14, 14), (5, 5)),
    Layer("cifar3x3in", 32, 3, 32, (32, 32), (3, 3), padding=1),
    Layer("cifar3x3", 32, 32, 64, (32, 32), (3, 3), padding=1),
    Layer("resnet56", 16, 64, 64, (56, 56), (3, 3), padding=1),
    Layer("resnet28", 16, 128, 128, (28, 28), (3, 3), padding=1),
    Layer("resnet14", 16, 256, 256, (14, 14), (3, 3), padding=1),
    Layer("resnet7", 16, 512, 512, (7, 7), (3, 3), padding=1),
    Layer("pointwise", 16, 256, 64, (28, 28), (1, 1)),
    Layer("depthwise", 16, 128, 128, (28, 28), (3, 3), padding=1, groups=128),
    Layer("strided3x3", 16, 64, 128, (56, 56), (3, 3), stride=2, padding=1),
    Layer("dilated3x3", 16, 64, 64, (28, 28), (3, 3), padding=2, dilation=2),
    Layer("seq1d", 32, 128, 128, (64,), (3,), padding=1),
    Layer("audio1d", 4, 16, 32, (16000,), (31,), padding=15),
    Layer("vol3d", 2, 16, 32, (16, 32, 32), (3, 3, 3), padding=1),
)

_CONV = {1: conv1d, 2: conv2d, 3: conv3d}


def _environment(threads: int) -> list[str]:
    lines = [f"threads: {threads} (convprop BLAS + pool, torch.set_num_threads)"]
    blas_env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP", "MKL"))}
    if blas_env:
        lines.append("environment: " + ", ".join(f"{k}={v}" for k, v in sorted(blas_env.items())))
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            lines.append(
                f"threadpool: {info.get('internal_api')} {info.get('version')} "
                f"{info.get('architecture', '')} threads={info.get('num_threads')}"
            )
    except ImportError:
        pass
    return lines


#: Each timed sample runs a callable enough times to last at least this long (seconds),
#: so that timer resolution and one-off stalls do not decide a sub-millisecond layer.
MIN_SAMPLE_S = 0.02


#: Pause before every timed sample (seconds).  After a call, OpenBLAS's worker threads
#: (convprop's BLAS) and PyTorch's OpenMP threads keep spinning for a while before they
#: sleep; interleaved without a pause, each library was timed while the other's threads
#: still held the cores.  Measured on 2 cores: PyTorch's 3x3 layers ran up to 2.5x
#: slower right after a convprop call (cifar3x3 f+b 29.8 ms with no pause, 19.7 after
#: 0.1 s, 16.7 after 0.2 s, 16.8 after 0.4 s), which made convprop's ratios look up to
#: 2x better than they are.  0.25 s lets both sets of threads go to sleep; one untimed
#: call after the pause then wakes the timed library's own threads and caches.
SETTLE_S = 0.25


def _elapsed(fn: Callable[[], object], inner: int = 1) -> float:
    """Mean seconds per call of ``fn`` over ``inner`` back-to-back calls."""
    t = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t) / inner


def _inner_count(fn: Callable[[], object]) -> int:
    """Calls per timed sample so that one sample lasts at least :data:`MIN_SAMPLE_S`."""
    once = _elapsed(fn)
    return max(1, math.ceil(MIN_SAMPLE_S / max(once, 1e-6)))


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return float(np.max(np.abs(a - ref))) / scale if scale else float(np.max(np.abs(a), initial=0.0))


class _Case:
    """The tensors of one layer for both libraries, and closures that run them."""

    def __init__(self, layer: Layer, torch: object, seed: int = 0) -> None:
        import convprop

        rng = np.random.default_rng(seed)
        L = layer
        self.layer = L
        self.x = rng.standard_normal((L.n, L.c) + L.size).astype(np.float32)
        fan_in = (L.c // L.groups) * math.prod(L.kernel)
        self.w = (rng.standard_normal((L.o, L.c // L.groups) + L.kernel) / math.sqrt(fan_in)).astype(
            np.float32
        )
        self.b = rng.standard_normal(L.o).astype(np.float32)
        self.gy = rng.standard_normal((L.n, L.o) + L.out).astype(np.float32)
        self.kw = dict(stride=L.stride, padding=L.padding, dilation=L.dilation, groups=L.groups)
        self.cx = convprop.Tensor(self.x, requires_grad=True)
        self.cw = convprop.Tensor(self.w, requires_grad=True)
        self.cb = convprop.Tensor(self.b, requires_grad=True)
        self.torch = torch
        if torch is not None:
            self.tx = torch.from_numpy(self.x).requires_grad_(True)
            self.tw = torch.from_numpy(self.w).requires_grad_(True)
            self.tb = torch.from_numpy(self.b).requires_grad_(True)
            self.tgy = torch.from_numpy(self.gy)
            self.tconv = getattr(torch.nn.functional, f"conv{L.nd}d")

    def plan(self) -> tuple[str, str, str]:
        """The algorithms convprop's forward, input gradient and weight gradient of this layer
        run (after a step: with measured selection on, the step measured them)."""
        from . import kernels

        L = self.layer
        spec = kernels.ConvSpec.of(self.x.shape, self.w.shape, L.stride, L.padding, L.dilation,
                                   L.groups, np.float32, bias=True)
        return kernels.plan(spec, backward=True).names

    def convprop_forward(self) -> np.ndarray:
        import convprop

        with convprop.no_grad():
            return _CONV[self.layer.nd](self.cx, self.cw, self.cb, **self.kw).data

    def convprop_step(self) -> tuple[np.ndarray, ...]:
        for t in (self.cx, self.cw, self.cb):
            t.grad = None
        y = _CONV[self.layer.nd](self.cx, self.cw, self.cb, **self.kw)
        y.backward(self.gy)
        return y.data, self.cx.grad, self.cw.grad, self.cb.grad

    def torch_forward(self) -> object:
        with self.torch.no_grad():
            return self.tconv(self.tx, self.tw, self.tb, **self.kw)

    def torch_step(self) -> None:
        for t in (self.tx, self.tw, self.tb):
            t.grad = None
        y = self.tconv(self.tx, self.tw, self.tb, **self.kw)
        y.backward(self.tgy)

    def reference64(self) -> tuple[np.ndarray, ...]:
        """Float64 output and gradients (PyTorch when present, else convprop in float64)."""
        if self.torch is not None:
            torch = self.torch
            x, w, b = (torch.from_numpy(a.astype(np.float64)).requires_grad_(True)
                       for a in (self.x, self.w, self.b))
            y = self.tconv(x, w, b, **self.kw)
            y.backward(torch.from_numpy(self.gy.astype(np.float64)))
            return tuple(t.detach().numpy() for t in (y, x.grad, w.grad, b.grad))
        import convprop

        x, w, b = (convprop.Tensor(a.astype(np.float64), requires_grad=True)
                   for a in (self.x, self.w, self.b))
        y = _CONV[self.layer.nd](x, w, b, **self.kw)
        y.backward(self.gy.astype(np.float64))
        return y.data, x.grad, w.grad, b.grad


@dataclass
class Result:
    layer: Layer
    fwd: float
    step: float
    torch_fwd: float = math.nan
    torch_step: float = math.nan
    peak_mib: float = math.nan
    peak_ratio: float = math.nan
    error: float = math.nan
    plan: tuple[str, str, str] = ("", "", "")


#: Run in a child process by :func:`temporary_memory` (argv: the layer's fields as JSON).
_MEMORY_CHILD = """
import ctypes, gc, json, sys
libc = ctypes.CDLL("libc.so.6")
libc.mallopt(-3, 65536)  # M_MMAP_THRESHOLD: every block >= 64 KiB gets its own pages...
libc.mallopt(-1, 65536)  # M_TRIM_THRESHOLD: ...and is handed back on free
from convprop import bench, kernels
layer = bench.Layer(**{k: tuple(v) if isinstance(v, list) else v
                       for k, v in json.loads(sys.argv[1]).items()})
kernels.set_threads(int(sys.argv[2]))
with kernels.use_backend(sys.argv[3]):
    case = bench._Case(layer, None)
    case.convprop_step(); case.convprop_step()
    def status():
        return {k: int(v.split()[0]) * 1024 for k, v in
                (line.split(":", 1) for line in open("/proc/self/status"))
                if k in ("VmRSS", "VmHWM")}
    case.convprop_step()
    for t in (case.cx, case.cw, case.cb):
        t.grad = None  # the previous step's results freed before the mark...
    gc.collect()  # ...and its graph, so that nothing is freed during the measured step
    gc.disable()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current resident size
    before = status()["VmRSS"]
    out = case.convprop_step()
    peak = status()["VmHWM"] - before
    print(json.dumps({"peak": peak, "results": sum(a.nbytes for a in out)}))
"""


def temporary_memory(layer: Layer, threads: int | None = None,
                     backend: str | None = None) -> tuple[float, float]:
    """Peak temporary memory of one convprop forward + backward of ``layer``: ``(MiB,
    multiple of the input + weight + output bytes)``; NaNs where it cannot be measured.

    *Temporary* means beyond the step's results (output, input, weight and bias
    gradients).  tracemalloc sees only what Python and NumPy allocate, not the buffers the
    compiled kernels allocate inside Numba, so on Linux a child process (no PyTorch,
    the same backend and threads) runs the step with every block of 64 KiB or more
    mapped on its own pages and returned on free, resets its resident high-water mark
    (``/proc/self/clear_refs``), runs one more step and reads ``VmHWM``.  Elsewhere the
    tracemalloc figure (NumPy's allocations only) stands in.  The kernel updates resident
    sizes in batches of pages per thread, so figures under about 1 MiB are noise.
    """
    from . import kernels
    from .kernels._pool import get_threads

    threads = threads or get_threads()
    backend = backend or kernels.get_backend().name
    inputs = 4 * (layer.n * layer.c * math.prod(layer.size)
                  + layer.o * (layer.c // layer.groups) * math.prod(layer.kernel)
                  + layer.n * layer.o * math.prod(layer.out))
    if sys.platform.startswith("linux"):
        fields = {k: getattr(layer, k) for k in Layer.__dataclass_fields__}
        done = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, json.dumps(fields),
                               str(threads), backend], capture_output=True, text=True)
        if done.returncode != 0:
            return math.nan, math.nan
        got = json.loads(done.stdout.strip().splitlines()[-1])
        temp = max(0, got["peak"] - got["results"])
    else:
        case = _Case(layer, None)
        case.convprop_step()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            out = case.convprop_step()
            temp = max(0, tracemalloc.get_traced_memory()[1] - base - sum(a.nbytes for a in out))
        finally:
            tracemalloc.stop()
    return temp / 2**20, temp / inputs


def run_layer(layer: Layer, torch: object, repeats: int, memory: bool = True) -> Result:
    """Time one layer, interleaving the two libraries; best of ``repeats`` each."""
    case = _Case(layer, torch)
    res = Result(layer, math.inf, math.inf, math.inf, math.inf)
    got = case.convprop_step()  # warm-up, and the answer checked after the timing
    # warm-up (allocator, thread pool, caches) and one call each to size the timed samples
    fns = {"fwd": case.convprop_forward, "step": case.convprop_step}
    if torch is not None:
        fns.update(torch_fwd=case.torch_forward, torch_step=case.torch_step)
    for fn in fns.values():
        fn()
    inner = {key: _inner_count(fn) for key, fn in fns.items()}
    for _ in range(repeats):
        for key, fn in fns.items():  # interleaved: convprop, torch, convprop, torch
            if torch is not None:
                time.sleep(SETTLE_S)
                fn()  # untimed: wakes this library's own threads and caches after the pause
            setattr(res, key, min(getattr(res, key), _elapsed(fn, inner[key])))
    # the float64 reference runs after the timing: measured, running it first left every
    # later convprop call of the layer up to 20% slower (allocator state after its large
    # float64 temporaries), which has nothing to do with the float32 kernels timed here
    res.plan = case.plan()
    ref = case.reference64()
    res.error = max(_rel(np.asarray(a, np.float64), r) for a, r in zip(got, ref))
    if memory:
        res.peak_mib, res.peak_ratio = temporary_memory(layer)
    if torch is None:
        res.torch_fwd = res.torch_step = math.nan
    return res


def _geomean(values: list[float]) -> float:
    values = [v for v in values if math.isfinite(v) and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def _header() -> list[str]:
    head = (f"{'layer':<12} {'shape':<26} {'fwd ms':>8} {'torch':>8} {'GF/s':>6} {'ratio':>6} "
            f"{'f+b ms':>8} {'torch':>8} {'GF/s':>6} {'ratio':>6} {'tmpMiB':>7} {'tmp/io':>6} "
            f"{'f32 err':>8} {'forward':<9} {'input grad':<10} {'weight grad':<11}")
    return [head, "-" * len(head)]


def format_row(r: Result) -> str:
    """One layer's line of the table."""
    L = r.layer
    shape = f"{L.n}x{L.c}x{'x'.join(map(str, L.size))}>{L.o} k{L.kernel[0]}"
    shape += "".join(f" {k}{v}" for k, v in (("s", L.stride), ("d", L.dilation), ("g", L.groups))
                     if v != 1)
    gf = L.flops / 1e9
    fwd, dx, dw = r.plan
    return (f"{L.name:<12} {shape:<26} {r.fwd * 1e3:8.2f} {r.torch_fwd * 1e3:8.2f} "
            f"{gf / r.fwd:6.1f} {r.fwd / r.torch_fwd:6.2f} {r.step * 1e3:8.2f} "
            f"{r.torch_step * 1e3:8.2f} {3 * gf / r.step:6.1f} {r.step / r.torch_step:6.2f} "
            f"{r.peak_mib:7.1f} {r.peak_ratio:6.2f} {r.error:8.1e} {fwd:<9} {dx:<10} {dw:<11}")


def _footer(results: list[Result]) -> list[str]:
    gf = _geomean([r.fwd / r.torch_fwd for r in results])
    gs = _geomean([r.step / r.torch_step for r in results])
    worst_f = max((r.fwd / r.torch_fwd for r in results), default=math.nan)
    worst_s = max((r.step / r.torch_step for r in results), default=math.nan)
    return ["-" * len(_header()[0]),
            f"geometric mean ratio convprop/torch: forward {gf:.2f}, forward+backward {gs:.2f}; "
            f"worst: forward {worst_f:.2f}, forward+backward {worst_s:.2f}",
            "tmp/io: peak temporary memory of one forward + backward over the layer's input + "
            f"weight + output bytes; worst {max((r.peak_ratio for r in results), default=math.nan):.2f}"]


def format_table(results: list[Result]) -> str:
    """The whole table: header, one row per layer, geometric means."""
    return "\n".join(_header() + [format_row(r) for r in results] + _footer(results))


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0 repeats or 0 threads is a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _progress(layers: list[Layer]) -> Iterable[Layer]:
    """``layers`` with a tqdm bar on stderr (a terminal only; none without tqdm)."""
    try:
        from tqdm import tqdm  # optional extra, as for the training bar
    except ImportError:
        return layers
    return tqdm(layers, desc="layers", unit="layer", file=sys.stderr, disable=None, leave=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the conv suite (shared by ``convprop bench`` and benchmarks/conv_suite.py)."""
    parser.add_argument("--layers", default="", help="comma-separated layer names (default: all)")
    parser.add_argument("--repeats", type=positive_int, default=None,
                        help="timed repeats, >= 1 (best kept)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (2)")
    parser.add_argument("--threads", type=positive_int, default=2,
                        help="threads for both libraries (>= 1)")
    parser.add_argument("--backend", choices=("numpy", "numba"), default=None,
                        help="kernel backend (default: $CONVPROP_BACKEND, else numba when "
                             "installed, else numpy)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    parser.add_argument("--no-torch", action="store_true", help="time convprop alone")
    parser.add_argument("--list", action="store_true", help="list the layers and exit")
    parser.add_argument("--autotune", action="store_true",
                        help="measure the algorithms per layer (convprop.kernels.set_benchmark)")


def run(args: argparse.Namespace) -> int:
    """Run the suite as ``args`` asks and print the table; returns an exit status."""
    if args.list:
        for L in LAYERS:
            print(L.name)
        return 0
    names = [s for s in args.layers.split(",") if s]
    known = {L.name: L for L in LAYERS}
    unknown = [s for s in names if s not in known]
    if unknown:
        print(f"unknown layer(s): {', '.join(unknown)}; choose from {', '.join(known)}",
              file=sys.stderr)
        return 2
    layers = [known[s] for s in names] if names else list(LAYERS)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    torch = None
    if not args.no_torch:
        try:
            import torch  # type: ignore[no-redef]

            torch.set_num_threads(args.threads)
        except ImportError:
            print("PyTorch is not installed: timing convprop alone (--no-torch)")
            torch = None
    limiter = None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads, user_api="blas")
    except ImportError:
        pass
    try:
        from . import kernels

        kernels.set_threads(args.threads)
        backend = kernels.use_backend(args.backend or kernels.default_backend_name())
        with backend as be, kernels.benchmark(args.autotune):
            for line in _environment(args.threads):
                print(line)
            print(f"backend: {be.name}" + (f" ({args.backend} was asked for)"
                                            if args.backend and be.name != args.backend else ""))
            if args.autotune:
                print("autotune: on (first call of each shape times every supporting algorithm)")
            results = []
            print("\n".join(_header()), flush=True)
            for L in _progress(layers):
                results.append(run_layer(L, torch, repeats, memory=not args.no_memory))
                print(format_row(results[-1]), flush=True)
            print("\n".join(_footer(results)), flush=True)
    finally:
        if limiter is not None:
            limiter.unregister()
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, exit status 2 (as ``convprop bench`` reports them)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))

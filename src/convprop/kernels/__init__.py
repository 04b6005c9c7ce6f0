"""Pure-ndarray convolution algorithms behind one interface, and the one place that picks.

Every algorithm module provides the same three functions with the same
normalised arguments (see :mod:`convprop.kernels.gemm`):

* ``conv_forward(xp, w, stride, dilation, groups, cache=None)``
* ``conv_input_grad(gy, w, padded_shape, stride, dilation, groups, cache=None)``
* ``conv_weight_grad(xp, gy, kernel, stride, dilation, groups, cache=None)``

and ``supports(kernel, stride, dilation, groups, c, o)``, which says whether it
can compute that convolution at all.  ``cache`` is an optional dict that the
forward may fill with work the backward can reuse (im2col columns, transformed
tiles); the backward pops what it takes.

:func:`conv_forward`, :func:`conv_input_grad` and :func:`conv_weight_grad` here
dispatch to the algorithm :func:`choose` picks for the shape; a forward given a
``cache`` records its choice there so that the backward runs the same
algorithm.  :func:`force` pins one algorithm (tests use it to hold every path
to the same reference).  Where a forced algorithm does not support a shape the
chooser falls back to its own pick, or raises with ``strict=True``.

Measured selection (off by default, like ``torch.backends.cudnn.benchmark``):
after :func:`set_benchmark(True) <set_benchmark>` (or inside ``with``
:func:`benchmark`), the first forward of each shape times every algorithm whose
``supports(...)`` accepts it on the real arrays and keeps the fastest for that
shape; later calls look it up.  :func:`force` still wins over it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from types import ModuleType

import numpy as np
from numpy.typing import DTypeLike

from . import depthwise, fft, flat, gemm, pointwise, winograd
from ._pool import get_threads, set_threads

ALGORITHMS: dict[str, ModuleType] = {
    "gemm": gemm,
    "pointwise": pointwise,
    "winograd": winograd,
    "fft": fft,
    "depthwise": depthwise,
    "flat": flat,
}
_forced: str | None = None
_strict = False

#: Whether the first forward of each shape measures the algorithms (see :func:`set_benchmark`).
_benchmark = False
#: Measured choices: :func:`_key` of a convolution -> the fastest algorithm's name.
_measured: dict[tuple, str] = {}
#: Timed runs per algorithm after one warm-up; the best is kept.
BENCHMARK_REPEATS = 3
_clock = time.perf_counter  # a module attribute so that tests can count the timings

__all__ = ["ALGORITHMS", "benchmark", "benchmark_choices", "choose", "clear_benchmark",
           "conv_forward", "conv_input_grad", "conv_weight_grad", "force", "get_threads",
           "set_benchmark", "set_threads"]


@contextlib.contextmanager
def force(name: str | None, strict: bool = False) -> Iterator[None]:
    """Use algorithm ``name`` for every convolution inside the ``with`` block.

    Shapes the algorithm does not support fall back to the usual choice, or
    raise ``ValueError`` when ``strict``.
    """
    global _forced, _strict
    if name is not None and name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    previous = _forced, _strict
    _forced, _strict = name, strict
    try:
        yield
    finally:
        _forced, _strict = previous


def set_benchmark(enabled: bool) -> None:
    """Turn measured algorithm selection on or off (off by default).

    When on, the first :func:`conv_forward` of each key -- input shape, weight
    shape, stride, dilation, groups, data type and whether the weight gradient
    will be needed (the forward was given a ``cache``) -- times every algorithm
    that supports the convolution on the call's own arrays (forward, plus input
    and weight gradients when the weight gradient is needed; one warm-up, then
    the best of :data:`BENCHMARK_REPEATS`) and keeps the fastest for that key.
    Later calls of the key use the kept choice without timing.  Every algorithm
    computes the same convolution, so only speed changes.  :func:`force` wins
    over a measured choice; Winograd is left out for float16 as in
    :func:`choose`.  Choices persist until :func:`clear_benchmark`.
    """
    global _benchmark
    _benchmark = bool(enabled)


@contextlib.contextmanager
def benchmark(enabled: bool = True) -> Iterator[None]:
    """:func:`set_benchmark` for the ``with`` block only; the previous setting returns after."""
    global _benchmark
    previous = _benchmark
    _benchmark = bool(enabled)
    try:
        yield
    finally:
        _benchmark = previous


def benchmark_choices() -> dict[tuple, str]:
    """A copy of the measured choices: key -> algorithm name (see :func:`set_benchmark`)."""
    return dict(_measured)


def clear_benchmark() -> None:
    """Forget every measured choice; the next call of each shape measures again."""
    _measured.clear()


def _key(x_shape: Sequence[int], w_shape: Sequence[int], stride: Sequence[int],
         dilation: Sequence[int], groups: int, dtype: DTypeLike, weight_grad: bool) -> tuple:
    return (tuple(x_shape), tuple(w_shape), tuple(stride), tuple(dilation), int(groups),
            np.dtype(dtype).str, bool(weight_grad))


def _candidates(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                groups: int, c: int, o: int, dtype: DTypeLike) -> list[str]:
    args = (kernel, stride, dilation, groups, c, o)
    return [name for name, algo in ALGORITHMS.items() if algo.supports(*args)
            and (name != "winograd" or _winograd_precise(dtype))]


def _time(name: str, xp: np.ndarray, w: np.ndarray, stride: Sequence[int],
          dilation: Sequence[int], groups: int, weight_grad: bool) -> float:
    """Best seconds of one forward (+ both gradients) of algorithm ``name``.

    Each run gets its own cache dict, so the caller's stays untouched; the
    algorithms only read ``xp`` and ``w``, and the forward's own output stands in
    for the output gradient (its values do not matter to the time)."""
    algo = ALGORITHMS[name]

    def once() -> None:
        cache: dict | None = {} if weight_grad else None
        y = algo.conv_forward(xp, w, stride, dilation, groups, cache=cache)
        if weight_grad:
            algo.conv_input_grad(y, w, xp.shape[2:], stride, dilation, groups, cache=cache)
            algo.conv_weight_grad(xp, y, w.shape[2:], stride, dilation, groups, cache=cache)

    once()  # warm-up: scratch buffers, thread pool, caches
    best = float("inf")
    for _ in range(BENCHMARK_REPEATS):
        start = _clock()
        once()
        best = min(best, _clock() - start)
    return best


def _measure(xp: np.ndarray, w: np.ndarray, stride: Sequence[int], dilation: Sequence[int],
             groups: int, dtype: np.dtype, weight_grad: bool) -> str:
    """The measured choice for this convolution, timing the candidates on first sight."""
    key = _key(xp.shape, w.shape, stride, dilation, groups, dtype, weight_grad)
    name = _measured.get(key)
    if name is None:
        kernel, c, o = w.shape[2:], xp.shape[1], w.shape[0]
        names = _candidates(kernel, stride, dilation, groups, c, o, dtype)
        if len(names) == 1 or xp.size == 0 or w.size == 0:  # nothing to compare
            name = choose(kernel, stride, dilation, groups, c, o, xp.shape[0], xp.shape[2:], dtype)
        else:
            times = {n: _time(n, xp, w, stride, dilation, groups, weight_grad) for n in names}
            name = min(times, key=times.__getitem__)
        _measured[key] = name
    return name


def choose(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int], groups: int,
           c: int, o: int, n: int, size: Sequence[int], dtype: DTypeLike | None = None) -> str:
    """Name of the algorithm for a convolution of a padded ``(n, c, *size)`` input
    with an ``(o, c/groups, *kernel)`` weight, of data type ``dtype`` (None: unknown,
    treated as float32/float64).

    The rules below were set by measurement (``python benchmarks/conv_suite.py``)
    against the general GEMM path:

    * 1x1 kernels: a plain matrix product, no window copy at all (``pointwise``);
    * one input and one output channel per group (depthwise): per-tap
      multiply-accumulate (``depthwise``), which does ``T`` times less work than
      GEMM on block-diagonal weights;
    * 3x3 (3x3x3) stride-1 undilated ungrouped layers with enough channels and
      large enough images for the transforms to pay (:func:`winograd.worthwhile`):
      Winograd F(4x4, 3x3), for float32/float64 data only (its transforms amplify
      rounding: in float16 the error is ~25x GEMM's);
    * other stride-1 2-D and 3-D layers with short columns (``C * prod(kernel)`` up
      to 640): im2col on flattened channel-major planes (``flat``), whose copies run
      along whole planes; it beat GEMM on every such suite layer;
    * long kernels (many taps) at stride 1 with SciPy present: FFT;
    * everything else: im2col + GEMM (its stride-1 2-D/3-D input gradients go to the
      flat path where planes carry few junk positions, :func:`flat.input_grad_worthwhile`).
    """
    args = (kernel, stride, dilation, groups, c, o)
    if _forced is not None:
        if ALGORITHMS[_forced].supports(*args):
            return _forced
        if _strict:
            raise ValueError(
                f"algorithm {_forced!r} does not support kernel={tuple(kernel)}, "
                f"stride={tuple(stride)}, dilation={tuple(dilation)}, groups={groups}, "
                f"channels {c}->{o}"
            )
    if pointwise.supports(*args):
        return "pointwise"
    if depthwise.supports(*args):
        return "depthwise"
    if (winograd.supports(*args) and _winograd_precise(dtype)
            and winograd.worthwhile(kernel, c, o, size)):
        return "winograd"
    if flat.supports(*args) and flat.worthwhile(kernel, c, o, size):
        return "flat"
    if fft.supports(*args) and fft.worthwhile(kernel, c, o, size):
        return "fft"
    return "gemm"


def _winograd_precise(dtype: DTypeLike | None) -> bool:
    """Whether Winograd's transforms keep enough precision in ``dtype``."""
    return dtype is None or np.dtype(dtype) in (np.float32, np.float64)


def _pick(cache: dict | None, *args: object) -> ModuleType:
    if cache is not None and "algorithm" in cache:
        return ALGORITHMS[cache["algorithm"]]
    if _benchmark and _forced is None:
        # no cache (weight gradient not needed): the forward's measured choice, if any
        kernel, stride, dilation, groups, c, o, n, size, dtype = args
        w_shape = (o, c // groups, *kernel)  # type: ignore[operator]
        key = _key((n, c, *size), w_shape, stride, dilation, groups, dtype, False)  # type: ignore[arg-type]
        if key in _measured:
            return ALGORITHMS[_measured[key]]
    return ALGORITHMS[choose(*args)]  # type: ignore[arg-type]


def conv_forward(xp: np.ndarray, w: np.ndarray, stride: Sequence[int],
                 dilation: Sequence[int], groups: int, cache: dict | None = None) -> np.ndarray:
    """Cross-correlation of the padded input with ``w``; see :mod:`convprop.kernels.gemm`."""
    dtype = np.result_type(xp, w)
    if _benchmark and _forced is None:
        name = _measure(xp, w, stride, dilation, groups, dtype, cache is not None)
    else:
        name = choose(w.shape[2:], stride, dilation, groups, xp.shape[1], w.shape[0],
                      xp.shape[0], xp.shape[2:], dtype)
    if cache is not None:
        cache.clear()
        cache["algorithm"] = name
    return ALGORITHMS[name].conv_forward(xp, w, stride, dilation, groups, cache=cache)


def conv_input_grad(gy: np.ndarray, w: np.ndarray, padded_shape: Sequence[int],
                    stride: Sequence[int], dilation: Sequence[int], groups: int,
                    cache: dict | None = None) -> np.ndarray:
    """Gradient of the padded input (a transposed convolution of ``gy`` with ``w``)."""
    algo = _pick(cache, w.shape[2:], stride, dilation, groups, w.shape[1] * groups, w.shape[0],
                 gy.shape[0], padded_shape, np.result_type(gy, w))
    if algo is gemm and _forced is None and flat.input_grad_worthwhile(stride, padded_shape,
                                                                        gy.shape[2:]):
        algo = flat  # measured faster on GEMM's stride-1 2-D/3-D layers (see there)
    return algo.conv_input_grad(gy, w, padded_shape, stride, dilation, groups, cache=cache)


def conv_weight_grad(xp: np.ndarray, gy: np.ndarray, kernel: Sequence[int],
                     stride: Sequence[int], dilation: Sequence[int], groups: int,
                     cache: dict | None = None) -> np.ndarray:
    """Gradient of the weight (the input correlated with ``gy``)."""
    algo = _pick(cache, kernel, stride, dilation, groups, xp.shape[1], gy.shape[1], xp.shape[0],
                 xp.shape[2:], np.result_type(xp, gy))
    return algo.conv_weight_grad(xp, gy, kernel, stride, dilation, groups, cache=cache)

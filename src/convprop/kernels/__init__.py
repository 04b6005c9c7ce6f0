"""Convolution kernels: one spec, one algorithm protocol, backends chosen per thread.

A convolution call builds one frozen :class:`ConvSpec` (shapes, stride, padding,
dilation, groups, dtype and the sizes derived from them), asks :func:`plan` for
the :class:`Plan` -- the algorithm of each of the three passes (forward, input
gradient, weight gradient) -- and calls those algorithms with the unpadded input
and the bias; what a forward leaves for its backward is a small typed
:class:`Saved` object that only the same algorithm reads.  See
:mod:`convprop.kernels.spec` for the maths every algorithm computes.

The algorithms and the rules that pick among them belong to a backend
(:mod:`convprop.kernels.backend`): ``numpy`` (:mod:`convprop.kernels.numpy`, the
reference) or ``numba`` (compiled).  :func:`use_backend` / :func:`set_backend`
select one for the calling thread; ``CONVPROP_BACKEND`` sets the process default.
:func:`force` pins one algorithm (tests use it to hold every path to the same
reference) and :func:`set_benchmark` turns on measured selection; both are per
thread, like grad mode.  :func:`set_threads` sizes the NumPy kernels' small
thread pool (process-wide).
"""

from __future__ import annotations

from ._pool import get_threads, set_threads
from .backend import (
    BACKENDS,
    Backend,
    benchmark,
    benchmark_choices,
    benchmark_enabled,
    clear_benchmark,
    default_backend_name,
    force,
    get_backend,
    load_backend,
    plan,
    set_backend,
    set_benchmark,
    use_backend,
)
from .spec import Algorithm, ConvSpec, Plan, Saved

__all__ = ["BACKENDS", "Algorithm", "Backend", "ConvSpec", "Plan", "Saved", "algorithms",
           "benchmark", "benchmark_choices", "benchmark_enabled", "choose", "clear_benchmark",
           "default_backend_name", "force", "get_backend", "get_threads", "load_backend", "plan",
           "set_backend", "set_benchmark", "set_threads", "use_backend"]


def algorithms(backend: str | None = None) -> dict[str, Algorithm]:
    """The algorithms of ``backend`` (default: this thread's) by name, in its order."""
    be = get_backend() if backend is None else load_backend(backend)
    return {a.name: a for a in be.algorithms}


def choose(spec: ConvSpec) -> Plan:
    """The plan this thread's backend's rules give ``spec`` (no forcing, no measuring)."""
    return get_backend().choose(spec)

"""Backends (array namespace + algorithms + chooser), selected per thread, and the selection state.

A :class:`Backend` is a name, the array namespace its algorithms work in
(``numpy``; a CuPy backend would bring ``cupy``), its algorithms in order and its
chooser ``choose(spec) -> Plan``.  Two exist:

* ``numpy``: the pure-NumPy algorithms of :mod:`convprop.kernels.numpy`, the reference;
* ``numba``: the compiled algorithms of :mod:`convprop.kernels.numba`, whose
  ``choose(spec, fallback)`` takes the NumPy plan for the spec and returns the plan
  to use (passes it does not cover keep the fallback's).  It is built on first use,
  so ``import convprop`` never imports Numba; where ``convprop.kernels.numba`` or
  Numba itself cannot be imported it is the NumPy backend, with one warning per
  process.

The backend is chosen per thread, like grad mode: :func:`use_backend` (a context
manager) or :func:`set_backend` in this thread, else the process default: the
``CONVPROP_BACKEND`` environment variable (``numpy`` or ``numba``), else ``numba``
when Numba is installed (checked without importing it), else ``numpy``.

What changes a plan -- a forced algorithm (:func:`force`), measured selection
(:func:`set_benchmark`) and its table of measured choices -- is per thread and per
backend as well (a measured name means nothing to another backend).  :func:`plan`
applies them in that order before the backend's chooser.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from .spec import Algorithm, ConvSpec, Plan
from .subgrid import Subgrid

#: The backends by name, in the order they are documented.
BACKENDS = ("numpy", "numba")
#: Environment variable naming the process default backend.
ENV = "CONVPROP_BACKEND"
#: Timed runs per algorithm after one warm-up in measured selection; the best is kept.
BENCHMARK_REPEATS = 3
_clock = time.perf_counter  # a module attribute so that tests can count the timings


@dataclass(frozen=True)
class Backend:
    """An array namespace, its convolution algorithms and the chooser that plans with them.

    Attributes:
        name: ``"numpy"`` or ``"numba"``.
        xp: the array namespace the algorithms take and return (``numpy``).
        algorithms: every algorithm, in the order measured selection times them; names
            are unique.
        choose: the rules: ``choose(spec) -> Plan``.
        candidates: the algorithms measured selection may time for a spec.
    """

    name: str
    xp: ModuleType
    algorithms: tuple[Algorithm, ...]
    choose: Callable[[ConvSpec], Plan]
    candidates: Callable[[ConvSpec], list[Algorithm]]

    def algorithm(self, name: str) -> Algorithm:
        """The algorithm called ``name``; ``ValueError`` listing the names otherwise."""
        for a in self.algorithms:
            if a.name == name:
                return a
        raise ValueError(f"unknown algorithm {name!r} for the {self.name} backend; choose from "
                         f"{sorted(a.name for a in self.algorithms)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.algorithms)


# ----------------------------------------------------------------- the registry
_built: dict[str, Backend] = {}
_build_lock = threading.RLock()
_default: list[str] = []  # the process default, resolved once


def _numpy_backend() -> Backend:
    from . import numpy as reference

    return Backend("numpy", np, reference.ALGORITHMS, reference.choose, reference.candidates)


def _numba_installed() -> bool:
    """Whether Numba can be imported, found without importing it (``import convprop`` and
    ``convprop demo`` never load Numba)."""
    if "numba" in sys.modules:
        return sys.modules["numba"] is not None
    return importlib.util.find_spec("numba") is not None


def _thread_choose(spec: ConvSpec) -> Plan:
    """The calling thread's backend's plan for ``spec`` (what sub-grid parts run on)."""
    return get_backend().choose(spec)


def _numba_backend() -> Backend:
    """The compiled backend on top of the NumPy one, or the NumPy one with a warning."""
    base = load_backend("numpy")
    try:
        if not _numba_installed():  # found, not imported: that waits for the first kernel
            raise ImportError("No module named 'numba'")
        compiled = importlib.import_module("convprop.kernels.numba")
    except Exception as exc:  # noqa: BLE001 - any failure to import means: run on NumPy
        warnings.warn(f"convprop: the numba backend is unavailable ({type(exc).__name__}: {exc}); "
                      "running on the numpy backend", RuntimeWarning, stacklevel=4)
        return base
    own = tuple(compiled.ALGORITHMS)
    taken = {a.name for a in own}
    # last, the sub-grid decomposition, which plans its dense parts on the calling thread's
    # backend; it is there to be forced or measured (no rule picks it: see kernels/subgrid.py)
    subgrid = Subgrid(_thread_choose)
    algorithms = own + tuple(a for a in base.algorithms if a.name not in taken) + (subgrid,)

    def choose(spec: ConvSpec) -> Plan:
        return compiled.choose(spec, base.choose(spec))

    def candidates(spec: ConvSpec) -> list[Algorithm]:
        kept = [a for a in base.candidates(spec) if a.name not in taken]
        extra = [subgrid] if subgrid.supports(spec) else []
        return [a for a in own if a.supports(spec)] + kept + extra

    return Backend("numba", np, algorithms, choose, candidates)


_BUILDERS: dict[str, Callable[[], Backend]] = {"numpy": _numpy_backend, "numba": _numba_backend}


def _check_name(name: str, what: str = "backend") -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown {what} {name!r}; choose from {list(BACKENDS)}")
    return name


def load_backend(name: str) -> Backend:
    """The backend called ``name`` (``"numpy"`` or ``"numba"``), built on first use.

    ``"numba"`` gives the NumPy backend (``.name == "numpy"``) where the compiled one
    cannot be imported; the warning saying so is issued once per process."""
    _check_name(name)
    backend = _built.get(name)
    if backend is None:
        with _build_lock:
            backend = _built.get(name)
            if backend is None:
                backend = _built[name] = _BUILDERS[name]()
    return backend


def default_backend_name() -> str:
    """The process default: ``$CONVPROP_BACKEND``, else ``numba`` when Numba is installed
    (looked up, not imported), else ``numpy``.  Read once per process."""
    if not _default:
        env = os.environ.get(ENV, "").strip()
        if env:
            if env not in BACKENDS:
                raise ValueError(f"{ENV}={env!r} is not a backend; choose from {list(BACKENDS)}")
            name = env
        else:
            name = "numba" if _numba_installed() else "numpy"
        _default.append(name)
    return _default[0]


# ------------------------------------------------------------ per-thread state
@dataclass
class _Selection:
    """What changes the plans of one backend in one thread."""

    forced: str | None = None
    strict: bool = False
    benchmark: bool = False
    #: (spec, backward wanted) -> the measured algorithm's name
    measured: dict[tuple[ConvSpec, bool], str] = field(default_factory=dict)


class _Local(threading.local):
    """Per thread: the selected backend (None: the process default) and its selections."""

    def __init__(self) -> None:
        self.backend: str | None = None
        self.selections: dict[str, _Selection] = {}


_local = _Local()


def get_backend() -> Backend:
    """The backend of the calling thread (built on first use)."""
    return load_backend(_local.backend or default_backend_name())


def set_backend(name: str | None) -> None:
    """Use backend ``name`` in the calling thread from now on (None: the process default)."""
    _local.backend = None if name is None else _check_name(name)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """Use backend ``name`` in the calling thread inside the ``with`` block; yields it."""
    previous, _local.backend = _local.backend, _check_name(name)
    try:
        yield get_backend()
    finally:
        _local.backend = previous


def _selection(backend: Backend | None = None) -> _Selection:
    name = (backend or get_backend()).name
    sel = _local.selections.get(name)
    if sel is None:
        sel = _local.selections[name] = _Selection()
    return sel


@contextlib.contextmanager
def force(name: str | None, strict: bool = False) -> Iterator[None]:
    """Plan algorithm ``name`` for all three passes of every convolution inside the
    ``with`` block (this thread, this backend).

    Specs the algorithm does not support get the usual plan, or raise ``ValueError``
    when ``strict``.  A forced algorithm wins over measured selection.
    """
    backend = get_backend()
    if name is not None:
        backend.algorithm(name)  # raises for an unknown name
    sel = _selection(backend)
    previous = sel.forced, sel.strict
    sel.forced, sel.strict = name, strict
    try:
        yield
    finally:
        sel.forced, sel.strict = previous


def set_benchmark(enabled: bool) -> None:
    """Turn measured algorithm selection on or off in this thread (off by default).

    When on, the first convolution of each key -- its :class:`ConvSpec` and whether a
    backward will follow -- times every algorithm the backend offers for it
    (``Backend.candidates``: those that support it; Winograd is left out for float16)
    as a whole plan on the call's own arrays (forward, plus both gradients when a
    backward follows; one warm-up, then the best of :data:`BENCHMARK_REPEATS`) and keeps
    the fastest for that key.  Later calls of the key use the kept choice without
    timing.  Every algorithm computes the same convolution, so only speed changes.
    :func:`force` wins over a measured choice.  Choices persist until
    :func:`clear_benchmark`, like ``torch.backends.cudnn.benchmark``.
    """
    _selection().benchmark = bool(enabled)


@contextlib.contextmanager
def benchmark(enabled: bool = True) -> Iterator[None]:
    """:func:`set_benchmark` for the ``with`` block only; the previous setting returns after."""
    sel = _selection()
    previous, sel.benchmark = sel.benchmark, bool(enabled)
    try:
        yield
    finally:
        sel.benchmark = previous


def benchmark_enabled() -> bool:
    """Whether measured selection is on in this thread (for this thread's backend)."""
    return _selection().benchmark


def benchmark_choices() -> dict[tuple[ConvSpec, bool], str]:
    """A copy of this thread's measured choices: ``(spec, backward) -> algorithm name``."""
    return dict(_selection().measured)


def clear_benchmark() -> None:
    """Forget every measured choice; the next call of each spec measures again."""
    _selection().measured.clear()


def _describe(spec: ConvSpec) -> str:
    return (f"kernel={spec.kernel}, stride={spec.stride}, dilation={spec.dilation}, "
            f"groups={spec.groups}, channels {spec.c}->{spec.o}")


def plan(spec: ConvSpec, x: np.ndarray | None = None, w: np.ndarray | None = None,
         b: np.ndarray | None = None, backward: bool = False) -> Plan:
    """The plan for ``spec`` in this thread: the forced algorithm when one is forced and
    supports it, else the measured choice (timing the candidates now when measured
    selection is on, the key is new and the arrays ``x``, ``w``, ``b`` are given), else
    the backend's chooser."""
    backend = get_backend()
    sel = _selection(backend)
    if sel.forced is not None:
        algo = backend.algorithm(sel.forced)
        if algo.supports(spec):
            return Plan(algo, algo, algo)
        if sel.strict:
            raise ValueError(f"algorithm {sel.forced!r} does not support {_describe(spec)}")
        return backend.choose(spec)
    if sel.benchmark:
        name = sel.measured.get((spec, backward))
        if name is None and x is not None and w is not None:
            name = sel.measured[(spec, backward)] = _measure(backend, spec, x, w, b, backward)
        elif name is None:  # no arrays (a transposed convolution): the forward's choice, if any
            name = sel.measured.get((spec, not backward))
        if name is not None:
            algo = backend.algorithm(name)
            return Plan(algo, algo, algo)
    return backend.choose(spec)


def _measure(backend: Backend, spec: ConvSpec, x: np.ndarray, w: np.ndarray,
             b: np.ndarray | None, backward: bool) -> str:
    """Name of the fastest candidate for ``spec`` on these arrays (see :func:`set_benchmark`)."""
    algos = backend.candidates(spec)
    if len(algos) == 1 or x.size == 0 or w.size == 0:  # nothing to compare
        return algos[0].name if len(algos) == 1 else backend.choose(spec).forward.name
    times = {a.name: _time(a, spec, x, w, b, backward) for a in algos}
    return min(times, key=times.__getitem__)


def _time(algo: Algorithm, spec: ConvSpec, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
          backward: bool) -> float:
    """Best seconds of one forward (+ both gradients) of ``algo``.  The algorithms only read
    their arguments, and the forward's own output stands in for the output gradient (its
    values do not matter to the time)."""

    def once() -> None:
        y, saved = algo.forward(spec, x, w, b, backward)
        if backward:
            algo.input_grad(spec, y, w, saved)
            algo.weight_grad(spec, x, y, saved)

    once()  # warm-up: scratch buffers, thread pool, caches
    best = float("inf")
    for _ in range(BENCHMARK_REPEATS):
        start = _clock()
        once()
        best = min(best, _clock() - start)
    return best

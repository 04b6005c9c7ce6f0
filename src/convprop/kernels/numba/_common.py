"""What the compiled algorithms share: lazy compilation, the 3-D canonical form, the threads.

**Lazy compilation.**  Each algorithm module writes its kernels as plain module-level
functions in the subset of Python that Numba compiles (``prange = range`` until
then), so importing the module imports no Numba.  The first call of an algorithm
runs :func:`compile_kernels`, which imports Numba, replaces those functions in the
module's namespace by ``numba.njit(cache=True)`` dispatchers (so a kernel calling a
helper calls the compiled helper) and binds ``prange`` to ``numba.prange``.  Every
dispatcher then compiles on its first call for its argument types -- we only pass
C-contiguous arrays of one data type, Python ints and bools, so each kernel has one
signature per data type (float32, float64) -- or loads it from Numba's on-disk
cache; the first real compile in a process prints :data:`NOTICE` once on stderr.

**3-D canonical form.**  Every kernel is written for three spatial axes; 1-D and 2-D
convolutions are the same computation with leading axes of size 1 (kernel 1,
stride 1, dilation 1, no padding), so :func:`geometry` and :func:`as3d` reshape
(no copy) instead of a second and third copy of the index arithmetic.

**Threads: one pool per call.**  Every parallel kernel receives the thread count
(:func:`threads`; calling ``numba.get_num_threads()`` inside a cached kernel makes
it uncacheable) and splits its work items statically over ``prange(threads)``.
Kernels that multiply matrices call ``np.dot`` from inside those threads, which
Numba routes to SciPy's BLAS; :func:`one_blas_thread` holds that BLAS library to one
thread for the call, so Numba's threads are the only pool running.

**Threading layer** (:data:`THREADING_LAYER`, used unless ``NUMBA_THREADING_LAYER``
is set): ``omp``, with Numba's OpenMP threads *passive* (:data:`OMP_SETTINGS`): they
sleep as soon as a kernel ends instead of spinning.  libgomp's default is to spin
about 300,000 times after every parallel region (each ``pause`` ~140 cycles on this
Xeon: milliseconds) on the cores that the NumPy work between two kernels -- batch
norm, activations, OpenBLAS's products in the linear layers -- needs next.
:func:`_start_threads` puts the setting in the environment only while Numba loads its
libgomp (which reads it once, at load) and restores the environment at once, so
PyTorch's threads keep their own behaviour.  Measured with ``python
benchmarks/train_step.py --backends --repeats 15``-style runs (numba and numpy backends
interleaved in one process, best of 15-20 x 3 steps; per step the wall time and the
CPU time of all the process's threads, where spinning shows) on a 2-core machine shared
with other work (load average 3-5.5: absolute times moved 2-5x between runs, CPU times
much less), LeNet step on the numba backend without ``torch`` in the process, CPU ms:
63.4 / 53.1 with libgomp's default spin (``GOMP_SPINCOUNT=300000``), 12.2 / 17.9
passive; wall ratio to the numpy backend 2.72 / 2.35 against 0.25 / 0.91.  ``convprop
train digits`` (numba backend, kernels cached, 30 epochs of training as it reports
them): 30.7 s spinning, 7.8 / 8.3 s passive (the numpy backend: 9.4 s).

Two things measured on the way:

* PyTorch's wheel brings its own ``libgomp.so.1``, loaded with global symbols, and
  with ``torch`` imported first Numba's ``omp`` layer bound to it (``LD_DEBUG=bindings``:
  its ``GOMP_parallel`` resolved to ``torch/lib/libgomp.so.1``), so the setting never
  reached Numba's threads (LeNet step 62.9 ms CPU with ``torch`` imported first, 14.2 ms
  without).  :func:`_start_threads` therefore loads the layer with ``RTLD_DEEPBIND``:
  it binds to the libgomp it links, whatever was loaded before (then 12.1 ms with
  ``torch`` imported first).  ``OMP_WAIT_POLICY=PASSIVE`` for the whole process would
  also have worked (16.6 / 14.6 ms) but changes PyTorch's threads too.
* ``workqueue`` never spins either (LeNet step 19.7 / 22.2 ms CPU), but the compiled
  im2col kernels did not run in parallel on it: 100x8x14x14 -> 16 channels, forward,
  2.64 ms on one thread and 2.53 ms on two with ``workqueue``, 3.49 -> 1.80 ms with
  ``omp`` (the pooling kernels, which call no BLAS, did scale on both); it also aborts
  on concurrent launches, so :class:`Serialised` puts one lock around every launch
  when a user chooses it.  ``tbb`` is not a dependency.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..spec import ConvSpec

#: The line printed on stderr the first time a compiled kernel is compiled in a process.
NOTICE = "convprop: compiling kernels (once; cached afterwards)..."
#: Numba's threading layer unless the environment names one (see the module docstring).
THREADING_LAYER = "omp"
#: What Numba's OpenMP threads do after each parallel region, set for its runtime only
#: (see the module docstring and :func:`_start_threads`).
OMP_SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE"}
#: Variables that, when the user sets any of them, leave the OpenMP runtime's defaults alone.
OMP_USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
#: Data types the compiled kernels are specialised for.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: Only 1-D, 2-D and 3-D convolutions.
MAX_DIMS = 3

#: Flags that let LLVM vectorise the kernels' sums (reassociation and fused multiply-add)
#: while NaN and infinity keep their IEEE meaning.
FASTMATH = frozenset({"reassoc", "contract", "nsz"})

#: Numba's parallel transformations: only the explicit ``prange`` loops (each kernel splits
#: its work by hand); the others find nothing to do in these kernels and cost compile time.
PARALLEL_OPTIONS = {"prange": True, "comprehension": False, "reduction": False,
                    "setitem": False, "stencil": False, "fusion": False, "numpy": False,
                    "inplace_binop": False}

_lock = threading.Lock()
_notice = {"listener": None, "printed": False}
_blas: dict[str, Any] = {}


def compile_kernels(module: ModuleType, serial: Sequence[str], parallel: Sequence[str]) -> None:
    """Replace the named plain functions of ``module`` by cached Numba dispatchers (once).

    ``serial`` functions compile without threads; ``parallel`` ones with
    ``parallel=True`` (their ``prange`` loops run on Numba's threads).  Idempotent and
    thread-safe; the first call imports Numba and chooses the threading layer.
    """
    namespace = vars(module)
    with _lock:
        if namespace.get("_compiled"):
            return
        import numba

        if "NUMBA_THREADING_LAYER" not in os.environ:
            numba.config.THREADING_LAYER = THREADING_LAYER
        _start_threads(numba)
        _watch_compiles()
        namespace["prange"] = numba.prange
        for name in serial:
            namespace[name] = numba.njit(cache=True, fastmath=set(FASTMATH))(namespace[name])
        for name in parallel:
            kernel = numba.njit(cache=True, parallel=PARALLEL_OPTIONS,
                                fastmath=set(FASTMATH))(namespace[name])
            namespace[name] = (Serialised(kernel) if numba.threading_layer() == "workqueue"
                               else kernel)
        namespace["_compiled"] = True


class Serialised:
    """A parallel kernel whose launches take turns, used when the threading layer is
    ``workqueue`` (chosen by the user with ``NUMBA_THREADING_LAYER``): that layer aborts
    the process when two Python threads launch parallel work at once, so every launch
    holds one process-wide lock (each launch already uses every thread).  Other
    attributes are the dispatcher's (``signatures``, ``py_func``, ...)."""

    _launch = threading.Lock()

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    def __call__(self, *args: Any) -> Any:
        with Serialised._launch:
            return self.kernel(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kernel, name)


def _openmp_loaded() -> bool:
    """Whether the OpenMP runtime Numba's ``omp`` layer links (the system's
    ``libgomp.so.1.0.0``) is already in this process, or whether that cannot be told
    (no ``/proc/self/maps``)."""
    try:
        with open("/proc/self/maps") as maps:
            return any(line.rstrip().endswith("/libgomp.so.1.0.0") for line in maps)
    except OSError:
        return True


def _start_threads(numba: ModuleType) -> None:
    """Start Numba's threading layer, with :data:`OMP_SETTINGS` for its OpenMP runtime only.

    libgomp reads its environment once, when it is loaded, and Numba loads it with its
    ``omp`` layer on the first launch; so the settings are placed in the environment for
    that moment only and the previous environment returns at once.  Nothing is changed
    when the user set any of :data:`OMP_USER_VARIABLES` or when the runtime is already
    loaded; with another layer libgomp is not loaded and the settings go unread.  The
    layer's extension module is loaded with ``RTLD_DEEPBIND`` (see the module docstring):
    it binds to its own libgomp even where PyTorch's is loaded with global symbols.
    """
    flags = sys.getdlopenflags()
    settings = {} if any(k in os.environ for k in OMP_USER_VARIABLES) or _openmp_loaded() \
        else OMP_SETTINGS
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    # Numba's omp layer is an extension module; loaded with RTLD_DEEPBIND it binds to the
    # libgomp it links rather than to one already loaded with global symbols (PyTorch's)
    sys.setdlopenflags(flags | getattr(os, "RTLD_DEEPBIND", 0))
    try:
        numba.get_num_threads()  # launches the threading layer: libgomp reads its settings
    finally:
        sys.setdlopenflags(flags)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _watch_compiles() -> None:
    """Print :data:`NOTICE` when Numba first compiles (not loads) one of our kernels."""
    if _notice["listener"] is not None:
        return
    from numba.core import event

    class _Notice(event.Listener):
        def on_start(self, ev: event.Event) -> None:
            dispatcher = (ev.data or {}).get("dispatcher")
            module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
            if module.startswith(__package__) and not _notice["printed"]:
                _notice["printed"] = True
                print(NOTICE, file=sys.stderr, flush=True)

        def on_end(self, ev: event.Event) -> None:
            pass

    listener = _Notice()
    event.register("numba:compile", listener)
    _notice["listener"] = listener


def threads() -> int:
    """Threads each compiled call splits its work over: ``convprop.kernels.set_threads``'s
    count (the same setting as the NumPy kernels' pool), at most the threads Numba launched;
    Numba's own count for the calling thread is set to match."""
    import numba

    from .._pool import get_threads

    n = max(1, min(get_threads(), int(numba.config.NUMBA_NUM_THREADS)))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
    return n


class _Threads:
    """Get and set one BLAS library's thread count.

    For OpenBLAS built with its own threads (SciPy's and NumPy's wheels) the library's
    ``openblas_get/set_num_threads`` are called directly through ctypes, because
    ``threadpoolctl``'s setter, by design, lets only the first Python thread that sets
    a limit change it and silently ignores the others -- a second Python thread's
    compiled convolutions would then run SciPy's BLAS with its own threads inside
    Numba's.  (Cost: ~1 us per get/set pair against ~2.5 us.)  Other libraries go
    through ``threadpoolctl``'s controller.
    """

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        self.get = self.set = None
        if lib.internal_api == "openblas" and getattr(lib, "threading_layer", "") != "openmp":
            import ctypes

            dll = ctypes.CDLL(lib.filepath)
            for prefix in ("", "scipy_"):
                for suffix in ("", "64_", "_64"):
                    get = getattr(dll, f"{prefix}openblas_get_num_threads{suffix}", None)
                    put = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
                    if get is not None and put is not None and self.get is None:
                        self.get, self.set = get, put

    def num_threads(self) -> int:
        return int(self.get()) if self.get is not None else int(self.lib.num_threads)

    def set_num_threads(self, n: int) -> None:
        if self.set is not None:
            self.set(int(n))
        else:
            self.lib.set_num_threads(n)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold the BLAS library that Numba's ``np.dot`` calls (SciPy's) to one thread.

    The kernels call it from each of Numba's threads; left at its default it would
    start a second pool of threads inside every one of them.  The libraries are looked
    up once per process (listing them costs milliseconds; see :class:`_Threads` for
    the setter); calls from several Python threads at once share one hold, and the
    first caller's setting returns when the last one leaves.
    """
    with _lock:
        libs = _blas.get("libs")
        if libs is None:
            import scipy.linalg.cython_blas  # noqa: F401  (loads the library np.dot calls)
            from threadpoolctl import ThreadpoolController

            found = ThreadpoolController().select(user_api="blas").lib_controllers
            # SciPy's wheels bundle their own BLAS (under scipy.libs); elsewhere NumPy and
            # SciPy usually share one library, and holding all of them is the safe choice.
            own = [lib for lib in found if "scipy.libs" in lib.filepath]
            libs = _blas["libs"] = [_Threads(lib) for lib in own or found]
            _blas["holders"] = 0
        if _blas["holders"] == 0:
            _blas["saved"] = [lib.num_threads() for lib in libs]
            for lib in libs:
                lib.set_num_threads(1)
        _blas["holders"] += 1
    try:
        yield
    finally:
        with _lock:
            _blas["holders"] -= 1
            if _blas["holders"] == 0:
                for lib, n in zip(libs, _blas["saved"]):
                    lib.set_num_threads(n)


@dataclass(frozen=True)
class Geometry:
    """A :class:`ConvSpec`'s spatial numbers padded to three axes (leading axes of size 1).

    Attributes:
        size, kernel, stride, dilation, out, padded: ``(D, H, W)``-ordered triples.
        before, after: zero padding before and after each axis.
    """

    size: tuple[int, int, int]
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    dilation: tuple[int, int, int]
    before: tuple[int, int, int]
    after: tuple[int, int, int]
    out: tuple[int, int, int]
    padded: tuple[int, int, int]

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1] * self.kernel[2]

    @property
    def positions(self) -> int:
        return self.out[0] * self.out[1] * self.out[2]


def geometry(spec: ConvSpec) -> Geometry:
    """The spec's spatial numbers as three axes (see :class:`Geometry`)."""
    lead = MAX_DIMS - spec.nd

    def three(values: Sequence[int], fill: int) -> tuple[int, int, int]:
        return tuple([fill] * lead + [int(v) for v in values])  # type: ignore[return-value]

    return Geometry(three(spec.size, 1), three(spec.kernel, 1), three(spec.stride, 1),
                    three(spec.dilation, 1), three([p[0] for p in spec.pads], 0),
                    three([p[1] for p in spec.pads], 0), three(spec.out, 1),
                    three(spec.padded, 1))


def c_array(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` as a writeable C-contiguous ``dtype`` array (a copy only where needed).

    The kernels are compiled for exactly that array type: a read-only or strided
    array would be a new signature, compiled again for tens of seconds.
    """
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


def as3d(a: np.ndarray, lead: int, dtype: np.dtype) -> np.ndarray:
    """``a`` of shape ``(*lead axes, *spatial)`` as a writeable C-contiguous ``dtype`` array
    with exactly three spatial axes (size-1 axes inserted before the first)."""
    a = c_array(a, dtype)
    spatial = a.shape[lead:]
    return a.reshape(a.shape[:lead] + (1,) * (MAX_DIMS - len(spatial)) + spatial)


def supported_dtype(spec: ConvSpec) -> bool:
    """Whether the compiled kernels handle the spec's data type and number of axes."""
    return spec.dtype in DTYPES and 1 <= spec.nd <= MAX_DIMS


def span(offset: int, step: int, length: int, count: int) -> tuple[int, int]:
    """The range ``[lo, hi)`` of ``q`` in ``[0, count)`` with ``0 <= q*step + offset < length``.

    The positions of one row of taps that fall inside the unpadded input (the rest
    read the zero padding); compiled into the kernels that call it.
    """
    lo = 0 if offset >= 0 else (step - 1 - offset) // step
    hi = (length - 1 - offset) // step + 1 if length - 1 - offset >= 0 else 0
    hi = min(hi, count)
    return min(lo, hi), hi


def crop(acc, Hs, Ws, dst3, bias):
    """``dst3[od, oh, ow] = acc[(od*Hs + oh)*Ws + ow] + bias``: drop the wide rows' junk.

    The wide-row kernels (depthwise, direct) accumulate whole padded rows; compiled into
    the kernels that call it, like :func:`span`."""
    OD, OH, OW = dst3.shape
    for od in range(OD):
        for oh in range(OH):
            start = (od * Hs + oh) * Ws
            seg = acc[start:start + OW]
            row = dst3[od, oh]
            for q in range(OW):
                row[q] = seg[q] + bias

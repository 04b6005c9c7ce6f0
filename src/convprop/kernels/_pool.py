"""A small thread pool for the non-BLAS parts of the kernels, and reusable scratch buffers.

NumPy releases the GIL inside copies and ufunc loops, so splitting one big
job into a few slabs along an axis runs them on several cores.  BLAS calls are
never made from the pool (OpenBLAS threads them already), so the two never
oversubscribe the machine: phases alternate, they do not overlap.  Pure copies
only go to the pool above :data:`MIN_PARALLEL_COPY_BYTES` (measured: they are
memory-bound and gained nothing, or lost, next to the BLAS threads).

Scratch buffers: a fresh multi-megabyte ``np.empty`` is mapped afresh by the C
allocator and every page faults on first touch, which measured up to 3x the
cost of the copy that fills it.  Temporaries that never leave a kernel call
(columns, transformed tiles, GEMM outputs that are copied on) therefore live in
per-thread buffers that are kept and reused across calls (:func:`scratch`).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: Below this many bytes a job runs on the calling thread (a hand-off costs ~20 us).
MIN_PARALLEL_BYTES = 1 << 18
#: The same for pure data movement (copies, overlap-adds).  Measured with the conv suite
#: on 2 cores: copies that alternate with BLAS calls ran as fast or faster on one thread
#: at every layer size (memory-bound, and the pool's threads wake while OpenBLAS's are
#: still spinning), so only arithmetic-heavy jobs (depthwise taps) go to the pool.
MIN_PARALLEL_COPY_BYTES = 1 << 30

_threads = max(1, min(8, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None


def set_threads(n: int) -> None:
    """Use ``n`` threads for the kernels' copies and transforms (1 = no pool)."""
    global _threads, _pool
    n = max(1, int(n))
    if n != _threads and _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _threads = n


def get_threads() -> int:
    return _threads


def _splits(size: int, parts: int) -> list[slice]:
    parts = max(1, min(parts, size))
    bounds = [size * i // parts for i in range(parts + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(parts)]


def parallel(fn: Callable[[slice], object], size: int, nbytes: int,
             copy: bool = False) -> None:
    """Call ``fn(part)`` for contiguous slices covering ``range(size)``, on the pool.

    ``nbytes`` is the job's size; small jobs (below :data:`MIN_PARALLEL_BYTES`, or
    :data:`MIN_PARALLEL_COPY_BYTES` for a ``copy`` job), or a pool of one, run inline.
    """
    global _pool
    limit = MIN_PARALLEL_COPY_BYTES if copy else MIN_PARALLEL_BYTES
    if _threads == 1 or size < 2 or nbytes < limit:
        fn(slice(0, size))
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(_threads, thread_name_prefix="convprop")
    parts = _splits(size, _threads)
    futures = [_pool.submit(fn, part) for part in parts[1:]]
    fn(parts[0])
    for f in futures:
        f.result()


def split_axis(shape: tuple[int, ...]) -> int:
    """The first axis (not the last) long enough to give every thread a part."""
    for axis, size in enumerate(shape[:-1]):
        if size >= _threads:
            return axis
    return 0


def copy(dst: np.ndarray, src: np.ndarray, axis: int | None = None,
         eager: bool = False) -> np.ndarray:
    """``dst[...] = src`` split along ``axis`` (default :func:`split_axis`) over the pool.

    ``eager`` splits it from :data:`MIN_PARALLEL_BYTES` on, like an arithmetic job:
    for kernels that make no BLAS calls (measured: depthwise's copies gain from it)."""
    if axis is None:
        axis = split_axis(dst.shape)
    lead = (slice(None),) * axis

    def part(sl: slice) -> None:
        np.copyto(dst[lead + (sl,)], src[lead + (sl,)])

    parallel(part, dst.shape[axis], dst.nbytes, copy=not eager)
    return dst


_local = threading.local()


def scratch(slot: str, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array in this thread's reusable buffer ``slot``.

    The caller must be done with it before asking for ``slot`` again, and must
    never return it (or a view of it) from a kernel.
    """
    bufs = _local.__dict__.setdefault("bufs", {})
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    buf = bufs.get(slot)
    if buf is None or buf.nbytes < nbytes:
        bufs[slot] = buf = np.empty(max(nbytes, 64), dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(tuple(shape))


def release_scratch() -> None:
    """Free this thread's scratch buffers."""
    _local.__dict__.pop("bufs", None)

"""Compiled (Numba) convolution algorithms, and the rule that decides when they run.

Importing this package imports no Numba: each algorithm compiles its kernels on
its first call (cached on disk by Numba afterwards; see :mod:`._common`), so a
process that never runs a large enough convolution never loads Numba.

* :data:`DEPTHWISE` (:class:`~.depthwise.Depthwise`, ``numba_depthwise``):
  ``groups == C == O``, any kernel, stride, dilation and padding.
* :data:`IM2COL` (:class:`~.im2col.Im2colGemm`, ``numba_im2col``): every shape.

Both handle 1-D, 2-D and 3-D convolutions in float32 and float64.  :func:`choose`
takes the plan of the NumPy backend and swaps in a compiled algorithm for each pass
where one supports the convolution and was measured faster.
"""

from __future__ import annotations

from ..spec import Algorithm, ConvSpec, Plan
from ..subgrid import Subgrid
from .depthwise import Depthwise
from .im2col import Im2colGemm

DEPTHWISE = Depthwise()
IM2COL = Im2colGemm()
SUBGRID = Subgrid()

#: The compiled algorithms, most specialised first.
ALGORITHMS: tuple[Algorithm, ...] = (DEPTHWISE, IM2COL, SUBGRID)

#: Below this many multiply-adds (x2) in the forward a convolution stays on the fallback.
#: Per call the compiled kernels were faster at every size measured (forward + both
#: gradients, float32, CPU time: 0.2-0.7x the NumPy path from 162 flops to 38 Mflops),
#: but the first compiled call of a process costs 0.2-2.5 s (importing Numba and SciPy,
#: loading the kernels from Numba's cache) or, with no cache yet, tens of seconds of
#: compiling.  Below 1 Mflop a call saves under 0.2 ms, so thousands of calls would be
#: needed to repay that; ``convprop demo`` (a 3x3 input and a 2x2 kernel: 32 flops) and
#: the explainers' worked examples sit far below it and never load Numba.
MIN_FLOPS = 1_000_000

__all__ = ["ALGORITHMS", "DEPTHWISE", "IM2COL", "MAX_DEPTH", "MIN_FLOPS", "choose", "compiled_for"]


#: Keep the fallback for convolutions whose per-group product is this deep (``C/G * taps``):
#: there the NumPy backend's two-thread BLAS GEMM (and its flat / Winograd paths) beat one
#: single-threaded product per thread.  Measured with ``python benchmarks/conv_suite.py
#: --backend numba`` and ``--backend numpy`` one after the other on a quiet 2-core machine
#: (forward + backward, ratio to PyTorch, numba / numpy): resnet14 (depth 2304) 1.66 / 1.42,
#: resnet7 (4608) 1.68 / 1.16, resnet28 (1152) 1.51 / 1.49, resnet56 (576) 1.21 / 2.02.
MAX_DEPTH = 2048


def compiled_for(spec: ConvSpec) -> Algorithm | None:
    """The compiled algorithm for ``spec``, or None to keep the fallback.

    Measured on every layer of the conv suite (forward + backward, float32, ratio to
    PyTorch, compiled / NumPy, see :data:`MAX_DEPTH`): ``numba_depthwise`` wins on the
    depthwise layer (1.10 / 3.66); ``numba_im2col`` wins on every layer except 1x1
    kernels (NumPy's ``pointwise`` is one plain matrix product: 1.60 / 1.17) and deep
    products (:data:`MAX_DEPTH`).
    """
    if spec.flops < MIN_FLOPS:
        return None
    if not spec.depthwise and (spec.taps == 1 or spec.cg * spec.taps >= MAX_DEPTH):
        return None
    for algo in ALGORITHMS:
        if algo.supports(spec):
            return algo
    return None


def choose(spec: ConvSpec, fallback: Plan) -> Plan:
    """The plan to run ``spec`` with: the compiled algorithm of :func:`compiled_for` for
    all three passes, or ``fallback`` unchanged where there is none.

    The compiled algorithms keep no state between passes; they were measured on whole
    forward + backward steps (not pass by pass), so a plan is never mixed.
    """
    algo = compiled_for(spec)
    if algo is None:
        return fallback
    return Plan(forward=algo, input_grad=algo, weight_grad=algo)

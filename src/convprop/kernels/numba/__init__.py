"""Compiled (Numba) convolution algorithms, and the rule that decides when they run.

Importing this package imports no Numba: each algorithm compiles its kernels on
its first call (cached on disk by Numba afterwards; see :mod:`._common`), so a
process that never runs a large enough convolution never loads Numba.

* :class:`~.depthwise.Depthwise` (``numba_depthwise``): ``groups == C == O``.
* :class:`~.im2col.Im2colGemm` (``numba_im2col``): every shape.

:func:`choose` takes the plan of the NumPy backend and swaps in a compiled
algorithm for each pass where one supports the convolution and was measured
faster (``benchmarks/numba_layers.py``).
"""

from __future__ import annotations

from ..spec import Algorithm, ConvSpec, Plan
from .depthwise import Depthwise
from .im2col import Im2colGemm

DEPTHWISE = Depthwise()
IM2COL = Im2colGemm()

#: The compiled algorithms, most specialised first.
ALGORITHMS: tuple[Algorithm, ...] = (DEPTHWISE, IM2COL)

#: Below this many multiply-adds (x2) in the forward, a convolution stays on the NumPy
#: backend: compiling (or loading from the cache) costs more than it could ever save, and
#: ``convprop demo``'s convolutions must never compile anything.
MIN_FLOPS = 1_000_000

__all__ = ["ALGORITHMS", "DEPTHWISE", "IM2COL", "MIN_FLOPS", "choose"]


def compiled_for(spec: ConvSpec) -> Algorithm | None:
    """The compiled algorithm measured fastest for ``spec``, or None to keep the fallback."""
    if spec.flops < MIN_FLOPS:
        return None
    for algo in ALGORITHMS:
        if algo.supports(spec):
            return algo
    return None


def choose(spec: ConvSpec, fallback: Plan) -> Plan:
    """The plan to run: the compiled algorithm for every pass it is measured faster on,
    else ``fallback``'s algorithm for that pass."""
    algo = compiled_for(spec)
    if algo is None:
        return fallback
    return Plan(forward=algo, input_grad=algo, weight_grad=algo)

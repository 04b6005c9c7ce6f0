"""Compiled (Numba) convolution algorithms, and the rule that decides when they run.

Importing this package imports no Numba: each algorithm compiles its kernels on
its first call (cached on disk by Numba afterwards; see :mod:`._common`), so a
process that never runs a large enough convolution never loads Numba.

* :data:`DEPTHWISE` (:class:`~.depthwise.Depthwise`, ``numba_depthwise``):
  ``groups == C == O``, any kernel, stride, dilation and padding.
* :data:`WINOGRAD` (:class:`~.winograd.WinogradF43`, ``numba_winograd``): 2-D 3x3
  kernels at stride 1 without dilation (any padding and groups), Winograd F(4x4, 3x3).
* :data:`IM2COL` (:class:`~.im2col.Im2colGemm`, ``numba_im2col``): every shape.
* :data:`SUBGRID` (:class:`~convprop.kernels.subgrid.Subgrid`, ``subgrid``): dilated
  convolutions as dense ones on interleaved sub-grids, each planned by this chooser.
* :data:`DIRECT` (:class:`~.direct.Direct`, ``numba_direct``): every shape; chosen for
  small-channel layers (:func:`direct_worthwhile`).

All handle float32 and float64; depthwise and im2col 1-D, 2-D and 3-D convolutions.  :func:`choose`
takes the plan of the NumPy backend and swaps in a compiled algorithm for each pass
where one supports the convolution and was measured faster.
"""

from __future__ import annotations

from ..spec import Algorithm, ConvSpec, Plan
from ..subgrid import Subgrid
from .depthwise import Depthwise
from .direct import Direct
from .im2col import Im2colGemm
from .winograd import WinogradF43

DEPTHWISE = Depthwise()
WINOGRAD = WinogradF43()
IM2COL = Im2colGemm()
SUBGRID = Subgrid()
DIRECT = Direct()

#: The compiled algorithms, most specialised first.
ALGORITHMS: tuple[Algorithm, ...] = (DEPTHWISE, WINOGRAD, IM2COL, SUBGRID, DIRECT)

#: Below this many multiply-adds (x2) in the forward a convolution stays on the fallback.
#: Per call the compiled kernels were faster at every size measured (forward + both
#: gradients, float32, CPU time: 0.2-0.7x the NumPy path from 162 flops to 38 Mflops),
#: but the first compiled call of a process costs 0.2-2.5 s (importing Numba and SciPy,
#: loading the kernels from Numba's cache) or, with no cache yet, tens of seconds of
#: compiling.  Below 1 Mflop a call saves under 0.2 ms, so thousands of calls would be
#: needed to repay that; ``convprop demo`` (a 3x3 input and a 2x2 kernel: 32 flops) and
#: the explainers' worked examples sit far below it and never load Numba.
MIN_FLOPS = 1_000_000

__all__ = ["ALGORITHMS", "DEPTHWISE", "DIRECT", "IM2COL", "MAX_DEPTH", "MIN_FLOPS", "SUBGRID",
           "WINOGRAD", "choose", "compiled_for", "direct_worthwhile"]


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
    for algo in (DEPTHWISE, IM2COL):
        if algo.supports(spec):
            return algo
    return None


#: ``numba_direct`` takes 2-D stride-1 layers whose per-group weight has at most this many
#: elements and whose outputs at most :data:`DIRECT_MAX_POSITIONS` positions per sample.
DIRECT_MAX_WEIGHT = 8192
DIRECT_MAX_POSITIONS = 28 * 28
#: ... and their input gradient too where a group has at least this many input channels
#: (one block of four computed per pass; below it ``numba_im2col``'s input gradient).
DIRECT_INPUT_GRAD_CHANNELS = 4


def direct_worthwhile(spec: ConvSpec) -> bool:
    """Whether ``numba_direct`` runs the forward and weight gradient (and the input gradient
    with :data:`DIRECT_INPUT_GRAD_CHANNELS`; else ``numba_im2col``'s).  Measured pass by
    pass on ``benchmarks/decompositions.py``'s layers (float32, 1 thread, CPU time of a
    shared machine, two runs, ms, direct / im2col): lenet5x5b forward 0.90 / 3.1-3.3,
    weight gradient 1.46-1.54 / 3.5-3.8, input gradient 1.61-1.71 / 1.78-1.85; the
    training models' 8->16 at 14x14 1.5-1.7 / 2.7-3.9, 1.8-2.5 / 3.9-4.0, 1.3-2.1 /
    1.8-2.3; 16->32 at 4x4 0.58-0.82 / 1.3-1.9, 0.96-1.19 / 1.7-2.0, 0.57-0.91 / 0.61-0.88;
    one input channel (lenet5x5, 1->8 at 28x28, 1->16 at 8x8): forward 0.34 / 1.1, 0.6 /
    1.15, 0.18 / 0.18-0.29, weight gradient 0.5 / 1.2, 0.8 / 1.1, 0.2 / 0.2-0.3, but input
    gradient 0.8 / 0.6, 1.2-1.4 / 0.7, 0.24-0.33 / 0.11-0.18.  It lost at 32x32 outputs
    (cifar3x3in 2.01 / 1.85 forward, 2.12 / 1.79 weight gradient), on deep weights (seq1d
    8.6 / 3.3; cifar3x3, dilated3x3) and strided layers (its row-by-row path: 20x slower)."""
    return (spec.nd == 2 and all(s == 1 for s in spec.stride) and spec.taps > 1
            and not spec.depthwise and DIRECT.supports(spec)
            and spec.og * spec.cg * spec.taps <= DIRECT_MAX_WEIGHT
            and spec.positions <= DIRECT_MAX_POSITIONS)


def choose(spec: ConvSpec, fallback: Plan) -> Plan:
    """The plan to run ``spec`` with: the compiled algorithm of :func:`compiled_for` for
    all three passes, or ``fallback`` unchanged where there is none.

    The compiled algorithms keep no state between passes; they were measured on whole
    forward + backward steps (not pass by pass), so a plan is never mixed -- except the
    small-channel plan of :func:`direct_worthwhile`, measured pass by pass.
    """
    if spec.flops >= MIN_FLOPS and direct_worthwhile(spec):
        dx = DIRECT if spec.cg >= DIRECT_INPUT_GRAD_CHANNELS else IM2COL
        return Plan(forward=DIRECT, input_grad=dx, weight_grad=DIRECT)
    algo = compiled_for(spec)
    if algo is None:
        return fallback
    return Plan(forward=algo, input_grad=algo, weight_grad=algo)

"""Compiled (Numba) convolution algorithms, and the rule that decides when they run.

Importing this package imports no Numba: each algorithm compiles its kernels on
its first call (cached on disk by Numba afterwards; see :mod:`._common`), so a
process that never runs a large enough convolution never loads Numba.

* :data:`DEPTHWISE` (:class:`~.depthwise.Depthwise`, ``numba_depthwise``):
  ``groups == C == O``, any kernel, stride, dilation and padding.
* :data:`WINOGRAD` (:class:`~.winograd.WinogradF43`, ``numba_winograd``): 2-D 3x3 and
  3-D KDx3x3 kernels at stride 1 without dilation (any padding and groups), Winograd
  F(4x4, 3x3) per depth tap.
* :data:`IM2COL` (:class:`~.im2col.Im2colGemm`, ``numba_im2col``): every shape.

All handle float32 and float64; depthwise and im2col also 1-D convolutions.  :func:`choose`
takes the plan of the NumPy backend and swaps in a compiled algorithm for each pass
where one supports the convolution and was measured faster.
"""

from __future__ import annotations

from ..spec import Algorithm, ConvSpec, Plan
from .depthwise import Depthwise
from .im2col import Im2colGemm
from .winograd import WinogradF43

DEPTHWISE = Depthwise()
WINOGRAD = WinogradF43()
IM2COL = Im2colGemm()

#: The compiled algorithms, most specialised first.
ALGORITHMS: tuple[Algorithm, ...] = (DEPTHWISE, WINOGRAD, IM2COL)

#: Below this many multiply-adds (x2) in the forward a convolution stays on the fallback.
#: Per call the compiled kernels were faster at every size measured (forward + both
#: gradients, float32, CPU time: 0.2-0.7x the NumPy path from 162 flops to 38 Mflops),
#: but the first compiled call of a process costs 0.2-2.5 s (importing Numba and SciPy,
#: loading the kernels from Numba's cache) or, with no cache yet, tens of seconds of
#: compiling.  Below 1 Mflop a call saves under 0.2 ms, so thousands of calls would be
#: needed to repay that; ``convprop demo`` (a 3x3 input and a 2x2 kernel: 32 flops) and
#: the explainers' worked examples sit far below it and never load Numba.
MIN_FLOPS = 1_000_000

__all__ = ["ALGORITHMS", "DEPTHWISE", "IM2COL", "MAX_DEPTH", "MIN_FLOPS", "WINOGRAD",
           "WINOGRAD_MIN_CHANNELS", "choose", "compiled_for", "winograd_worthwhile"]


#: Keep the fallback for convolutions whose per-group product is this deep (``C/G * taps``):
#: there the NumPy backend's two-thread BLAS GEMM (and its flat / Winograd paths) beat one
#: single-threaded product per thread.  Measured with ``python benchmarks/conv_suite.py
#: --backend numba`` and ``--backend numpy`` one after the other on a quiet 2-core machine
#: (forward + backward, ratio to PyTorch, numba / numpy): resnet14 (depth 2304) 1.66 / 1.42,
#: resnet7 (4608) 1.68 / 1.16, resnet28 (1152) 1.51 / 1.49, resnet56 (576) 1.21 / 2.02.
MAX_DEPTH = 2048


#: Fewest input channels (times the kernel depth, in 3-D) and output channels per group at
#: which ``numba_winograd`` runs a layer: the depth and height of its per-point products.
#: Below, the transforms (per value, not per multiply) outweigh the multiplies they save.
WINOGRAD_MIN_CHANNELS = 32


def winograd_worthwhile(spec: ConvSpec) -> bool:
    """Whether ``numba_winograd`` runs ``spec``: ungrouped 3x3 (3-D: KDx3x3) stride-1 layers
    whose per-point products are at least :data:`WINOGRAD_MIN_CHANNELS` deep (``C * KD``)
    and high (``O``), and whose per-group product is shallower than :data:`MAX_DEPTH`.

    Measured with ``PYTHONPATH=src python benchmarks/numba_layers.py --threads 1 --clock cpu
    --numpy --algorithms numba_winograd,numba_im2col --layers cifar3x3in,cifar3x3,resnet56,
    resnet28,resnet14,resnet7,vol3d`` (forward + backward, float32, ratio to PyTorch in one
    process; CPU clock on one thread because the 2 cores were shared with other work, which
    made wall-clock ratios swing 2-4x), winograd / im2col / NumPy backend: cifar3x3 (32->64
    at 32x32) 0.92 / 1.65 / 2.83, resnet56 0.65 / 1.59 / 3.54, resnet28 0.91 / 1.46 / 2.61,
    vol3d (16->32, 3x3x3: products 48 deep) 1.20 / 2.29 / 3.34; lost where it is not
    chosen: cifar3x3in (3 channels) 1.80 / 0.77 / 1.95, resnet14 (depth 2304) 1.51 / 1.45 /
    1.76, resnet7 (7x7 outputs, 512 channels: the transformed weights are 38 MB) 2.36 /
    1.46 / 1.35.  Wall clock, 2 threads, same machine (noisier), winograd / im2col:
    cifar3x3 1.37 / 1.56, resnet56 0.55 / 1.27, resnet28 1.51 / 1.46, vol3d 1.61 / 2.00.
    """
    kd = spec.kernel[0] if spec.nd == 3 else 1
    return (WINOGRAD.supports(spec) and spec.groups == 1
            and min(spec.c * kd, spec.o) >= WINOGRAD_MIN_CHANNELS
            and spec.cg * spec.taps < MAX_DEPTH)


def compiled_for(spec: ConvSpec) -> Algorithm | None:
    """The compiled algorithm for ``spec``, or None to keep the fallback.

    Measured on every layer of the conv suite (forward + backward, float32, ratio to
    PyTorch, compiled / NumPy, see :data:`MAX_DEPTH`): ``numba_depthwise`` wins on the
    depthwise layer (1.10 / 3.66); ``numba_winograd`` on the 3x3 layers of
    :func:`winograd_worthwhile`; ``numba_im2col`` on every other layer except 1x1
    kernels (NumPy's ``pointwise`` is one plain matrix product: 1.60 / 1.17) and deep
    products (:data:`MAX_DEPTH`).
    """
    if spec.flops < MIN_FLOPS:
        return None
    if winograd_worthwhile(spec):
        return WINOGRAD
    if not spec.depthwise and (spec.taps == 1 or spec.cg * spec.taps >= MAX_DEPTH):
        return None
    for algo in (DEPTHWISE, IM2COL):
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

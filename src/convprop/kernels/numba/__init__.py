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
* :data:`DIRECT` (:class:`~.direct.Direct`, ``numba_direct``): every shape; chosen for
  stride-1 layers with shallow products (:func:`direct_worthwhile`).

All handle float32 and float64; depthwise and im2col also 1-D convolutions.  :func:`choose`
takes the plan of the NumPy backend and swaps in a compiled algorithm for each pass
where one supports the convolution and was measured faster.
"""

from __future__ import annotations

from ..spec import Algorithm, ConvSpec, Plan
from .depthwise import Depthwise
from .direct import Direct
from .im2col import Im2colGemm
from .winograd import WinogradF43

DEPTHWISE = Depthwise()
WINOGRAD = WinogradF43()
IM2COL = Im2colGemm()
DIRECT = Direct()

#: The compiled algorithms, most specialised first.
ALGORITHMS: tuple[Algorithm, ...] = (DEPTHWISE, WINOGRAD, IM2COL, DIRECT)

#: Below this many multiply-adds (x2) in the forward a convolution stays on the fallback.
#: Per call the compiled kernels were faster at every size measured (forward + both
#: gradients, float32, CPU time: 0.2-0.7x the NumPy path from 162 flops to 38 Mflops),
#: but the first compiled call of a process costs 0.2-2.5 s (importing Numba and SciPy,
#: loading the kernels from Numba's cache) or, with no cache yet, tens of seconds of
#: compiling.  Below 1 Mflop a call saves under 0.2 ms, so thousands of calls would be
#: needed to repay that; ``convprop demo`` (a 3x3 input and a 2x2 kernel: 32 flops) and
#: the explainers' worked examples sit far below it and never load Numba.
MIN_FLOPS = 1_000_000

__all__ = ["ALGORITHMS", "DEPTHWISE", "DIRECT", "IM2COL", "MAX_DEPTH", "MIN_FLOPS",
           "WINOGRAD", "WINOGRAD_MIN_CHANNELS", "choose", "compiled_for", "direct_input_grad",
           "direct_worthwhile", "winograd_worthwhile"]


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


#: ``numba_direct`` runs the forward and weight gradient of 2-D and 3-D stride-1 layers whose
#: per-group product is at most this deep (``C/G * taps``) ...
DIRECT_MAX_DEPTH = 576
#: ... and whose per-group weight has at most this many elements (``O/G * C/G * taps``).
DIRECT_MAX_WEIGHT = 64 * 576
#: Its input gradient only for outputs of at most this many positions per sample, weights
#: of at most this many elements per group and at least this many input channels per
#: group (one block of four per pass); elsewhere ``numba_im2col``'s measured faster.
DIRECT_INPUT_GRAD_POSITIONS = 28 * 28
DIRECT_INPUT_GRAD_WEIGHT = 8192
DIRECT_INPUT_GRAD_CHANNELS = 4


def direct_worthwhile(spec: ConvSpec) -> bool:
    """Whether ``numba_direct`` runs the forward and weight gradient (and, see
    :func:`direct_input_grad`, the input gradient).

    Measured pass by pass (``python benchmarks/decompositions.py --passes --threads 1
    --clock cpu --layers ...``; float32, CPU time on a shared machine, ms, direct / im2col;
    ranges over 2-3 runs):
    forward lenet5x5b 0.59-0.90 / 3.1-3.3, 8->16 at 14x14 0.9-1.7 / 2.7-3.9, 16->32 at
    4x4 0.45-0.82 / 1.3-1.9, one input channel (lenet5x5, 1->8 at 28x28, 1->16 at 8x8)
    0.35 / 1.1, 0.4-0.6 / 1.15, 0.16-0.18 / 0.18-0.29, cifar3x3in 0.96-0.99 / 1.2-2.2,
    vol3d 16-22 / 23-29, dilated3x3 14-19 / 17-22, resnet56 53 / 68, cifar3x3 24-26 /
    24-27; weight gradient lenet5x5b 0.63 / 3.5-4.0, cifar3x3in 1.1-1.9 / 1.3-2.4, vol3d
    14-15 / 23-24, dilated3x3 16-20 / 17-22, cifar3x3 22-26 / 23-30.  Deeper products lost
    (resnet28, depth 1152: 59 / 52 forward), as did 1-D (seq1d 5.3-8.6 / 3.3-3.7) and
    strided layers (the row-by-row path: 20x slower)."""
    return (spec.nd >= 2 and all(s == 1 for s in spec.stride) and spec.taps > 1
            and not spec.depthwise and DIRECT.supports(spec)
            and spec.cg * spec.taps <= DIRECT_MAX_DEPTH
            and spec.og * spec.cg * spec.taps <= DIRECT_MAX_WEIGHT)


def direct_input_grad(spec: ConvSpec) -> bool:
    """Whether a :func:`direct_worthwhile` layer takes ``numba_direct``'s input gradient too:
    measured faster on lenet5x5b (1.3-1.7 / 1.8-2.1 ms) and the 8->16 training layer
    (1.3-2.1 / 1.5-2.3), tied on 16->32 at 4x4; slower with one input channel (lenet5x5
    0.6-0.9 / 0.45-0.7, 1->8 at 28x28 0.9-1.4 / 0.7-0.9) and on the larger layers
    (cifar3x3in 2.5-3.4 / 1.1-1.8, dilated3x3 14.6-20 / 13-15, cifar3x3 25-28 / 18-22;
    dilated3x3: its whole step took 63 ms with the direct input gradient, 50 with im2col)."""
    return (spec.cg >= DIRECT_INPUT_GRAD_CHANNELS
            and spec.positions <= DIRECT_INPUT_GRAD_POSITIONS
            and spec.og * spec.cg * spec.taps <= DIRECT_INPUT_GRAD_WEIGHT)


def choose(spec: ConvSpec, fallback: Plan) -> Plan:
    """The plan to run ``spec`` with: the compiled algorithm of :func:`compiled_for` for
    all three passes, or ``fallback`` unchanged where there is none.

    The compiled algorithms keep no state between passes; they were measured on whole
    forward + backward steps (not pass by pass), so a plan is never mixed -- except the
    small-channel plan of :func:`direct_worthwhile`, measured pass by pass.  Where both
    :func:`winograd_worthwhile` and :func:`direct_worthwhile` hold, Winograd runs: its
    forward + backward measured faster than the direct plan on each such suite layer
    (ratio to PyTorch, CPU clock on one thread, ``benchmarks/numba_layers.py`` and
    ``benchmarks/decompositions.py``: cifar3x3 0.92 / 1.40, resnet56 0.65 / 1.57, vol3d
    1.20 / 1.87).
    """
    if spec.flops >= MIN_FLOPS and not winograd_worthwhile(spec) and direct_worthwhile(spec):
        dx = DIRECT if direct_input_grad(spec) else IM2COL
        return Plan(forward=DIRECT, input_grad=dx, weight_grad=DIRECT)
    algo = compiled_for(spec)
    if algo is None:
        return fallback
    return Plan(forward=algo, input_grad=algo, weight_grad=algo)

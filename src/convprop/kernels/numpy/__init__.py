"""The NumPy backend: pure-ndarray algorithms (the reference) and the one place that picks.

Each algorithm is a leaf module holding one object of the
:class:`~convprop.kernels.spec.Algorithm` protocol; the helpers they share live in
:mod:`._common`.  :func:`choose` decides all three passes of a convolution and is
the only place where one algorithm's pass goes to another (a Winograd or GEMM
forward with the flat path's input gradient).

The rules were set by measurement (``python benchmarks/conv_suite.py``) against the
general GEMM path:

* 1x1 kernels: a plain matrix product, no window copy at all (``pointwise``);
* one input and one output channel per group (depthwise): per-tap
  multiply-accumulate (``depthwise``), which does ``T`` times less work than
  GEMM on block-diagonal weights;
* 3x3 (3x3x3) stride-1 undilated ungrouped layers with enough channels and
  large enough images for the transforms to pay (:func:`winograd_worthwhile`):
  Winograd F(4x4, 3x3), for float32/float64 data only (its transforms amplify
  rounding: in float16 the error is ~25x GEMM's); its input gradient is the flat
  path's (measured faster, see :func:`choose`);
* other stride-1 2-D and 3-D layers with short columns (``C * prod(kernel)`` up
  to :data:`MAX_COLUMN`): im2col on flattened channel-major planes (``flat``), whose
  copies run along whole planes; it beat GEMM on every such suite layer;
* long kernels (many taps) at stride 1 with SciPy present: FFT;
* everything else: im2col + GEMM; its stride-1 2-D/3-D input gradients go to the
  flat path where planes carry few junk positions (:func:`flat_input_grad_worthwhile`).
"""

from __future__ import annotations

import math

import numpy as np

from ..spec import Algorithm, ConvSpec, Plan
from .depthwise import DEPTHWISE
from .fft import FFT
from .flat import FLAT
from .gemm import GEMM
from .pointwise import POINTWISE
from .winograd import WINOGRAD

#: Every algorithm of this backend, in the order measured selection tries them.
ALGORITHMS: tuple[Algorithm, ...] = (GEMM, POINTWISE, WINOGRAD, FFT, DEPTHWISE, FLAT)

#: Longest column (``C * prod(kernel)``, all input channels) sent to the flat path;
#: measured with the conv suite.
MAX_COLUMN = 640
#: Largest ratio of padded-input positions to outputs at which a GEMM layer's stride-1
#: input gradient goes to the flat path (see :func:`flat_input_grad_worthwhile`).
MAX_INPUT_GRAD_WASTE = 1.4
#: Fewest taps at which the FFT pays (see :func:`fft_worthwhile`).
FFT_MIN_TAPS = 48


def winograd_precise(dtype: np.dtype) -> bool:
    """Whether Winograd's transforms keep enough precision in ``dtype``."""
    return np.dtype(dtype) in (np.float32, np.float64)


def winograd_worthwhile(spec: ConvSpec) -> bool:
    """Measured with the conv suite (forward + backward, the Winograd forward and weight
    gradient with the flat path's input gradient): 2-D layers with >= 64 channels on both
    sides and outputs of 28x28 or more (16x64x56x56: 94 ms against the flat path's 102;
    16x128x28x28: 67 against GEMM's 80; 16x256x14x14 lost, 67 against 64, and 32->64
    channels at 32x32 lost to the flat path, 46 against 41); 3-D layers with >= 24
    channels (below that the flat path takes them, and won on the suite's 16-channel
    layer, 34 against 42 ms)."""
    if spec.nd == 3:
        return min(spec.c, spec.o) >= 24
    return spec.nd == 2 and min(spec.c, spec.o) >= 64 and all(s - 2 >= 28 for s in spec.padded)


def flat_worthwhile(spec: ConvSpec) -> bool:
    """2-D and 3-D layers with short columns.  Measured with the conv suite: the flat path
    beat GEMM (and Winograd) from LeNet's 1- and 6-channel 5x5 layers up to 64-channel
    3x3 layers at 56x56, dilated and 3-D; GEMM won with 128 channels and more (the GEMM
    dominates, and the junk columns between rows add to it) and in 1-D (long rows
    already copy well)."""
    return spec.nd >= 2 and spec.c * spec.taps <= MAX_COLUMN


def fft_worthwhile(spec: ConvSpec) -> bool:
    """Measured: 63- and 127-tap 1-D and 11x11 kernels won, 31 taps lost to GEMM."""
    return spec.taps >= FFT_MIN_TAPS


def flat_input_grad_worthwhile(spec: ConvSpec) -> bool:
    """Whether the flat path's input gradient should serve a layer planned on GEMM:
    stride 1, 2-D or 3-D, and few junk positions per plane (``prod(padded) / prod(out)``).
    Measured against GEMM's input gradient (float32, 2 threads): 16x256 at 14x14 22.1
    against 25.6 ms, 16x128 at 28x28 25.9 against 29.2, 8x96 at 14x14 2.9 against 3.3,
    2x32 at 16x32x32 (3-D) 20.8 against 37.6; GEMM won at 7x7 (junk ratio 1.65: 26.0
    against 21.9) and in 1-D (tied, or lost with 31 taps)."""
    return (spec.nd >= 2 and all(s == 1 for s in spec.stride)
            and math.prod(spec.padded) <= MAX_INPUT_GRAD_WASTE * spec.positions)


def candidates(spec: ConvSpec) -> list[Algorithm]:
    """The algorithms measured selection may time for ``spec``: those that support it
    (Winograd only where its precision holds, as in :func:`choose`)."""
    return [a for a in ALGORITHMS if a.supports(spec)
            and (a is not WINOGRAD or winograd_precise(spec.dtype))]


def choose(spec: ConvSpec) -> Plan:
    """The plan for ``spec``: the algorithm of each of the three passes (module docstring).

    Hand-overs, decided here only: a Winograd forward takes the flat path's input
    gradient (the Winograd forward on ``gy`` padded by 2 measured slower than the flat
    path's on the 3x3 suite layers from 32x32 to 56x56 and even 14x14, 21.6 against
    22.5 ms: the padded output grid rounds up to whole tiles and the transforms cost as
    much as the copies they save; the flat path also beat GEMM's on all of them, e.g.
    16x128x28x28 25.7 against 29.1 ms); a GEMM layer takes it where
    :func:`flat_input_grad_worthwhile` holds.
    """
    if POINTWISE.supports(spec):
        return Plan(POINTWISE, POINTWISE, POINTWISE)
    if DEPTHWISE.supports(spec):
        return Plan(DEPTHWISE, DEPTHWISE, DEPTHWISE)
    if WINOGRAD.supports(spec) and winograd_precise(spec.dtype) and winograd_worthwhile(spec):
        return Plan(WINOGRAD, FLAT, WINOGRAD)
    if FLAT.supports(spec) and flat_worthwhile(spec):
        return Plan(FLAT, FLAT, FLAT)
    if FFT.supports(spec) and fft_worthwhile(spec):
        return Plan(FFT, FFT, FFT)
    if flat_input_grad_worthwhile(spec):
        return Plan(GEMM, FLAT, GEMM)
    return Plan(GEMM, GEMM, GEMM)

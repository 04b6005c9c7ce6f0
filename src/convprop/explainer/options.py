"""Limits and options of ``convprop explain``: size checks, argument types, option rules.

:func:`check_size` refuses a shape whose derivation would not read well and names the
nearest input size that works; :func:`options` turns the command's options into
:func:`.derivation.explain`'s arguments, refusing combinations that make no sense
(one line each; the CLI exits with status 2).
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Any

from ..seed import Geometry
from .layout import Layout

MAX_OUTPUTS = 64
"""Largest number of outputs z written out (all channels): beyond it the equations stop reading well."""
MAX_KERNEL = 25
"""Largest number of spatial kernel elements (5×5)."""
MAX_WEIGHTS = 64
"""Largest number of weight elements, all channel pairs together."""
MAX_INPUTS = 256


def check_size(layout: Layout | Geometry) -> None:
    """Refuse shapes whose derivation would not read well, naming the nearest size that works."""
    L = layout if isinstance(layout, Layout) else Layout.create(
        layout.input_shape, layout.kernel_shape, layout.stride, layout.padding,
        layout.dilation, layout.divisor)
    problems = _problems(L)
    if problems:
        raise ValueError(f"too large to write out: {' and '.join(problems)}; every equation is "
                         f"printed, so try smaller shapes{_suggest(L)}")


def _problems(L: Layout) -> list[str]:
    nz = math.prod(L.output_shape) * L.out_channels
    nk, nx = math.prod(L.kernel_shape), math.prod(L.input_shape) * L.in_channels
    nw = 0 if L.pooling else nk * L.weight_channels[0] * L.weight_channels[1]
    problems = []
    if nz > MAX_OUTPUTS:
        problems.append(f"{nz} outputs z (at most {MAX_OUTPUTS})")
    if nk > MAX_KERNEL:
        problems.append(f"{_shape(L, L.kernel_shape)} = {nk} kernel elements (at most {MAX_KERNEL})")
    if nw > MAX_WEIGHTS:
        problems.append(f"{nw} weights over all channel pairs (at most {MAX_WEIGHTS})")
    if nx > MAX_INPUTS:
        problems.append(f"{nx} inputs (at most {MAX_INPUTS})")
    return problems


def _shape(L: Layout, p: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in p[:L.nd])


def _suggest(L: Layout) -> str:
    """`` (e.g. --input 8x8)``: the largest input, shrinking the longest side first, that fits."""
    nk = math.prod(L.kernel_shape)
    if nk > MAX_KERNEL or (not L.pooling and nk * math.prod(L.weight_channels) > MAX_WEIGHTS):
        if L.nd == 3:
            return " (e.g. --input 4x4x4 --kernel 2x2x2) or a larger stride"
        return " (e.g. --input 5x5 --kernel 3x3) or a larger stride"
    size = list(L.input_shape[:L.nd])
    while any(n > 1 for n in size):
        size[size.index(max(size))] -= 1  # the longest side first (the first of equals)
        try:
            trial = Layout.create(tuple(size), L.kernel_shape[:L.nd],
                                  L.stride[:L.nd], L.padding[:L.nd], L.dilation[:L.nd],
                                  L.divisor, op=L.op, output_padding=L.output_padding[:L.nd],
                                  channels=(L.in_channels, L.out_channels) if L.multichannel
                                  else None, groups=L.groups)
        except ValueError:
            continue
        if _problems(trial):
            continue
        return f" (the nearest that works: --input {_shape(L, tuple(size))}) or a larger stride"
    return " or a larger stride"


_SIZES = re.compile(r"^\s*(\d+)\s*(?:[x×X*]\s*(\d+)\s*(?:[x×X*]\s*(\d+))?)?\s*$")


def sizes_arg(minimum: int) -> Any:
    """An argparse type: ``'3x2'`` → ``(3, 2)`` (width, height), ``'3x2x2'`` → ``(3, 2, 2)``
    (width, height, depth), ``'5'`` → ``(5,)``; sizes >= minimum."""
    what = "shape" if minimum else "size"

    def parse(s: str) -> tuple[int, ...]:
        m = _SIZES.match(s)
        if not m:
            raise argparse.ArgumentTypeError(
                f"invalid {what} {s!r}: expected WxH (width x height, e.g. 3x3), WxHxD (3-D) or "
                f"one integer")
        out = tuple(int(g) for g in m.groups() if g is not None)
        if any(v < minimum for v in out):
            raise argparse.ArgumentTypeError(f"invalid {what} {s!r}: every size must be >= {minimum}")
        return out

    return parse


def channels_arg(s: str) -> tuple[int, int]:
    """``'2,3'`` → ``(C_in, C_out) = (2, 3)``, both >= 1."""
    m = re.match(r"^\s*(\d+)\s*,\s*(\d+)\s*$", s)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise argparse.ArgumentTypeError(f"invalid channels {s!r}: expected CIN,COUT (e.g. 2,3), "
                                         f"both >= 1")
    return int(m.group(1)), int(m.group(2))


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`explain` from ``convprop explain``'s options.

    Raises ``ValueError`` (one line, exit status 2) for combinations that make no sense.
    """
    pool = args.op != "conv"
    if pool and args.channels is not None:
        raise ValueError(f"--op {args.op} works on one channel: leave out --channels")
    if pool and args.groups != 1:
        raise ValueError(f"--op {args.op} works on one channel: leave out --groups")
    if pool and args.transposed:
        raise ValueError(f"--transposed applies to the convolution, not to --op {args.op}")
    if pool and args.divisor is not None:
        raise ValueError(f"--op {args.op} takes no --divisor (average pooling divides by the "
                         f"window size, max pooling by nothing)")
    if args.transposed and args.divisor == "stride":
        raise ValueError("--transposed with --divisor stride: the stride divisor is eq. 5 of the "
                         "forward convolution; use 'kernel' or a number")
    if any(args.output_padding) and not args.transposed:
        raise ValueError("--output-padding needs --transposed")
    if args.groups != 1 and args.channels is None:
        raise ValueError("--groups needs --channels CIN,COUT")
    if getattr(args, "figure", None) and (args.transposed or args.channels is not None):
        raise ValueError("--figure draws one-channel convolutions and pooling; leave it out with "
                         "--transposed or --channels")
    nd = len(args.input)
    if nd == 3:  # --format html and --animate draw every other kind above
        drawn = [name for name, given in (("--format html", args.format == "html"),
                                          ("--animate", getattr(args, "animate", None)),
                                          ("--figure", getattr(args, "figure", None)))
                 if given]
        if drawn:
            raise ValueError(f"{drawn[0]} draws 1-D and 2-D shapes; a 3-D --input WxHxD is "
                             f"written as text, markdown or latex only")
    kernel = args.kernel if args.kernel is not None else (2,) * nd

    def fit(v: tuple[int, ...], name: str) -> tuple[int, ...]:
        if len(v) not in (1, nd):
            dims = {1: "1-D (one number)", 2: "2-D (WxH)", 3: "3-D (WxHxD)"}[nd]
            raise ValueError(f"--input {'x'.join(map(str, args.input))} is {dims}, so {name} "
                             f"takes one number or {nd}, got {'x'.join(map(str, v))}")
        return v if len(v) == nd else v * nd

    return dict(input_shape=args.input, kernel_shape=fit(kernel, "--kernel"),
                stride=fit(args.stride, "--stride"), padding=fit(args.padding, "--padding"),
                divisor=args.divisor if args.divisor is not None else "kernel",
                dilation=fit(args.dilation, "--dilation"), channels=args.channels,
                groups=args.groups, transposed=args.transposed,
                output_padding=fit(args.output_padding, "--output-padding"),
                op=args.op)

"""Argument types shared by the subcommands' parsers (shapes, sizes, numbers).

Each raises ``argparse.ArgumentTypeError`` with a one-line message naming the rule.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any

_SHAPE = re.compile(r"^\s*(\d+)\s*(?:[x×X*,]\s*(\d+))?\s*$")


def _parse_pair(s: str, minimum: int, what: str) -> tuple[int, int]:
    m = _SHAPE.match(s)
    if not m:
        raise argparse.ArgumentTypeError(
            f"invalid {what} {s!r}: expected WxH (width x height, e.g. 3x3) or one integer")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) is not None else w
    if w < minimum or h < minimum:
        raise argparse.ArgumentTypeError(f"invalid {what} {s!r}: every size must be >= {minimum}")
    return w, h


def shape_arg(s: str) -> tuple[int, int]:
    """``'3x2'`` → ``(3, 2)`` = (width, height); ``'3'`` → ``(3, 3)``; sizes >= 1."""
    return _parse_pair(s, 1, "shape")


def pair_arg(s: str) -> tuple[int, int]:
    """Like :func:`shape_arg` but sizes may be 0 (padding)."""
    return _parse_pair(s, 0, "size")


def positive_float(s: str) -> float:
    return _typed(s, float, lambda v: math.isfinite(v) and v > 0, "a positive number")


def non_negative_int(s: str) -> int:
    return _typed(s, int, lambda v: v >= 0, "a non-negative integer")


def divisor_arg(s: str) -> str | float:
    """``'kernel'``, ``'stride'`` or a positive number (see :func:`convprop.seed.resolve_divisor`)."""
    from .seed import resolve_divisor

    if s in ("kernel", "stride"):
        return s
    try:
        resolve_divisor(s, (1, 1), (1, 1))
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return float(s)


def _typed(s: str, kind: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Any:
    try:
        v = kind(s)
    except ValueError:
        v = None
    if v is None or not ok(v):
        raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}")
    return v

"""Argument types shared by the subcommands' parsers (shapes, sizes, numbers).

Each raises ``argparse.ArgumentTypeError`` with a one-line message naming the rule.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
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


def positive_int(s: str) -> int:
    return _typed(s, int, lambda v: v >= 1, "a positive integer")


def output_file(*suffixes: str) -> Callable[[str], str]:
    """An argument type for a file the command will write, checked before any work starts.

    The directory must exist (nothing is created behind the user's back) and the
    name must end in one of ``suffixes`` (case-insensitive), e.g. ``output_file(".png")``.
    """
    wanted = tuple(s.lower() for s in suffixes)

    def check(s: str) -> str:
        path = Path(s)
        if wanted and path.suffix.lower() not in wanted:
            raise argparse.ArgumentTypeError(
                f"{s!r} must end in {' or '.join(wanted)}")
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{s!r} is a directory; give a file name")
        if not path.parent.is_dir():
            raise argparse.ArgumentTypeError(
                f"cannot write {s!r}: directory {str(path.parent)!r} does not exist")
        return s

    return check


def output_dir(s: str) -> str:
    """An argument type for a directory of outputs: it may be new, but its parent must exist."""
    path = Path(s)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{s!r} exists and is not a directory")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot create {s!r}: directory {str(path.parent)!r} does not exist")
    return s

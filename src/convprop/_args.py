"""Argument types shared by the subcommands' parsers (shapes, sizes, numbers).

Each raises ``argparse.ArgumentTypeError`` with a one-line message naming the rule.
"""

from __future__ import annotations

import argparse
import math
import os
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


def check_output(path: str | os.PathLike | None, option: str, suffixes: tuple[str, ...] = ()) -> None:
    """Refuse a path a command will write, before any work starts (every command, one wording).

    The name must end in one of ``suffixes`` (case-insensitive; any when empty), the
    directory must exist (nothing is created behind the user's back) and be writable,
    and the path must not be a directory.

    Raises:
        ValueError: naming ``option``, the path and the rule it breaks.
    """
    if path is None:
        return
    p = Path(path)
    s = os.fspath(path)
    wanted = tuple(x.lower() for x in suffixes)
    if wanted and p.suffix.lower() not in wanted:
        raise ValueError(f"{option}: {s!r} must end in {' or '.join(wanted)}")
    if p.is_dir():
        raise ValueError(f"{option}: {s!r} is a directory; give a file name")
    folder = p.parent
    if not folder.is_dir():
        raise ValueError(f"{option}: cannot write {s!r}: directory {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"{option}: cannot write {s!r}: permission denied")


def output_file(*suffixes: str) -> Callable[[str], str]:
    """An argument type for a file the command will write: :func:`check_output` at parse time,
    e.g. ``output_file(".png")``."""

    def check(s: str) -> str:
        try:
            check_output(s, "", suffixes)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix(": ")) from None
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

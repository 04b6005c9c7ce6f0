"""Constructor argument checks shared by the layers: one wording for every layer."""

from __future__ import annotations

from typing import Any

from .._windows import _is_int


def size_arg(layer: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, or a ``TypeError``/``ValueError`` naming layer and argument.

    ``Conv2d('3', 8, 3)`` then says "Conv2d: in_channels must be an int, got '3' (str)"
    instead of failing somewhere inside with an unrelated message.
    """
    if not _is_int(value):
        raise TypeError(f"{layer}: {name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{layer}: {name} must be >= {minimum}, got {value}")
    return int(value)

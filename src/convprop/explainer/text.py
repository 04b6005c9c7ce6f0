"""Text-layout helpers shared by the derivation's renderers and ``convprop demo``."""

from __future__ import annotations

from collections.abc import Sequence


def side_by_side(blocks: Sequence[list[str]], gap: int = 6) -> list[str]:
    widths = [max(len(s) for s in b) for b in blocks]
    height = max(len(b) for b in blocks)
    out = []
    for r in range(height):
        parts = [(b[r] if r < len(b) else "").ljust(w) for b, w in zip(blocks, widths)]
        out.append((" " * gap).join(parts).rstrip())
    return out

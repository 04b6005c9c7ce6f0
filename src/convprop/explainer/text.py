"""Text-layout helpers shared by the derivation's renderers and ``convprop demo``: matrices side by
side, printed widths of LaTeX, and breaking long sums and rows over lines."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

LINE_CHARS = 56
"""About how many characters of math fit on one line of an article page (10pt, default margins)."""


def latex_width(s: str) -> float:
    """A rough printed width in characters: subscripts count two thirds, commands nothing."""
    s = re.sub(r"\\(left|right|frac|partial|cdot|quad|bigl|bigr|underbrace|text|operatorname|,)",
               " ", s)
    subs = re.findall(r"_\{([^{}]*)\}", s)
    rest = re.sub(r"_\{[^{}]*\}", "", s)
    return len(re.sub(r"[{}\\ ]", "", rest)) + 0.67 * sum(len(re.sub(r"[{}\\ ]", "", x))
                                                        for x in subs)


def chunks_within(items: Sequence[str], width: float, measure: Callable[[str], float] = len,
                  sep: float = 3) -> list[list[str]]:
    """``items`` in consecutive groups whose measured widths (plus ``sep`` between) stay within
    ``width``; an item wider than ``width`` gets a group of its own."""
    groups: list[list[str]] = []
    used = 0.0
    for item in items:
        w = measure(item)
        if groups and groups[-1] and used + sep + w <= width:
            groups[-1].append(item)
            used += sep + w
        else:
            groups.append([item])
            used = w
    return groups


def side_by_side(blocks: Sequence[list[str]], gap: int = 6) -> list[str]:
    widths = [max(len(s) for s in b) for b in blocks]
    height = max(len(b) for b in blocks)
    out = []
    for r in range(height):
        parts = [(b[r] if r < len(b) else "").ljust(w) for b, w in zip(blocks, widths)]
        out.append((" " * gap).join(parts).rstrip())
    return out


def wrap_sum(s: str, width: int) -> list[str]:
    """``s`` broken into lines of at most ``width`` characters where possible.

    Breaks only before a ``+`` of a sum at the top level or one bracket deep (the
    ``(…)/D`` of eq. 5), so each continuation line starts with ``+ `` and the lines joined
    with spaces give ``s`` back; or after a top-level ``, `` of a list.  A piece with no
    such break stays whole, however long.
    """
    if len(s) <= width:
        return [s]
    cuts, depth = [], 0  # (position where the next line starts, text of the break)
    for n, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif s.startswith(" + ", n) and depth <= 1:
            cuts.append((n, n + 1))  # this line ends at n, the next starts at "+"
        elif s.startswith(", ", n) and depth == 0:
            cuts.append((n + 1, n + 2))
    lines, start = [], 0
    while len(s) - start > width:
        fits = [c for c in cuts if c[0] - start <= width and c[1] > start]
        if not fits:
            later = [c for c in cuts if c[1] > start]
            if not later:
                break
            fits = later[:1]
        end, nxt = fits[-1]
        lines.append(s[start:end])
        start = nxt
    lines.append(s[start:])
    return lines

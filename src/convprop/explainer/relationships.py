"""Dumoulin & Visin's relationships (*A guide to convolution arithmetic for deep learning*, 2016)
instantiated for one shape: ``convprop explain --relationships``.

Per axis, :func:`relationships` says which of the guide's cases the shape is (no
padding and unit strides, half/'same' padding, full padding, non-unit strides,
dilation, pooling), gives the output size from the relationship that applies, and the
transposed convolution's equivalent direct convolution: ``s − 1`` zeros inserted
between the inputs, ``a = (i + 2p − k̂) mod s`` more after, padding ``p' = k̂ − p − 1``,
stride 1, where ``k̂ = k + (k − 1)(d − 1)`` is the dilated kernel size.  For the
transposed convolution itself (``transposed=True``) the same is said of the forward
convolution it is the transpose of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .layout import Layout
from .notation import Block, Eqs, Heading, Para, Plain

# the guide's relationships, numbered as in the paper
CASES = {
    1: "no zero padding, unit strides",
    2: "zero padding, unit strides",
    3: "half ('same') padding, unit strides",
    4: "full padding, unit strides",
    5: "no zero padding, non-unit strides",
    6: "zero padding, non-unit strides",
    7: "pooling",
    15: "dilated convolution",
}
FORMULAS = {
    1: "o = (i - k) + 1",
    2: "o = (i - k) + 2p + 1",
    3: "o = i",
    4: "o = i + (k - 1)",
    5: "o = floor((i - k)/s) + 1",
    6: "o = floor((i + 2p - k)/s) + 1",
    7: "o = floor((i + 2p - k)/s) + 1",
    15: "o = floor((i + 2p - k - (k - 1)(d - 1))/s) + 1",
}
TRANSPOSED = {  # the relationship for the transposed convolution of each case
    1: (8, "o' = i' + (k - 1)"),
    2: (9, "o' = i' + (k - 1) - 2p"),
    3: (10, "o' = i'"),
    4: (11, "o' = i' - (k - 1)"),
    5: (12, "o' = s(i' - 1) + k"),
    6: (13, "o' = s(i' - 1) + k - 2p"),
}


@dataclass(frozen=True)
class Axis:
    """The relationships along one axis (``"W"`` or ``"H"``) of a forward convolution or pooling.

    ``i, k, s, p, d`` describe the forward operation; ``case`` is the most specific of the
    guide's relationships that applies (``general`` the general one it instantiates), ``o``
    its output size.  The transposed convolution of it maps ``i' = o`` back to ``o' = i``
    as a direct convolution with kernel ``k``, stride 1, padding ``p_eq``, on the input
    with ``zeros`` zeros inserted between neighbours and ``a`` more after
    (``transposed_case``: the guide's relationship for it; 14 when ``a > 0``).
    """

    name: str
    i: int
    k: int
    s: int
    p: int
    d: int
    case: int
    general: int
    o: int
    zeros: int
    a: int
    p_eq: int
    transposed_case: int
    transposed_formula: str

    @property
    def k_eff(self) -> int:
        return self.k + (self.k - 1) * (self.d - 1)


@dataclass(frozen=True)
class Relationships:
    """The guide's relationships for one shape: ``axes`` (one :class:`Axis` each), with renderers."""

    layout: Layout
    axes: tuple[Axis, ...]

    def blocks(self, N: Plain) -> list[Block]:
        L = self.layout
        what = {"conv": "convolution", "conv_transpose": "transposed convolution",
                "maxpool": "max pooling", "avgpool": "average pooling"}[L.op]
        out: list[Block] = [
            Heading(1, f"Convolution arithmetic for this {what}"),
            Para(["The relationships of Dumoulin and Visin, A guide to convolution arithmetic "
                  "for deep learning (2016), for each axis: i input size, k kernel size, s "
                  "stride, p zero padding, d dilation, o output size."]),
        ]
        if L.transposed:
            out.append(Para(["A transposed convolution is described by the forward convolution "
                             "it is the transpose of: that convolution maps the transposed one's "
                             "output back to its input, so below i is the transposed "
                             "convolution's output size and o its input size."]))
        for ax in self.axes:
            out.append(Heading(2, f"Axis {ax.name}: i = {ax.i}, k = {ax.k}, s = {ax.s}, "
                                  f"p = {ax.p}, d = {ax.d}"))
            kind = "pooling" if L.pooling else "convolution"
            out.append(Para([f"The {kind} is the case '{CASES[ax.case]}' (Relationship "
                             f"{ax.case}), an instance of Relationship {ax.general}:"]))
            out.append(Eqs(_output_rows(ax, N)))
            if L.pooling:
                continue
            out.append(Para([f"Its transposed convolution (Relationship {ax.transposed_case}) "
                             f"maps i' = {ax.o} back to o' = {ax.i}: it is the direct "
                             f"convolution, stride s' = 1, kernel k' = {ax.k}"
                             + (f" dilated by {ax.d} (effective size {ax.k_eff})" if ax.d > 1
                                else "")
                             + f", padding p' = k - p - 1 = {ax.p_eq}" +
                             (" (negative: that many cells cropped)" if ax.p_eq < 0 else "") +
                             f", of the input with s - 1 = {ax.zeros} zeros inserted between "
                             f"neighbours" + (f" and a = (i + 2p - k) mod s = {ax.a} more "
                                             f"after (the output padding that resolves which "
                                             f"of the sizes {ax.i - ax.a}..{ax.i - ax.a + ax.s - 1}"
                                             f" is meant)" if ax.a else "") + "."]))
            out.append(Eqs([("o'", f"= {ax.transposed_formula[5:]}"),
                            ("", f"= {ax.s}·({ax.o} - 1) + {ax.a} + {ax.k_eff} - 2·{ax.p}"
                             if not N.latex else
                             rf"= {ax.s} \cdot ({ax.o} - 1) + {ax.a} + {ax.k_eff} - 2 \cdot {ax.p}"),
                            ("", f"= {ax.i}")]))
        return out

    def to_text(self) -> str:
        from .render import render_blocks

        return render_blocks(self.blocks(Plain()), "text")

    def to_markdown(self) -> str:
        from .notation import Latex
        from .render import render_blocks

        return render_blocks(self.blocks(Latex()), "markdown")

    def to_latex(self, standalone: bool = True) -> str:
        from .notation import Latex
        from .render import render_blocks

        return render_blocks(self.blocks(Latex()), "latex", standalone)


def _output_rows(ax: Axis, N: Plain) -> list[tuple[str, str]]:
    dot = r" \cdot " if N.latex else "·"
    floor = (r"\left\lfloor ", r" \right\rfloor") if N.latex else ("⌊", "⌋")
    keff = f"{ax.k} - ({ax.k} - 1)({ax.d} - 1)" if ax.d > 1 else f"{ax.k}"
    num = f"{floor[0]}({ax.i} + 2{dot}{ax.p} - {keff})/{ax.s}{floor[1]} + 1"
    def formula(n: int) -> str:
        f = FORMULAS[n][4:]
        return f.replace("floor(", r"\operatorname{floor}(") if N.latex else f

    return [("o", f"= {formula(ax.case)}"),
            *([("", f"= {formula(ax.general)}")] if ax.general != ax.case else []),
            ("", f"= {num}"), ("", f"= {ax.o}")]


def _axis(name: str, i: int, k: int, s: int, p: int, d: int, pooling: bool) -> Axis:
    keff = k + (k - 1) * (d - 1)
    o = (i + 2 * p - keff) // s + 1
    if pooling:
        case, general = 7, 7
    elif d > 1:
        case, general = 15, 15
    elif s == 1 and p == 0:
        case, general = 1, 6
    elif s == 1 and k % 2 == 1 and p == k // 2:
        case, general = 3, 6
    elif s == 1 and p == k - 1:
        case, general = 4, 6
    elif s == 1:
        case, general = 2, 6
    elif p == 0:
        case, general = 5, 6
    else:
        case, general = 6, 6
    a = (i + 2 * p - keff) % s
    if a:
        tcase, tformula = 14, "o' = s(i' - 1) + a + k - 2p"
    else:
        tcase, tformula = TRANSPOSED.get(case if case <= 6 else 6)
        tformula = "o' = s(i' - 1) + a + k - 2p" if case in (15,) else tformula
    return Axis(name, i, k, s, p, d, case, general, o, s - 1, a, keff - p - 1, tcase, tformula)


def relationships(input_shape: Any = (3, 3), kernel_shape: Any = (2, 2), stride: Any = 1,
                  padding: Any = 0, *, dilation: Any = 1, channels: tuple[int, int] | None = None,
                  groups: int = 1, transposed: bool = False, output_padding: Any = 0,
                  op: str = "conv") -> Relationships:
    """The guide's relationships instantiated for a shape (arguments as :func:`.derivation.explain`).

    Returns a :class:`Relationships` (``.axes``, ``.to_text()``, ``.to_markdown()``,
    ``.to_latex()``).  For ``transposed=True`` the relationships are those of the forward
    convolution whose transpose it is (its input size is the transposed one's output size).
    """
    L = Layout.create(input_shape, kernel_shape, stride, padding, dilation, "kernel",
                      op="conv_transpose" if transposed else op, channels=channels, groups=groups,
                      output_padding=output_padding)
    axes = []
    for n, name in enumerate("WHD"[:L.nd]):
        i = L.output_shape[n] if transposed else L.input_shape[n]
        axes.append(_axis(name, i, L.kernel_shape[n], L.stride[n], L.padding[n], L.dilation[n],
                          L.pooling))
    return Relationships(L, tuple(axes))

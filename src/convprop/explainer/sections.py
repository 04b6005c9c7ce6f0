"""What a derivation says, in reading order: sections I–III of the founding document.

:func:`blocks` turns a :class:`.derivation.Derivation` into headings, prose, aligned
equations and matrices (the blocks of :mod:`.notation`), written in one notation;
:mod:`.render` lays them out as text, Markdown or LaTeX.  Every block is written from
the derivation's own structure (``footprints``, ``terms``, ``x_terms``, ``values``),
never from index arithmetic of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..seed import fmt
from .notation import K_IX, OUT_IX, Block, Eqs, Heading, Math, Matrices, Para, Plain
from .text import LINE_CHARS, chunks_within, latex_width

if TYPE_CHECKING:
    from .layout import Cell, Layout
    from .model import DerivationModel as Derivation
    from .model import Term

MAX_MATRICES = 8  # more channel matrices than this are left out of the overview


def blocks(d: Derivation, N: Plain) -> list[Block]:
    """Everything a derivation says, in reading order (sections I–III of the document)."""
    return [*_section_i(d, N), *_section_ii(d, N), *_section_iii(d, N)]


def _tuple_math(name: str, p: tuple[int, ...], nd: int, scalar: bool = False) -> str:
    """``S = (2, 1)``; with ``scalar`` equal sizes are written ``S = 2`` as the document does,
    and in 1-D every size is one number."""
    if nd == 1 or (scalar and len(set(p[:nd])) == 1):
        return f"{name} = {p[0]}"
    return f"{name} = ({', '.join(str(n) for n in p[:nd])})"


_TITLES = {"conv": "Convolution forward and backward, step by step",
           "conv_transpose": "Transposed convolution forward and backward, step by step",
           "maxpool": "Max pooling forward and backward, step by step",
           "avgpool": "Average pooling forward and backward, step by step"}


def _section_i(d: Derivation, N: Plain) -> list[Block]:
    L = d.layout
    nd = L.nd
    dd = fmt(L.divisor)
    rule = _rule(L, N)
    div = f"D = {rule} = {dd}" if rule else f"D = {dd}"
    parts: list[str | Math] = [
        "Input ", Math(_tuple_math("S_X", L.input_shape, nd)), ", kernel ",
        Math(_tuple_math("S_K", L.kernel_shape, nd)), ", stride ",
        Math(_tuple_math("S", L.stride, nd, True)), ", zero padding ",
        Math(_tuple_math("P", L.padding, nd, True))]
    if L.dilated:
        parts += [", dilation ", Math(_tuple_math("d", L.dilation, nd, True))]
    if L.transposed:
        parts += [", output padding ", Math(_tuple_math("A", L.output_padding, nd, True))]
    if L.multichannel:
        parts += [f", {L.in_channels} input and {L.out_channels} output channels in "
                  f"{L.groups} group{'s' if L.groups > 1 else ''}, a bias per output channel"]
    if L.op == "maxpool":
        parts += [". "]
    else:
        parts += [", divisor ", Math(div), ". "]
    index = ("c",) * L.multichannel + K_IX[:nd]
    words = (["channel c"] * L.multichannel + ["column i", "row j", "depth l"][:nd])
    said = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    parts += [Math(N.s("x", index)), f" is {said}, counted from 1, as in the document; shapes are "
              f"({', '.join(['width', 'height', 'depth'][:nd])})."]
    out: list[Block] = [Heading(1, _TITLES[L.op]), Para(parts)]
    if nd == 1:
        out.append(Para(["One dimension: every cell has one spatial index, ", Math(N.s("x", ("i",))),
                         "; the same derivation as in 2-D with a height of 1."]))
    if nd == 3:
        out.append(Para(["Three dimensions: every cell has three spatial indices, ",
                         Math(N.s("x", K_IX)), ", and every window, sum and gradient runs over "
                         "depth as it does over width and height."]))
    if L.dilated:
        eff = L.effective_kernel
        out.append(Para(["Dilation spreads the kernel's taps d apart: the footprint spans the "
                         "guide's effective kernel size ",
                         Math(_tuple_math("K + (K - 1)(d - 1)", eff, nd)),
                         ", which replaces K in eq. 1."]))
    out += _overview(d, N)
    out.append(Heading(2, "I. Output shape (eq. 1)" if not L.transposed else
                       "I. Output shape (the transposed convolution's relationship)"))
    rows = []
    for n, axis in enumerate("WHD"[:nd]):
        xs, ks, s, p = L.input_shape[n], L.kernel_shape[n], L.stride[n], L.padding[n]
        dl = L.dilation[n]
        if L.transposed:
            rows += [(f"Z_{axis}", f"= {N.eq1_transposed(axis)}"),
                     ("", f"= {N.eq1_transposed_num(xs, ks, s, p, dl, L.output_padding[n])}"),
                     ("", f"= {L.output_shape[n]}")]
            continue
        dilated = L.dilated
        exact = (xs - (ks + (ks - 1) * (dl - 1)) + 2 * p) % s == 0
        num = N.eq1_dilated_num(xs, ks, dl, p, s, exact) if dilated else \
            N.eq1_num(xs, ks, p, s, exact)
        rows += [(f"Z_{axis}", f"= {N.eq1(axis, dilated)}"), ("", f"= {num}"),
                 ("", f"= {L.output_shape[n]}")]
    zs = L.output_shape
    rows.append(("S_Z", f"= ({', '.join(str(n) for n in zs[:nd])})"))
    out.append(Eqs(rows))
    if L.transposed:
        out += _ambiguity(L)
    untouched = [L.show(c) for c in L.inputs() if c not in L.touched_inputs()]
    if untouched:
        listed: list[str | Math] = []
        for n, c in enumerate(untouched):  # one formula each, so that a long list can break
            listed += [", "] * (n > 0) + [Math(N.s("x", c))]
        out.append(Para(["With this stride no window reaches ", *listed,
                         ": these inputs enter no z, and no kernel gradient sums over them."]))
    return out


def _ambiguity(L: Layout) -> list[Block]:
    """The output-size ambiguity of the transposed convolution, which output padding resolves."""
    out = []
    for n, axis in enumerate("WHD"[:L.nd]):
        s, z = L.stride[n], L.output_shape[n] - L.output_padding[n]
        if s > 1:
            sizes = [z + a for a in range(s)]
            out.append(Para([
                f"Along {axis}, a convolution with this kernel, stride {s} and padding "
                f"{L.padding[n]} maps every input size from {sizes[0]} to {sizes[-1]} to "
                f"{L.input_shape[n]} outputs (eq. 1 floors), so the transposed convolution "
                f"cannot tell which one to return: output padding A_{axis} = "
                f"{L.output_padding[n]} picks {z + L.output_padding[n]} (A_{axis} < S_{axis} "
                f"or d_{axis})."]))
    return out


def _rule(L: Layout, N: Plain) -> str | None:
    """The divisor's rule as written (``K_W·K_H``, ``K_W K_H`` in LaTeX), None for a number."""
    if L.divisor_rule in ("given", "none"):
        return None
    return L.divisor_rule.replace("·", " ") if N.latex else L.divisor_rule


def _num_cells(a: np.ndarray) -> list[list[str]]:
    a = np.atleast_2d(a)
    return [[fmt(v) for v in row] for row in a]


def _channel_slices(L: Layout, kind: str) -> list[tuple[tuple[int, ...], str]]:
    """``(leading index, name suffix)`` of every channel (pair) matrix of ``kind``; in 3-D one
    matrix per depth as well (suffix ``_{…,l=1}``, ``_{…,t=1}`` for outputs)."""
    if not L.multichannel:
        leads: list[tuple[int, ...]] = [()]
    elif kind == "k":
        a, b = L.weight_channels
        leads = [(p, q) for p in range(a) for q in range(b)]
    else:
        leads = [(c,) for c in range(L.in_channels if kind == "x" else L.out_channels)]
    depth = L.array_shape(kind)[-3] if L.nd == 3 else 0
    out = []
    for lead in leads:
        names = [str(c + 1) for c in lead]
        for slab in (range(depth) if depth else [None]):
            at = lead if slab is None else (*lead, slab)
            parts = names if slab is None else [*names, f"{'t' if kind == 'z' else 'l'}={slab + 1}"]
            out.append((at, f"_{{{','.join(parts)}}}" if parts else ""))
    return out


def _matrices(L: Layout, N: Plain, name: str, kind: str, arr: np.ndarray | None,
              symbols: Any = None) -> list[tuple[str, str, list[list[str]]]]:
    """One matrix per channel (pair), numbers from ``arr`` or the symbols."""
    items = []
    for lead, suffix in _channel_slices(L, kind):
        if arr is not None:
            cells = _num_cells(arr[lead])
        else:
            sym = np.array(symbols.tolist(), dtype=object)[lead]
            cells = [[N.s(str(s)[0], str(s)[3:-1].split(",")) for s in row]
                     for row in np.atleast_2d(sym)]
        items.append((f"{name}{suffix}", name, cells))  # wide ones are split into column blocks
    return items[:MAX_MATRICES]


def _overview(d: Derivation, N: Plain) -> list[Block]:
    L, v = d.layout, d.values
    if v is not None:
        out: list[Block] = [Para([f"Values: {v.source}."])]
        shown = _matrices(L, N, "X", "x", v.x)
        if v.k is not None:
            shown += _matrices(L, N, "K", "k", v.k)
        shown += _matrices(L, N, "Y", "z", v.y)
        if v.b is not None:
            shown.append(("b", "b", [[fmt(c) for c in v.b]]))
    else:
        out = []
        shown = _matrices(L, N, "X", "x", None, d.X)
        if d.K is not None:
            shown += _matrices(L, N, "K", "k", None, d.K)
    if shown:
        out.append(Matrices(shown))
    return out


def _section_ii(d: Derivation, N: Plain) -> list[Block]:
    L = d.layout
    out: list[Block] = [Heading(2, "II. Forward propagation")]
    if L.op == "maxpool":
        out.append(Para(["Each output is the largest input of its window (padded cells never "
                         "win: PyTorch pads max pooling with -inf), ",
                         Math(N.s("z", OUT_IX[:L.nd]) + " = " + N.maximum([N.dots]))]))
    elif L.op == "avgpool":
        out.append(Para(["Each output is the mean of its window, padded zeros included "
                         "(PyTorch's count_include_pad=True): the sum over ",
                         Math(f"D = {_rule(L, N)}"), "."]))
    elif L.transposed:
        out += _transposed_intro(d, N)
    else:
        dilated = L.dilated
        out += [Para(["Eq. 5 with stride and padding" + (" and dilation" if dilated else "")
                      + "; for S = 1 and P = 0 the index is ",
                      Math(N.s("x", ("x+i-1", "y+j-1", "t+l-1")[:L.nd])),
                      ": the document's ", Math(N.s("x", ("i+x", "j+y", "l+t")[:L.nd])),
                      " is off by one."]),
                Eqs([(N.s("z", OUT_IX[:L.nd]), f"= {N.eq5(dilated, L.nd)}")])]
        if L.multichannel:
            out.append(Para(["With channels, ", Math(N.s("z", ("o", *OUT_IX[:L.nd]))),
                             " also sums over the input channels c of output channel o's group, "
                             "with the weights ", Math(N.s("k", ("o", "c", *K_IX[:L.nd]))),
                             ", and adds the bias ", Math(N.s("b", ("o",))), "."]))
        note = {"K_W·K_H": "D is the kernel size, the division the document's worked equations "
                           "make (by 4 for a 2x2 kernel); eq. 5 as printed divides by the stride "
                           "product, and the standard convolution divides by 1.",
                "S_W·S_H": "D is the stride product, eq. 5 as printed; the document's worked "
                           "equations divide by the kernel size instead."}.get(L.divisor_rule)
        if note:
            out.append(Para([note]))
    if any(L.padding) and not L.transposed:
        out.append(Para(["Cells outside the input are padded zeros, written ", Math(N.pad_zero(1)),
                         ": their products vanish, and so do the gradient terms that meet them."]))
    out.append(Eqs(_z_rows(d, N)))
    if L.transposed:
        out += _scatter_blocks(d, N)
    out.append(Para(["Then ", Math("O = " + N.sigma("Z")), " element-wise (eq. 6):"]))
    rows = []
    v = d.values
    for oc in d.z:
        zs = N.s("z", oc)
        r = f"= {N.sigma(zs)} = {N.sigmoid_def(zs)}"
        if v is not None:
            r += f" = {N.sigmoid_num(v.at('z', oc))} = {fmt(v.at('o', oc))}"
        rows.append((N.s("o", oc), r))
    out.append(Eqs(rows))
    out.append(Para(["and the loss (eq. 4):"]))
    cells = list(d.z)
    sq = [N.sq(f"{N.s('o', c)} - {N.s('y', c)}") for c in cells]
    index = ("c",) * L.multichannel + OUT_IX[:L.nd]
    rows = [("L", f"= {N.loss_def(index)}"), *_plus_rows(sq, 2)]
    if v is not None:
        ov = [v.at("o", c) for c in cells]
        yv = [v.at("y", c) for c in cells]
        rows += _plus_rows([N.sq(f"{fmt(a)} - {fmt(b)}") for a, b in zip(ov, yv)], 2)
        rows += _plus_rows([fmt((a - b) ** 2) for a, b in zip(ov, yv)], 4)
        rows.append(("", f"= {fmt(v.loss)}"))
    out.append(Eqs(rows))
    return out


def _z_rows(d: Derivation, N: Plain) -> list[tuple[str, str]]:
    """Every output's sum: symbols (zeros included), what survives, numbers, the value."""
    L, v = d.layout, d.values
    D = L.divisor
    rows: list[tuple[str, str]] = []
    for oc, taps in d.footprints.items():
        syms, kept, nums = [], [], []
        for t in taps:
            zero = N.inserted_zero() if t.zero == "inserted" else N.pad_zero(1)
            if L.pooling:
                item = zero if t.input is None else N.s("x", t.input)
            else:
                k = N.s("k", t.kernel)
                item = N.times(zero if t.input is None else N.s("x", t.input), k)
            syms.append(item)
            if t.input is not None:
                kept.append(item)
            if v is not None and (t.input is not None or L.op != "maxpool"):
                a = 0.0 if t.input is None else v.at("x", t.input)
                nums.append(N.num(a) if L.pooling else N.numprod(a, v.at("k", t.kernel)))
        bias = f" + {N.s('b', oc[:1])}" if L.bias else ""
        if L.op == "maxpool":
            rows.append((N.s("z", oc), f"= {N.maximum(kept)}"))
            if v is not None:
                pick = v.winners[oc]
                rows.append(("", f"= {N.maximum(nums)} = {fmt(v.at('z', oc))}"))
                rows[-1] = ("", rows[-1][1] + (f" (picks {N.s('x', pick)})" if not N.latex else
                                               rf" \quad \text{{(picks }}{N.s('x', pick)}"
                                               r"\text{)}"))
            continue
        rows += _with_bias(_rows(N.s("z", oc), N.sum_over(syms, D)), bias)
        if len(kept) < len(syms):
            rows += _with_bias(_rows("", N.sum_over(kept, D) if kept else ["0"]), bias)
        if v is not None:
            bnum = f" + {N.num(v.b[oc[0] - 1])}" if L.bias else ""
            rows += _with_bias(_rows("", N.sum_over(nums, D)), bnum)
            total = sum(v.at("x", t.input) * (1.0 if L.pooling else v.at("k", t.kernel))
                        for t in taps if t.input is not None)
            last = fmt(v.at("z", oc))
            if D != 1 or L.bias:
                last = f"{N.over(fmt(total), D, group=False)}{bnum} = {last}"
            rows.append(("", f"= {last}"))
    return rows


def _with_bias(rows: list[tuple[str, str]], bias: str) -> list[tuple[str, str]]:
    if bias:
        rows[-1] = (rows[-1][0], rows[-1][1] + bias)
    return rows


def _transposed_intro(d: Derivation, N: Plain) -> list[Block]:
    L = d.layout
    pe = L.equivalent_padding()
    nd = L.nd
    return [
        Para(["The transposed convolution, derived two ways. First as the guide's equivalent "
              "direct convolution: insert S - 1 zeros between neighbouring inputs, pad by "
              "d(K - 1) - P = ", Math(_tuple_math("P'", pe, nd, True)),
              " on each side (plus the output padding A after), and convolve with stride 1 "
              "and dilation d using the flipped kernel, ",
              Math(N.s("k", ("K_W+1-i", "K_H+1-j", "K_D+1-l")[:nd])), " at position ",
              Math("i" if nd == 1 else f"({', '.join(K_IX[:nd])})"),
              ". Zeros inserted between the inputs are written ", Math(N.inserted_zero()),
              ", padded ones ", Math(N.pad_zero(1)), "; both vanish."]),
    ]


def _scatter_blocks(d: Derivation, N: Plain) -> list[Block]:
    """The adjoint view: each input scatters ``x·k`` into the outputs; checked against the sums."""
    L = d.layout
    rows = []
    for inp in L.inputs():
        targets = L.scatter(inp)
        parts = [f"{N.s('z', L.show(o))}: {N.times(N.s('x', L.show(inp)), N.s('k', L.show(k)))}"
                 for o, k in targets]
        if not parts:
            rows.append((N.s("x", L.show(inp)), f"{N.to()} {N.text('no output')}"))
            continue
        # LaTeX cannot break a display row: a long list goes on over rows (text wraps it itself)
        groups = chunks_within(parts, LINE_CHARS - 12, latex_width) if N.latex else [parts]
        for n, g in enumerate(groups):
            more = "," if n + 1 < len(groups) else ""
            rows.append((N.s("x", L.show(inp)), f"{N.to()} {', '.join(g)}{more}") if n == 0
                        else ("", rf"\quad {', '.join(g)}{more}"))
    direct = L.triples()
    adjoint = {(o, k, i) for i in L.inputs() for o, k in L.scatter(i)}
    verdict = ("they are the same " + str(len(direct)) + " products: the two views agree."
               if direct == adjoint else "THEY DIFFER.")
    return [Para(["Second, as the adjoint (transpose) of the forward convolution: each input ",
                  Math(N.s("x", ("n", "m", "q")[:L.nd])), " times each kernel element ",
                  Math(N.s("k", K_IX[:L.nd])), " is added into output ",
                  Math("(n - 1)S + (i - 1)d + 1 - P"), " (per axis), when that lies inside Z:"]),
            Eqs(rows),
            Para(["Collecting these per output gives the products of the sums above; " + verdict])]


def _rows(left: str, parts: list[str]) -> list[tuple[str, str]]:
    """The rows of one sum: ``= first`` then ``+ rest``."""
    return [(left, f"= {parts[0]}")] + [("", f"+ {p}") for p in parts[1:]]


def _plus_rows(terms: list[str], per_row: int) -> list[tuple[str, str]]:
    """A sum continued over rows: at most ``per_row`` terms a row, fewer where they are long."""
    chunks = [" + ".join(g[n:n + per_row])
              for g in chunks_within(terms, LINE_CHARS - 12, latex_width)
              for n in range(0, len(g), per_row)]
    return _rows("", chunks)


def _section_iii(d: Derivation, N: Plain) -> list[Block]:
    L, v = d.layout, d.values
    D = L.divisor
    nd = L.nd
    xy = OUT_IX[:nd]
    o, y, z = (N.s(n, xy) for n in ("o", "y", "z"))
    k = N.s("k", K_IX[:nd])
    out: list[Block] = [Heading(2, "III. Backward propagation")]
    if L.pooling:
        out += [Para(["With ", Math("L = " + N.sq("O - Y")), " and ", Math("O = " + N.sigma("Z")),
                      ", every output first gets"])]
    else:
        conv = N.over(N.conv(), D, group=False)
        out += [
            Para(["With ", Math("L = " + N.sq("O - Y")), ", ", Math("O = " + N.sigma("Z")),
                  " and ", Math(f"Z = {conv}" if not L.transposed else "Z = conv^T(X, K)/D"),
                  ", the chain rule gives"]),
            Eqs([(N.d("L", "K"), f"= {N.chain_K()}")]),
            Para(["where, for every output ", Math(z), " and kernel element ", Math(k),
                  " it uses,"]),
            Eqs([(N.d("L", o), f"= {N.dl_do(o, y)}"),
                 (N.d(o, z), f"= {N.do_dz(z)}"),
                 (N.d(z, k), f"= {N.over(N.x_general(L.dilated, nd), D, group=False)}"
                  if not L.transposed else f"= {N.over(N.s('x', (N.dots,)), D, group=False)}")]),
        ]
        if L.transposed:
            out.append(Para(["where the x is the input that the sum of z above pairs with ", Math(k),
                             " (0 where that is an inserted or padded zero)."]))
        if D != 1 and L.op == "conv" and not L.multichannel:
            x11, k11, z11 = (N.s(n, (1,) * nd) for n in ("x", "k", "z"))
            out.append(Para(["The document writes ", Math(f"{N.d(z11, k11)} = {x11}"),
                             ", dropping the 1/D of its own eq. 5; the factor used here is ",
                             Math(f"{N.d(z11, k11)} = {N.over(x11, D, group=False)}"), "."]))
        pairs: dict[tuple[int, ...], list[Cell]] = {}
        for kc in d.terms:
            pairs.setdefault(tuple(kc[:2]) if L.multichannel else (), []).append(kc)
        for pair, kcs in pairs.items():
            if pair:
                cin, cout = L.channels_of(pair)
                out.append(Para([f"Weights of output channel {cout} and input channel {cin}, ",
                                 Math(N.s("k", (*pair, *K_IX[:nd]))), ":"]))
            for kc in kcs:
                out.append(Eqs(_gradient_rows(d, N, kc)))
    out += _dl_dz_blocks(d, N)
    if L.bias:
        out += _bias_blocks(d, N)
    out += _dl_dx_blocks(d, N)
    if v is not None:
        out.append(Para([f"The symbolic gradients (SymPy, evaluated in float64) and convprop's "
                         f"autograd differ by at most {v.max_difference:.2g} "
                         f"(tolerance 1e-12): ",
                         "they agree." if v.max_difference <= 1e-12 else "THEY DISAGREE."]))
        shown = []
        if v.grad is not None:
            shown += _matrices(L, N, N.d("L", "K"), "k", v.grad)
        shown += _matrices(L, N, N.d("L", "X"), "x", v.grad_x)
        if v.grad_b is not None:
            shown.append((N.d("L", "b"), "b", [[fmt(c) for c in v.grad_b]]))
        if shown:
            out.append(Matrices(shown))
    return out


def _gradient_rows(d: Derivation, N: Plain, kc: Cell) -> list[tuple[str, str]]:
    """``∂L/∂k``: the generic chain rule, its factors, what survives, and numbers."""
    v, L = d.values, d.layout
    D = L.divisor
    terms: list[Term] = d.terms[kc]
    k = N.s("k", kc)
    generic, factored, kept, nums = [], [], [], []
    for t in terms:
        o, y, z = N.s("o", t.output), N.s("y", t.output), N.s("z", t.output)
        generic.append(N.times(N.d("L", o), N.d(o, z), N.d(z, k)) if N.latex
                       else "·".join([N.d("L", o), N.d(o, z), N.d(z, k)]))
        if t.vanishes:
            dz = N.over(N.inserted_zero(), D, group=False) if t.zero == "inserted" else N.pad_zero(D)
        else:
            dz = N.over(N.s("x", t.source), D, group=False)
        f = N.times(N.dl_do(o, y), N.do_dz(z), dz)
        factored.append(f)
        if not t.vanishes:
            kept.append(f)
            if v is not None:
                nums.append(N.num(v.terms[_index(L, kc) + _index(L, t.output)]))
    rows = _rows(N.d("L", k), generic) + _rows("", factored)
    if len(kept) < len(factored):
        rows += _rows("", kept) if kept else [("", "= 0")]
    if v is not None and kept:
        rows += _plus_rows(nums, 4) if len(nums) > 1 else []
        rows.append(("", f"= {fmt(v.grad[_index(L, kc)])}"))
    return rows


def _index(L: Layout, cell: Cell) -> tuple[int, ...]:
    """The 0-based index of a shown cell in a shown array: channels, then (depth,) row, column."""
    if L.nd == 1:
        return tuple(c - 1 for c in cell)
    lead = len(cell) - L.nd
    return (*(c - 1 for c in cell[:lead]), *(c - 1 for c in cell[lead:][::-1]))


def _dl_dz_blocks(d: Derivation, N: Plain) -> list[Block]:
    """``∂L/∂z = ∂L/∂o·∂o/∂z``, the factor every gradient below shares, with its numbers."""
    L, v = d.layout, d.values
    z = N.s("z", OUT_IX[:L.nd])
    o, y = N.s("o", OUT_IX[:L.nd]), N.s("y", OUT_IX[:L.nd])
    rows = [(N.d("L", z), f"= {N.times(N.d('L', o), N.d(o, z))} = "
             f"{N.times(N.dl_do(o, y), N.do_dz(z))}")]
    out: list[Block] = [Para(["Every gradient below starts from each output's"]), Eqs(rows)]
    if v is not None:
        nums = [(N.d("L", N.s("z", oc)), f"= {fmt(_dl_dz_value(v, oc))}") for oc in d.z]
        out.append(Eqs(nums))
    return out


def _dl_dz_value(v: object, oc: Cell) -> float:
    o, y = v.at("o", oc), v.at("y", oc)
    return 2 * (o - y) * o * (1 - o)


def _bias_blocks(d: Derivation, N: Plain) -> list[Block]:
    v = d.values
    out: list[Block] = [Para(["Each bias enters every output of its channel with factor 1:"])]
    for c, outs in d.bias_terms.items():
        b = N.s("b", c)
        rows = _rows(N.d("L", b), [N.d("L", N.s("z", oc)) for oc in outs])
        if v is not None:
            rows += _plus_rows([N.num(_dl_dz_value(v, oc)) for oc in outs], 4)
            rows.append(("", f"= {fmt(v.grad_b[c[0] - 1])}"))
        out.append(Eqs(rows))
    return out


def _dl_dx_blocks(d: Derivation, N: Plain) -> list[Block]:
    """``∂L/∂x`` for every input, with what it is: a transposed convolution, or pooling's routing."""
    L, v = d.layout, d.values
    D = L.divisor
    nd = L.nd
    if L.op == "maxpool":
        intro: list[str | Math] = [
            "The backward sends each ", Math(N.d("L", N.s("z", OUT_IX[:nd]))),
            " to the one input its window picked, the first maximum in scan order (as PyTorch); "
            "every other input of the window gets nothing:"]
    elif L.op == "avgpool":
        intro = ["The backward spreads each ", Math(N.d("L", N.s("z", OUT_IX[:nd]))),
                 " evenly over its window, 1/D to every cell:"]
    elif L.transposed:
        intro = ["The input gradient of a transposed convolution is a direct convolution of ",
                 Math(N.d("L", "Z")), " with the kernel (stride S, padding P, dilation d), ",
                 Math(N.d("L", "X") + " = " + N.over(r"\operatorname{conv}(\partial L/\partial Z, K)"
                                                     if N.latex else "conv(∂L/∂Z, K)", D, False)),
                 ", term by term:"]
    else:
        intro = ["The input gradient is itself a transposed convolution of ", Math(N.d("L", "Z")),
                 " with the kernel, ",
                 Math(N.d("L", "X") + " = " + N.over(r"\operatorname{conv}^T(\partial L/\partial Z, K)"
                                                     if N.latex else "conv^T(∂L/∂Z, K)", D, False)),
                 ": insert S - 1 zeros between the entries of ", Math(N.d("L", "Z")),
                 ", pad by d(K - 1) - P and convolve with the flipped kernel. Each input sums, "
                 "over the kernel elements, the output that element met it in (a zero of the "
                 "padded, zero-inserted gradient where there is none, and the term vanishes):"]
    out: list[Block] = [Heading(2, "The input gradient dL/dX"), Para(intro)]
    for xc, terms in d.x_terms.items():
        left = N.d("L", N.s("x", xc))
        generic, kept, nums = [], [], []
        for n, t in enumerate(terms):
            if t.vanishes:
                generic.append(N.times("0", N.over(N.s("k", t.kernel), D, group=False)))
                continue
            dl = N.d("L", N.s("z", t.output))
            if L.op == "maxpool":
                win = None if v is None else int(v.winners[t.output] == xc)
                f = N.times(dl, str(win) if win is not None else
                            f"[{N.s('x', xc)} {N.text('wins')} {N.s('z', t.output)}]")
            elif L.op == "avgpool":
                f = N.over(dl, D, group=False)
            else:
                f = N.times(dl, N.over(N.s("k", t.kernel), D, group=False))
            generic.append(f)
            kept.append(f)
            if v is not None:
                nums.append(N.num(d.x_term_value(xc, n)))
        if not generic:
            out.append(Eqs([(left, "= 0")]))
            continue
        rows = _rows(left, generic)
        if len(kept) < len(generic):
            rows += _rows("", kept) if kept else [("", "= 0")]
        if v is not None and kept:
            rows += _plus_rows(nums, 4) if len(nums) > 1 else []
            rows.append(("", f"= {fmt(v.grad_x[_index(L, xc)])}"))
        out.append(Eqs(rows))
    return out

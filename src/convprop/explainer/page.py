"""The derivation as one interactive, offline HTML page (``convprop explain --format html``).

Two steps, so that new derivation options only ever extend the first:

* :func:`page_model` turns a :class:`~.derivation.Derivation` into plain data (a
  JSON-able dict), from its :class:`~.layout.Layout`, for every kind the derivation
  supports (convolution with stride, padding, dilation, channels and groups; the
  transposed convolution on its equivalent direct convolution's grid; max and average
  pooling; 1-D): the grid each window slides over (one panel per channel), for every
  output its window and equation with numbers, and the terms of every ``∂L/∂k``,
  ``∂L/∂x`` and ``∂L/∂b`` with their running sums.  The numbers are the derivation's
  own (``Derivation.values``); window positions come from :mod:`convprop._windows`.
  The animation (:mod:`.animate`) draws from the same dict.
  For the transposed convolution the page also draws its adjoint view (each input
  scattering ``x·k/D`` into the outputs, from :meth:`.layout.Layout.scatter`).
* :func:`write_html` lays the dict out as inline SVG grids, equations in
  presentation MathML (:mod:`._page_mathml`) and a small script that only shows and
  hides what the page already holds: it computes no number.

The page loads nothing: no CDN, no font, no request; a Content-Security-Policy
forbids any.
"""
from __future__ import annotations

import copy
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._args import check_output
from .._windows import windows
from ..seed import Pair
from ._page_assets import PATTERNS, SCRIPT, STYLE
from ._page_mathml import b_equation, k_equation, num, s_equation, x_equation, z_equation
from .layout import Layout

if TYPE_CHECKING:
    from .model import DerivationModel as Derivation
    from .values import Values

RANDOM_SEED = 0
"""Seed of the random values a page or animation uses when the derivation has none."""
# -------------------------------------------------------------------- model
def page_values(d: Derivation) -> Values:
    """The derivation's values; if it has none, random ones (seed :data:`RANDOM_SEED`).

    ``d`` itself is left as it was: the random values are evaluated on a shallow copy.
    """
    return _evaluated(d).values


def _evaluated(d: Derivation) -> Derivation:
    """``d`` if it has values, else a shallow copy evaluated on random ones."""
    if d.values is not None:
        return d
    from .values import load_values

    x, k, y, b, source = load_values("random", d.layout, RANDOM_SEED)
    e = copy.copy(d)
    e.evaluate(x, k, y, source, b)
    return e


def footprints(d: Derivation) -> np.ndarray:
    """Grid cell of every window position in every output, ``(K_H, K_W, Z_H, Z_W, 2)``.

    The grid is the one the forward sum slides over: the padded input for the
    convolution and pooling, the zero-inserted, re-padded input of the guide's
    equivalent direct convolution (stride 1) for the transposed convolution.  Element
    ``[j-1, i-1, y-1, x-1]`` is the ``(column, row)``, 1-based, of that grid that window
    position ``(i, j)`` (:attr:`.layout.Tap.position`) meets in ``z_{x,y}``: the view of
    :func:`convprop._windows.windows` applied to the grid's cell numbers.
    """
    L = d.layout
    gw, gh = _grid_size(L)
    index = np.arange(gw * gh, dtype=np.int64).reshape(1, 1, gh, gw)
    stride = (1, 1) if L.transposed else L.stride[::-1]
    flat = windows(index, L.kernel_shape[::-1], stride, L.dilation[::-1],
                   L.output_shape[::-1])[0, 0]
    return np.stack([flat % gw + 1, flat // gw + 1], axis=-1)


def _grid_size(L: Layout) -> Pair:
    """``[W, H]`` of one channel's grid: the padded input, or (transposed) the equivalent
    direct convolution's input, ``Z + (K − 1)d`` per axis (stride 1, no padding left)."""
    if L.transposed:
        return tuple(z + (k - 1) * dd for z, k, dd in
                     zip(L.output_shape, L.kernel_shape, L.dilation))
    return tuple(w + 2 * p for w, p in zip(L.input_shape, L.padding))


def _grid_cells(L: Layout) -> dict[Pair, Pair | str]:
    """Each grid cell's content: the spatial input cell it holds, ``"padding"`` or ``"inserted"``."""
    gw, gh = _grid_size(L)
    out: dict[Pair, Pair | str] = {}
    for r in range(1, gh + 1):
        for c in range(1, gw + 1):
            src: list[int] = []
            kind = None
            for g, n in ((c, 0), (r, 1)):
                if L.transposed:  # the inputs sit S apart after d(K − 1) − P cells
                    u = g - 1 - L.equivalent_padding()[n]
                    span = (L.input_shape[n] - 1) * L.stride[n] + 1
                    if not 0 <= u < span:  # padding outranks an inserted zero
                        kind = "padding"
                    elif u % L.stride[n]:
                        kind = kind or "inserted"
                    else:
                        src.append(u // L.stride[n] + 1)
                else:
                    u = g - L.padding[n]
                    if 1 <= u <= L.input_shape[n]:
                        src.append(u)
                    else:
                        kind = "padding"
            out[(c, r)] = kind if kind else (src[0], src[1])
    return out


def _panels(sizes: list[Pair], across: bool) -> list[list[int]]:
    """Origins ``[column, row]`` (0-based) of panels of ``sizes`` laid side by side
    (``across``) or one under the other, one empty cell apart."""
    origins, at = [], 0
    for w, h in sizes:
        origins.append([at, 0] if across else [0, at])
        at += (w if across else h) + 1
    return origins


def page_model(d: Derivation) -> dict[str, Any]:
    """Everything the page and the animation show, as plain data.

    Every kind the derivation supports is drawn: the convolution (stride, padding,
    dilation, divisor, channels, groups, bias), the transposed convolution (as the
    guide's equivalent direct convolution: zeros inserted between the inputs, re-padded,
    read with stride 1 by the flipped kernel), max and average pooling, 1-D (one row).

    Cells (``cell``, ``output``, ``input``) are the derivation's *shown* cells as lists
    (``[i, j]`` for one channel in 2-D, ``[c, i, j]`` / ``[a, b, i, j]`` with channels,
    ``[i]`` in 1-D).  Each grid is one panel per channel (input X and ∂L/∂X: one per
    input channel; K and ∂L/∂K: one per weight channel pair; Z: one per output channel)
    and ``at`` / ``pos`` are ``[column, row]``, 1-based, on the grid of all panels.
    Lists run in the derivation's order.  Keys:

    * ``shape``: ``op``, ``nd``, ``input``, ``kernel``, ``output``, ``padded`` (one
      channel's grid) sizes ``[W, H]``, ``stride``, ``padding``, ``dilation``,
      ``divisor`` (``D``), ``divisor_rule``, ``channels``, ``groups``, ``transposed``;
      ``grids`` (``x``, ``k``, ``z``, ``gx``: total ``[W, H]``) and ``panels`` (per grid,
      ``{origin, size, label, frame}``; ``frame`` ``[c0, r0, W, H]`` around the real
      inputs, or None).
    * ``values``: ``source``, ``given``, ``note``.
    * ``x``: every grid cell ``{at, ch, input, zero, value, text}`` (``zero``:
      ``"padding"`` / ``"inserted"`` when ``input`` is None).
    * ``k``: per weight ``{cell, pos, value, text, grad, grad_text, grad_autograd,
      terms}``; each term ``{output, zi, at, input, zero, x, dl_do, do_dz, dz_dk, value, text,
      running, running_text}`` (``zi``: the index of ``output`` in ``z``).
    * ``z``: per output ``{cell, pos, ch, value, text, o, o_text, y, y_text, b, window}``;
      each window entry ``{kernel, ki, at, input, x, k, pick}`` (``ki``: the index of
      ``kernel`` in ``k``; ``pick``: max pooling's chosen first maximum).
    * ``gx``: per real input ``{cell, xi, pos, grad, grad_text, grad_autograd, terms}``
      (``xi``: its index in ``x``); each term ``{output, zi, kernel, ki, dl_dz, dz_dx,
      value, text, running, running_text}``, vanishing ones (``output`` None) included.
    * ``gb``: with a bias, per output channel ``{cell: [c], pos, grad, grad_text,
      grad_autograd, terms}``; each term ``{output, zi, value, text, running,
      running_text}`` (``value``: ``∂L/∂z = 2(o − y)·o(1 − o)``).
    * ``scatter``: for the transposed convolution (else empty), its adjoint view: per
      real input ``{cell, pos, value, text, targets}``, ``pos`` on the ``sx`` grid (the
      inputs without inserted zeros or padding); each target ``{output, zi, kernel, ki,
      value, text}``: ``x·k/D`` added into ``output`` (from :meth:`.layout.Layout.scatter`).
    * ``loss``, ``max_difference`` (symbolic vs autograd), ``tolerance``.
    * ``steps``: ``forward`` (one per output), ``backward`` (their number) and
      ``plan``: ``[grid, a, b]`` per backward step: term ``b`` of ``∂L/∂k`` number ``a``
      (``"k"``), or for pooling of ``∂L/∂x`` number ``a`` (``"x"``); with a bias, then
      term ``b`` of ``∂L/∂b`` number ``a`` (``"b"``).
    """
    from .model import TOLERANCE

    if d.layout.nd == 3:
        raise ValueError("the page and the animation draw 1-D and 2-D derivations; a 3-D one is "
                         "written as text: to_text(), to_markdown(), to_latex()")
    given = d.values is not None
    d = _evaluated(d)
    L, v = d.layout, d.values
    show = L.show
    gw, gh = _grid_size(L)
    across = L.nd == 2
    contents = _grid_cells(L)
    fp = footprints(d)
    D = L.divisor

    def shown(cell: tuple[int, ...] | None) -> list[int] | None:
        return None if cell is None else list(show(cell))

    # panels ----------------------------------------------------------------
    x_org = _panels([(gw, gh)] * L.in_channels, across)
    z_org = _panels([L.output_shape] * L.out_channels, across)
    gx_org = _panels([L.input_shape] * L.in_channels, across)
    A, B = (0, 0) if L.pooling else L.weight_channels
    kw, kh = L.kernel_shape
    k_org = {(a, b): [(b - 1) * (kw + 1), (a - 1) * (kh + 1)]
             for a in range(1, A + 1) for b in range(1, B + 1)}
    real = [p for p, c in contents.items() if not isinstance(c, str)]
    frame = None
    if len(real) != len(contents):
        c0, r0 = min(p[0] for p in real) - 1, min(p[1] for p in real) - 1
        frame = [c0, r0, max(p[0] for p in real) - c0, max(p[1] for p in real) - r0]
    chan = L.multichannel

    def place(origin: list[int], cell: Pair) -> list[int]:
        return [origin[0] + cell[0], origin[1] + cell[1]]

    xs, x_index = [], {}
    for c in range(1, L.in_channels + 1):
        for r in range(1, gh + 1):
            for col in range(1, gw + 1):
                what = contents[(col, r)]
                full = None if isinstance(what, str) else (c, *what)
                val = v.at("x", show(full)) if full else 0.0
                x_index[(c, col, r)] = len(xs)
                xs.append({"at": place(x_org[c - 1], (col, r)), "ch": c, "input": shown(full),
                           "zero": what if isinstance(what, str) else None,
                           "value": val, "text": num(val)})

    k_cells = L.kernels()
    k_index = {kc: n for n, kc in enumerate(k_cells)}
    z_cells = L.outputs()
    z_index = {oc: n for n, oc in enumerate(z_cells)}
    winners = v.winners or {}
    zs = []
    for out in z_cells:
        oc, sp_ = show(out), out[1:]
        window = []
        taps = L.taps(out)
        per = len(taps) // len(L.connected(out[0]))
        for n, t in enumerate(taps):
            c = L.connected(out[0])[n // per][0]
            at = fp[t.position[1] - 1, t.position[0] - 1, sp_[1] - 1, sp_[0] - 1]
            src = shown(t.input)
            window.append({
                "kernel": shown(t.kernel) if t.kernel else list(t.position[:L.nd]),
                "ki": k_index.get(t.kernel), "at": xs[x_index[(c, *at.tolist())]]["at"],
                "input": src, "x": v.at("x", show(t.input)) if t.input else 0.0,
                "k": v.at("k", show(t.kernel)) if t.kernel else None,
                "pick": t.input is not None and winners.get(oc) == show(t.input)})
        z, o, y = v.at("z", oc), v.at("o", oc), v.at("y", oc)
        zs.append({"cell": list(oc), "pos": place(z_org[out[0] - 1], sp_), "ch": out[0],
                   "value": z, "text": num(z), "o": o, "o_text": num(o), "y": y, "y_text": num(y),
                   "b": v.at("b", (out[0],)) if L.bias else None, "window": window})

    def dl_dz(zi: int) -> float:
        z = zs[zi]
        return 2 * (z["o"] - z["y"]) * z["o"] * (1 - z["o"])

    ks = []
    if not L.pooling:
        terms_full = v.terms.reshape(L.array_shape("k") + L.array_shape("z"))
        grad, grad_ag = L.to_full("k", v.grad), L.to_full("k", v.grad_autograd)
        for kc in k_cells:
            cin, cout = L.channels_of(kc)
            terms, running = [], 0.0
            for term in d.terms[show(kc)]:
                out = (cout, *(term.output[-2:] if L.nd == 2 else (term.output[-1], 1)))
                zi = z_index[out]
                z = zs[zi]
                pos = next(e["at"] for e in z["window"] if e["ki"] == k_index[kc])
                xv = v.at("x", term.source) if term.source else 0.0
                value = float(terms_full[L.index(kc) + L.index(out)])
                running += value
                terms.append({"output": list(term.output), "zi": zi, "at": pos,
                              "input": None if term.source is None else list(term.source),
                              "zero": term.zero,
                              "x": xv, "dl_do": 2 * (z["o"] - z["y"]), "do_dz": z["o"] * (1 - z["o"]),
                              "dz_dk": xv / D, "value": value, "text": num(value),
                              "running": running, "running_text": num(running)})
            kv, gv = v.at("k", show(kc)), float(grad[L.index(kc)])
            ks.append({"cell": list(show(kc)), "pos": place(k_org[kc[:2]], kc[2:]), "value": kv,
                       "text": num(kv), "grad": gv, "grad_text": num(gv),
                       "grad_autograd": float(grad_ag[L.index(kc)]), "terms": terms})

    gxs = []
    k_full = {show(kc): kc for kc in k_cells}
    x_at = {(c, *what): n for (c, *grid), n in x_index.items()
            if not isinstance(what := contents[tuple(grid)], str)}
    gx, gx_ag = L.to_full("x", v.grad_x), L.to_full("x", v.grad_x_autograd)
    for inp in L.inputs():
        xc = show(inp)
        terms, running = [], 0.0
        for n, t in enumerate(d.x_terms[xc]):
            out = None
            if t.output is not None:
                och = t.output[0] if chan else 1
                out = (och, *(t.output[-2:] if L.nd == 2 else (t.output[-1], 1)))
            value = d.x_term_value(xc, n)
            running += value
            zi = None if out is None else z_index[out]
            if t.output is None:
                dz = 0.0
            elif L.op == "maxpool":
                dz = float(winners.get(tuple(t.output)) == xc)
            elif L.op == "avgpool":
                dz = 1 / D
            else:
                dz = v.at("k", t.kernel) / D
            kfull = None if t.kernel is None else k_full[tuple(t.kernel)]
            terms.append({"output": None if out is None else list(t.output), "zi": zi,
                          "kernel": None if t.kernel is None else list(t.kernel),
                          "ki": None if kfull is None else k_index[kfull],
                          "dl_dz": 0.0 if zi is None else dl_dz(zi), "dz_dx": dz,
                          "value": value, "text": num(value),
                          "running": running, "running_text": num(running)})
        g, ga = float(gx[L.index(inp)]), float(gx_ag[L.index(inp)])
        gxs.append({"cell": list(xc), "xi": x_at[inp], "pos": place(gx_org[inp[0] - 1], inp[1:]),
                    "grad": g, "grad_text": num(g),
                    "grad_autograd": ga, "terms": terms})

    gbs = []
    for c in range(1, L.out_channels + 1) if L.bias else ():
        terms, running = [], 0.0
        for zi, z in enumerate(zs):
            if z["ch"] == c:
                value = dl_dz(zi)
                running += value
                terms.append({"output": z["cell"], "zi": zi, "value": value, "text": num(value),
                              "running": running, "running_text": num(running)})
        g, ga = float(v.grad_b[c - 1]), float(v.grad_b_autograd[c - 1])
        gbs.append({"cell": [c], "pos": [c, 1], "grad": g, "grad_text": num(g),
                    "grad_autograd": ga, "terms": terms})

    scatter = []
    for n, inp in enumerate(L.inputs() if L.transposed else ()):
        xv = v.at("x", show(inp))
        targets = []
        for out, kc in L.scatter(inp):
            value = xv * v.at("k", show(kc)) / D
            targets.append({"output": shown(out), "zi": z_index[out], "kernel": shown(kc),
                            "ki": k_index[kc], "value": value, "text": num(value)})
        scatter.append({"cell": shown(inp), "pos": gxs[n]["pos"], "value": xv, "text": num(xv),
                        "targets": targets})

    note = (f"Values: {v.source}." if given else
            f"No values were given, so these are random numbers with a fixed seed "
            f"({v.source}); give your own with --values FILE.")

    def total(org: list[list[int]], size: Pair) -> list[int]:
        if not org:
            return [0, 0]
        return [max(o[0] for o in org) + size[0], max(o[1] for o in org) + size[1]]

    def label(kind: str, n: int) -> str:
        return f"channel {n}" if kind == "x" else f"output channel {n}"

    k_orgs = list(k_org.values())

    def pframe(o: list[int]) -> list[int] | None:
        return None if frame is None else [o[0] + frame[0], o[1] + frame[1], *frame[2:]]

    panels = {
        "x": [{"origin": o, "size": [gw, gh], "label": label("x", n + 1) if chan else "",
               "frame": pframe(o)} for n, o in enumerate(x_org)],
        "z": [{"origin": o, "size": list(L.output_shape), "label": label("z", n + 1) if chan else "",
               "frame": None} for n, o in enumerate(z_org)],
        "k": [{"origin": o, "size": [kw, kh], "label": f"K[{a},{b}]" if chan else "", "frame": None}
              for (a, b), o in k_org.items()],
        "gx": [{"origin": o, "size": list(L.input_shape), "label": label("x", n + 1) if chan else "",
                "frame": None} for n, o in enumerate(gx_org)],
    }
    if L.pooling:
        plan = [["x", a, b] for a, e in enumerate(gxs) for b in range(len(e["terms"]))]
    else:
        plan = [["k", a, b] for a, e in enumerate(ks) for b in range(len(e["terms"]))]
        plan += [["b", a, b] for a, e in enumerate(gbs) for b in range(len(e["terms"]))]
    return {
        "shape": {"op": L.op, "nd": L.nd, "transposed": L.transposed,
                  "input": list(L.input_shape), "kernel": list(L.kernel_shape),
                  "output": list(L.output_shape), "padded": [gw, gh], "stride": list(L.stride),
                  "padding": list(L.padding), "dilation": list(L.dilation),
                  "output_padding": list(L.output_padding),
                  "divisor": D, "divisor_rule": L.divisor_rule,
                  "channels": [L.in_channels, L.out_channels], "groups": L.groups,
                  "multichannel": chan, "bias": L.bias,
                  "grids": {"x": total(x_org, (gw, gh)), "z": total(z_org, L.output_shape),
                            "k": total(k_orgs, (kw, kh)), "gx": total(gx_org, L.input_shape)},
                  "panels": panels},
        "values": {"source": v.source, "given": given, "note": note},
        "x": xs, "k": ks, "z": zs, "gx": gxs, "gb": gbs, "scatter": scatter,
        "loss": float(v.loss), "max_difference": float(v.max_difference), "tolerance": TOLERANCE,
        "steps": {"forward": len(zs), "backward": len(plan), "plan": plan},
    }


# -------------------------------------------------------------------- SVG
CELL = 70
MAX_GRID_HEIGHT = 560
"""Tallest grid drawn at full size, in CSS pixels; taller ones are scaled down."""
MAX_GRIDS_WIDTH = 1800
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
"""The page's Content-Security-Policy: nothing may be loaded from anywhere."""


def _grid(role: str, cells: list[dict[str, Any]], size: list[int], panels: list[dict[str, Any]],
          labels: dict[str, dict[int, str]], scale: float = 1.0) -> str:
    """One SVG grid of ``panels``, drawn ``scale`` times its natural size; ``labels`` number
    the columns (``"col"``) and rows (``"row"``) that hold real cells."""
    W, H = size
    top = 34 if any(p["label"] for p in panels) else 20
    m = 20
    vw, vh = W * CELL + m + 2, H * CELL + top + 2
    out = [f'<svg class="grid" data-grid="{role}" viewBox="0 0 {vw} {vh}" width="{vw * scale:.0f}" '
           f'height="{vh * scale:.0f}" role="img" aria-label="{role}">']
    for p in panels:
        if p["label"]:
            y = 12 if p["origin"][1] == 0 else top + (p["origin"][1] - 0.3) * CELL
            out.append(f'<text class="plabel" x="{m + p["origin"][0] * CELL}" y="{y}">'
                       f'{html.escape(p["label"])}</text>')
    for c, text in labels["col"].items():
        out.append(f'<text class="idx" x="{m + (c - 0.5) * CELL}" y="{top - 6}">{text}</text>')
    for r, text in labels["row"].items():
        y = top + (r - 0.5) * CELL
        out.append(f'<text class="idx" x="10" y="{y + 4}" transform="rotate(-90 10 {y})">{text}</text>')
    for n, cell in enumerate(cells):
        c, r = cell["pos"]
        x0, y0 = m + (c - 1) * CELL, top + (r - 1) * CELL
        attrs = "".join(f' data-{k}="{html.escape(str(v))}"' for k, v in cell["data"].items())
        if cell.get("active"):  # outputs and kernel elements are reached by Tab, too
            attrs += ' tabindex="0"'
        cls = "cell pad" if cell.get("pad") else "cell"
        long = " long" if len(cell["text"]) > 8 else ""
        out.append(f'<g class="{cls}" data-role="{role}" data-n="{n}"{attrs}>'
                   f'<title>{html.escape(cell["title"])}</title>'
                   f'<rect x="{x0 + 1}" y="{y0 + 1}" width="{CELL - 2}" height="{CELL - 2}" rx="4"/>'
                   f'<text class="v{long}" x="{x0 + CELL / 2}" y="{y0 + CELL / 2 + 4}">'
                   f'{cell["text"]}</text><text class="tag" x="{x0 + CELL / 2}" y="{y0 + CELL - 6}">'
                   f'</text></g>')
    for p in panels:
        if p["frame"]:
            c0, r0, fw, fh = p["frame"]
            out.append(f'<rect class="frame" x="{m + c0 * CELL}" y="{top + r0 * CELL}" '
                       f'width="{fw * CELL}" height="{fh * CELL}"/>')
    out.append("</svg>")
    return "".join(out)


def _cell_key(cell: list[int] | None) -> str:
    return "" if cell is None else ",".join(str(c) for c in cell)


def _name(name: str, cell: list[int]) -> str:
    return f"{name}_{{{_cell_key(cell)}}}"


def _labels(entries: list[tuple[list[int], list[int] | None]], nd: int,
            axis: tuple[str, str]) -> dict[str, dict[int, str]]:
    """Column and row numbers of the real cells: ``entries`` are ``(pos, shown cell)``."""
    col: dict[int, str] = {}
    row: dict[int, str] = {}
    for pos, cell in entries:
        if cell is None:
            continue
        col[pos[0]] = f"{axis[0]}={cell[-nd] if nd == 2 else cell[-1]}"
        if nd == 2:
            row[pos[1]] = f"{axis[1]}={cell[-1]}"
    return {"col": col, "row": row}


def _grids(m: dict[str, Any]) -> str:
    s = m["shape"]
    nd, P = s["nd"], s["panels"]
    zero = {"padding": "padding: 0", "inserted": "inserted zero (between the inputs): 0"}
    x = [{"pos": e["at"], "pad": e["input"] is None, "text": e["text"],
          "active": e["input"] is not None,
          "data": {"at": _cell_key(e["at"]), "input": _cell_key(e["input"]), "ch": e["ch"],
                   "zero": e["zero"] or "", "value": repr(e["value"])},
          "title": (f"{_name('x', e['input'])} = {e['text']}: click for ∂L/∂x" if e["input"]
                    else zero[e["zero"]])} for e in m["x"]]
    k = [{"pos": e["pos"], "text": e["text"], "active": True,
          "data": {"cell": _cell_key(e["cell"]), "value": repr(e["value"])},
          "title": f"{_name('k', e['cell'])} = {e['text']}: click for ∂L/∂k"} for e in m["k"]]
    z = [{"pos": e["pos"], "text": e["text"], "active": True,
          "data": {"cell": _cell_key(e["cell"]), "ch": e["ch"], "value": repr(e["value"])},
          "title": f"{_name('z', e['cell'])} = {e['text']}: hover or click for its window"}
         for e in m["z"]]
    g = [{"pos": e["pos"], "text": e["grad_text"], "active": True,
          "data": {"cell": _cell_key(e["cell"]), "value": repr(e["grad"])},
          "title": f"∂L/∂{_name('k', e['cell'])} = {e['grad_text']}: click for its terms"}
         for e in m["k"]]
    gx = [{"pos": e["pos"], "text": e["grad_text"], "active": True,
           "data": {"cell": _cell_key(e["cell"]), "value": repr(e["grad"])},
           "title": f"∂L/∂{_name('x', e['cell'])} = {e['grad_text']}: click for its terms"}
          for e in m["gx"]]
    xl = _labels([(e["at"], e["input"]) for e in m["x"]], nd, ("i", "j"))
    kl = _labels([(e["pos"], e["cell"]) for e in m["k"]], nd, ("i", "j"))
    zl = _labels([(e["pos"], e["cell"]) for e in m["z"]], nd, ("x", "y"))
    fig = '<figure><figcaption>{}</figcaption>{}</figure>'
    # large grids are drawn smaller, so that the grids and the equation fit on a screen
    G = s["grids"]
    tall = max(G["x"][1], G["z"][1], G["k"][1]) * CELL
    wide = (G["x"][0] + G["gx"][0] + G["z"][0] + 2 * G["k"][0]) * CELL + 200
    scale = min(1.0, MAX_GRID_HEIGHT / tall, max(0.45, MAX_GRIDS_WIDTH / wide))
    op = s["op"]
    if s["transposed"]:
        xcap = ("input X as the guide's equivalent direct convolution reads it: "
                f"{s['stride'][0] - 1}×{s['stride'][1] - 1} zeros inserted between inputs, padding "
                "d(K − 1) − P (hatched zeros)")
    else:
        xcap = f"input X ({_dims(s['input'], nd)}" + (
            f", padding {_dims(s['padding'], nd)}: hatched zeros)" if any(s["padding"]) else ")")
    zcap = {"conv": f"output Z = conv(X, K)/{num(s['divisor'])}",
            "conv_transpose": f"output Z = conv_transpose(X, K)/{num(s['divisor'])}",
            "maxpool": "output Z = maxpool(X)", "avgpool": "output Z = avgpool(X)"}[op]
    parts = [fig.format(xcap, _grid("x", x, G["x"], P["x"], xl, scale))]
    if k:
        parts.append(fig.format("kernel K", _grid("k", k, G["k"], P["k"], kl, scale)))
    parts.append(fig.format(zcap, _grid("z", z, G["z"], P["z"], zl, scale)))
    if g:
        parts.append(fig.format("gradient ∂L/∂K", _grid("g", g, G["k"], P["k"], kl, scale)))
    gxl = _labels([(e["pos"], e["cell"]) for e in m["gx"]], nd, ("i", "j"))
    parts.append(fig.format("gradient ∂L/∂X", _grid("gx", gx, G["gx"], P["gx"], gxl, scale)))
    if m["gb"]:
        gb = [{"pos": e["pos"], "text": e["grad_text"], "active": True,
               "data": {"cell": _cell_key(e["cell"]), "value": repr(e["grad"])},
               "title": f"∂L/∂b_{e['cell'][0]} = {e['grad_text']}: click for its terms"}
              for e in m["gb"]]
        bl = {"col": {e["pos"][0]: f"c={e['cell'][0]}" for e in m["gb"]}, "row": {}}
        bp = [{"origin": [0, 0], "size": [len(gb), 1], "label": "", "frame": None}]
        parts.append(fig.format("gradient ∂L/∂b", _grid("gb", gb, [len(gb), 1], bp, bl, scale)))
    if m["scatter"]:
        parts.append(_scatter_figure(m, scale))
    return "".join(parts)


def _scatter_figure(m: dict[str, Any], scale: float) -> str:
    """The transposed convolution's adjoint view: the inputs, each scattering into the outputs."""
    s, nd = m["shape"], m["shape"]["nd"]
    P, G = s["panels"], s["grids"]
    sx = [{"pos": e["pos"], "text": e["text"], "active": True,
           "data": {"cell": _cell_key(e["cell"]), "value": repr(e["value"])},
           "title": f"{_name('x', e['cell'])} = {e['text']}: click to see where it scatters"}
          for e in m["scatter"]]
    sz = [{"pos": e["pos"], "text": e["text"], "active": False,
           "data": {"cell": _cell_key(e["cell"]), "value": repr(e["value"])},
           "title": f"{_name('z', e['cell'])} = {e['text']}"} for e in m["z"]]
    xl = _labels([(e["pos"], e["cell"]) for e in m["scatter"]], nd, ("n", "m"))
    zl = _labels([(e["pos"], e["cell"]) for e in m["z"]], nd, ("x", "y"))
    return ('<figure class="scatter"><figcaption>the same transposed convolution as the adjoint '
            'of the forward one: each input x scatters x·k/D into the outputs its kernel covers '
            '(click an input)</figcaption><div class="pair">'
            f'{_grid("sx", sx, G["gx"], P["gx"], xl, scale)}'
            f'{_grid("sz", sz, G["z"], P["z"], zl, scale)}</div></figure>')


def _dims(p: list[int], nd: int) -> str:
    return f"{p[0]}" if nd == 1 else f"{p[0]}×{p[1]}"


# ------------------------------------------------------------------ page
def render_html(m: dict[str, Any]) -> str:
    """The page for a :func:`page_model` dict, as one string."""
    s = m["shape"]
    nd = s["nd"]
    title = (f"convprop explain: {s['op']}, input {_dims(s['input'], nd)}, "
             f"kernel {_dims(s['kernel'], nd)}")
    parts = [f"input {_dims(s['input'], nd)}", f"kernel {_dims(s['kernel'], nd)}",
             f"stride {_dims(s['stride'], nd)}", f"padding {_dims(s['padding'], nd)}"]
    if any(d != 1 for d in s["dilation"]):
        parts.append(f"dilation {_dims(s['dilation'], nd)}")
    if s["transposed"] and any(s["output_padding"]):
        parts.append(f"output padding {_dims(s['output_padding'], nd)}")
    if s["multichannel"]:
        parts.append(f"channels {s['channels'][0]} → {s['channels'][1]}, groups {s['groups']}, bias")
    if s["op"] in ("conv", "conv_transpose"):
        parts.append(f"D = {num(s['divisor'])} ({s['divisor_rule']})")
    parts.append(f"output {_dims(s['output'], nd)}")
    geometry = ", ".join(parts)
    eqs = [f'<div class="eq" id="eq-z-{n}" hidden>{z_equation(m, n)}</div>'
           for n in range(len(m["z"]))]
    eqs += [f'<div class="eq" id="eq-k-{a}" hidden>{k_equation(m, a)}</div>'
            for a in range(len(m["k"]))]
    eqs += [f'<div class="eq" id="eq-x-{a}" hidden>{x_equation(m, a)}</div>'
            for a in range(len(m["gx"]))]
    eqs += [f'<div class="eq" id="eq-b-{a}" hidden>{b_equation(m, a)}</div>'
            for a in range(len(m["gb"]))]
    eqs += [f'<div class="eq" id="eq-s-{a}" hidden>{s_equation(m, a)}</div>'
            for a in range(len(m["scatter"]))]
    ok = m["max_difference"] <= m["tolerance"]
    grads = "∂L/∂X" if not m["k"] else "∂L/∂K and ∂L/∂X" + (" and ∂L/∂b" if s["bias"] else "")
    check = (f"L = {num(m['loss'])}. Every gradient above is the sum of its terms; against "
             f"convprop's autograd ({grads}) the largest difference is {m['max_difference']:.3g} "
             f"({'within' if ok else 'OUTSIDE'} {m['tolerance']:.0e}).")
    model = json.dumps(m, separators=(",", ":")).replace("</", "<\\/")
    values_cls = "values" if m["values"]["given"] else "values random"
    heading = {"conv": "Z = conv(X, K)/D", "conv_transpose": "Z = conv_transpose(X, K)/D",
               "maxpool": "Z = maxpool(X)", "avgpool": "Z = avgpool(X)"}[s["op"]]
    if s["bias"]:
        heading += " + b"
    wrt = ("∂L/∂K, ∂L/∂X and ∂L/∂b" if s["bias"] else "∂L/∂K and ∂L/∂X") if m["k"] else "∂L/∂X"
    last = m["steps"]["forward"] + m["steps"]["backward"] + 1
    kwhat = ("a kernel element <b>k</b> (or its gradient) to see every term of ∂L/∂k, "
             if m["k"] else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body>
{PATTERNS}
<header><h1>{heading}, O = σ(Z), L = Σ(o − y)², and {wrt} by the chain rule</h1>
<p class="geometry">{html.escape(geometry)}</p>
<p class="{values_cls}" id="values-note">{html.escape(m['values']['note'])}</p></header>
<main>
<section class="grids">{_grids(m)}</section>
<section class="controls" aria-label="step through the forward and backward pass">
<button type="button" id="first" title="start (Home)">|◀</button>
<button type="button" id="prev" title="step back (←)">◀</button>
<button type="button" id="play" title="play / pause (space)">play</button>
<button type="button" id="next" title="step forward (→)">▶</button>
<button type="button" id="last" title="end (End)">▶|</button>
<input type="range" id="step" min="0" max="{last}" value="{last}" aria-label="step">
<span id="step-label"></span></section>
<section class="equations" aria-live="polite">
<div class="eq" id="eq-hint"><p>Hover or click an output <b>z</b> to see its window on X and its
equation; click {kwhat}an input <b>x</b> (or its gradient) to see every term of ∂L/∂x. ▶ or the
arrow keys step through the forward pass (the window slides, each z is filled in) and the backward
pass (each gradient adds up its terms).</p></div>
{''.join(eqs)}
</section>
<p class="check" id="check">{html.escape(check)}</p>
</main>
<script type="application/json" id="model">{model}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def html_page(derivation: Derivation) -> str:
    """The interactive page of ``derivation``, as one self-contained HTML string."""
    return render_html(page_model(derivation))


def write_html(derivation: Derivation, path: str | Path) -> None:
    """Write the derivation as one self-contained interactive HTML file.

    Args:
        derivation: from :func:`~.derivation.explain`; without values, the page
            uses random ones (seed :data:`RANDOM_SEED`) and says so.
        path: the ``.html`` file to write (its directory must exist).
    """
    check_output(path, "path", (".html", ".htm"))
    Path(path).write_text(html_page(derivation), encoding="utf-8")

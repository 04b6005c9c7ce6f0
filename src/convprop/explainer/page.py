"""The derivation as one interactive, offline HTML page (``convprop explain --format html``).

Two steps, so that new derivation options only ever extend the first:

* :func:`page_model` turns a :class:`~.derivation.Derivation` into plain data (a
  JSON-able dict): the padded grid, for every output ``z_{x,y}`` its window on the
  padded input and its equation with numbers, for every kernel element ``k_{i,j}``
  the terms of ``∂L/∂k_{i,j}`` (the output, the input cell it reads, each factor,
  the term and the running sum) and every value.  The numbers are the derivation's
  own (``Derivation.values``); window positions come from :mod:`convprop._windows`.
  The animation (:mod:`.animate`) draws from the same dict.
* :func:`write_html` lays the dict out as inline SVG grids, equations in
  presentation MathML (which browsers render natively) and a small script that
  only shows and hides what the page already holds: it computes no number.

The page loads nothing: no CDN, no font, no request; a Content-Security-Policy
forbids any.  Equations are built as MathML here rather than with SymPy's printer,
which reorders each product (``k·x/4``) away from the document's ``x·k``.
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
from ..seed import Pair, fmt
from ._page_assets import PATTERNS, SCRIPT, STYLE

if TYPE_CHECKING:
    from .derivation import Derivation, Values

RANDOM_SEED = 0
"""Seed of the random values a page or animation uses when the derivation has none."""
DIGITS = 4
"""Significant digits of every number shown (the page's ``data-value`` attributes keep all)."""


def num(v: float) -> str:
    """A number as the page and the animation show it: ``0.375``, ``-0.07419``."""
    return fmt(v, DIGITS)


# -------------------------------------------------------------------- model
def page_values(d: Derivation) -> Values:
    """The derivation's values; if it has none, random ones (seed :data:`RANDOM_SEED`).

    ``d`` itself is left as it was: the random values are evaluated on a shallow copy.
    """
    if d.values is not None:
        return d.values
    from .derivation import load_values

    x, k, y, source = load_values("random", d.geometry, RANDOM_SEED)
    return copy.copy(d).evaluate(x, k, y, source)


def footprints(d: Derivation) -> np.ndarray:
    """Padded-grid cell of every kernel element in every window, ``(K_H, K_W, Z_H, Z_W, 2)``.

    Element ``[j-1, i-1, y-1, x-1]`` is the ``(column, row)``, 1-based, on the padded
    input that ``k_{i,j}`` meets in ``z_{x,y}``: the window view of
    :func:`convprop._windows.windows` applied to the padded grid's cell numbers.
    """
    g = d.geometry
    (w, h), (pw, ph) = g.input_shape, g.padding
    gw, gh = w + 2 * pw, h + 2 * ph
    index = np.arange(gw * gh, dtype=np.int64).reshape(1, 1, gh, gw)
    flat = windows(index, g.kernel_shape[::-1], g.stride[::-1], (1, 1), g.output_shape[::-1])[0, 0]
    return np.stack([flat % gw + 1, flat // gw + 1], axis=-1)


def page_model(d: Derivation) -> dict[str, Any]:
    """Everything the page and the animation show, as plain data.

    Cells are ``[column, row]``, 1-based, like the document's subscripts; ``at`` is
    a cell of the *padded* input (padding ``P`` shifts the input by ``P``); an
    ``input`` of None marks a padded zero.  Lists run in the document's order
    (``z_{1,1}, z_{2,1}, …``; ``k_{1,1}, k_{2,1}, …``).  Keys:

    * ``shape``: ``input``, ``kernel``, ``output``, ``padded`` sizes ``[W, H]``,
      ``stride``, ``padding``, ``divisor`` (``D``) and ``divisor_rule``.
    * ``values``: ``source`` (where the numbers come from), ``given`` (False when
      they are random because the derivation had none) and ``note`` (a sentence).
    * ``x``: every padded-grid cell ``{at, input, value, text}``, row by row.
    * ``k``: per kernel element ``{cell, value, text, grad, grad_text,
      grad_autograd, terms}``; each term ``{output, at, input, dl_do, do_dz,
      dz_dk, value, text, running, running_text}`` (``running``: the sum of the
      terms up to this one; ``value`` is the product of the three factors).
    * ``z``: per output ``{cell, value, text, o, o_text, y, y_text, window}``;
      each window entry ``{kernel, at, input, x, k}`` (x is 0 on padding).
    * ``loss``, ``max_difference`` (symbolic vs autograd), ``tolerance``.
    * ``steps``: ``forward`` (one per output) and ``backward`` (one per term).
    """
    from .derivation import TOLERANCE

    g, v = d.geometry, page_values(d)
    (w, h), (pw, ph) = g.input_shape, g.padding
    gw, gh = w + 2 * pw, h + 2 * ph
    at = footprints(d)
    D = g.divisor

    def inside(c: int, r: int) -> list[int] | None:
        return [c - pw, r - ph] if pw < c <= pw + w and ph < r <= ph + h else None

    xs = []
    for r in range(1, gh + 1):
        for c in range(1, gw + 1):
            src = inside(c, r)
            val = float(v.x[src[1] - 1, src[0] - 1]) if src else 0.0
            xs.append({"at": [c, r], "input": src, "value": val, "text": num(val)})

    zs = []
    for (x, y) in g.outputs():
        window = []
        for (i, j) in g.kernel_elements():
            src = g.source(i, j, x, y)
            window.append({"kernel": [i, j], "at": at[j - 1, i - 1, y - 1, x - 1].tolist(),
                           "input": list(src) if src else None,
                           "x": float(v.x[src[1] - 1, src[0] - 1]) if src else 0.0,
                           "k": float(v.k[j - 1, i - 1])})
        z, o, t = (float(a[y - 1, x - 1]) for a in (v.z, v.o, v.y))
        zs.append({"cell": [x, y], "value": z, "text": num(z), "o": o, "o_text": num(o),
                   "y": t, "y_text": num(t), "window": window})

    ks = []
    for (i, j) in g.kernel_elements():
        terms, running = [], 0.0
        for term in d.terms[(i, j)]:
            x, y = term.output
            o, t = float(v.o[y - 1, x - 1]), float(v.y[y - 1, x - 1])
            src = term.source
            xv = float(v.x[src[1] - 1, src[0] - 1]) if src else 0.0
            value = float(v.terms[j - 1, i - 1, y - 1, x - 1])
            running += value
            terms.append({"output": [x, y], "at": at[j - 1, i - 1, y - 1, x - 1].tolist(),
                          "input": list(src) if src else None, "x": xv,
                          "dl_do": 2 * (o - t), "do_dz": o * (1 - o), "dz_dk": xv / D,
                          "value": value, "text": num(value),
                          "running": running, "running_text": num(running)})
        kv, gv = float(v.k[j - 1, i - 1]), float(v.grad[j - 1, i - 1])
        ks.append({"cell": [i, j], "value": kv, "text": num(kv), "grad": gv, "grad_text": num(gv),
                   "grad_autograd": float(v.grad_autograd[j - 1, i - 1]), "terms": terms})

    given = d.values is not None
    note = (f"Values: {v.source}." if given else
            f"No values were given, so these are random numbers with a fixed seed "
            f"({v.source}); give your own with --values FILE.")
    return {
        "shape": {"input": [w, h], "kernel": list(g.kernel_shape), "output": list(g.output_shape),
                  "padded": [gw, gh], "stride": list(g.stride), "padding": [pw, ph],
                  "divisor": D, "divisor_rule": g.divisor_rule},
        "values": {"source": v.source, "given": given, "note": note},
        "x": xs, "k": ks, "z": zs,
        "loss": float(v.loss), "max_difference": float(v.max_difference), "tolerance": TOLERANCE,
        "steps": {"forward": len(zs), "backward": len(ks) * len(zs)},
    }


# ------------------------------------------------------------------ MathML
def _mn(v: float, wrap: bool = True) -> str:
    """A number; with ``wrap``, negatives in parentheses so that products read unambiguously."""
    t = num(v)
    if t.startswith("-"):
        return f"<mo>(</mo><mn>−{t[1:]}</mn><mo>)</mo>" if wrap else f"<mn>−{t[1:]}</mn>"
    return f"<mn>{t}</mn>"


def _sub(name: str, cell: Pair | list[int]) -> str:
    """``x_{i,j}`` as ``<msub>``."""
    return (f"<msub><mi>{name}</mi><mrow><mn>{cell[0]}</mn><mo>,</mo><mn>{cell[1]}</mn>"
            f"</mrow></msub>")


def _d(top: str, bottom: str) -> str:
    return f"<mfrac><mrow><mo>∂</mo>{top}</mrow><mrow><mo>∂</mo>{bottom}</mrow></mfrac>"


def _math(body: str) -> str:
    return f"<math><mrow>{body}</mrow></math>"


_DOT = "<mo>·</mo>"
ROW_PRODUCTS = 6  # products per line of a z equation


def _z_rows(m: dict[str, Any], n: int) -> list[tuple[str, str]]:
    """``(left, right)`` rows of the equation of output ``n``: symbols, numbers, result."""
    z, D = m["z"][n], m["shape"]["divisor"]
    sym, val = [], []
    for e in z["window"]:
        pad = e["input"] is None
        cls = ' class="pad"' if pad else ""
        xs = "<mn>0</mn>" if pad else _sub("x", e["input"])
        sym.append(f"<mrow{cls}>{xs}{_DOT}{_sub('k', e['kernel'])}</mrow>")
        val.append(f"<mrow{cls}>{_mn(e['x'])}{_DOT}{_mn(e['k'])}</mrow>")
    tail = f"<mo>)</mo><mo>/</mo>{_mn(D)}" if D != 1 else "<mo>)</mo>"
    rows: list[tuple[str, str]] = []
    for first, items in ((_sub("z", z["cell"]), sym), ("", val)):
        chunks = [items[a:a + ROW_PRODUCTS] for a in range(0, len(items), ROW_PRODUCTS)]
        for c, chunk in enumerate(chunks):
            lead = "<mo>=</mo><mo>(</mo>" if c == 0 else "<mo>+</mo>"
            body = lead + "<mo>+</mo>".join(chunk) + (tail if c == len(chunks) - 1 else "")
            rows.append((first if c == 0 else "", body))
    rows.append(("", f"<mo>=</mo>{_mn(z['value'], wrap=False)}"))
    return rows


def _z_equation(m: dict[str, Any], n: int) -> str:
    z = m["z"][n]
    rows = "".join(f"<tr><td>{_math(a) if a else ''}</td><td>{_math(b)}</td></tr>"
                   for a, b in _z_rows(m, n))
    o = _math(f"{_sub('o', z['cell'])}<mo>=</mo><mi>σ</mi><mo>(</mo>{_sub('z', z['cell'])}"
              f"<mo>)</mo><mo>=</mo>{_mn(z['o'], False)}<mo>,</mo><mspace width='1em'/>"
              f"{_sub('y', z['cell'])}<mo>=</mo>{_mn(z['y'], False)}")
    return f'<table class="eqn">{rows}</table><p>{o}</p>'


def _term_symbols(t: dict[str, Any], D: float) -> str:
    o, y = _sub("o", t["output"]), _sub("y", t["output"])
    x = _sub("x", t["input"]) if t["input"] else "<mn>0</mn>"
    over = f"<mo>/</mo>{_mn(D)}" if D != 1 else ""
    return (f"<mn>2</mn><mo>(</mo>{o}<mo>−</mo>{y}<mo>)</mo>{_DOT}{o}<mo>(</mo><mn>1</mn>"
            f"<mo>−</mo>{o}<mo>)</mo>{_DOT}{x}{over}")


def _term_numbers(m: dict[str, Any], t: dict[str, Any]) -> str:
    z = m["z"][_output_index(m, t["output"])]
    over = f"<mo>/</mo>{_mn(m['shape']['divisor'])}" if m["shape"]["divisor"] != 1 else ""
    return (f"<mn>2</mn><mo>(</mo>{_mn(z['o'])}<mo>−</mo>{_mn(z['y'])}<mo>)</mo>{_DOT}"
            f"{_mn(z['o'])}<mo>(</mo><mn>1</mn><mo>−</mo>{_mn(z['o'])}<mo>)</mo>{_DOT}"
            f"{_mn(t['x'])}{over}")


def _output_index(m: dict[str, Any], cell: list[int]) -> int:
    zw = m["shape"]["output"][0]
    return (cell[1] - 1) * zw + cell[0] - 1


def _k_equation(m: dict[str, Any], a: int) -> str:
    k, D = m["k"][a], m["shape"]["divisor"]
    kc, zxy = _sub("k", k["cell"]), _sub("z", ["x", "y"])
    head = _math(f"{_d('<mi>L</mi>', kc)}<mo>=</mo><munder><mo>∑</mo><mrow><mi>x</mi><mo>,</mo>"
                 f"<mi>y</mi></mrow></munder>{_d('<mi>L</mi>', _sub('o', ['x', 'y']))}{_DOT}"
                 f"{_d(_sub('o', ['x', 'y']), zxy)}{_DOT}{_d(zxy, kc)}")
    rows = []
    for b, t in enumerate(k["terms"]):
        cls = "term vanish" if t["input"] is None else "term"
        why = ' <span class="why">(padding)</span>' if t["input"] is None else ""
        rows.append(f'<tr class="{cls}" data-term="{b}"><td>{"=" if b == 0 else "+"}</td>'
                    f'<td class="src">{_math(_sub("z", t["output"]))}</td>'
                    f'<td>{_math(_term_symbols(t, D))}</td><td>=</td>'
                    f'<td>{_math(_term_numbers(m, t))}</td><td>=</td>'
                    f'<td class="num">{_math(_mn(t["value"], False))}{why}</td></tr>')
    total = (f'<tr class="total"><td>=</td><td></td><td colspan="4">sum of the '
             f'{len(k["terms"])} terms</td><td class="num">{_math(_mn(k["grad"], False))}</td></tr>')
    auto = (f'<p class="check">autograd\'s ∂L/∂k<sub>{k["cell"][0]},{k["cell"][1]}</sub> '
            f'(<code>convprop.seed.forward_backward</code>): '
            f'<span class="autograd">{num(k["grad_autograd"])}</span></p>')
    return (f'<p>{head}</p><table class="eqn terms">{"".join(rows)}{total}</table>'
            f'<p class="running" hidden></p>{auto}')


# -------------------------------------------------------------------- SVG
CELL = 70
MAX_GRID_HEIGHT = 560
"""Tallest grid drawn at full size, in CSS pixels; taller ones are scaled down."""
MAX_GRIDS_WIDTH = 1800
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
"""The page's Content-Security-Policy: nothing may be loaded from anywhere."""


def _grid(role: str, cells: list[dict[str, Any]], size: list[int], axis: tuple[str, str],
          origin: list[int] | None = None, scale: float = 1.0) -> str:
    """One SVG grid, drawn ``scale`` times its natural size; ``origin`` (the padding) numbers
    only the real cells' columns and rows."""
    W, H = size
    px, py = origin or [0, 0]
    m = 20
    vw, vh = W * CELL + m + 2, H * CELL + m + 2
    out = [f'<svg class="grid" data-grid="{role}" viewBox="0 0 {vw} {vh}" width="{vw * scale:.0f}" '
           f'height="{vh * scale:.0f}" role="img" aria-label="{role}">']
    for c in range(1, W + 1):
        if 0 < c - px <= W - 2 * px:
            out.append(f'<text class="idx" x="{m + (c - 0.5) * CELL}" y="14">{axis[0]}={c - px}</text>')
    for r in range(1, H + 1):
        if 0 < r - py <= H - 2 * py:
            out.append(f'<text class="idx" x="10" y="{m + (r - 0.5) * CELL + 4}" '
                       f'transform="rotate(-90 10 {m + (r - 0.5) * CELL})">{axis[1]}={r - py}</text>')
    for n, cell in enumerate(cells):
        c, r = cell["pos"]
        x0, y0 = m + (c - 1) * CELL, m + (r - 1) * CELL
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
    if origin and any(origin):
        out.append(f'<rect class="frame" x="{m + px * CELL}" y="{m + py * CELL}" '
                   f'width="{(W - 2 * px) * CELL}" height="{(H - 2 * py) * CELL}"/>')
    out.append("</svg>")
    return "".join(out)


def _cell_key(cell: list[int] | None) -> str:
    return "" if cell is None else f"{cell[0]},{cell[1]}"


def _grids(m: dict[str, Any]) -> str:
    s = m["shape"]
    x = [{"pos": e["at"], "pad": e["input"] is None, "text": e["text"],
          "data": {"at": _cell_key(e["at"]), "input": _cell_key(e["input"]), "value": repr(e["value"])},
          "title": (f"x_{{{e['input'][0]},{e['input'][1]}}} = {e['text']}" if e["input"]
                    else "padding: 0")} for e in m["x"]]
    k = [{"pos": e["cell"], "text": e["text"], "active": True,
          "data": {"cell": _cell_key(e["cell"]), "value": repr(e["value"])},
          "title": f"k_{{{e['cell'][0]},{e['cell'][1]}}} = {e['text']}: click for ∂L/∂k"}
         for e in m["k"]]
    z = [{"pos": e["cell"], "text": e["text"], "active": True,
          "data": {"cell": _cell_key(e["cell"]), "value": repr(e["value"])},
          "title": f"z_{{{e['cell'][0]},{e['cell'][1]}}} = {e['text']}: hover or click for its window"}
         for e in m["z"]]
    g = [{"pos": e["cell"], "text": e["grad_text"], "active": True,
          "data": {"cell": _cell_key(e["cell"]), "value": repr(e["grad"])},
          "title": f"∂L/∂k_{{{e['cell'][0]},{e['cell'][1]}}} = {e['grad_text']}: click for its terms"}
         for e in m["k"]]
    fig = '<figure><figcaption>{}</figcaption>{}</figure>'
    # large grids are drawn smaller, so that the four grids and the equation fit on a screen
    tall = max(s["padded"][1], s["output"][1]) * CELL
    wide = (s["padded"][0] + s["output"][0] + 2 * s["kernel"][0]) * CELL + 200
    scale = min(1.0, MAX_GRID_HEIGHT / tall, MAX_GRIDS_WIDTH / wide)
    return "".join([
        fig.format(f"input X ({s['input'][0]}×{s['input'][1]}" +
                   (f", padding {s['padding'][0]}×{s['padding'][1]}: hatched zeros)"
                    if any(s["padding"]) else ")"),
                   _grid("x", x, s["padded"], ("i", "j"), s["padding"], scale=scale)),
        fig.format("kernel K", _grid("k", k, s["kernel"], ("i", "j"), scale=scale)),
        fig.format(f"output Z = conv(X, K)/{num(s['divisor'])}",
                   _grid("z", z, s["output"], ("x", "y"), scale=scale)),
        fig.format("gradient ∂L/∂K", _grid("g", g, s["kernel"], ("i", "j"), scale=scale)),
    ])


# ------------------------------------------------------------------ page
def render_html(m: dict[str, Any]) -> str:
    """The page for a :func:`page_model` dict, as one string."""
    s = m["shape"]
    title = (f"convprop explain: S_X = ({s['input'][0]}, {s['input'][1]}), "
             f"S_K = ({s['kernel'][0]}, {s['kernel'][1]})")
    geometry = (f"input {s['input'][0]}×{s['input'][1]}, kernel {s['kernel'][0]}×{s['kernel'][1]}, "
                f"stride {s['stride'][0]}×{s['stride'][1]}, padding {s['padding'][0]}×"
                f"{s['padding'][1]}, D = {num(s['divisor'])} ({s['divisor_rule']}), "
                f"output {s['output'][0]}×{s['output'][1]}")
    eqs = [f'<div class="eq" id="eq-z-{n}" hidden>{_z_equation(m, n)}</div>'
           for n in range(len(m["z"]))]
    eqs += [f'<div class="eq" id="eq-k-{a}" hidden>{_k_equation(m, a)}</div>'
            for a in range(len(m["k"]))]
    ok = m["max_difference"] <= m["tolerance"]
    check = (f"L = {num(m['loss'])}. Every ∂L/∂k above is the sum of its terms; against "
             f"convprop's autograd the largest difference is {m['max_difference']:.3g} "
             f"({'within' if ok else 'OUTSIDE'} {m['tolerance']:.0e}).")
    model = json.dumps(m, separators=(",", ":")).replace("</", "<\\/")
    values_cls = "values" if m["values"]["given"] else "values random"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body>
{PATTERNS}
<header><h1>Z = conv(X, K)/D, O = σ(Z), L = Σ(o − y)², and ∂L/∂K by the chain rule</h1>
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
<input type="range" id="step" min="0" max="{m['steps']['forward'] + m['steps']['backward'] + 1}"
 value="{m['steps']['forward'] + m['steps']['backward'] + 1}" aria-label="step">
<span id="step-label"></span></section>
<section class="equations" aria-live="polite">
<div class="eq" id="eq-hint"><p>Hover or click an output <b>z</b> to see its window on X and its
equation; click a kernel element <b>k</b> (or its gradient) to see every term of ∂L/∂k. ▶ or the
arrow keys step through the forward pass (the window slides, each z is filled in) and the backward
pass (each ∂L/∂k adds up its terms).</p></div>
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

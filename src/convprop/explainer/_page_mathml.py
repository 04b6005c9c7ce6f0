"""The equations of the interactive page as presentation MathML (browsers render it natively).

Built here rather than with SymPy's printer, which reorders each product (``k·x/4``)
away from the document's ``x·k``.  Each function reads one entry of the
:func:`.page.page_model` dict and writes its equation with the numbers it holds.
"""

from __future__ import annotations

from typing import Any

from ..seed import Pair, fmt

DIGITS = 4
"""Significant digits of every number shown (the page's ``data-value`` attributes keep all)."""


def num(v: float) -> str:
    """A number as the page and the animation show it: ``0.375``, ``-0.07419``."""
    return fmt(v, DIGITS)


def _mn(v: float, wrap: bool = True) -> str:
    """A number; with ``wrap``, negatives in parentheses so that products read unambiguously."""
    t = num(v)
    if t.startswith("-"):
        return f"<mo>(</mo><mn>−{t[1:]}</mn><mo>)</mo>" if wrap else f"<mn>−{t[1:]}</mn>"
    return f"<mn>{t}</mn>"


def _sub(name: str, cell: Pair | list[Any]) -> str:
    """``x_{i,j}`` (any number of indices) as ``<msub>``."""
    idx = "<mo>,</mo>".join(f"<mn>{c}</mn>" if isinstance(c, int) else f"<mi>{c}</mi>" for c in cell)
    return f"<msub><mi>{name}</mi><mrow>{idx}</mrow></msub>"


def _d(top: str, bottom: str) -> str:
    return f"<mfrac><mrow><mo>∂</mo>{top}</mrow><mrow><mo>∂</mo>{bottom}</mrow></mfrac>"


def _math(body: str) -> str:
    return f"<math><mrow>{body}</mrow></math>"


_DOT = "<mo>·</mo>"
ROW_PRODUCTS = 6  # products per line of a z equation


def _z_rows(m: dict[str, Any], n: int) -> list[tuple[str, str]]:
    """``(left, right)`` rows of the equation of output ``n``: symbols, numbers, result."""
    z, D, op = m["z"][n], m["shape"]["divisor"], m["shape"]["op"]
    sym, val = [], []
    for e in z["window"]:
        cls = ' class="pad"' if e["input"] is None else (' class="pick"' if e["pick"] else "")
        xs = "<mn>0</mn>" if e["input"] is None else _sub("x", e["input"])
        if e["k"] is None:  # pooling
            if e["input"] is not None or op == "avgpool":
                sym.append(f"<mrow{cls}>{xs}</mrow>")
                val.append(f"<mrow{cls}>{_mn(e['x'])}</mrow>")
            continue
        sym.append(f"<mrow{cls}>{xs}{_DOT}{_sub('k', e['kernel'])}</mrow>")
        val.append(f"<mrow{cls}>{_mn(e['x'])}{_DOT}{_mn(e['k'])}</mrow>")
    if op == "maxpool":
        head, sep, tail = "<mo>=</mo><mi>max</mi><mo>(</mo>", "<mo>,</mo>", "<mo>)</mo>"
    else:
        head, sep = "<mo>=</mo><mo>(</mo>", "<mo>+</mo>"
        tail = f"<mo>)</mo><mo>/</mo>{_mn(D)}" if D != 1 else "<mo>)</mo>"
    rows: list[tuple[str, str]] = []
    for first, items, bias in ((_sub("z", z["cell"]), sym, _sub("b", [z["ch"]])),
                               ("", val, _mn(z["b"]) if z["b"] is not None else "")):
        chunks = [items[a:a + ROW_PRODUCTS] for a in range(0, len(items), ROW_PRODUCTS)]
        for c, chunk in enumerate(chunks):
            lead = head if c == 0 else sep
            end = tail + (f"<mo>+</mo>{bias}" if z["b"] is not None else "")
            body = lead + sep.join(chunk) + (end if c == len(chunks) - 1 else "")
            rows.append((first if c == 0 else "", body))
    rows.append(("", f"<mo>=</mo>{_mn(z['value'], wrap=False)}"))
    return rows


def z_equation(m: dict[str, Any], n: int) -> str:
    z = m["z"][n]
    rows = "".join(f"<tr><td>{_math(a) if a else ''}</td><td>{_math(b)}</td></tr>"
                   for a, b in _z_rows(m, n))
    o = _math(f"{_sub('o', z['cell'])}<mo>=</mo><mi>σ</mi><mo>(</mo>{_sub('z', z['cell'])}"
              f"<mo>)</mo><mo>=</mo>{_mn(z['o'], False)}<mo>,</mo><mspace width='1em'/>"
              f"{_sub('y', z['cell'])}<mo>=</mo>{_mn(z['y'], False)}")
    pick = ""
    if m["shape"]["op"] == "maxpool":
        w = next(e for e in z["window"] if e["pick"])
        pick = (f'<p class="why-pick">the window\'s first maximum (scan order, as PyTorch) is '
                f'{_math(_sub("x", w["input"]))}: the backward sends ∂L/∂{_math(_sub("z", z["cell"]))}'
                f' to it alone</p>')
    return f'<table class="eqn">{rows}</table><p>{o}</p>{pick}'


def _term_symbols(t: dict[str, Any], D: float) -> str:
    o, y = _sub("o", t["output"]), _sub("y", t["output"])
    x = _sub("x", t["input"]) if t["input"] else "<mn>0</mn>"
    over = f"<mo>/</mo>{_mn(D)}" if D != 1 else ""
    return (f"<mn>2</mn><mo>(</mo>{o}<mo>−</mo>{y}<mo>)</mo>{_DOT}{o}<mo>(</mo><mn>1</mn>"
            f"<mo>−</mo>{o}<mo>)</mo>{_DOT}{x}{over}")


def _term_numbers(m: dict[str, Any], t: dict[str, Any]) -> str:
    z = m["z"][t["zi"]]
    over = f"<mo>/</mo>{_mn(m['shape']['divisor'])}" if m["shape"]["divisor"] != 1 else ""
    return (f"<mn>2</mn><mo>(</mo>{_mn(z['o'])}<mo>−</mo>{_mn(z['y'])}<mo>)</mo>{_DOT}"
            f"{_mn(z['o'])}<mo>(</mo><mn>1</mn><mo>−</mo>{_mn(z['o'])}<mo>)</mo>{_DOT}"
            f"{_mn(t['x'])}{over}")


def _zero_why(zero: str | None) -> str:
    return f' <span class="why">({zero or "padding"})</span>'


def k_equation(m: dict[str, Any], a: int) -> str:
    k, D = m["k"][a], m["shape"]["divisor"]
    kc, zxy = _sub("k", k["cell"]), _sub("z", ["x", "y"])
    head = _math(f"{_d('<mi>L</mi>', kc)}<mo>=</mo><munder><mo>∑</mo><mrow><mi>x</mi><mo>,</mo>"
                 f"<mi>y</mi></mrow></munder>{_d('<mi>L</mi>', _sub('o', ['x', 'y']))}{_DOT}"
                 f"{_d(_sub('o', ['x', 'y']), zxy)}{_DOT}{_d(zxy, kc)}")
    rows = []
    for b, t in enumerate(k["terms"]):
        cls = "term vanish" if t["input"] is None else "term"
        why = _zero_why(t["zero"]) if t["input"] is None else ""
        rows.append(f'<tr class="{cls}" data-term="{b}"><td>{"=" if b == 0 else "+"}</td>'
                    f'<td class="src">{_math(_sub("z", t["output"]))}</td>'
                    f'<td>{_math(_term_symbols(t, D))}</td><td>=</td>'
                    f'<td>{_math(_term_numbers(m, t))}</td><td>=</td>'
                    f'<td class="num">{_math(_mn(t["value"], False))}{why}</td></tr>')
    total = (f'<tr class="total"><td>=</td><td></td><td colspan="4">sum of the '
             f'{len(k["terms"])} terms</td><td class="num">{_math(_mn(k["grad"], False))}</td></tr>')
    name = "<sub>" + ",".join(str(c) for c in k["cell"]) + "</sub>"
    auto = (f'<p class="check">autograd\'s ∂L/∂k{name} (<code>convprop.functional</code> and '
            f'<code>backward()</code>): <span class="autograd">{num(k["grad_autograd"])}</span></p>')
    return (f'<p>{head}</p><table class="eqn terms">{"".join(rows)}{total}</table>'
            f'<p class="running" hidden></p>{auto}')


def _x_sentence(m: dict[str, Any]) -> str:
    op = m["shape"]["op"]
    if op == "conv":
        return ("∂L/∂X is a transposed convolution of ∂L/∂Z with K: each x collects ∂L/∂z·k/D "
                "from every output whose window reads it.")
    if op == "conv_transpose":
        return ("∂L/∂X of a transposed convolution is a direct convolution of ∂L/∂Z with K: each "
                "x collects ∂L/∂z·k/D from every output it scatters into.  The outputs lit are "
                "the adjoint view of the forward: x_n adds x_n·k_t/D into output "
                "(n − 1)S + (t − 1)d + 1 − P for every kernel element t.")
    if op == "avgpool":
        return "Average pooling sends ∂L/∂z/D to every input of the window."
    return ("Max pooling sends ∂L/∂z to the window's first maximum only (as PyTorch); the other "
            "inputs of the window get 0.")


def x_equation(m: dict[str, Any], a: int) -> str:
    g, op, D = m["gx"][a], m["shape"]["op"], m["shape"]["divisor"]
    xc = _sub("x", g["cell"])
    zs = _sub("z", ["…"])
    head = _math(f"{_d('<mi>L</mi>', xc)}<mo>=</mo><munder><mo>∑</mo><mi>z</mi></munder>"
                 f"{_d('<mi>L</mi>', zs)}{_DOT}{_d(zs, xc)}")
    rows = []
    for b, t in enumerate(g["terms"]):
        if t["output"] is None:
            kk = _sub("k", t["kernel"]) if t["kernel"] else ""
            rows.append(f'<tr class="term vanish" data-term="{b}"><td>{"=" if b == 0 else "+"}</td>'
                        f'<td class="src"></td><td colspan="3">{_math(kk)} meets a zero of ∂L/∂Z '
                        f'(inserted or padding)</td><td>=</td><td class="num">{_math("<mn>0</mn>")}'
                        f'</td></tr>')
            continue
        z = _sub("z", t["output"])
        if op == "maxpool":
            dz_sym = f"<mo>[</mo>{xc}<mtext> is the first max of </mtext>{z}<mo>]</mo>"
            dz_num = _mn(t["dz_dx"])
        elif op == "avgpool":
            dz_sym, dz_num = f"<mn>1</mn><mo>/</mo>{_mn(D)}", f"<mn>1</mn><mo>/</mo>{_mn(D)}"
        else:
            over = f"<mo>/</mo>{_mn(D)}" if D != 1 else ""
            dz_sym = _sub("k", t["kernel"]) + over
            dz_num = _mn(m["k"][t["ki"]]["value"]) + over
        rows.append(f'<tr class="term" data-term="{b}"><td>{"=" if b == 0 else "+"}</td>'
                    f'<td class="src">{_math(z)}</td>'
                    f'<td>{_math(_d("<mi>L</mi>", z) + _DOT + dz_sym)}</td><td>=</td>'
                    f'<td>{_math(_mn(t["dl_dz"]) + _DOT + dz_num)}</td><td>=</td>'
                    f'<td class="num">{_math(_mn(t["value"], False))}</td></tr>')
    total = (f'<tr class="total"><td>=</td><td></td><td colspan="4">sum of the '
             f'{len(g["terms"])} terms</td><td class="num">{_math(_mn(g["grad"], False))}</td></tr>')
    name = "<sub>" + ",".join(str(c) for c in g["cell"]) + "</sub>"
    auto = (f'<p class="check">autograd\'s ∂L/∂x{name}: '
            f'<span class="autograd">{num(g["grad_autograd"])}</span></p>')
    return (f'<p>{head}</p><p class="note">{_x_sentence(m)} ∂L/∂z = 2(o − y)·o(1 − o).</p>'
            f'<table class="eqn terms">{"".join(rows)}{total}</table>'
            f'<p class="running" hidden></p>{auto}')


def b_equation(m: dict[str, Any], a: int) -> str:
    g = m["gb"][a]
    bc = _sub("b", g["cell"])
    head = _math(f"{_d('<mi>L</mi>', bc)}<mo>=</mo><munder><mo>∑</mo><mi>z</mi></munder>"
                 f"{_d('<mi>L</mi>', _sub('z', ['…']))}{_DOT}<mn>1</mn>")
    rows = []
    for b, t in enumerate(g["terms"]):
        z = _sub("z", t["output"])
        rows.append(f'<tr class="term" data-term="{b}"><td>{"=" if b == 0 else "+"}</td>'
                    f'<td class="src">{_math(z)}</td><td>{_math(_d("<mi>L</mi>", z))}</td><td>=</td>'
                    f'<td class="num">{_math(_mn(t["value"], False))}</td></tr>')
    total = (f'<tr class="total"><td>=</td><td></td><td colspan="2">sum of the '
             f'{len(g["terms"])} terms</td><td class="num">{_math(_mn(g["grad"], False))}</td></tr>')
    auto = (f'<p class="check">autograd\'s ∂L/∂b<sub>{g["cell"][0]}</sub>: '
            f'<span class="autograd">{num(g["grad_autograd"])}</span></p>')
    return (f'<p>{head}</p><p class="note">b<sub>{g["cell"][0]}</sub> is added to every output '
            f'of channel {g["cell"][0]}, so ∂L/∂b sums their ∂L/∂z = 2(o − y)·o(1 − o).</p>'
            f'<table class="eqn terms">{"".join(rows)}{total}</table>'
            f'<p class="running" hidden></p>{auto}')


def s_equation(m: dict[str, Any], a: int) -> str:
    """Where input ``a`` of the transposed convolution goes: ``z += x·k/D`` for every target."""
    e = m["scatter"][a]
    x = _sub("x", e["cell"])
    D = m["shape"]["divisor"]
    over = "" if D == 1 else f"<mo>/</mo><mn>{num(D)}</mn>"
    rows = []
    for b, t in enumerate(e["targets"]):
        k = _sub("k", t["kernel"])
        rows.append(f'<tr class="term" data-term="{b}"><td>{_math(_sub("z", t["output"]))}</td>'
                    f'<td>+=</td><td>{_math(x + _DOT + k + over)}</td><td>=</td>'
                    f'<td class="num">{_math(_mn(t["value"], False))}</td></tr>')
    if not rows:
        rows.append('<tr class="term"><td colspan="5">no output: every target lies outside Z'
                    '</td></tr>')
    return (f'<p>{_math(x)} scatters into {len(e["targets"])} outputs (the adjoint view: output '
            f'(n − 1)S + (i − 1)d + 1 − P per axis for kernel element i).</p>'
            f'<table class="eqn terms">{"".join(rows)}</table>')

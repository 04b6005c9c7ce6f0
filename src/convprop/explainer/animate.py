"""The derivation as an animated GIF (``convprop explain --animate out.gif``).

Forward: the kernel's window slides over the padded input (the zero-inserted one of
the transposed convolution; one panel per channel), one output at a time, and each
``z`` is filled in as its sum completes.  Backward: each ``∂L/∂k`` adds up its terms
(the output each one comes from and the input cell it reads light up) until the
gradient is complete, then, with a bias, each ``∂L/∂b`` adds up the ``∂L/∂z`` of its
channel's outputs; pooling has no kernel, so there each ``∂L/∂x`` adds up the
outputs whose windows hold it.  Every frame is labelled with its
running equation.  The numbers are those of :func:`.page.page_model`, the data the
interactive page shows, so the two never disagree.

Drawn with matplotlib on a bare Figure (Agg), written with
:class:`matplotlib.animation.PillowWriter`.  The GIF's comment holds, as JSON, the
label of every frame and the text of every cell of the last frame exactly as drawn,
so that a reader (and the tests) can check the numbers without reading pixels.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.animation import PillowWriter

from .._args import check_output
from .page import num, page_model

if TYPE_CHECKING:
    from .model import DerivationModel as Derivation

MAX_TERM_FRAMES = 120
"""Above this many chain-rule terms, the backward pass shows one frame per kernel element."""
DURATION_MS = {"forward": 700, "backward": 350, "end": 3000}
"""How long each kind of frame stays up."""

_FOOT, _FOOT_BG = "#4C72B0", "#d6e3f5"
_TERM, _TERM_BG = "#C8631E", "#fae0cc"
_PAD, _PAD_BG = "#C44E52", "#f6dede"
_SEL = "#ffe38a"
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


@dataclass(frozen=True)
class Frame:
    """One frame: ``kind`` is ``"forward"`` (output ``n``), ``"backward"`` (gradient
    ``a`` of ``grad`` — ``"k"``, ``"b"``, or ``"x"`` for pooling — with its terms up to ``b``;
    ``b`` None = all at once) or ``"end"``."""

    kind: str
    n: int = 0
    a: int = 0
    b: int | None = None
    grad: str = "k"


def frame_plan(model: dict[str, Any]) -> list[Frame]:
    """The frames, in order: one per output, then one per backward step of the page
    (``model["steps"]["plan"]``: a chain-rule term of ``∂L/∂k``, then of ``∂L/∂b``, or of
    ``∂L/∂x`` for pooling; past :data:`MAX_TERM_FRAMES` terms, one per gradient), then the
    finished state."""
    plan = model["steps"]["plan"]
    frames = [Frame("forward", n=n) for n in range(len(model["z"]))]
    if len(plan) <= MAX_TERM_FRAMES:
        frames += [Frame("backward", a=a, b=b, grad=g) for g, a, b in plan]
    else:
        frames += list({Frame("backward", a=a, grad=g): None for g, a, _ in plan})
    frames.append(Frame("end"))
    return frames


def _s(name: str, cell: list[int]) -> str:
    return name + ",".join(str(c).translate(_SUBSCRIPT) for c in cell)


def _p(v: float) -> str:
    """A number inside a product: negatives in parentheses."""
    t = num(v).replace("-", "−")
    return f"({t})" if t.startswith("−") else t


def label(model: dict[str, Any], f: Frame) -> str:
    """The running equation of one frame, in plain Unicode."""
    s = model["shape"]
    D, op = s["divisor"], s["op"]
    over = f"/{num(D)}" if D != 1 else ""
    if f.kind == "forward":
        z = model["z"][f.n]
        bias = (f" + {_s('b', [z['ch']])}", f" + {_p(z['b'])}") if z["b"] is not None else ("", "")
        if op in ("maxpool", "avgpool"):
            live = [e for e in z["window"] if e["input"] is not None or op == "avgpool"]
            sym = ", " if op == "maxpool" else " + "
            xs = sym.join(_s("x", e["input"]) if e["input"] else "0" for e in live)
            vs = sym.join(_p(e["x"]) for e in live)
            f_sym, f_val = ((f"max({xs})", f"max({vs})") if op == "maxpool" else
                            (f"({xs})/{num(D)}", f"({vs})/{num(D)}"))
        else:
            xs = " + ".join(f"{_s('x', e['input']) if e['input'] else '0'}·{_s('k', e['kernel'])}"
                            for e in z["window"])
            vs = " + ".join(f"{_p(e['x'])}·{_p(e['k'])}" for e in z["window"])
            f_sym, f_val = f"({xs}){over}{bias[0]}", f"({vs}){over}{bias[1]}"
        return (f"forward {f.n + 1}/{len(model['z'])}:  {_s('z', z['cell'])} = {f_sym}\n"
                f"= {f_val} = {num(z['value'])}")
    if f.kind == "backward":
        grads = {"k": model["k"], "b": model["gb"], "x": model["gx"]}[f.grad]
        g = grads[f.a]
        name = f"∂L/∂{_s(f.grad, g['cell'])}"
        head = f"backward {f.a + 1}/{len(grads)}"
        if f.b is None:
            return (f"{head}:  {name} = the sum of {len(g['terms'])} terms\n"
                    f"= {num(g['grad'])}")
        t = g["terms"][f.b]
        if f.grad == "b":
            z = model["z"][t["zi"]]
            o, y = _s("o", t["output"]), _s("y", t["output"])
            return (f"{head}, term {f.b + 1}/{len(g['terms'])}:  {name} += "
                    f"∂L/∂{_s('z', t['output'])} = 2({o} − {y})·{o}(1 − {o})\n"
                    f"= 2({_p(z['o'])} − {_p(z['y'])})·{_p(z['o'])}(1 − {_p(z['o'])}) = "
                    f"{num(t['value'])};  running sum {num(t['running'])}")
        if f.grad == "k":
            o, y = _s("o", t["output"]), _s("y", t["output"])
            x = _s("x", t["input"]) if t["input"] else f"0 ({t['zero'] or 'padding'})"
            z = model["z"][t["zi"]]
            return (f"{head}, term {f.b + 1}/{len(g['terms'])}:  {name} += "
                    f"2({o} − {y})·{o}(1 − {o})·{x}{over}\n"
                    f"= 2({_p(z['o'])} − {_p(z['y'])})·{_p(z['o'])}(1 − {_p(z['o'])})·"
                    f"{_p(t['x'])}{over} = {num(t['value'])};  running sum {num(t['running'])}")
        if t["output"] is None:
            return (f"{head}, term {f.b + 1}/{len(g['terms'])}:  {name} += 0 (a zero of ∂L/∂Z)"
                    f";  running sum {num(t['running'])}")
        zname = _s("z", t["output"])
        dz = {"maxpool": f"[{_s('x', g['cell'])} is the first max of {zname}]",
              "avgpool": f"1/{num(D)}"}.get(op, f"{_s('k', t['kernel'] or [])}{over}")
        return (f"{head}, term {f.b + 1}/{len(g['terms'])}:  {name} += ∂L/∂{zname}·{dz}\n"
                f"= {_p(t['dl_dz'])}·{_p(t['dz_dx'])} = {num(t['value'])};  running sum "
                f"{num(t['running'])}")
    what = {"conv": f"conv(X, K){over}", "conv_transpose": f"conv_transpose(X, K){over}",
            "maxpool": "maxpool(X)", "avgpool": "avgpool(X)"}[op]
    done = ("∂L/∂K, ∂L/∂X" if model["k"] else "∂L/∂X") + (", ∂L/∂b" if model["gb"] else "")
    return (f"Z = {what}, O = σ(Z), L = Σ(o − y)² = {num(model['loss'])};  {done} complete "
            f"(largest difference from autograd {model['max_difference']:.2g})")


class _Board:
    """The grids (padded X, K, Z, ∂L/∂K, ∂L/∂X; one panel per channel) as patches and
    texts, updated in place."""

    def __init__(self, fig: Any, model: dict[str, Any]) -> None:
        from matplotlib.patches import Rectangle

        self.m = model
        self.columns = int(fig.get_figwidth() * 15)  # characters per caption line
        s = model["shape"]
        G, P = s["grids"], s["panels"]
        xcells = [e["at"] for e in model["x"]]
        grids = [("x", G["x"], P["x"], "input X" + (", zeros hatched" if P["x"][0]["frame"] else ""),
                  xcells)]
        if model["k"]:
            grids.append(("k", G["k"], P["k"], "kernel K", [e["pos"] for e in model["k"]]))
        zname = {"conv": f"Z = conv(X, K)/{num(s['divisor'])}",
                 "conv_transpose": f"Z = conv_transpose(X, K)/{num(s['divisor'])}",
                 "maxpool": "Z = maxpool(X)", "avgpool": "Z = avgpool(X)"}[s["op"]]
        grids.append(("z", G["z"], P["z"], zname, [e["pos"] for e in model["z"]]))
        if model["k"]:
            grids.append(("g", G["k"], P["k"], "∂L/∂K", [e["pos"] for e in model["k"]]))
        grids.append(("gx", G["gx"], P["gx"], "∂L/∂X", [e["pos"] for e in model["gx"]]))
        if model["gb"]:
            bias_panel = [{"origin": [0, 0], "size": [len(model["gb"]), 1], "label": "",
                           "frame": None}]
            grids.append(("gb", [len(model["gb"]), 1], bias_panel, "∂L/∂b",
                          [e["pos"] for e in model["gb"]]))
        self.sizes = [size for _, size, _, _, _ in grids]
        axes = fig.subplots(1, len(grids), width_ratios=[w for w, _ in self.sizes])
        self.rects: dict[str, list[Any]] = {}
        self.texts: dict[str, list[Any]] = {}
        font = 7.0 if sum(w for w, _ in self.sizes) <= 20 else 6.0
        height = max(h for _, h in self.sizes)
        for ax, (role, (w, _), panels, title, cells) in zip(axes, grids):
            self.rects[role], self.texts[role] = [], []
            for c, r in cells:
                rect = Rectangle((c - 1 + 0.04, r - 1 + 0.04), 0.92, 0.92, linewidth=0.8)
                ax.add_patch(rect)
                self.rects[role].append(rect)
                self.texts[role].append(ax.text(c - 0.5, r - 0.45, "", ha="center", va="center",
                                                fontsize=font, family="monospace"))
            for p in panels:
                if p["frame"]:
                    c0, r0, fw, fh = p["frame"]
                    ax.add_patch(Rectangle((c0, r0), fw, fh, fill=False, linewidth=1.6,
                                           edgecolor="black"))
                if p["label"]:
                    ax.text(p["origin"][0] + p["size"][0] / 2, p["origin"][1] + p["size"][1] + 0.05,
                            p["label"], ha="center", va="top", fontsize=6.5, color="#444")
            ax.set_xlim(0, w)
            ax.set_ylim(height + (0.4 if s["multichannel"] else 0), 0)
            ax.set_aspect("equal")
            ax.set_axis_off()
            # a plain text, not set_title: titles re-measure every axis on every frame
            ax.text(w / 2, -0.25, title, ha="center", va="bottom", fontsize=9)
        self.caption = fig.text(0.01, 0.03, "", fontsize=8.5, va="bottom", ha="left")

    def _cell(self, role: str, n: int, face: str, edge: str = "#8a8a8a", width: float = 0.8,
              text: str | None = None, hatch: str | None = None) -> None:
        rect = self.rects[role][n]
        rect.set_facecolor(face)
        rect.set_edgecolor(edge)
        rect.set_linewidth(width)
        rect.set_hatch(hatch)
        if text is not None:
            self.texts[role][n].set_text(text)

    def _grad(self, role: str, entries: list[dict[str, Any]], f: Frame, grad: str) -> None:
        """∂L/∂K (``grad`` "k", role "g"), ∂L/∂X (``"x"``, role "gx") or ∂L/∂b (``"b"``, role
        "gb"): complete, running or blank.  ∂L/∂K is complete once the backward pass has
        moved on to ∂L/∂b."""
        mine = f.kind == "backward" and f.grad == grad
        before = f.kind == "backward" and grad == "k" and f.grad == "b"
        for n, e in enumerate(entries):
            if f.kind == "end" or before or (mine and (n < f.a or (n == f.a and f.b is None))):
                text = e["grad_text"]
            elif mine and n == f.a:
                text = e["terms"][f.b]["running_text"]
            else:
                text = ""
            self._cell(role, n, "white" if text else "#f4f4f4", text=text)

    def draw(self, f: Frame) -> None:
        m = self.m
        nz = len(m["z"])
        for n, e in enumerate(m["x"]):
            pad = e["input"] is None
            self._cell("x", n, "#ececec" if pad else "white", text=e["text"],
                       hatch="///" if pad else None)
        for n, e in enumerate(m["k"]):
            self._cell("k", n, "white", text=e["text"])
        done_z = nz if f.kind != "forward" else f.n + 1
        for n, e in enumerate(m["z"]):
            done = n < done_z
            self._cell("z", n, "white" if done else "#f4f4f4", text=e["text"] if done else "")
        if m["k"]:
            self._grad("g", m["k"], f, "k")
        self._grad("gx", m["gx"], f, "x")
        if m["gb"]:
            self._grad("gb", m["gb"], f, "b")
        at = {tuple(e["at"]): n for n, e in enumerate(m["x"])}
        if f.kind == "forward":
            self._cell("z", f.n, _SEL, "black", 2.0)
            for e in m["z"][f.n]["window"]:
                pad = e["input"] is None
                edge = "#2a7d3a" if e["pick"] else (_PAD if pad else _FOOT)
                self._cell("x", at[tuple(e["at"])], _PAD_BG if pad else _FOOT_BG,
                           edge, 3.0 if e["pick"] else 2.0, hatch="///" if pad else None)
                if e["ki"] is not None:
                    self._cell("k", e["ki"], _FOOT_BG, _FOOT, 2.0)
        elif f.kind == "backward" and f.grad == "k":
            self._cell("k", f.a, _SEL, "black", 2.0)
            self._cell("g", f.a, _SEL, "black", 2.0)
            terms = m["k"][f.a]["terms"]
            last = len(terms) - 1 if f.b is None else f.b
            for b, t in enumerate(terms[:last + 1]):
                pad = t["input"] is None
                face, edge = (_PAD_BG, _PAD) if pad else (_TERM_BG, _TERM)
                width = 3.0 if b == f.b else 1.6
                self._cell("z", t["zi"], face, edge, width)
                self._cell("x", at[tuple(t["at"])], face, edge, width, hatch="///" if pad else None)
        elif f.kind == "backward" and f.grad == "b":
            self._cell("gb", f.a, _SEL, "black", 2.0)
            terms = m["gb"][f.a]["terms"]
            last = len(terms) - 1 if f.b is None else f.b
            for b, t in enumerate(terms[:last + 1]):
                self._cell("z", t["zi"], _TERM_BG, _TERM, 3.0 if b == f.b else 1.6)
        elif f.kind == "backward":
            g = m["gx"][f.a]
            self._cell("x", g["xi"], _SEL, "black", 2.0)
            self._cell("gx", f.a, _SEL, "black", 2.0)
            last = len(g["terms"]) - 1 if f.b is None else f.b
            for b, t in enumerate(g["terms"][:last + 1]):
                if t["zi"] is None:
                    continue
                width = 3.0 if b == f.b else 1.6
                self._cell("z", t["zi"], _TERM_BG, _TERM, width)
                if t["ki"] is not None:
                    self._cell("k", t["ki"], _TERM_BG, _TERM, width)
        lines = []
        for line in label(m, f).split("\n"):
            lines += textwrap.wrap(line, self.columns, subsequent_indent="    ") or [""]
        self.caption.set_text("\n".join(lines))

    def shown(self) -> dict[str, list[str]]:
        """The text of every cell as drawn now, by grid: ``x``, ``k``, ``z``, ``g`` (∂L/∂K),
        ``gx`` (∂L/∂X), ``gb`` (∂L/∂b, with a bias)."""
        return {role: [t.get_text() for t in texts] for role, texts in self.texts.items()}


def write_gif(derivation: Derivation, path: str | Path, dpi: int = 90) -> int:
    """Write the forward and backward pass as an animated GIF; returns the number of frames.

    Args:
        derivation: from :func:`~.derivation.explain`; without values, random ones
            (seed :data:`.page.RANDOM_SEED`) are used and the title says so.
        path: the ``.gif`` file to write (its folder must exist).
        dpi: resolution of every frame.

    The frames are :func:`frame_plan`'s.  The GIF's comment is JSON:
    ``{"frames": [label, …], "last": {grid: [cell text, …]}, "values": source}``.
    """
    from matplotlib.figure import Figure

    check_output(path, "path", (".gif",))
    model = page_model(derivation)
    plan = frame_plan(model)
    s = model["shape"]
    G = s["grids"]
    n_k = 2 if model["k"] else 0
    cols = G["x"][0] + G["gx"][0] + G["z"][0] + n_k * G["k"][0] + len(model["gb"])
    rows = max(G["x"][1], G["z"][1], G["k"][1], G["gx"][1]) + (0.4 if s["multichannel"] else 0)
    cell = min(0.62, 15.0 / cols)  # inches
    width = max(7.5, cols * cell + 1.3)
    given = "" if model["values"]["given"] else " (none given: random, fixed seed)"

    def dims(p: list[int]) -> str:
        return f"{p[0]}" if s["nd"] == 1 else f"{p[0]}×{p[1]}"

    extra = ""
    if any(d != 1 for d in s["dilation"]):
        extra += f", dilation {dims(s['dilation'])}"
    if s["multichannel"]:
        extra += f", channels {s['channels'][0]}→{s['channels'][1]}, groups {s['groups']}"
    title = textwrap.wrap(f"{s['op']}: input {dims(s['input'])}, kernel {dims(s['kernel'])}, "
                          f"stride {dims(s['stride'])}, padding {dims(s['padding'])}{extra};  "
                          f"values: {model['values']['source']}{given}", int(width * 13))
    top = 0.45 + 0.17 * len(title)  # inches above the grids: the title and each grid's name
    height = rows * cell + top + 0.65
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.1 / width, right=1 - 0.1 / width, top=1 - top / height,
                        bottom=0.62 / height, wspace=0.12)
    fig.text(0.5, 1 - 0.08 / height, "\n".join(title), ha="center", va="top", fontsize=9)
    board = _Board(fig, model)
    labels: list[str] = []
    writer = _Writer([DURATION_MS[f.kind] for f in plan])
    with writer.saving(fig, str(path), dpi):
        for f in plan:
            board.draw(f)
            labels.append(label(model, f))
            writer.grab_frame()
        writer.comment = json.dumps({"frames": labels, "last": board.shown(),
                                     "values": model["values"]["source"]}, ensure_ascii=False)
    return len(plan)


class _Writer(PillowWriter):
    """PillowWriter with a duration per frame and a comment (PillowWriter has one fps)."""

    def __init__(self, durations: list[int]) -> None:
        super().__init__(fps=1000 / max(durations))
        self.durations = durations
        self.comment = ""

    def finish(self) -> None:
        self._frames[0].save(self.outfile, save_all=True, append_images=self._frames[1:],
                             duration=self.durations, loop=0, comment=self.comment.encode())

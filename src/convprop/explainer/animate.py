"""The derivation as an animated GIF (``convprop explain --animate out.gif``).

Forward: the kernel's window slides over the padded input, one output at a time,
and each ``z_{x,y}`` is filled in as its sum completes.  Backward: each
``∂L/∂k_{i,j}`` adds up its terms (the output each one comes from and the input cell
it reads light up) until the gradient is complete.  Every frame is labelled with its
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
    from .derivation import Derivation

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
    """One frame: ``kind`` is ``"forward"`` (output ``n``), ``"backward"`` (kernel
    element ``a`` with its terms up to ``b``; ``b`` None = all at once) or ``"end"``."""

    kind: str
    n: int = 0
    a: int = 0
    b: int | None = None


def frame_plan(model: dict[str, Any]) -> list[Frame]:
    """The frames, in order: one per output, then one per chain-rule term (or, past
    :data:`MAX_TERM_FRAMES` terms, one per kernel element), then the finished state."""
    nz, nk = len(model["z"]), len(model["k"])
    frames = [Frame("forward", n=n) for n in range(nz)]
    if nz * nk <= MAX_TERM_FRAMES:
        frames += [Frame("backward", a=a, b=b) for a in range(nk) for b in range(nz)]
    else:
        frames += [Frame("backward", a=a) for a in range(nk)]
    frames.append(Frame("end"))
    return frames


def _s(name: str, cell: list[int]) -> str:
    return f"{name}{str(cell[0]).translate(_SUBSCRIPT)},{str(cell[1]).translate(_SUBSCRIPT)}"


def _p(v: float) -> str:
    """A number inside a product: negatives in parentheses."""
    t = num(v).replace("-", "−")
    return f"({t})" if t.startswith("−") else t


def label(model: dict[str, Any], f: Frame) -> str:
    """The running equation of one frame, in plain Unicode."""
    D = model["shape"]["divisor"]
    over = f"/{num(D)}" if D != 1 else ""
    if f.kind == "forward":
        z = model["z"][f.n]
        sym = " + ".join(f"{_s('x', e['input']) if e['input'] else '0'}·{_s('k', e['kernel'])}"
                         for e in z["window"])
        val = " + ".join(f"{_p(e['x'])}·{_p(e['k'])}" for e in z["window"])
        return (f"forward {f.n + 1}/{len(model['z'])}:  {_s('z', z['cell'])} = ({sym}){over}\n"
                f"= ({val}){over} = {num(z['value'])}")
    if f.kind == "backward":
        k = model["k"][f.a]
        name = f"∂L/∂{_s('k', k['cell'])}"
        if f.b is None:
            live = sum(t["input"] is not None for t in k["terms"])
            return (f"backward {f.a + 1}/{len(model['k'])}:  {name} = Σ 2(o − y)·o(1 − o)·x{over}"
                    f" over {len(k['terms'])} outputs ({live} terms off the padding)\n"
                    f"= {num(k['grad'])}")
        t = k["terms"][f.b]
        o, y = _s("o", t["output"]), _s("y", t["output"])
        x = _s("x", t["input"]) if t["input"] else "0 (padding)"
        z = model["z"][(t["output"][1] - 1) * model["shape"]["output"][0] + t["output"][0] - 1]
        return (f"backward {f.a + 1}/{len(model['k'])}, term {f.b + 1}/{len(k['terms'])}:  {name} += "
                f"2({o} − {y})·{o}(1 − {o})·{x}{over}\n"
                f"= 2({_p(z['o'])} − {_p(z['y'])})·{_p(z['o'])}(1 − {_p(z['o'])})·{_p(t['x'])}{over}"
                f" = {num(t['value'])};  running sum {num(t['running'])}")
    return (f"Z = conv(X, K){over}, O = σ(Z), L = Σ(o − y)² = {num(model['loss'])};  ∂L/∂K complete "
            f"(largest difference from autograd {model['max_difference']:.2g})")


class _Board:
    """The four grids (padded X, K, Z, ∂L/∂K) as patches and texts, updated in place."""

    def __init__(self, fig: Any, model: dict[str, Any]) -> None:
        from matplotlib.patches import Rectangle

        self.m = model
        self.columns = int(fig.get_figwidth() * 15)  # characters per caption line
        s = model["shape"]
        sizes = [s["padded"], s["kernel"], s["output"], s["kernel"]]
        titles = [f"input X, padding {s['padding'][0]}×{s['padding'][1]}", "kernel K",
                  f"Z = conv(X, K)/{num(s['divisor'])}", "∂L/∂K"]
        axes = fig.subplots(1, 4, width_ratios=[w for w, _ in sizes])
        self.rects: dict[str, list[Any]] = {}
        self.texts: dict[str, list[Any]] = {}
        font = 7.0 if sum(w for w, _ in sizes) <= 20 else 6.0
        cells = {"x": [e["at"] for e in model["x"]], "k": [e["cell"] for e in model["k"]],
                 "z": [e["cell"] for e in model["z"]], "g": [e["cell"] for e in model["k"]]}
        for ax, role, (w, h), title in zip(axes, "xkzg", sizes, titles):
            self.rects[role], self.texts[role] = [], []
            for c, r in cells[role]:
                rect = Rectangle((c - 1 + 0.04, r - 1 + 0.04), 0.92, 0.92, linewidth=0.8)
                ax.add_patch(rect)
                self.rects[role].append(rect)
                self.texts[role].append(ax.text(c - 0.5, r - 0.45, "", ha="center", va="center",
                                                fontsize=font, family="monospace"))
            ax.set_xlim(0, w)
            ax.set_ylim(max(h for _, h in sizes), 0)
            ax.set_aspect("equal")
            ax.set_axis_off()
            # a plain text, not set_title: titles re-measure every axis on every frame
            ax.text(w / 2, -0.25, title, ha="center", va="bottom", fontsize=9)
        (pw, ph), (w, h) = s["padding"], s["input"]
        if pw or ph:
            axes[0].add_patch(Rectangle((pw, ph), w, h, fill=False, linewidth=1.6, edgecolor="black"))
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
        for n, e in enumerate(m["k"]):
            if f.kind == "end" or (f.kind == "backward" and (n < f.a or (n == f.a and f.b is None))):
                text = e["grad_text"]
            elif f.kind == "backward" and n == f.a:
                text = e["terms"][f.b]["running_text"]
            else:
                text = ""
            self._cell("g", n, "white" if text else "#f4f4f4", text=text)
        at = {tuple(e["at"]): n for n, e in enumerate(m["x"])}
        if f.kind == "forward":
            self._cell("z", f.n, _SEL, "black", 2.0)
            for e in m["z"][f.n]["window"]:
                pad = e["input"] is None
                self._cell("x", at[tuple(e["at"])], _PAD_BG if pad else _FOOT_BG,
                           _PAD if pad else _FOOT, 2.0, hatch="///" if pad else None)
        elif f.kind == "backward":
            self._cell("k", f.a, _SEL, "black", 2.0)
            self._cell("g", f.a, _SEL, "black", 2.0)
            terms = m["k"][f.a]["terms"]
            last = len(terms) - 1 if f.b is None else f.b
            for b, t in enumerate(terms[:last + 1]):
                pad = t["input"] is None
                face, edge = (_PAD_BG, _PAD) if pad else (_TERM_BG, _TERM)
                width = 3.0 if b == f.b else 1.6
                zi = (t["output"][1] - 1) * m["shape"]["output"][0] + t["output"][0] - 1
                self._cell("z", zi, face, edge, width)
                self._cell("x", at[tuple(t["at"])], face, edge, width, hatch="///" if pad else None)
        lines = []
        for line in label(m, f).split("\n"):
            lines += textwrap.wrap(line, self.columns, subsequent_indent="    ") or [""]
        self.caption.set_text("\n".join(lines))

    def shown(self) -> dict[str, list[str]]:
        """The text of every cell as drawn now, by grid: ``x``, ``k``, ``z``, ``g`` (∂L/∂K)."""
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
    cols = s["padded"][0] + s["output"][0] + 2 * s["kernel"][0]
    rows = max(s["padded"][1], s["output"][1], s["kernel"][1])
    cell = min(0.62, 13.0 / cols)  # inches
    width = max(7.5, cols * cell + 1.3)
    given = "" if model["values"]["given"] else " (none given: random, fixed seed)"
    title = textwrap.wrap(f"input {s['input'][0]}×{s['input'][1]}, kernel {s['kernel'][0]}×"
                          f"{s['kernel'][1]}, stride {s['stride'][0]}×{s['stride'][1]}, padding "
                          f"{s['padding'][0]}×{s['padding'][1]};  values: "
                          f"{model['values']['source']}{given}", int(width * 13))
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

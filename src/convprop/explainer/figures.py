"""PNG figures for ``convprop explain --figure`` and ``convprop demo --plot``.

matplotlib is an optional extra: it is imported inside these functions only, and
figures are drawn on a bare :class:`matplotlib.figure.Figure` (Agg canvas), so
no pyplot state or interactive backend is touched.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..seed import Geometry, Pair, fmt

if TYPE_CHECKING:
    from ..seed import History
    from .model import DerivationModel as Derivation

_FOOT = "#4C72B0"  # kernel footprint / cells a gradient sums over
_PAD = "#D9D9D9"  # padded zeros
_SKIP = "#C44E52"  # inputs no window reaches


_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _sub(name: str, cell: Pair) -> str:
    """``x₁,₂``: plain Unicode, since mathtext is far too slow for thousands of cell labels."""
    return f"{name}{str(cell[0]).translate(_SUBSCRIPT)},{str(cell[1]).translate(_SUBSCRIPT)}"


def _grid_axes(fig: Any, n: int, title: str) -> list[Any]:
    cols = min(n, max(4, math.ceil(math.sqrt(n))))
    rows = math.ceil(n / cols)
    fig.suptitle(title, fontsize=11)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return list(axes[:n])


def _draw_grid(ax: Any, geo: Geometry, fill: dict[Pair, str], labels: dict[Pair, str],
               fontsize: float = 7) -> None:
    """The input with its padding; cells are ``(column, row)`` in padded coordinates, 1-based.

    Drawn as one image, one hatched collection and two line collections (not one
    patch per cell), so that 89 panels of 144 cells still take about a second.
    Cells outside ``fill`` keep their label only when the grid is small enough to read.
    """
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Rectangle

    (w, h), (pw, ph) = geo.input_shape, geo.padding
    gw, gh = w + 2 * pw, h + 2 * ph
    rgb = np.ones((gh, gw, 3))
    padded = [(c, r) for r in range(1, gh + 1) for c in range(1, gw + 1)
              if not (pw < c <= pw + w and ph < r <= ph + h)]
    for c, r in padded:
        rgb[r - 1, c - 1] = to_rgb(_PAD)
    for (c, r), color in fill.items():
        rgb[r - 1, c - 1] = to_rgb(color)
    ax.imshow(rgb, extent=(0, gw, gh, 0), interpolation="nearest")
    if padded:
        ax.add_collection(PatchCollection([Rectangle((c - 1, r - 1), 1, 1) for c, r in padded],
                                          facecolor="none", edgecolor="#777777", hatch="///",
                                          linewidth=0))
    ax.vlines(range(gw + 1), 0, gh, color="#555555", linewidth=0.6)
    ax.hlines(range(gh + 1), 0, gw, color="#555555", linewidth=0.6)
    ax.add_patch(Rectangle((pw, ph), w, h, fill=False, edgecolor="black", linewidth=1.4))
    small = gw * gh <= 64
    for (c, r), text in labels.items():
        if small or (c, r) in fill:
            ax.text(c - 0.5, r - 0.5, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if (c, r) in fill else "black")
    ax.set_xlim(0, gw)
    ax.set_ylim(gh, 0)  # row 1 at the top, as the document's matrices
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _padded(geo: Geometry, cell: Pair) -> Pair:
    return cell[0] + geo.padding[0], cell[1] + geo.padding[1]


def _window_cells(geo: Geometry, x: int, y: int) -> dict[Pair, Pair]:
    """Padded-grid cell of each kernel element ``(i, j)`` in the window of ``z_{x,y}``."""
    (sw, sh), (dw, dh) = geo.stride, geo.dilation
    return {(i, j): ((x - 1) * sw + (i - 1) * dw + 1, (y - 1) * sh + (j - 1) * dh + 1)
            for (i, j) in geo.kernel_elements()}


def explain_figure(d: Derivation, path: str | Path) -> None:
    """Draw what the equations say.

    Top: for every output ``z_{x,y}`` the input grid (padded cells hatched) with
    the kernel's footprint, each cell labelled with the ``k_{i,j}`` it meets.
    Bottom: for every kernel element ``k_{i,j}`` the input cells that
    ``∂L/∂k_{i,j}`` sums over, labelled with the output each term comes from;
    inputs that no window reaches (a stride larger than the kernel) are red.
    """
    from matplotlib.figure import Figure

    geo = d.geometry
    if geo is None:
        raise ValueError("the figure draws one-channel 1-D and 2-D convolutions and pooling; for "
                         "channels, 3-D and the transposed convolution read the derivation's "
                         "footprints")
    (w, h), (pw, ph) = geo.input_shape, geo.padding
    gw, gh = w + 2 * pw, h + 2 * ph
    outs, kels = geo.outputs(), geo.kernel_elements()
    pool = d.layout.pooling
    cell_in = min(0.42, 3.2 / max(gw, gh))
    panel = (gw * cell_in + 0.3, gh * cell_in + 0.55)
    cols_o = min(len(outs), max(4, math.ceil(math.sqrt(len(outs)))))
    cols_k = min(len(kels), max(4, math.ceil(math.sqrt(len(kels)))))
    cols = max(cols_o, cols_k)
    rows_o, rows_k = math.ceil(len(outs) / cols_o), math.ceil(len(kels) / cols_k)
    font = max(4.0, min(8.0, cell_in * 17))
    fig = Figure(figsize=(cols * panel[0] + 0.4, (rows_o + rows_k) * panel[1] + 1.2),
                 layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[rows_o + 0.3, rows_k + 0.3])

    untouched = {_padded(geo, c) for c in geo.inputs()} - \
        {_padded(geo, c) for c in geo.touched_inputs()}
    key = "hatched = padded zeros" + (", red = inputs no window reaches" if untouched else "")
    axes = _grid_axes(top, len(outs), "Forward: the kernel's footprint for each output "
                                      rf"$z_{{x,y}}$ ({key})")
    for ax, (x, y) in zip(axes, outs):
        cells = _window_cells(geo, x, y)
        fill = {c: _FOOT for c in cells.values()}
        labels = {_padded(geo, c): _sub("x", c) for c in geo.inputs()}
        for (i, j), c in cells.items():
            src = geo.source(i, j, x, y)
            x_ = _sub('x', src) if src else '0'
            labels[c] = x_ if pool else f"{x_}\n·{_sub('k', (i, j))}"
        fill.update({c: _SKIP for c in untouched})
        _draw_grid(ax, geo, fill, labels, fontsize=font)
        ax.set_title(rf"$z_{{{x},{y}}}$", fontsize=9)

    axes = _grid_axes(bottom, len(kels), r"Backward: the input cells $\partial L/\partial "
                                         r"k_{i,j}$ sums over (label: the output of each term)")
    for ax, (i, j) in zip(axes, kels):
        fill, labels = {}, {}
        live = 0
        for (x, y) in outs:
            c = _window_cells(geo, x, y)[(i, j)]
            src = geo.source(i, j, x, y)
            labels[c] = _sub("z", (x, y))
            if src is not None:
                fill[c] = _FOOT
                live += 1
        fill.update({c: _SKIP for c in untouched})
        _draw_grid(ax, geo, fill, labels, fontsize=font)
        vanish = len(outs) - live
        extra = f", {vanish} on padding" if vanish else ""
        terms = f"{live} term" + ("" if live == 1 else "s")
        what = f"window position ({i}, {j})" if pool else rf"$\partial L/\partial k_{{{i},{j}}}$"
        ax.set_title(f"{what}: {terms}{extra}", fontsize=8)
    fig.savefig(path, dpi=120)


def demo_figure(h: History, path: str | Path) -> None:
    """Loss per step, and the kernel before and after training (values in the cells)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6), layout="constrained")
    ax_loss, ax_k0, ax_k1 = fig.subplots(1, 3, width_ratios=[1.6, 1, 1])
    steps = np.arange(len(h.losses))
    ax_loss.plot(steps, h.losses, marker="o", markersize=3, color=_FOOT)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel(r"$L = \sum (o - y)^2$")
    ax_loss.set_title(f"Loss, lr = {fmt(h.lr)}: {fmt(h.losses[0], 4)} → {fmt(h.losses[-1], 4)}")
    ax_loss.grid(alpha=0.3)
    ax_loss.xaxis.get_major_locator().set_params(integer=True)
    k0, k1 = h.kernels[0], h.kernels[-1]
    lim = float(max(np.abs(k0).max(), np.abs(k1).max(), 1e-12))
    for ax, k, title in ((ax_k0, k0, "K before"), (ax_k1, k1, f"K after {h.steps} steps")):
        im = ax.imshow(k, cmap="RdBu_r", vmin=-lim, vmax=lim)
        for (r, c), v in np.ndenumerate(k):
            ax.text(c, r, f"$k_{{{c + 1},{r + 1}}}$\n{fmt(v, 4)}", ha="center", va="center",
                    fontsize=9, color="white" if abs(v) > 0.6 * lim else "black")
        ax.set_xticks(range(k.shape[1]), [f"i = {c + 1}" for c in range(k.shape[1])])
        ax.set_yticks(range(k.shape[0]), [f"j = {r + 1}" for r in range(k.shape[0])])
        ax.set_title(title)
    fig.colorbar(im, ax=[ax_k0, ax_k1], shrink=0.8)
    fig.savefig(path, dpi=120)

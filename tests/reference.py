"""Naive, obviously correct references for the convolution engine (test oracle).

Every function here is written straight from a definition, with Python loops
over output (or input) positions and nothing shared with convprop's engine:
no window views, no im2col, no transposes-as-convolutions.  They are slow and
meant for small arrays only.

Layouts follow PyTorch: input ``(N, C, *spatial)``, convolution weight
``(O, C/groups, *kernel)``, transposed-convolution weight
``(C_in, C_out/groups, *kernel)``.  Padding pairs are ``(before, after)`` per
spatial axis.
"""

from __future__ import annotations

import itertools

import numpy as np


def _taps(p: tuple[int, ...], stride, dilation, kernel) -> tuple[slice, ...]:
    """Index of the input cells read by output position ``p``: start ``p*s``, step ``d``."""
    return tuple(
        slice(pi * s, pi * s + d * (k - 1) + 1, d)
        for pi, s, d, k in zip(p, stride, dilation, kernel)
    )


def zero_pad(x: np.ndarray, pads) -> np.ndarray:
    """``x`` (N, C, *spatial) with zeros added around its spatial axes."""
    shape = x.shape[:2] + tuple(s + b + a for s, (b, a) in zip(x.shape[2:], pads))
    out = np.zeros(shape, dtype=x.dtype)
    out[(slice(None), slice(None)) + tuple(slice(b, b + s) for s, (b, _) in
                                           zip(x.shape[2:], pads))] = x
    return out


def conv_ref(x, w, b=None, stride=None, pads=None, dilation=None, groups=1):
    """Cross-correlation, by definition.

    ``y[n, o, p] = b[o] + sum_{c in group(o), t} w[o, c, t] * xpad[n, c, p*s + t*d]``
    for every output position ``p`` whose window fits in the padded input.
    """
    nd = w.ndim - 2
    stride = stride or (1,) * nd
    dilation = dilation or (1,) * nd
    pads = pads or ((0, 0),) * nd
    xp = zero_pad(x, pads)
    n, c = x.shape[:2]
    o, cg = w.shape[:2]
    og = o // groups
    kernel = w.shape[2:]
    out = tuple(
        (sz - d * (k - 1) - 1) // s + 1
        for sz, k, s, d in zip(xp.shape[2:], kernel, stride, dilation)
    )
    y = np.zeros((n, o) + out, dtype=np.result_type(x, w))
    for ni in range(n):
        for oi in range(o):
            g = oi // og
            chans = slice(g * cg, (g + 1) * cg)
            for p in itertools.product(*(range(k) for k in out)):
                window = xp[(ni, chans) + _taps(p, stride, dilation, kernel)]
                y[(ni, oi) + p] = np.sum(window * w[oi])
            if b is not None:
                y[ni, oi] += b[oi]
    return y


def conv_ref_vjp(x, w, gy, stride=None, pads=None, dilation=None, groups=1):
    """Gradients ``(dx, dw, db)`` of ``sum(gy * conv_ref(x, w, b, ...))``, by definition.

    Each output position read a window of the padded input times the kernel, so
    it hands ``gy * w`` back to that window and ``gy * window`` to the kernel.
    """
    nd = w.ndim - 2
    stride = stride or (1,) * nd
    dilation = dilation or (1,) * nd
    pads = pads or ((0, 0),) * nd
    xp = zero_pad(x, pads)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    o, cg = w.shape[:2]
    og = o // groups
    kernel = w.shape[2:]
    for ni in range(x.shape[0]):
        for oi in range(o):
            g = oi // og
            chans = slice(g * cg, (g + 1) * cg)
            for p in itertools.product(*(range(k) for k in gy.shape[2:])):
                idx = (ni, chans) + _taps(p, stride, dilation, kernel)
                dxp[idx] += gy[(ni, oi) + p] * w[oi]
                dw[oi] += gy[(ni, oi) + p] * xp[idx]
    inner = (slice(None), slice(None)) + tuple(
        slice(b, b + s) for s, (b, _) in zip(x.shape[2:], pads)
    )
    db = gy.sum(axis=(0,) + tuple(range(2, gy.ndim)))
    return dxp[inner], dw, db


def _transpose_geometry(x, w, stride, padding, output_padding, dilation):
    """Defaults filled in, and the uncropped output size ``(X - 1)*s + d*(K - 1) + 1 + op``."""
    nd = w.ndim - 2
    stride = stride or (1,) * nd
    dilation = dilation or (1,) * nd
    padding = padding or (0,) * nd
    output_padding = output_padding or (0,) * nd
    full = tuple(
        (i - 1) * s + d * (k - 1) + 1 + op
        for i, s, d, k, op in zip(x.shape[2:], stride, dilation, w.shape[2:], output_padding)
    )
    return stride, padding, dilation, full


def conv_transpose_ref(x, w, b=None, stride=None, padding=None, output_padding=None,
                       dilation=None, groups=1):
    """Transposed convolution, by definition: scatter every input element times the kernel.

    Input position ``p`` of channel ``c`` adds ``x[n, c, p] * w[c, o, t]`` to the
    full output at ``p*s + t*d``.  The full output has length
    ``(X - 1)*s + d*(K - 1) + 1 + output_padding``; ``padding`` cells are then
    cropped from both ends.
    """
    stride, padding, dilation, full = _transpose_geometry(x, w, stride, padding, output_padding,
                                                           dilation)
    n, c = x.shape[:2]
    og, kernel = w.shape[1], w.shape[2:]
    cg = c // groups
    yfull = np.zeros((n, og * groups) + full, dtype=np.result_type(x, w))
    for ni in range(n):
        for ci in range(c):
            g = ci // cg
            outs = slice(g * og, (g + 1) * og)
            for p in itertools.product(*(range(i) for i in x.shape[2:])):
                yfull[(ni, outs) + _taps(p, stride, dilation, kernel)] += x[(ni, ci) + p] * w[ci]
    crop = (slice(None), slice(None)) + tuple(slice(p, f - p) for p, f in zip(padding, full))
    y = yfull[crop].copy()
    if b is not None:
        y += b.reshape((-1,) + (1,) * (w.ndim - 2))
    return y


def conv_transpose_ref_vjp(x, w, gy, stride=None, padding=None, output_padding=None,
                           dilation=None, groups=1):
    """Gradients ``(dx, dw, db)`` of ``sum(gy * conv_transpose_ref(x, w, b, ...))``.

    Input element ``x[n, c, p]`` was scattered into the window at ``p*s`` (step
    ``d``) of the full output, so its gradient gathers ``gy`` from that window
    weighted by the kernel; the kernel gathers ``gy`` times ``x``.  Cropped cells
    have no gradient (they never reached the output).
    """
    stride, padding, dilation, full = _transpose_geometry(x, w, stride, padding, output_padding,
                                                           dilation)
    n, c = x.shape[:2]
    og, kernel = w.shape[1], w.shape[2:]
    cg = c // groups
    gfull = np.zeros((n, og * groups) + full, dtype=gy.dtype)
    gfull[(slice(None), slice(None)) + tuple(slice(p, f - p) for p, f in zip(padding, full))] = gy
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for ni in range(n):
        for ci in range(c):
            g = ci // cg
            outs = slice(g * og, (g + 1) * og)
            for p in itertools.product(*(range(i) for i in x.shape[2:])):
                window = gfull[(ni, outs) + _taps(p, stride, dilation, kernel)]
                dx[(ni, ci) + p] = np.sum(window * w[ci])
                dw[ci] += x[(ni, ci) + p] * window
    db = gy.sum(axis=(0,) + tuple(range(2, gy.ndim)))
    return dx, dw, db


def _source(j: int, size: int, mode: str) -> int | None:
    """Input index that padded position ``j`` (in input coordinates) copies, or None."""
    if 0 <= j < size:
        return j
    if mode == "constant":
        return None
    if mode == "replicate":
        return 0 if j < 0 else size - 1
    if mode == "circular":
        return j % size
    if mode == "reflect":  # mirror about the edge cells, never repeating them
        while not 0 <= j < size:
            j = -j if j < 0 else 2 * (size - 1) - j
        return j
    raise ValueError(mode)


def pad_ref(x: np.ndarray, pad, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """``F.pad`` by definition, one output cell at a time.

    ``pad`` is PyTorch's flat layout, last axis first; negative entries crop
    (constant mode).  Output cell ``j`` along a padded axis reads input cell
    ``j - before`` mapped back into range by ``mode``.
    """
    pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)][::-1]
    lead = x.ndim - len(pairs)
    sizes = x.shape[lead:]
    out_sizes = tuple(s + b + a for s, (b, a) in zip(sizes, pairs))
    y = np.empty(x.shape[:lead] + out_sizes, dtype=x.dtype)
    for j in itertools.product(*(range(s) for s in out_sizes)):
        src = [_source(ji - b, s, mode) for ji, (b, _), s in zip(j, pairs, sizes)]
        lead_idx = (slice(None),) * lead
        y[lead_idx + j] = value if None in src else x[lead_idx + tuple(src)]
    return y


def pad_ref_vjp(x: np.ndarray, gy: np.ndarray, pad, mode: str = "constant") -> np.ndarray:
    """Gradient of ``sum(gy * pad_ref(x, pad, mode))``: each cell's gradient goes to its source."""
    pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)][::-1]
    lead = x.ndim - len(pairs)
    sizes = x.shape[lead:]
    dx = np.zeros_like(x)
    for j in itertools.product(*(range(s) for s in gy.shape[lead:])):
        src = [_source(ji - b, s, mode) for ji, (b, _), s in zip(j, pairs, sizes)]
        if None not in src:
            lead_idx = (slice(None),) * lead
            dx[lead_idx + tuple(src)] += gy[lead_idx + j]
    return dx


# --------------------------------------------------------------------------
# Random cases shared by the parity and reference sweeps (hypothesis strategies).
# A case carries the engine's spelling of each argument *and* the padding pairs
# it means, worked out here independently of convprop's normalisation.

MODES = ("zeros", "reflect", "replicate", "circular")


def _per_dim_arg(draw, st, values: tuple[int, ...]):
    """Spell a per-dimension argument as an int when it may be, else as a tuple."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return values


#: How far the drawn spatial sizes reach, per dimension count: a convolution's from its
#: smallest valid size up to that plus this; a transposed convolution's from 1 up to this.
EXTRA_SIZE = {1: 5, 2: 3, 3: 2}


def _draw_layer(draw, st, nds, batches, kernels, max_stride, max_dilation, max_groups, per_group):
    """The draws both case strategies share, in one order (the derandomized examples
    depend on it): dimensions, batch, groups, channels per group, kernel, stride, dilation."""
    nd = draw(st.sampled_from(nds))
    n = draw(st.sampled_from(batches))
    groups = draw(st.integers(1, max_groups))
    cg, og = draw(st.sampled_from(per_group)), draw(st.sampled_from(per_group))
    sizes = kernels or ((1, 2, 3) if nd < 3 else (1, 2))
    kernel = tuple(draw(st.sampled_from(sizes)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, max_dilation)) for _ in range(nd))
    return nd, n, groups, cg, og, kernel, stride, dilation


def conv_cases(nds=(1, 2, 3), modes=MODES, batches=(2, None, 1, 2, 0, 1, 2), kernels=None,
               max_stride=3, max_dilation=2, max_groups=3, per_group=(1, 2)):
    """Strategy for valid convolution cases (dicts) over every argument form.

    The keyword arguments narrow the draw (to aim at one algorithm's shapes):
    ``kernels`` the kernel sizes to pick from (default 1..3, 1..2 in 3-D),
    ``per_group`` the channel counts per group for input and output.
    """
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        nd, n, groups, cg, og, kernel, stride, dilation = _draw_layer(
            draw, st, nds, batches, kernels, max_stride, max_dilation, max_groups, per_group)
        form = draw(st.sampled_from(["int", "tuple", "pairs", "valid", "same"]))
        mode = draw(st.sampled_from(modes))
        if form == "int":
            p = draw(st.integers(0, 2))
            padding, pairs = p, ((p, p),) * nd
        elif form == "tuple":
            ps = tuple(draw(st.integers(0, 2)) for _ in range(nd))
            padding, pairs = ps, tuple((p, p) for p in ps)
        elif form == "pairs":
            pairs = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
            padding = pairs
        elif form == "valid":
            padding, pairs = "valid", ((0, 0),) * nd
        else:  # 'same': stride 1; an odd total puts the extra cell after
            stride = (1,) * nd
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            padding, pairs = "same", tuple((t // 2, t - t // 2) for t in totals)
        spatial = []
        extra = EXTRA_SIZE[nd]
        for k, d, (b, a) in zip(kernel, dilation, pairs):
            lo = max(1, d * (k - 1) + 1 - b - a)
            if mode == "reflect":
                lo = max(lo, max(b, a) + 1)
            elif mode == "circular":
                lo = max(lo, b, a)
            spatial.append(draw(st.integers(lo, lo + extra)))
        return {
            "nd": nd, "n": n, "c": groups * cg, "o": groups * og, "groups": groups,
            "spatial": tuple(spatial), "kernel": kernel,
            "stride": _per_dim_arg(draw, st, stride), "stride_t": stride,
            "dilation": _per_dim_arg(draw, st, dilation), "dilation_t": dilation,
            "padding": padding, "pairs": pairs, "mode": mode,
            "bias": draw(st.booleans()), "seed": draw(st.integers(0, 2**31 - 1)),
        }

    return cases()


def transpose_cases(nds=(1, 2, 3), batches=(2, None, 1, 2, 0, 1, 2), kernels=None,
                    max_stride=3, max_dilation=2, max_groups=3, per_group=(1, 2)):
    """Strategy for valid transposed-convolution cases (dicts); knobs as :func:`conv_cases`."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        nd, n, groups, cg, og, kernel, stride, dilation = _draw_layer(
            draw, st, nds, batches, kernels, max_stride, max_dilation, max_groups, per_group)
        spatial = tuple(draw(st.integers(1, EXTRA_SIZE[nd])) for _ in range(nd))
        out_pad, padding = [], []
        for i, k, s, d in zip(spatial, kernel, stride, dilation):
            op = draw(st.integers(0, max(s, d) - 1))  # must be < stride or < dilation
            full = (i - 1) * s + d * (k - 1) + 1 + op
            out_pad.append(op)
            padding.append(draw(st.integers(0, min(2, (full - 1) // 2))))  # output >= 1
        return {
            "nd": nd, "n": n, "c": groups * cg, "o": groups * og, "groups": groups,
            "spatial": spatial, "kernel": kernel,
            "stride": _per_dim_arg(draw, st, stride), "stride_t": stride,
            "dilation": _per_dim_arg(draw, st, dilation), "dilation_t": dilation,
            "padding": _per_dim_arg(draw, st, tuple(padding)), "padding_t": tuple(padding),
            "output_padding": _per_dim_arg(draw, st, tuple(out_pad)),
            "output_padding_t": tuple(out_pad),
            "bias": draw(st.booleans()), "seed": draw(st.integers(0, 2**31 - 1)),
        }

    return cases()


def conv_arrays(case: dict, transpose: bool = False) -> dict:
    """Random float64 input, weight, optional bias for ``case`` (batch axis always present)."""
    rng = np.random.default_rng(case["seed"])
    n = 1 if case["n"] is None else case["n"]
    c, o, g = case["c"], case["o"], case["groups"]
    wshape = (c, o // g) if transpose else (o, c // g)
    return {
        "x": rng.standard_normal((n, c) + case["spatial"]),
        "w": rng.standard_normal(wshape + case["kernel"]),
        "b": rng.standard_normal(o) if case["bias"] else None,
        "rng": rng,
    }

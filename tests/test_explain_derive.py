"""``convprop explain`` beyond the document: dilation, ∂L/∂X, channels and groups, the
transposed convolution, 1-D, pooling and the guide's relationships.

Every derivation is checked against convprop's autograd (inside :meth:`Derivation.evaluate`,
to 1e-12) and here again against PyTorch in float64.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import convprop
from convprop.explainer.derivation import explain
from convprop.explainer.layout import Layout
from convprop.explainer.relationships import relationships

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def S(name: str, *cell: int) -> sp.Symbol:
    return sp.Symbol(f"{name}_{{{','.join(map(str, cell))}}}", real=True)


def torch_grads(d) -> dict[str, np.ndarray]:
    """The same pipeline in PyTorch float64: z = op(x, k)/D (+ b), o = σ(z), L = Σ(o − y)²."""
    L, v = d.layout, d.values
    full = lambda kind, a: np.asarray(a).reshape(L.array_shape(kind))  # noqa: E731
    one_d = L.nd == 1

    def t(a, grad=False):
        a = a[..., 0, :] if one_d else a
        return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=grad)

    pick = (lambda p: p[0]) if one_d else (lambda p: p[::-1])
    x = t(full("x", v.x)[None], True)
    y = t(full("z", v.y)[None])
    st_, pad, dil = pick(L.stride), pick(L.padding), pick(L.dilation)
    if L.op == "maxpool":
        z = (TF.max_pool1d if one_d else TF.max_pool2d)(x, pick(L.kernel_shape), st_, pad, dil)
    elif L.op == "avgpool":
        z = (TF.avg_pool1d if one_d else TF.avg_pool2d)(x, pick(L.kernel_shape), st_, pad)
    else:
        k = t(full("k", v.k), True)
        if L.transposed:
            f = TF.conv_transpose1d if one_d else TF.conv_transpose2d
            z = f(x, k, None, st_, pad, pick(L.output_padding), L.groups, dil)
        else:
            z = (TF.conv1d if one_d else TF.conv2d)(x, k, None, st_, pad, dil, L.groups)
        z = z / L.divisor
        if L.bias:
            b = torch.tensor(v.b, dtype=torch.float64, requires_grad=True)
            z = z + b.reshape((1, -1) + (1,) * L.nd)
    ((torch.sigmoid(z) - y) ** 2).sum().backward()
    out = {"x": x.grad.numpy()[0]}
    if not L.pooling:
        out["k"] = k.grad.numpy()
    if L.bias:
        out["b"] = b.grad.numpy()
    return out


def check(d) -> None:
    """Symbolic = autograd (≤ 1e-12, from evaluate) = PyTorch (≤ 1e-12)."""
    v, L = d.values, d.layout
    assert v.max_difference <= 1e-12
    ref = torch_grads(d)
    for name, ours in (("x", v.grad_x), ("k", v.grad)):
        if ours is not None:
            np.testing.assert_allclose(ours.reshape(L.array_shape(name)),
                                       ref[name].reshape(L.array_shape(name)), rtol=0, atol=1e-12)
    if v.grad_b is not None:
        np.testing.assert_allclose(v.grad_b, ref["b"], rtol=0, atol=1e-12)


# ------------------------------------------------ symbolic = autograd = torch
small = st.integers(1, 3)


@settings(max_examples=10, deadline=None)
@given(w=st.integers(2, 6), h=st.integers(1, 5), k=st.integers(1, 3), s=small, p=st.integers(0, 2),
       dw=small, dh=small, seed=st.integers(0, 99))
def test_dilated_conv(w, h, k, s, p, dw, dh, seed):
    assume(k + (k - 1) * (dw - 1) <= w + 2 * p and k + (k - 1) * (dh - 1) <= h + 2 * p)
    check(explain((w, h), k, s, p, 1, values="random", seed=seed, dilation=(dw, dh)))


@settings(max_examples=8, deadline=None)
@given(cin=st.integers(1, 3), cout=st.integers(1, 3), groups=st.sampled_from([1, 2, 3]),
       w=st.integers(2, 4), s=st.integers(1, 2), p=st.integers(0, 1), d=st.integers(1, 2),
       seed=st.integers(0, 99))
def test_channels_and_groups(cin, cout, groups, w, s, p, d, seed):
    assume(cin % groups == 0 and cout % groups == 0 and 1 + d <= w + 2 * p)
    check(explain((w, 3), 2, s, p, "kernel", values="random", seed=seed, channels=(cin, cout),
                  groups=groups, dilation=d))


@settings(max_examples=10, deadline=None)
@given(w=st.integers(1, 4), h=st.integers(1, 3), k=st.integers(1, 3), s=small, p=st.integers(0, 2),
       d=st.integers(1, 2), a=st.integers(0, 2), chans=st.sampled_from([None, (2, 2), (2, 4)]),
       seed=st.integers(0, 99))
def test_transposed(w, h, k, s, p, d, a, chans, seed):
    assume(a < max(s, d))
    groups = 2 if chans == (2, 4) else 1
    try:
        layout = Layout.create((w, h), k, s, p, d, op="conv_transpose", output_padding=a,
                               channels=chans, groups=groups)
    except ValueError:
        assume(False)
    assume(layout.output_shape[0] * layout.output_shape[1] * layout.out_channels <= 64)
    dv = explain((w, h), k, s, p, 1, values="random", seed=seed, dilation=d, transposed=True,
                 output_padding=a, channels=chans, groups=groups)
    check(dv)
    # the two derivations: the direct convolution's products are the adjoint's
    assert dv.layout.triples() == {(o, kc, i) for i in dv.layout.inputs()
                                   for o, kc in dv.layout.scatter(i)}


@settings(max_examples=10, deadline=None)
@given(w=st.integers(2, 8), k=st.integers(1, 3), s=small, p=st.integers(0, 2), d=small,
       op=st.sampled_from(["conv", "transposed", "maxpool", "avgpool"]), seed=st.integers(0, 99))
def test_one_dimensional(w, k, s, p, d, op, seed):
    pool = op in ("maxpool", "avgpool")
    if pool:
        assume(2 * p <= k and (op == "maxpool" or d == 1))
    chans = None if pool or seed % 2 else (2, 2)  # half the convolutions with two channels
    try:
        dv = explain((w,), (k,), s, p, 1, values="random", seed=seed, dilation=d,
                     transposed=op == "transposed", op=op if pool else "conv", channels=chans)
    except ValueError:
        assume(False)
    assert dv.values.x.shape == ((w,) if chans is None else (2, w))
    check(dv)


@settings(max_examples=10, deadline=None)
@given(w=st.integers(2, 6), h=st.integers(2, 6), k=st.integers(1, 3), s=small, p=st.integers(0, 1),
       d=st.integers(1, 2), op=st.sampled_from(["maxpool", "avgpool"]), seed=st.integers(0, 99))
def test_pooling(w, h, k, s, p, d, op, seed):
    assume(2 * p <= k and (op == "maxpool" or d == 1))
    assume(k + (k - 1) * (d - 1) <= min(w, h) + 2 * p)
    check(explain((w, h), k, s, p, values="random", seed=seed, dilation=d, op=op))


# ------------------------------------------------------------- the structure
def test_dilation_footprint_and_terms():
    d = explain((5, 5), 2, dilation=2, divisor=1)
    assert d.layout.effective_kernel == (3, 3) and d.geometry.output_shape == (3, 3)
    assert d.z[(1, 1)] == (S("x", 1, 1) * S("k", 1, 1) + S("x", 3, 1) * S("k", 2, 1)
                           + S("x", 1, 3) * S("k", 1, 2) + S("x", 3, 3) * S("k", 2, 2))
    assert [t.input for t in d.footprints[(2, 1)]] == [(2, 1), (4, 1), (2, 3), (4, 3)]
    assert [t.source for t in d.terms[(2, 2)]][:3] == [(3, 3), (4, 3), (5, 3)]
    text = " ".join(d.to_text().split())
    assert "K + (K - 1)(d - 1) = (3, 3)" in text
    assert "(X_W - K_W - (K_W - 1)(d_W - 1) + 2P_W)/S_W + 1" in text


def test_input_gradient_is_the_derivative_and_a_transposed_convolution():
    d = explain((3, 3), 2, stride=2, padding=1)
    loss = d.loss_full()
    rng = np.random.default_rng(0)
    for xc in [(1, 1), (2, 2), (3, 2)]:
        diff = sp.diff(loss, S("x", *xc)) - d._full(d.grad_x[xc])
        syms = sorted(diff.free_symbols, key=str)
        f = sp.lambdify(syms, diff, "math")
        assert abs(f(*rng.normal(size=len(syms)))) < 1e-12
    # every kernel element gives one term per input: the transposed convolution's taps
    terms = d.x_terms[(2, 2)]
    assert len(terms) == 4 and [t.kernel for t in terms] == [(1, 1), (2, 1), (1, 2), (2, 2)]
    assert [t.output for t in terms] == [(2, 2), None, None, None]  # x_{2,2} is read once
    assert [t.output for t in d.x_terms[(3, 3)]] == [None, None, None, (2, 2)]
    text = d.to_text()
    assert "transposed convolution of ∂L/∂Z" in text and "∂L/∂x_{2,2} = ∂L/∂z_{2,2}·k_{1,1}/4" in text


def test_channels_tables_per_pair_and_bias():
    d = explain((3, 3), 2, channels=(2, 2), values="random")
    assert set(d.terms) == {(o, c, i, j) for o in (1, 2) for c in (1, 2) for i in (1, 2)
                            for j in (1, 2)}
    assert d.z[(2, 1, 1)].has(S("b", 2)) and d.z[(2, 1, 1)].has(S("x", 1, 1, 1), S("x", 2, 1, 1))
    assert d.bias_terms[(1,)] == [(1, 1, 1), (1, 2, 1), (1, 1, 2), (1, 2, 2)]
    text = d.to_text()
    for a in (1, 2):
        for b in (1, 2):
            assert f"Weights of output channel {a} and input channel {b}" in text
    assert "∂L/∂b_{1} = ∂L/∂z_{1,1,1}" in text
    grouped = explain((3, 3), 2, channels=(4, 2), groups=2)
    assert not grouped.z[(2, 1, 1)].has(S("x", 1, 1, 1)) and grouped.z[(2, 1, 1)].has(S("x", 3, 1, 1))


def test_transposed_two_views_and_output_padding():
    d = explain((2, 2), 3, stride=2, padding=1, transposed=True, output_padding=1, divisor=1)
    assert d.layout.output_shape == (4, 4)
    text = " ".join(d.to_text().split())
    assert "the two views agree" in text and "equivalent direct convolution" in text
    assert "P' = 1" in text and "output padding A_W = 1 picks 4" in text
    # z_{1,1} reads the flipped kernel: x_{1,1} meets k_{2,2} (the centre) and nothing else
    assert d.z[(1, 1)] == S("x", 1, 1) * S("k", 2, 2)
    inserted = [t for t in d.footprints[(2, 2)] if t.zero == "inserted"]
    assert inserted and all(t.input is None for t in inserted)


def test_maxpool_sends_the_gradient_to_the_first_maximum():
    x = np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 2.0]])
    y = np.full((1, 2), 0.5)
    d = explain((3, 2), 2, op="maxpool", values={"x": x, "y": y})
    assert d.values.winners == {(1, 1): (2, 1), (2, 1): (2, 1)}  # ties: the first in scan order
    check(d)
    assert d.values.grad_x[0, 1] != 0 and d.values.grad_x[0, 2] == 0 and d.values.grad_x[1, 0] == 0
    assert "(picks x_{2,1})" in d.to_text()


def test_avgpool_spreads_evenly():
    d = explain((4,), (2,), stride=2, op="avgpool")
    assert d.z[(1,)] == (S("x", 1) + S("x", 2)) / 2
    assert [t.output for t in d.x_terms[(3,)]] == [(2,)]


def test_one_dimensional_notation_and_cli(capsys):
    d = explain((5,), (3,), stride=2)
    assert d.layout.output_shape[0] == 2 and set(d.z) == {(1,), (2,)}
    text = d.to_text()
    assert "z_{2} = (x_{3}·k_{1} + x_{4}·k_{2} + x_{5}·k_{3})/3" in text
    code, out, _ = explain_cli(capsys, "--input", "5", "--kernel", "3")
    assert code == 0 and "x_{1}" in out and "S_Z = (3)" in out
    code, out, _ = explain_cli(capsys, "--input", "5x5", "--kernel", "3")
    assert code == 0 and "S_Z = (3, 3)" in out


def test_relationships_cases(capsys):
    cases = {((5, 5), 3, 1, 0): 1, ((5, 5), 2, 1, 2): 2, ((5, 5), 3, 1, 1): 3,
             ((5, 5), 3, 1, 2): 4, ((5, 5), 2, 1, 1): 4, ((5, 5), 3, 2, 0): 5,
             ((5, 5), 3, 2, 1): 6}
    for (inp, k, s, p), case in cases.items():
        r = relationships(inp, k, s, p)
        assert r.axes[0].case == case, (inp, k, s, p)
        assert r.axes[0].o == r.layout.output_shape[0]
    r = relationships((6, 6), 3, 2, 1)
    assert r.axes[0].a == 1 and r.axes[0].transposed_case == 14 and r.axes[0].p_eq == 1
    assert relationships((5, 5), 3, dilation=2).axes[0].case == 15
    t = relationships((3, 3), 3, 2, 0, transposed=True, output_padding=1)
    assert t.axes[0].i == 8 and t.axes[0].o == 3 and t.axes[0].a == 1
    assert "Relationship 14" in t.to_text()
    assert r"\lfloor" in r.to_markdown() and r.to_latex().startswith(r"\documentclass")
    for tex in (r.to_latex(), t.to_latex()):
        assert not re.search(r"[^\x00-\x7f]", tex), "pdflatex needs ASCII"
        assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
    code, out, _ = explain_cli(capsys, "--relationships", "--input", "5", "--kernel", "3",
                               "--padding", "1")
    assert code == 0 and "Relationship 3" in out


def test_too_large_names_the_nearest_size_that_works():
    with pytest.raises(ValueError, match=r"nearest that works: --input 9x9"):
        explain((20, 20), 2)
    explain((9, 9), 2)
    with pytest.raises(ValueError, match="weights over all channel pairs"):
        explain((3, 3), 3, channels=(3, 3))


# ----------------------------------------------------------------- renderers
@pytest.mark.parametrize("kwargs", [
    {"dilation": 2, "input_shape": (5, 5), "padding": 1},
    {"channels": (2, 2), "groups": 2},
    {"transposed": True, "stride": 2, "output_padding": 1},
    {"input_shape": (5,), "kernel_shape": (3,)},
    {"op": "maxpool", "input_shape": (4, 4), "stride": 2},
    {"op": "avgpool", "input_shape": (4, 4), "padding": 1},
])
def test_every_format_for_every_option(kwargs):
    d = explain(**kwargs, values="random")
    assert d.to_text() and "they agree" in d.to_text()
    md = d.to_markdown()
    assert md.count("$$") % 2 == 0 and md.count(r"\begin{aligned}") == md.count(r"\end{aligned}")
    tex = d.to_latex()
    assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
    assert not re.search(r"[^\x00-\x7f]", tex), "pdflatex needs ASCII"
    # tests/test_explain_latex.py compiles these combinations with pdflatex


def test_latex_matrix_row_wraps():
    from convprop.explainer.notation import Latex
    from convprop.explainer.render import _matrices_math
    from convprop.explainer.sections import _overview
    from convprop.explainer.text import LINE_CHARS
    from convprop.explainer.text import latex_width as _latex_width

    d = explain((4, 4), 3, values="random")
    (_, block) = _overview(d, Latex())
    lines = _matrices_math(block)
    assert len(lines) == 2 and lines[0].startswith("X =") and lines[1].startswith("Y =")
    assert len(_matrices_math(_overview(explain((3, 3)), Latex())[0])) == 1  # X, K fit on one
    assert _latex_width("-0.54") == 5 and _latex_width("x_{1,1}") < 4 < LINE_CHARS
    tex = d.to_latex()
    assert tex.count(r"\[") >= 2


# --------------------------------------------------------------- usage errors
def explain_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``convprop explain …`` in this process: (exit status, stdout, stderr)."""
    from convprop.cli import main

    code = main(["explain", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_in_a_subprocess_has_no_traceback(tmp_path):
    src = os.path.dirname(os.path.dirname(convprop.__file__))
    env = {**os.environ, "PYTHONIOENCODING": "utf-8",
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "convprop", "explain", "--op", "maxpool",
                        "--channels", "2,2"], capture_output=True, text=True, encoding="utf-8",
                       timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith("convprop: error: --op maxpool works on one channel")


@pytest.mark.parametrize("args", [
    ["--transposed", "--divisor", "stride"],
    ["--op", "maxpool", "--channels", "2,2"],
    ["--op", "avgpool", "--divisor", "1"],
    ["--op", "maxpool", "--transposed"],
    ["--op", "avgpool", "--dilation", "2"],
    ["--output-padding", "1"],
    ["--groups", "2"],
    ["--channels", "3,2", "--groups", "2"],
    ["--channels", "2"],
    ["--input", "5", "--kernel", "3x3"],
    ["--transposed", "--output-padding", "1"],
    ["--transposed", "--figure", "f.png"],
    ["--output", "no/such/folder/d.txt"],
    ["--relationships", "--values", "random"],
])
def test_bad_combinations_are_one_line_usage_errors(args, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = explain_cli(capsys, *args)
    assert code == 2, (args, err)
    assert err.startswith("convprop") and err.count("\n") == 1 and "Traceback" not in err, err
    assert out == "" and not (tmp_path / "f.png").exists()


def test_output_paths_are_checked_before_any_work(capsys, tmp_path, monkeypatch):
    import convprop.explainer.derivation as derivation

    def no_work(*a, **k):
        raise AssertionError("explain ran before the output path was checked")

    monkeypatch.setattr(derivation, "explain", no_work)
    code, _, err = explain_cli(capsys, "--output", str(tmp_path / "missing" / "d.md"))
    assert code == 2 and "does not exist" in err
    code, _, err = explain_cli(capsys, "--figure", str(tmp_path))
    assert code == 2 and "is a directory" in err


@pytest.mark.parametrize("kwargs", [{"dilation": 2, "input_shape": (5, 5)},
                                    {"op": "avgpool", "stride": 2, "input_shape": (4, 4)}])
def test_figures_for_dilation_and_pooling(kwargs, tmp_path):
    explain(**kwargs).figure(tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="one-channel"):
        explain(transposed=True).figure(tmp_path / "g.png")


def test_structure_for_the_page_and_the_old_constructor():
    from convprop.explainer.derivation import Derivation
    from convprop.seed import Geometry

    g = Geometry.create((4, 4), (2, 2), 2, 1, "stride", 2)
    d = Derivation(g)
    assert d.geometry == g and d.layout.divisor_rule == "S_W·S_H"
    for (x, y), taps in d.footprints.items():  # the footprint is the geometry's windows
        assert [t.input for t in taps] == [g.source(*t.kernel, x, y) for t in taps]
        assert all((t.zero == "padding") == (t.input is None) for t in taps)
    for kc, terms in d.terms.items():  # each ∂L/∂k term: the output and the input cell it reads
        assert [t.source for t in terms] == [g.source(*kc, *t.output) for t in terms]


def test_values_with_channels_come_from_files_with_a_bias(tmp_path):
    rng = np.random.default_rng(3)
    x, k, y = rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 2, 2, 2)), rng.uniform(size=(2, 2, 2))
    b = np.array([0.1, -0.2])
    np.savez(tmp_path / "v.npz", x=x, k=k, y=y, b=b)
    d = explain((3, 3), 2, channels=(2, 2), values=tmp_path / "v.npz")
    check(d)
    np.testing.assert_array_equal(d.values.b, b)
    with pytest.raises(ValueError, match="missing b"):
        explain((3, 3), 2, channels=(2, 2), values={"x": x, "k": k, "y": y})
    with pytest.raises(ValueError, match=r"shape \(2, 2, 2, 2\)"):
        explain((3, 3), 2, channels=(2, 2), values=(x, k[:, :1], y, b))


def test_relationships_for_pooling_state_the_output_size_only():
    r = relationships((6, 6), 2, 2, op="maxpool")
    assert r.axes[0].case == 7 and r.axes[0].o == 3
    assert "transposed convolution (Relationship" not in r.to_text()

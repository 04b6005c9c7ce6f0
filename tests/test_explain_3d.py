"""``convprop explain`` in 3-D (``--input WxHxD``): text, Markdown, LaTeX and the Python object.

Every z and every chain-rule term of ``∂L/∂k`` is written out; with values the symbolic
gradients are checked against convprop's autograd (inside ``evaluate``, to 1e-12) and
here again against PyTorch's conv3d / conv_transpose3d / max_pool3d / avg_pool3d in
float64, over small shapes drawn by hypothesis.  The page, the GIF and the figure refuse
3-D with one line naming what works.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convprop.explainer.derivation import explain
from convprop.explainer.page import page_model

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def torch_pipeline(d) -> dict[str, np.ndarray]:
    """z = op(x, k)/D (+ b), o = σ(z), L = Σ(o − y)² in PyTorch float64: z and the gradients."""
    L, v = d.layout, d.values

    def t(kind, a, grad=False):
        return torch.tensor(np.asarray(a).reshape(L.array_shape(kind)), dtype=torch.float64,
                            requires_grad=grad)

    rev = lambda p: tuple(p[::-1])  # noqa: E731  (W, H, D) -> PyTorch's (D, H, W)
    x = t("x", v.x, True)[None]
    x.retain_grad()
    st_, pad, dil = rev(L.stride), rev(L.padding), rev(L.dilation)
    leaves = {"x": x}
    if L.op == "maxpool":
        z = TF.max_pool3d(x, rev(L.kernel_shape), st_, pad, dil)
    elif L.op == "avgpool":
        z = TF.avg_pool3d(x, rev(L.kernel_shape), st_, pad)
    else:
        k = leaves["k"] = t("k", v.k, True)
        if L.transposed:
            z = TF.conv_transpose3d(x, k, None, st_, pad, rev(L.output_padding), L.groups, dil)
        else:
            z = TF.conv3d(x, k, None, st_, pad, dil, L.groups)
        z = z / L.divisor
        if L.bias:
            b = leaves["b"] = torch.tensor(v.b, dtype=torch.float64, requires_grad=True)
            z = z + b.reshape(1, -1, 1, 1, 1)
    loss = ((torch.sigmoid(z) - t("z", v.y)[None]) ** 2).sum()
    loss.backward()
    out = {name: leaf.grad.detach().numpy() for name, leaf in leaves.items()}
    out["z"], out["loss"] = z.detach().numpy()[0], loss.item()
    return out


def check(d) -> None:
    """Symbolic = autograd (≤ 1e-12, from evaluate) = PyTorch (≤ 1e-12), z and L included."""
    L, v = d.layout, d.values
    assert L.nd == 3 and v.max_difference <= 1e-12
    ref = torch_pipeline(d)
    np.testing.assert_allclose(v.z.reshape(L.array_shape("z")), ref["z"], rtol=0, atol=1e-12)
    assert abs(v.loss - ref["loss"]) <= 1e-12
    np.testing.assert_allclose(v.grad_x.reshape(L.array_shape("x")), ref["x"][0], rtol=0,
                               atol=1e-12)
    if v.grad is not None:
        np.testing.assert_allclose(v.grad.reshape(L.array_shape("k")), ref["k"], rtol=0, atol=1e-12)
        # every ∂L/∂k is the sum of its chain-rule terms, one per output of its channel
        axes = tuple(range(L.nd + (2 if L.multichannel else 0), v.terms.ndim))
        np.testing.assert_allclose(v.terms.sum(axis=axes), v.grad, rtol=0, atol=1e-15)
    if v.grad_b is not None:
        np.testing.assert_allclose(v.grad_b, ref["b"], rtol=0, atol=1e-12)


def fits(size: int, k: int, p: int, d: int) -> bool:
    return k + (k - 1) * (d - 1) <= size + 2 * p


# ------------------------------------------------ symbolic = autograd = torch
@settings(max_examples=12, deadline=None)
@given(size=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
       k=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 2)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 2)),
       p=st.integers(0, 1), d=st.integers(1, 2), seed=st.integers(0, 99))
def test_conv3d_with_stride_padding_and_dilation(size, k, s, p, d, seed):
    assume(all(fits(n, kk, p, d) for n, kk in zip(size, k)))
    layout_outputs = [(n + 2 * p - kk - (kk - 1) * (d - 1)) // ss + 1
                      for n, kk, ss in zip(size, k, s)]
    assume(math.prod(layout_outputs) <= 64)
    check(explain(size, k, s, p, values="random", seed=seed, dilation=d))


@settings(max_examples=8, deadline=None)
@given(size=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 2)),
       s=st.integers(1, 2), p=st.integers(0, 1), a=st.integers(0, 1), dil=st.integers(1, 2),
       seed=st.integers(0, 99))
def test_conv_transpose3d(size, s, p, a, dil, seed):
    assume(a < max(s, dil))
    try:
        d = explain(size, (2, 1, 2), s, p, values="random", seed=seed, transposed=True,
                    output_padding=(a, 0, a), dilation=(dil, 1, dil))
    except ValueError as e:  # an empty output or too large to write out: refused, never wrong
        assert "empty" in str(e) or "too large" in str(e) or "output" in str(e), e
        return
    check(d)
    L = d.layout  # the adjoint (scatter) and the equivalent direct convolution: the same products
    assert L.triples() == {(o, kk, i) for i in L.inputs() for o, kk in L.scatter(i)}
    assert "the two views agree" in " ".join(d.to_text().split())


@pytest.mark.parametrize("kwargs", [
    {"channels": (2, 2), "groups": 2, "padding": (1, 0, 1)},
    {"channels": (1, 2), "stride": (2, 1, 1)},
    {"op": "maxpool", "input_shape": (4, 4, 2), "stride": 2},
    {"op": "maxpool", "input_shape": (3, 3, 3), "padding": 1, "stride": 2},
    {"op": "avgpool", "input_shape": (4, 3, 3), "padding": 1, "stride": (2, 2, 1)},
    {"divisor": "stride", "stride": 2, "padding": 1},
])
def test_channels_groups_pooling_and_divisors(kwargs):
    kwargs = {"input_shape": (3, 3, 2), "kernel_shape": 2, **kwargs}
    check(explain(**kwargs, values="random", seed=4))


# -------------------------------------------------------------- what is written
def test_every_z_and_every_term_is_written_in_every_format():
    d = explain((3, 3, 3), (2, 2, 2), 2, 1, values="random", seed=2)
    L = d.layout
    text, md, tex = d.to_text(), d.to_markdown(), d.to_latex()
    assert L.output_shape == (2, 2, 2) and len(d.z) == 8 and len(d.terms) == 8
    for oc in d.z:
        assert re.search(rf"^  z_{{{','.join(map(str, oc))}}} = ", text, re.M), oc
        assert f"z_{{{','.join(map(str, oc))}}} &=" in tex
    for kc, terms in d.terms.items():
        k = f"k_{{{','.join(map(str, kc))}}}"
        assert f"∂L/∂{k} = " in text and rf"\frac{{\partial L}}{{\partial {k}}}" in md
        assert len(terms) == 8  # one chain-rule term per output, vanishing ones included
    assert "Z_D = " in text and "S_Z = (2, 2, 2)" in text and "depth l" in text
    assert "X_{l=1} =" in text and "X_{l=3} =" in text and "Y_{t=2} =" in text
    assert "they agree" in text and "THEY" not in text
    assert tex.startswith(r"\documentclass") and not re.search(r"[^\x00-\x7f]", tex)
    assert repr(d).startswith("Derivation(input_shape=(3, 3, 3), kernel_shape=(2, 2, 2)")


def test_symbols_only_and_the_padding_zeros():
    d = explain((2, 2, 2), 2, padding=(0, 0, 1))
    assert d.values is None and d.layout.output_shape == (1, 1, 3) and d.geometry is None
    first = d.footprints[(1, 1, 1)]
    assert [t.zero for t in first] == ["padding"] * 4 + [None] * 4  # depth 0 is padding
    assert str(d.z[(1, 1, 1)]) .count("x_") == 4
    assert "0·k_{1,1,1}" in d.to_text()


def test_values_from_arrays_in_pytorchs_layout():
    rng = np.random.default_rng(0)
    x, k, y = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 2, 2)), rng.uniform(size=(1, 2, 3))
    d = explain((4, 3, 2), 2, values=(x, k, y))  # x is (D, H, W) = (2, 3, 4)
    check(d)
    assert d.values.at("x", (4, 1, 2)) == x[1, 0, 3]  # x_{i,j,l} = x[l-1, j-1, i-1]
    with pytest.raises(ValueError, match=r"shape \(2, 3, 4\)"):
        explain((4, 3, 2), 2, values=(x[:1], k, y))


# ------------------------------------------------------------------- refusals
def test_sizes_beyond_the_limits_are_refused_with_the_nearest_size_that_works():
    with pytest.raises(ValueError, match=r"125 outputs z .*nearest that works: --input 5x5x5"):
        explain((6, 6, 6), 2)
    explain((5, 5, 5), 2)  # the suggestion works
    with pytest.raises(ValueError, match=r"3x3x3 = 27 kernel elements .*--input 4x4x4 --kernel 2x2x2"):
        explain((4, 4, 4), 3)
    with pytest.raises(ValueError, match="81 outputs z") as e:
        explain((4, 4, 4), 2, channels=(1, 3))
    w, h, depth = map(int, re.search(r"nearest that works: --input (\d+)x(\d+)x(\d+)",
                                     str(e.value)).groups())
    assert (w, h, depth) == (3, 4, 4)  # the longest side shrinks first, the first of equals
    explain((w, h, depth), 2, channels=(1, 3))
    with pytest.raises(ValueError, match="three"):
        explain((4, 4, 4), (2, 2))
    with pytest.raises(ValueError, match="kernel does not fit"):
        explain((4, 4, 1), 2)


def explain_cli(capsys, *args: str) -> tuple[int, str, str]:
    from convprop.cli import main

    code = main(["explain", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("extra", [("--format", "html", "--output", "p.html"),
                                   ("--animate", "a.gif"), ("--figure", "f.png")])
def test_the_page_gif_and_figure_refuse_3d_in_one_line(capsys, tmp_path, monkeypatch, extra):
    monkeypatch.chdir(tmp_path)
    code, out, err = explain_cli(capsys, "--input", "3x3x3", *extra)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "1-D and 2-D" in err and "text, markdown or latex" in err and extra[0] in err
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="1-D and 2-D"):
        page_model(explain((2, 2, 2), 1))


def test_cli_writes_3d_text_markdown_latex_and_relationships(capsys, tmp_path):
    code, out, _ = explain_cli(capsys, "--input", "3x2x2", "--kernel", "2", "--values", "random")
    assert code == 0 and "z_{2,1,1} = " in out and "they agree" in out
    code, out, _ = explain_cli(capsys, "--input", "3x2x2", "--format", "latex")
    assert code == 0 and r"\end{document}" in out
    code, out, _ = explain_cli(capsys, "--input", "3x3x3", "--stride", "2", "--relationships")
    assert code == 0 and "Axis D: i = 3" in out
    code, _, err = explain_cli(capsys, "--input", "3x3x3", "--kernel", "2x2")
    assert code == 2 and "takes one number or 3" in err
    code, _, err = explain_cli(capsys, "--input", "3x3x3x3")
    assert code == 2 and "WxHxD" in err

"""``convprop.explain``: the document's derivation, parsed back with SymPy and checked."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sympy.parsing.sympy_parser import parse_expr

import convprop
from convprop import seed
from convprop.explainer.derivation import Derivation, explain

# ------------------------------------------------------------- the parser
_SUB = re.compile(r"([a-zA-Z])_\{(\d+),(\d+)\}")
_SIGMA = sp.Lambda(sp.Symbol("t"), 1 / (1 + sp.exp(-sp.Symbol("t"))))


def S(name: str, i: int, j: int) -> sp.Symbol:
    """The symbol the derivation uses for ``name_{i,j}``."""
    return sp.Symbol(f"{name}_{{{i},{j}}}", real=True)


def parse(text: str) -> sp.Expr:
    """A right-hand side of the text format, read back as a SymPy expression.

    The text format writes products with ``·``, squares with ``²``, σ for the
    sigmoid and ``e^(…)`` for exp; ``x_{i,j}`` becomes the symbol of that name.
    """
    names: dict[str, sp.Symbol] = {}

    def ident(m: re.Match) -> str:
        key = f"{m.group(1)}_{m.group(2)}_{m.group(3)}"
        names[key] = S(m.group(1), int(m.group(2)), int(m.group(3)))
        return key

    s = _SUB.sub(ident, text)
    s = s.replace("·", "*").replace("²", "**2").replace("σ(", "sigma(").replace("e^(", "exp(")
    return parse_expr(s, local_dict={**names, "sigma": _SIGMA})


def equations(text: str) -> dict[str, list[str]]:
    """``lhs -> [rhs, rhs, …]`` for every indented equation of the text format.

    An equation starts on a line ``  lhs = rhs``; lines that continue it start with
    ``=`` (a new right-hand side) or ``+`` (the sum goes on).  A one-line
    ``a = b = c`` gives ``[b, c]``.
    """
    eqs: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("  ") or line.startswith("  ["):
            current = None
            continue
        body = line.strip()
        if body.startswith(("= ", "+ ")) and current is not None:
            if body.startswith("="):
                current.extend(body[2:].split(" = "))
            else:
                current[-1] += " " + body
            continue
        if " = " not in body:
            current = None
            continue
        lhs, rhs = body.split(" = ", 1)
        current = eqs.setdefault(lhs.strip(), [])
        current.extend(rhs.split(" = "))
    return eqs


def same(a: sp.Expr, b: sp.Expr) -> bool:
    return sp.simplify(a - b) == 0


# --------------------------------------------------------- the document
def document_z(x: int, y: int) -> sp.Expr:
    """Section II's z_{x,y}, as the document writes it (its worked equations divide by 4)."""
    i0, j0 = x - 1, y - 1  # the corrected index: x_{i+x-1, j+y-1}
    return sum(S("x", i + i0, j + j0) * S("k", i, j) for i in (1, 2) for j in (1, 2)) / 4


DOCUMENT_Z = {  # copied from the document, section II
    (1, 1): "(x_{1,1}·k_{1,1} + x_{2,1}·k_{2,1} + x_{1,2}·k_{1,2} + x_{2,2}·k_{2,2})/4",
    (2, 1): "(x_{2,1}·k_{1,1} + x_{3,1}·k_{2,1} + x_{2,2}·k_{1,2} + x_{3,2}·k_{2,2})/4",
    (1, 2): "(x_{1,2}·k_{1,1} + x_{2,2}·k_{2,1} + x_{1,3}·k_{1,2} + x_{2,3}·k_{2,2})/4",
    (2, 2): "(x_{2,2}·k_{1,1} + x_{3,2}·k_{2,1} + x_{2,3}·k_{1,2} + x_{3,3}·k_{2,2})/4",
}
OUTPUTS = [(1, 1), (2, 1), (1, 2), (2, 2)]


def sigma(z: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-z))


@pytest.fixture(scope="module")
def default() -> Derivation:
    return explain()


@pytest.fixture(scope="module")
def default_text(default: Derivation) -> str:
    return default.to_text()


def test_default_reproduces_section_ii(default_text):
    eqs = equations(default_text)
    assert [int(parse(eqs[n][-1])) for n in ("Z_W", "Z_H")] == [2, 2]  # eq. 2
    for (x, y), written in DOCUMENT_Z.items():
        got = parse(eqs[f"z_{{{x},{y}}}"][0])
        assert same(got, parse(written))
        assert same(got, document_z(x, y))
    for (x, y) in OUTPUTS:
        o = eqs[f"o_{{{x},{y}}}"]
        assert same(parse(o[0]), sigma(S("z", x, y)))  # σ(z)
        assert same(parse(o[1]), 1 / (1 + sp.exp(-S("z", x, y))))  # eq. 6
    loss = eqs["L"]
    assert "Σ" in loss[0]
    expected = sum((S("o", x, y) - S("y", x, y)) ** 2 for (x, y) in OUTPUTS)
    assert same(parse(loss[1]), expected)


def test_default_completes_section_iii_for_every_kernel_element(default_text):
    eqs = equations(default_text)
    for (i, j) in [(1, 1), (2, 1), (1, 2), (2, 2)]:
        rhs = eqs[f"∂L/∂k_{{{i},{j}}}"]
        # first the chain rule itself, one term per output …
        assert rhs[0].count("∂L/∂o_") == 4 and f"∂z_{{2,2}}/∂k_{{{i},{j}}}" in rhs[0]
        # … then every factor: 2(o − y) · σ(z)(1 − σ(z)) · x/4 (the document drops the /4)
        expected = sum(2 * (S("o", x, y) - S("y", x, y)) * sigma(S("z", x, y))
                       * (1 - sigma(S("z", x, y))) * S("x", x + i - 1, y + j - 1) / 4
                       for (x, y) in OUTPUTS)
        assert same(parse(rhs[1]), expected)
    # the document's own example term, and its correction
    assert "∂z_{1,1}/∂k_{1,1} = x_{1,1}/4" in default_text


def test_sympy_expressions(default: Derivation):
    assert default.z[(1, 1)] == document_z(1, 1)
    assert default.o[(2, 1)] == sigma(S("z", 2, 1))
    assert default.X[1, 2] == S("x", 3, 2)  # row-major: X[j-1, i-1] is x_{i,j}
    # the chain-rule sum is the derivative of L: check at random points
    loss = default.loss_full()
    rng = np.random.default_rng(0)
    for (i, j) in default.geometry.kernel_elements():
        diff = sp.diff(loss, S("k", i, j)) - default.grad_full(i, j)
        syms = sorted(diff.free_symbols, key=str)
        f = sp.lambdify(syms, diff, "math")
        for _ in range(3):
            assert abs(f(*rng.normal(size=len(syms)))) < 1e-12


def test_values_seed_are_the_demos_and_cross_check():
    d = explain(values="seed")
    v = d.values
    x, k, y = seed.demo_values()
    p = seed.forward_backward(x, k, y)
    assert v.max_difference <= 1e-12
    np.testing.assert_allclose(v.z, p.z, rtol=1e-15)
    assert v.loss == pytest.approx(p.loss, rel=1e-14)
    np.testing.assert_allclose(v.grad, p.grad, rtol=1e-13)
    text = d.to_text()
    assert "= 1.5/4 = 0.375" in text
    assert "differ by at most" in text and "they agree" in text


@settings(max_examples=12, deadline=None)
@given(w=st.integers(1, 5), h=st.integers(1, 5), kw=st.integers(1, 3), kh=st.integers(1, 3),
       sw=st.integers(1, 3), sh=st.integers(1, 3), pw=st.integers(0, 2), ph=st.integers(0, 2),
       divisor=st.sampled_from(["kernel", "stride", 1]), rng_seed=st.integers(0, 1000))
def test_symbolic_gradient_equals_autograd(w, h, kw, kh, sw, sh, pw, ph, divisor, rng_seed):
    assume(kw <= w + 2 * pw and kh <= h + 2 * ph)
    d = explain((w, h), (kw, kh), (sw, sh), (pw, ph), divisor, values="random", seed=rng_seed)
    assert d.values.max_difference <= 1e-12
    assert d.values.loss == pytest.approx(
        seed.forward_backward(d.values.x, d.values.k, d.values.y, (sw, sh), (pw, ph), divisor).loss,
        rel=1e-13)


def test_padding_terms_vanish_and_are_shown_to():
    d = explain((3, 3), (2, 2), padding=1)
    assert d.geometry.output_shape == (4, 4)
    terms = d.terms[(1, 1)]
    assert len(terms) == 16
    assert sum(t.vanishes for t in terms) == 7  # z_{1,y} and z_{x,1} meet the padding
    assert d.terms[(1, 1)][0].dz_dk == 0
    eqs = equations(d.to_text())
    rhs = eqs["∂L/∂k_{1,1}"]
    assert rhs[1].count("·0/4") == 7  # every factored term is there, the padded ones as 0/4
    assert same(parse(rhs[1]), parse(rhs[2]))  # … and dropping them changes nothing
    assert rhs[2].count("+") == 8  # 9 terms survive
    z11 = eqs["z_{1,1}"]
    assert z11[0].count("0·k_") == 3 and same(parse(z11[1]), S("x", 1, 1) * S("k", 2, 2) / 4)


def test_stride_shows_untouched_inputs():
    d = explain((5, 5), (2, 2), stride=3)
    text = d.to_text()
    assert "no window reaches" in text
    assert "x_{3,1}" in text.split("no window reaches")[1].split(":")[0]
    eqs = equations(text)
    assert same(parse(eqs["z_{2,1}"][0]),
                (S("x", 4, 1) * S("k", 1, 1) + S("x", 5, 1) * S("k", 2, 1)
                 + S("x", 4, 2) * S("k", 1, 2) + S("x", 5, 2) * S("k", 2, 2)) / 4)


def test_divisor_one_is_the_standard_convolution():
    d = explain(divisor=1)
    assert d.z[(1, 1)] == sum(S("x", i, j) * S("k", i, j) for i in (1, 2) for j in (1, 2))
    assert "dropping the 1/D" not in d.to_text()


def test_too_large_is_refused_with_a_suggestion():
    with pytest.raises(ValueError, match="smaller shapes"):
        explain((20, 20), (2, 2))
    with pytest.raises(ValueError, match="kernel elements"):
        explain((9, 9), (6, 6))


def _balanced_braces(s: str) -> bool:
    depth = 0
    s = s.replace(r"\{", "").replace(r"\}", "")
    for ch in s:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _environments_nest(s: str) -> bool:
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", s):
        if kind == "begin":
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


@pytest.mark.parametrize("kwargs", [{}, {"padding": 1, "stride": 2, "values": "random"},
                                    {"input_shape": (6, 2), "kernel_shape": (5, 1)}])
def test_latex_is_a_complete_document(kwargs, tmp_path):
    tex = explain(**kwargs).to_latex()
    assert tex.startswith(r"\documentclass{article}") and tex.rstrip().endswith(r"\end{document}")
    assert _balanced_braces(tex) and _environments_nest(tex)
    assert tex.count(r"\left") == tex.count(r"\right") - tex.count(r"\rightarrow")
    assert tex.count(r"\bigl(") == tex.count(r"\bigr)")
    assert not re.search(r"[^\x00-\x7f]", tex), "pdflatex needs ASCII here"
    envs = set(re.findall(r"\\begin\{([^}]*)\}", tex))
    assert envs <= {"document", "align*", "bmatrix"}
    if shutil.which("pdflatex"):
        (tmp_path / "d.tex").write_text(tex)
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "d.tex"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-2000:]


def test_markdown_uses_github_math(default):
    md = default.to_markdown()
    assert md.count("$$") % 2 == 0 and md.count(r"\begin{aligned}") == md.count(r"\end{aligned}")
    assert "$x_{i,j}$" in md
    for line in md.splitlines():
        if line != "$$":
            assert line.replace("$$", "").count("$") % 2 == 0, line
    blocks = re.findall(r"\$\$\n(.*?)\n\$\$", md, flags=re.S)
    assert blocks and all(_balanced_braces(b) and _environments_nest(b) for b in blocks)


def test_notebook_hooks(default):
    assert default._repr_markdown_() == default.to_markdown()
    latex = default._repr_latex_()
    assert latex.startswith("$$\\begin{aligned}") and _balanced_braces(latex)


def test_values_from_files(tmp_path):
    x, k, y = seed.demo_values()
    np.savez(tmp_path / "v.npz", x=x, k=k, y=y)
    (tmp_path / "v.json").write_text(json.dumps({"x": x.tolist(), "k": k.tolist(), "y": y.tolist()}))
    a = explain(values=tmp_path / "v.npz").values
    b = explain(values=str(tmp_path / "v.json")).values
    c = explain(values={"x": x, "k": k, "y": y}).values
    for v in (a, b, c):
        np.testing.assert_allclose(v.grad, a.grad, rtol=0, atol=0)
    with pytest.raises(ValueError, match="shape"):
        explain((4, 3), values=tmp_path / "v.npz")
    with pytest.raises(ValueError, match="not found"):
        explain(values=tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="seed"):
        explain((4, 4), values="seed")


def test_figure_is_a_png(tmp_path):
    explain(padding=1, stride=2).figure(tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_convprop_explain_is_callable_whatever_was_imported_first():
    code = """
import convprop
assert convprop.explain().geometry.output_shape == (2, 2)
assert convprop.explain((4, 4)).geometry.output_shape == (3, 3)  # second access, too
from convprop.explainer.derivation import Derivation
assert isinstance(convprop.explain(), Derivation)
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    subprocess.run([sys.executable, "-c",
                    "from convprop.explainer.derivation import Derivation; import convprop; "
                    "assert isinstance(convprop.explain(), Derivation)"], check=True)


def test_import_convprop_does_not_load_sympy():
    subprocess.run([sys.executable, "-c", "import sys, convprop; assert 'sympy' not in sys.modules"],
                   check=True)
    assert callable(convprop.explain)

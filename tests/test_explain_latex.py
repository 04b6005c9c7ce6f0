"""``convprop explain --format latex`` compiles, and wide derivations break their rows.

Each LaTeX document is compiled with ``pdflatex -halt-on-error`` where pdflatex exists
(Debian: ``texlive-latex-base``); without it the compile tests skip with one reason
(``CONVPROP_REQUIRE_LATEX=1``, which CI sets, turns that skip into a failure).  A
compiled page must also not run off the paper: no ``Overfull \\hbox`` in the log.
Wide derivations (sums of many terms, matrices of many columns) are broken over lines
in LaTeX and in text instead of being refused, and the broken text still reads back as
the same sums.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from convprop.explainer.derivation import explain
from convprop.explainer.render import _text_matrices
from convprop.explainer.text import chunks_within, latex_width, wrap_sum

CASES = {
    "plain": {},
    "dilation": {"input_shape": (5, 5), "dilation": 2, "padding": 1},
    "transposed": {"transposed": True, "stride": 2, "output_padding": 1},
    "channels-groups": {"channels": (2, 4), "groups": 2},
    "maxpool": {"op": "maxpool", "input_shape": (4, 4), "stride": 2, "padding": 1},
    "avgpool": {"op": "avgpool", "input_shape": (4, 4), "padding": 1},
    "1-D": {"input_shape": (6,), "kernel_shape": (3,), "stride": 2},
    "3-D": {"input_shape": (3, 3, 3), "kernel_shape": (2, 2, 2), "stride": 2, "padding": 1},
    "3-D-transposed": {"input_shape": (2, 1, 2), "kernel_shape": 2, "transposed": True,
                       "channels": (1, 2)},
    "wide-5x5": {"input_shape": (12, 12), "kernel_shape": (5, 5), "stride": 2},
    "wide-1-D": {"input_shape": (16,), "kernel_shape": (9,)},
    "wide-rows": {"input_shape": (12, 3), "kernel_shape": (8, 3)},
    "narrow-24": {"input_shape": (24,), "kernel_shape": (3,), "stride": 2},
}


@pytest.fixture(scope="module")
def pdflatex() -> str:
    found = shutil.which("pdflatex")
    if found is None:
        why = "pdflatex not found (Debian: apt-get install texlive-latex-base)"
        if os.environ.get("CONVPROP_REQUIRE_LATEX"):
            pytest.fail(f"CONVPROP_REQUIRE_LATEX is set but {why}")
        pytest.skip(why)
    return found


def compile_latex(pdflatex: str, tex: str, where) -> str:
    """Compile ``tex`` in ``where``; the log, after asserting it compiled and nothing overflowed."""
    (where / "d.tex").write_text(tex, encoding="ascii")
    run = subprocess.run([pdflatex, "-halt-on-error", "-interaction=nonstopmode", "d.tex"],
                         cwd=where, capture_output=True, text=True, timeout=120)
    log = (where / "d.log").read_text(errors="replace")
    assert run.returncode == 0, log[-3000:]
    assert (where / "d.pdf").stat().st_size > 1000
    over = re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)
    assert not over, f"lines run off the page by {over} pt"
    return log


@pytest.mark.parametrize("name", list(CASES))
def test_latex_compiles_with_values(name, pdflatex, tmp_path):
    d = explain(**CASES[name], values="random", seed=1)
    assert d.values.max_difference <= 1e-12
    compile_latex(pdflatex, d.to_latex(), tmp_path)


@pytest.mark.parametrize("name", ["plain", "transposed", "wide-5x5", "3-D"])
def test_latex_compiles_with_symbols_only(name, pdflatex, tmp_path):
    compile_latex(pdflatex, explain(**CASES[name]).to_latex(), tmp_path)


def test_a_compile_error_fails(pdflatex, tmp_path):  # the check above can fail
    tex = explain().to_latex().replace(r"\end{document}", r"\begin{bmatrix} \end{document}")
    with pytest.raises(AssertionError):
        compile_latex(pdflatex, tex, tmp_path)


# ------------------------------------------------------------ wide rows, no pdflatex needed
def test_chunks_and_widths():
    assert chunks_within(["aaa", "bb", "cccc", "d"], 8) == [["aaa", "bb"], ["cccc", "d"]]
    assert chunks_within(["a" * 20, "b"], 8) == [["a" * 20], ["b"]]
    assert latex_width("x_{1,1}") < 4 and latex_width(r"\left(-1.04\right) \cdot 0.82") == 11
    s = "= (a·b + (c + d)·e + f·g)/3 + b_{1}"
    assert wrap_sum(s, 12) == ["= (a·b", "+ (c + d)·e", "+ f·g)/3", "+ b_{1}"]
    assert " ".join(wrap_sum(s, 12)) == s and wrap_sum(s, 100) == [s]


def _latex_rows(tex: str) -> list[str]:
    """Every row of the LaTeX body's aligned equations (matrices are left to the compile)."""
    body = tex.split(r"\begin{document}")[1]
    rows = []
    for block in re.findall(r"\\begin\{align\*\}(.*?)\\end\{align\*\}", body, re.S):
        rows += block.split("\\\\\n")
    return rows


@pytest.mark.parametrize("name", ["wide-5x5", "wide-1-D", "wide-rows"])
def test_wide_latex_rows_fit_a_line(name):
    tex = explain(**CASES[name], values="random").to_latex()
    widths = [latex_width(r) for r in _latex_rows(tex)]
    assert max(widths) <= 70, max(widths)
    assert r"\text{columns 1--" in tex or name == "wide-5x5"  # ∂L/∂K split into column blocks


def _read(text: str) -> sp.Expr:
    """A right-hand side of the text format in 1-D (``x_{3}·k_{1}``) as a SymPy expression."""
    s = re.sub(r"([xkb])_\{(\d+)\}", r"\1_\2", text).replace("·", "*")
    return parse_expr(s)


@pytest.mark.parametrize("kwargs", [
    {"input_shape": (4, 3), "kernel_shape": (3, 3), "channels": (3, 2)},
    {"input_shape": (4, 4), "kernel_shape": (3, 3), "channels": (2, 4), "groups": 2, "padding": 1},
    {"input_shape": (3, 2, 2), "kernel_shape": 2, "channels": (2, 2)},
])
def test_channel_rows_in_text_stay_within_100_columns(kwargs):
    d = explain(**kwargs, values="random")
    lines = d.to_text().splitlines()
    # a sum is broken before its + signs; only a single product or formula with no sum to
    # break (a chain-rule term with 4-index symbols, eq. 5's general form in 3-D) stays whole
    long = [line for line in lines if len(line) > 100 and len(wrap_sum(line.strip(), 1)) > 1]
    assert not long, long[:2]
    assert sum(line.strip().startswith("+ ") for line in lines) > 10  # sums went on over lines


def test_wide_text_breaks_long_sums_that_read_back_the_same():
    d = explain((16,), (9,), values="random", channels=(1, 1))
    text = d.to_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    start = next(n for n, line in enumerate(lines) if line.strip().startswith("z_{1,1} = "))
    assert lines[start + 1].strip().startswith("+ "), "the sum of 9 products is broken"
    joined = lines[start].split(" = ", 1)[1]
    for line in lines[start + 1:]:
        if not line.strip().startswith("+ "):
            break
        joined += " " + line.strip()
    want = sum(sp.Symbol(f"x_{i}") * sp.Symbol(f"k_{i}") for i in range(1, 10)) / 9 + \
        sp.Symbol("b_1")
    assert sp.simplify(_read(joined.replace("x_{1,", "x_{").replace("k_{1,1,", "k_{")
                             .replace("b_{1}", "b_1")) - want) == 0


def test_wide_text_splits_wide_matrices_into_column_blocks():
    d = explain((16,), (9,), values="random")
    text = d.to_text()
    assert "∂L/∂K (columns 1-" in text and max(len(line) for line in text.splitlines()) <= 100
    # the 16 inputs are shown too (once left out as too wide), in blocks of whole columns
    assert "X (columns 1-" in text
    cells = [[f"{v:g}" for v in d.values.x]]
    blocks = _text_matrices("X", cells, 100)
    assert len(blocks) > 1 and all(max(map(len, b)) <= 100 for b in blocks)
    got = [v for b in blocks for v in b[1].strip(" []").split()]
    assert got == cells[0] and blocks[0][0].startswith("X (columns 1-")
    tex = d.to_latex()
    assert r"X\ (\text{columns 1--" in tex
    for body in re.findall(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", tex):
        assert all(row.count("&") < 10 for row in body.split(r"\\"))  # bmatrix: 10 columns
    blocks = re.findall(r"∂L/∂K \(columns (\d+)-(\d+)\) =\n  \[ ([^\]]*) \]", text)
    numbers = [float(v) for _, _, row in blocks for v in row.split()]
    np.testing.assert_allclose(numbers, d.values.grad, rtol=1e-5)
    assert int(blocks[-1][1]) == 9


def test_latex_matrices_keep_to_ten_columns_however_narrow():
    d = explain((24,), (3,), stride=2)  # 24 narrow symbols x_{i}: they fit a line, not a bmatrix
    tex = d.to_latex()
    assert r"X\ (\text{columns 1--10})" in tex and r"X\ (\text{columns 21--24})" in tex

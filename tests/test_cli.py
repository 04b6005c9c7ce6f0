"""The ``convprop`` command line, run for real: ``python -m convprop …`` in a subprocess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from convprop import seed


def convprop(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "convprop", *args], capture_output=True,
                          text=True, encoding="utf-8", timeout=120, cwd=cwd, env=env)


def test_help_for_every_command():
    top = convprop("--help")
    assert top.returncode == 0 and "demo" in top.stdout and "explain" in top.stdout
    assert "width" in top.stdout
    for cmd in ("demo", "explain"):
        r = convprop(cmd, "--help")
        assert r.returncode == 0, r.stderr
        assert "usage: convprop " + cmd in r.stdout
    assert "width x height" in convprop("explain", "--help").stdout


def test_demo_prints_the_derivation_and_a_falling_loss(tmp_path):
    r = convprop("demo", "--plot", str(tmp_path / "demo.png"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for piece in ("X (S_X = (3, 3)) =", "z_{1,1} = (x_{1,1}·k_{1,1}", "= 1.5/4 = 0.375",
                  "o_{2,2} = σ(z_{2,2})", "L = (o_{1,1} - y_{1,1})²", "∂L/∂k_{2,2}:", "∂L/∂K",
                  "K after"):
        assert piece in out, piece
    table = re.findall(r"^\s+(\d+)\s+(\d+\.\d+)", out.split("Training:")[1], flags=re.M)
    steps = [int(s) for s, _ in table]
    losses = [float(v) for _, v in table]
    assert steps == list(range(seed.DEFAULT_STEPS + 1))
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert "at every step" in out
    assert (tmp_path / "demo.png").read_bytes()[:4] == b"\x89PNG"
    assert "Traceback" not in r.stderr


def test_demo_with_random_numbers_and_a_long_run_samples_the_table():
    r = convprop("demo", "--seed", "3", "--steps", "100", "--lr", "1")
    assert r.returncode == 0, r.stderr
    rows = re.findall(r"^\s+(\d+)\s+\d+\.\d+", r.stdout.split("Training:")[1], flags=re.M)
    assert 10 <= len(rows) <= 25 and rows[0] == "0"


def test_explain_default_and_formats(tmp_path):
    r = convprop("explain")
    assert r.returncode == 0, r.stderr
    assert "z_{2,2} = (x_{2,2}·k_{1,1}" in r.stdout and "∂L/∂k_{2,2} =" in r.stdout
    md = convprop("explain", "--format", "markdown", "--input", "4x3", "--stride", "2",
                  "--padding", "1")
    assert md.returncode == 0 and "$$" in md.stdout
    assert r"\frac{\partial L}{\partial k_{2,2}}" in md.stdout
    tex = tmp_path / "d.tex"
    png = tmp_path / "d.png"
    r = convprop("explain", "--format", "latex", "--output", str(tex), "--figure", str(png))
    assert r.returncode == 0, r.stderr
    assert tex.read_text().startswith(r"\documentclass") and png.read_bytes()[:4] == b"\x89PNG"


def test_explain_values_cross_check():
    r = convprop("explain", "--values", "random", "--seed", "5", "--input", "4x4", "--kernel", "3x2",
                 "--stride", "1x2", "--padding", "1")
    assert r.returncode == 0, r.stderr
    diff = float(re.search(r"differ by at most\s+(\S+)", r.stdout).group(1))
    assert diff <= 1e-12


@pytest.mark.parametrize("args", [
    ["explain", "--input", "3x"],
    ["explain", "--kernel", "0x2"],
    ["explain", "--format", "pdf"],
    ["explain", "--divisor", "zero"],
    ["explain", "--input", "2x2", "--kernel", "3x3"],
    ["explain", "--input", "20x20"],
    ["explain", "--values", "no-such-file.npz"],
    ["demo", "--lr", "-1"],
    ["demo", "--steps", "many"],
    ["frobnicate"],
])
def test_bad_arguments_give_one_line_and_status_2(args):
    r = convprop(*args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = r.stderr.strip()
    assert err.startswith("convprop") and "error" in err
    assert "\n" not in err and "Traceback" not in err, err
    assert r.stdout == ""


def test_console_script_if_installed():
    exe = shutil.which("convprop")
    if exe is None:
        pytest.skip("the convprop console script is not on PATH")
    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("convprop ")


def test_main_returns_status_codes(capsys):
    from convprop.cli import main

    assert main(["--version"]) == 0
    assert main(["explain", "--input", "x"]) == 2
    assert "invalid shape 'x'" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "says"), [
    (["explain", "--input", "-3x3"], "argument --input: invalid shape '-3x3'"),
    (["demo", "--seed", "-1"], "argument --seed: expected a non-negative integer"),
    (["demo", "--plot", "{tmp}/missing/demo.png"], "argument --plot: cannot write"),
    (["demo", "--plot", "{tmp}/demo.txt"], "argument --plot: '{tmp}/demo.txt' must end in .png"),
    (["train", "digits", "--checkpoint", "{tmp}/net.pt"], "argument --checkpoint: "),
    (["train", "digits", "--checkpoint", "{tmp}/no/net.npz"], "directory '{tmp}/no' does not exist"),
    (["train", "digits", "--plots", "{tmp}/no/plots"], "argument --plots: cannot create"),
    (["train", "digits", "--epochs", "0"], "argument --epochs: expected a positive integer"),
])
def test_values_and_output_paths_are_checked_before_any_work(tmp_path, args, says):
    """Each bad value names its option in one line, exit 2, and nothing is written."""
    r = convprop(*(a.format(tmp=tmp_path) for a in args))
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = r.stderr.strip()
    assert says.format(tmp=tmp_path) in err and "\n" not in err, err
    assert r.stdout == "" and list(tmp_path.iterdir()) == []

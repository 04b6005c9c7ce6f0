"""The conv suite's command line and table (``convprop bench``); nothing here times anything."""

from __future__ import annotations

import math

import pytest

from convprop import bench, kernels


@pytest.mark.parametrize("flag", ["--repeats", "--threads"])
@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_counts_below_one_are_usage_errors(capsys, flag, value):
    with pytest.raises(SystemExit) as exc:
        bench.main([flag, value, "--list"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"argument {flag}" in err


def test_unknown_backend_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--backend", "cupy", "--list"])
    assert exc.value.code == 2 and "--backend" in capsys.readouterr().err


def test_row_shows_the_three_pass_plan():
    layer = next(L for L in bench.LAYERS if L.name == "resnet28")
    with kernels.use_backend("numpy"):
        plan = bench._Case(layer, None).plan()
    assert plan == ("winograd", "flat", "winograd")
    r = bench.Result(layer, fwd=0.01, step=0.03, torch_fwd=0.02, torch_step=0.03, peak_mib=12.5,
                     error=3e-6, plan=plan)
    row = bench.format_row(r)
    assert row.split()[-3:] == ["winograd", "flat", "winograd"]
    table = bench.format_table([r])
    assert "forward" in table and "input grad" in table and "weight grad" in table
    assert "forward 0.50, forward+backward 1.00" in table
    assert math.isclose(bench._geomean([0.5, 2.0]), 1.0)


def test_temporary_memory_counts_the_step_beyond_its_results():
    # padding 1 makes every NumPy path copy the input onto a zero-padded grid (2.1 MiB here:
    # well above the resident-size counters' granularity of a few hundred KiB), so the
    # step's temporaries are at least that
    layer = bench.Layer("t", 8, 16, 16, (64, 64), (3, 3), padding=1)
    mib, ratio = bench.temporary_memory(layer, threads=1, backend="numpy")
    assert math.isfinite(mib) and math.isfinite(ratio)
    padded = 8 * 16 * 66 * 66 * 4 / 2**20
    io = 4 * (8 * 16 * 64 * 64 + 16 * 16 * 9 + 8 * 16 * 64 * 64) / 2**20
    assert padded <= mib < 50 * io
    assert math.isclose(ratio, mib / io, rel_tol=1e-6)

"""The suite on a machine without PyTorch: nothing errors, the oracle tests skip with one reason,
and the tests that need no oracle (naive references, finite differences, the seed) still run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _pytest(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CONVPROP_TESTS_WITHOUT_TORCH="1")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o",
                           "addopts=", *args], cwd=TESTS.parent, env=env, capture_output=True,
                          text=True, timeout=600)


def test_every_module_collects_without_torch() -> None:
    r = _pytest("--collect-only", "-q", str(TESTS))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "error" not in r.stdout.lower().splitlines()[-1], r.stdout[-2000:]


def test_seed_and_finite_difference_tests_run_and_parity_tests_skip_with_one_reason() -> None:
    r = _pytest("-q", "-rs", str(TESTS / "test_seed.py"), str(TESTS / "test_gradcheck.py"))
    assert r.returncode == 0, r.stdout[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    assert "passed" in last and "failed" not in last, last
    reasons = {line.split(": ", 1)[1] for line in r.stdout.splitlines()
               if line.startswith("SKIPPED")}
    assert len(reasons) == 1 and "PyTorch (the parity oracle) is not installed" in reasons.pop()

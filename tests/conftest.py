"""Shared test configuration: one deterministic hypothesis profile, the backend fixture, and
PyTorch as an optional oracle.

``derandomize=True`` makes every hypothesis test draw the same examples on every
run, so CI is reproducible.  ``HYPOTHESIS_PROFILE=explore`` searches with fresh
random examples instead (tests that set their own ``max_examples`` keep it;
the others draw 1000).
"""

import os
import sys

import backends
import pytest
from hypothesis import HealthCheck, settings

#: Why a test that compares against PyTorch did not run (one reason for all of them).
TORCH_MISSING = ("PyTorch (the parity oracle) is not installed; the naive-reference, "
                 "finite-difference and seed tests still run. Install the CPU build: "
                 "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")

if os.environ.get("CONVPROP_TESTS_WITHOUT_TORCH"):  # run the suite as a machine without torch would
    sys.modules["torch"] = None  # type: ignore[assignment]


def import_torch():
    """The torch module, or a module-level skip with :data:`TORCH_MISSING`."""
    return pytest.importorskip("torch", reason=TORCH_MISSING)


@pytest.fixture(scope="session")
def torch():
    """PyTorch for the tests that use it as an oracle; those tests skip without it."""
    return import_torch()

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "explore",
    derandomize=False,
    deadline=None,
    max_examples=1000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=backends.params())
def backend(request):
    """Runs the test on each kernel backend (``numpy``; ``numba`` where it is available).
    Hypothesis tests take ``backends.params()`` as a parameter instead (a function-scoped
    fixture is not re-entered per example)."""
    with backends.running_on(request.param):
        yield request.param

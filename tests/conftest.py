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
from oracle import one_torch_thread, require_torch


class _NoTorch:
    """A meta-path finder that answers every ``import torch`` as a machine without it would."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if os.environ.get("CONVPROP_TESTS_WITHOUT_TORCH"):  # run the suite as a machine without torch would
    sys.meta_path.insert(0, _NoTorch())


@pytest.fixture(scope="session")
def torch():
    """PyTorch for the tests that use it as an oracle; those tests skip without it."""
    return require_torch()

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


@pytest.fixture(scope="module")
def torch_on_one_thread():
    """A module's PyTorch references on one thread (``pytestmark = usefixtures(...)``)."""
    with one_torch_thread():
        yield

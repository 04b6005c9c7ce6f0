"""PyTorch as the tests' oracle, optional: ``from oracle import torch, needs_torch``.

``torch`` here is the real module when it is installed.  Where it is not, it is a
stand-in whose first attribute access skips -- the test that touches it, or the
whole module when that happens at import (a module-level ``tF = torch.nn.functional``)
-- always with the one reason :data:`TORCH_MISSING`.  Tests that never touch it (naive
references, finite differences, error rules, the seed) run either way.
``CONVPROP_TESTS_WITHOUT_TORCH=1`` makes a machine with torch behave as one without.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

#: Why a test that compares against PyTorch did not run (one reason for all of them).
TORCH_MISSING = ("PyTorch (the parity oracle) is not installed; the naive-reference, "
                 "finite-difference and seed tests still run. Install the CPU build: "
                 "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")


class _Missing:
    """Stands in for the torch module where it is not installed."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise pytest.skip.Exception(TORCH_MISSING, allow_module_level=True)

    def __bool__(self) -> bool:
        return False


def _load() -> Any:
    if os.environ.get("CONVPROP_TESTS_WITHOUT_TORCH"):
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


_torch = _load()
HAVE_TORCH = _torch is not None
torch: Any = _torch if HAVE_TORCH else _Missing()

#: Marks a test that needs the oracle (for tests that would otherwise fail, not skip).
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason=TORCH_MISSING)


def require_torch() -> Any:
    """The torch module, or a skip of the calling module with :data:`TORCH_MISSING`."""
    if not HAVE_TORCH:
        raise pytest.skip.Exception(TORCH_MISSING, allow_module_level=True)
    return _torch

"""PyTorch as the tests' oracle, optional: ``from oracle import torch, needs_torch``.

``torch`` here is the real module when it is installed.  Where it is not, it is a
stand-in whose first attribute access skips -- the test that touches it, or the
whole module when that happens at import (a module-level ``tF = torch.nn.functional``)
-- always with the one reason :data:`TORCH_MISSING`.  Tests that never touch it (naive
references, finite differences, error rules, the seed) run either way.
``CONVPROP_TESTS_WITHOUT_TORCH=1`` makes a machine with torch behave as one without.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
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



class _Functional:
    """``torch.nn.functional``, looked up when first used (so a module may name it at import)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.nn.functional, name)


tF: Any = _Functional()

#: Marks a test that needs the oracle (for tests that would otherwise fail, not skip).
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason=TORCH_MISSING)


def require_torch() -> Any:
    """The torch module, or a skip of the calling module with :data:`TORCH_MISSING`."""
    if not HAVE_TORCH:
        raise pytest.skip.Exception(TORCH_MISSING, allow_module_level=True)
    return _torch


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch on one thread, then its setting back: on the tests' tiny tensors its thread pool
    only adds waiting (a lot of it on a shared 2-core machine).  Nothing to do without torch."""
    if not HAVE_TORCH:
        yield
        return
    before = _torch.get_num_threads()
    _torch.set_num_threads(1)
    try:
        yield
    finally:
        _torch.set_num_threads(before)

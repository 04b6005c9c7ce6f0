"""The kernel backends the parity tests run on, as pytest parameters.

Every parity test runs once per backend (``numpy``, the reference, and ``numba``).
The ``numba`` leg is skipped, with the reason, where the compiled package
``convprop.kernels.numba`` is absent or Numba is not installed -- looked up
without importing either, so that collecting the tests compiles nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator

import pytest

from convprop import kernels


def unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None when it can."""
    if name == "numba":
        if importlib.util.find_spec("convprop.kernels.numba") is None:
            return "the numba backend (convprop.kernels.numba) is not in this checkout"
        if importlib.util.find_spec("numba") is None:
            return "numba is not installed"
    return None


def params() -> list:
    """One ``pytest.param`` per backend, the unavailable ones marked skip."""
    out = []
    for name in kernels.BACKENDS:
        reason = unavailable(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def algorithm_params(select=None) -> list:
    """``(backend, algorithm)`` parameters for every algorithm of every available backend
    (``select(backend, name)`` may narrow them); one skipped placeholder per unavailable
    backend."""
    out = []
    for backend in kernels.BACKENDS:
        reason = unavailable(backend)
        if reason:
            out.append(pytest.param(backend, None, marks=pytest.mark.skip(reason=reason),
                                    id=f"{backend}-skipped"))
            continue
        for name in kernels.algorithms(backend):
            if select is None or select(backend, name):
                out.append(pytest.param(backend, name, id=f"{backend}-{name}"))
    return out


@contextlib.contextmanager
def running_on(name: str) -> Iterator[None]:
    """Run on backend ``name``; fails if it silently fell back to another."""
    with kernels.use_backend(name) as backend:
        if backend.name != name:
            pytest.fail(f"backend {name!r} fell back to {backend.name!r}")
        yield

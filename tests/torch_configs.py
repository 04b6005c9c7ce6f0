"""PyTorch's own module test configurations, read from the installed torch at run time.

``configs(name)`` yields every configuration that PyTorch's test suite keeps for the
module ``name`` (e.g. ``"ELU"``, ``"CrossEntropyLoss"``), from

- ``common_modules.module_db``: each ``ModuleInfo``'s sample inputs (constructor
  args and kwargs, forward args and kwargs), in training mode and, where the module
  says train and eval differ, in eval mode too;
- ``common_nn.module_tests`` and ``get_new_module_tests()``: entries with a
  ``module_name`` (constructor args, an input size or input function), and entries
  whose ``fullname`` starts with the name and whose constructor builds that module;
- ``common_nn.criterion_tests`` (and ``new_criterion_tests``, in torch versions that
  still have it): losses built by a closure; the constructor kwargs are read back
  from the built module (its ``__init__`` parameters, buffers included).

``functional_configs(names)`` yields the ``common_nn`` entries that wrap one
``torch.nn.functional`` call (``wrap_functional``), the call's arguments recorded by
running it once; ``op_configs(function)`` yields ``common_methods_invocations.op_db``'s
samples of ``torch.nn.functional.<function>``.

Values stay torch tensors (a test converts them with :func:`to_numpy`); ``INPUT``
marks where a functional config passes its input.  Nothing here knows convprop: other
module families can reuse it as they are built.

torch's testing modules import ``expecttest``, a test-only package; when it is
missing a minimal stand-in is registered (only its ``TestCase`` base is used on import).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import random
import sys
import types
import unittest
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from oracle import one_torch_thread


class _Input:
    """Marks the position of the input in a functional config's arguments."""

    def __repr__(self) -> str:
        return "INPUT"


INPUT = _Input()


@dataclass
class Config:
    """One configuration of PyTorch's test suite for one module.

    Attributes:
        source: where it came from (``module_db``, ``common_nn``, ``criterion_tests``).
        name: PyTorch's name for it (``desc`` or ``fullname``).
        module: the ``torch.nn`` class name it exercises.
        args, kwargs: the constructor's arguments; for a functional config, the
            call's arguments, with :data:`INPUT` where each input goes (positional
            ones first, then keywords).
        inputs: the forward inputs (torch tensors; inputs that require grad are
            the ones PyTorch differentiates).
        forward_kwargs: keyword arguments of the forward call.
        functional: the ``torch.nn.functional`` name, for a functional config.
        training: the module's mode.
    """

    source: str
    name: str
    module: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    inputs: tuple = ()
    forward_kwargs: dict = field(default_factory=dict)
    functional: str | None = None
    training: bool = True


@functools.cache
def _testing() -> tuple[types.ModuleType, types.ModuleType]:
    if "expecttest" not in sys.modules:
        try:
            import expecttest  # noqa: F401
        except ImportError:
            stub = types.ModuleType("expecttest")
            stub.TestCase = unittest.TestCase  # type: ignore[attr-defined]
            sys.modules["expecttest"] = stub
    from torch.testing._internal import common_modules, common_nn

    return common_nn, common_modules


def _seed() -> None:
    """Seed torch's CPU generator only (``torch.manual_seed`` also queues a seed, with a
    captured stack, for every accelerator backend: slow when called per entry)."""
    torch.default_generator.manual_seed(0)


@contextlib.contextmanager
def _plain_sampling() -> Iterator[None]:
    """torch's sample iterators walk the whole call stack (``inspect.stack``) to name the
    running torch test and reseed every backend before each sample; outside torch's own
    test runner there is no such test, so skip the walk and seed the CPU generators with
    torch's fixed default seed (the same configurations; other random values)."""
    from torch.testing._internal import common_utils

    saved = common_utils.extract_test_fn, common_utils.set_rng_seed

    def set_rng_seed(seed: int) -> None:
        torch.default_generator.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)

    common_utils.extract_test_fn, common_utils.set_rng_seed = (lambda: None), set_rng_seed
    try:
        yield
    finally:
        common_utils.extract_test_fn, common_utils.set_rng_seed = saved


def to_numpy(value: Any) -> Any:
    """torch tensors to ndarrays and torch dtypes to NumPy dtypes, through tuples,
    lists and dicts; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.detach().numpy().copy()
    if isinstance(value, torch.dtype):
        return torch.empty(0, dtype=value).numpy().dtype
    if isinstance(value, (tuple, list)):
        return type(value)(to_numpy(v) for v in value)
    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    return value


def _double(t: Any) -> Any:
    if isinstance(t, torch.Tensor) and t.is_floating_point():
        return t.detach().double().requires_grad_(True)
    return t


def _make_input(entry: dict, key: str) -> tuple:
    """The inputs of a common_nn entry: ``{key}``, ``{key}_fn()`` or ``randn({key}_size)``."""
    if key in entry:
        value = entry[key]
    elif f"{key}_fn" in entry:
        value = entry[f"{key}_fn"]()
    elif f"{key}_size" in entry:
        value = torch.randn(entry[f"{key}_size"], dtype=torch.float64)
    else:
        return ()
    values = value if isinstance(value, (tuple, list)) else (value,)
    return tuple(_double(v) for v in values)


def _module_kwargs(module: torch.nn.Module) -> dict:
    """Constructor kwargs of an already-built module, read back from its attributes."""
    out = {}
    for p, param in list(inspect.signature(type(module).__init__).parameters.items())[1:]:
        if p in ("size_average", "reduce", "device", "dtype", "args", "kwargs"):
            continue
        if hasattr(module, p):
            value = getattr(module, p)
            if isinstance(param.default, bool) and (value is None
                                                    or isinstance(value, torch.nn.Parameter)):
                value = value is not None  # a flag stored as the parameter it creates (bias)
            out[p] = value
    return out


@contextlib.contextmanager
def _recording(calls: list) -> Iterator[None]:
    """Record every ``torch.nn.functional.<name>(...)`` call made in the block."""
    fns = torch.nn.functional
    originals = {n: getattr(fns, n) for n in dir(fns)
                 if not n.startswith("_") and callable(getattr(fns, n))
                 and not isinstance(getattr(fns, n), type)}

    def recorder(name: str, fn: Callable) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, args, kwargs))
            return fn(*args, **kwargs)
        return call

    try:
        for n, fn in originals.items():
            setattr(fns, n, recorder(n, fn))
        yield
    finally:
        for n, fn in originals.items():
            setattr(fns, n, fn)


def _functional_config(entry: dict, module: str, source: str) -> Config | None:
    """A ``wrap_functional`` entry as one functional call, or None if it is not one."""
    built = entry["constructor"]()
    forward = type(built).forward
    free = dict(zip(forward.__code__.co_freevars, forward.__closure__ or ()))
    if "fn" not in free:
        return None
    fn, fixed = free["fn"].cell_contents, free["kwargs"].cell_contents
    inputs = _make_input(entry, "input")
    if getattr(torch.nn.functional, getattr(fn, "__name__", ""), None) is fn:
        name, args, kwargs = fn.__name__, (INPUT,) * len(inputs), dict(fixed)
    else:
        calls: list = []
        with _recording(calls):
            built(*inputs)
        if not calls:
            return None
        name, args, kwargs = calls[0]
        args = tuple(INPUT if any(a is i for i in inputs) else a for a in args)
        kwargs = {**kwargs, **fixed}
    return Config(source, entry["fullname"], module, args, kwargs, inputs, functional=name)


@functools.cache
def _entries() -> tuple[tuple[str, dict], ...]:
    common_nn, _ = _testing()
    entries = [("common_nn", e) for e in common_nn.module_tests + common_nn.get_new_module_tests()]
    criteria = common_nn.criterion_tests + list(getattr(common_nn, "new_criterion_tests", []))
    return tuple(entries + [("criterion_tests", e) for e in criteria])


def _common_nn(module: str) -> Iterator[Config]:
    for source, entry in _entries():
        named = entry.get("module_name")
        full = entry.get("fullname", "")
        if named == module:
            _seed()
            args = tuple(entry.get("constructor_args", ()))
            yield Config(source, entry.get("desc", named), module, args, {},
                         _make_input(entry, "input") + _make_input(entry, "target"))
        elif named is None and full.startswith(module):
            _seed()
            built = entry["constructor"]()
            if type(built).__name__ == module:  # a real module, built by a closure
                yield Config(source, full, module, (), _module_kwargs(built),
                             _make_input(entry, "input") + _make_input(entry, "target"))


def _module_db(module: str) -> Iterator[Config]:
    _, common_modules = _testing()
    for info in common_modules.module_db:
        if info.module_cls.__name__ != module:
            continue
        modes = (True, False) if info.train_and_eval_differ else (True,)
        for training in modes:
            _seed()
            with _plain_sampling():
                samples = list(info.module_inputs_func(info, device="cpu", dtype=torch.float64,
                                                       requires_grad=True, training=training))
            for s in samples:
                yield Config("module_db", s.desc or "default", module,
                             tuple(s.constructor_input.args), dict(s.constructor_input.kwargs),
                             tuple(s.forward_input.args), dict(s.forward_input.kwargs),
                             training=training)


def configs(module: str) -> Iterator[Config]:
    """Every PyTorch test configuration for the ``torch.nn`` module named ``module``."""
    yield from _module_db(module)
    yield from _common_nn(module)


def functional_configs(names: set[str] | frozenset[str]) -> Iterator[Config]:
    """common_nn's entries that wrap one ``torch.nn.functional`` call of a function in
    ``names`` (``"softmax"``, ``"smooth_l1_loss"``, ...), as functional configs; their
    ``module`` is the entry's ``fullname`` up to the first ``_``."""
    for source, entry in _entries():
        full = entry.get("fullname", "")
        if source != "common_nn" or entry.get("module_name") is not None \
                or "constructor" not in entry:
            continue
        _seed()
        cfg = _functional_config(entry, full.split("_")[0], "common_nn")
        if cfg is not None and cfg.functional in names:
            yield cfg


# op_db names that are a torch function's name but not that function: ``unfold`` is
# ``Tensor.unfold(dimension, size, step)``, not ``nn.functional.unfold`` (im2col)
_NOT_FUNCTIONAL = frozenset({"unfold"})


def op_configs(function: str) -> Iterator[Config]:
    """``common_methods_invocations.op_db``'s float64 samples of ``torch.nn.functional.
    <function>`` (the OpInfo named ``nn.functional.<function>``, or ``<function>`` for
    the softmax family), every variant, as functional configs: each positional tensor
    and each keyword tensor that requires grad is an input (:data:`INPUT` in ``args``
    or ``kwargs``, in that order); other keyword tensors stay constants."""
    _testing()
    from torch.testing._internal.common_methods_invocations import op_db

    for op in op_db:
        if op.name not in (f"nn.functional.{function}", function) or op.name in _NOT_FUNCTIONAL:
            continue
        _seed()
        variant = f".{op.variant_test_name}" if op.variant_test_name else ""
        with _plain_sampling():
            samples = list(op.sample_inputs("cpu", torch.float64, requires_grad=True))
        for i, sample in enumerate(samples):
            values = (sample.input, *sample.args)
            inputs = tuple(v for v in values if isinstance(v, torch.Tensor))
            args = tuple(INPUT if isinstance(v, torch.Tensor) else v for v in values)
            kwargs = dict(sample.kwargs)
            for k, v in kwargs.items():  # keyword tensors torch differentiates: inputs too
                if isinstance(v, torch.Tensor) and v.requires_grad:
                    inputs, kwargs[k] = inputs + (v,), INPUT
            yield Config("op_db", f"{op.name}{variant}[{i}]", function, args, kwargs, inputs,
                         functional=function)


def as_float64(values: tuple) -> tuple:
    """The inputs with floating tensors in float64 (ints untouched)."""
    return tuple(v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                 for v in values)


__all__ = ["INPUT", "Config", "as_float64", "configs", "functional_configs", "op_configs",
           "to_numpy"]


one_thread = one_torch_thread  # torch on one thread while configurations run


def paired_inputs(values: tuple) -> tuple[list, list]:
    """The same float64 inputs for torch (fresh leaves) and convprop (Tensors, or int arrays)."""
    import convprop as cp  # the one place this loader meets convprop

    tin, cin = [], []
    for v in as_float64(values):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            want = bool(v.requires_grad)
            tin.append(v.detach().clone().requires_grad_(want))
            cin.append(cp.Tensor(v.detach().numpy().copy(), requires_grad=want))
        else:
            tin.append(v)
            cin.append(to_numpy(v))
    return tin, cin

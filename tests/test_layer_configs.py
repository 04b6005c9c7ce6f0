"""PyTorch's own test configurations for the pooling, padding, resampling and
normalisation layers, run against convprop.

The configurations are read from the installed torch at run time:
``torch.testing._internal.common_nn`` (``module_tests`` and the new module tests,
for the entries naming these layers), ``common_modules.module_db`` (every
sample input of these layers, in training and, where they differ, eval mode,
plus the error inputs) and ``common_methods_invocations.op_db`` (the sample
inputs of the functional forms; by default an evenly spread subset of at most
``OP_SAMPLES`` per op, every one with ``CONVPROP_TORCH_CONFIGS=all``).  For every
configuration convprop builds the same layer (or calls the same function) with the
same arguments, takes PyTorch's parameters and buffers, and must give the same
outputs, input and parameter gradients and buffers in float64 (to 1e-10), or, for
an error input, refuse it as well.

This file keeps its own small loader (activations and losses have theirs).
Inputs outside convprop's scope (complex numbers) are counted apart, with the
reason; an in-scope configuration convprop cannot run is a failure.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
import unittest
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from oracle import torch  # noqa: E402  (the real module, or a skip on first use)

import convprop as cp
from convprop import nn

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")

TOL = 1e-10
LAYERS = sorted(
    [f"{kind}Pool{d}d" for kind in ("Max", "Avg", "AdaptiveMax", "AdaptiveAvg", "LP") for d in (1, 2, 3)]
    + [f"MaxUnpool{d}d" for d in (1, 2, 3)]
    + [f"{kind}Pad{d}d" for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
       for d in (1, 2, 3)]
    + [f"InstanceNorm{d}d" for d in (1, 2, 3)] + [f"BatchNorm{d}d" for d in (1, 2, 3)]
    + ["GroupNorm", "LayerNorm", "LocalResponseNorm", "Fold", "Unfold", "PixelShuffle",
       "PixelUnshuffle", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"])


# ------------------------------------------------------------------------- loader
@contextlib.contextmanager
def _expecttest_available() -> Iterator[None]:
    """torch's test helpers import ``expecttest`` (a test-only package) at the top; when it
    is not installed, stand in a module with the one name they take from it."""
    if "expecttest" in sys.modules:
        yield
        return
    try:
        import expecttest  # noqa: F401
        yield
        return
    except ImportError:
        shim = types.ModuleType("expecttest")
        shim.TestCase = unittest.TestCase
        sys.modules["expecttest"] = shim
        try:
            yield
        finally:
            if sys.modules.get("expecttest") is shim:
                del sys.modules["expecttest"]


@pytest.fixture(scope="module")
def torch_testing() -> types.SimpleNamespace:
    with _expecttest_available():
        try:
            from torch.testing._internal import common_methods_invocations, common_modules, common_nn
        except Exception as e:  # pragma: no cover - depends on the installed torch
            pytest.skip(f"torch's internal test configurations cannot be imported: {e!r}")
    return types.SimpleNamespace(common_nn=common_nn, common_modules=common_modules,
                                 op_db=common_methods_invocations.op_db)


class Config:
    """One configuration: how to build the torch layer, its arguments, the forward inputs."""

    def __init__(self, source: str, name: str, desc: str, args: tuple, kwargs: dict,
                 inputs: tuple, forward_kwargs: dict, training: bool) -> None:
        self.source, self.name, self.desc = source, name, desc
        self.args, self.kwargs = args, kwargs
        self.inputs, self.forward_kwargs, self.training = inputs, forward_kwargs, training

    def __repr__(self) -> str:
        return (f"{self.source}:{self.name}[{self.desc}] args={self.args} kwargs={self.kwargs} "
                f"{'train' if self.training else 'eval'}")


@contextlib.contextmanager
def _recording(name: str) -> Iterator[list]:
    """Swap ``torch.nn.<name>`` for a subclass that records its constructor arguments, so a
    configuration that builds its layer in a lambda still tells us the arguments."""
    original = getattr(torch.nn, name)
    calls: list = []

    class Recorder(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append((args, kwargs))
            super().__init__(*args, **kwargs)

    setattr(torch.nn, name, Recorder)
    try:
        yield calls
    finally:
        setattr(torch.nn, name, original)


def common_nn_configs(common_nn: Any) -> Iterator[Config]:
    for entry in list(common_nn.module_tests) + list(common_nn.get_new_module_tests()):
        full = entry.get("fullname") or entry.get("module_name", "")
        name = entry.get("module_name") or full.split("_")[0]
        if name not in LAYERS:
            continue
        if "constructor" in entry:
            with _recording(name) as calls:
                entry["constructor"]()
            (args, kwargs), = calls
        else:
            args, kwargs = tuple(entry.get("constructor_args", ())), {}
        torch.manual_seed(0)
        if "input_fn" in entry:
            x = entry["input_fn"]()
        else:
            x = torch.randn(entry["input_size"], dtype=torch.float64)
        yield Config("common_nn", name, entry.get("desc", full), args, kwargs, (x,), {}, True)


def module_db_configs(common_modules: Any) -> Iterator[Config]:
    for info in common_modules.module_db:
        name = info.module_cls.__name__
        if name not in LAYERS:
            continue
        for training in (True, False) if info.train_and_eval_differ else (True,):
            torch.manual_seed(0)
            samples = info.module_inputs_func(info, device="cpu", dtype=torch.float64,
                                              requires_grad=True, training=training)
            for s in samples:
                c, f = s.constructor_input, s.forward_input
                yield Config("module_db", name, s.desc, tuple(c.args), dict(c.kwargs),
                             tuple(f.args), dict(f.kwargs), training)


def module_db_error_configs(common_modules: Any) -> Iterator[tuple[Config, Any]]:
    for info in common_modules.module_db:
        name = info.module_cls.__name__
        if name not in LAYERS or info.module_error_inputs_func is None:
            continue
        errors = info.module_error_inputs_func(info, device="cpu", dtype=torch.float64,
                                               requires_grad=False, training=True)
        for e in errors:
            c, f = e.module_error_input.constructor_input, e.module_error_input.forward_input
            yield Config("module_db", name, e.module_error_input.desc, tuple(c.args),
                         dict(c.kwargs), tuple(f.args), dict(f.kwargs), True), e


# ----------------------------------------------------------------------- checking
def out_of_scope(config: Config) -> str | None:
    """Why a configuration is outside convprop's scope, or None."""
    for x in config.inputs:
        if isinstance(x, torch.Tensor) and x.is_complex():
            return "complex input (convprop's tensors are real)"
    return None


def _to_convprop(value: Any, grad: bool | None = True) -> Any:
    """torch Tensors (also inside tuples and lists) as convprop Tensors: floating ones
    requiring grad (``grad=None``: where the torch tensor does), integer ones as plain data."""
    if isinstance(value, torch.Tensor):
        data = value.detach().numpy().copy()
        if value.dtype.is_floating_point:
            return cp.tensor(data, requires_grad=value.requires_grad if grad is None else grad)
        return cp.Tensor._wrap(data)
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_convprop(v, grad) for v in value)
    return value


def _compare_outputs(cy: list, ty: list) -> tuple:
    """Assert convprop's outputs equal torch's; return both libraries' projections of the
    differentiable ones onto the same random directions (``0, 0`` when there are none)."""
    assert len(cy) == len(ty)
    rng = np.random.default_rng(1)
    tloss, closs = 0, 0
    for c, t in zip(cy, ty):
        assert c.shape == tuple(t.shape), (c.shape, tuple(t.shape))
        if t.dtype.is_floating_point:
            np.testing.assert_allclose(c.data, t.detach().numpy(), rtol=0, atol=TOL)
            if t.requires_grad:
                g = rng.standard_normal(c.shape)
                tloss = tloss + (t * torch.from_numpy(g)).sum()
                closs = closs + (c * cp.Tensor._wrap(g)).sum()
        else:
            np.testing.assert_array_equal(c.data, t.numpy())
    return tloss, closs


def _outputs(y: Any) -> list:
    return list(y) if isinstance(y, (tuple, list)) else [y]


def run_config(config: Config) -> None:
    """Build both layers, share PyTorch's parameters and buffers, compare everything."""
    torch.manual_seed(0)
    tlayer = getattr(torch.nn, config.name)(*config.args, **config.kwargs).double()
    layer = getattr(nn, config.name)(*config.args, **config.kwargs).double()
    with torch.no_grad():  # random parameters: a swapped weight and bias would show
        for p in tlayer.parameters():
            p.copy_(torch.randn_like(p))
    layer.load_state_dict({k: v.detach().numpy().copy() for k, v in tlayer.state_dict().items()})
    tlayer.train(config.training), layer.train(config.training)
    tin = [x.detach().clone().requires_grad_(x.dtype.is_floating_point)
           if isinstance(x, torch.Tensor) else x for x in config.inputs]
    cin = [_to_convprop(x) for x in config.inputs]
    ty = _outputs(tlayer(*tin, **config.forward_kwargs))
    cy = _outputs(layer(*cin, **config.forward_kwargs))
    tloss, closs = _compare_outputs(cy, ty)
    if not isinstance(tloss, int):
        tloss.backward()
        closs.backward()
        for c, t in zip(cin, tin):
            if isinstance(t, torch.Tensor) and t.requires_grad:
                want = np.zeros(c.shape) if t.grad is None else t.grad.numpy()
                got = np.zeros(c.shape) if c.grad is None else c.grad
                np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
        tparams = dict(tlayer.named_parameters())
        for name, p in layer.named_parameters():
            want = tparams[name].grad
            want = np.zeros(p.shape) if want is None else want.numpy()
            np.testing.assert_allclose(np.zeros(p.shape) if p.grad is None else p.grad, want,
                                       rtol=0, atol=TOL, err_msg=name)
    tbuffers = dict(tlayer.named_buffers())
    for name, b in layer.named_buffers():
        np.testing.assert_allclose(b.data, tbuffers[name].numpy(), rtol=0, atol=TOL, err_msg=name)
    assert repr(layer) == repr(tlayer)


def run_all(configs: Iterator[Config], summary: dict) -> list[str]:
    failures = []
    for config in configs:
        row = summary.setdefault(config.name, Counter())
        reason = out_of_scope(config)
        if reason:
            row["out of scope"] += 1
            summary.setdefault("_reasons", Counter())[reason] += 1
            continue
        try:
            run_config(config)
            row["match"] += 1
        except AssertionError as e:
            row["mismatch"] += 1
            failures.append(f"MISMATCH {config!r}: {str(e)[:300]}")
        except Exception as e:
            row["error"] += 1
            failures.append(f"ERROR {config!r}: {type(e).__name__}: {e}")
    return failures


def print_summary(title: str, summary: dict) -> None:
    reasons = summary.pop("_reasons", {})
    print(f"\n{title}")
    print(f"{'layer':28} {'match':>6} {'mismatch':>9} {'error':>6} {'out of scope':>13}")
    for name in sorted(summary):
        row = summary[name]
        print(f"{name:28} {row['match']:6} {row['mismatch']:9} {row['error']:6} "
              f"{row['out of scope']:13}")
    for reason, count in reasons.items():
        print(f"  out of scope: {count} x {reason}")


# -------------------------------------------------------------------------- tests
def test_common_nn_module_tests(torch_testing) -> None:
    summary: dict = {}
    failures = run_all(common_nn_configs(torch_testing.common_nn), summary)
    print_summary("common_nn module_tests + new module tests", summary)
    assert sum(r["match"] for k, r in summary.items() if k != "_reasons") >= 10
    assert not failures, "\n".join(failures)


def test_module_db_samples(torch_testing) -> None:
    summary: dict = {}
    failures = run_all(module_db_configs(torch_testing.common_modules), summary)
    print_summary("common_modules.module_db samples", summary)
    missing = {n for n in LAYERS if n not in summary}
    # the layers module_db has no entries for are covered by the common_nn configurations
    # and by this project's own tests; every other layer must have been exercised
    assert missing <= {"MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "Fold", "Unfold",
                       "PixelShuffle", "PixelUnshuffle", "Upsample", "UpsamplingNearest2d",
                       "UpsamplingBilinear2d"}, missing
    assert not failures, "\n".join(failures)


def test_module_db_error_inputs_are_refused(torch_testing) -> None:
    """Each of PyTorch's error inputs for these layers is refused by convprop too, with a
    ValueError or TypeError (at construction or in forward, where PyTorch refuses it)."""
    checked, failures = 0, []
    for config, expected in module_db_error_configs(torch_testing.common_modules):
        try:
            layer = getattr(nn, config.name)(*config.args, **config.kwargs)
            layer(*[_to_convprop(x) for x in config.inputs], **config.forward_kwargs)
        except (ValueError, TypeError):
            checked += 1
            continue
        failures.append(f"accepted {config!r}; PyTorch raises {expected.error_type.__name__}: "
                        f"{expected.error_regex}")
    print(f"\nmodule_db error inputs refused: {checked}")
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------- functional forms
FUNCTIONS = sorted(
    [f"{kind}_pool{d}d" for kind in ("max", "avg", "adaptive_max", "adaptive_avg", "lp")
     for d in (1, 2, 3)]
    + [f"max_unpool{d}d" for d in (1, 2, 3)]
    + ["unfold", "fold", "pixel_shuffle", "pixel_unshuffle", "interpolate", "upsample",
       "upsample_nearest", "upsample_bilinear", "pad", "group_norm", "layer_norm",
       "instance_norm", "local_response_norm", "batch_norm"])
OP_SAMPLES = 25


def op_db_samples(op_db: Any, every: bool) -> Iterator[tuple[str, str, Any]]:
    """``(function, variant, sample)`` for the functional forms of these layers."""
    for op in op_db:
        if not op.name.startswith("nn.functional.") or op.name[14:] not in FUNCTIONS:
            continue
        torch.manual_seed(0)
        samples = list(op.sample_inputs("cpu", torch.float64, requires_grad=True))
        step = 1 if every else max(1, -(-len(samples) // OP_SAMPLES))
        for sample in samples[::step]:
            yield op.name[14:], op.variant_test_name, sample


def op_out_of_scope(name: str, sample: Any) -> str | None:
    if sample.kwargs.get("mode") == "bicubic" or (name == "interpolate" and "bicubic" in map(
            str, sample.args)):
        return "bicubic resampling"
    if sample.kwargs.get("antialias"):
        return "antialiased resampling"
    values = [sample.input, *sample.args, *sample.kwargs.values()]
    if any(isinstance(v, torch.Tensor) and v.is_complex() for v in values):
        return "complex input (convprop's tensors are real)"
    return None


def describe(sample: Any) -> str:
    """A sample in one line: tensors by shape (and dtype when not float64)."""
    def show(v: Any) -> str:
        if isinstance(v, torch.Tensor):
            kind = "" if v.dtype == torch.float64 else f" {v.dtype}"
            return f"T{tuple(v.shape)}{kind}"
        if isinstance(v, (tuple, list)):
            return "(" + ", ".join(show(u) for u in v) + ")"
        return repr(v)
    args = ", ".join(show(v) for v in [sample.input, *sample.args])
    kwargs = ", ".join(f"{k}={show(v)}" for k, v in sample.kwargs.items())
    return f"({args}{', ' if kwargs else ''}{kwargs})"


def run_sample(name: str, sample: Any) -> None:
    """The functional op on the same inputs: outputs, gradients of every input that
    requires grad, and every tensor argument the op updates in place (running statistics)."""
    fn, tfn = getattr(cp.functional, name), getattr(torch.nn.functional, name)
    targs = [sample.input, *sample.args]
    tkwargs = dict(sample.kwargs)
    leaves = [v for v in [*targs, *tkwargs.values()] if isinstance(v, torch.Tensor)]
    tclone = {id(v): v.detach().clone().requires_grad_(v.requires_grad) for v in leaves}
    targs = [tclone.get(id(v), v) for v in targs]
    tkwargs = {k: tclone.get(id(v), v) for k, v in tkwargs.items()}
    cargs = [_to_convprop(v, None) for v in targs]
    ckwargs = {k: _to_convprop(v, None) for k, v in tkwargs.items()}
    ty = _outputs(tfn(*targs, **tkwargs))
    cy = _outputs(fn(*cargs, **ckwargs))
    tloss, closs = _compare_outputs(cy, ty)
    if not isinstance(tloss, int) and closs.requires_grad:
        tloss.backward()
        closs.backward()
    pairs = list(zip(cargs, targs)) + [(ckwargs[k], tkwargs[k]) for k in tkwargs]
    for c, t in pairs:
        if isinstance(t, torch.Tensor) and t.dtype.is_floating_point:
            np.testing.assert_allclose(c.data, t.detach().numpy(), rtol=0, atol=TOL)  # in place
            if t.requires_grad:
                want = np.zeros(c.shape) if t.grad is None else t.grad.numpy()
                got = np.zeros(c.shape) if c.grad is None else c.grad
                np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


@pytest.mark.filterwarnings("ignore:`nn.functional.upsample")
def test_op_db_samples(torch_testing) -> None:
    every = os.environ.get("CONVPROP_TORCH_CONFIGS") == "all"
    summary: dict = {}
    failures = []
    for name, variant, sample in op_db_samples(torch_testing.op_db, every):
        key = f"{name}" + (f" ({variant})" if variant else "")
        row = summary.setdefault(key, Counter())
        reason = op_out_of_scope(name, sample)
        if reason:
            row["out of scope"] += 1
            summary.setdefault("_reasons", Counter())[reason] += 1
            continue
        try:
            run_sample(name, sample)
            row["match"] += 1
        except AssertionError as e:
            row["mismatch"] += 1
            failures.append(f"MISMATCH {key}{describe(sample)}: {str(e)[:300]}")
        except Exception as e:
            row["error"] += 1
            failures.append(f"ERROR {key}{describe(sample)}: {type(e).__name__}: {e}")
    print_summary(f"common_methods_invocations.op_db samples ({'all' if every else 'subset'})",
                  summary)
    assert sum(r["match"] for k, r in summary.items() if k != "_reasons") >= 100
    assert not failures, "\n".join(failures[:30])


def test_op_db_error_inputs_are_refused(torch_testing) -> None:
    """Each of PyTorch's error inputs for the functional forms is refused by convprop too,
    with a ValueError or TypeError, except the ones named below (where convprop gives the
    input a meaning)."""
    checked, failures = 0, []
    for op in torch_testing.op_db:
        name = op.name[14:] if op.name.startswith("nn.functional.") else ""
        if name not in FUNCTIONS or op.error_inputs_func is None:
            continue
        for error in op.error_inputs("cpu"):
            sample = error.sample_input
            if op_out_of_scope(name, sample):
                continue
            args = [_to_convprop(v, None) for v in [sample.input, *sample.args]]
            kwargs = {k: _to_convprop(v, None) for k, v in sample.kwargs.items()}
            try:
                getattr(cp.functional, name)(*args, **kwargs)
            except (ValueError, TypeError):
                checked += 1
                continue
            failures.append(f"accepted {name}{describe(sample)}; PyTorch raises "
                            f"{error.error_type.__name__}: {error.error_regex}")
    print(f"\nop_db error inputs refused: {checked}")
    assert not failures, "\n".join(failures)

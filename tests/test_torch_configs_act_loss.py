"""PyTorch's own test configurations for every activation and loss, run against convprop.

For each configuration that torch's test suite keeps (``module_db`` samples,
``common_nn`` module and criterion tests, ``common_nn``'s functional entries, and
``op_db``'s samples of the functional forms; see ``tests/torch_configs.py``) the same
module or function is built in torch and in convprop from the same arguments, fed the
same float64 inputs, and compared: the output, the gradient of every input torch
differentiates, and every parameter's gradient, to 1e-10.  A configuration convprop
cannot run counts as unsupported; the tests require none.

``python tests/test_torch_configs_act_loss.py`` prints the summary table.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from oracle import require_torch

import convprop as cp
import convprop.functional as F
from convprop import nn

torch = require_torch()  # the whole module compares against torch
sys.path.insert(0, str(Path(__file__).parent))
import torch_configs as tc  # noqa: E402  (it needs torch)

TOL = 1e-10

ACTIVATIONS = ["CELU", "ELU", "GELU", "GLU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh",
               "LeakyReLU", "LogSigmoid", "LogSoftmax", "Mish", "PReLU", "ReLU", "ReLU6", "RReLU",
               "SELU", "Sigmoid", "SiLU", "Softmax", "Softmax2d", "Softmin", "Softplus",
               "Softshrink", "Softsign", "Tanh", "Tanhshrink", "Threshold"]
LOSSES = ["BCELoss", "BCEWithLogitsLoss", "CosineEmbeddingLoss", "CrossEntropyLoss",
          "GaussianNLLLoss", "HingeEmbeddingLoss", "HuberLoss", "KLDivLoss", "L1Loss",
          "MSELoss", "MarginRankingLoss", "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss",
          "MultiMarginLoss", "NLLLoss", "PoissonNLLLoss", "SmoothL1Loss", "SoftMarginLoss",
          "TripletMarginLoss"]
FUNCTIONALS = frozenset(
    ["celu", "elu", "gelu", "glu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh",
     "leaky_relu", "logsigmoid", "log_softmax", "mish", "prelu", "relu", "relu6", "rrelu",
     "selu", "sigmoid", "silu", "softmax", "softmin", "softplus", "softshrink", "softsign",
     "tanh", "tanhshrink", "threshold",
     "binary_cross_entropy", "binary_cross_entropy_with_logits", "cosine_embedding_loss",
     "cross_entropy", "gaussian_nll_loss", "hinge_embedding_loss", "huber_loss", "kl_div",
     "l1_loss", "margin_ranking_loss", "mse_loss", "multi_margin_loss",
     "multilabel_margin_loss", "multilabel_soft_margin_loss", "nll_loss", "poisson_nll_loss",
     "smooth_l1_loss", "soft_margin_loss", "triplet_margin_loss"])



def _compare(yc, yt, cin, tin, cparams=(), tparams=()) -> None:
    assert yc.shape == tuple(yt.shape), f"shape {yc.shape} vs torch {tuple(yt.shape)}"
    np.testing.assert_allclose(yc.data, yt.detach().numpy(), rtol=1e-13, atol=TOL)
    if not yt.requires_grad:
        return
    g = np.random.default_rng(1).standard_normal(yt.shape)
    yt.backward(torch.from_numpy(g))
    yc.backward(g)
    for i, (c, t) in enumerate(zip(cin, tin)):
        if isinstance(t, torch.Tensor) and t.requires_grad and t.grad is not None:
            assert c.grad is not None, f"input {i} has no gradient"
            np.testing.assert_allclose(c.grad, t.grad.numpy(), rtol=1e-13, atol=TOL,
                                       err_msg=f"input {i}")
    for name, p in cparams:
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=1e-13, atol=TOL,
                                   err_msg=name)


def _run_module(cfg: tc.Config) -> str:
    """``'match'`` or ``'random'`` (RReLU in training: checked by its bounds); raises
    ``AssertionError`` on a mismatch and anything else when convprop cannot run it."""
    torch.default_generator.manual_seed(0)
    tmod = getattr(torch.nn, cfg.module)(*cfg.args, **cfg.kwargs).double().train(cfg.training)
    cmod = getattr(nn, cfg.module)(*tc.to_numpy(cfg.args), **tc.to_numpy(cfg.kwargs))
    cmod.double().train(cfg.training)
    cmod.load_state_dict(tmod.state_dict())
    tin, cin = tc.paired_inputs(cfg.inputs)
    kw_t, kw_c = cfg.forward_kwargs, tc.to_numpy(cfg.forward_kwargs)
    yc = cmod(*cin, **kw_c)
    if cfg.module == "RReLU" and cfg.training:
        return _check_random_slopes(cin[0], yc, cmod.lower, cmod.upper)
    yt = tmod(*tin, **kw_t)
    _compare(yc, yt, cin, tin, list(cmod.named_parameters()), dict(tmod.named_parameters()))
    return "match"


def _check_random_slopes(x: cp.Tensor, y: cp.Tensor, lower: float, upper: float) -> str:
    """RReLU in training (torch's draws differ): kept where ``x > 0``, else a slope in
    ``[lower, upper]`` that the gradient repeats."""
    a, neg = x.data, x.data <= 0
    assert np.array_equal(y.data[~neg], a[~neg])
    assert np.all((y.data[neg] <= lower * a[neg] + 1e-15) & (y.data[neg] >= upper * a[neg] - 1e-15))
    y.backward(np.ones(y.shape))
    assert np.all(x.grad[~neg] == 1) and np.all((x.grad[neg] >= lower) & (x.grad[neg] <= upper))
    return "random"


def _run_functional(cfg: tc.Config) -> str:
    tin, cin = tc.paired_inputs(cfg.inputs)
    it_t, it_c = iter(tin), iter(cin)
    targs = [next(it_t) if a is tc.INPUT else a for a in cfg.args]
    cargs = [next(it_c) if a is tc.INPUT else tc.to_numpy(a) for a in cfg.args]
    tkw = {k: next(it_t) if v is tc.INPUT else v for k, v in cfg.kwargs.items()}
    ckw = {k: next(it_c) if v is tc.INPUT else tc.to_numpy(v) for k, v in cfg.kwargs.items()}
    fn = getattr(F, cfg.functional)
    yc = fn(*cargs, **ckw)
    if cfg.functional == "rrelu":
        bound = inspect.signature(fn).bind(*cargs, **ckw)
        bound.apply_defaults()
        if bound.arguments["training"]:
            a = bound.arguments
            return _check_random_slopes(a["input"], yc, a["lower"], a["upper"])
    yt = getattr(torch.nn.functional, cfg.functional)(*targs, **tkw)
    _compare(yc, yt, cin, tin)
    return "match"


def out_of_scope(cfg: tc.Config) -> str:
    """Why convprop does not take this configuration at all ('' if it should)."""
    values = list(cfg.inputs) + [a for a in cfg.args if isinstance(a, torch.Tensor)]
    if any(isinstance(v, torch.Tensor) and v.is_complex() for v in values):
        return "complex input: convprop tensors are real (float32/float64)"
    return ""


def run(cfg: tc.Config) -> tuple[str, str]:
    """``(outcome, detail)``: outcome is match, random, mismatch, unsupported or
    out of scope."""
    if out_of_scope(cfg):
        return "out of scope", out_of_scope(cfg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = _run_functional(cfg) if cfg.functional else _run_module(cfg)
        return out, ""
    except AssertionError as e:
        return "mismatch", str(e).strip().splitlines()[0] if str(e).strip() else "assertion"
    except Exception as e:  # convprop (or torch) could not run it
        return "unsupported", f"{type(e).__name__}: {e}"



def results(module: str) -> list[tuple[tc.Config, str, str]]:
    with tc.one_thread():
        return [(c, *run(c)) for c in tc.configs(module)]


def _functional_results() -> list[tuple[tc.Config, str, str]]:
    with tc.one_thread():
        return [(c, *run(c)) for c in tc.functional_configs(FUNCTIONALS)]


def _op_results(function: str) -> list[tuple[tc.Config, str, str]]:
    with tc.one_thread():
        return [(c, *run(c)) for c in tc.op_configs(function)]


def _failures(rows, outcomes=("mismatch", "unsupported")) -> list[str]:
    return [f"{c.source}:{c.name} [{c.functional or c.module}] {out}: {detail}"
            for c, out, detail in rows if out in outcomes]


@pytest.mark.parametrize("module", ACTIVATIONS + LOSSES)
def test_torch_configs_of_module_match(module: str) -> None:
    rows = results(module)
    assert rows, f"torch's test suite has no configuration for {module}"
    assert not _failures(rows), "\n".join(_failures(rows))


def test_torch_functional_configs_match() -> None:
    rows = _functional_results()
    assert len(rows) >= 40
    assert {c.functional for c, _, _ in rows} >= {"softmax", "log_softmax", "nll_loss",
                                                  "smooth_l1_loss", "multi_margin_loss"}
    assert not _failures(rows), "\n".join(_failures(rows))
    # the only configuration set aside: torch's complex-valued L1 loss
    assert [c.name for c, out, _ in rows if out == "out of scope"] == ["L1Loss_no_reduce_complex"]


@pytest.mark.parametrize("function", sorted(FUNCTIONALS))
def test_torch_op_db_samples_match(function: str) -> None:
    rows = _op_results(function)
    if not rows:
        pytest.skip(f"op_db has no OpInfo for torch.nn.functional.{function}")
    assert not _failures(rows), "\n".join(_failures(rows))


def summary() -> str:
    """The table: configurations per module (and functional), by outcome."""
    lines = [f"{'module / function':48} {'configs':>7} {'match':>6} {'random':>6} "
             f"{'mismatch':>8} {'unsupported':>11} {'out of scope':>12}"]
    total: Counter = Counter()
    groups = [(m, results(m)) for m in ACTIVATIONS + LOSSES]
    by_fn: dict[str, list] = {}
    for row in _functional_results():
        by_fn.setdefault(f"F.{row[0].functional} (common_nn)", []).append(row)
    for f in sorted(FUNCTIONALS):
        rows = _op_results(f)
        if rows:
            by_fn[f"F.{f} (op_db)"] = rows
    for name, rows in groups + sorted(by_fn.items()):
        n = Counter(out for _, out, _ in rows)
        total.update(n)
        total["configs"] += len(rows)
        lines.append(f"{name:48} {len(rows):7} {n['match']:6} {n['random']:6} "
                     f"{n['mismatch']:8} {n['unsupported']:11} {n['out of scope']:12}")
        lines += [f"    {f}" for f in _failures(rows, ("mismatch", "unsupported",
                                                       "out of scope"))]
    lines.append(f"{'total':48} {total['configs']:7} {total['match']:6} {total['random']:6} "
                 f"{total['mismatch']:8} {total['unsupported']:11} {total['out of scope']:12}")
    lines.append("random: RReLU in training draws its own slopes; checked against its bounds")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary())

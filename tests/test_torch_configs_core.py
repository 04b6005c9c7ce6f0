"""PyTorch's own test configurations for convolution, linear, shape, batch-norm, dropout
and container modules, and op_db's samples of the functional ops, run against convprop.

For each configuration torch's test suite keeps (``module_db`` samples and
``common_nn`` module tests for the modules; ``op_db`` samples and ``common_nn``'s
functional entries for the functional ops; see ``tests/torch_configs.py``) the same
module or call is made in torch and in convprop from the same arguments; the convprop
module takes torch's parameters and buffers (``load_state_dict(torch.state_dict())``);
both run in float64 and must agree to 1e-10 in every output (indices exactly), every
input gradient torch computes, every parameter gradient and every buffer after the
forward (running statistics).

Torch keeps no configuration for a few modules in scope (``Identity``, the dropout
family, the containers), and its configurations miss some arguments the issue names
(transposed convolution's ``output_size``, a 3-D reflect-padded convolution, ...):
those come from :func:`_own_configs`, built the same way and checked the same way.

Dropout in training draws its own numbers (convprop's generator is not torch's): such
a sample is checked for its structure instead (each element, or each channel, is
dropped or kept; kept ones are scaled, and the gradient repeats the mask), and
:func:`test_dropout.test_dropout_statistics` checks the drop rate and alpha dropout's preserved
mean and variance on large inputs, the same check passing on torch's output.

Set aside, each with its reason: complex inputs, ``interpolate(mode='bicubic')``
(outside the issue's list of modes); ``module_db``'s ``LazyConv*`` modules (shapes
inferred at the first call) are not asked for by the issue and not read.  Any other
configuration convprop cannot run fails the test.  The pooling, padding, resampling
and normalisation layers (batch norm included) and their functional forms have theirs
in ``test_layer_configs.py``; activations and losses in ``test_torch_configs_act_loss.py``;
the Tensor methods' op_db samples are in ``test_tensor_api.py``.

``python tests/test_torch_configs_core.py`` prints the summary table.
"""

from __future__ import annotations

import inspect
import sys
import time
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from oracle import require_torch  # noqa: E402

torch = require_torch()  # the whole module compares against torch
import torch_configs as tc  # noqa: E402  (it needs torch)
from test_dropout import check_dropout  # noqa: E402

import convprop as cp  # noqa: E402
import convprop.functional as F  # noqa: E402
from convprop import nn  # noqa: E402

TOL = 1e-10

MODULES = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
           "Linear", "Flatten", "Unflatten"]
FUNCTIONS = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
             "conv_transpose3d", "linear", "dropout", "dropout2d", "dropout3d", "alpha_dropout",
             "feature_alpha_dropout"]
# tests/test_layer_configs.py runs torch's configurations of the pooling, padding,
# resampling and normalisation layers and of their functional forms (BatchNorm and
# F.batch_norm among them); here only our own configurations of batch norm
# (momentum=None without running statistics, eval after moved statistics), and
# common_nn's functional interpolate entries, which that file does not read
COMMON_NN_FUNCTIONS = frozenset(FUNCTIONS + ["interpolate"])
DROPOUTS = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
            "feature_alpha_dropout"}

# --------------------------------------------------------------- own configurations
def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def _own(module: str, name: str, args: tuple, inputs: tuple, kwargs: dict | None = None,
         forward_kwargs: dict | None = None, training: bool = True) -> tc.Config:
    return tc.Config("convprop", name, module, args, kwargs or {}, inputs, forward_kwargs or {},
                     training=training)


def _own_configs() -> list[tc.Config]:
    """Configurations torch's suite lacks for arguments the issue names."""
    torch.manual_seed(0)
    out = [
        _own("Identity", "args_ignored", (3, "x"), (_x(2, 3),), {"k": 1}),
        _own("Flatten", "start_end", (0, 2), (_x(2, 3, 4, 5),)),
        _own("Unflatten", "minus_one", (1, (2, -1)), (_x(3, 8, 2),)),
        _own("Unflatten", "last", (-1, [2, 2]), (_x(3, 4),)),
        _own("Conv3d", "reflect_dilated", (2, 3, 3), (_x(2, 2, 6, 6, 6),),
             {"padding": 2, "dilation": 2, "padding_mode": "reflect"}),
        _own("Conv2d", "same_even_kernel_reflect", (2, 4, (2, 4)), (_x(2, 2, 5, 7),),
             {"padding": "same", "padding_mode": "reflect", "dilation": (2, 1)}),
        _own("Conv2d", "asymmetric_circular_groups", (4, 6, 3), (_x(1, 4, 5, 6),),
             {"padding": (1, 2), "padding_mode": "circular", "groups": 2, "stride": (2, 1)}),
        _own("Conv1d", "valid_groups_no_bias", (6, 3, 2), (_x(2, 6, 7),),
             {"padding": "valid", "groups": 3, "bias": False}),
        _own("Conv1d", "same_circular_dilated", (2, 2, 4), (_x(2, 2, 9),),
             {"padding": "same", "padding_mode": "circular", "dilation": 2}),
        _own("Conv3d", "same_replicate_groups", (4, 2, (1, 2, 3)), (_x(1, 4, 3, 4, 5),),
             {"padding": "same", "padding_mode": "replicate", "groups": 2}),
        _own("Conv3d", "circular_strided_no_bias", (2, 2, 2), (_x(1, 2, 4, 3, 5),),
             {"padding": (1, 0, 2), "padding_mode": "circular", "stride": (2, 1, 3),
              "bias": False}),
    ]
    for nd in (1, 2, 3):
        size = (2, 4) + (4, 5, 3)[:nd]
        out += [
            _own(f"ConvTranspose{nd}d", "output_padding_groups_dilation", (4, 6, 3),
                 (_x(*size),), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2,
                                "dilation": 2, "bias": False}),
            _own(f"ConvTranspose{nd}d", "output_size", (4, 2, 3), (_x(*size),),
                 {"stride": 3, "padding": 1},
                 {"output_size": [3 * s - 2 + 2 for s in size[2:]]}),
        ]
        out += [_own(f"BatchNorm{nd}d", f"{mode}_momentum_none_no_stats", (4,),
                     (_x(3, 4, *size[2:]),),
                     {"momentum": None, "track_running_stats": False, "affine": False},
                     training=mode == "train")
                for mode in ("train", "eval")]
        out.append(_own(f"BatchNorm{nd}d", "eval_after_train_steps", (4,), (_x(3, 4, *size[2:]),),
                        {"momentum": None}, training=False))
    for mod, shape in [("Dropout", (3, 4)), ("Dropout1d", (2, 3, 4)), ("Dropout1d", (3, 4)),
                       ("Dropout2d", (2, 3, 4, 4)), ("Dropout3d", (2, 3, 2, 3, 2)),
                       ("Dropout3d", (3, 2, 3, 2)), ("AlphaDropout", (3, 4)),
                       ("FeatureAlphaDropout", (2, 3, 4, 4))]:
        out += [_own(mod, "eval", (0.5,), (_x(*shape),), training=False),
                _own(mod, "p0_train", (0.0,), (_x(*shape),)),
                _own(mod, "p1_train", (1.0,), (_x(*shape),)),
                _own(mod, "train", (0.4,), (_x(*shape),))]
    return out


def _containers() -> list[tuple[str, Callable[[object], object]]]:
    """(name, build(nn)) for models that exercise the containers; both libraries."""
    def seq(m):
        return m.Sequential(m.Conv2d(2, 4, 3, padding=1), m.BatchNorm2d(4), m.ReLU(),
                            m.Dropout(0.3), m.Flatten(), m.Linear(4 * 5 * 5, 3),
                            m.Unflatten(1, (3, 1)))

    def seq_dict(m):
        return m.Sequential(OrderedDict([("conv", m.ConvTranspose2d(2, 3, 2, stride=2)),
                                         ("act", m.Tanh()), ("id", m.Identity())]))

    def lst(m):
        class Net(m.Module):
            def __init__(self):
                super().__init__()
                self.layers = m.ModuleList([m.Conv1d(2, 2, 3, padding=1) for _ in range(3)])

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x).tanh()
                return x.reshape(x.shape[0], 2, 5, 5)
        return Net()

    def dct(m):
        class Net(m.Module):
            def __init__(self):
                super().__init__()
                self.parts = m.ModuleDict({"conv": m.Conv2d(2, 2, 1),
                                           "norm": m.BatchNorm2d(2, momentum=None)})
                self.parts.update([("act", m.Softplus())])

            def forward(self, x):
                for key in ("conv", "norm", "act"):
                    x = self.parts[key](x)
                return x
        return Net()

    return [("Sequential", seq), ("Sequential", seq_dict), ("ModuleList", lst),
            ("ModuleDict", dct)]


# ------------------------------------------------------------------------ running

def _outputs(y) -> list:
    return list(y) if isinstance(y, (tuple, list)) else [y]


def _compare(ycs: list, yts: list, cin: list, tin: list, cmod=None, tmod=None) -> None:
    """Outputs, then (with one random cotangent per float output) input and parameter
    gradients, then buffers."""
    assert len(ycs) == len(yts), f"{len(ycs)} outputs, torch {len(yts)}"
    for i, (c, t) in enumerate(zip(ycs, yts)):
        assert c.shape == tuple(t.shape), f"output {i}: shape {c.shape} vs torch {tuple(t.shape)}"
        if t.is_floating_point():
            np.testing.assert_allclose(c.data, t.detach().numpy(), rtol=1e-13, atol=TOL,
                                       err_msg=f"output {i}")
        else:
            assert np.array_equal(np.asarray(c.data), t.numpy()), f"output {i} (indices) differ"
    if cmod is not None:
        tb = dict(tmod.named_buffers())
        for name, b in cmod.named_buffers():
            np.testing.assert_allclose(b.data, tb[name].numpy(), rtol=1e-13, atol=TOL,
                                       err_msg=f"buffer {name}")
    diff = [(c, t) for c, t in zip(ycs, yts) if t.requires_grad]
    if not diff:
        return
    rng = np.random.default_rng(1)
    gs = [rng.standard_normal(t.shape) for _, t in diff]
    torch.autograd.backward([t for _, t in diff], [torch.from_numpy(g) for g in gs])
    loss = sum(((c * cp.Tensor(g)).sum() for (c, _), g in zip(diff, gs)), cp.Tensor(0.0))
    loss.backward()
    for i, (c, t) in enumerate(zip(cin, tin)):
        if isinstance(t, torch.Tensor) and t.requires_grad and t.grad is not None:
            assert c.grad is not None, f"input {i} has no gradient"
            np.testing.assert_allclose(c.grad, t.grad.numpy(), rtol=1e-13, atol=TOL,
                                       err_msg=f"input {i}")
    if cmod is not None:
        tp = dict(tmod.named_parameters())
        for name, p in cmod.named_parameters():
            if tp[name].grad is None:
                assert p.grad is None or not np.any(p.grad), f"{name}: gradient torch has not"
                continue
            np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), rtol=1e-13, atol=TOL,
                                       err_msg=f"parameter {name}")


_DROPOUT_MODULES = {"Dropout": "dropout", "Dropout1d": "dropout1d", "Dropout2d": "dropout2d",
                    "Dropout3d": "dropout3d", "AlphaDropout": "alpha_dropout",
                    "FeatureAlphaDropout": "feature_alpha_dropout"}


def _module_pair(cfg: tc.Config):
    torch.manual_seed(0)
    tmod = getattr(torch.nn, cfg.module)(*cfg.args, **cfg.kwargs).double().train(cfg.training)
    cmod = getattr(nn, cfg.module)(*tc.to_numpy(cfg.args), **tc.to_numpy(cfg.kwargs))
    cmod.double().train(cfg.training)
    cmod.load_state_dict(tmod.state_dict())
    return tmod, cmod


def _run_module(cfg: tc.Config) -> str:
    """``'match'`` or ``'random'``; raises ``AssertionError`` on a mismatch and anything
    else when convprop cannot run it."""
    tmod, cmod = _module_pair(cfg)
    if cfg.name == "eval_after_train_steps":  # running statistics that moved, then eval
        tmod.train(), cmod.train()
        for _ in range(3):
            x = torch.randn(cfg.inputs[0].shape, dtype=torch.float64)
            tmod(x), cmod(cp.Tensor(x.numpy()))
        tmod.eval(), cmod.eval()
    tin, cin = tc.paired_inputs(cfg.inputs)
    yc = cmod(*cin, **tc.to_numpy(cfg.forward_kwargs))
    fn = _DROPOUT_MODULES.get(cfg.module)
    if fn and cfg.training and 0 < cmod.p < 1:
        yc.backward(np.ones(yc.shape))
        check_dropout(fn, cin[0].data, yc.data, cin[0].grad, cmod.p)
        return "random"
    yt = tmod(*tin, **cfg.forward_kwargs)
    _compare(_outputs(yc), _outputs(yt), cin, tin, cmod, tmod)
    return "match"


def _run_functional(cfg: tc.Config) -> str:
    tin, cin = tc.paired_inputs(cfg.inputs)
    it_t, it_c = iter(tin), iter(cin)
    targs = [next(it_t) if a is tc.INPUT else a for a in cfg.args]
    cargs = [next(it_c) if a is tc.INPUT else tc.to_numpy(a) for a in cfg.args]
    tkw = {k: next(it_t) if v is tc.INPUT else v for k, v in cfg.kwargs.items()}
    ckw = {k: next(it_c) if v is tc.INPUT else tc.to_numpy(v) for k, v in cfg.kwargs.items()}
    yc = getattr(F, cfg.functional)(*cargs, **ckw)
    if cfg.functional in DROPOUTS:
        p, training = _dropout_args(cfg)
        if training and 0 < p < 1:
            yc.backward(np.ones(yc.shape))
            check_dropout(cfg.functional, cin[0].data, yc.data, cin[0].grad, p)
            return "random"
    yt = getattr(torch.nn.functional, cfg.functional)(*targs, **tkw)
    _compare(_outputs(yc), _outputs(yt), cin, tin)
    return "match"


def _dropout_args(cfg: tc.Config) -> tuple[float, bool]:
    bound = inspect.signature(getattr(torch.nn.functional, cfg.functional)).bind(
        *cfg.args, **cfg.kwargs)
    bound.apply_defaults()
    return float(bound.arguments["p"]), bool(bound.arguments["training"])


def out_of_scope(cfg: tc.Config) -> str:
    """Why convprop does not take this configuration at all ('' if it should)."""
    values = list(cfg.inputs) + [a for a in cfg.args if isinstance(a, torch.Tensor)]
    if any(isinstance(v, torch.Tensor) and v.is_complex() for v in values):
        return "complex input: convprop tensors are real (float32/float64)"
    if cfg.functional == "interpolate" and cfg.kwargs.get("mode") == "bicubic":
        return "interpolate mode='bicubic': not in the issue's modes (nearest, linear, " \
               "bilinear, trilinear)"
    return ""


def run(cfg: tc.Config) -> tuple[str, str]:
    """``(outcome, detail)``: match, random, mismatch, unsupported or out of scope."""
    if out_of_scope(cfg):
        return "out of scope", out_of_scope(cfg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return (_run_functional(cfg) if cfg.functional else _run_module(cfg)), ""
    except AssertionError as e:
        return "mismatch", str(e).strip().splitlines()[0] if str(e).strip() else "assertion"
    except Exception as e:  # convprop (or torch) could not run it
        return "unsupported", f"{type(e).__name__}: {e}"


def _run_container(build: Callable) -> tuple[str, str]:
    """Build the same model in both libraries; state-dict keys, outputs, gradients and
    buffers must agree (training mode, then eval)."""
    try:
        torch.manual_seed(0)
        tmod, cmod = build(torch.nn).double(), build(nn).double()
        assert list(cmod.state_dict()) == list(tmod.state_dict()), "state_dict keys differ"
        cmod.load_state_dict(tmod.state_dict())
        for training in (True, False):
            tmod.train(training), cmod.train(training)
            for m in cmod.modules():  # dropout draws its own numbers: compare with it off
                if isinstance(m, nn.Dropout):
                    m.eval()
            for m in tmod.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.eval()
            tin, cin = tc.paired_inputs((_x(2, 2, 25) if build.__name__ == "lst" else _x(2, 2, 5, 5),))
            tmod.zero_grad(), cmod.zero_grad()
            _compare(_outputs(cmod(*cin)), _outputs(tmod(*tin)), cin, tin, cmod, tmod)
        return "match", ""
    except AssertionError as e:
        return "mismatch", str(e).strip().splitlines()[0]
    except Exception as e:
        return "unsupported", f"{type(e).__name__}: {e}"



def module_results(module: str) -> list[tuple[tc.Config, str, str]]:
    with tc.one_thread():
        theirs = list(tc.configs(module)) if module in MODULES else []
        cfgs = theirs + [c for c in _OWN if c.module == module]
        return [(c, *run(c)) for c in cfgs]


def op_results(function: str) -> list[tuple[tc.Config, str, str]]:
    """op_db's samples of ``function``, run."""
    with tc.one_thread():
        return [(c, *run(c)) for c in tc.op_configs(function)]


def functional_results() -> list[tuple[tc.Config, str, str]]:
    """common_nn's entries that wrap one call of a function in :data:`COMMON_NN_FUNCTIONS`."""
    with tc.one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # building the other entries (legacy size_average)
        return [(c, *run(c)) for c in tc.functional_configs(COMMON_NN_FUNCTIONS)]


def _failures(rows, outcomes=("mismatch", "unsupported")) -> dict[str, str]:
    return {c.name: f"{c.source}:{c.name} [{c.functional or c.module}] {out}: {detail}"
            for c, out, detail in rows if out in outcomes}


def _check(rows) -> None:
    failing = _failures(rows)
    assert not failing, "\n".join(failing.values())


_OWN = _own_configs()
OWN_MODULES = sorted({c.module for c in _OWN} - set(MODULES))
SEEN: dict[str, list] = {}  # table row name -> its results, as the tests run


def _container_rows(name: str, build: Callable) -> list[tuple[tc.Config, str, str]]:
    with tc.one_thread():
        out, detail = _run_container(build)
    return [(tc.Config("convprop", build.__name__, name), out, detail)]


@pytest.fixture(scope="module", autouse=True)
def _summary_at_the_end(request):
    """Print the table of what ran once the module is done (as test_conv_parity does)."""
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")
    if not SEEN or reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # show the table even under output capture
        reporter.write_line("")
        for line in table(list(SEEN.items())).splitlines():
            reporter.write_line(line)


@pytest.mark.parametrize("module", MODULES + OWN_MODULES)
def test_torch_configs_of_module_match(module: str) -> None:
    rows = SEEN[module] = module_results(module)
    assert rows, f"no configuration for {module}"
    _check(rows)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_torch_op_db_samples_match(function: str) -> None:
    rows = SEEN[f"F.{function} (op_db)"] = op_results(function)
    assert rows, f"op_db has no OpInfo for torch.nn.functional.{function}"
    _check(rows)


def test_torch_functional_configs_match() -> None:
    rows = SEEN["F.interpolate (common_nn)"] = functional_results()
    assert len(rows) >= 30, "common_nn's interpolate entries went missing"
    _check(rows)
    scope = [c.name for c, out, _ in rows if out == "out of scope"]
    assert all("bicubic" in n for n in scope)


@pytest.mark.parametrize("name, build", _containers(), ids=[n for n, _ in _containers()])
def test_containers_match(name: str, build: Callable) -> None:
    rows = SEEN[f"{name} ({build.__name__})"] = _container_rows(name, build)
    assert rows[0][1] == "match", rows[0][2]


def table(groups: list[tuple[str, list]]) -> str:
    """Configurations per module and function, by outcome, with every failure and the
    reasons for what was set aside."""
    lines = [f"{'module / function':34} {'configs':>7} {'match':>6} {'random':>6} "
             f"{'mismatch':>8} {'unsupported':>11} {'out of scope':>12}"]
    total: Counter = Counter()
    for name, rows in groups:
        n = Counter(out for _, out, _ in rows)
        total.update(n)
        total["configs"] += len(rows)
        lines.append(f"{name:34} {len(rows):7} {n['match']:6} {n['random']:6} "
                     f"{n['mismatch']:8} {n['unsupported']:11} {n['out of scope']:12}")
        lines += [f"    {f}" for f in _failures(rows, ("mismatch", "unsupported")).values()]
        scope = Counter(d for _, out, d in rows if out == "out of scope")
        lines += [f"    out of scope ({k}): {v}" for k, v in scope.items()]
    lines.append(f"{'total':34} {total['configs']:7} {total['match']:6} {total['random']:6} "
                 f"{total['mismatch']:8} {total['unsupported']:11} {total['out of scope']:12}")
    lines.append("random: dropout in training draws its own numbers; checked for its structure")
    return "\n".join(lines)


def summary() -> str:
    """The table for every configuration this file runs."""
    groups = [(m, module_results(m)) for m in MODULES + OWN_MODULES]
    groups += [(f"{name} ({build.__name__})", _container_rows(name, build))
               for name, build in _containers()]
    groups.append(("F.interpolate (common_nn)", functional_results()))
    groups += [(f"F.{f} (op_db)", op_results(f)) for f in FUNCTIONS]
    return table(groups)


if __name__ == "__main__":
    start = time.perf_counter()
    print(summary())
    print(f"{time.perf_counter() - start:.1f} s")

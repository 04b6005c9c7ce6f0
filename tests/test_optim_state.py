"""Optimizer and scheduler state dicts: PyTorch's layout, resuming a run, and moving a run
to PyTorch and back mid-way with identical next steps, for every optimizer and scheduler."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from oracle import torch  # noqa: E402  (the real module, or a skip on first use)
from test_optim import GROUPED, SCHEDULERS, mlp, twin_models, two_groups

from convprop import nn, optim


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: torch's thread pool only adds contention on a shared CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

#: torch's implementation switches (devices, compilation): in its param groups, not in ours
TORCH_ONLY_OPTIONS = {"foreach", "capturable", "differentiable", "fused"}

#: (id, class name, defaults, options of the first group): every optimizer, with state
OPTIMIZERS = [
    ("sgd", "SGD", {"lr": 0.1}, {"lr": 0.05}),
    ("sgd-momentum", "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1},
     {"momentum": 0.5, "nesterov": True, "dampening": 0.0, "weight_decay": 1e-2}),
    ("adam-amsgrad", "Adam", {"lr": 1e-2, "amsgrad": True}, {"betas": (0.8, 0.99)}),
    ("adamw", "AdamW", {"lr": 1e-2}, {"weight_decay": 0.3}),
] + [(name, cls, defaults, options) for name, cls, defaults, options in GROUPED]

#: the optimizers that drive each scheduler (test_optim.SCHEDULERS; ReduceLROnPlateau is
#: stepped with the loss)
DRIVERS = [("sgd", "SGD", {"lr": 0.1, "momentum": 0.9}, {"lr": 0.05}),
           ("adam", "Adam", {"lr": 0.02}, {"lr": 0.05})]

K, M = 7, 6  # steps before and after the hand-over


def batches(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((8, 1, 4, 4)), rng.integers(0, 4, 8)) for _ in range(n)]


def build(lib, model, case, sched=None):
    """An optimizer (and scheduler) for ``model`` in ``lib`` ("cp" or "torch")."""
    _, name, defaults, options = case
    module = optim if lib == "cp" else torch.optim
    opt = getattr(module, name)(two_groups(options)(list(model.parameters())), **defaults)
    if sched is None:
        return opt, None
    return opt, sched[1](module.lr_scheduler)(opt)


def train(lib, model, opt, sched, data):
    """Train on ``data``; return each step's flat parameters and learning rates."""
    out = []
    for x, y in data:
        if lib == "cp":
            loss = nn.CrossEntropyLoss()(model(x), y)
            flat = lambda: np.concatenate([p.data.ravel() for p in model.parameters()])  # noqa: E731
        else:
            loss = torch.nn.functional.cross_entropy(model(torch.tensor(x)), torch.tensor(y))
            flat = lambda: np.concatenate([p.detach().numpy().ravel()  # noqa: E731
                                           for p in model.parameters()])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            if type(sched).__name__ == "ReduceLROnPlateau":
                sched.step(loss.item())
            else:
                sched.step()
        out.append((flat(), [g["lr"] for g in opt.param_groups]))
    return out


def assert_same_steps(ours, theirs):
    assert len(ours) == len(theirs) == M
    for (p, lr), (tp, tlr) in zip(ours, theirs):
        np.testing.assert_allclose(p, tp, rtol=0, atol=1e-10)
        np.testing.assert_allclose(lr, tlr, rtol=1e-15, atol=0)


def assert_same_tree(ours, theirs, path="state_dict"):
    """Equal nested structures; arrays compared against torch tensors (dtype and values)."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, np.ndarray), path
        assert ours.dtype == theirs.numpy().dtype and ours.shape == tuple(theirs.shape), path
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-12, err_msg=path)
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys(), (path, ours, theirs)
        for k in theirs:
            assert_same_tree(ours[k], theirs[k], f"{path}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same_tree(a, b, f"{path}[{i}]")
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=1e-12, abs=0), path
    else:
        assert ours == theirs, path


def cases():
    """Every optimizer alone, and every scheduler on each driver."""
    out = [pytest.param(o, None, id=o[0]) for o in OPTIMIZERS]
    out += [pytest.param(d, s, id=f"{s[0]}-{d[0]}") for s in SCHEDULERS for d in DRIVERS]
    return out


@pytest.mark.parametrize("case,sched", cases())
def test_state_dict_layout_matches_torch(case, sched) -> None:
    model, tmodel = twin_models(mlp)
    opt, sch = build("cp", model, case, sched)
    topt, tsch = build("torch", tmodel, case, sched)
    data = batches(K)
    train("cp", model, opt, sch, data)
    train("torch", tmodel, topt, tsch, data)
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert_same_tree(ours["state"], theirs["state"], "state")
    assert len(ours["param_groups"]) == len(theirs["param_groups"])
    for group, tgroup in zip(ours["param_groups"], theirs["param_groups"]):
        assert set(tgroup) - set(group) <= TORCH_ONLY_OPTIONS
        assert_same_tree(group, {k: v for k, v in tgroup.items() if k in group}, "group")
    if sch is not None:
        assert_same_tree(sch.state_dict(), tsch.state_dict(), "scheduler")


@pytest.mark.parametrize("case,sched", cases())
def test_a_run_moves_to_torch_mid_way(case, sched) -> None:
    data = batches(K + M)
    model, _ = twin_models(mlp)
    opt, sch = build("cp", model, case, sched)
    train("cp", model, opt, sch, data[:K])
    # a fresh PyTorch model, optimizer and scheduler take over the state
    _, tmodel = twin_models(mlp)
    topt, tsch = build("torch", tmodel, case, sched)
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    topt.load_state_dict(optim.to_torch(opt.state_dict()))
    if sch is not None:
        tsch.load_state_dict(optim.to_torch(sch.state_dict()))
    ours = train("cp", model, opt, sch, data[K:])
    theirs = train("torch", tmodel, topt, tsch, data[K:])
    assert_same_steps(ours, theirs)


@pytest.mark.parametrize("case,sched", cases())
def test_a_run_moves_from_torch_mid_way(case, sched) -> None:
    data = batches(K + M)
    _, tmodel = twin_models(mlp)
    topt, tsch = build("torch", tmodel, case, sched)
    train("torch", tmodel, topt, tsch, data[:K])
    model, _ = twin_models(mlp)
    opt, sch = build("cp", model, case, sched)
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    opt.load_state_dict(optim.from_torch(topt.state_dict()))
    if sch is not None:
        sch.load_state_dict(optim.from_torch(tsch.state_dict()))
    theirs = train("torch", tmodel, topt, tsch, data[K:])
    ours = train("cp", model, opt, sch, data[K:])
    assert_same_steps(ours, theirs)


@pytest.mark.parametrize("case,sched", [
    pytest.param(OPTIMIZERS[1], None, id="sgd-momentum"),
    pytest.param(GROUPED[4], None, id="nadam"),
    pytest.param(DRIVERS[1], SCHEDULERS[8], id="sequential-adam"),
    pytest.param(DRIVERS[0], SCHEDULERS[-1], id="plateau-sgd"),
    pytest.param(DRIVERS[1], SCHEDULERS[6], id="onecycle-adam"),
])
def test_a_resumed_run_repeats_the_uninterrupted_one_exactly(case, sched) -> None:
    data = batches(K + M)
    model, _ = twin_models(mlp)
    opt, sch = build("cp", model, case, sched)
    train("cp", model, opt, sch, data[:K])
    checkpoint = (model.state_dict(), opt.state_dict(), sch and sch.state_dict())
    straight = train("cp", model, opt, sch, data[K:])
    model2, _ = twin_models(mlp)
    opt2, sch2 = build("cp", model2, case, sched)
    model2.load_state_dict(checkpoint[0])
    opt2.load_state_dict(checkpoint[1])
    if sch2 is not None:
        sch2.load_state_dict(checkpoint[2])
    resumed = train("cp", model2, opt2, sch2, data[K:])
    for (p, lr), (q, lr2) in zip(straight, resumed):
        np.testing.assert_array_equal(p, q)
        assert lr == lr2


def test_state_dict_is_a_snapshot_and_load_copies() -> None:
    w = nn.Parameter(np.ones(3))
    opt = optim.Adam([w], lr=0.1)
    w.grad = np.ones(3)
    opt.step()
    sd = opt.state_dict()
    saved = copy.deepcopy(sd)
    opt.step()
    assert_same_tree(sd, optim.to_torch(saved))  # later steps did not change it
    assert float(sd["state"][0]["step"]) == 1.0 and sd["state"][0]["step"].dtype == np.float32
    opt.load_state_dict(sd)
    opt.step()
    assert float(sd["state"][0]["step"]) == 1.0  # loading did not alias the dict's arrays
    assert sd["param_groups"][0]["params"] == [0]


def test_load_accepts_torch_tensors_directly_and_casts_to_the_parameter_dtype() -> None:
    w = nn.Parameter(np.ones(2, dtype=np.float32))
    tw = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    topt = torch.optim.RMSprop([tw], momentum=0.5)
    tw.grad = torch.ones(2, dtype=torch.float64)
    topt.step()
    opt = optim.RMSprop([w], momentum=0.5)
    opt.load_state_dict(topt.state_dict())
    state = opt.state[w]
    assert state["square_avg"].dtype == np.float32 and state["step"].dtype == np.float32
    assert opt.param_groups[0]["foreach"] is None  # torch's own switches ride along unused
    w.grad = np.ones(2, dtype=np.float32)
    opt.step()
    assert float(state["step"]) == 2.0


def test_adagrad_has_state_for_every_parameter_from_the_start() -> None:
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    opt = optim.Adagrad([a, b], initial_accumulator_value=0.5)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1]
    np.testing.assert_array_equal(sd["state"][1]["sum"], np.full(3, 0.5))
    c = nn.Parameter(np.ones(1))
    opt.add_param_group({"params": [c]})
    c.grad = np.ones(1)
    opt.step()  # a parameter added later gets its state on its first step, as in torch
    assert float(opt.state[c]["step"]) == 1.0


# ------------------------------------------------------------------ errors
def _adam():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.ones(2), np.ones(3)
    opt.step()
    return opt


def _broken(edit):
    sd = _adam().state_dict()
    edit(sd)
    return sd


LOAD_ERRORS = [
    ("not-a-state-dict", lambda sd: sd.pop("state"), ValueError, "'state' and 'param_groups'"),
    ("group-count", lambda sd: sd["param_groups"].pop(), ValueError,
     "1 parameter groups, this optimizer has 2"),
    ("group-size", lambda sd: sd["param_groups"][0]["params"].append(7), ValueError,
     "group 0 has 2 parameters, this optimizer's has 1"),
    ("unknown-id", lambda sd: sd["state"].update({9: {}}), ValueError, "parameter id 9"),
    ("shape", lambda sd: sd["state"][1].update(exp_avg=np.ones(2)), ValueError,
     r"'exp_avg' for parameter id 1 has shape \(2,\), expected the parameter's shape \(3,\)"),
    ("saved-lr", lambda sd: sd["param_groups"][1].update(lr=-1.0), ValueError,
     "Invalid learning rate: -1.0"),
    ("step-shape", lambda sd: sd["state"][0].update(step=np.ones(2)), ValueError,
     "'step' for parameter id 0 has shape \\(2,\\), expected a scalar"),
    ("saved-betas", lambda sd: sd["param_groups"][0].update(betas=(0.9, 1.5)), ValueError,
     "beta parameter at index 1"),
]


@pytest.mark.parametrize("edit,exc,match", [c[1:] for c in LOAD_ERRORS],
                         ids=[c[0] for c in LOAD_ERRORS])
def test_load_state_dict_errors_are_clear_and_change_nothing(edit, exc, match) -> None:
    opt = _adam()
    before = opt.state_dict()
    with pytest.raises(exc, match=match):
        opt.load_state_dict(_broken(edit))
    assert_same_tree(opt.state_dict(), optim.to_torch(before))


def test_scheduler_load_state_dict_errors() -> None:
    opt = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
    sched = optim.StepLR(opt, 2)
    with pytest.raises(TypeError, match="mapping"):
        sched.load_state_dict([1, 2])
    with pytest.raises(ValueError, match="must not contain the optimizer"):
        sched.load_state_dict({"optimizer": opt})
    seq = optim.SequentialLR(opt, [optim.ExponentialLR(opt, 0.9), optim.StepLR(opt, 2)], [3])
    with pytest.raises(ValueError, match="_schedulers"):
        seq.load_state_dict(sched.state_dict())
    bad = seq.state_dict()
    bad["_schedulers"].pop()
    with pytest.raises(ValueError, match="holds 1 schedulers, this SequentialLR has 2"):
        seq.load_state_dict(bad)


def test_named_parameters_give_param_names_as_in_torch() -> None:
    model, tmodel = twin_models(mlp)
    named = list(model.named_parameters())
    tnamed = list(tmodel.named_parameters())
    opt = optim.AdamW([{"params": named[:2], "lr": 0.05}, {"params": named[2:]}], lr=0.01)
    topt = torch.optim.AdamW([{"params": tnamed[:2], "lr": 0.05}, {"params": tnamed[2:]}], lr=0.01)
    assert opt.param_groups[0]["params"][0] is named[0][1]
    data = batches(K + M)
    train("cp", model, opt, None, data[:K])
    train("torch", tmodel, topt, None, data[:K])
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert [g["param_names"] for g in ours["param_groups"]] == [
        g["param_names"] for g in theirs["param_groups"]] == [["1.weight", "1.bias"],
                                                              ["3.weight", "3.bias"]]
    # a torch optimizer built from plain parameters takes the state, names and all
    _, tmodel2 = twin_models(mlp)
    tmodel2.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    params2 = list(tmodel2.parameters())
    topt2 = torch.optim.AdamW([{"params": params2[:2], "lr": 0.05}, {"params": params2[2:]}])
    topt2.load_state_dict(optim.to_torch(ours))
    assert_same_steps(train("cp", model, opt, None, data[K:]),
                      train("torch", tmodel2, topt2, None, data[K:]))


def test_param_names_rules_match_torch() -> None:
    for lib, p, q in [(optim, nn.Parameter(np.ones(1)), nn.Parameter(np.ones(1))),
                      (torch.optim, torch.nn.Parameter(torch.ones(1)),
                       torch.nn.Parameter(torch.ones(1)))]:
        with pytest.raises(ValueError, match="Some param names are missing"):
            lib.SGD([("w", p), q], lr=0.1)
        with pytest.raises(ValueError, match="all optimizer param groups should be with/without names"):
            lib.SGD([{"params": [("w", p)]}, {"params": [q]}], lr=0.1)
        with pytest.raises(TypeError, match="ordered collection"):
            lib.SGD([{"params": {p}}], lr=0.1)


def test_to_torch_and_from_torch_convert_arrays_and_keep_the_structure() -> None:
    from collections import Counter

    sd = {"state": {0: {"step": np.array(3.0, dtype=np.float32), "exp_avg": np.ones((2, 2))}},
          "param_groups": [{"betas": (0.9, 0.99), "params": [0], "foreach": None}],
          "milestones": Counter({3: 2, 7: 1}), "mode": "min", "w": nn.Parameter(np.ones(1))}
    t = optim.to_torch(sd)
    assert t["state"][0]["step"].dtype == torch.float32 and t["state"][0]["step"].shape == ()
    assert t["state"][0]["exp_avg"].dtype == torch.float64
    assert isinstance(t["w"], torch.Tensor)
    assert t["param_groups"][0]["betas"] == (0.9, 0.99) and t["param_groups"][0]["foreach"] is None
    assert isinstance(t["milestones"], Counter) and t["milestones"] == sd["milestones"]
    t["state"][0]["exp_avg"][0, 0] = 5.0  # a copy, not a view of the NumPy array
    assert sd["state"][0]["exp_avg"][0, 0] == 1.0
    back = optim.from_torch(t)
    assert back["state"][0]["step"].dtype == np.float32
    np.testing.assert_array_equal(back["state"][0]["exp_avg"], [[5.0, 1.0], [1.0, 1.0]])
    assert back["mode"] == "min" and isinstance(back["milestones"], Counter)

"""Optimizers and schedulers against PyTorch: same weights, same data, 20+ steps, the
same float64 trajectory (parameters and learning rates) to 1e-8, with param groups of
different hyper-parameters; plus one test per argument error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracle import torch  # noqa: E402  (the real module, or a skip on first use)

import convprop as cp
from convprop import nn, optim


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: torch's thread pool only adds contention on a shared CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_net(lib):
    return lib.Sequential(lib.Conv2d(1, 3, 3, padding=1), lib.Tanh(), lib.MaxPool2d(2),
                          lib.Flatten(), lib.Linear(12, 4))


def mlp(lib):
    """A cheaper model for the schedulers' runs (their rates do not depend on the layers)."""
    return lib.Sequential(lib.Flatten(), lib.Linear(16, 6), lib.Tanh(), lib.Linear(6, 4))


def twin_models(net=small_net):
    """``net`` in convprop and in torch, float64, with the same weights."""
    nn.init.manual_seed(0)
    model = net(nn).double()
    tmodel = net(torch.nn).double()
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return model, tmodel


def two_groups(options):
    """Param groups: the conv layer with its own ``options``, the rest on the defaults."""
    return lambda params: [{"params": params[:2], **options}, {"params": params[2:]}]


def run_both(make_opt, make_topt, steps: int = 20, make_sched=None, make_tsched=None,
             net=small_net):
    """Train the same model in both libraries; return the two weight trajectories."""
    model, tmodel = twin_models(net)
    opt, topt = make_opt(list(model.parameters())), make_topt(list(tmodel.parameters()))
    sched = make_sched(opt) if make_sched else None
    tsched = make_tsched(topt) if make_tsched else None
    rng = np.random.default_rng(1)
    ours, theirs, lrs = [], [], []
    for _ in range(steps):
        x = rng.standard_normal((8, 1, 4, 4))
        y = rng.integers(0, 4, 8)
        loss = nn.CrossEntropyLoss()(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.tensor(x)), torch.tensor(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        if sched and isinstance(sched, optim.ReduceLROnPlateau):
            sched.step(loss.item())
            tsched.step(tloss.item())
        elif sched:
            sched.step()
            tsched.step()
        if sched:
            lrs.append((sched.get_last_lr(), tsched.get_last_lr()))
        ours.append(np.concatenate([p.data.ravel() for p in model.parameters()]))
        theirs.append(np.concatenate([p.detach().numpy().ravel() for p in tmodel.parameters()]))
    return np.array(ours), np.array(theirs), lrs


OPTIMIZERS = [
    ("sgd", lambda p: optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd-momentum", lambda p: optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1,
                                         weight_decay=1e-2),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    ("sgd-nesterov", lambda p: optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True,
                                         weight_decay=1e-3),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    ("sgd-maximize", lambda p: optim.SGD(p, lr=0.01, momentum=0.5, maximize=True),
     lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.5, maximize=True)),
    ("adam", lambda p: optim.Adam(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    ("adam-wd-amsgrad", lambda p: optim.Adam(p, lr=3e-2, betas=(0.8, 0.99), eps=1e-6,
                                             weight_decay=0.1, amsgrad=True),
     lambda p: torch.optim.Adam(p, lr=3e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1,
                                amsgrad=True)),
    ("adamw", lambda p: optim.AdamW(p, lr=1e-2), lambda p: torch.optim.AdamW(p, lr=1e-2)),
    ("adamw-amsgrad", lambda p: optim.AdamW(p, lr=2e-2, weight_decay=0.3, amsgrad=True),
     lambda p: torch.optim.AdamW(p, lr=2e-2, weight_decay=0.3, amsgrad=True)),
]


#: (id, class name, defaults, options of the first param group): the same names in both
#: libraries; every option of every optimizer is exercised in some group
GROUPED = [
    ("adam-decoupled", "Adam", {"lr": 1e-2},
     {"lr": 2e-2, "weight_decay": 0.1, "decoupled_weight_decay": True, "amsgrad": True}),
    ("rmsprop", "RMSprop", {"lr": 1e-2},
     {"lr": 5e-3, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1, "momentum": 0.8,
      "centered": True}),
    ("rmsprop-momentum-maximize", "RMSprop", {"lr": 2e-3, "momentum": 0.5, "maximize": True},
     {"centered": True, "momentum": 0.0, "alpha": 0.5}),
    ("adagrad", "Adagrad", {"lr": 1e-1, "lr_decay": 0.01, "weight_decay": 0.05,
                            "initial_accumulator_value": 0.1, "eps": 1e-8},
     {"lr": 0.05, "maximize": True}),
    ("nadam", "NAdam", {"lr": 1e-2},
     {"lr": 2e-2, "betas": (0.8, 0.99), "weight_decay": 0.1, "momentum_decay": 0.01,
      "decoupled_weight_decay": True}),
    ("nadam-l2", "NAdam", {"lr": 5e-3, "weight_decay": 0.05},
     {"eps": 1e-4, "maximize": True}),
    ("radam", "RAdam", {"lr": 1e-2},  # beta2 = 0.999: the un-rectified steps for t <= 5
     {"lr": 2e-2, "betas": (0.8, 0.9), "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("radam-l2", "RAdam", {"lr": 1e-2, "weight_decay": 0.05}, {"eps": 1e-3, "maximize": True}),
]


def make_grouped(name, defaults, options):
    return (lambda p: getattr(optim, name)(two_groups(options)(p), **defaults),
            lambda p: getattr(torch.optim, name)(two_groups(options)(p), **defaults))


@pytest.mark.parametrize("name,make,tmake", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_trajectories_match_torch(name, make, tmake) -> None:
    ours, theirs, _ = run_both(make, tmake)
    assert np.abs(ours[-1] - ours[0]).max() > 1e-3  # the weights really moved
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


@pytest.mark.parametrize("case", GROUPED, ids=[c[0] for c in GROUPED])
def test_grouped_optimizer_trajectories_match_torch(case) -> None:
    _, name, defaults, options = case
    ours, theirs, _ = run_both(*make_grouped(name, defaults, options), steps=25)
    assert np.abs(ours[-1] - ours[0]).max() > 1e-3
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


def test_param_groups_with_their_own_options_match_torch() -> None:
    def groups(params):
        return [{"params": params[:2], "lr": 0.05}, {"params": params[2:]}]
    ours, theirs, _ = run_both(lambda p: optim.SGD(groups(p), lr=0.1, momentum=0.9),
                               lambda p: torch.optim.SGD(groups(p), lr=0.1, momentum=0.9))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


#: (id, scheduler factory given the module: optim.lr_scheduler or torch.optim.lr_scheduler)
SCHEDULERS = [
    ("step", lambda L: lambda o: L.StepLR(o, step_size=3, gamma=0.5)),
    # T_max shorter than the run, so the schedule also climbs back up
    ("cosine", lambda L: lambda o: L.CosineAnnealingLR(o, T_max=7, eta_min=1e-3)),
    ("multistep", lambda L: lambda o: L.MultiStepLR(o, milestones=[3, 7, 7, 15], gamma=0.5)),
    ("exponential", lambda L: lambda o: L.ExponentialLR(o, gamma=0.9)),
    ("linear", lambda L: lambda o: L.LinearLR(o, start_factor=0.2, end_factor=0.9,
                                              total_iters=8)),
    ("onecycle-cos", lambda L: lambda o: L.OneCycleLR(o, max_lr=[0.1, 0.2], total_steps=25)),
    ("onecycle-linear-three-phase", lambda L: lambda o: L.OneCycleLR(
        o, max_lr=0.1, epochs=5, steps_per_epoch=5, anneal_strategy="linear", three_phase=True,
        pct_start=0.25, base_momentum=0.7, max_momentum=[0.9, 0.95], div_factor=10.0,
        final_div_factor=100.0)),
    ("onecycle-no-momentum", lambda L: lambda o: L.OneCycleLR(o, max_lr=0.05, total_steps=30,
                                                              cycle_momentum=False)),
    ("sequential-warmup-cosine", lambda L: lambda o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.1, total_iters=5),
            L.CosineAnnealingLR(o, T_max=12, eta_min=1e-3)], milestones=[5])),
    ("sequential-three", lambda L: lambda o: L.SequentialLR(
        o, [L.ExponentialLR(o, gamma=0.8), L.StepLR(o, step_size=2, gamma=0.5),
            L.MultiStepLR(o, milestones=[14, 16], gamma=0.3)], milestones=[4, 11])),
    # stepped with the loss; a large relative threshold makes most epochs "bad"
    ("plateau", lambda L: lambda o: L.ReduceLROnPlateau(o, factor=0.5, patience=0,
                                                        threshold=0.5, cooldown=1)),
]

#: the optimizers the schedulers drive: SGD with momentum (OneCycleLR cycles ``momentum``)
#: and Adam (it cycles ``beta1``); the first group has its own lr
SCHEDULED = [
    ("sgd", lambda p: optim.SGD(two_groups({"lr": 0.05})(p), lr=0.1, momentum=0.9),
     lambda p: torch.optim.SGD(two_groups({"lr": 0.05})(p), lr=0.1, momentum=0.9)),
    ("adam", lambda p: optim.Adam(two_groups({"lr": 0.05})(p), lr=0.02),
     lambda p: torch.optim.Adam(two_groups({"lr": 0.05})(p), lr=0.02)),
]


@pytest.mark.parametrize("opt", SCHEDULED, ids=[o[0] for o in SCHEDULED])
@pytest.mark.parametrize("sched", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_schedulers_match_torch(sched, opt) -> None:
    _, make = sched
    _, make_opt, make_topt = opt
    ours, theirs, lrs = run_both(make_opt, make_topt, 25, make(optim.lr_scheduler),
                                 make(torch.optim.lr_scheduler), net=mlp)
    for mine, ref in lrs:
        assert mine == ref  # the same formulas in the same order: equal, not merely close
    assert len({round(m[0], 12) for m, _ in lrs}) > 3
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


def test_schedulers_are_importable_from_both_paths() -> None:
    assert optim.StepLR is optim.lr_scheduler.StepLR
    assert optim.SequentialLR is optim.lr_scheduler.SequentialLR
    assert set(optim.lr_scheduler.__all__) <= set(torch.optim.lr_scheduler.__all__)


#: metric sequences with improvements, plateaus and changes smaller than the threshold
PLATEAU_METRICS = [10.0, 9.0, 9.0, 9.0, 8.9995, 9.1, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 7.0, 7.5,
                   7.5, 7.5, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99] + [5.0] * 14


@pytest.mark.parametrize("options", [
    {},
    {"factor": 0.5, "patience": 1, "threshold": 1e-3},
    {"mode": "max", "factor": 0.5, "patience": 2, "threshold_mode": "abs", "threshold": 0.05},
    {"factor": 0.3, "patience": 0, "cooldown": 2, "min_lr": [0.004, 0.01]},
    {"mode": "max", "patience": 1, "cooldown": 1, "min_lr": 1e-3, "eps": 1e-2},
], ids=["defaults", "rel", "max-abs", "cooldown-min-lrs", "max-eps"])
def test_reduce_lr_on_plateau_matches_torch(options) -> None:
    sign = -1.0 if options.get("mode") == "max" else 1.0
    model, tmodel = twin_models(mlp)
    opt = optim.SGD(two_groups({"lr": 0.05})(list(model.parameters())), lr=0.1)
    topt = torch.optim.SGD(two_groups({"lr": 0.05})(list(tmodel.parameters())), lr=0.1)
    sched = optim.ReduceLROnPlateau(opt, **options)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **options)
    seen = set()
    for metric in PLATEAU_METRICS:
        sched.step(sign * metric)
        tsched.step(sign * metric)
        assert sched.get_last_lr() == tsched.get_last_lr()
        seen.add(sched.get_last_lr()[1])
    assert len(seen) > 1  # the rate was really reduced
    state, tstate = sched.state_dict(), tsched.state_dict()
    assert state.keys() == tstate.keys() and state == tstate
    # a Tensor metric works as torch's does
    sched.step(cp.tensor(1.0))


def test_get_last_lr_is_a_copy_of_each_groups_rate() -> None:
    opt = optim.SGD([{"params": [nn.Parameter(np.ones(1))], "lr": 0.5},
                     {"params": [nn.Parameter(np.ones(1))]}], lr=0.1)
    sched = optim.ExponentialLR(opt, gamma=0.5)
    assert sched.get_last_lr() == [0.5, 0.1]
    opt.step()
    sched.step()
    last = sched.get_last_lr()
    assert last == [0.25, 0.05] == [g["lr"] for g in opt.param_groups]
    last.append(1.0)
    assert sched.get_last_lr() == [0.25, 0.05]


def test_scheduler_warnings_match_torch() -> None:
    opt = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
    sched = optim.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match=r"before `optimizer.step\(\)`"):
        sched.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(6)  # the closed form, as torch: base * gamma ** (6 // 2)
    assert math.isclose(sched.get_last_lr()[0], 0.1 * 0.1**3, rel_tol=1e-15)


@pytest.mark.parametrize("case", [("sgd", "SGD", {"lr": 0.1, "momentum": 0.9}, {})] + GROUPED,
                         ids=lambda c: c[0])
def test_float32_parameters_stay_float32(case) -> None:
    _, name, defaults, options = case
    rng = np.random.default_rng(5)
    data = [rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
    ours = [nn.Parameter(d.copy()) for d in data]
    theirs = [torch.nn.Parameter(torch.from_numpy(d.copy())) for d in data]
    opt = getattr(optim, name)([{"params": ours[:1], **options}, {"params": ours[1:]}], **defaults)
    topt = getattr(torch.optim, name)([{"params": theirs[:1], **options},
                                       {"params": theirs[1:]}], **defaults)
    for _ in range(10):  # the gradient of sum(p^3) / 3
        for p, t in zip(ours, theirs):
            p.grad = p.data**2
            t.grad = t.detach() ** 2
        opt.step()
        topt.step()
    for p, t in zip(ours, theirs):
        assert p.data.dtype == np.float32
        assert all(v.dtype == np.float32 for v in opt.state[p].values() if v.ndim)
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_step_skips_parameters_without_gradients_and_updates_in_place() -> None:
    a = nn.Parameter(np.ones(3))
    b = nn.Parameter(np.ones(3))
    data = a.data
    opt = optim.SGD([a, b], lr=0.5)
    a.grad = np.array([1.0, 2.0, 3.0])
    opt.step()
    assert a.data is data
    np.testing.assert_array_equal(a.data, [0.5, 0.0, -0.5])
    np.testing.assert_array_equal(b.data, np.ones(3))
    opt.zero_grad()
    assert a.grad is None
    assert "SGD" in repr(opt) and "lr: 0.5" in repr(opt)


def test_closure_is_called_and_returned() -> None:
    w = nn.Parameter(np.array([3.0]))
    opt = optim.Adam([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 9.0
    assert w.data[0] < 3.0


# ------------------------------------------------------------------ errors
def test_optimizer_errors_are_clear() -> None:
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam(nn.ReLU().parameters())
    with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
        optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.AdamW([p], lr=-1e-3)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam([{"params": [p], "lr": -1.0}])
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="Tensors"):
        optim.SGD([np.ones(2)], lr=0.1)


def test_failed_add_param_group_changes_nothing() -> None:
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.add_param_group({"params": [b], "lr": -2.0})
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [a]})
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["params"] == [a]


def test_scheduler_errors() -> None:
    opt = optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        optim.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(TypeError, match="Optimizer"):
        optim.StepLR(object(), 2)
    assert cp.Tensor  # the package imports optim alongside everything else


#: (id, build(O, p) with O = convprop.optim or torch.optim and p a parameter of that
#: library, the message convprop gives, whether torch raises a ValueError too)
OPTIMIZER_RULES = [
    *[(f"{n.lower()}-lr", lambda O, p, n=n: getattr(O, n)([p], lr=-0.5),
       r"Invalid learning rate: -0.5 \(lr must be a number >= 0\)", True)
      for n in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam")],
    *[(f"{n.lower()}-weight-decay", lambda O, p, n=n: getattr(O, n)([p], weight_decay=-1e-2),
       r"Invalid weight_decay value: -0.01 \(weight_decay must be a number >= 0\)", True)
      for n in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam")],
    *[(f"{n.lower()}-eps", lambda O, p, n=n: getattr(O, n)([p], eps=-1e-8),
       r"Invalid epsilon value: -1e-08 \(eps must be a number >= 0\)", True)
      for n in ("Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam")],
    *[(f"{n.lower()}-beta{i}", lambda O, p, n=n, i=i: getattr(O, n)(
        [p], betas=(0.9, 1.0) if i else (-0.1, 0.9)),
       rf"Invalid beta parameter at index {i}: .* \(betas must each be in \[0, 1\)\)", True)
      for n in ("Adam", "AdamW", "NAdam", "RAdam") for i in (0, 1)],
    *[(f"{n.lower()}-momentum", lambda O, p, n=n: getattr(O, n)([p], lr=0.1, momentum=-0.9),
       r"Invalid momentum value: -0.9 \(momentum must be a number >= 0\)", True)
      for n in ("SGD", "RMSprop")],
    ("sgd-nesterov", lambda O, p: O.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     r"Nesterov momentum requires a momentum > 0 and zero dampening \(got momentum=0.9, "
     r"dampening=0.1\)", True),
    ("sgd-dampening", lambda O, p: O.SGD([p], lr=0.1, momentum=0.9, dampening=-1.0),
     "Invalid dampening value: -1.0", False),
    ("rmsprop-alpha", lambda O, p: O.RMSprop([p], alpha=-0.99),
     r"Invalid alpha value: -0.99 \(alpha must be a number >= 0\)", True),
    ("adagrad-lr-decay", lambda O, p: O.Adagrad([p], lr_decay=-1.0),
     "Invalid lr_decay value: -1.0", True),
    ("adagrad-initial-accumulator", lambda O, p: O.Adagrad([p], initial_accumulator_value=-1.0),
     "Invalid initial_accumulator_value value: -1.0", True),
    ("nadam-momentum-decay", lambda O, p: O.NAdam([p], momentum_decay=-4e-3),
     "Invalid momentum_decay value: -0.004", True),
    ("group-option", lambda O, p: O.RMSprop([{"params": [p], "alpha": -1.0}]),
     "Invalid alpha value: -1.0", False),  # torch checks only the constructor's arguments
]


@pytest.mark.parametrize("build,match,torch_too", [r[1:] for r in OPTIMIZER_RULES],
                         ids=[r[0] for r in OPTIMIZER_RULES])
def test_optimizer_rules(build, match, torch_too) -> None:
    with pytest.raises(ValueError, match=match):
        build(optim, nn.Parameter(np.ones(2)))
    if torch_too:
        with pytest.raises(ValueError):
            build(torch.optim, torch.nn.Parameter(torch.ones(2)))


def _two_groups(lib, name="SGD", **options):
    if lib is optim:
        params = [nn.Parameter(np.ones(1)), nn.Parameter(np.ones(1))]
    else:
        params = [torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))]
    defaults = {"lr": 0.1, "momentum": 0.9} if name == "SGD" else {}
    return getattr(lib, name)([{"params": params[:1]}, {"params": params[1:]}],
                              **{**defaults, **options})


def _past_the_end(O):
    opt = _two_groups(O)
    sched = O.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=2)
    opt.step()
    for _ in range(3):
        sched.step()


#: (id, build(O) with O = convprop.optim or torch.optim, exception, message, torch raises too)
SCHEDULER_RULES = [
    ("not-an-optimizer", lambda O: O.lr_scheduler.ExponentialLR(object(), 0.9), TypeError,
     "ExponentialLR needs an Optimizer, got object", True),
    ("step-size", lambda O: O.lr_scheduler.StepLR(_two_groups(O), step_size=0), ValueError,
     "step_size must be a positive int, got 0", False),
    ("t-max", lambda O: O.lr_scheduler.CosineAnnealingLR(_two_groups(O), T_max=2.5), ValueError,
     "T_max must be a positive int, got 2.5", False),
    ("milestones", lambda O: O.lr_scheduler.MultiStepLR(_two_groups(O), milestones=[2, "5"]),
     ValueError, "milestones must be ints", False),
    ("linear-start", lambda O: O.lr_scheduler.LinearLR(_two_groups(O), start_factor=0.0),
     ValueError, r"start_factor must be in \(0, 1\], got 0.0", True),
    ("linear-end", lambda O: O.lr_scheduler.LinearLR(_two_groups(O), end_factor=1.5),
     ValueError, r"end_factor must be in \[0, 1\], got 1.5", True),
    ("linear-total-iters", lambda O: O.lr_scheduler.LinearLR(_two_groups(O), total_iters=0),
     ValueError, "total_iters must be a positive int, got 0", False),
    ("onecycle-no-length", lambda O: O.lr_scheduler.OneCycleLR(_two_groups(O), max_lr=0.1),
     ValueError, "needs total_steps, or both epochs and steps_per_epoch", True),
    ("onecycle-total-steps", lambda O: O.lr_scheduler.OneCycleLR(_two_groups(O), 0.1,
                                                                 total_steps=0),
     ValueError, "total_steps must be a positive int, got 0", True),
    ("onecycle-epochs", lambda O: O.lr_scheduler.OneCycleLR(_two_groups(O), 0.1, epochs=-2,
                                                            steps_per_epoch=3),
     ValueError, "epochs must be a positive int, got -2", True),
    ("onecycle-pct-start", lambda O: O.lr_scheduler.OneCycleLR(_two_groups(O), 0.1, 10,
                                                               pct_start=1.5),
     ValueError, r"pct_start must be a float in \[0, 1\], got 1.5", True),
    ("onecycle-anneal", lambda O: O.lr_scheduler.OneCycleLR(_two_groups(O), 0.1, 10,
                                                            anneal_strategy="exp"),
     ValueError, "anneal_strategy must be 'cos' or 'linear', got 'exp'", True),
    ("onecycle-max-lr-per-group", lambda O: O.lr_scheduler.OneCycleLR(_two_groups(O), [0.1], 10),
     ValueError, "max_lr must have one value per param group: got 1 values for 2 groups", True),
    ("onecycle-momentum", lambda O: O.lr_scheduler.OneCycleLR(_two_groups(O, "Adagrad"), 0.1, 10),
     ValueError, "cycle_momentum=True needs an optimizer with momentum or betas", True),
    ("onecycle-past-the-end", _past_the_end, ValueError,
     r"stepped 3 times, more than its total_steps \(2\)", True),
    ("plateau-factor", lambda O: O.lr_scheduler.ReduceLROnPlateau(_two_groups(O), factor=1.0),
     ValueError, "factor must be < 1.0, got 1.0", True),
    ("plateau-mode", lambda O: O.lr_scheduler.ReduceLROnPlateau(_two_groups(O), mode="avg"),
     ValueError, "mode must be 'min' or 'max', got 'avg'", True),
    ("plateau-threshold-mode", lambda O: O.lr_scheduler.ReduceLROnPlateau(
        _two_groups(O), threshold_mode="pct"),
     ValueError, "threshold_mode must be 'rel' or 'abs', got 'pct'", True),
    ("plateau-min-lr", lambda O: O.lr_scheduler.ReduceLROnPlateau(_two_groups(O), min_lr=[0.0]),
     ValueError, "min_lr must have one value per param group", True),
    ("plateau-patience", lambda O: O.lr_scheduler.ReduceLROnPlateau(_two_groups(O), patience=-1),
     ValueError, "patience must be an int >= 0, got -1", False),
    ("sequential-empty", lambda O: O.lr_scheduler.SequentialLR(_two_groups(O), [], []),
     ValueError, "at least one scheduler", True),
    ("sequential-milestones", lambda O: _sequential(O, milestones=[2, 4]), ValueError,
     "one milestone fewer than schedulers: got 2 schedulers and 2 milestones", True),
    ("sequential-plateau", lambda O: _sequential(O, plateau=True), ValueError,
     r"does not support ReduceLROnPlateau \(schedulers\[1\]\)", True),
    ("sequential-optimizer", lambda O: _sequential(O, other=True), ValueError,
     r"schedulers\[1\] \(StepLR\) has another", True),
]


def _sequential(O, milestones=(3,), plateau=False, other=False):
    opt = _two_groups(O)
    second = (O.lr_scheduler.ReduceLROnPlateau(opt) if plateau
              else O.lr_scheduler.StepLR(_two_groups(O) if other else opt, 2))
    return O.lr_scheduler.SequentialLR(opt, [O.lr_scheduler.ExponentialLR(opt, 0.9), second],
                                       list(milestones))


@pytest.mark.parametrize("build,exc,match,torch_too", [r[1:] for r in SCHEDULER_RULES],
                         ids=[r[0] for r in SCHEDULER_RULES])
def test_scheduler_rules(build, exc, match, torch_too) -> None:
    with pytest.raises(exc, match=match):
        build(optim)
    if torch_too:
        with pytest.raises(exc):
            build(torch.optim)

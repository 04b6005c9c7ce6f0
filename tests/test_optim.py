"""Optimizers and schedulers against PyTorch: same weights, same data, 20 steps, the
same float64 trajectory to 1e-8; plus the argument errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import convprop as cp
from convprop import nn, optim


def small_net(lib):
    return lib.Sequential(lib.Conv2d(1, 3, 3, padding=1), lib.Tanh(), lib.MaxPool2d(2),
                          lib.Flatten(), lib.Linear(12, 4))


def run_both(make_opt, make_topt, steps: int = 20, make_sched=None, make_tsched=None):
    """Train the same model in both libraries; return the two weight trajectories."""
    nn.init.manual_seed(0)
    model = small_net(nn).double()
    tmodel = small_net(torch.nn).double()
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
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
        if sched:
            sched.step()
            tsched.step()
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


@pytest.mark.parametrize("name,make,tmake", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_trajectories_match_torch(name, make, tmake) -> None:
    ours, theirs, _ = run_both(make, tmake)
    assert np.abs(ours[-1] - ours[0]).max() > 1e-3  # the weights really moved
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


def test_param_groups_with_their_own_options_match_torch() -> None:
    def groups(params):
        return [{"params": params[:2], "lr": 0.05}, {"params": params[2:]}]
    ours, theirs, _ = run_both(lambda p: optim.SGD(groups(p), lr=0.1, momentum=0.9),
                               lambda p: torch.optim.SGD(groups(p), lr=0.1, momentum=0.9))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


@pytest.mark.parametrize("kind", ["step", "cosine"])
def test_schedulers_match_torch(kind: str) -> None:
    if kind == "step":
        s, ts = (lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
                 lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5))
    else:  # T_max shorter than the run, so the schedule also climbs back up
        s, ts = (lambda o: optim.CosineAnnealingLR(o, T_max=7, eta_min=1e-3),
                 lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=1e-3))
    ours, theirs, lrs = run_both(lambda p: optim.Adam(p, lr=2e-2),
                                 lambda p: torch.optim.Adam(p, lr=2e-2), 20, s, ts)
    for mine, ref in lrs:
        np.testing.assert_allclose(mine, ref, rtol=1e-15)
    assert len({round(m[0], 12) for m, _ in lrs}) > 3
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


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

"""Group, layer, instance and local response normalisation, and normalisation of empty
batches: naive loops, finite differences and PyTorch parity in float64 (forward, input
and parameter gradients, running statistics), and one test per error rule."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import tF, torch  # noqa: E402  (torch, or a skip on first use)
from test_nn_layers import check_parity  # noqa: E402

import convprop as cp
import convprop.functional as F
from convprop import nn

pytestmark = pytest.mark.usefixtures("torch_on_one_thread")


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def perturbed(layer: nn.Module, seed: int = 7) -> nn.Module:
    """Random affine parameters, so a wrong broadcast or a swapped weight and bias shows."""
    rng = np.random.default_rng(seed)
    for _, p in layer.named_parameters():
        p.data[...] = rng.standard_normal(p.shape)
    return layer


def block_norm_ref(x: np.ndarray, blocks: list, eps: float) -> np.ndarray:
    """Normalise each block (an index into ``x``) with its own mean and biased variance."""
    y = np.empty_like(x)
    for index in blocks:
        v = x[index]
        y[index] = (v - v.mean()) / np.sqrt(v.var() + eps)
    return y


# --------------------------------------------------------------------- module parity
MODULES = [
    (lambda L: L.GroupNorm(2, 4), (3, 4, 5)),
    (lambda L: L.GroupNorm(3, 6, eps=1e-3), (2, 6, 2, 3)),
    (lambda L: L.GroupNorm(4, 4, affine=False), (2, 4, 3, 2, 2)),
    (lambda L: L.GroupNorm(1, 6, bias=False), (2, 6)),
    (lambda L: L.LayerNorm(5), (3, 4, 5)),
    (lambda L: L.LayerNorm((4, 5), bias=False), (3, 4, 5)),
    (lambda L: L.LayerNorm([3, 4, 5], eps=1e-2), (2, 3, 4, 5)),
    (lambda L: L.LayerNorm(5, elementwise_affine=False), (2, 5)),
    (lambda L: L.InstanceNorm1d(4), (3, 4, 5)),
    (lambda L: L.InstanceNorm1d(4, affine=True), (4, 5)),
    (lambda L: L.InstanceNorm2d(4, affine=True, bias=False), (3, 4, 5, 2)),
    (lambda L: L.InstanceNorm2d(3, track_running_stats=True), (2, 3, 4, 4)),
    (lambda L: L.InstanceNorm3d(4, affine=True, track_running_stats=True), (3, 4, 3, 2, 2)),
    (lambda L: L.InstanceNorm1d(4, momentum=None, track_running_stats=True), (2, 4, 5)),
    (lambda L: L.LocalResponseNorm(3), (2, 5, 4)),
    (lambda L: L.LocalResponseNorm(2, 1e-2, 0.5, 2.0), (2, 5, 4, 3)),
    (lambda L: L.LocalResponseNorm(4, alpha=0.3), (2, 6, 4, 3, 2)),
    (lambda L: L.LocalResponseNorm(7), (1, 3, 4)),
]


@pytest.mark.parametrize("make,shape", MODULES)
def test_normalisation_layers_match_torch(make, shape) -> None:
    layer, tlayer = perturbed(make(nn)), make(torch.nn)
    assert repr(layer) == repr(tlayer)
    x = rand(*shape)
    for step in range(2):  # the running statistics move in training, then serve in eval
        check_parity(layer, tlayer, x + step)
        for name, b in layer.named_buffers():
            b.data[...] = dict(tlayer.named_buffers())[name].numpy()  # carry the update on
    layer.eval(), tlayer.eval()
    check_parity(layer, tlayer, 2 * x)


def test_instance_norm_running_stats_follow_torch_over_steps() -> None:
    layer = nn.InstanceNorm2d(3, affine=True, track_running_stats=True).double()
    tlayer = torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True).double()
    for step in range(4):
        x = rand(2, 3, 4, 5, seed=step) * (step + 1)
        layer(x), tlayer(torch.from_numpy(x))
    for name, b in layer.named_buffers():
        np.testing.assert_allclose(b.data, dict(tlayer.named_buffers())[name].numpy(),
                                   rtol=0, atol=1e-12, err_msg=name)
    assert list(layer.state_dict()) == list(tlayer.state_dict())


def test_functional_norms_match_torch() -> None:
    x, w, b = rand(3, 4, 5), rand(4, seed=1), rand(4, seed=2)
    pairs = [
        (lambda t, w, b: F.group_norm(t, 2, w, b, 1e-3),
         lambda t, w, b: tF.group_norm(t, 2, w, b, 1e-3)),
        (lambda t, w, b: F.layer_norm(t.transpose(1, 2), (4,), w, b),
         lambda t, w, b: tF.layer_norm(t.transpose(1, 2), (4,), w, b)),
        (lambda t, w, b: F.instance_norm(t, None, None, w, b),
         lambda t, w, b: tF.instance_norm(t, None, None, w, b)),
        (lambda t, w, b: F.local_response_norm(t, 3) * w.reshape((1, 4, 1)),
         lambda t, w, b: tF.local_response_norm(t, 3) * w.reshape(1, 4, 1)),
    ]
    for fn, tfn in pairs:
        args = [cp.tensor(a, requires_grad=True) for a in (x, w, b)]
        targs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
        y, ty = fn(*args), tfn(*targs)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=0, atol=1e-10)
        g = rand(*y.shape, seed=3)
        y.backward(g)
        ty.backward(torch.from_numpy(g))
        for a, ta in zip(args, targs):
            want = np.zeros(a.shape) if ta.grad is None else ta.grad.numpy()
            got = np.zeros(a.shape) if a.grad is None else a.grad
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_instance_norm_with_running_stats_functional_matches_torch() -> None:
    x = rand(3, 2, 6)
    rm, rv = rand(2, seed=1), np.abs(rand(2, seed=2)) + 0.5
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    y = F.instance_norm(x, rm, rv, momentum=0.3)
    ty = tF.instance_norm(torch.from_numpy(x), trm, trv, momentum=0.3)
    np.testing.assert_allclose(y.data, ty.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=0, atol=1e-12)
    y = F.instance_norm(x, rm, rv, use_input_stats=False)
    ty = tF.instance_norm(torch.from_numpy(x), trm, trv, use_input_stats=False)
    np.testing.assert_allclose(y.data, ty.numpy(), rtol=0, atol=1e-12)


# -------------------------------------------------------------- naive references
def test_group_layer_instance_norm_match_naive_loops() -> None:
    x = rand(2, 6, 3, 2)
    groups = [(n, slice(g * 2, g * 2 + 2)) for n in range(2) for g in range(3)]
    np.testing.assert_allclose(F.group_norm(x, 3, eps=1e-4).data,
                               block_norm_ref(x, groups, 1e-4), rtol=0, atol=1e-12)
    instances = [(n, c) for n in range(2) for c in range(6)]
    np.testing.assert_allclose(F.instance_norm(x).data, block_norm_ref(x, instances, 1e-5),
                               rtol=0, atol=1e-12)
    rows = [(n, c, h) for n in range(2) for c in range(6) for h in range(3)]
    np.testing.assert_allclose(F.layer_norm(x, 2).data, block_norm_ref(x, rows, 1e-5),
                               rtol=0, atol=1e-12)
    y = F.local_response_norm(x, 3, alpha=0.5, beta=0.7, k=1.5).data
    want = np.empty_like(x)
    for c in range(6):
        near = [x[:, j] ** 2 if 0 <= j < 6 else 0 * x[:, 0] for j in range(c - 1, c + 2)]
        want[:, c] = x[:, c] / (1.5 + 0.5 * sum(near) / 3) ** 0.7
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-12)


def test_normalisation_gradchecks() -> None:
    x = cp.tensor(rand(2, 4, 3), requires_grad=True)
    w = cp.tensor(rand(4, seed=1), requires_grad=True)
    b = cp.tensor(rand(4, seed=2), requires_grad=True)
    cp.gradcheck(lambda t, w, b: F.group_norm(t, 2, w, b), x, w, b)
    cp.gradcheck(lambda t, w, b: F.instance_norm(t, weight=w, bias=b), x, w, b)
    cp.gradcheck(lambda t: F.layer_norm(t, (4, 3)), x)
    lw = cp.tensor(rand(3, seed=4), requires_grad=True)
    cp.gradcheck(lambda t, w: F.layer_norm(t, 3, w), x, lw)
    cp.gradcheck(lambda t: F.local_response_norm(t, 3, alpha=0.5), x)


# ----------------------------------------------------------------------- empty batches
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_on_an_empty_batch_matches_torch(training: bool) -> None:
    layer, tlayer = perturbed(nn.BatchNorm2d(3)).double(), torch.nn.BatchNorm2d(3).double()
    tlayer.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    layer.train(training), tlayer.train(training)
    x = cp.tensor(np.zeros((0, 3, 4, 4)), requires_grad=True)
    y = layer(x)
    ty = tlayer(torch.zeros(0, 3, 4, 4, dtype=torch.float64))
    assert y.shape == tuple(ty.shape)
    y.sum().backward()
    assert x.grad.shape == x.shape and layer.weight.grad is not None
    np.testing.assert_array_equal(layer.weight.grad, 0)
    for name, b in layer.named_buffers():
        np.testing.assert_array_equal(b.data, dict(tlayer.named_buffers())[name].numpy())


def test_batch_norm_of_an_empty_1d_input_like_torch() -> None:
    for training in (True, False):
        y = F.batch_norm(np.zeros(0), np.zeros(0), np.zeros(0), training=training)
        ty = tF.batch_norm(torch.zeros(0), torch.zeros(0), torch.zeros(0), training=training)
        assert y.shape == tuple(ty.shape) == (0,)
    with pytest.raises(ValueError, match="running_mean must be empty"):
        F.batch_norm(np.zeros(0), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match=r"input must be \(N, C, \*spatial\)"):
        F.batch_norm(np.zeros(3), np.zeros(0), np.zeros(0))


def test_batch_norm_eps_rules() -> None:
    with pytest.raises(ValueError, match="eps must be positive in training"):
        nn.BatchNorm1d(3, eps=0.0)(rand(4, 3))
    with pytest.raises(ValueError, match="eps must be non-negative"):
        F.batch_norm(rand(4, 3), np.zeros(3), np.ones(3), eps=-1.0)
    F.batch_norm(rand(4, 3), np.zeros(3), np.ones(3), eps=0.0)  # eval: 0 is allowed


def test_batch_norm_training_needs_more_than_one_value_per_channel() -> None:
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(rand(1, 3))
    nn.BatchNorm1d(3).eval()(rand(1, 3))  # fine in eval mode, as in PyTorch


@pytest.mark.parametrize("make,shape", [
    (lambda L: L.GroupNorm(2, 4), (0, 4, 3)), (lambda L: L.LayerNorm(3), (0, 4, 3)),
    (lambda L: L.InstanceNorm2d(4), (0, 4, 3, 3)),
    (lambda L: L.InstanceNorm1d(4, track_running_stats=True), (0, 4, 3)),
    (lambda L: L.LocalResponseNorm(2), (0, 4, 3, 2)),
])
def test_empty_batches_normalise_like_torch(make, shape) -> None:
    layer, tlayer = make(nn).double(), make(torch.nn).double()
    tlayer.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x = cp.tensor(np.zeros(shape), requires_grad=True)
    y, ty = layer(x), tlayer(torch.zeros(shape, dtype=torch.float64))
    assert y.shape == tuple(ty.shape)
    if y.requires_grad:
        y.sum().backward()
        assert x.grad.shape == shape
    for name, b in layer.named_buffers():
        if name.startswith("running_"):
            # PyTorch averages the statistics of no instances into NaN running statistics;
            # convprop leaves them as they were, as batch normalisation does for an empty batch
            assert np.isnan(dict(tlayer.named_buffers())[name].numpy()).all()
            np.testing.assert_array_equal(b.data, 0.0 if name == "running_mean" else 1.0)
            continue
        np.testing.assert_array_equal(b.data, dict(tlayer.named_buffers())[name].numpy())


# ------------------------------------------------------------------------- errors
def test_group_norm_errors() -> None:
    with pytest.raises(ValueError, match="divides the 4 channels"):
        F.group_norm(rand(2, 4, 3), 3)
    with pytest.raises(ValueError, match="must be divisible by num_groups"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4.*expects input \(N, 4, \*\)"):
        nn.GroupNorm(2, 4)(rand(2, 6, 3))
    with pytest.raises(ValueError, match="more than 1 value per group"):
        F.group_norm(rand(1, 2), 2)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.group_norm(rand(2, 4, 3), 2, rand(3))
    with pytest.raises(ValueError, match="input must be"):
        F.group_norm(rand(4), 2)


def test_layer_norm_errors() -> None:
    with pytest.raises(ValueError, match="must equal the input's trailing dims"):
        F.layer_norm(rand(2, 3, 4), (3,))
    with pytest.raises(ValueError, match=r"LayerNorm\(\(5,\).*trailing dims"):
        nn.LayerNorm(5)(rand(2, 4))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        F.layer_norm(rand(2, 4), 4, None, rand(3))
    with pytest.raises(TypeError, match="normalized_shape must be an int or a sequence"):
        nn.LayerNorm("4")


def test_instance_norm_errors_and_warning() -> None:
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        nn.InstanceNorm1d(3)(rand(2, 3, 1))
    nn.InstanceNorm1d(3, track_running_stats=True).eval()(rand(2, 3, 1))  # eval: running stats
    with pytest.raises(ValueError, match="match num_features"):
        nn.InstanceNorm1d(3, affine=True)(rand(2, 4, 5))
    with pytest.warns(UserWarning, match="does not match num_features"):
        nn.InstanceNorm1d(3)(rand(2, 4, 5))
    with pytest.raises(ValueError, match=r"InstanceNorm2d expects input \(N, C, H, W\)"):
        nn.InstanceNorm2d(3)(rand(3, 4))
    with pytest.raises(ValueError, match="use_input_stats=False needs running_mean"):
        F.instance_norm(rand(2, 3, 4), use_input_stats=False)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        F.instance_norm(rand(2, 3, 4), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="input must be"):
        F.instance_norm(rand(3, 4))


def test_local_response_norm_errors() -> None:
    with pytest.raises(ValueError, match="3 or more dims"):
        F.local_response_norm(rand(3, 4), 2)
    with pytest.raises(ValueError, match="size must be a positive int"):
        nn.LocalResponseNorm(0)(rand(1, 3, 4))


@pytest.mark.parametrize("make", [
    lambda L: L.GroupNorm(2, 4), lambda L: L.LayerNorm((5, 5)), lambda L: L.LocalResponseNorm(3),
    lambda L: L.InstanceNorm2d(4, affine=True, track_running_stats=True),
])
def test_normalisation_keeps_float32(make) -> None:
    layer = make(nn)
    x = cp.tensor(rand(2, 4, 5, 5).astype(np.float32), requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    for name, p in layer.named_parameters():
        assert p.grad.dtype == np.float32, name
    for name, b in layer.named_buffers():
        assert b.dtype in (np.float32, np.int64), name

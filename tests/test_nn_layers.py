"""convprop.nn layers against PyTorch (forward, input and parameter gradients in
float64 to 1e-10), naive pooling references, Module behaviour, state-dict
round trips with PyTorch, initialisation and the layer error messages."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import torch

import convprop as cp
import convprop.functional as F
from convprop import nn

TOL = 1e-10


def to_torch(model: nn.Module, tmodel: torch.nn.Module) -> torch.nn.Module:
    """Load a convprop model's state dict into the equivalent PyTorch model (float64)."""
    tmodel.double()
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return tmodel


def check_parity(layer: nn.Module, tlayer: torch.nn.Module, x: np.ndarray,
                 tol: float = TOL, fn=None) -> None:
    """Same forward, same gradient for the input and every parameter (float64)."""
    layer.double()
    to_torch(layer, tlayer)
    fn = fn or (lambda m, t: m(t))
    xc = cp.Tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yc, yt = fn(layer, xc), fn(tlayer, xt)
    np.testing.assert_allclose(yc.data, yt.detach().numpy(), rtol=0, atol=tol)
    g = np.random.default_rng(1).standard_normal(yc.shape)
    yc.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=0, atol=tol)
    tparams = dict(tlayer.named_parameters())
    names = [k for k, _ in layer.named_parameters()]
    assert names == list(tparams)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=0, atol=tol,
                                   err_msg=name)
    for name, b in layer.named_buffers():
        np.testing.assert_allclose(b.data, dict(tlayer.named_buffers())[name].numpy(),
                                   rtol=0, atol=tol, err_msg=name)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# ------------------------------------------------------------------ convolutions
CONV_CASES = [
    (1, dict(in_channels=3, out_channels=4, kernel_size=3)),
    (1, dict(in_channels=4, out_channels=6, kernel_size=2, stride=2, padding=1, dilation=2,
             groups=2, padding_mode="circular")),
    (2, dict(in_channels=2, out_channels=4, kernel_size=3, padding=1)),
    (2, dict(in_channels=4, out_channels=4, kernel_size=(3, 2), stride=(2, 1), padding="same"
             if False else (1, 0), groups=4, bias=False)),
    (2, dict(in_channels=3, out_channels=2, kernel_size=3, padding="same", dilation=2,
             padding_mode="reflect")),
    (2, dict(in_channels=2, out_channels=3, kernel_size=4, padding=2, padding_mode="replicate")),
    (2, dict(in_channels=2, out_channels=2, kernel_size=2, padding="valid")),
    (3, dict(in_channels=2, out_channels=3, kernel_size=(2, 3, 2), stride=(1, 2, 1),
             padding=1)),
]


@pytest.mark.parametrize("nd,kwargs", CONV_CASES)
def test_conv_layers_match_torch(nd: int, kwargs: dict) -> None:
    layer = getattr(nn, f"Conv{nd}d")(**kwargs)
    tlayer = getattr(torch.nn, f"Conv{nd}d")(**kwargs)
    x = rand(2, kwargs["in_channels"], *([7, 6, 5][:nd]))
    check_parity(layer, tlayer, x)
    assert repr(layer) == repr(tlayer)


TRANSPOSE_CASES = [
    (1, dict(in_channels=3, out_channels=2, kernel_size=3, stride=2, padding=1,
             output_padding=1)),
    (2, dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, groups=2,
             dilation=(1, 2))),
    (2, dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, bias=False)),
    (3, dict(in_channels=2, out_channels=2, kernel_size=2, stride=(2, 1, 1))),
]


@pytest.mark.parametrize("nd,kwargs", TRANSPOSE_CASES)
def test_conv_transpose_layers_match_torch(nd: int, kwargs: dict) -> None:
    layer = getattr(nn, f"ConvTranspose{nd}d")(**kwargs)
    tlayer = getattr(torch.nn, f"ConvTranspose{nd}d")(**kwargs)
    x = rand(2, kwargs["in_channels"], *([5, 4, 3][:nd]))
    check_parity(layer, tlayer, x)
    assert repr(layer) == repr(tlayer)


def test_conv_transpose_output_size_matches_torch() -> None:
    kw = dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1)
    layer, tlayer = nn.ConvTranspose2d(**kw), torch.nn.ConvTranspose2d(**kw)
    x = rand(1, 2, 4, 5)
    check_parity(layer, tlayer, x, fn=lambda m, t: m(t, output_size=[8, 10]))
    assert layer(x, output_size=(8, 10)).shape == (1, 3, 8, 10)
    with pytest.raises(ValueError, match="not reachable"):
        layer(x, output_size=(12, 10))


def test_conv_unbatched_input() -> None:
    layer = nn.Conv2d(2, 3, 3)
    tlayer = torch.nn.Conv2d(2, 3, 3)
    check_parity(layer, tlayer, rand(2, 5, 5))


# ---------------------------------------------------------- linear, activations
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (4,)])
def test_linear_matches_torch(shape: tuple[int, ...]) -> None:
    check_parity(nn.Linear(4, 3), torch.nn.Linear(4, 3), rand(*shape))
    check_parity(nn.Linear(4, 3, bias=False), torch.nn.Linear(4, 3, bias=False), rand(*shape))
    assert repr(nn.Linear(4, 3)) == repr(torch.nn.Linear(4, 3))


ACTIVATIONS = [
    (nn.ReLU(), torch.nn.ReLU()),
    (nn.LeakyReLU(), torch.nn.LeakyReLU()),
    (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (nn.Sigmoid(), torch.nn.Sigmoid()),
    (nn.Tanh(), torch.nn.Tanh()),
    (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    (nn.Softmax(dim=-1), torch.nn.Softmax(dim=-1)),
    (nn.LogSoftmax(dim=1), torch.nn.LogSoftmax(dim=1)),
    (nn.LogSoftmax(dim=0), torch.nn.LogSoftmax(dim=0)),
    (nn.Flatten(), torch.nn.Flatten()),
    (nn.Flatten(0, 2), torch.nn.Flatten(0, 2)),
    (nn.Identity(), torch.nn.Identity()),
]


@pytest.mark.parametrize("layer,tlayer", ACTIVATIONS, ids=lambda m: repr(m))
def test_parameter_free_layers_match_torch(layer: nn.Module, tlayer: torch.nn.Module) -> None:
    x = rand(3, 4, 5)
    x[0, 0, :3] = 0.0  # the kinks: ReLU and LeakyReLU at exactly 0
    check_parity(layer, tlayer, x)
    assert repr(layer) == repr(tlayer)


def test_softmax_is_stable_for_huge_logits() -> None:
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    np.testing.assert_allclose(F.softmax(x, 1).data,
                               torch.softmax(torch.tensor(x), 1).numpy(), atol=1e-15)
    np.testing.assert_allclose(F.log_softmax(x, 1).data,
                               torch.log_softmax(torch.tensor(x), 1).numpy(), atol=1e-10)


def test_softmax_implicit_dim_follows_torch_with_a_warning() -> None:
    x = rand(2, 3)
    with pytest.warns(UserWarning):
        y = nn.Softmax()(x)
    np.testing.assert_allclose(y.data, torch.softmax(torch.tensor(x), 1).numpy(), atol=TOL)


# ------------------------------------------------------------------- pooling
POOL_CASES = [
    (1, "Max", dict(kernel_size=3, stride=2, padding=1)),
    (1, "Max", dict(kernel_size=2, dilation=2)),
    (2, "Max", dict(kernel_size=2)),
    (2, "Max", dict(kernel_size=3, stride=1, padding=1)),
    (2, "Max", dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))),
    (3, "Max", dict(kernel_size=2, stride=1)),
    (1, "Avg", dict(kernel_size=3, stride=2, padding=1)),
    (1, "Avg", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (2, "Avg", dict(kernel_size=2)),
    (2, "Avg", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (2, "Avg", dict(kernel_size=(3, 2), stride=1, padding=(1, 1), divisor_override=5)),
    (3, "Avg", dict(kernel_size=2, stride=(1, 2, 1), padding=1)),
]


@pytest.mark.parametrize("nd,kind,kwargs", POOL_CASES)
def test_pool_layers_match_torch(nd: int, kind: str, kwargs: dict) -> None:
    layer = getattr(nn, f"{kind}Pool{nd}d")(**kwargs)
    tlayer = getattr(torch.nn, f"{kind}Pool{nd}d")(**kwargs)
    check_parity(layer, tlayer, rand(2, 3, *([7, 6, 5][:nd])))
    check_parity(layer, tlayer, rand(3, *([6, 5, 4][:nd])))  # unbatched
    assert repr(layer) == repr(tlayer)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum_like_torch() -> None:
    # many ties: integer-valued input with overlapping windows, and an all-equal block
    x = np.random.default_rng(3).integers(0, 3, (2, 2, 6, 6)).astype(np.float64)
    x[0, 0] = 1.0
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                   dict(kernel_size=3, stride=2, dilation=2)):
        check_parity(nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), x)
    xc = cp.Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(xc, 2).sum().backward()
    np.testing.assert_array_equal(xc.grad[0, 0], [[1, 0], [0, 0]])


def test_max_pool_nan_and_infinities_match_torch() -> None:
    x = rand(1, 2, 5, 5)
    x[0, 0, 0, :2] = np.nan  # two NaNs in one window: PyTorch takes the last
    x[0, 0, 3, 3] = np.nan
    x[0, 1, :2, :2] = -np.inf  # a window of -inf next to padding
    x[0, 1, 4, 4] = np.inf
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)):
        layer, tlayer = nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs)
        xc = cp.Tensor(x, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        yc, yt = layer(xc), tlayer(xt)
        np.testing.assert_array_equal(yc.data, yt.detach().numpy())
        g = rand(*yc.shape, seed=4)
        yc.backward(g)
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("nd,out", [(1, 3), (1, 1), (2, 1), (2, (3, 2)), (2, (None, 4)),
                                    (2, (5, 3)), (3, (2, 1, 3))])
def test_adaptive_avg_pool_matches_torch(nd: int, out) -> None:
    if nd == 3:
        layer, tlayer = nn.AdaptiveAvgPool3d(out), torch.nn.AdaptiveAvgPool3d(out)
    else:
        layer = getattr(nn, f"AdaptiveAvgPool{nd}d")(out)
        tlayer = getattr(torch.nn, f"AdaptiveAvgPool{nd}d")(out)
    check_parity(layer, tlayer, rand(2, 3, *([7, 5, 4][:nd])))
    check_parity(layer, tlayer, rand(3, *([5, 7, 3][:nd])))
    assert repr(layer) == repr(tlayer)


def max_pool2d_ref(x: np.ndarray, k: int, s: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Naive max pooling and its vector-Jacobian product for an all-ones output gradient."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    y = np.empty((n, c, oh, ow))
    gx = np.zeros_like(x)
    for ni, ci, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        best, where = -np.inf, None
        for a, b in itertools.product(range(k), range(k)):
            r, q = i * s + a - p, j * s + b - p
            if 0 <= r < h and 0 <= q < w and x[ni, ci, r, q] > best:
                best, where = x[ni, ci, r, q], (r, q)
        y[ni, ci, i, j] = best
        gx[(ni, ci) + where] += 1
    return y, gx


def avg_pool2d_ref(x: np.ndarray, k: int, s: int, p: int, include_pad: bool) -> np.ndarray:
    n, c, h, w = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    y = np.empty((n, c, oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        r0, q0 = i * s - p, j * s - p
        rows = [r for r in range(r0, r0 + k) if 0 <= r < h]
        cols = [q for q in range(q0, q0 + k) if 0 <= q < w]
        total = x[:, :, rows][:, :, :, cols].sum(axis=(2, 3))
        y[:, :, i, j] = total / (k * k if include_pad else len(rows) * len(cols))
    return y


@given(k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2), h=st.integers(1, 7),
       w=st.integers(1, 7), seed=st.integers(0, 100), include_pad=st.booleans())
def test_pooling_matches_naive_references(k, s, p, h, w, seed, include_pad) -> None:
    if 2 * p > k or h + 2 * p < k or w + 2 * p < k:
        return
    x = np.random.default_rng(seed).integers(-3, 4, (2, 2, h, w)).astype(np.float64)
    xc = cp.Tensor(x, requires_grad=True)
    y = F.max_pool2d(xc, k, s, p)
    y_ref, gx_ref = max_pool2d_ref(x, k, s, p)
    np.testing.assert_array_equal(y.data, y_ref)
    y.sum().backward()
    np.testing.assert_array_equal(xc.grad, gx_ref)
    np.testing.assert_allclose(F.avg_pool2d(x, k, s, p, count_include_pad=include_pad).data,
                               avg_pool2d_ref(x, k, s, p, include_pad), atol=1e-12)


def test_pooling_gradcheck() -> None:
    x = cp.Tensor(rand(1, 2, 5, 4), requires_grad=True)  # distinct values: no ties
    cp.gradcheck(lambda t: F.max_pool2d(t, 3, 2, 1), x)
    cp.gradcheck(lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False), x)
    cp.gradcheck(lambda t: F.adaptive_avg_pool2d(t, (3, 3)), x)


def test_pool_argument_errors() -> None:
    with pytest.raises(ValueError, match="half the kernel"):
        F.max_pool2d(rand(1, 1, 5, 5), 2, padding=2)
    with pytest.raises(TypeError, match="ceil_mode"):
        F.avg_pool2d(rand(1, 1, 5, 5), 2, ceil_mode="yes")
    with pytest.raises(ValueError, match=r"MaxPool2d.*\(3, 4\)"):
        nn.MaxPool2d(2)(rand(3, 4))
    with pytest.raises(ValueError, match="kernel 4 is larger than the input's height 3"):
        nn.AvgPool2d(4)(rand(1, 1, 3, 3))


# --------------------------------------------------------- batch norm, dropout
@pytest.mark.parametrize("kwargs", [dict(), dict(momentum=None), dict(affine=False),
                                    dict(bias=False),
                                    dict(track_running_stats=False), dict(momentum=0.3, eps=1e-3)])
@pytest.mark.parametrize("dims", [1, 2])
def test_batch_norm_matches_torch_in_train_and_eval(kwargs: dict, dims: int) -> None:
    layer = getattr(nn, f"BatchNorm{dims}d")(3, **kwargs)
    tlayer = getattr(torch.nn, f"BatchNorm{dims}d")(3, **kwargs)
    if layer.affine:  # non-trivial affine parameters
        layer.weight.data[:] = [0.5, 2.0, -1.0]
    if layer.bias is not None:
        layer.bias.data[:] = [0.1, 0.0, -0.3]
    shapes = [(6, 3), (4, 3, 5)] if dims == 1 else [(4, 3, 3, 2)]
    for step, shape in enumerate(shapes * 2):
        check_parity(layer, tlayer, rand(*shape, seed=step) * 3 + 1)
    layer.eval()
    tlayer.eval()
    check_parity(layer, tlayer, rand(*shapes[0], seed=9))
    assert repr(layer) == repr(tlayer)


def test_batch_norm_state_dict_layout_matches_torch() -> None:
    bn, tbn = nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    sd = bn.state_dict()
    assert list(sd) == list(tbn.state_dict())
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"].shape == ()


def test_batch_norm_float16_accumulates_without_overflow_like_torch() -> None:
    # 20000 values per channel of variance ~9: the float16 sum of squares (~1.8e5)
    # overflows 65504; torch accumulates half statistics in float32
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 3, 100, 100)) * 3).astype(np.float16)
    g = rng.standard_normal(x.shape).astype(np.float16)
    bn, tbn = nn.BatchNorm2d(3).to(np.float16), torch.nn.BatchNorm2d(3).half()
    xc, xt = cp.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = bn(xc), tbn(xt)
    assert y.dtype == np.float16
    assert np.isfinite(y.data).all()
    np.testing.assert_allclose(y.data.astype(np.float64), ty.detach().numpy(), atol=2e-2)
    for name in ("running_mean", "running_var"):
        ours = getattr(bn, name).data
        assert ours.dtype == np.float16 and np.isfinite(ours).all()
        np.testing.assert_allclose(ours.astype(np.float64),
                                   getattr(tbn, name).numpy().astype(np.float64), rtol=2e-3,
                                   atol=1e-3)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert xc.grad.dtype == np.float16 and np.isfinite(xc.grad).all()
    np.testing.assert_allclose(xc.grad.astype(np.float64), xt.grad.numpy(), atol=2e-2)
    for ours, theirs in ((bn.weight.grad, tbn.weight.grad), (bn.bias.grad, tbn.bias.grad)):
        assert np.isfinite(ours).all()
        np.testing.assert_allclose(ours.astype(np.float64), theirs.numpy(), rtol=1e-2)


def test_dropout_train_and_eval() -> None:
    nn.init.manual_seed(0)
    layer = nn.Dropout(0.25)
    x = cp.Tensor(np.ones((200, 50)), requires_grad=True)
    y = layer(x)
    kept = y.data != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.data)  # the gradient passes through the same mask
    nn.init.manual_seed(0)
    np.testing.assert_array_equal(nn.Dropout(0.25)(x).data, y.data)  # seeded: repeatable
    layer.eval()
    assert layer(x) is x
    assert repr(layer) == repr(torch.nn.Dropout(0.25))
    assert np.all(nn.Dropout(1.0)(x).data == 0)
    with pytest.raises(ValueError, match="p must be"):
        nn.Dropout(1.5)


# ------------------------------------------------------------- a whole model
def digits_cnn(lib):
    return lib.Sequential(
        lib.Conv2d(1, 8, 3, padding=1), lib.BatchNorm2d(8), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(8, 16, 3, padding=1), lib.LeakyReLU(), lib.AvgPool2d(2),
        lib.Conv2d(16, 16, 1), lib.Tanh(), lib.AdaptiveAvgPool2d(1),
        lib.Flatten(), lib.Dropout(0.1), lib.Linear(16, 10), lib.LogSoftmax(dim=1))


def test_model_and_its_repr_match_torch() -> None:
    model, tmodel = digits_cnn(nn), digits_cnn(torch.nn)
    model.train(), tmodel.train()
    model[11].p = tmodel[11].p = 0.0  # dropout is random: disable for the comparison
    check_parity(model, tmodel, rand(5, 1, 8, 8))
    model.eval(), tmodel.eval()
    check_parity(model, tmodel, rand(5, 1, 8, 8, seed=2))
    assert repr(model) == repr(tmodel)


def test_state_dict_round_trips_both_ways_through_torch(tmp_path) -> None:
    model, tmodel = digits_cnn(nn).eval(), digits_cnn(torch.nn).double().eval()
    x = rand(4, 1, 8, 8)
    model(x.astype(np.float32))  # convprop -> PyTorch through a file (float32 model, data)
    model.double()
    cp.save(model.state_dict(), tmp_path / "m.npz")
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in cp.load(tmp_path / "m.npz").items()})
    np.testing.assert_array_equal(model(x).data, model(x).data)
    np.testing.assert_allclose(model(x).data, tmodel(torch.tensor(x)).detach().numpy(), atol=TOL)
    tmodel2 = digits_cnn(torch.nn).double().train()  # PyTorch -> convprop, with trained stats
    tmodel2(torch.tensor(rand(8, 1, 8, 8, seed=5)))
    tmodel2.eval()
    model2 = digits_cnn(nn).double().eval()
    model2.load_state_dict({k: v.numpy() for k, v in tmodel2.state_dict().items()})
    np.testing.assert_allclose(model2(x).data, tmodel2(torch.tensor(x)).detach().numpy(), atol=TOL)
    model3 = digits_cnn(nn).double().eval()  # torch tensors are accepted directly too
    model3.load_state_dict(tmodel2.state_dict())
    np.testing.assert_array_equal(model3(x).data, model2(x).data)


# ------------------------------------------------------------------ Module API
class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
        self.head = nn.Linear(2, 3)
        self.scale = nn.Parameter(np.ones(1))
        self.register_buffer("offset", cp.Tensor(np.zeros(3)))
        self.register_buffer("scratch", cp.Tensor(np.zeros(3)), persistent=False)

    def forward(self, x):
        h = self.features(x).mean(axis=(2, 3))
        return self.head(h) * self.scale + self.offset


def test_module_registration_and_traversal() -> None:
    net = Net()
    names = [k for k, _ in net.named_parameters()]
    assert names == ["scale", "features.0.weight", "features.0.bias", "head.weight", "head.bias"]
    assert len(list(net.parameters())) == 5
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [type(m).__name__ for m in net.children()] == ["Sequential", "Linear"]
    assert [n for n, _ in net.named_modules()] == ["", "features", "features.0", "features.1",
                                                   "head"]
    assert list(net.state_dict()) == ["scale", "offset", "features.0.weight", "features.0.bias",
                                      "head.weight", "head.bias"]
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    out = net(np.ones((2, 1, 4, 4), dtype=np.float32))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.head = nn.Linear(2, 4)  # reassignment replaces the registered child
    assert net.head.out_features == 4 and dict(net.named_children())["head"] is net.head
    with pytest.raises(TypeError, match="parameter"):
        net.scale = np.ones(1)
    del net.head
    assert "head.weight" not in net.state_dict()
    assert "Parameter containing" in repr(net.scale)
    with pytest.raises(AttributeError, match="__init__"):
        class Broken(nn.Module):
            def __init__(self) -> None:
                self.w = nn.Parameter(np.ones(1))
        Broken()


def test_shared_parameters_are_listed_once() -> None:
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2


def test_sequential_container_api() -> None:
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert len(seq) == 2 and isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.ReLU)
    assert isinstance(seq[:1], nn.Sequential) and len(seq[:1]) == 1
    seq.append(nn.Linear(3, 1))
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    ml = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1)])
    assert len(ml) == 2 and len(list(ml.parameters())) == 4
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), "relu")


def test_dtype_conversion() -> None:
    model = digits_cnn(nn)
    assert all(p.dtype == np.float32 for p in model.parameters())
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64
    assert model(rand(2, 1, 8, 8)).dtype == np.float64


# ----------------------------------------------------------------- init
@pytest.mark.parametrize("make,fan_in", [
    (lambda: nn.Conv2d(6, 40, 3, groups=2), 3 * 9),
    (lambda: nn.ConvTranspose2d(40, 6, 3, groups=2), 3 * 9),
    (lambda: nn.Linear(50, 300), 50),
    (lambda: nn.Conv1d(4, 64, 5), 20),
])
def test_default_init_is_torchs_distribution(make, fan_in: int) -> None:
    nn.init.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for p in (layer.weight, layer.bias):
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound
    w = layer.weight.data
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound  # U(-b, b) has std b/sqrt(3)
    assert np.abs(w).max() > 0.9 * bound


def test_init_functions() -> None:
    nn.init.manual_seed(1)
    w = nn.Parameter(np.zeros((200, 100)))
    assert nn.init.calculate_gain("relu") == math.sqrt(2)
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == math.sqrt(1 / 3)
    assert nn.init._calculate_fan_in_and_fan_out(nn.Parameter(np.zeros((4, 3, 5, 5)))) == (75, 100)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.data.std() - math.sqrt(2 / 100)) < 0.01
    nn.init.xavier_uniform_(w)
    assert np.abs(w.data).max() <= math.sqrt(6 / 300)
    nn.init.xavier_normal_(w)
    assert abs(w.data.std() - math.sqrt(2 / 300)) < 0.01
    nn.init.trunc_normal_(w, std=1.0, a=-1.0, b=1.0)
    assert np.abs(w.data).max() <= 1.0
    nn.init.orthogonal_(w)
    np.testing.assert_allclose(w.data.T @ w.data, np.eye(100), atol=1e-10)
    nn.init.constant_(w, 3.0)
    assert np.all(w.data == 3.0)
    nn.init.zeros_(w), nn.init.ones_(w)
    assert np.all(w.data == 1)
    assert nn.init.uniform_(w, -2, -1).data.max() <= -1
    assert nn.init.normal_(w, 5.0, 0.1).data.mean() == pytest.approx(5.0, abs=0.01)
    nn.init.eye_(w)
    assert np.trace(w.data) == 100


# ----------------------------------------------------------------- errors
def test_shape_errors_name_the_layer_and_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*\(N, 3, H, W\).*\(2, 1, 8, 8\)"):
        nn.Conv2d(3, 8, 3)(np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"Conv1d\(2, 2.*\(5, 2\)"):
        nn.Conv1d(2, 2, 3)(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"Linear\(in_features=16.*\(\*, 16\).*\(4, 32\)"):
        nn.Linear(16, 10)(np.zeros((4, 32)))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(8.*C=8.*\(2, 4, 3, 3\)"):
        nn.BatchNorm2d(8)(np.zeros((2, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(4, 2.*\(N, 4, H, W\).*\(1, 3, 5, 5\)"):
        nn.ConvTranspose2d(4, 2, 3)(np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"Conv2d\(1, 1, kernel_size=\(5, 5\).*larger"):
        nn.Conv2d(1, 1, 5)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(np.zeros((1, 3)))


def test_layer_construction_errors() -> None:
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(1, 1, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="stride 1"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="zeros"):
        nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect")


def test_batch_norm_failed_call_changes_nothing() -> None:
    bn = nn.BatchNorm1d(3)
    before = bn.state_dict()
    with pytest.raises(ValueError):
        bn(np.zeros((1, 3)))
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_errors_list_every_problem_and_change_nothing() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(4, 3))
    before = model.state_dict()
    bad = dict(before)
    del bad["0.bias"]
    bad["2.weight"] = np.zeros((3, 5))
    bad["extra.weight"] = np.zeros(1)
    bad["1.weight"] = before["1.weight"] + 1  # valid, but must not be applied
    with pytest.raises(nn.StateDictError) as info:
        model.load_state_dict(bad)
    message = str(info.value)
    assert "missing key(s): 0.bias" in message
    assert "unexpected key(s): extra.weight" in message
    assert "2.weight" in message and "(3, 5)" in message and "(3, 4)" in message
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, ValueError)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    # strict=False tolerates missing/unexpected keys but never a wrong shape
    del bad["2.weight"]
    result = model.load_state_dict(bad, strict=False)
    assert result.missing_keys == ["0.bias", "2.weight"]
    assert result.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(model[1].weight.data, before["1.weight"] + 1)
    with pytest.raises(nn.StateDictError, match="size mismatch for 2.bias"):
        model.load_state_dict({"2.bias": np.zeros(4)}, strict=False)
    with pytest.raises(nn.StateDictError, match="numbers"):
        model.load_state_dict({**before, "2.bias": np.array(["a", "b", "c"])})


def test_fused_ops_pass_finite_difference_checks() -> None:
    x = cp.Tensor(rand(4, 3, 2, 2), requires_grad=True)
    w = cp.Tensor(rand(3, seed=1), requires_grad=True)
    b = cp.Tensor(rand(3, seed=2), requires_grad=True)
    cp.gradcheck(lambda z, u, v: F.batch_norm(z, None, None, u, v, training=True), x, w, b)
    rm, rv = np.zeros(3), np.ones(3) * 2
    cp.gradcheck(lambda z, u, v: F.batch_norm(z, rm, rv, u, v, training=False), x, w, b)
    lw = cp.Tensor(rand(5, 2, seed=3), requires_grad=True)
    lb = cp.Tensor(rand(5, seed=4), requires_grad=True)
    cp.gradcheck(lambda z, u, v: F.linear(z, u, v), x, lw, lb)
    cp.gradcheck(lambda z: F.log_softmax(z, 1), x)
    cp.gradcheck(lambda z: F.softmax(z, -1), x)
    cp.gradcheck(lambda z: F.leaky_relu(z, 0.1), x)

"""Module state dicts with shared submodules: every name is listed, as in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import torch  # noqa: E402  (the real module, or a skip on first use)

import convprop as cp
import convprop.nn.functional as F
from convprop import nn


def test_shared_module_state_dict_lists_every_name():
    lin = nn.Linear(2, 2)
    m = nn.Sequential(lin, lin)
    tl = torch.nn.Linear(2, 2)
    tm = torch.nn.Sequential(tl, tl)
    assert list(m.state_dict()) == list(tm.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias"]
    # parameters() still yields each shared parameter once, as torch does
    assert len(list(m.parameters())) == len(list(tm.parameters())) == 2
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]

    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    np.testing.assert_array_equal(lin.weight.data, tl.weight.detach().numpy())
    np.testing.assert_array_equal(lin.bias.data, tl.bias.detach().numpy())
    # and the other way round
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})


def test_shared_nested_module_with_buffers_matches_torch_keys():
    bn = nn.BatchNorm1d(3)
    m = nn.Sequential(nn.Sequential(bn, nn.Linear(3, 3)), bn)
    tbn = torch.nn.BatchNorm1d(3)
    tm = torch.nn.Sequential(torch.nn.Sequential(tbn, torch.nn.Linear(3, 3)), tbn)
    assert list(m.state_dict()) == list(tm.state_dict())
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})


# ------------------------------------------------------------- conversion and traversal
def test_module_to_converts_floating_parameters_buffers_and_grads():
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    m[0].weight.grad = np.ones((4, 3), np.float32)
    assert m.to("cpu") is m and m.cpu() is m
    assert m.to(cp.float64) is m
    assert m[0].weight.dtype == np.float64 and m[0].weight.grad.dtype == np.float64
    assert m[1].running_mean.dtype == np.float64
    assert m[1].num_batches_tracked.dtype == np.int64  # integer buffers keep theirs, as torch
    m.to("cpu", "float32")
    assert m[0].bias.dtype == np.float32
    m.to(dtype=torch.float64, device=torch.device("cpu"))
    assert m[0].bias.dtype == np.float64
    m.to(cp.zeros(1, dtype=cp.float32))
    assert m[0].bias.dtype == np.float32
    assert m.double()[0].weight.dtype == np.float64 and m.float()[0].weight.dtype == np.float32
    assert m.half()[0].weight.dtype == np.float16
    with pytest.raises(ValueError, match="device 'cuda:0' is not available"):
        m.to("cuda:0")
    with pytest.raises(TypeError, match="dtype must be floating"):
        m.to(cp.int64)


def build(lib):
    shared = lib.nn.Linear(2, 2)
    inner = lib.nn.Sequential(shared, lib.nn.ReLU())
    return lib.nn.Sequential(inner, lib.nn.BatchNorm1d(2), shared, lib.nn.Sequential())


def test_named_modules_modules_and_apply_follow_torch():
    m, tm = build(cp), build(torch)
    assert [n for n, _ in m.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [type(x).__name__ for x in m.modules()] == [type(x).__name__ for x in tm.modules()]
    assert ([n for n, _ in m.named_modules(prefix="net")]
            == [n for n, _ in tm.named_modules(prefix="net")])
    seen, tseen = [], []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    tm.apply(lambda mod: tseen.append(type(mod).__name__))
    assert seen == tseen
    assert m.apply(lambda mod: None) is m


def add_buffers(m, lib):
    tensor = cp.zeros if lib is cp else torch.zeros
    m.lin = lib.nn.Linear(2, 2)
    m.register_buffer("offset", tensor(2))
    m.register_buffer("scratch", tensor(3), persistent=False)
    m.register_buffer("nothing", None)
    return m


def WithBuffers(lib):  # noqa: N802  (reads as a class at the call sites)
    return add_buffers(nn.Module(), cp)


def TorchWithBuffers(lib):  # noqa: N802
    return add_buffers(torch.nn.Module(), torch)


def test_buffers_state_dict_and_persistence_match_torch():
    m, tm = WithBuffers(cp), TorchWithBuffers(torch)
    assert list(m.state_dict()) == list(tm.state_dict()) == ["offset", "lin.weight", "lin.bias"]
    assert [n for n, _ in m.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert len(list(m.buffers())) == len(list(tm.buffers())) == 2
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    m.offset = cp.ones(2)  # assigning a Tensor to a registered name replaces the buffer
    assert m.state_dict()["offset"].tolist() == [1, 1]
    with pytest.raises(TypeError, match="a Tensor or None is required"):
        m.offset = np.ones(2)


@pytest.mark.parametrize("name, value, error, match", [
    ("a.b", cp.zeros(1), KeyError, "without '.'"),
    ("", cp.zeros(1), KeyError, "non-empty"),
    ("lin", cp.zeros(1), KeyError, "attribute 'lin' already exists"),
    ("training", cp.zeros(1), KeyError, "already exists"),
    (3, cp.zeros(1), TypeError, "name must be a string"),
    ("x", np.zeros(1), TypeError, "must be a Tensor or None"),
])
def test_register_buffer_error_rules(name, value, error, match):
    m = WithBuffers(cp)
    with pytest.raises(error, match=match):
        m.register_buffer(name, value)
    tm = TorchWithBuffers(torch)  # torch raises the same kind of error
    with pytest.raises(error):
        tm.register_buffer(name, torch.zeros(1) if isinstance(value, cp.Tensor) else value)


def test_forward_hooks_change_inputs_and_outputs_and_can_be_removed():
    lin = nn.Linear(2, 2).double()
    calls = []
    pre = lin.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    post = lin.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 1)
    x = cp.ones(3, 2, dtype=cp.float64)
    np.testing.assert_allclose(lin(x).data, np.broadcast_to(lin.bias.data + 1, (3, 2)))
    assert calls == [(3, 2)]
    pre.remove()
    post.remove()
    np.testing.assert_allclose(lin(x).data, F.linear(x, lin.weight, lin.bias).data)
    with lin.register_forward_hook(lambda mod, args, out: out * 0):
        assert not lin(x).data.any()
    assert lin(x).data.any()
    with pytest.raises(TypeError, match="hook must be callable"):
        lin.register_forward_hook(3)

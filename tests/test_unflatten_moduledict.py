"""``nn.Unflatten`` and ``nn.ModuleDict``: behaviour beside PyTorch's, and one test per
error rule.  Their PyTorch configurations run in ``test_torch_configs_core.py``."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import convprop as cp
from convprop import nn


@pytest.mark.parametrize("dim, sizes, shape", [(1, (2, 5, 5), (3, 50)), (-1, [2, -1], (3, 4, 6)),
                                              (0, (1, 3), (3, 2))])
def test_unflatten_shapes_and_gradient(dim, sizes, shape) -> None:
    x = cp.tensor(np.arange(np.prod(shape), dtype=np.float64).reshape(shape), requires_grad=True)
    y = nn.Unflatten(dim, sizes)(x)
    want = np.arange(np.prod(shape)).reshape(shape)
    d = dim % len(shape)
    sizes = tuple(s if s != -1 else shape[d] // -np.prod(sizes) for s in sizes)
    assert y.shape == shape[:d] + sizes + shape[d + 1:]
    np.testing.assert_array_equal(y.data.reshape(shape), want)
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad, np.ones(shape))
    assert cp.gradcheck(nn.Unflatten(dim, sizes), x)


def test_unflatten_undoes_flatten_and_repr_as_torch(torch) -> None:
    x = cp.tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 5)))
    y = nn.Unflatten(1, (3, 4))(nn.Flatten(1, 2)(x))
    np.testing.assert_array_equal(y.data, x.data)
    assert repr(nn.Unflatten(1, (3, 4))) == repr(torch.nn.Unflatten(1, (3, 4)))


UNFLATTEN_ERRORS = {
    "sizes not a tuple": (lambda: nn.Unflatten(1, 6), TypeError, "must be a tuple of ints"),
    "size not an int": (lambda: nn.Unflatten(1, (2, 3.0)), TypeError, "at pos 1"),
    "dim not an int": (lambda: nn.Unflatten("1", (2, 3)), TypeError, "dim must be an int"),
    "dim out of range": (lambda: nn.Unflatten(3, (2, 3))(cp.ones((2, 6))), ValueError,
                         "out of range"),
    "sizes do not multiply": (lambda: nn.Unflatten(1, (4, 2))(cp.ones((2, 6))), ValueError,
                              "do not multiply"),
}


@pytest.mark.parametrize("k", sorted(UNFLATTEN_ERRORS))
def test_unflatten_error_rules(k: str) -> None:
    call, error, match = UNFLATTEN_ERRORS[k]
    with pytest.raises(error, match=match):
        call()


def _dict(m):
    return m.ModuleDict(OrderedDict([("conv", m.Conv2d(1, 2, 3)), ("act", m.ReLU())]))


def test_moduledict_is_a_registered_ordered_mapping(torch) -> None:
    c, t = _dict(nn), _dict(torch.nn)
    assert list(c) == list(t) == ["conv", "act"]
    assert list(c.keys()) == ["conv", "act"] and len(c) == 2 and "conv" in c and "x" not in c
    assert [type(v).__name__ for v in c.values()] == ["Conv2d", "ReLU"]
    assert list(c.state_dict()) == list(t.state_dict()) == ["conv.weight", "conv.bias"]
    c["norm"] = nn.BatchNorm2d(2)
    t["norm"] = torch.nn.BatchNorm2d(2)
    assert list(c.state_dict()) == list(t.state_dict())
    c.update({"act": nn.Tanh()})
    c.update([("pool", nn.MaxPool2d(2))])
    assert list(c) == ["conv", "act", "norm", "pool"] and isinstance(c["act"], nn.Tanh)
    assert isinstance(c.pop("pool"), nn.MaxPool2d) and "pool" not in c
    del c["act"]
    assert list(c) == ["conv", "norm"] and [k for k, _ in c.named_children()] == ["conv", "norm"]
    c.eval()
    assert not c["norm"].training
    c.double()
    assert c["conv"].weight.dtype == np.float64
    assert len(list(c.parameters())) == 4
    c.clear()
    assert len(c) == 0 and list(c.state_dict()) == []


MODULEDICT_ERRORS = {
    "key not a string": (lambda: nn.ModuleDict({1: nn.ReLU()}), TypeError, "keys must be strings"),
    "key with a dot": (lambda: nn.ModuleDict({"a.b": nn.ReLU()}), KeyError, "without '.'"),
    "value not a module": (lambda: nn.ModuleDict({"a": 3}), TypeError, "must be a Module"),
    "update with a non-iterable": (lambda: nn.ModuleDict().update(3), TypeError,
                                   "mapping or an iterable"),
    "update with a bad pair": (lambda: nn.ModuleDict().update([("a", nn.ReLU(), 1)]), ValueError,
                               "element #0"),
    "missing key": (lambda: nn.ModuleDict()["a"], KeyError, "a"),
}


@pytest.mark.parametrize("k", sorted(MODULEDICT_ERRORS))
def test_moduledict_error_rules(k: str) -> None:
    call, error, match = MODULEDICT_ERRORS[k]
    with pytest.raises(error, match=match):
        call()

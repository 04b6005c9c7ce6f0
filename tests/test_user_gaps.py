"""Gaps a PyTorch user hit when porting a conv net, each checked against PyTorch:

- ``F.dropout(input, p, training, inplace, *, generator)`` and ``nn.Dropout(p, inplace)``;
- the list operations of ``nn.Sequential`` and ``nn.ModuleList`` (state-dict keys as
  PyTorch's after each change);
- ``device=`` and ``dtype=`` on every layer constructor that takes them in PyTorch;
- the padding layers that take no fill ``value``;
- the dtype aliases of ``torch.*`` (``cp.int``, ``cp.long``, ...);
- the plain wording of a kernel larger than its input (and of a transposed convolution's
  empty output), naming the axis.

Values are compared in float64 at 1e-10; every error rule has a test.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from test_dropout import check_dropout

import convprop as cp
import convprop.functional as F
from convprop import nn

TOL = {"rtol": 1e-10, "atol": 1e-10}


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# ------------------------------------------------------------------------------ dropout
def test_dropout_signature_is_torchs(torch) -> None:
    ours = inspect.signature(F.dropout).parameters
    theirs = inspect.signature(torch.nn.functional.dropout).parameters
    assert list(ours)[:4] == list(theirs)
    assert [ours[k].default for k in theirs if k != "input"] == [
        theirs[k].default for k in theirs if k != "input"]
    assert ours["generator"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(nn.Dropout).parameters) == list(
        inspect.signature(torch.nn.Dropout).parameters)


def test_dropout_positional_inplace_as_torch() -> None:
    """``F.dropout(x, 0.5, True, False)``: the fourth argument is ``inplace``."""
    x = cp.tensor(rand(30, 20), requires_grad=True)
    cp.manual_seed(5)
    y = F.dropout(x, 0.5, True, False)
    assert y is not x
    y.backward(np.ones(y.shape))
    check_dropout("dropout", x.data, y.data, x.grad, 0.5)
    cp.manual_seed(5)  # the same stream gives the same mask as before the change
    np.testing.assert_array_equal(F.dropout(cp.tensor(x.data), 0.5, True).data, y.data)


def test_dropout_inplace_writes_into_the_input() -> None:
    data = rand(8, 9)
    x = cp.tensor(data.copy())
    out = F.dropout(x, 0.3, True, True, generator=cp.Generator().manual_seed(2))
    ref = F.dropout(cp.tensor(data.copy()), 0.3, True, generator=cp.Generator().manual_seed(2))
    assert out is x
    np.testing.assert_array_equal(x.data, ref.data)
    assert F.dropout(x, 0.3, False, True) is x  # eval: untouched


def test_dropout_inplace_inside_a_graph_as_out_of_place() -> None:
    results = []
    for inplace in (False, True):
        x = cp.tensor(rand(6, 7, seed=1), requires_grad=True)
        h = x * 3.0
        y = F.dropout(h, 0.4, True, inplace, generator=cp.Generator().manual_seed(9))
        assert (y is h) == inplace
        (y * y).sum().backward()
        results.append((y.data.copy(), x.grad.copy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_dropout_gradcheck() -> None:
    x = cp.tensor(rand(4, 5), requires_grad=True)
    assert cp.gradcheck(lambda t: F.dropout(t, 0.3, True, generator=cp.Generator().manual_seed(1)),
                        x)


def test_dropout_identity_and_zeros_match_torch(torch) -> None:
    """Where no random numbers are involved the values and gradients are PyTorch's."""
    data = rand(5, 6)
    for p, training in ((0.5, False), (0.0, True), (1.0, True)):
        x, t = cp.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        y, ty = F.dropout(x, p, training), torch.nn.functional.dropout(t, p, training)
        (y * y).sum().backward()
        (ty * ty).sum().backward()
        np.testing.assert_allclose(y.data, ty.detach().numpy(), **TOL)
        np.testing.assert_allclose(x.grad, t.grad.numpy(), **TOL)


def test_dropout_module_inplace_and_repr(torch) -> None:
    layer = nn.Dropout(0.25, inplace=True)
    assert repr(layer) == repr(torch.nn.Dropout(0.25, inplace=True))
    x = cp.tensor(rand(40, 10) * 0 + 1.0)
    cp.manual_seed(3)
    assert layer(x) is x
    assert set(np.unique(x.data)) <= {0.0, 1 / 0.75}
    z = cp.tensor(np.ones((4, 4)))
    assert layer.eval()(z) is z and np.all(z.data == 1)
    assert list(layer.state_dict()) == []


DROPOUT_ERRORS: dict[str, tuple[Callable[[], Any], type, str]] = {
    "F p above 1": (lambda: F.dropout(cp.ones(3), 1.5), ValueError, "between 0 and 1"),
    "F p below 0": (lambda: F.dropout(cp.ones(3), -0.1), ValueError, "between 0 and 1"),
    "F p not a number": (lambda: F.dropout(cp.ones(3), "0.5"), TypeError, "p must be a number"),
    "F generator positional": (lambda: F.dropout(cp.ones(3), 0.5, True, False,
                                                 cp.Generator()), TypeError, "positional"),
    "F inplace on a leaf that requires grad": (
        lambda: F.dropout(cp.ones(3, requires_grad=True), 0.5, True, True), RuntimeError,
        "leaf tensor that requires grad"),
    "module p above 1": (lambda: nn.Dropout(1.5), ValueError, r"p must be in \[0, 1\]"),
    "module p not a number": (lambda: nn.Dropout(None), TypeError, "p must be a number"),
}


@pytest.mark.parametrize("case", sorted(DROPOUT_ERRORS))
def test_dropout_error_rules(case: str) -> None:
    call, error, match = DROPOUT_ERRORS[case]
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- containers
def _layers(lib: Any, n: int = 6) -> list[Any]:
    return [lib.Linear(i + 1, i + 2) for i in range(n)]


def _container_steps(lib: Any, kind: str, negative_insert: bool) -> list[Any]:
    """The same edits on a Sequential or ModuleList of ``lib``; what each step shows."""
    layers = _layers(lib)
    make = getattr(lib, kind)
    m = make(*layers[:3]) if kind == "Sequential" else make(layers[:3])
    seen: list[Any] = []

    def look(extra: Any = None) -> None:
        seen.append((list(m.state_dict()), [x.in_features for x in m], extra))

    m.append(layers[3])
    look()
    m.insert(1, layers[4])
    look()
    m.insert(-1 if negative_insert else len(m), layers[5])
    look()
    del m[0]
    look()
    popped = m.pop(-2)
    look(popped.in_features)
    m[0] = layers[0]
    look()
    part = m[1:3]
    look((type(part).__name__, list(part.state_dict())))
    del m[::2]
    look()
    m.extend([layers[1], layers[2]])
    look()
    tail = m.pop(slice(1, None))
    look((type(tail).__name__, list(tail.state_dict())))
    m += make(layers[3]) if kind == "Sequential" else [layers[3]]
    look()
    both = m + (make(layers[4]) if kind == "Sequential" else [layers[4]])
    look((type(both).__name__, list(both.state_dict())))
    return seen


@pytest.mark.parametrize("kind", ["Sequential", "ModuleList"])
def test_container_edits_keep_torchs_state_dict_keys(kind: str, torch) -> None:
    # PyTorch's ModuleList.insert fails for a negative index; that step is compared below
    negative = kind == "Sequential"
    assert _container_steps(nn, kind, negative) == _container_steps(torch.nn, kind, negative)


def test_modulelist_negative_insert_as_a_list() -> None:
    layers = _layers(nn, 4)
    ml = nn.ModuleList(layers[:3])
    ml.insert(-1, layers[3])
    assert list(ml) == [layers[0], layers[1], layers[3], layers[2]]
    assert list(ml.state_dict())[4:6] == ["2.weight", "2.bias"]
    assert ml.state_dict()["2.weight"].shape == (5, 4)  # Linear(4, 5)
    ml.insert(-4, layers[3])
    assert ml[0] is layers[3] and len(ml) == 5


def test_children_stay_attributes_after_edits() -> None:
    """Children are also attributes (``getattr(seq, "0")``): edits keep both views in step."""
    layers = _layers(nn, 4)
    seq = nn.Sequential(*layers[:3])
    seq.insert(0, layers[3])
    del seq[2]
    assert [getattr(seq, str(i)) for i in range(len(seq))] == list(seq)
    assert not hasattr(seq, "3")
    ml = nn.ModuleList(layers)
    del ml[1:3]
    assert [getattr(ml, str(i)) for i in range(len(ml))] == [layers[0], layers[3]]
    assert not hasattr(ml, "2") and not hasattr(ml, "3")


def test_edited_sequential_computes_as_torchs(torch) -> None:
    """After the same edits, loading PyTorch's weights gives PyTorch's values and gradients."""
    ours = [nn.Linear(4, 4, dtype=cp.float64) for _ in range(4)]
    theirs = [torch.nn.Linear(4, 4, dtype=torch.float64) for _ in range(4)]
    models = []
    for lib, layers in ((nn, ours), (torch.nn, theirs)):
        m = lib.Sequential(layers[0], lib.Tanh(), layers[1])
        m.insert(1, layers[2])
        m.append(lib.Tanh())
        m.extend([layers[3]])
        del m[2]
        m[0] = layers[0]
        models.append(m)
    models[0].load_state_dict(models[1].state_dict())
    data = rand(3, 4)
    x, t = cp.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    y, ty = models[0](x), models[1](t)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **TOL)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), **TOL)
    grads = dict(models[1].named_parameters())
    for name, p in models[0].named_parameters():
        np.testing.assert_allclose(p.grad, grads[name].grad.numpy(), **TOL)


def test_sequential_slice_keeps_names() -> None:
    a, b = nn.ReLU(), nn.Tanh()
    seq = nn.Sequential(OrderedDict([("act", a), ("squash", b)]))
    part = seq[1:]
    assert isinstance(part, nn.Sequential) and list(part._modules) == ["squash"]


CONTAINER_ERRORS: dict[str, tuple[Callable[[], Any], type, str]] = {
    "Sequential index out of range": (lambda: nn.Sequential(nn.ReLU())[1], IndexError,
                                      "index 1 is out of range"),
    "Sequential index not an int": (lambda: nn.Sequential(nn.ReLU())["0"], TypeError,
                                    "indices must be integers or slices"),
    "Sequential set a non-module": (lambda: nn.Sequential(nn.ReLU()).__setitem__(0, 3),
                                    TypeError, "cannot assign int as child module"),
    "Sequential delete out of range": (lambda: nn.Sequential(nn.ReLU()).__delitem__(-2),
                                       IndexError, "index -2 is out of range"),
    "Sequential insert out of range": (lambda: nn.Sequential(nn.ReLU()).insert(3, nn.Tanh()),
                                       IndexError, "index 3 is out of range"),
    "Sequential insert a non-module": (lambda: nn.Sequential().insert(0, "relu"), TypeError,
                                       "module must be a Module"),
    "Sequential insert among named children": (
        lambda: nn.Sequential(OrderedDict(act=nn.ReLU())).insert(0, nn.Tanh()), ValueError,
        "named children"),
    "Sequential extend a non-iterable": (lambda: nn.Sequential().extend(3), TypeError,
                                         "iterable"),
    "Sequential + a list": (lambda: nn.Sequential() + [nn.ReLU()], ValueError,
                            "only objects of Sequential class"),
    "Sequential += a list": (lambda: nn.Sequential().__iadd__([nn.ReLU()]), ValueError,
                             "only objects of Sequential class"),
    "Sequential pop empty": (lambda: nn.Sequential().pop(0), IndexError, "out of range"),
    "ModuleList index out of range": (lambda: nn.ModuleList([nn.ReLU()])[-2], IndexError,
                                      "index -2 is out of range"),
    "ModuleList set out of range": (lambda: nn.ModuleList().__setitem__(0, nn.ReLU()),
                                    IndexError, "index 0 is out of range"),
    "ModuleList set a non-module": (lambda: nn.ModuleList([nn.ReLU()]).__setitem__(0, 1.0),
                                    TypeError, "cannot assign float as child module"),
    "ModuleList append a non-module": (lambda: nn.ModuleList().append(3), TypeError,
                                       "must be a Module"),
    "ModuleList extend a non-iterable": (lambda: nn.ModuleList().extend(3), TypeError,
                                         "should be called with an iterable"),
    "ModuleList insert out of range": (lambda: nn.ModuleList().insert(-1, nn.ReLU()),
                                       IndexError, "index -1 is out of range"),
    "ModuleList insert a non-module": (lambda: nn.ModuleList().insert(0, None), TypeError,
                                       "module must be a Module"),
}


@pytest.mark.parametrize("case", sorted(CONTAINER_ERRORS))
def test_container_error_rules(case: str) -> None:
    call, error, match = CONTAINER_ERRORS[case]
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------ device, dtype
#: every convprop layer whose PyTorch constructor takes ``device=``/``dtype=``, with
#: small arguments and an input shape
FACTORY_LAYERS: dict[str, tuple[tuple[Any, ...], tuple[int, ...]]] = {
    "Conv1d": ((2, 3, 2), (2, 2, 5)),
    "Conv2d": ((2, 3, 2), (2, 2, 4, 5)),
    "Conv3d": ((2, 3, 2), (1, 2, 3, 3, 4)),
    "ConvTranspose1d": ((2, 3, 2), (2, 2, 5)),
    "ConvTranspose2d": ((2, 3, 2), (2, 2, 4, 3)),
    "ConvTranspose3d": ((2, 3, 2), (1, 2, 2, 3, 2)),
    "Linear": ((4, 3), (5, 4)),
    "BatchNorm1d": ((3,), (4, 3, 5)),
    "BatchNorm2d": ((3,), (4, 3, 2, 2)),
    "BatchNorm3d": ((3,), (2, 3, 2, 2, 2)),
    "InstanceNorm1d": ((3, 1e-5, 0.1, True, True), (2, 3, 5)),
    "InstanceNorm2d": ((3, 1e-5, 0.1, True, True), (2, 3, 3, 4)),
    "InstanceNorm3d": ((3, 1e-5, 0.1, True, True), (2, 3, 2, 2, 3)),
    "GroupNorm": ((2, 4), (3, 4, 5)),
    "LayerNorm": (((3, 4),), (2, 3, 4)),
    "PReLU": ((3,), (2, 3, 4)),
}


def test_every_factory_layer_of_torch_is_listed(torch) -> None:
    """Each convprop layer whose PyTorch constructor takes ``device`` is in the table."""
    takes = {name for name in nn.__all__ if inspect.isclass(getattr(torch.nn, name, None))
             and "device" in inspect.signature(getattr(torch.nn, name).__init__).parameters}
    assert takes == set(FACTORY_LAYERS)


@pytest.mark.parametrize("name", sorted(FACTORY_LAYERS))
def test_constructor_parameters_are_torchs(name: str, torch) -> None:
    """Names, order, defaults and kinds (``bias`` keyword-only where PyTorch has it so)."""
    ours = inspect.signature(getattr(nn, name).__init__).parameters
    theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
    assert [(k, p.kind) for k, p in ours.items()] == [(k, p.kind) for k, p in theirs.items()]
    assert ours["device"].default is None and ours["dtype"].default is None


@pytest.mark.parametrize("name", sorted(FACTORY_LAYERS))
def test_device_and_dtype_give_torchs_layer(name: str, torch) -> None:
    """``device='cpu'`` (or a torch CPU device) and ``dtype=float64`` (in each spelling):
    parameters and buffers in float64, and, with PyTorch's state loaded, PyTorch's values,
    input gradients and parameter gradients."""
    args, shape = FACTORY_LAYERS[name]
    theirs = getattr(torch.nn, name)(*args, device="cpu", dtype=torch.float64)
    for device, dtype in (("cpu", torch.float64), (torch.device("cpu"), cp.float64),
                          (None, "float64"), ("cpu:0", np.float64)):
        ours = getattr(nn, name)(*args, device=device, dtype=dtype)
        assert {t.dtype for t in ours.parameters()} == {np.dtype(np.float64)}
        assert all(b.dtype == theirs.get_buffer(k).numpy().dtype
                   for k, b in ours.named_buffers())
    ours.load_state_dict(theirs.state_dict())
    data = rand(*shape)
    x, t = cp.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    y, ty = ours(x), theirs(t)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **TOL)
    w = rand(*y.shape, seed=1)
    y.backward(w)
    ty.backward(torch.tensor(w))
    np.testing.assert_allclose(x.grad, t.grad.numpy(), **TOL)
    tp = dict(theirs.named_parameters())
    for k, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tp[k].grad.numpy(), **TOL)
    for k, b in ours.named_buffers():
        np.testing.assert_allclose(b.data, theirs.get_buffer(k).numpy(), **TOL)


def test_parameters_follow_the_default_dtype(torch) -> None:
    before = cp.get_default_dtype()
    try:
        cp.set_default_dtype(cp.float64)
        assert nn.Conv2d(1, 2, 3).weight.dtype == cp.float64
        assert nn.BatchNorm2d(2).running_var.dtype == cp.float64
    finally:
        cp.set_default_dtype(before)
    assert nn.Linear(2, 3).weight.dtype == cp.float32 == np.dtype(str(
        torch.nn.Linear(2, 3).weight.dtype).removeprefix("torch."))
    assert nn.PReLU(dtype="half").weight.dtype == cp.float16


@pytest.mark.parametrize("name", sorted(FACTORY_LAYERS))
def test_device_and_dtype_error_rules(name: str) -> None:
    args, _ = FACTORY_LAYERS[name]
    cls = getattr(nn, name)
    with pytest.raises(ValueError, match=rf"{name}: device 'cuda' is not available"):
        cls(*args, device="cuda")
    with pytest.raises(ValueError, match="device 'cuda:1' is not available"):
        cls(*args, device="cuda:1")
    with pytest.raises(TypeError, match=rf"{name}: dtype must be a floating type.*int64"):
        cls(*args, dtype=cp.int64)
    with pytest.raises(TypeError, match=rf"{name}: dtype 'complex64' is not supported"):
        cls(*args, dtype="complex64")


def test_torch_device_other_than_cpu_is_named(torch) -> None:
    with pytest.raises(ValueError, match="Linear: device 'meta' is not available"):
        nn.Linear(2, 2, device=torch.device("meta"))


# ----------------------------------------------------------------------------- padding
NO_VALUE = [f"{kind}Pad{nd}d" for kind in ("Reflection", "Replication", "Circular")
            for nd in (1, 2, 3)]


@pytest.mark.parametrize("name", NO_VALUE)
def test_padding_without_a_fill_value(name: str, torch) -> None:
    assert list(inspect.signature(getattr(nn, name)).parameters) == ["padding"]
    with pytest.raises(TypeError, match="value"):
        getattr(torch.nn, name)(1, value=1.0)
    with pytest.raises(TypeError, match="value"):
        getattr(nn, name)(1, value=1.0)
    with pytest.raises(TypeError, match="positional"):
        getattr(nn, name)(1, 1.0)
    assert not hasattr(getattr(nn, name)(1), "value")
    nd = int(name[-2])
    data = rand(*(1, 2) + (3,) * nd)
    x, t = cp.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    y, ty = getattr(nn, name)(1)(x), getattr(torch.nn, name)(1)(t)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **TOL)
    w = rand(*y.shape, seed=2)
    y.backward(w)
    ty.backward(torch.tensor(w))
    np.testing.assert_allclose(x.grad, t.grad.numpy(), **TOL)


def test_constant_padding_keeps_its_value(torch) -> None:
    data = rand(1, 2, 3)
    y = nn.ConstantPad1d((1, 2), 3.5)(cp.tensor(data))
    np.testing.assert_allclose(y.data, torch.nn.ConstantPad1d((1, 2), 3.5)(
        torch.tensor(data)).numpy(), **TOL)
    assert repr(nn.ConstantPad1d((1, 2), 3.5)) == repr(torch.nn.ConstantPad1d((1, 2), 3.5))
    assert repr(nn.ZeroPad2d(1)) == repr(torch.nn.ZeroPad2d(1))


# ------------------------------------------------------------------------------ dtypes
ALIASES = ["int", "long", "short", "half", "float", "double", "uint8", "int8", "int16", "int32",
           "int64", "bool", "float16", "float32", "float64"]


@pytest.mark.parametrize("name", ALIASES)
def test_dtype_aliases_are_torchs(name: str, torch) -> None:
    ours = getattr(cp, name)
    assert ours == np.dtype(str(getattr(torch, name)).removeprefix("torch."))
    theirs = torch.zeros(2, dtype=getattr(torch, name))
    assert cp.zeros(2, dtype=ours).dtype == ours == np.dtype(str(theirs.numpy().dtype))
    assert cp.tensor([1, 0], dtype=ours).dtype == ours


def test_cp_int_is_int32_and_builtins_stay_out_of_star_import() -> None:
    assert cp.int == cp.int32 == np.dtype(np.int32)
    assert cp.tensor([1.7, -2.2]).to(cp.int).tolist() == [1, -2]
    namespace: dict[str, Any] = {}
    exec("from convprop import *", namespace)
    assert not {"int", "float", "bool"} & set(namespace)


# ------------------------------------------------------------------ kernel-size wording
KERNEL_MESSAGES = [
    (lambda: F.conv2d(rand(1, 1, 8, 9), rand(1, 1, 9, 9)),
     "kernel 9 is larger than the input's height 8 (+0 padding)"),
    (lambda: F.conv2d(rand(1, 1, 8, 3), rand(1, 1, 3, 6), padding=1),
     "kernel 6 is larger than the input's width 3 (+2 padding)"),
    (lambda: F.conv1d(rand(1, 1, 4), rand(1, 1, 3), dilation=2),
     "dilated kernel 5 (3 taps, dilation 2) is larger than the input's length 4 (+0 padding)"),
    (lambda: F.conv3d(rand(1, 1, 2, 5, 5), rand(1, 1, 3, 3, 3)),
     "kernel 3 is larger than the input's depth 2 (+0 padding)"),
    (lambda: F.max_pool2d(rand(1, 1, 5, 2), 3),
     "kernel 3 is larger than the input's width 2 (+0 padding)"),
    (lambda: nn.Conv2d(1, 1, 9)(rand(1, 1, 8, 9)),
     "kernel 9 is larger than the input's height 8 (+0 padding)"),
    (lambda: F.conv_transpose2d(rand(1, 2, 3, 1), rand(2, 1, 2, 2), padding=(0, 2)),
     "transposed convolution output size would be -2 (< 1) along the width; reduce padding"),
]


@pytest.mark.parametrize("k", range(len(KERNEL_MESSAGES)))
def test_kernel_larger_than_input_reads_plainly(k: int) -> None:
    call, message = KERNEL_MESSAGES[k]
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)

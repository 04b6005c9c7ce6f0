"""Creation functions against torch (shapes, dtypes, values), the default random stream and
:class:`convprop.Generator`, the ``convprop.nn.functional`` alias, and every error rule."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import torch  # noqa: E402  (the real module, or a skip on first use)

import convprop as cp
import convprop.functional
import convprop.nn.functional as F
from convprop import nn


def same(ours: cp.Tensor, theirs) -> None:
    assert ours.shape == tuple(theirs.shape)
    assert "torch." + str(ours.dtype) == str(theirs.dtype)
    np.testing.assert_array_equal(ours.data, theirs.numpy())


# ------------------------------------------------------------ nn.functional alias
def test_nn_functional_is_the_same_implementation():
    assert F.conv2d is convprop.functional.conv2d
    assert F.__all__ == convprop.functional.__all__
    for name in convprop.functional.__all__:
        assert getattr(F, name) is getattr(convprop.functional, name), name
    assert cp.nn.functional is F


def test_names_added_to_functional_later_appear_in_nn_functional(monkeypatch):
    def brand_new(x):
        return x

    monkeypatch.setattr(convprop.functional, "brand_new", brand_new, raising=False)
    assert F.brand_new is brand_new
    assert "brand_new" in dir(F)
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        F.missing  # noqa: B018


# ---------------------------------------------------------------------- creation
@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("size", [(2, 3), ((2, 3),), ([4],), (0, 2), ((),)], ids=str)
def test_filled_tensors_match_torch(name, size):
    ours, theirs = getattr(cp, name)(*size), getattr(torch, name)(*size)
    assert ours.shape == tuple(theirs.shape) and ours.dtype == np.float32
    if name != "empty":
        same(ours, theirs)
    d = getattr(cp, name)(*size, dtype=cp.float64, requires_grad=True)
    assert d.dtype == np.float64 and d.requires_grad and d.is_leaf


@pytest.mark.parametrize("value", [1.5, 3, True, -2])
def test_full_infers_its_dtype_from_the_value(value):
    same(cp.full((2, 2), value), torch.full((2, 2), value))
    same(cp.full(3, value, dtype="float64"), torch.full((3,), value, dtype=torch.float64))


@pytest.mark.parametrize("args", [(5,), (2, 9), (2, 9, 3), (9, 2, -2), (0.5, 3), (1, 2.5, 0.5),
                                  (0, 1, 0.1), (-3.0, 3.0, 0.7), (3, 3)], ids=str)
def test_arange_matches_torch(args):
    same(cp.arange(*args), torch.arange(*args))
    same(cp.arange(*args, dtype=cp.float64), torch.arange(*args, dtype=torch.float64))


@pytest.mark.parametrize("args", [(0, 1, 5), (-2.5, 7, 11), (3, 3, 1), (0, 1, 0)], ids=str)
def test_linspace_matches_torch(args):
    ours = cp.linspace(*args, dtype=cp.float64)
    theirs = torch.linspace(*args, dtype=torch.float64)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=0, atol=1e-15)
    assert cp.linspace(0, 1, 3).dtype == np.float32


@pytest.mark.parametrize("nm", [(3,), (2, 4), (4, 2), (0,)], ids=str)
def test_eye_matches_torch(nm):
    same(cp.eye(*nm), torch.eye(*nm))


def test_like_functions_keep_shape_and_dtype():
    x = cp.tensor(np.arange(6.0).reshape(2, 3))
    i = cp.arange(4)
    for name in ("zeros_like", "ones_like", "empty_like"):
        ours, theirs = getattr(cp, name)(x), getattr(torch, name)(torch.from_numpy(x.data))
        assert ours.shape == (2, 3) and ours.dtype == np.float64 == theirs.numpy().dtype
        assert getattr(cp, name)(i).dtype == np.int64
        assert getattr(cp, name)(x, dtype=cp.float32).dtype == np.float32
    same(cp.full_like(x, 7), torch.full_like(torch.from_numpy(x.data), 7))
    same(cp.ones_like(i), torch.ones_like(torch.arange(4)))
    for name in ("rand_like", "randn_like"):
        r = getattr(cp, name)(x, requires_grad=True)
        assert r.shape == (2, 3) and r.dtype == np.float64 and r.requires_grad
        with pytest.raises(TypeError, match="floating"):
            getattr(cp, name)(i)
    with pytest.raises(TypeError, match="expected a Tensor"):
        cp.zeros_like(np.zeros(3))


def test_tensor_copies_and_from_numpy_shares_memory():
    a = np.zeros(3)
    t = cp.tensor(a)
    a[0] = 1
    assert t.data[0] == 0
    s = cp.from_numpy(a)
    assert s.dtype == np.float64
    a[1] = 2
    s.data[2] = 3
    np.testing.assert_array_equal(s.data, [1, 2, 3])
    np.testing.assert_array_equal(a, [1, 2, 3])
    assert cp.from_numpy(np.arange(3, dtype=np.int32)).dtype == np.int32
    t2 = cp.tensor(s)
    t2.data[0] = 9
    assert a[0] == 1


def test_tensor_with_requires_grad_is_a_leaf():
    t = cp.tensor([1.0, 2.0], requires_grad=True)
    (t * t).sum().backward()
    np.testing.assert_array_equal(t.grad, [2, 4])


def test_dtype_names_and_objects():
    assert cp.float32 == np.float32 and cp.float64 is np.dtype(np.float64)
    assert cp.float == cp.float32 and cp.double == cp.float64 and cp.long == cp.int64
    assert cp.zeros(2, dtype="float").dtype == np.float32  # torch's "float" is float32
    assert cp.zeros(2, dtype="torch.float64").dtype == np.float64
    assert cp.zeros(2, dtype=torch.float64).dtype == np.float64
    assert cp.zeros(2, dtype=torch.int64).dtype == np.int64
    assert cp.zeros(2, dtype=cp.bool).dtype == np.bool_
    assert cp.tensor([1, 2], dtype=float).dtype == np.float64  # Python's float is double


def test_default_dtype_can_be_changed_and_restored():
    assert cp.get_default_dtype() == np.float32
    try:
        cp.set_default_dtype(cp.float64)
        assert cp.tensor(1.5).dtype == np.float64
        assert cp.zeros(2).dtype == np.float64 and cp.rand(2).dtype == np.float64
        assert cp.arange(0.0, 1.0, 0.5).dtype == np.float64
        assert (cp.arange(3) / 2).dtype == np.float64
    finally:
        cp.set_default_dtype(cp.float32)
    assert cp.tensor(1.5).dtype == np.float32
    with pytest.raises(TypeError, match="floating"):
        cp.set_default_dtype(cp.int64)


# ---------------------------------------------------------------- the random stream
def draws(generator=None):
    return [cp.rand(3, generator=generator).data, cp.randn(2, 2, generator=generator).data,
            cp.randint(0, 10, (5,), generator=generator).data,
            cp.randperm(6, generator=generator).data]


def assert_same_draws(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_manual_seed_reproduces_every_draw():
    cp.manual_seed(123)
    first = draws()
    cp.manual_seed(123)
    assert_same_draws(first, draws())
    cp.manual_seed(124)
    assert not np.array_equal(first[0], draws()[0])
    assert cp.initial_seed() == 124


def test_one_stream_drives_creation_init_and_dropout():
    """A seed reproduces a whole run: model init, dropout masks and tensors interleaved."""
    def run():
        cp.manual_seed(7)
        model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
        x = cp.randn(5, 4)
        y = model(x)
        return [p.data.copy() for p in model.parameters()] + [x.data, y.data, cp.rand(2).data]

    a, b = run(), run()
    assert_same_draws(a, b)
    nn.init.manual_seed(7)  # the same stream under its nn.init name
    w = nn.Linear(4, 3).weight.data
    np.testing.assert_array_equal(w, a[0])
    cp.manual_seed(7)
    assert nn.init.generator() is cp.random.default_generator.numpy_generator()
    mask_a = F.dropout(cp.ones(50), 0.5).data
    cp.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(cp.ones(50), 0.5).data, mask_a)


def test_generator_objects_are_independent_streams():
    g1, g2 = cp.Generator().manual_seed(5), cp.Generator().manual_seed(5)
    cp.manual_seed(0)
    default_before = cp.get_rng_state()
    assert_same_draws(draws(g1), draws(g2))
    np.testing.assert_array_equal(cp.get_rng_state().data, default_before.data)
    assert cp.Generator().initial_seed() == torch.Generator().initial_seed()
    mask1 = F.dropout(cp.ones(40), 0.5, generator=cp.Generator().manual_seed(1)).data
    mask2 = F.dropout(cp.ones(40), 0.5, generator=cp.Generator().manual_seed(1)).data
    np.testing.assert_array_equal(mask1, mask2)


def test_state_round_trips_and_seed_is_fresh():
    g = cp.Generator().manual_seed(3)
    cp.randn(7, generator=g)  # leave a cached half-draw behind, if any
    state = g.get_state()
    assert state.dtype == np.uint8 and state.shape == (37,)
    a = draws(g)
    g.set_state(state)
    assert_same_draws(a, draws(g))
    cp.set_rng_state(state)
    assert_same_draws(a, draws())
    s1, s2 = cp.random.seed(), cp.random.seed()  # cp.seed is the founding document's module
    assert s1 != s2 and cp.initial_seed() == s2
    from convprop import seed as pipeline  # the founding pipeline keeps its module name

    assert hasattr(pipeline, "DEFAULT_STEPS")


def test_rand_dtypes_share_the_stream_and_ranges_hold():
    cp.manual_seed(1)
    r64 = cp.rand(1000, dtype=cp.float64).data
    cp.manual_seed(1)
    r32 = cp.rand(1000).data
    assert r32.dtype == np.float32
    np.testing.assert_array_equal(r32, np.minimum(r64.astype(np.float32), np.float32(1 - 2**-24)))
    assert 0 <= r64.min() and r64.max() < 1 and r32.max() < 1
    z = cp.randn(20000, dtype=cp.float64).data
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    k = cp.randint(3, 7, (1000,)).data
    assert k.dtype == np.int64 and set(np.unique(k)) == {3, 4, 5, 6}
    assert cp.randint(4, (3, 2)).shape == (3, 2)
    assert cp.randint(2, size=(3,)).data.max() < 2
    p = cp.randperm(10)
    assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(10))
    assert cp.randn(2, 3, requires_grad=True).requires_grad


# ------------------------------------------------------------------ error rules
@pytest.mark.parametrize("call, error, match", [
    (lambda: cp.zeros(2, -1), ValueError, "sizes must be >= 0"),
    (lambda: cp.ones(2.5), TypeError, "size must be integers"),
    (lambda: cp.zeros(), TypeError, "missing the size"),
    (lambda: cp.zeros(2, device="cuda"), ValueError, "device 'cuda'"),
    (lambda: cp.tensor([1.0], device="cuda:0"), ValueError, "device 'cuda:0'"),
    (lambda: cp.randn(2, device="mps"), ValueError, "device 'mps'"),
    (lambda: cp.zeros(2, dtype="complex64"), TypeError, "not supported"),
    (lambda: cp.zeros(2, dtype=np.complex64), TypeError, "real number type"),
    (lambda: cp.arange(0, 5, 0), ValueError, "step must be non-zero"),
    (lambda: cp.arange(5, 0, 1), ValueError, "inconsistent"),
    (lambda: cp.linspace(0, 1, -1), ValueError, "steps must be a non-negative int"),
    (lambda: cp.rand(2, dtype=cp.int64), TypeError, "dtype must be floating"),
    (lambda: cp.randn(2, dtype="long"), TypeError, "dtype must be floating"),
    (lambda: cp.randint(5, 5, (2,)), ValueError, "low must be < high"),
    (lambda: cp.randint(5), TypeError, r"\(high, size\)"),
    (lambda: cp.randperm(-1), ValueError, "sizes must be >= 0"),
    (lambda: cp.zeros(2, dtype=cp.int64, requires_grad=True), TypeError, "require gradients"),
    (lambda: cp.arange(3, requires_grad=True), TypeError, "require gradients"),
    (lambda: cp.from_numpy([1, 2]), TypeError, "expected an np.ndarray"),
    (lambda: cp.from_numpy(np.array(["a"])), TypeError, "real numbers"),
    (lambda: cp.tensor([1j]), TypeError, "real numbers"),
    (lambda: cp.manual_seed(-1), ValueError, "seed must be >= 0"),
    (lambda: cp.manual_seed(1.5), TypeError, "seed must be an int"),
    (lambda: cp.Generator("cuda"), ValueError, "device 'cuda'"),
    (lambda: cp.Generator().set_state(np.zeros(5, np.uint8)), ValueError, "37 bytes"),
    (lambda: cp.rand(2, generator=np.float64(1)), TypeError, "convprop.Generator"),
    (lambda: F.dropout(cp.ones(2), 0.5, generator="seed"), TypeError, "convprop.Generator"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_error_rules(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("name", ["uniform_", "normal_", "trunc_normal_", "xavier_uniform_",
                                  "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
                                  "orthogonal_"])
def test_init_functions_take_a_generator_as_torch(name):
    fn = getattr(nn.init, name)
    w1, w2 = cp.zeros(4, 3), cp.zeros(4, 3)
    cp.manual_seed(0)
    before = cp.get_rng_state().data
    fn(w1, generator=cp.Generator().manual_seed(9))
    fn(w2, generator=cp.Generator().manual_seed(9))
    np.testing.assert_array_equal(w1.data, w2.data)
    assert w1.data.any()
    np.testing.assert_array_equal(cp.get_rng_state().data, before)  # default stream untouched
    getattr(torch.nn.init, name)(torch.zeros(4, 3), generator=torch.Generator())  # same spelling


def test_star_import_leaves_python_builtins_alone():
    namespace: dict = {}
    exec("from convprop import *", namespace)
    for name in ("sum", "max", "min", "abs", "any", "all", "pow", "bool", "float"):
        assert name not in namespace, name
        assert hasattr(cp, name), name  # still reachable as cp.<name>, as torch.<name>
    assert "tensor" in namespace and "manual_seed" in namespace

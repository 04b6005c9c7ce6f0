"""The autograd Tensor: every op's values and gradients against PyTorch (float64),
broadcasting, accumulation, ``no_grad``, dtype rules, numerical edge cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from oracle import torch  # noqa: E402  (the real module, or a skip on first use)

import convprop as cp
import convprop.functional as F

RNG = np.random.default_rng(0)


def positive(*shape):
    return RNG.uniform(0.5, 2.0, shape)


def normal(*shape):
    return RNG.standard_normal(shape)


def compare(fn, *arrays, torch_fn=None, rtol=1e-12, atol=1e-12):
    """Run ``fn`` on convprop Tensors and (``torch_fn`` or ``fn``) on torch tensors;
    compare the output and every input's gradient for a random upstream gradient."""
    ours = [cp.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ours)
    ty = (torch_fn or fn)(*theirs)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=rtol, atol=atol)
    assert y.dtype == np.float64
    g = RNG.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.from_numpy(g))
    for i, (a, t) in enumerate(zip(ours, theirs)):
        assert a.grad is not None and a.grad.shape == a.shape, i
        np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=rtol, atol=atol, err_msg=str(i))


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}
# shape pairs that broadcast: same, scalar-like, trailing, stretched ones, rank-extended
SHAPES = [((3, 4), (3, 4)), ((3, 4), ()), ((3, 4), (4,)), ((2, 1, 4), (3, 1)),
          ((1, 4), (3, 1)), ((4,), (2, 3, 4))]


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_binary_ops_and_unbroadcast(op, shapes):
    compare(BINARY[op], positive(*shapes[0]), positive(*shapes[1]))


@pytest.mark.parametrize("op", ["radd", "rsub", "rmul", "rdiv", "rpow", "scalar_pow", "neg"])
def test_reflected_scalar_and_unary_minus(op):
    fns = {
        "radd": lambda a: 2.5 + a, "rsub": lambda a: 2.5 - a, "rmul": lambda a: 2.5 * a,
        "rdiv": lambda a: 2.5 / a, "rpow": lambda a: 2.5**a, "scalar_pow": lambda a: a**3.5,
        "neg": lambda a: -a,
    }
    compare(fns[op], positive(3, 2))


def test_ndarray_operand_on_the_left_defers_to_tensor():
    a = positive(3)
    x = cp.tensor(positive(3), requires_grad=True)
    y = a * x + a - x / a
    assert isinstance(y, cp.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, a - 1 / a)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)),
                                    ((4,), (4,)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 2)),
                                    ((3, 4), (2, 4, 2))], ids=str)
def test_matmul(shapes):
    compare(lambda a, b: a @ b, normal(*shapes[0]), normal(*shapes[1]))


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_and_mean(axis, keepdims):
    x = normal(2, 3, 4)

    def torch_kwargs():
        return {"dim": tuple(range(x.ndim)) if axis is None else axis, "keepdim": keepdims}

    compare(lambda a: a.sum(axis=axis, keepdims=keepdims) if isinstance(a, cp.Tensor)
            else a.sum(**torch_kwargs()), x)
    compare(lambda a: a.mean(axis=axis, keepdims=keepdims) if isinstance(a, cp.Tensor)
            else a.mean(**torch_kwargs()), x)


def test_shape_ops():
    x = normal(2, 3, 4)
    compare(lambda a: a.reshape(4, 6) * 2, x)
    compare(lambda a: a.reshape((6, 4)).sum(axis=0) if isinstance(a, cp.Tensor)
            else a.reshape(6, 4).sum(dim=0), x)
    compare(lambda a: a.transpose(0, 2), x)
    compare(lambda a: a.permute(2, 0, 1), x)
    compare(lambda a: a.permute((1, 2, 0)) if isinstance(a, cp.Tensor) else a.permute(1, 2, 0), x)


@pytest.mark.parametrize("index", [
    (0,), (slice(1, None),), (slice(None), 1), (Ellipsis, slice(None, None, 2)),
    (slice(None), slice(0, 3), 2), ([0, 1, 0],), (slice(None), [2, 2, 0]),
], ids=str)
def test_slicing(index):
    """Basic and advanced indexing; repeated indices must accumulate their gradients."""
    x = normal(2, 3, 4)
    idx = index if len(index) > 1 else index[0]

    def torch_index(i):
        return torch.tensor(i) if isinstance(i, list) else i

    tidx = tuple(torch_index(i) for i in index) if len(index) > 1 else torch_index(index[0])
    compare(lambda a: a[idx] if isinstance(a, cp.Tensor) else a[tidx], x)


def test_boolean_mask_and_new_axes():
    x = normal(3, 4)
    mask = x > 0
    compare(lambda a: a[mask] if isinstance(a, cp.Tensor) else a[torch.from_numpy(mask)], x)
    compare(lambda a: a[None, :, None] * 2, x)


@pytest.mark.parametrize("name", ["exp", "log", "sigmoid", "tanh", "relu"])
def test_unary_functions(name):
    x = positive(3, 4) if name == "log" else normal(3, 4) * 3
    compare(getattr(F, name), x, torch_fn=getattr(torch, name))
    compare(lambda a: getattr(a, name)(), x)


def test_relu_gradient_at_zero_is_zero():
    x = cp.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 0, 1])


def test_composite_expression_matches_torch():
    """A micrograd-style expression that reuses nodes (gradients meet at shared inputs)."""
    def expr(a, b, c):
        d = a * b + (b**3).tanh()
        e = (d - c).sigmoid() * d
        f = (e / (c * c + 1)).exp() + (a * a + 1).log()
        return (f * f + e).sum()

    compare(expr, normal(4), normal(4), normal(4))


def test_pow_edge_gradients_match_torch():
    """a**0 has gradient 0 (also at a = 0); 0**e with e >= 0 has d/de = 0."""
    compare(lambda a: a**0, np.array([0.0, 1.5, -2.0]))
    compare(lambda a, e: a**e, np.array([0.0, 0.0, 2.0]), np.array([2.0, 0.0, 1.5]))


# ------------------------------------------------------------------ graph mechanics
def test_gradients_accumulate_across_backward_calls():
    x = cp.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)  # the graph is freed without it, as in PyTorch
    np.testing.assert_array_equal(x.grad, [2, 4])
    y.backward()
    np.testing.assert_array_equal(x.grad, [4, 8])
    (3 * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [7, 11])


def test_same_tensor_used_twice_in_one_op():
    x = cp.tensor(np.array([3.0]), requires_grad=True)
    (x * x + x).backward()
    np.testing.assert_array_equal(x.grad, [7])


def test_backward_with_explicit_gradient():
    x = cp.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * 2).backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [2, 0, -2])


def test_grad_mode_is_per_thread():
    """As in torch, ``no_grad`` in one thread leaves other threads recording, and
    interleaved enter/exit across threads restores each thread's own mode."""
    import threading

    x = cp.tensor(np.ones(3), requires_grad=True)
    a_entered, b_entered, a_exited = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def worker_a():
        with cp.no_grad():
            a_entered.set()
            b_entered.wait(5)
        a_exited.set()
        seen["a_after"] = cp.is_grad_enabled()

    def worker_b():
        a_entered.wait(5)
        with cp.no_grad():
            b_entered.set()
            a_exited.wait(5)  # A leaves no_grad while B is still inside
        seen["b_after"] = cp.is_grad_enabled()

    def fresh():
        seen["fresh"] = cp.is_grad_enabled()

    ta, tb = threading.Thread(target=worker_a), threading.Thread(target=worker_b)
    ta.start()
    tb.start()
    assert b_entered.wait(5)
    # both workers are inside no_grad (A may be leaving): this thread still records
    assert cp.is_grad_enabled()
    assert (x * 2).requires_grad
    ta.join(5)
    tb.join(5)
    assert seen == {"a_after": True, "b_after": True}
    assert cp.is_grad_enabled()
    with cp.no_grad():
        t = threading.Thread(target=fresh)
        t.start()
        t.join(5)
    assert seen["fresh"] is True  # new threads start with grad enabled


def test_no_grad_records_nothing():
    x = cp.tensor(np.ones(3), requires_grad=True)
    with cp.no_grad():
        y = x * 2 + 1
        assert not cp.is_grad_enabled()
    assert cp.is_grad_enabled()
    assert not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    assert x.grad is None
    with cp.no_grad(), cp.enable_grad():
        z = x * 2
    assert z.requires_grad


def test_detach_cuts_the_graph():
    x = cp.tensor(np.array([2.0]), requires_grad=True)
    y = x * x
    z = y.detach() * x  # d/dx = y (constant), not 3x^2
    z.backward()
    np.testing.assert_array_equal(x.grad, [4.0])
    assert not y.detach().requires_grad


def test_only_leaves_that_require_grad_get_gradients():
    a = cp.tensor(np.ones(2), requires_grad=True)
    b = cp.tensor(np.ones(2))
    (a * b).sum().backward()
    assert a.grad is not None and b.grad is None


def test_basic_attributes():
    x = cp.tensor(np.arange(6.0).reshape(2, 3))
    assert x.shape == (2, 3) and x.ndim == 2 and x.dtype == np.float64
    assert isinstance(x.numpy(), np.ndarray)
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))
    assert x.sum().item() == 15.0
    assert isinstance(x.sum().item(), float)
    with pytest.raises(ValueError, match="item"):
        x.item()


def test_tensor_copies_its_data():
    a = np.zeros(3)
    x = cp.tensor(a, requires_grad=True)
    a[0] = 5
    assert x.data[0] == 0


# ------------------------------------------------------------------------ dtypes
def test_float32_stays_float32_through_every_op():
    a = cp.tensor(np.ones((2, 3), np.float32) * 0.5, requires_grad=True)
    b = cp.tensor(np.ones((3,), np.float32) * 2, requires_grad=True)
    m = cp.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    steps = [a + b, a - 1.5, 2 * a, a / b, 1 / a, a**2, a**np.float64(2.5), 2.0**a, -a,
             a @ m, a.sum(axis=0), a.mean(), a.reshape(3, 2), a.permute(1, 0), a[0, 1:],
             a.exp(), a.log(), a.sigmoid(), a.tanh(), a.relu(), a * np.float64(3),
             a + np.ones(3, np.float32)]
    for i, y in enumerate(steps):
        assert y.dtype == np.float32, (i, y.dtype)
    total = steps[0].sum()
    for y in steps[1:]:
        total = total + y.sum()
    assert total.dtype == np.float32
    total.backward()
    for t in (a, b, m):
        assert t.grad.dtype == np.float32


def test_float64_stays_float64():
    a = cp.tensor(np.ones(3), requires_grad=True)
    y = (a * 2.0 + 1).sigmoid().sum()
    assert y.dtype == np.float64
    y.backward()
    assert a.grad.dtype == np.float64


@pytest.mark.parametrize("data", [np.arange(3), np.array([True, False]), [1, 2], 3,
                                  np.arange(3, dtype=np.uint8), [0.5, 1.5], 2.5])
def test_tensor_constructor_makes_integer_bool_and_python_data_float32(data):
    """``Tensor(data)`` converts as ``torch.Tensor(data)`` does: always the default dtype."""
    x = cp.Tensor(data)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.data, np.asarray(data, dtype=np.float32))


@pytest.mark.parametrize("data", [np.arange(3), np.array([True, False]), [1, 2], 3, [True],
                                  np.arange(3, dtype=np.uint8), [0.5, 1.5], 2.5, [1, 2.5],
                                  np.float64(2.0), np.ones(2, np.float16)])
def test_tensor_function_infers_dtypes_as_torch(data):
    """``cp.tensor(data)`` infers as ``torch.tensor(data)``: ints int64, bools bool,
    Python floats float32, NumPy data keeps its dtype."""
    x = cp.tensor(data)
    want = torch.tensor(data) if not isinstance(data, np.ndarray) else torch.from_numpy(data)
    assert str(want.dtype) == "torch." + {"float": "float32"}.get(str(x.dtype), str(x.dtype))
    np.testing.assert_array_equal(x.data, want.numpy())


@pytest.mark.parametrize("data", [np.array([1 + 2j]), np.array(["a"]), np.array([object()]),
                                  [1j], "text"])
def test_complex_object_and_string_data_are_rejected(data):
    with pytest.raises(TypeError, match="real numbers"):
        cp.tensor(data)


def test_dtype_argument():
    assert cp.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert cp.tensor([1.5, 2], dtype="long").dtype == np.int64
    with pytest.raises(TypeError, match="floating"):
        cp.Tensor([1, 2], dtype=np.int64)
    with pytest.raises(TypeError, match="require gradients"):
        cp.tensor([1, 2], requires_grad=True)


# ----------------------------------------------------------------- numerics
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_huge_inputs(dtype):
    z = cp.tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow RuntimeWarning fails the test
        o = F.sigmoid(z)
        o.sum().backward()
    assert o.dtype == dtype and z.grad.dtype == dtype
    want = torch.sigmoid(torch.tensor(z.data.astype(np.float64))).numpy()
    np.testing.assert_allclose(o.data, want, rtol=1e-6 if dtype == np.float32 else 1e-15)
    assert o.data[0] == 0.0 and o.data[-1] == 1.0 and o.data[2] == 0.5
    assert np.all(np.isfinite(z.grad)) and z.grad[0] == 0.0 and z.grad[-1] == 0.0


def test_tanh_and_exp_of_huge_inputs_do_not_crash():
    z = cp.tensor(np.array([-1000.0, 1000.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = F.tanh(z)
        t.sum().backward()
        e = F.exp(z)
    np.testing.assert_array_equal(t.data, [-1, 1])
    np.testing.assert_array_equal(e.data, [0, np.inf])


def test_nan_and_inf_propagate_like_ieee():
    """Ops with NaN/Inf give NaN/Inf (as PyTorch), never an exception."""
    data = np.array([np.nan, np.inf, -np.inf, 1.0])
    for name in ("sigmoid", "tanh", "relu", "exp"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # IEEE invalid-operation warnings are fine here
            ours = getattr(F, name)(cp.tensor(data)).data
        theirs = getattr(torch, name)(torch.tensor(data)).numpy()
        np.testing.assert_array_equal(ours, theirs, err_msg=name)
    x = cp.tensor(data, requires_grad=True)
    y = x * 2 + 1
    y.sum().backward()
    assert np.isnan(y.data[0]) and y.data[1] == np.inf and y.data[2] == -np.inf
    np.testing.assert_array_equal(x.grad, [2, 2, 2, 2])


def test_nan_through_convolution():
    x = np.zeros((1, 1, 5))
    x[0, 0, 2] = np.nan
    y = F.conv1d(x, np.ones((1, 1, 2)))
    np.testing.assert_array_equal(np.isnan(y.data[0, 0]), [False, True, True, False])
    xt = cp.tensor(x, requires_grad=True)
    F.conv1d(xt, np.ones((1, 1, 2))).sum().backward()
    np.testing.assert_array_equal(xt.grad[0, 0], [1, 2, 2, 2, 1])

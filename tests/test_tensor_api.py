"""The Tensor API a PyTorch user reaches for, against torch in float64 (values and gradients
to 1e-12), with finite-difference gradchecks and one test per error rule: reductions,
extremes, joins, shape ops, indexing and assignment, where/clamp, comparisons, dtype
promotion, conversions, and the mixed-dtype refusal of linear and matmul."""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracle import require_torch, torch  # noqa: E402  (the real module, or a skip on first use)

import convprop as cp
import convprop.nn.functional as F
from convprop import nn

RNG = np.random.default_rng(0)
TOL = {"rtol": 1e-12, "atol": 1e-12}


def normal(*shape):
    return RNG.standard_normal(shape)


def tied(*shape):
    """Small integers as floats: many ties, to test how extremes share the gradient."""
    return RNG.integers(0, 3, shape).astype(np.float64)


def run(fn, arrays, torch_fn=None):
    """``fn`` on convprop and (``torch_fn`` or ``fn``) on torch; returns both outputs and
    both sets of input gradients for one random upstream gradient per float output."""
    ours = [cp.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = fn(*ours), (torch_fn or fn)(*theirs)
    ys = list(y) if isinstance(y, (tuple, list)) else [y]
    tys = list(ty) if isinstance(ty, (tuple, list)) else [ty]
    assert len(ys) == len(tys)
    loss, tloss = None, None
    for a, b in zip(ys, tys):
        assert a.shape == tuple(b.shape), (a.shape, b.shape)
        assert "torch." + str(a.dtype) == str(b.dtype), (a.dtype, b.dtype)
        np.testing.assert_allclose(a.data, b.detach().numpy(), **TOL)
        if a.requires_grad:
            g = RNG.standard_normal(a.shape)
            term, tterm = (a * g).sum(), (b * torch.from_numpy(g)).sum()
            loss = term if loss is None else loss + term
            tloss = tterm if tloss is None else tloss + tterm
    if loss is not None:
        loss.backward()
        tloss.backward()
        for i, (a, t) in enumerate(zip(ours, theirs)):
            want = np.zeros(a.shape) if t.grad is None else t.grad.numpy()
            got = np.zeros(a.shape) if a.grad is None else a.grad
            np.testing.assert_allclose(got, want, err_msg=f"input {i}", **TOL)
    return ys


def gradcheck(fn, *arrays):
    assert cp.gradcheck(fn, *[cp.tensor(a, requires_grad=True) for a in arrays])


# ------------------------------------------------------------------- reductions
DIMS = [None, 0, -1, (0, 2)]


@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "logsumexp", "amax", "amin"])
def test_reductions_match_torch(name, dim, keepdim):
    x = tied(2, 3, 4) if name in ("amax", "amin") else normal(2, 3, 4)
    if name == "logsumexp":
        d = (0, 1, 2) if dim is None else dim
        run(lambda a: a.logsumexp(d, keepdim), [x])
    elif name in ("amax", "amin"):
        d = () if dim is None else dim
        run(lambda a: getattr(a, name)(d, keepdim), [x])
    else:
        run(lambda a: getattr(a, name)(dim=dim, keepdim=keepdim), [x])


@pytest.mark.filterwarnings("ignore")  # correction 2 over 2 elements: no degrees of freedom
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("kind", [{"correction": 0}, {"correction": 1}, {"correction": 2},
                                  {"unbiased": False}, {}], ids=str)
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_and_std_match_torch(name, dim, keepdim, kind):
    run(lambda a: getattr(a, name)(dim, keepdim=keepdim, **kind), [normal(2, 3, 4)])


@pytest.mark.parametrize("p", [2, 1, 3, 0.5, 0, math.inf, -math.inf, "fro"], ids=str)
@pytest.mark.parametrize("dim", [None, 1, (0, 2)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_norm_matches_torch(p, dim, keepdim):
    if p == "fro" and dim == 1:
        pytest.skip("torch's 'fro' needs None or two dims")
    x = normal(2, 3, 4)
    if abs(p) == math.inf if p != "fro" else False:
        x = tied(2, 3, 4) - 1  # ties in |x| share the gradient
    run(lambda a: a.norm(p, dim, keepdim), [x])


def test_norm_gradient_is_zero_where_the_norm_is_zero():
    x = cp.tensor(np.zeros((2, 3)), requires_grad=True)
    x.norm(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad, 0)


def test_infinities_and_nan_in_reductions_follow_torch():
    x = np.array([[-np.inf, -np.inf], [1.0, np.inf], [0.5, -np.inf]])
    with np.errstate(invalid="ignore"):
        ours = run(lambda a: a.logsumexp(1), [x])
    assert np.isneginf(ours[0].data[0]) and np.isposinf(ours[0].data[1])
    nan = np.array([1.0, np.nan, 3.0])
    v, i = cp.tensor(nan).max(0)
    assert np.isnan(v.item()) and i.item() == 1 == torch.tensor(nan).max(0).indices.item()
    assert np.isnan(cp.tensor(nan).amax().item()) and cp.tensor(nan).argmax().item() == 1


def test_iterating_a_tensor_gives_its_rows():
    x = cp.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(x)
    assert len(rows) == 3 and rows[1].tolist() == [2.0, 3.0]
    sum(r * k for k, r in enumerate(rows)).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0], [1, 1], [2, 2]])
    with pytest.raises(TypeError, match="0-d"):
        iter(cp.tensor(1.0))


def test_sum_dtypes_and_numpy_spellings():
    b = cp.tensor([[True, False], [True, True]])
    run(lambda a: a.sum(axis=1, keepdims=True), [normal(2, 3)],
        torch_fn=lambda a: a.sum(dim=1, keepdim=True))
    assert b.sum().dtype == np.int64 and b.sum().item() == 3
    assert cp.arange(4).sum(dtype=cp.float64).dtype == np.float64
    assert cp.arange(4).mean(dtype=cp.float64).item() == 1.5


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim_return_values_and_first_indices(name, dim, keepdim):
    x = tied(3, 4, 5)
    values, indices = run(lambda a: getattr(a, name)(dim, keepdim), [x])
    tv = getattr(torch.tensor(x), name)(dim, keepdim)
    np.testing.assert_array_equal(indices.data, tv.indices.numpy())
    out = getattr(cp.tensor(x), name)(dim=dim, keepdim=keepdim)
    assert out.values.shape == out.indices.shape and out.indices.dtype == np.int64


@pytest.mark.parametrize("name", ["max", "min"])
def test_full_max_min_split_the_gradient_among_ties(name):
    run(lambda a: getattr(a, name)(), [tied(4, 5)])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_and_max_of_two_tensors(name):
    a, b = tied(3, 4), tied(4)  # ties get half the gradient each, broadcasting reduces
    run(lambda x, y: getattr(x, name)(y), [a, b])
    run(lambda x, y: getattr(x, name[:3])(y), [a, b],
        torch_fn=lambda x, y: getattr(torch, name)(x, y))


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dim", [None, 0, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_argmin(name, dim, keepdim):
    x = tied(3, 4)
    ours = getattr(cp.tensor(x), name)(dim, keepdim)
    theirs = getattr(torch.tensor(x), name)(dim, keepdim)
    assert ours.dtype == np.int64 and ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_any_all():
    x = cp.tensor([[0.0, 1.0], [0.0, 0.0]])
    assert x.any().item() is True and x.all().item() is False
    np.testing.assert_array_equal(x.any(dim=1).data, [True, False])


def test_reductions_pass_gradcheck():
    x = normal(3, 4)
    for fn in (lambda a: a.var(1), lambda a: a.std(0, correction=0), lambda a: a.norm(3, 1),
               lambda a: a.logsumexp(1), lambda a: a.max(1).values, lambda a: a.amax(0),
               lambda a: a.mean((0, 1), keepdim=True), lambda a: a.norm()):
        gradcheck(fn, x)


# --------------------------------------------------------------- where and clamp
def test_where_routes_gradients_and_broadcasts():
    c = normal(3, 4) > 0
    run(lambda a, b: cp.where(cp.tensor(c), a, b), [normal(3, 4), normal(4)],
        torch_fn=lambda a, b: torch.where(torch.from_numpy(c), a, b))
    run(lambda a, b: a.where(cp.tensor(c), b), [normal(3, 4), normal(3, 1)],
        torch_fn=lambda a, b: a.where(torch.from_numpy(c), b))
    assert cp.where(cp.tensor([True, False]), 1.0, 0.0).dtype == np.float32
    gradcheck(lambda a: cp.where(a > 0, a * a, -a), normal(5))


@pytest.mark.parametrize("bounds", [(-0.5, 0.5), (None, 0.3), (-0.2, None), (0.5, -0.5)],
                         ids=str)
def test_clamp_with_numbers(bounds):
    run(lambda a: a.clamp(*bounds), [normal(4, 5)])
    run(lambda a: a.clamp(min=bounds[0], max=bounds[1]), [normal(4, 5)])


def test_clamp_with_tensor_bounds():
    lo, hi = normal(5) - 0.5, normal(4, 1) + 0.5
    run(lambda a, b, c: a.clamp(b, c), [normal(4, 5), np.minimum(lo, hi.min()), hi])
    run(lambda a, b: a.clamp(max=b), [normal(4, 5), hi])
    assert cp.arange(5).clamp(1, 3).dtype == np.int64
    np.testing.assert_array_equal(cp.arange(5).clamp(1, 3).data, [1, 1, 2, 3, 3])


# ------------------------------------------------------------------------ joins
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_and_stack(dim):
    shapes = [(2, 3, 4), (2, 3, 4)]
    arrays = [normal(*s) for s in shapes]
    run(lambda *t: cp.cat(list(t), dim) if isinstance(t[0], cp.Tensor) else torch.cat(t, dim),
        arrays)
    run(lambda *t: cp.stack(t, dim) if isinstance(t[0], cp.Tensor) else torch.stack(t, dim),
        arrays)
    ragged = [normal(2, 1, 4), normal(2, 3, 4), normal(2, 2, 4)]
    run(lambda *t: cp.cat(t, 1) if isinstance(t[0], cp.Tensor) else torch.cat(t, 1), ragged)


def test_cat_promotes_dtypes_as_torch():
    out = cp.cat([cp.arange(3), cp.tensor([0.5], dtype=cp.float32)])
    theirs = torch.cat([torch.arange(3), torch.tensor([0.5])])
    assert "torch." + str(out.dtype) == str(theirs.dtype)
    np.testing.assert_array_equal(out.data, theirs.numpy())


@pytest.mark.parametrize("arg, dim", [(2, 0), (3, 1), ([1, 4, 0, 2], 1), ((5, 2), -1)], ids=str)
def test_split(arg, dim):
    x = normal(4, 7, 7)
    run(lambda a: a.split(arg, dim), [x])


@pytest.mark.parametrize("chunks, n", [(3, 5), (4, 6), (2, 2), (5, 3), (1, 4)])
def test_chunk(chunks, n):
    run(lambda a: a.chunk(chunks, 1), [normal(2, n)])
    run(lambda a: a.unbind(1), [normal(2, n)])


# ---------------------------------------------------------------------- shape ops
SHAPE_OPS = {
    "reshape": lambda a: a.reshape(4, -1),
    "reshape_tuple": lambda a: a.reshape((6, 4)),
    "view": lambda a: a.view(2, 12),
    "flatten": lambda a: a.flatten(),
    "flatten_1": lambda a: a.flatten(1),
    "flatten_0_1": lambda a: a.flatten(0, 1),
    "unflatten": lambda a: a.unflatten(2, (2, 2)),
    "unflatten_-1": lambda a: a.unflatten(-1, (-1, 2)),
    "squeeze_all": lambda a: a.reshape(2, 1, 3, 1, 4).squeeze(),
    "squeeze_dim": lambda a: a.reshape(2, 1, 3, 1, 4).squeeze(1),
    "squeeze_noop": lambda a: a.squeeze(0),
    "squeeze_dims": lambda a: a.reshape(2, 1, 3, 1, 4).squeeze((1, 3)),
    "unsqueeze": lambda a: a.unsqueeze(1),
    "unsqueeze_-1": lambda a: a.unsqueeze(-1),
    "expand": lambda a: a[:, :1, :].expand(2, 5, 4),
    "expand_-1": lambda a: a[:, :1, :].expand(3, -1, 6, 4),
    "repeat": lambda a: a.repeat(2, 1, 3),
    "repeat_new_dims": lambda a: a.repeat(2, 1, 2, 1),
    "permute": lambda a: a.permute(2, 0, 1),
    "transpose": lambda a: a.transpose(0, 2),
    "T": lambda a: a[0].T,
    "mT": lambda a: a.mT,
    "t": lambda a: a[0].t(),
    "narrow": lambda a: a.narrow(1, 1, 2),
    "expand_as": lambda a: a[:1].expand_as(a),
    "view_as": lambda a: a.view_as(a.flatten()),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_ops_match_torch(name):
    run(SHAPE_OPS[name], [normal(2, 3, 4)])


def test_shape_ops_pass_gradcheck():
    for name in ("repeat", "expand", "unflatten", "narrow", "permute"):
        gradcheck(SHAPE_OPS[name], normal(2, 3, 4))
    gradcheck(lambda a, b: cp.cat([a, b * 2], 1).split([1, 3, 2], 1)[1], normal(2, 2),
              normal(2, 4))
    gradcheck(lambda a, b: cp.stack([a, b], 0).chunk(2, 1)[0], normal(3), normal(3))


# ------------------------------------------------------------------------ indexing
INDEXES = {
    "int": (1,),
    "negative": (-1, slice(None), -2),
    "slices": (slice(None, None, 2), slice(1, None)),
    "ellipsis_none": (Ellipsis, None, 0),
    "repeated_ints": ([0, 1, 0, 0],),
    "two_arrays": ([0, 1, 1], slice(None), [3, 0, 3]),
    "array_then_slice": (slice(None), [2, 0, 2]),
}


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_indexing_matches_torch_and_accumulates_repeats(name):
    index = INDEXES[name]

    def ours(i):
        return cp.tensor(i) if isinstance(i, list) else i

    def theirs(i):
        return torch.tensor(i) if isinstance(i, list) else i

    run(lambda a: a[tuple(ours(i) for i in index)] if isinstance(a, cp.Tensor)
        else a[tuple(theirs(i) for i in index)], [normal(2, 3, 4)])


def test_boolean_tensor_masks_and_int_tensor_indices():
    x = normal(3, 4)
    run(lambda a: a[a > 0], [x])
    run(lambda a: a[(a > 0).any(1)], [x])
    idx = cp.tensor([2, 2, 0])
    run(lambda a: a[idx] if isinstance(a, cp.Tensor) else a[torch.tensor([2, 2, 0])], [x])
    gradcheck(lambda a: a[idx] * a[cp.tensor([0, 1])].sum(), x)


def test_assignment_without_gradients_writes_in_place_and_through_views():
    x = cp.zeros(2, 3)
    row = x[0]
    row[1] = 5  # a basic-index view shares the data, as in torch
    x[1, :] = cp.tensor([1.0, 2.0, 3.0])
    x[x > 2] = -1
    t = torch.zeros(2, 3)
    t[0][1] = 5
    t[1, :] = torch.tensor([1.0, 2.0, 3.0])
    t[t > 2] = -1
    np.testing.assert_array_equal(x.data, t.numpy())


def test_assignment_records_a_graph_like_torch():
    def fn(a, v, w):
        y = a * 1.0
        y[1:3] = v * 2
        y[0, [0, 2]] = w.sum()
        return y * y

    run(fn, [normal(4, 3), normal(2, 3), normal(3)])
    gradcheck(fn, normal(4, 3), normal(2, 3), normal(3))

    def fresh(v):
        out = cp.zeros(3, dtype=cp.float64) if isinstance(v, cp.Tensor) else torch.zeros(3,
                                                                                     dtype=v.dtype)
        out[1] = v[0] * 3
        return out

    run(fresh, [normal(2)])


def test_assignment_into_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    w = cp.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w[0] = 2.0
    with cp.no_grad():
        w[0] = 2.0
    np.testing.assert_array_equal(w.data, [2, 1, 1])


def test_backward_refuses_a_tensor_changed_after_use():
    w = cp.tensor(np.ones(3), requires_grad=True)
    a = cp.tensor(np.ones(3))
    y = (a * w).sum()
    a[0] = 5.0  # mul saved a: its gradient for w would be wrong
    with pytest.raises(RuntimeError, match="changed by an in-place assignment"):
        y.backward()


# ------------------------------------------------------------ comparisons and logic
@pytest.mark.parametrize("op", ["lt", "le", "gt", "ge", "eq", "ne"])
def test_comparisons_give_bool_tensors(op):
    a, b = tied(3, 4), tied(4)
    ours = getattr(cp.tensor(a), f"__{op}__")(cp.tensor(b))
    theirs = getattr(torch.tensor(a), f"__{op}__")(torch.tensor(b))
    assert isinstance(ours, cp.Tensor) and ours.dtype == np.bool_ and not ours.requires_grad
    np.testing.assert_array_equal(ours.data, theirs.numpy())
    np.testing.assert_array_equal(getattr(cp.tensor(a), op)(1.0).data,
                                  getattr(torch.tensor(a), op)(1.0).numpy())


def test_equality_with_non_numbers_is_false_as_torch():
    x = cp.zeros(2)
    assert (x == None) is False and (x != None) is True  # noqa: E711
    assert (x == "a") is False and (torch.zeros(2) == "a") is False
    assert x in [x] and x not in [None, "b"]


def test_logic_on_bool_tensors_and_truth_values():
    a, b = cp.tensor([True, False, True]), cp.tensor([True, True, False])
    np.testing.assert_array_equal((a & b).data, [True, False, False])
    np.testing.assert_array_equal((a | b).data, [True, True, True])
    np.testing.assert_array_equal((a ^ b).data, [False, True, True])
    np.testing.assert_array_equal((~a).data, [False, True, False])
    assert bool(cp.tensor([2.0]) > 1) and not cp.tensor(0.0)
    assert int(cp.tensor(3.7)) == 3 and float(cp.tensor([2.5])) == 2.5
    assert [10, 20, 30][cp.tensor(1)] == 20


@pytest.mark.parametrize("left, right", [
    (np.arange(3), np.ones(3, np.float32)), (np.arange(3), 2.5), (np.arange(3), 2),
    (np.ones(3, np.float32), np.array(1.0)), (np.ones(3, np.float32), np.float64(2)),
    (np.array([True, False]), 1), (np.array([True, False]), 1.5),
    (np.arange(3, dtype=np.int32), np.arange(3)), (np.arange(3, dtype=np.uint8), np.int8(1)),
    (np.arange(3, dtype=np.uint8), np.arange(3, dtype=np.int8)),
    (np.ones(2, np.float16), np.ones(2, np.float32)), (np.array(3), np.ones(2, np.float16)),
    (np.array(2.0), np.arange(2)),
], ids=str)
def test_type_promotion_follows_torch(left, right):
    def ours(v):
        return cp.from_numpy(v) if isinstance(v, np.ndarray) else v

    def theirs(v):
        return torch.from_numpy(v) if isinstance(v, np.ndarray) else v

    l_ours, l_theirs = ours(left), theirs(left)
    want = torch.result_type(l_theirs, theirs(right))
    assert "torch." + str(cp.result_type(l_ours, ours(right))) == str(want)
    for op in ("__add__", "__mul__", "__sub__"):
        if left.dtype == np.bool_ and op == "__sub__":
            continue
        got = getattr(l_ours, op)(ours(right))
        ref = getattr(l_theirs, op)(theirs(right))
        assert "torch." + str(got.dtype) == str(ref.dtype), op
        np.testing.assert_allclose(got.data, ref.numpy(), rtol=1e-6)
    div, tdiv = l_ours / ours(right), l_theirs / theirs(right)
    assert "torch." + str(div.dtype) == str(tdiv.dtype)


def test_integer_tensors_in_float_functions_and_no_graph():
    i = cp.arange(1, 4)
    for name in ("exp", "log", "sqrt", "sigmoid", "tanh"):
        out = getattr(i, name)()
        assert out.dtype == getattr(torch.arange(1, 4), name)().numpy().dtype, name
    assert (i * 2).dtype == np.int64 and (i**2).dtype == np.int64 and (i**0.5).dtype == np.float32
    x = cp.tensor([1.5, 2.5], requires_grad=True)
    assert not x.long().requires_grad and not (x > 1).requires_grad
    assert x.argmax().dtype == np.int64 and not x.argmax().requires_grad


# --------------------------------------------------------------------- conversions
def test_to_dtype_device_and_friends():
    x = cp.tensor([1.25, 2.5], requires_grad=True)
    assert x.to("cpu") is x and x.cpu() is x and x.to(cp.float32) is x
    assert x.to("cpu", copy=True) is not x
    d = x.to(cp.float64)
    assert d.dtype == np.float64 and d.requires_grad
    (d * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2, 2])
    assert x.double().dtype == np.float64 and x.double().float().dtype == np.float32
    assert x.to("torch.float64").dtype == np.float64 and x.to(dtype="double").dtype == np.float64
    assert x.to(torch.float64).dtype == np.float64 and x.to("cpu", cp.float64).dtype == np.float64
    assert x.to(cp.arange(2)).dtype == np.int64 and x.half().dtype == np.float16
    assert x.to(torch.device("cpu")) is x and x.device == "cpu"
    np.testing.assert_array_equal(x.long().data, [1, 2])
    assert x.bool().dtype == np.bool_ and x.int().dtype == np.int32


def test_backward_takes_torch_keywords():
    x = cp.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.backward(gradient=cp.ones(2), retain_graph=True)
    y.backward(cp.tensor([1.0, 0.0]))
    np.testing.assert_array_equal(x.grad, [4, 4])


def test_python_values_and_memory_sharing():
    x = cp.tensor([[1.5, 2.0], [3.0, 4.0]], dtype=cp.float64)
    assert cp.tensor(2.5).item() == 2.5 and isinstance(cp.tensor(3).item(), int)
    assert x.tolist() == [[1.5, 2.0], [3.0, 4.0]] and cp.tensor(1.5).tolist() == 1.5
    n = x.numpy()
    n[0, 0] = 9
    assert x.data[0, 0] == 9  # shared, as torch
    det = x.detach()
    det.data[0, 1] = 7
    assert x.data[0, 1] == 7
    assert x.shape == (2, 2) and x.ndim == 2 and x.dim() == 2 and x.numel() == 4
    assert x.size() == (2, 2) and x.size(-1) == 2 and x.dtype == cp.float64
    y = cp.tensor([1.0, 2.0], requires_grad=True)
    c = y.clone()
    assert c.data is not y.data and c.requires_grad
    (c * 3).sum().backward()
    np.testing.assert_array_equal(y.grad, [3, 3])
    np.testing.assert_array_equal(y.numpy(force=True), [1, 2])
    assert y.requires_grad_(False) is y and not y.requires_grad


# ------------------------------------------------------------------- mixed dtypes
def test_linear_and_matmul_refuse_mixed_dtypes_naming_both():
    model = nn.Linear(3, 2)  # float32 parameters
    x = cp.randn(4, 3, dtype=cp.float64)
    with pytest.raises(TypeError, match=r"input is float64, weight is float32, bias is float32"):
        model(x)
    with pytest.raises(TypeError, match="float64.*float32"):
        F.linear(x, model.weight)
    with pytest.raises(TypeError, match=r"matmul: .*self is float64, other is float32"):
        x @ cp.randn(3, 2)
    with pytest.raises(RuntimeError, match="same dtype"):
        torch.randn(4, 3, dtype=torch.float64) @ torch.randn(3, 2)  # torch agrees
    assert model.double()(x).dtype == np.float64
    assert (x.float() @ cp.randn(3, 2)).dtype == np.float32


def test_check_same_dtype_is_one_shared_message():
    from convprop.autograd import check_same_dtype

    assert check_same_dtype("op", a=cp.zeros(1), b=None, c=np.zeros(2, np.float32)) == np.float32
    with pytest.raises(TypeError, match=r"conv2d: expected all arguments to have the same dtype, "
                                        r"but input is float64, weight is float32"):
        check_same_dtype("conv2d", input=cp.zeros(1, dtype=cp.float64), weight=cp.zeros(1))


# --------------------------------------------------------------------- error rules
ERRORS = [
    (lambda: cp.zeros(2, 3).sum(2), IndexError, r"dim 2 is out of range .* \[-2, 1\]"),
    (lambda: cp.zeros(2, 3).sum(2), ValueError, "out of range"),
    (lambda: cp.zeros(2, 3).sum(0.5), TypeError, "dim must be an int"),
    (lambda: cp.zeros(2, 3).sum((0, 0)), ValueError, "more than once"),
    (lambda: cp.zeros(2).sum(dim=0, axis=0), TypeError, "dim or axis"),
    (lambda: cp.arange(3).mean(), TypeError, "mean needs a floating tensor"),
    (lambda: cp.zeros(2).var(unbiased=True, correction=1), TypeError, "unbiased or correction"),
    (lambda: cp.zeros(2, 2).norm("nuc"), ValueError, "p must be 'fro' or a number"),
    (lambda: cp.zeros(0).max(), ValueError, "empty"),
    (lambda: cp.zeros(2, 0).max(1), ValueError, "size 0"),
    (lambda: cp.zeros(2, 0).amax(1), ValueError, "size 0"),
    (lambda: cp.zeros(0).argmax(), ValueError, "empty"),
    (lambda: cp.zeros(2).where(cp.tensor([1.0, 0.0]), 0.0), TypeError, "condition must be a bool"),
    (lambda: cp.where(np.array([1, 0]), 1.0, 0.0), TypeError, "condition must be a bool"),
    (lambda: cp.zeros(2).clamp(), ValueError, "at least one of min and max"),
    (lambda: cp.zeros(2, 3).reshape(4), ValueError, r"shape \(4,\) is invalid .* 6 elements"),
    (lambda: cp.zeros(2, 3).permute(0, 0), ValueError, "permutation"),
    (lambda: cp.zeros(2, 3).permute(0), ValueError, "permutation"),
    (lambda: cp.zeros(2, 3).flatten(1, 0), ValueError, "start_dim 1 comes after end_dim 0"),
    (lambda: cp.zeros(2, 6).unflatten(1, (4, 2)), ValueError, "do not multiply"),
    (lambda: cp.zeros(2, 6).unflatten(1, (-1, -1)), ValueError, "do not multiply"),
    (lambda: cp.zeros(2, 3).unsqueeze(3), IndexError, "out of range"),
    (lambda: cp.zeros(2, 3).expand(2, 4), ValueError, "must match the existing size 3"),
    (lambda: cp.zeros(2, 3).expand(3), ValueError, "1 sizes given for a tensor of 2 dims"),
    (lambda: cp.zeros(3).expand(-1, 3), ValueError, "-1 is not allowed"),
    (lambda: cp.zeros(2, 3).repeat(2), ValueError, "one non-negative count per dim"),
    (lambda: cp.zeros(2, 3).t().t().reshape(1, 2, 3).t(), ValueError, "at most 2 dimensions"),
    (lambda: cp.zeros(3).mT, ValueError, "at least 2 dimensions"),
    (lambda: cp.zeros(5).narrow(0, 3, 3), ValueError, "exceed"),
    (lambda: cp.zeros(5).split([2, 2]), ValueError, "add up to dim 0's size 5"),
    (lambda: cp.zeros(5).split(0), ValueError, "split_size must be positive"),
    (lambda: cp.zeros(5).chunk(0), ValueError, "chunks must be positive"),
    (lambda: cp.cat([cp.zeros(2, 3), cp.zeros(3, 2)], 1), ValueError, "must match except in dim 1"),
    (lambda: cp.cat([cp.zeros(()), cp.zeros(())]), ValueError, "zero-dimensional"),
    (lambda: cp.cat([]), ValueError, "non-empty list"),
    (lambda: cp.cat(cp.zeros(3)), TypeError, "list or tuple of tensors"),
    (lambda: cp.stack([cp.zeros(2), cp.zeros(3)]), ValueError, "same shape"),
    (lambda: cp.zeros(3)[cp.tensor([0.0, 1.0])], IndexError, "integer or bool"),
    (lambda: cp.arange(3).__setitem__(0, 1.5), TypeError, "floating values into a int64"),
    (lambda: ~cp.zeros(2), TypeError, "bool or integer"),
    (lambda: cp.zeros(2) & cp.zeros(2), TypeError, "bool or integer"),
    (lambda: -cp.tensor([True]), TypeError, "use ~"),
    (lambda: cp.zeros(()) @ cp.zeros(()), ValueError, "at least 1 dimension"),
    (lambda: bool(cp.zeros(2)), RuntimeError, "ambiguous"),
    (lambda: len(cp.zeros(())), TypeError, "0-d"),
    (lambda: [1, 2][cp.tensor(1.0)], TypeError, "integer tensors of a single element"),
    (lambda: cp.zeros(2).to("cuda"), ValueError, "device 'cuda' is not available"),
    (lambda: cp.zeros(2).to(torch.device("cuda")), ValueError, "device 'cuda'"),
    (lambda: cp.zeros(2).cuda(), ValueError, "device 'cuda'"),
    (lambda: cp.zeros(2).to("bfloat16"), TypeError, "dtype 'bfloat16' is not supported"),
    (lambda: cp.zeros(2).to("mps:1"), ValueError, "device 'mps:1'"),
    (lambda: cp.zeros(2).to(np.complex128), TypeError, "real number type"),
    (lambda: cp.arange(2).requires_grad_(), TypeError, "only floating-point"),
    (lambda: cp.zeros(2, requires_grad=True).numpy(), RuntimeError, "detach"),
    (lambda: cp.zeros(2) + np.array(["a", "b"]), TypeError, "real numbers"),
    (lambda: (cp.ones(2, requires_grad=True) * 2).backward(np.ones(2), gradient=np.ones(2)),
     TypeError, "grad or gradient"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)), ids=lambda k: ERRORS[k][2][:40])
def test_error_rules(k):
    call, error, match = ERRORS[k]
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------- PyTorch's own op samples
def _method(name):
    return lambda x, *a, **k: getattr(x, name)(*a, **k)


# op_db entry (name, variant) -> the convprop spelling of the same call
OPDB = {
    **{(n, ""): _method(n) for n in (
        "sum", "mean", "amax", "amin", "argmax", "argmin", "var", "std", "logsumexp", "norm",
        "chunk", "reshape", "view", "permute", "transpose", "flatten", "unflatten", "squeeze",
        "unsqueeze", "expand", "repeat", "where", "clamp", "abs", "exp", "log", "sqrt",
        "maximum", "minimum", "narrow", "unbind", "eq", "ne", "lt", "le", "gt", "ge", "t",
        "clone", "expand_as", "view_as", "reshape_as", "any", "all", "add", "sub", "mul",
        "sigmoid", "tanh", "contiguous", "split")},
    **{(n, v): _method(n) for n in ("max", "min")
       for v in ("reduction_with_dim", "reduction_no_dim", "binary")},
    ("var", "unbiased"): _method("var"), ("std", "unbiased"): _method("std"),
    ("norm", "fro"): _method("norm"), ("norm", "inf"): _method("norm"),
    ("split", "list_args"): _method("split"), ("split_with_sizes", ""): _method("split"),
    ("squeeze", "multiple"): _method("squeeze"),
    ("cat", ""): lambda x, *a, **k: cp.cat(x, *a, **k),
    ("stack", ""): lambda x, *a, **k: cp.stack(x, *a, **k),
    ("pow", ""): lambda x, e: x**e, ("__getitem__", ""): lambda x, i: x[i],
    ("T", ""): lambda x: x.T, ("mT", ""): lambda x: x.mT,
    ("__rsub__", ""): lambda x, o: o - x, ("__radd__", ""): lambda x, o: o + x,
    ("__rmul__", ""): lambda x, o: o * x, ("__rdiv__", ""): lambda x, o: o / x,
    ("__rpow__", ""): lambda x, o: o**x, ("div", "no_rounding_mode"): lambda x, o: x / o,
    ("true_divide", ""): lambda x, o: x / o, ("neg", ""): lambda x: -x,
    ("nn.functional.relu", ""): _method("relu"), ("matmul", ""): lambda x, o: x @ o,
    ("clamp_min", ""): lambda x, m: x.clamp(min=m), ("clamp_max", ""): lambda x, m: x.clamp(max=m),
}


def _to_cp(v):
    if isinstance(v, torch.Tensor):
        t = cp.tensor(v.detach().numpy().copy())
        return t.requires_grad_() if v.requires_grad else t
    if isinstance(v, (list, tuple)):
        return type(v)(_to_cp(x) for x in v)
    if isinstance(v, dict):
        return {k: _to_cp(x) for k, x in v.items()}
    return v


def _leaves(v, out):
    if isinstance(v, (torch.Tensor, cp.Tensor)):
        if v.requires_grad:
            out.append(v)
    elif isinstance(v, (list, tuple, dict)):
        for x in v.values() if isinstance(v, dict) else v:
            _leaves(x, out)
    return out


def _flat(v):
    return [y for x in v for y in _flat(x)] if isinstance(v, (list, tuple)) else [v]


def _sample_matches(op, fn, s):
    """Run one op_db sample in both libraries; values, dtypes and gradients must agree."""
    ty = op.op(s.input, *s.args, **s.kwargs)
    cin, cargs, ckw = _to_cp(s.input), _to_cp(list(s.args)), _to_cp(s.kwargs)
    ys, tys = _flat(fn(cin, *cargs, **ckw)), _flat(ty)
    assert len(ys) == len(tys), f"{len(ys)} outputs, torch {len(tys)}"
    loss = tloss = None
    for a, b in zip(ys, tys):
        assert a.shape == tuple(b.shape) and "torch." + str(a.dtype) == str(b.dtype), (a, b)
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-10)
        if b.requires_grad:
            g = RNG.standard_normal(a.shape)
            loss = (a * g).sum() if loss is None else loss + (a * g).sum()
            tb = (b * torch.from_numpy(g)).sum()
            tloss = tb if tloss is None else tloss + tb
    if loss is not None:
        theirs = torch.autograd.grad(tloss, _leaves([s.input, *s.args, s.kwargs], []),
                                     allow_unused=True)
        loss.backward()
        for o, t in zip(_leaves([cin, cargs, ckw], []), theirs):
            got = np.zeros(o.shape) if o.grad is None else o.grad
            np.testing.assert_allclose(got, 0 if t is None else t.numpy(), rtol=1e-10,
                                       atol=1e-10)


def test_pytorch_op_db_samples_for_every_tensor_method(capsys):
    """PyTorch's own sample inputs (``common_methods_invocations.op_db``) for each Tensor
    op in scope, in float64 with gradients: zero mismatches and zero errors."""
    require_torch()
    pytest.importorskip("expecttest", reason="torch's op_db needs the expecttest package")
    from torch.testing._internal.common_methods_invocations import op_db

    failures, rows, seen = [], [], set()
    for op in op_db:
        fn = OPDB.get((op.name, op.variant_test_name))
        if fn is None:
            continue
        seen.add((op.name, op.variant_test_name))
        passed = 0
        for s in op.sample_inputs("cpu", torch.float64, requires_grad=op.supports_autograd):
            try:
                _sample_matches(op, fn, s)
                passed += 1
            except Exception as e:  # noqa: BLE001  (every failure is collected and reported)
                failures.append(f"{op.name}.{op.variant_test_name} {s}: {type(e).__name__}: "
                                f"{str(e)[:200]}")
        rows.append(f"{op.name + '.' + op.variant_test_name:<34} {passed:4d} samples")
    with capsys.disabled():
        print(f"\nop_db: {len(seen)} ops, {sum(int(r.split()[-2]) for r in rows)} samples "
              f"matched, {len(failures)} failed")
    assert seen == set(OPDB), f"not in this torch's op_db: {set(OPDB) - seen}"
    assert not failures, "\n".join(failures[:20])


# ------------------------------------------------------------------ in-place ops
def test_manual_sgd_with_in_place_updates_matches_torch():
    w0 = normal(3)
    ws = [cp.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)]
    for w, lib in zip(ws, (cp, torch)):
        for _ in range(3):
            loss = ((w * w).sum() - w.sum()) ** 2
            loss.backward()
            with lib.no_grad():
                grad = w.grad if lib is cp else w.grad.clone()
                w -= 0.1 * grad
                w *= 0.99
            if lib is cp:
                w.grad = None
            else:
                w.grad.zero_()
        assert w.requires_grad and w.is_leaf
    np.testing.assert_allclose(ws[0].data, ws[1].detach().numpy(), **TOL)


def test_in_place_ops_inside_a_graph_match_torch():
    def fn(a, b):
        y = a * 1.0
        y += b
        y.mul_(2)
        y.sub_(b, alpha=0.5)
        y /= 3
        y.add_(1, alpha=2)
        return y.exp()

    run(fn, [normal(4), normal(4)])
    gradcheck(fn, normal(4), normal(4))

    def fills(a):
        y = a * 2
        z = y.clone().fill_(0.5) + y.clone().zero_() + y.clone().copy_(a[:1])
        return z + y.clone().clamp_(-0.5, 0.5)

    run(fills, [normal(4)])


def test_in_place_ops_write_through_views_without_gradients():
    x = cp.zeros(2, 3)
    v = x[1]
    v += 4
    x[0].fill_(1)
    t = torch.zeros(2, 3)
    tv = t[1]
    tv += 4
    t[0].fill_(1)
    np.testing.assert_array_equal(x.data, t.numpy())
    i = cp.arange(3)
    i += 1
    i *= 2
    assert i.dtype == np.int64 and i.tolist() == [2, 4, 6]


@pytest.mark.parametrize("call, error, match", [
    (lambda w: w.__iadd__(1), RuntimeError, r"\+=: a leaf tensor that requires grad"),
    (lambda w: w.zero_(), RuntimeError, "zero_: a leaf tensor"),
    (lambda w: cp.arange(3).__iadd__(1.5), TypeError, "float32 cannot be stored in a int64"),
    (lambda w: cp.arange(3).mul_(cp.tensor([True, False, True])).div_(2), TypeError,
     "cannot be stored"),
])
def test_in_place_error_rules(call, error, match):
    with pytest.raises(error, match=match):
        call(cp.tensor([1.0, 2.0], requires_grad=True))


def test_in_place_change_of_a_saved_tensor_is_caught_at_backward():
    w = cp.tensor(np.ones(3), requires_grad=True)
    h = w * 2
    y = (h * h).sum()  # mul saved h
    h += 1
    with pytest.raises(RuntimeError, match="changed by an in-place assignment"):
        y.backward()


# ------------------------------------------------------------ torch.<op> spellings
FUNCTIONS = [
    ("sum", (1,), {"keepdim": True}), ("mean", (), {}), ("var", (0,), {}), ("std", (), {}),
    ("logsumexp", (1,), {}), ("norm", (), {}), ("max", (1,), {}), ("min", (), {}),
    ("amax", ((0, 1),), {}), ("amin", (), {}), ("argmax", (1,), {}), ("argmin", (), {}),
    ("exp", (), {}), ("sqrt", (), {}), ("log", (), {}), ("abs", (), {}), ("sigmoid", (), {}),
    ("tanh", (), {}), ("relu", (), {}), ("neg", (), {}), ("clamp", (0.8, 1.5), {}),
    ("clip", (), {"min": 1.0}), ("flatten", (), {}), ("reshape", ((12,),), {}),
    ("unflatten", (1, (2, 2)), {}), ("permute", ((1, 0),), {}), ("transpose", (0, 1), {}),
    ("t", (), {}), ("squeeze", (), {}), ("unsqueeze", (0,), {}), ("narrow", (1, 1, 2), {}),
    ("split", (2, 1), {}), ("chunk", (3,), {}), ("unbind", (), {}), ("clone", (), {}),
    ("add", (2.0,), {"alpha": 3}), ("sub", (1.0,), {}), ("mul", (2.0,), {}),
    ("div", (4.0,), {}), ("pow", (3,), {}), ("eq", (1.0,), {}), ("gt", (1.0,), {}),
]


@pytest.mark.parametrize("name, args, kwargs", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_function_spellings_match_torch(name, args, kwargs):
    x = RNG.uniform(0.5, 2.0, (3, 4))
    run(lambda a: getattr(cp if isinstance(a, cp.Tensor) else torch, name)(a, *args, **kwargs),
        [x])


def test_function_spellings_of_pairs_and_checks():
    run(lambda a, b: (cp if isinstance(a, cp.Tensor) else torch).maximum(a, b),
        [tied(3), tied(3)])
    run(lambda a, b: (cp if isinstance(a, cp.Tensor) else torch).matmul(a, b),
        [normal(2, 3), normal(3)])
    assert cp.is_tensor(cp.zeros(1)) and not cp.is_tensor(np.zeros(1))
    assert cp.numel(cp.zeros(2, 3)) == 6
    assert max(1, 2) == 2 and sum([1, 2]) == 3  # Python's builtins are untouched here


def test_float32_stays_float32_through_the_new_ops():
    a = cp.tensor(RNG.uniform(0.5, 2.0, (3, 4)).astype(np.float32), requires_grad=True)
    b = cp.tensor(RNG.uniform(0.5, 2.0, (4,)).astype(np.float32), requires_grad=True)
    steps = [a.var(1), a.std(), a.logsumexp(0), a.norm(3, 1), a.norm(), a.max(1).values, a.max(),
             a.amax(0), a.min(0).values, a.maximum(b), a.clamp(0.7, 1.2), a.clamp(b),
             cp.where(a > 1, a, b), cp.cat([a, b[None]]), cp.stack([a[0], b]), a.split(2)[1],
             a.repeat(2, 1), a[:, :1].expand(3, 4), a.unflatten(1, (2, 2)), a.squeeze(),
             a.unsqueeze(0), a[cp.tensor([0, 0])], a.mT, a.mean(0), a.sum(1)]
    total = None
    for i, y in enumerate(steps):
        assert y.dtype == np.float32, (i, y.dtype)
        total = y.sum() if total is None else total + y.sum()
    assert total.dtype == np.float32
    total.backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32


DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def test_result_type_matches_torch_for_every_dtype_pair_and_rank():
    """Every pair of dtypes, each a 0-d or 1-d tensor or a Python scalar, promotes as torch."""
    scalars = {"bool": True, "int": 3, "float": 2.5}
    for da in DTYPES:
        for db in DTYPES + list(scalars):
            for na in (0, 1):
                for nb in (0, 1):
                    a = np.ones((2,) * na, dtype=da)
                    b = scalars[db] if db in scalars else np.ones((2,) * nb, dtype=db)
                    ours = cp.result_type(cp.from_numpy(a), b if db in scalars
                                          else cp.from_numpy(b))
                    theirs = torch.result_type(torch.from_numpy(a), b if db in scalars
                                               else torch.from_numpy(b))
                    assert "torch." + str(ours) == str(theirs), (da, na, db, nb)

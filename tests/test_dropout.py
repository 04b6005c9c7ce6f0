"""Channel-wise and alpha dropout: the mask's structure, its statistics on large inputs
(the same checks pass on PyTorch's output), the identity outside training, seeding,
gradients (gradcheck with a fixed generator), in-place use, and one test per error rule.
Parity with PyTorch's own configurations is in ``test_torch_configs_core.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import convprop as cp
import convprop.functional as F
from convprop import nn

SAT = 1.7580993408473766  # SELU's negative saturation, negated
FUNCTIONS = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
             "feature_alpha_dropout"]
SHAPES = {"dropout": (40, 50), "dropout1d": (40, 50, 3), "dropout2d": (40, 50, 2, 2),
          "dropout3d": (40, 50, 2, 1, 2), "alpha_dropout": (40, 50),
          "feature_alpha_dropout": (40, 50, 3)}
MODULES = {"Dropout1d": "dropout1d", "Dropout2d": "dropout2d", "Dropout3d": "dropout3d",
           "AlphaDropout": "alpha_dropout", "FeatureAlphaDropout": "feature_alpha_dropout"}


def feature_axes(function: str, ndim: int) -> int:
    """How many leading axes one draw covers (``ndim``: one draw per element)."""
    if function == "dropout1d":
        return 2 if ndim == 3 else 1
    if function == "dropout3d":
        return 2 if ndim == 5 else 1
    if function in ("dropout2d", "feature_alpha_dropout"):
        return 2
    return ndim


def check_dropout(function: str, x: np.ndarray, y: np.ndarray, dx: np.ndarray,
                  p: float) -> np.ndarray:
    """Check a training-mode dropout result, whatever numbers were drawn; returns the
    keep mask (one entry per draw).

    ``dx`` is the gradient of ``sum(y)``, that is the mask: constant over each draw,
    0 or the kept scale (``1/(1-p)``; alpha: ``a``), and ``y = x * dx`` (alpha variants
    add ``a alpha' p`` where kept and give ``-a alpha' (1 - p)`` where dropped)."""
    alpha = "alpha" in function
    a = 1.0 / np.sqrt((SAT**2 * p + 1.0) * (1.0 - p)) if p < 1 else 0.0
    kept = a if alpha else (1.0 / (1.0 - p) if p < 1 else 0.0)
    k = feature_axes(function, x.ndim)
    m = dx.reshape(dx.shape[:k] + (-1,))
    assert np.all(m == m[..., :1]), "the mask varies inside one draw"
    assert np.all(np.isclose(dx, 0.0, atol=1e-12) | np.isclose(dx, kept, rtol=1e-12)), \
        "the mask is neither 0 nor the kept scale"
    shift = np.where(dx != 0, a * SAT * p, -a * SAT * (1.0 - p)) if alpha and p < 1 else 0.0
    np.testing.assert_allclose(y, x * dx + shift, rtol=1e-12, atol=1e-12)
    return m[..., 0] != 0


def _run(function: str, x: np.ndarray, p: float, **kw) -> tuple[np.ndarray, np.ndarray]:
    t = cp.tensor(x, requires_grad=True)
    y = getattr(F, function)(t, p, True, **kw)
    y.backward(np.ones(y.shape))
    return y.data, t.grad


def _check_statistics(function: str, x: np.ndarray, y: np.ndarray, dx: np.ndarray,
                      p: float) -> None:
    keep = check_dropout(function, x, y, dx, p)
    n = keep.size
    assert abs((1 - keep.mean()) - p) < 5 * np.sqrt(p * (1 - p) / n), "drop rate"
    if "alpha" in function:  # mean 0 and variance 1 kept for a standard normal input
        assert abs(y.mean()) < 5 / np.sqrt(n) + 5 / np.sqrt(y.size)
        assert abs(y.var() - 1.0) < 0.1


@pytest.mark.parametrize("p", [0.2, 0.5])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_dropout_statistics(function: str, p: float) -> None:
    x = np.random.default_rng(0).standard_normal(SHAPES[function])
    cp.manual_seed(1)
    y, dx = _run(function, x, p)
    _check_statistics(function, x, y, dx, p)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_same_checks_pass_on_torch(function: str, torch) -> None:
    """The structure and statistics checks hold for PyTorch's own dropout too."""
    x = np.random.default_rng(0).standard_normal(SHAPES[function])
    t = torch.tensor(x, requires_grad=True)
    torch.manual_seed(0)
    y = getattr(torch.nn.functional, function)(t, 0.3, True)
    y.sum().backward()
    _check_statistics(function, x, y.detach().numpy(), t.grad.numpy(), 0.3)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_identity_outside_training_and_at_p0_zeros_at_p1(function: str) -> None:
    x = cp.tensor(np.random.default_rng(0).standard_normal(SHAPES[function]), requires_grad=True)
    fn = getattr(F, function)
    assert fn(x, 0.5, False) is x
    assert fn(x, 0.0, True) is x
    y = fn(x, 1.0, True)
    assert y.shape == x.shape and not np.any(y.data)
    y.backward(np.ones(y.shape))
    assert not np.any(x.grad)


@pytest.mark.parametrize("function", FUNCTIONS[1:])
def test_seed_and_generator_reproduce_the_mask(function: str) -> None:
    x = np.random.default_rng(0).standard_normal(SHAPES[function])
    fn = getattr(F, function)
    cp.manual_seed(7)
    a = fn(cp.tensor(x), 0.5, True).data
    cp.manual_seed(7)
    b = fn(cp.tensor(x), 0.5, True).data
    np.testing.assert_array_equal(a, b)
    c = fn(cp.tensor(x), 0.5, True, generator=cp.Generator().manual_seed(7)).data
    d = fn(cp.tensor(x), 0.5, True, generator=cp.Generator().manual_seed(7)).data
    np.testing.assert_array_equal(c, d)


@pytest.mark.parametrize("function", FUNCTIONS[1:])
def test_gradcheck(function: str) -> None:
    x = cp.tensor(np.random.default_rng(2).standard_normal((3, 4, 2, 2, 2)[:len(
        SHAPES[function])]), requires_grad=True)
    fn = getattr(F, function)
    assert cp.gradcheck(lambda t: fn(t, 0.4, True, generator=cp.Generator().manual_seed(3)), x)


@pytest.mark.parametrize("function", FUNCTIONS[1:])
def test_float32_stays_float32(function: str) -> None:
    x = cp.tensor(np.ones(SHAPES[function], dtype=np.float32), requires_grad=True)
    y = getattr(F, function)(x, 0.5, True)
    y.backward(np.ones(y.shape, dtype=np.float32))
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_unbatched_inputs_drop_per_channel() -> None:
    x = np.random.default_rng(0).standard_normal((50, 4))
    y, dx = _run("dropout1d", x, 0.5)
    check_dropout("dropout1d", x, y, dx, 0.5)
    x3 = np.random.default_rng(0).standard_normal((50, 2, 2, 2))
    y, dx = _run("dropout3d", x3, 0.5)
    check_dropout("dropout3d", x3, y, dx, 0.5)


def test_inplace_writes_into_the_input() -> None:
    for function, shape in [("dropout2d", (6, 5, 2, 2)), ("dropout1d", (6, 5)),
                            ("alpha_dropout", (6, 5))]:
        data = np.random.default_rng(0).standard_normal(shape)
        x = cp.tensor(data.copy())
        out = getattr(F, function)(x, 0.5, True, True, generator=cp.Generator().manual_seed(1))
        ref = getattr(F, function)(cp.tensor(data.copy()), 0.5, True,
                                   generator=cp.Generator().manual_seed(1))
        assert out is x
        np.testing.assert_array_equal(x.data, ref.data)


@pytest.mark.parametrize("function", FUNCTIONS[1:])
def test_inplace_inside_a_graph_as_out_of_place(function: str) -> None:
    """In place on an intermediate result: the same values and gradients as out of place
    (the tensor takes on the new history, as in PyTorch)."""
    data = np.random.default_rng(3).standard_normal(SHAPES[function][:2] + (2,) * (
        len(SHAPES[function]) - 2))
    grads = []
    for inplace in (False, True):
        x = cp.tensor(data, requires_grad=True)
        h = x * 2.0
        y = getattr(F, function)(h, 0.5, True, inplace, generator=cp.Generator().manual_seed(4))
        assert (y is h) == inplace
        (y * y).sum().backward()
        grads.append((y.data.copy(), x.grad.copy()))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_train_and_eval(name: str) -> None:
    function = MODULES[name]
    m = getattr(nn, name)(0.5)
    assert repr(m) == f"{name}(p=0.5, inplace=False)"
    x = cp.tensor(np.random.default_rng(0).standard_normal(SHAPES[function]), requires_grad=True)
    y = m(x)
    y.backward(np.ones(y.shape))
    check_dropout(function, x.data, y.data, x.grad, 0.5)
    assert m.eval()(x) is x
    assert list(m.state_dict()) == []


# -------------------------------------------------------------------- error rules
ERRORS = {
    "p above 1": (lambda: F.dropout2d(cp.ones((2, 3, 4, 4)), 1.5), ValueError, "p has to be"),
    "p below 0": (lambda: F.alpha_dropout(cp.ones(3), -0.1, True), ValueError, "between 0"),
    "p not a number": (lambda: F.dropout3d(cp.ones((1, 2, 2, 2, 2)), "0.5"), TypeError,
                       "p must be a number"),
    "p a bool": (lambda: F.feature_alpha_dropout(cp.ones((2, 3)), True), TypeError,
                 "p must be a number"),
    "dropout1d rank": (lambda: F.dropout1d(cp.ones((2, 3, 4, 5))), ValueError,
                       r"\(N, C, L\) or \(C, L\)"),
    "feature dropout of a vector": (lambda: F.feature_alpha_dropout(cp.ones(5), 0.5, True),
                                    ValueError, "at least 2 dimensions"),
    "inplace on a leaf that requires grad": (
        lambda: F.dropout2d(cp.ones((2, 3, 2, 2), requires_grad=True), 0.5, True, True),
        RuntimeError, "leaf tensor that requires grad"),
    "module p above 1": (lambda: nn.Dropout2d(2.0), ValueError, "p has to be"),
    "module p not a number": (lambda: nn.AlphaDropout(None), TypeError, "p must be a number"),
}


@pytest.mark.parametrize("k", sorted(ERRORS))
def test_error_rules(k: str) -> None:
    call, error, match = ERRORS[k]
    with pytest.raises(error, match=match):
        call()


def test_other_ranks_warn_as_torch() -> None:
    with pytest.warns(UserWarning, match="read as \\(N, C, L\\)"):
        F.dropout2d(cp.ones((2, 3, 4)), 0.5, True)
    with pytest.warns(UserWarning, match="5-D input"):
        F.dropout2d(cp.ones((2, 3, 4, 1, 1)), 0.5, True)
    with pytest.warns(UserWarning, match="3-D input"):
        F.dropout3d(cp.ones((2, 3, 4)), 0.5, True)

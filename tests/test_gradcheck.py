"""Centred finite differences (the public ``convprop.gradcheck``) for every differentiable
op of the engine, and the checker's own ability to catch a wrong gradient."""

from __future__ import annotations

import numpy as np
import pytest

import convprop as cp
import convprop.functional as F

RNG = np.random.default_rng(7)


def leaf(*shape):
    return cp.tensor(RNG.standard_normal(shape), requires_grad=True)


CONV_CASES = [
    # nd, x shape, w shape, kwargs
    (1, (2, 2, 7), (4, 1, 3), dict(stride=2, padding=((1, 2),), dilation=2, groups=2)),
    (1, (2, 5), (3, 2, 2), dict(padding="same")),  # unbatched, even kernel
    (2, (1, 2, 5, 4), (2, 2, 2, 3), dict(stride=(2, 1), padding=(1, 2))),
    (2, (2, 3, 4, 4), (3, 1, 3, 2), dict(padding="same", dilation=(1, 2), groups=3)),
    (3, (1, 2, 4, 3, 3), (2, 1, 2, 2, 2), dict(stride=(1, 2, 1), padding=1, groups=2)),
]


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd,xs,ws,kwargs", CONV_CASES, ids=lambda v: str(v))
def test_conv_gradcheck(nd, xs, ws, kwargs, mode):
    x, w, b = leaf(*xs), leaf(*ws), leaf(ws[0])
    conv = getattr(F, f"conv{nd}d")
    assert cp.gradcheck(lambda x, w, b: conv(x, w, b, padding_mode=mode, **kwargs), x, w, b)


TRANSPOSE_CASES = [
    (1, (2, 2, 3), (2, 2, 3), dict(stride=2, padding=1, output_padding=1, dilation=1)),
    (1, (1, 2, 3), (2, 1, 2), dict(stride=1, padding=0, output_padding=1, dilation=2,
                                   groups=2)),
    (2, (3, 2, 2), (3, 1, 2, 3), dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2))),
    (3, (1, 2, 2, 2, 2), (2, 2, 2, 1, 2), dict(stride=2, padding=(1, 0, 0), groups=2)),
]


@pytest.mark.parametrize("nd,xs,ws,kwargs", TRANSPOSE_CASES, ids=lambda v: str(v))
def test_conv_transpose_gradcheck(nd, xs, ws, kwargs):
    x, w = leaf(*xs), leaf(*ws)
    b = leaf(ws[1] * kwargs.get("groups", 1))
    conv = getattr(F, f"conv_transpose{nd}d")
    assert cp.gradcheck(lambda x, w, b: conv(x, w, b, **kwargs), x, w, b)


@pytest.mark.parametrize("mode,pad", [
    ("constant", (1, 2, 0, 1)), ("constant", (-1, 2, 1, -1)), ("reflect", (2, 1, 1, 2)),
    ("replicate", (3, 0, 2, 1)), ("circular", (3, 2, 1, 3)), ("reflect", (1, 1, 1, 1, 1, 0)),
])
def test_pad_gradcheck(mode, pad):
    x = leaf(2, 3, 3, 4)
    assert cp.gradcheck(lambda x: F.pad(x, pad, mode=mode, value=0.5), x)


def test_tensor_ops_gradcheck():
    a, b, c = leaf(3, 4), leaf(4), leaf(4, 2)

    def fn(a, b, c):
        u = (a + b) * (a - b) / (b * b + 1) - (-a)
        v = (u.exp() * 0.1 + (a * a + 1).log() + a.sigmoid() + a.tanh() + a.relu()) ** 2
        w = (v @ c).reshape(2, 3).transpose(0, 1).permute(1, 0)[:, 1:]
        return w.sum(axis=0, keepdims=True) + w.mean() + v[[0, 0, 2]].sum(axis=1).mean()

    assert cp.gradcheck(fn, a, b, c)


def test_seed_pipeline_gradcheck():
    """The founding document's pipeline: sum((sigmoid(conv(X, K) / 4) - Y)^2)."""
    x, k = leaf(3, 3), leaf(2, 2)
    y = cp.tensor(RNG.uniform(size=(2, 2)))

    def loss(x, k):
        z = F.conv2d(x.reshape(1, 1, 3, 3), k.reshape(1, 1, 2, 2)).reshape(2, 2) / 4
        return ((F.sigmoid(z) - y) ** 2).sum()

    assert cp.gradcheck(loss, x, k)


# ---------------------------------------------------------------- the checker itself
def wrong_square(x: cp.Tensor) -> cp.Tensor:
    """x**2 with the gradient of x**3 (a deliberately wrong backward)."""
    a = x.data
    return cp.Tensor._wrap(a * a, (x,), lambda g: (g * 3 * a * a,))


def off_by_transpose(x: cp.Tensor) -> cp.Tensor:
    """2-D op whose backward forgets to transpose its gradient back."""
    a = x.data
    return cp.Tensor._wrap(a.T * np.arange(1, a.size + 1).reshape(a.T.shape), (x,),
                           lambda g: ((g * np.arange(1, a.size + 1).reshape(a.T.shape)).reshape(
                               a.shape),))


@pytest.mark.parametrize("op,shape", [(wrong_square, (4,)), (off_by_transpose, (2, 3))])
def test_gradcheck_catches_a_wrong_gradient(op, shape):
    x = leaf(*shape)
    with pytest.raises(cp.GradcheckError, match="gradient mismatch"):
        cp.gradcheck(op, x)
    assert cp.gradcheck(op, x, raise_exception=False) is False


def test_gradcheck_accepts_a_right_gradient_of_a_custom_op():
    x = leaf(4)
    a = x.data
    assert cp.gradcheck(lambda x: cp.Tensor._wrap(x.data**2, (x,), lambda g: (2 * g * a,)), x)


def test_gradcheck_leaves_inputs_and_grads_untouched():
    x, w = leaf(1, 2, 5), leaf(3, 2, 2)
    x0, w0 = x.data.copy(), w.data.copy()
    x.grad = np.full(x.shape, 7.0)
    cp.gradcheck(lambda x, w: F.conv1d(x, w, padding=1), x, w)
    np.testing.assert_array_equal(x.data, x0)
    np.testing.assert_array_equal(w.data, w0)
    np.testing.assert_array_equal(x.grad, 7.0)
    assert w.grad is None


def test_gradcheck_only_checks_inputs_that_require_grad():
    x, w = leaf(1, 2, 5), cp.tensor(RNG.standard_normal((3, 2, 2)))
    assert cp.gradcheck(lambda x, w: F.conv1d(x, w), x, w)


def test_gradcheck_argument_errors():
    with pytest.raises(TypeError, match="requires_grad"):
        cp.gradcheck(lambda x: x * 2, cp.tensor(np.ones(2)))
    with pytest.raises(TypeError, match="float64"):
        cp.gradcheck(lambda x: x * 2, cp.tensor(np.ones(2, np.float32), requires_grad=True))

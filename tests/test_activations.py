"""Every activation against PyTorch in float64 (forward, input gradient, PReLU's weight
gradient; 1e-10) at random points and at each kink, as module and as function; reprs
and signatures as PyTorch's; finite-difference checks; RReLU's random slopes; the
softmax family's dtype= and empty inputs; and one test per error rule."""

from __future__ import annotations

import ast
import inspect
import warnings

import numpy as np
import pytest
from oracle import needs_torch, torch  # parity tests skip without it; the rest runs

import convprop as cp
import convprop.functional as F
from convprop import nn

TOL = 1e-10

# (module name, constructor args, functional name, functional kwargs)
CASES = [
    ("ELU", (), "elu", {}),
    ("ELU", (0.5,), "elu", dict(alpha=0.5)),
    ("CELU", (), "celu", {}),
    ("CELU", (2.0,), "celu", dict(alpha=2.0)),
    ("SELU", (), "selu", {}),
    ("GELU", (), "gelu", {}),
    ("GELU", ("tanh",), "gelu", dict(approximate="tanh")),
    ("SiLU", (), "silu", {}),
    ("Mish", (), "mish", {}),
    ("Softplus", (), "softplus", {}),
    ("Softplus", (2.0, 1.0), "softplus", dict(beta=2.0, threshold=1.0)),
    ("Softsign", (), "softsign", {}),
    ("Hardtanh", (), "hardtanh", {}),
    ("Hardtanh", (-2.0, 0.5), "hardtanh", dict(min_val=-2.0, max_val=0.5)),
    ("ReLU6", (), "relu6", {}),
    ("Hardswish", (), "hardswish", {}),
    ("Hardsigmoid", (), "hardsigmoid", {}),
    ("LogSigmoid", (), "logsigmoid", {}),
    ("Threshold", (0.5, -2.0), "threshold", dict(threshold=0.5, value=-2.0)),
    ("Softshrink", (), "softshrink", {}),
    ("Softshrink", (1.0,), "softshrink", dict(lambd=1.0)),
    ("Hardshrink", (), "hardshrink", {}),
    ("Hardshrink", (1.0,), "hardshrink", dict(lambd=1.0)),
    ("Tanhshrink", (), "tanhshrink", {}),
    ("ReLU", (), "relu", {}),
    ("LeakyReLU", (0.2,), "leaky_relu", dict(negative_slope=0.2)),
    ("Sigmoid", (), "sigmoid", {}),
    ("Tanh", (), "tanh", {}),
    ("RReLU", (), "rrelu", {}),  # eval mode: deterministic
    ("RReLU", (0.1, 0.3), "rrelu", dict(lower=0.1, upper=0.3)),
    ("GLU", (), "glu", {}),
    ("GLU", (1,), "glu", dict(dim=1)),
    ("Softmin", (1,), "softmin", dict(dim=1)),
    ("Softmax", (-1,), "softmax", dict(dim=-1)),
    ("LogSoftmax", (0,), "log_softmax", dict(dim=0)),
    ("Softmax2d", (), None, {}),
]

KINKS = [0.0, 1.0, -1.0, 0.5, -0.5, 3.0, -3.0, 6.0, 2.0, -2.0, 20.0, 30.0, -30.0]


def sample(shape: tuple[int, ...] = (3, 4, 6), seed: int = 0) -> np.ndarray:
    """Random values (some large) with every kink of every activation planted in."""
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    x.flat[: len(KINKS)] = KINKS
    return x


def parity(fc, ft, x: np.ndarray, params=(), tparams=()) -> None:
    xc = cp.Tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yc, yt = fc(xc), ft(xt)
    assert yc.shape == tuple(yt.shape) and yc.dtype == np.float64
    np.testing.assert_allclose(yc.data, yt.detach().numpy(), rtol=0, atol=TOL)
    g = np.random.default_rng(1).standard_normal(yc.shape)
    yc.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=0, atol=TOL)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=0, atol=TOL)


@needs_torch
@pytest.mark.parametrize("name,args,fname,kwargs", CASES)
def test_activation_modules_and_functions_match_torch(name, args, fname, kwargs) -> None:
    x = sample()
    layer, tlayer = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    layer.eval()
    tlayer.eval()
    parity(layer, tlayer, x)
    if fname is not None:
        parity(lambda t: getattr(F, fname)(t, **kwargs),
               lambda t: getattr(torch.nn.functional, fname)(t, **kwargs), x)
    assert repr(layer) == repr(tlayer)


@needs_torch
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_activations_on_small_and_unbatched_shapes(shape) -> None:
    x = sample(shape) if shape else np.array(-0.7)
    for name, args, _, _ in CASES:
        if name in ("GLU", "Softmin", "Softmax", "LogSoftmax", "Softmax2d"):
            continue
        tl = getattr(torch.nn, name)(*args).eval()
        parity(getattr(nn, name)(*args).eval(), tl, x)


@needs_torch
def test_gelu_without_scipy_uses_math_erf(monkeypatch) -> None:
    # SciPy is an optional extra: the fallback erf must give the same GELU
    import math

    from convprop.functional import activation

    monkeypatch.setattr(activation, "_erf", np.vectorize(math.erf, otypes=[np.float64]))
    parity(F.gelu, torch.nn.functional.gelu, sample())


def test_float32_stays_float32() -> None:
    for name, args, _, _ in CASES:
        if name == "Softmax2d":
            continue
        x = cp.Tensor(sample((2, 4)).astype(np.float32), requires_grad=True)
        y = getattr(nn, name)(*args).eval()(x)
        y.sum().backward()
        assert y.dtype == np.float32 and x.grad.dtype == np.float32, name


def test_activations_pass_finite_difference_checks() -> None:
    # away from the kinks, where finite differences are meaningful
    x = cp.Tensor(np.random.default_rng(3).uniform(0.1, 0.9, (2, 4, 4))
                  * np.sign(np.random.default_rng(4).standard_normal((2, 4, 4))) * 2.5,
                  requires_grad=True)
    for name, args, _, _ in CASES:
        if name in ("Hardshrink", "Softshrink", "Threshold", "Softplus") and args:
            continue  # these have kinks inside the sampled range
        layer = getattr(nn, name)(*args).eval()
        cp.gradcheck(layer, x)
    w = cp.Tensor(np.array([0.3, -0.2, 0.1, 0.7]), requires_grad=True)
    cp.gradcheck(F.prelu, x, w)
    cp.gradcheck(lambda t: F.softmax(t, 1, dtype=np.float64), x)


@needs_torch
def test_prelu_learns_like_torch_and_round_trips_its_state() -> None:
    x = sample((3, 4, 5))
    for num, init in ((1, 0.25), (4, -0.3)):
        layer, tlayer = nn.PReLU(num, init), torch.nn.PReLU(num, init)
        layer.double()
        tlayer.double()
        tlayer.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
        parity(layer, tlayer, x, [layer.weight], [tlayer.weight])
        assert list(layer.state_dict()) == ["weight"] and repr(layer) == repr(tlayer)
        assert layer.weight.shape == (num,)
    # functional, unbatched and scalar inputs use one slope
    w = cp.Tensor(np.array([0.3]), requires_grad=True)
    wt = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    for shape in ((), (6,)):
        w.grad, wt.grad = None, None
        parity(lambda t: F.prelu(t, w), lambda t: torch.nn.functional.prelu(t, wt),
               sample(shape) if shape else np.array(-1.5), [w], [wt])
    assert nn.PReLU(dtype=np.float64).weight.dtype == np.float64
    w = cp.Tensor(np.array(0.2), requires_grad=True)  # a scalar slope, as torch allows
    wt = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    parity(lambda t: F.prelu(t, w), lambda t: torch.nn.functional.prelu(t, wt), sample((3, 4)),
           [w], [wt])


@needs_torch
def test_rrelu_training_draws_slopes_from_the_seeded_generator() -> None:
    x = -np.abs(sample((4, 50))) - 0.1
    x[0, :5] = [0.0, 1.0, 2.0, -1.0, 0.5]
    layer = nn.RReLU(0.1, 0.3)
    outs = []
    for _ in range(2):
        nn.init.manual_seed(7)
        xc = cp.Tensor(x, requires_grad=True)
        y = layer(xc)
        y.sum().backward()
        outs.append((y.data, xc.grad))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    y, grad = outs[0]
    neg = x <= 0
    slope = grad[neg]
    assert np.all((slope >= 0.1) & (slope <= 0.3)) and np.unique(slope).size > 50
    np.testing.assert_allclose(y[neg], x[neg] * slope, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(y[~neg], x[~neg])
    assert np.all(grad[~neg] == 1)
    nn.init.manual_seed(8)
    assert not np.array_equal(layer(x).data, outs[0][0])
    # eval: deterministic mean slope, as torch
    layer.eval()
    parity(layer, torch.nn.RReLU(0.1, 0.3).eval(), x)
    gen = np.random.default_rng(0)
    a = F.rrelu(x, 0.1, 0.3, training=True, generator=gen)
    assert np.all(a.data[neg] <= 0.1 * x[neg] + 1e-15)


@needs_torch
def test_softmax_family_dtype_argument() -> None:
    x = sample((3, 5)).astype(np.float32)
    for name in ("softmax", "log_softmax", "softmin"):
        fc, ft = getattr(F, name), getattr(torch.nn.functional, name)
        xc = cp.Tensor(x, requires_grad=True)
        y = fc(xc, 1, dtype=np.float64)
        yt = ft(torch.tensor(x), 1, dtype=torch.float64)
        assert y.dtype == np.float64
        np.testing.assert_allclose(y.data, yt.numpy(), rtol=0, atol=TOL)
        y.sum().backward()
        assert xc.grad.dtype == np.float32
        parity(lambda t, fc=fc: fc(t, dim=0, dtype="float64"),
               lambda t, ft=ft: ft(t, dim=0, dtype=torch.float64), sample((3, 5)))


@needs_torch
@pytest.mark.parametrize("shape,dim", [((0, 5), 1), ((0, 5), 0), ((3, 0), 1), ((3, 0), 0),
                                       ((2, 0, 4), 1), ((0,), 0)])
def test_softmax_family_over_empty_inputs_matches_torch(shape, dim) -> None:
    x = np.zeros(shape)
    for name in ("softmax", "log_softmax", "softmin"):
        xc = cp.Tensor(x, requires_grad=True)
        y = getattr(F, name)(xc, dim)
        yt = getattr(torch.nn.functional, name)(torch.tensor(x), dim)
        assert y.shape == tuple(yt.shape)
        y.backward(np.zeros(y.shape))
        assert xc.grad.shape == shape
    assert nn.Softmax2d()(np.zeros((0, 3, 2, 2))).shape == (0, 3, 2, 2)


@needs_torch
def test_softmax2d_is_softmax_over_channels() -> None:
    for shape in ((2, 3, 4, 5), (3, 4, 5)):
        parity(nn.Softmax2d(), torch.nn.Softmax2d(), sample(shape))


def torch_signature(fn) -> list[tuple[str, object]]:
    """``(name, default)`` pairs of a torch function; for a C builtin, from the signature
    line its docstring starts with (``gelu(input, approximate = 'none') -> Tensor``)."""
    try:
        return [(p, v.default) for p, v in inspect.signature(fn).parameters.items()]
    except ValueError:
        head = fn.__doc__.strip().splitlines()[0].split(" -> ")[0]
        args = ast.parse(f"def {head}: pass").body[0].args
        defaults = [inspect.Parameter.empty] * (len(args.args) - len(args.defaults)) + [
            ast.literal_eval(d) for d in args.defaults]
        return [(a.arg, d) for a, d in zip(args.args, defaults)]


@needs_torch
def test_signatures_and_defaults_are_torchs() -> None:
    fnames = sorted({f for _, _, f, _ in CASES if f} | {"prelu"})
    for f in fnames:
        ours = inspect.signature(getattr(F, f)).parameters
        assert torch_signature(getattr(torch.nn.functional, f)) == [
            (p, v.default) for p, v in ours.items() if p != "generator"], f
    for name in {c[0] for c in CASES} | {"PReLU"}:
        theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
        ours = inspect.signature(getattr(nn, name).__init__).parameters
        if "args" in theirs:  # torch's parameter-free modules take *args, **kwargs
            assert list(ours) == ["self"], name
            continue
        theirs = {p: v.default for p, v in theirs.items() if p not in ("min_value", "max_value")}
        assert theirs == {p: v.default for p, v in ours.items()}, name


@needs_torch
def test_inplace_is_accepted_and_shown_as_torch_shows_it() -> None:
    for name, args in (("ELU", (0.5, True)), ("CELU", (1.0, True)), ("SELU", (True,)),
                       ("SiLU", (True,)), ("Mish", (True,)), ("Hardtanh", (-2, 3, True)),
                       ("ReLU6", (True,)), ("Hardswish", (True,)), ("Hardsigmoid", (True,)),
                       ("RReLU", (0.1, 0.3, True)), ("Threshold", (0.1, 2.0, True)),
                       ("ReLU", (True,)), ("LeakyReLU", (0.2, True))):
        layer = getattr(nn, name)(*args).eval()
        assert repr(layer) == repr(getattr(torch.nn, name)(*args)), name
        x = cp.Tensor(sample((2, 3)))
        before = x.data.copy()
        layer(x)
        np.testing.assert_array_equal(x.data, before)  # computed out of place
    for f in ("elu", "celu", "selu", "silu", "mish", "hardtanh", "relu6", "hardswish",
              "hardsigmoid", "rrelu", "relu", "leaky_relu"):
        getattr(F, f)(sample((2,)), inplace=True)
    F.threshold(sample((2,)), 0.0, 1.0, inplace=True)
    for dim in (None, 0):
        assert repr(nn.Softmin(dim)) == repr(torch.nn.Softmin(dim))
    assert repr(nn.Softshrink(0.3)) == repr(torch.nn.Softshrink(0.3))


# ------------------------------------------------------------------ errors
def test_celu_alpha_zero_is_an_error() -> None:
    with pytest.raises(ValueError, match="alpha must not be 0"):
        F.celu(sample((2,)), alpha=0.0)
    with pytest.raises(ValueError, match="alpha must not be 0"):
        nn.CELU(0.0)(sample((2,)))


def test_softshrink_lambda_must_be_non_negative() -> None:
    with pytest.raises(ValueError, match="lambd must be >= 0, got -1"):
        F.softshrink(sample((2,)), -1.0)
    with pytest.raises(ValueError, match="lambd must be >= 0"):
        nn.Softshrink(-0.5)


@needs_torch
def test_hardshrink_takes_a_negative_lambd() -> None:
    # nothing is zeroed then, as in torch (which only rejects it for softshrink)
    parity(nn.Hardshrink(-0.5), torch.nn.Hardshrink(-0.5), sample((3, 4)))


def test_hardtanh_bounds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match=r"min_val \(2.0\) must not exceed max_val \(1.0\)"):
        F.hardtanh(sample((2,)), 2.0, 1.0)
    with pytest.raises(ValueError, match="min_val"):
        nn.Hardtanh(1.0, -1.0)


def test_rrelu_bounds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="lower <= upper"):
        F.rrelu(sample((2,)), 0.5, 0.1, training=True)
    with pytest.raises(ValueError, match="lower <= upper"):
        nn.RReLU(0.5, 0.1)
    with pytest.raises(ValueError, match="0 <= lower"):
        nn.RReLU(-0.1, 0.1)


def test_prelu_shape_errors() -> None:
    with pytest.raises(ValueError, match="2 slopes but the input has 3 channel"):
        F.prelu(sample((4, 3)), np.ones(2))
    with pytest.raises(ValueError, match="3 slopes but the input has 1 channel"):
        nn.PReLU(3)(sample((3,)))
    with pytest.raises(ValueError, match="weight must be 1-D"):
        F.prelu(sample((4, 3)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="num_parameters must be a positive int"):
        nn.PReLU(0)
    with pytest.raises(ValueError, match="device"):
        nn.PReLU(device="cuda")


def test_glu_errors() -> None:
    with pytest.raises(ValueError, match="dimension -1 is size 5"):
        F.glu(sample((2, 5)))
    with pytest.raises(ValueError, match="scalars"):
        nn.GLU()(np.array(1.0))
    with pytest.raises(ValueError, match="dim 2 is out of range for a 2-D input"):
        F.glu(sample((2, 4)), dim=2)


def test_gelu_approximate_must_be_known() -> None:
    with pytest.raises(ValueError, match="'none' or 'tanh', got 'erf'"):
        F.gelu(sample((2,)), approximate="erf")
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


def test_softmax_errors() -> None:
    with pytest.raises(ValueError, match="3-D or 4-D"):
        nn.Softmax2d()(sample((3, 4)))
    with pytest.raises(TypeError, match="dtype must be a floating type, got int64"):
        F.softmax(sample((3,)), 0, dtype=np.int64)
    with pytest.raises(ValueError, match="dim 1 is out of range for a 1-D input"):
        F.log_softmax(sample((3,)), 1)
    with pytest.raises(ValueError, match="dim -3"):
        F.softmin(sample((3, 2)), -3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="Implicit dimension"):
            F.softmin(sample((3, 2)))

"""The founding document's pipeline (convprop.seed): numbers, chain rule, training."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convprop import demo, seed


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def document_forward(x, k, y, stride=(1, 1), padding=(0, 0), divisor=None):
    """The document's eq. 5 with its index corrected, as naive loops in its own notation.

    ``x_{i,j}`` is ``x[j-1, i-1]``; ``z_{a,b} = Σ_i Σ_j x_{(a-1)S_W+i-P_W, (b-1)S_H+j-P_H} k_{i,j} / D``
    with cells outside the input equal to 0.  Returns z, o, L and ∂L/∂K from the
    chain rule written term by term, and the term table itself.
    """
    (kh, kw), (h, w) = k.shape, x.shape
    (sw, sh), (pw, ph) = stride, padding
    zw = (w - kw + 2 * pw) // sw + 1
    zh = (h - kh + 2 * ph) // sh + 1
    d = kw * kh if divisor is None else divisor

    def X(i, j):  # 1-based document indices; 0 outside (padding)
        return x[j - 1, i - 1] if 1 <= i <= w and 1 <= j <= h else 0.0

    def src(i, j, a, b):
        return (a - 1) * sw + i - pw, (b - 1) * sh + j - ph

    z = np.zeros((zh, zw))
    for a in range(1, zw + 1):
        for b in range(1, zh + 1):
            z[b - 1, a - 1] = sum(X(*src(i, j, a, b)) * k[j - 1, i - 1]
                                  for i in range(1, kw + 1) for j in range(1, kh + 1)) / d
    o = _sigmoid(z)
    loss = float(((o - y) ** 2).sum())
    terms = {}
    grad = np.zeros_like(k)
    for i in range(1, kw + 1):
        for j in range(1, kh + 1):
            for a in range(1, zw + 1):
                for b in range(1, zh + 1):
                    oo, yy, zz = o[b - 1, a - 1], y[b - 1, a - 1], z[b - 1, a - 1]
                    dl_do = 2 * (oo - yy)
                    do_dz = _sigmoid(zz) * (1 - _sigmoid(zz))
                    dz_dk = X(*src(i, j, a, b)) / d
                    terms[(i, j, a, b)] = (dl_do, do_dz, dz_dk)
                    grad[j - 1, i - 1] += dl_do * do_dz * dz_dk
    return z, o, loss, grad, terms


def test_default_numbers_are_the_documents_equations():
    x, k, y = seed.demo_values()
    p = seed.forward_backward(x, k, y)

    def xs(i, j):
        return x[j - 1, i - 1]

    def ks(i, j):
        return k[j - 1, i - 1]

    # section II, written exactly as the document writes z_{1,1} … z_{2,2} (divided by 4)
    z11 = (xs(1, 1) * ks(1, 1) + xs(2, 1) * ks(2, 1) + xs(1, 2) * ks(1, 2) + xs(2, 2) * ks(2, 2)) / 4
    z21 = (xs(2, 1) * ks(1, 1) + xs(3, 1) * ks(2, 1) + xs(2, 2) * ks(1, 2) + xs(3, 2) * ks(2, 2)) / 4
    z12 = (xs(1, 2) * ks(1, 1) + xs(2, 2) * ks(2, 1) + xs(1, 3) * ks(1, 2) + xs(2, 3) * ks(2, 2)) / 4
    z22 = (xs(2, 2) * ks(1, 1) + xs(3, 2) * ks(2, 1) + xs(2, 3) * ks(1, 2) + xs(3, 3) * ks(2, 2)) / 4
    np.testing.assert_allclose(p.z, [[z11, z21], [z12, z22]], rtol=0, atol=1e-15)
    assert p.z[0, 0] == 0.375
    np.testing.assert_allclose(p.o, _sigmoid(p.z), rtol=1e-15)
    assert p.loss == pytest.approx(((p.o - y) ** 2).sum(), rel=1e-15)
    # section III for k_{1,1}, with the corrected ∂z/∂k = x/4
    o, zz = p.o, p.z
    dk11 = sum(2 * (o[b, a] - y[b, a]) * _sigmoid(zz[b, a]) * (1 - _sigmoid(zz[b, a])) * x[b, a] / 4
               for a in range(2) for b in range(2))
    assert p.grad[0, 0] == pytest.approx(dk11, rel=1e-13)


@settings(max_examples=40, deadline=None)
@given(w=st.integers(1, 6), h=st.integers(1, 6), kw=st.integers(1, 3), kh=st.integers(1, 3),
       sw=st.integers(1, 3), sh=st.integers(1, 3), pw=st.integers(0, 2), ph=st.integers(0, 2),
       divisor=st.sampled_from(["kernel", "stride", 1, 2.5]), rng_seed=st.integers(0, 2**16))
def test_autograd_equals_document_chain_rule_term_by_term(w, h, kw, kh, sw, sh, pw, ph, divisor,
                                                          rng_seed):
    assume(kw <= w + 2 * pw and kh <= h + 2 * ph)
    rng = np.random.default_rng(rng_seed)
    x, k = rng.normal(size=(h, w)), rng.normal(size=(kh, kw))
    zw, zh = (w - kw + 2 * pw) // sw + 1, (h - kh + 2 * ph) // sh + 1
    y = rng.uniform(size=(zh, zw))
    d = {"kernel": kw * kh, "stride": sw * sh}.get(divisor, divisor)

    p = seed.forward_backward(x, k, y, stride=(sw, sh), padding=(pw, ph), divisor=divisor)
    cr = seed.chain_rule(p)
    z, o, loss, grad, terms = document_forward(x, k, y, (sw, sh), (pw, ph), d)

    np.testing.assert_allclose(p.z, z, rtol=1e-12, atol=1e-14)
    assert p.loss == pytest.approx(loss, rel=1e-12, abs=1e-15)
    # the factors autograd passed backwards are the document's ∂L/∂o and ∂L/∂o·∂o/∂z
    np.testing.assert_allclose(p.dl_do, cr.dl_do, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(p.dl_dz, cr.dl_do * cr.do_dz, rtol=1e-13, atol=1e-15)
    # every term of the document's sum, then the sum itself
    for (i, j, a, b), (dl_do, do_dz, dz_dk) in terms.items():
        assert cr.dl_do[b - 1, a - 1] == pytest.approx(dl_do, rel=1e-12, abs=1e-15)
        assert cr.do_dz[b - 1, a - 1] == pytest.approx(do_dz, rel=1e-12, abs=1e-15)
        assert cr.dz_dk[j - 1, i - 1, b - 1, a - 1] == pytest.approx(dz_dk, rel=1e-14, abs=0)
    np.testing.assert_allclose(cr.grad, grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(p.grad, grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("stride,padding,divisor", [(1, 0, 1), (2, 1, "kernel"), ((2, 1), (0, 1), 3.0)])
def test_gradient_matches_torch(torch, stride, padding, divisor):
    rng = np.random.default_rng(7)
    x, k = rng.normal(size=(5, 6)), rng.normal(size=(2, 3))
    geo = seed.Geometry.create((6, 5), (3, 2), stride, padding, divisor)
    y = rng.uniform(size=geo.output_shape[::-1])
    p = seed.forward_backward(x, k, y, stride, padding, divisor)
    X = torch.tensor(x[None, None])
    K = torch.tensor(k[None, None], requires_grad=True)
    Z = torch.nn.functional.conv2d(X, K, stride=geo.stride[::-1], padding=geo.padding[::-1])
    loss = ((torch.sigmoid(Z / geo.divisor) - torch.tensor(y)) ** 2).sum()
    loss.backward()
    assert p.loss == pytest.approx(loss.item(), rel=1e-13)
    np.testing.assert_allclose(p.grad, K.grad[0, 0].numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), ((3, 1), (1, 2)), (2, 0)])
def test_geometry_source_is_the_corrected_document_index(stride, padding):
    geo = seed.Geometry.create((5, 4), (2, 3), stride, padding)
    (sw, sh), (pw, ph) = geo.stride, geo.padding
    for (x, y) in geo.outputs():
        for (i, j) in geo.kernel_elements():
            a, b = (x - 1) * sw + i - pw, (y - 1) * sh + j - ph
            inside = 1 <= a <= 5 and 1 <= b <= 4
            assert geo.source(i, j, x, y) == ((a, b) if inside else None)


def test_geometry_orders_and_sizes():
    geo = seed.Geometry.create((3, 3), (2, 2))
    assert geo.output_shape == (2, 2)
    assert geo.outputs() == [(1, 1), (2, 1), (1, 2), (2, 2)]  # the document's z order
    assert geo.divisor == 4 and geo.divisor_rule == "K_W·K_H"
    assert seed.Geometry.create((7, 4), (3, 2), stride=(2, 1)).output_shape == (3, 3)
    assert seed.Geometry.create((5, 5), (2, 2), stride=3).touched_inputs() == {
        (a, b) for a in (1, 2, 4, 5) for b in (1, 2, 4, 5)}


@pytest.mark.parametrize("divisor,expected", [("kernel", 6), ("stride", 2), (1, 1), ("2.5", 2.5)])
def test_divisor(divisor, expected):
    assert seed.resolve_divisor(divisor, (3, 2), (2, 1)) == expected


@pytest.mark.parametrize("divisor", ["kernal", 0, -1, float("inf"), True, None])
def test_bad_divisor(divisor):
    with pytest.raises((ValueError, TypeError)):
        seed.resolve_divisor(divisor, (2, 2), (1, 1))


def test_bad_arguments():
    x, k, y = seed.demo_values()
    with pytest.raises(ValueError, match="y must have the output's shape"):
        seed.forward_backward(x, k, y[:1])
    with pytest.raises(ValueError, match="the kernel does not fit"):
        seed.forward_backward(x[:1], k, y)
    with pytest.raises(ValueError, match="lr"):
        seed.train(x, k, y, lr=0)
    with pytest.raises(ValueError, match="stride"):
        seed.Geometry.create((3, 3), (2, 2), stride=0)


def test_demo_loss_decreases_monotonically_for_the_default_lr():
    x, k, y = seed.demo_values()
    h = seed.train(x, k, y)
    assert h.lr == seed.DEFAULT_LR
    assert h.stopped is None and h.steps == seed.DEFAULT_STEPS
    assert all(b < a for a, b in zip(h.losses, h.losses[1:]))
    assert h.losses[-1] < 0.05 * h.losses[0]  # and visibly so
    # each step is K ← K − lr·∂L/∂K with the gradient at the previous K
    p = seed.forward_backward(x, h.kernels[3], y)
    np.testing.assert_allclose(h.kernels[4], h.kernels[3] - h.lr * p.grad, rtol=0, atol=1e-15)


def test_training_stops_when_the_loss_stops_falling():
    x, k, y = seed.demo_values()
    h = seed.train(x, k, y, lr=500.0, steps=50)
    assert h.stopped is not None and "stopped falling" in h.stopped
    assert h.steps < 50
    assert all(b < a for a, b in zip(h.losses, h.losses[1:]))


def test_random_demo_values_are_reproducible():
    a, b = seed.demo_values(3), seed.demo_values(3)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(seed.demo_values(4)[0], a[0])


def test_demo_report_reads_in_the_documents_notation():
    x, k, y = seed.demo_values()
    text = demo.demo_report(x, k, y, seed.train(x, k, y, steps=3))
    assert "z_{1,1} = (x_{1,1}·k_{1,1} + x_{2,1}·k_{2,1} + x_{1,2}·k_{1,2} + x_{2,2}·k_{2,2})/4" in text
    assert "= (2·0.5 + 1·(-0.5) + 0·0.25 + 1·1)/4" in text
    assert "= 1.5/4 = 0.375" in text
    assert "o_{1,1} = σ(z_{1,1}) = 1/(1 + e^(-0.375)) = 0.592667" in text
    for kij in ("k_{1,1}", "k_{2,1}", "k_{1,2}", "k_{2,2}"):
        assert f"∂L/∂{kij} = sum of the terms" in text
    assert "x_{1,1}/4" in text  # the corrected ∂z/∂k


def test_seed_needs_only_numpy():
    code = ("import sys, convprop.seed, convprop.demo, convprop.cli; "
            "bad = [m for m in ('sympy', 'matplotlib', 'tqdm') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)

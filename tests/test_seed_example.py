"""The founding document's worked example (docs: seed/convolutions.md), checked by hand.

Notation: the document writes ``x_{i,j}`` with ``i`` the column and ``j`` the row,
both 1-based, so ``x_{i,j}`` is ``X[j-1, i-1]`` of the row-major array (likewise
``k_{i,j}``, ``z_{i,j}``, ``o_{i,j}``, ``y_{i,j}``).  3x3 input, 2x2 kernel,
stride 1, no padding; ``Z = conv(X, K) / 4`` as in the expanded equations of
section II, ``O = sigmoid(Z)``, ``L = sum((O - Y)^2)``.

Section III writes ``dz_{1,1}/dk_{1,1} = x_{1,1}``, dropping the ``/4`` of the
forward equations; the correct factor is ``x_{1,1}/4`` and that is what is
asserted here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import convprop as cp
import convprop.functional as F

# Distinct, asymmetric values so that a row/column mix-up cannot go unnoticed.
X = np.array([[0.3, -1.2, 0.8],
              [1.5, 0.4, -0.7],
              [-0.2, 0.9, 1.1]])
K = np.array([[0.5, -0.3],
              [0.8, 0.2]])
Y = np.array([[0.1, 0.9],
              [0.6, 0.3]])


def doc(a: np.ndarray):
    """The document's accessor: ``doc(A)(i, j)`` is ``a_{i,j}`` = ``A[j-1, i-1]``."""
    return lambda i, j: a[j - 1, i - 1]


def sigma(v: float) -> float:
    return 1 / (1 + math.exp(-v))  # eq. (3)


def expanded_z() -> dict[tuple[int, int], float]:
    """The four equations of section II, transcribed term by term."""
    x, k = doc(X), doc(K)
    return {
        (1, 1): (x(1, 1) * k(1, 1) + x(2, 1) * k(2, 1) + x(1, 2) * k(1, 2) + x(2, 2) * k(2, 2)) / 4,
        (2, 1): (x(2, 1) * k(1, 1) + x(3, 1) * k(2, 1) + x(2, 2) * k(1, 2) + x(3, 2) * k(2, 2)) / 4,
        (1, 2): (x(1, 2) * k(1, 1) + x(2, 2) * k(2, 1) + x(1, 3) * k(1, 2) + x(2, 3) * k(2, 2)) / 4,
        (2, 2): (x(2, 2) * k(1, 1) + x(3, 2) * k(2, 1) + x(2, 3) * k(1, 2) + x(3, 3) * k(2, 2)) / 4,
    }


def engine():
    """Z, O, L and dL/dK from convprop (unbatched (C, H, W) input, (O, C, kH, kW) kernel)."""
    xt = cp.tensor(X[None], requires_grad=True)
    kt = cp.tensor(K[None, None], requires_grad=True)
    z = F.conv2d(xt, kt) / 4
    o = F.sigmoid(z)
    loss = ((o - cp.tensor(Y[None])) ** 2).sum()
    loss.backward()
    return z.data[0], o.data[0], loss.item(), kt.grad[0, 0], xt.grad[0]


def test_output_shape_is_eq_2():
    assert cp.output_size(3, 2, stride=1, padding=0) == 2  # (3 - 2 + 2*0)/1 + 1
    assert engine()[0].shape == (2, 2)


def test_forward_matches_the_expanded_equations():
    z = engine()[0]
    for (i, j), value in expanded_z().items():
        assert z[j - 1, i - 1] == pytest.approx(value, rel=1e-15, abs=1e-15), (i, j)


def test_sigmoid_and_loss_match_eqs_4_and_6():
    _, o, loss, _, _ = engine()
    zs = expanded_z()
    y = doc(Y)
    os_ = {ij: sigma(v) for ij, v in zs.items()}
    for (i, j), value in os_.items():
        assert o[j - 1, i - 1] == pytest.approx(value, rel=1e-15)
    expected = ((os_[1, 1] - y(1, 1)) ** 2 + (os_[2, 1] - y(2, 1)) ** 2
                + (os_[1, 2] - y(1, 2)) ** 2 + (os_[2, 2] - y(2, 2)) ** 2)
    assert loss == pytest.approx(expected, rel=1e-15)


def test_dl_dk11_matches_the_four_term_chain_rule():
    """Section III: dL/dk11 = sum over the four outputs of dL/do * do/dz * dz/dk11,
    with dL/do = 2(o - y), do/dz = sigma(z)(1 - sigma(z)) and dz/dk11 = x/4."""
    x, y = doc(X), doc(Y)
    z = expanded_z()
    o = {ij: sigma(v) for ij, v in z.items()}

    def dl_do(i, j):
        return 2 * (o[i, j] - y(i, j))

    def do_dz(i, j):
        s = 1 / (1 + math.exp(-z[i, j]))
        return s * (1 - s)

    dz_dk11 = {(1, 1): x(1, 1) / 4, (1, 2): x(1, 2) / 4, (2, 1): x(2, 1) / 4, (2, 2): x(2, 2) / 4}
    by_hand = (dl_do(1, 1) * do_dz(1, 1) * dz_dk11[1, 1]
               + dl_do(1, 2) * do_dz(1, 2) * dz_dk11[1, 2]
               + dl_do(2, 1) * do_dz(2, 1) * dz_dk11[2, 1]
               + dl_do(2, 2) * do_dz(2, 2) * dz_dk11[2, 2])
    dk = engine()[3]
    assert dk[0, 0] == pytest.approx(by_hand, rel=1e-13)

    # the document's literal dz/dk = x (without /4) is four times too large
    literal = by_hand * 4
    assert dk[0, 0] != pytest.approx(literal, rel=1e-3)


def test_every_kernel_gradient_by_the_same_chain_rule():
    """The same rule for every k_{a,b}: dz_{p,q}/dk_{a,b} = x_{a+p-1, b+q-1} / 4."""
    x, y = doc(X), doc(Y)
    z = expanded_z()
    dk = engine()[3]
    for a in (1, 2):
        for b in (1, 2):
            total = 0.0
            for (p, q), zv in z.items():
                s = sigma(zv)
                total += 2 * (s - y(p, q)) * s * (1 - s) * x(a + p - 1, b + q - 1) / 4
            assert dk[b - 1, a - 1] == pytest.approx(total, rel=1e-13), (a, b)

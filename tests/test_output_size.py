"""``convprop.output_size``: eq. (1) of the founding document, generalised and floored."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convprop as cp
import convprop.functional as F


def test_document_example_eq_2():
    assert cp.output_size(3, 2) == 2
    assert cp.output_size(3, 2, stride=1, padding=0) == (3 - 2 + 2 * 0) // 1 + 1


@given(x=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 5), p=st.integers(0, 4),
       d=st.integers(1, 3))
def test_matches_generalised_eq_1_and_the_actual_convolution(x, k, s, p, d):
    span = d * (k - 1) + 1
    if x + 2 * p < span:
        kernel = f"dilated kernel {span} \\({k} taps, dilation {d}\\)" if d > 1 else f"kernel {k}"
        with pytest.raises(ValueError, match=rf"^{kernel} is larger than the input's length {x} "
                                             rf"\(\+{2 * p} padding\)$"):
            cp.output_size(x, k, stride=s, padding=p, dilation=d)
        return
    expected = (x + 2 * p - d * (k - 1) - 1) // s + 1  # eq. (1) with dilation, floored
    got = cp.output_size(x, k, stride=s, padding=p, dilation=d)
    assert got == expected and isinstance(got, int)
    if d == 1 and (x - k + 2 * p) % s == 0:
        assert got == (x - k + 2 * p) // s + 1  # the document's form, exactly
    y = F.conv1d(np.zeros((1, 1, x)), np.zeros((1, 1, k)), stride=s, padding=p, dilation=d)
    assert y.shape[-1] == got


def test_floors_when_the_stride_does_not_divide():
    # (6 - 3 + 0)/2 + 1 = 2.5 -> 2: the last input row is never reached
    assert cp.output_size(6, 3, stride=2) == 2
    assert cp.output_size(7, 2, stride=3, padding=1) == 3  # (7 - 2 + 2)/3 + 1 = 3.33


def test_per_dimension_arguments_give_a_tuple():
    assert cp.output_size((5, 6, 7), (3, 2, 1), stride=(1, 2, 3), padding=(1, 0, 2),
                          dilation=(2, 1, 1)) == (3, 3, 4)
    assert cp.output_size(8, (3, 3), stride=2) == (3, 3)
    assert cp.output_size((5,), 3) == (3,)


def test_padding_spellings():
    assert cp.output_size((5, 6), (3, 4), padding="same") == (5, 6)
    assert cp.output_size((5, 6), (3, 4), padding="valid") == (3, 3)
    assert cp.output_size((5, 6), (3, 4), padding=((0, 1), (2, 0))) == (4, 5)
    assert cp.output_size(5, 4, dilation=2, padding="same") == 5


def test_raises_when_the_output_would_be_empty():
    with pytest.raises(ValueError, match=r"^kernel 4 is larger than the input's length 3 "
                                         r"\(\+0 padding\)$"):
        cp.output_size(3, 4)
    with pytest.raises(ValueError, match=r"^kernel 3 is larger than the input's width 2 "):
        cp.output_size((5, 2), (3, 3))
    with pytest.raises(ValueError, match=r"^kernel 3 is larger than the input's depth 2 "):
        cp.output_size((2, 5, 5), 3)
    with pytest.raises(ValueError, match=r"^kernel 2 is larger than the input's size 1 along "
                                         r"spatial axis 3 \(\+0 padding\)$"):
        cp.output_size((3, 3, 3, 1), 2)


@pytest.mark.parametrize("h,stride,padding", [(6, 2, 0), (6, 3, 1), (8, 3, 0)])
def test_rows_never_reached_get_an_exact_zero_gradient(h, stride, padding):
    """When the stride does not divide, the floor drops trailing input rows (K = 3):
    their gradient is exactly 0 and the output does not depend on them at all."""
    rng = np.random.default_rng(3)
    x = cp.tensor(rng.standard_normal((1, 2, h, h)), requires_grad=True)
    w = cp.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, stride=stride, padding=padding)
    n_out = cp.output_size(h, 3, stride=stride, padding=padding)
    assert y.shape[-2:] == (n_out, n_out)
    last_read = (n_out - 1) * stride + 2 - padding  # last input row any window touches
    assert last_read < h - 1
    y.backward(rng.standard_normal(y.shape))
    unread = slice(last_read + 1, None)
    assert np.all(x.grad[..., unread, :] == 0.0) and np.all(x.grad[..., :, unread] == 0.0)
    assert np.all(x.grad[..., : last_read + 1, : last_read + 1] != 0.0)

    changed = x.data.copy()
    changed[..., unread, :] = 1e6
    changed[..., :, unread] = np.nan
    np.testing.assert_array_equal(F.conv2d(changed, w.data, stride=stride, padding=padding).data,
                                  y.data)

"""The error catalogue: each rule raises ValueError/TypeError naming the argument and the rule."""

from __future__ import annotations

import numpy as np
import pytest

import convprop as cp
import convprop.functional as F

X2 = np.zeros((1, 4, 5, 5))  # (N, C, H, W)
W2 = np.zeros((6, 4, 3, 3))  # (O, C, kH, kW)


# ------------------------------------------------------------------- channels, groups
def test_channel_mismatch_between_input_and_weight():
    with pytest.raises(ValueError, match=r"input has 4 channels but weight expects 3"):
        F.conv2d(X2, np.zeros((6, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"input has 4 channels but weight .* expects 2"):
        F.conv_transpose2d(X2, np.zeros((2, 3, 3, 3)))


def test_groups_must_divide_in_channels():
    with pytest.raises(ValueError, match=r"in_channels \(4\) must be divisible by groups \(3\)"):
        F.conv2d(X2, np.zeros((6, 1, 3, 3)), groups=3)
    with pytest.raises(ValueError, match=r"in_channels \(4\) must be divisible by groups \(3\)"):
        F.conv_transpose2d(X2, np.zeros((4, 1, 3, 3)), groups=3)


def test_groups_must_divide_out_channels():
    with pytest.raises(ValueError, match=r"out_channels \(6\) must be divisible by groups \(4\)"):
        F.conv2d(X2, np.zeros((6, 1, 3, 3)), groups=4)


@pytest.mark.parametrize("groups", [0, -1, 1.5])
def test_groups_must_be_a_positive_int(groups):
    with pytest.raises(ValueError, match="groups must be a positive int"):
        F.conv2d(X2, W2, groups=groups)


def test_bias_shape():
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\)"):
        F.conv2d(X2, W2, bias=np.zeros(4))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.conv_transpose2d(X2, np.zeros((4, 3, 2, 2)), bias=np.zeros(4))


# ------------------------------------------------------------------------ ranks
@pytest.mark.parametrize("fn", [F.conv2d, F.conv_transpose2d])
def test_wrong_input_rank(fn):
    with pytest.raises(ValueError, match=r"input must have 4 dims .* or 3"):
        fn(np.zeros((1, 1, 4, 5, 5)), W2)
    with pytest.raises(ValueError, match=r"input must have 4 dims"):
        fn(np.zeros((5, 5)), W2)


@pytest.mark.parametrize("fn", [F.conv1d, F.conv3d, F.conv_transpose1d, F.conv_transpose3d])
def test_wrong_weight_rank(fn):
    with pytest.raises(ValueError, match=r"weight must have \d dims"):
        fn(np.zeros((1, 4, 5, 5, 5)), W2)


# ---------------------------------------------------------------- sizes, strides
def test_kernel_larger_than_input():
    with pytest.raises(ValueError,
                       match=r"kernel 3 is larger than the input's height 2 \(\+0 padding\)"):
        F.conv2d(np.zeros((1, 4, 2, 5)), W2)


def test_dilated_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"dilated kernel 5 \(3 taps, dilation 2\) is larger "
                                         r"than the input's length 3 \(\+1 padding\)"):
        F.conv1d(np.zeros((1, 1, 3)), np.zeros((1, 1, 3)), dilation=2, padding=((1, 0),))
    with pytest.raises(ValueError, match="dilated kernel 5"):
        cp.output_size(3, 3, dilation=2)


@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value", [0, -1, (1, 0)])
def test_stride_and_dilation_at_least_one(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be >= 1"):
        F.conv2d(X2, W2, **{name: value})
    with pytest.raises(ValueError, match=rf"{name} must be >= 1"):
        F.conv_transpose2d(X2, np.zeros((4, 2, 3, 3)), **{name: value})
    with pytest.raises(ValueError, match=rf"{name} must be >= 1"):
        cp.output_size(5, 3, **{name: value})


def test_per_dim_argument_of_wrong_length_or_type():
    with pytest.raises(ValueError, match=r"stride must be an int or a sequence of 2 ints"):
        F.conv2d(X2, W2, stride=(1, 1, 1))
    with pytest.raises(TypeError, match=r"dilation must contain ints"):
        F.conv2d(X2, W2, dilation=(1.5, 1))
    with pytest.raises(TypeError, match=r"stride must be an int or a tuple"):
        F.conv2d(X2, W2, stride=1.0)


# ----------------------------------------------------------------------- padding
@pytest.mark.parametrize("padding", [-1, (1, -1), ((0, 1), (-1, 0))])
def test_negative_padding(padding):
    with pytest.raises(ValueError, match="padding must be non-negative"):
        F.conv2d(X2, W2, padding=padding)
    with pytest.raises(ValueError, match="padding must be non-negative"):
        cp.output_size((5, 5), 3, padding=padding)


def test_negative_transpose_padding():
    with pytest.raises(ValueError, match="padding must be non-negative"):
        F.conv_transpose2d(X2, np.zeros((4, 2, 3, 3)), padding=-1)


def test_same_padding_needs_stride_one():
    with pytest.raises(ValueError, match=r"padding='same' requires stride 1"):
        F.conv2d(X2, W2, padding="same", stride=(1, 2))
    with pytest.raises(ValueError, match=r"padding='same' requires stride 1"):
        cp.output_size(5, 3, stride=2, padding="same")


def test_unknown_padding_string():
    with pytest.raises(ValueError, match=r"padding must be .*'valid' or 'same', got 'full'"):
        F.conv2d(X2, W2, padding="full")
    with pytest.raises(ValueError, match=r"padding must be an int or a tuple of ints"):
        F.conv_transpose2d(X2, np.zeros((4, 2, 3, 3)), padding="same")


def test_malformed_padding_pairs():
    with pytest.raises(ValueError, match=r"padding pairs must be \(before, after\) ints"):
        F.conv2d(X2, W2, padding=((1, 2, 3), (0, 0)))


@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_padding_wider_than_the_input_allows(mode):
    x = np.zeros((1, 1, 3))
    too_wide = 3 if mode == "reflect" else 4  # reflect needs pad < size, circular pad <= size
    with pytest.raises(ValueError, match=rf"{mode} padding .* input size.* 3"):
        F.pad(x, (0, too_wide), mode=mode)
    with pytest.raises(ValueError, match=rf"{mode} padding .* input size.* 3"):
        F.conv1d(x, np.zeros((1, 1, 1)), padding=too_wide, padding_mode=mode)
    F.pad(x, (too_wide - 1, too_wide - 1), mode=mode)  # the widest that is allowed


def test_unknown_padding_mode():
    with pytest.raises(ValueError, match=r"padding_mode must be one of .* got 'mirror'"):
        F.conv2d(X2, W2, padding=1, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"padding mode must be one of .* got 'mirror'"):
        F.pad(X2, (1, 1), mode="mirror")


def test_pad_argument_shape():
    with pytest.raises(ValueError, match="pad must have an even length"):
        F.pad(X2, (1, 1, 1))
    with pytest.raises(ValueError, match="pad has 5 axis pairs but the input has only 4 dims"):
        F.pad(X2, (1,) * 10)
    with pytest.raises(TypeError, match="pad must be a sequence of ints"):
        F.pad(X2, (1.0, 1))
    assert F.pad(X2, (-1, 1), mode="reflect").shape == X2.shape  # negative amounts crop, as torch
    with pytest.raises(ValueError, match="reflect padding .* at least 1 must remain"):
        F.pad(X2, (-5, 0), mode="reflect")  # a negative pad crops, as in PyTorch, but not all
    with pytest.raises(ValueError, match="negative padding .* removes more than the input holds"):
        F.pad(X2, (-3, -3))
    assert F.pad(X2, (-3, -2)).shape == (1, 4, 5, 0)  # cropping to nothing is allowed


# -------------------------------------------------------------- transposed conv
@pytest.mark.parametrize("output_padding,stride,dilation", [(2, 2, 1), (1, 1, 1), (2, 2, 2),
                                                            (-1, 2, 1)])
def test_output_padding_must_be_smaller_than_stride_or_dilation(output_padding, stride, dilation):
    with pytest.raises(ValueError, match="output_padding must be >= 0 and smaller than either "
                                         "stride or dilation"):
        F.conv_transpose1d(np.zeros((1, 2, 4)), np.zeros((2, 1, 3)), stride=stride,
                           output_padding=output_padding, dilation=dilation)


def test_transpose_output_size_below_one():
    with pytest.raises(ValueError, match=r"output size would be -2 \(< 1\).*reduce padding"):
        F.conv_transpose1d(np.zeros((1, 2, 1)), np.zeros((2, 1, 2)), padding=2)


# ------------------------------------------------------------------------ autograd
def test_backward_on_non_scalar_needs_a_gradient():
    y = cp.tensor(np.ones(3), requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"backward\(\) without a gradient needs a scalar output"
                                         r".*pass grad="):
        y.backward()


def test_backward_gradient_of_wrong_shape():
    y = cp.tensor(np.ones(3), requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"grad must have the output's shape \(3,\), got \(2,\)"):
        y.backward(np.ones(2))
    with pytest.raises(ValueError, match=r"grad must have the output's shape"):
        y.backward(np.ones((3, 1)))


def test_backward_without_requires_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cp.tensor(np.ones(1)).backward()


def test_complex_input_to_conv_is_rejected():
    with pytest.raises(TypeError, match="real numbers"):
        F.conv1d(np.zeros((1, 1, 3), complex), np.zeros((1, 1, 2)))


@pytest.mark.parametrize(("make", "kind", "says"), [
    (lambda: cp.nn.Conv2d("3", 8, 3), TypeError, "Conv2d: in_channels must be an int, got '3' (str)"),
    (lambda: cp.nn.Conv1d(3, 8.0, 3), TypeError, "Conv1d: out_channels must be an int, got 8.0"),
    (lambda: cp.nn.ConvTranspose3d(3, 0, 3), ValueError, "ConvTranspose3d: out_channels must be >= 1"),
    (lambda: cp.nn.Linear("3", 8), TypeError, "Linear: in_features must be an int, got '3' (str)"),
    (lambda: cp.nn.Linear(3, -1), ValueError, "Linear: out_features must be >= 0, got -1"),
])
def test_layer_sizes_of_the_wrong_type_or_range_name_the_layer_and_argument(make, kind, says):
    with pytest.raises(kind) as info:
        make()
    assert says in str(info.value)

"""User-facing differentiable ops on Tensors (``import convprop.functional as F``)."""

from .activation import exp, log, relu, sigmoid, tanh
from .conv import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from .pad import pad

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "exp",
    "log",
    "pad",
    "relu",
    "sigmoid",
    "tanh",
]

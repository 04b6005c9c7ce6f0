"""Channel-wise (feature) dropout and alpha dropout, as ``torch.nn.functional``.

Every variant is one masked scale, ``y = x * m + b``, where the mask ``m`` is drawn
once in the forward and the backward is ``dx = g * m``:

- feature dropout (``dropout1d/2d/3d``) keeps or drops whole channels: the mask
  has shape ``(N, C, 1, ..., 1)``, each entry ``1/(1-p)`` with probability
  ``1-p``, else 0;
- alpha dropout keeps the mean and variance of a standard normal input (for
  SELU networks): a dropped element becomes SELU's negative saturation
  ``-alpha'`` (``alpha' = 1.7580993408473766``), and the result is rescaled by
  ``a = ((1-p)(1 + p alpha'^2))^(-1/2)`` and shifted by ``b = a alpha' p``, so
  ``y = a (x keep - alpha' (1 - keep)) + a alpha' p`` (PyTorch's formula);
  ``feature_alpha_dropout`` draws one keep per channel.

Outside training, with ``p = 0`` or on an empty input the input is returned
unchanged; ``p = 1`` gives zeros (alpha variants too, as PyTorch).  Masks come
from convprop's default stream (:func:`convprop.manual_seed`) unless a
``generator=`` is given; the numbers differ from PyTorch's, the distribution does not.

The plain element-wise :func:`convprop.functional.dropout` lives beside the
normalisation ops.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..autograd import Tensor, as_tensor
from ..random import numpy_generator

SELU_SATURATION = 1.7580993408473766  # -(SELU's scale * alpha): SELU's value at -inf, negated


def _check_p(name: str, p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: p must be a number, got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: dropout probability p has to be between 0 and 1, got {p}")
    return float(p)


def _masked(name: str, x: Tensor, p: float, feature: bool, alpha: bool,
            generator: Any) -> Tensor:
    """``x * m + b`` with a fresh mask (see the module docstring); ``dx = g * m``."""
    if p == 1.0:
        scale, shift = np.zeros((), dtype=x.dtype), None
    else:
        if feature and x.ndim < 2:  # checked where the mask is drawn, as PyTorch
            raise ValueError(f"{name}: feature dropout needs at least 2 dimensions "
                             f"(N, C, ...), got shape {x.shape}")
        shape = x.shape[:2] + (1,) * (x.ndim - 2) if feature else x.shape
        keep = (numpy_generator(generator).random(shape) < 1.0 - p).astype(x.dtype)
        if alpha:
            a = 1.0 / math.sqrt((SELU_SATURATION**2 * p + 1.0) * (1.0 - p))
            scale = keep * x.dtype.type(a)
            shift = ((keep - 1.0) * (SELU_SATURATION * a) + SELU_SATURATION * a * p).astype(x.dtype)
        else:
            scale, shift = keep * x.dtype.type(1.0 / (1.0 - p)), None
    out = (x.data * scale if shift is None else x.data * scale + shift).astype(x.dtype, copy=False)
    return Tensor._wrap(out, (x,), lambda g: (np.broadcast_to(g * scale, x.shape),),
                        lambda g: ((g * Tensor._wrap(np.asarray(scale))).expand(x.shape),))


def _dropout(name: str, x: Tensor, p: float, training: bool, inplace: bool, feature: bool,
             alpha: bool, generator: Any, unbatched: bool = False) -> Tensor:
    """The input itself outside training, at ``p = 0`` or when empty; else the masked
    result (``unbatched``: one sample, channels on axis 0), written into ``x`` with
    ``inplace=True`` under PyTorch's in-place rules (a leaf that requires grad is refused)."""
    if p == 0.0 or not training or x.size == 0:
        return x

    def fn(t: Tensor) -> Tensor:
        if unbatched:
            return _masked(name, t.unsqueeze(0), p, feature, alpha, generator).squeeze(0)
        return _masked(name, t, p, feature, alpha, generator)

    return x._inplace(fn, f"{name}(inplace=True)") if inplace else fn(x)


def dropout1d(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator: Any = None) -> Tensor:
    """Zero whole channels of ``(N, C, L)`` or unbatched ``(C, L)`` with probability ``p``.

    Args:
        input: ``(N, C, L)`` or ``(C, L)``.
        p: probability of dropping a channel, in [0, 1].
        training: drop at all (otherwise the input is returned).
        inplace: make ``input`` hold the result (PyTorch's in-place rules: inside a
            graph it takes on the new history; a leaf that requires grad is refused).
        generator: a :class:`convprop.Generator` for the mask (default stream otherwise).

    Returns:
        the input's shape; kept channels are scaled by ``1/(1-p)``.
    """
    p = _check_p("dropout1d", p)
    x = as_tensor(input)
    if x.ndim not in (2, 3):
        raise ValueError(f"dropout1d: input must be (N, C, L) or (C, L), got shape {x.shape}")
    return _dropout("dropout1d", x, p, training, inplace, True, False, generator,
                    unbatched=x.ndim == 2)


def dropout2d(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator: Any = None) -> Tensor:
    """Zero whole channels of ``(N, C, H, W)`` with probability ``p``.

    As PyTorch: a 3-D input is read as ``(N, C, L)`` (channel-wise 1-D dropout, with
    PyTorch's warning), and other ranks warn and still drop over axes 0 and 1.

    Args:
        input: ``(N, C, H, W)`` (or see above).
        p, training, inplace, generator: as :func:`dropout1d`.

    Returns:
        the input's shape; kept channels are scaled by ``1/(1-p)``.
    """
    p = _check_p("dropout2d", p)
    x = as_tensor(input)
    if x.ndim not in (3, 4):
        warnings.warn(f"dropout2d: received a {x.ndim}-D input; dropout2d is for (N, C, H, W) "
                      "or (C, H, W) inputs (PyTorch deprecates other ranks)", stacklevel=2)
    if x.ndim == 3:
        warnings.warn("dropout2d: a 3-D input is read as (N, C, L) (channel-wise 1-D dropout), "
                      "as PyTorch does; use dropout1d for that", stacklevel=2)
    return _dropout("dropout2d", x, p, training, inplace, True, False, generator)


def dropout3d(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator: Any = None) -> Tensor:
    """Zero whole channels of ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``.

    As PyTorch: other ranks warn, and any input that is not 5-D is taken as one
    unbatched sample (channels on axis 0).

    Args:
        input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``.
        p, training, inplace, generator: as :func:`dropout1d`.

    Returns:
        the input's shape; kept channels are scaled by ``1/(1-p)``.
    """
    p = _check_p("dropout3d", p)
    x = as_tensor(input)
    if x.ndim not in (4, 5):
        warnings.warn(f"dropout3d: received a {x.ndim}-D input; dropout3d is for "
                      "(N, C, D, H, W) or (C, D, H, W) inputs (PyTorch deprecates other ranks)",
                      stacklevel=2)
    return _dropout("dropout3d", x, p, training, inplace, True, False, generator,
                    unbatched=x.ndim != 5)


def alpha_dropout(input: Any, p: float = 0.5, training: bool = False, inplace: bool = False, *,
                  generator: Any = None) -> Tensor:
    """Alpha dropout (for SELU networks): keeps a standard normal input's mean and variance.

    Args:
        input: any shape.
        p: probability of dropping an element, in [0, 1].
        training: drop at all (PyTorch's default here is ``False``).
        inplace, generator: as :func:`dropout1d`.

    Returns:
        the input's shape: ``a (x keep - alpha' (1 - keep)) + a alpha' p``.
    """
    p = _check_p("alpha_dropout", p)
    return _dropout("alpha_dropout", as_tensor(input), p, training, inplace, False, True,
                    generator)


def feature_alpha_dropout(input: Any, p: float = 0.5, training: bool = False,
                          inplace: bool = False, *, generator: Any = None) -> Tensor:
    """Alpha dropout of whole channels: one keep per ``(n, c)`` of ``(N, C, *)``.

    Args:
        input: ``(N, C, *)``, at least 2-D (axes 0 and 1 are always read as N and C,
            as PyTorch does).
        p, training, inplace, generator: as :func:`alpha_dropout`.

    Returns:
        the input's shape.
    """
    p = _check_p("feature_alpha_dropout", p)
    return _dropout("feature_alpha_dropout", as_tensor(input), p, training, inplace, True, True,
                    generator)


__all__ = ["alpha_dropout", "dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout"]

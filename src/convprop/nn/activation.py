"""Activation layers: thin wrappers of :mod:`convprop.functional`, with PyTorch's
arguments, defaults and reprs.

``inplace`` is accepted wherever PyTorch has it (and shown in the repr as
PyTorch shows it) but changes nothing: convprop never overwrites a tensor
another op may need for its backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dtypes import factory_dtype
from ..autograd import Tensor, as_tensor
from ..functional import activation as A
from . import init
from .module import Module, Parameter


def _inplace(inplace: bool, sep: str = ", ") -> str:
    return f"{sep}inplace=True" if inplace else ""


class _Inplace(Module):
    """An activation whose only option is ``inplace``."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return _inplace(self.inplace, "")


class ReLU(_Inplace):
    """``max(x, 0)``."""

    def forward(self, input: Any) -> Tensor:
        return as_tensor(input).relu()


class ReLU6(_Inplace):
    """``min(max(x, 0), 6)``."""

    def forward(self, input: Any) -> Tensor:
        return A.relu6(input)


class SELU(_Inplace):
    """Scaled ELU with the self-normalising constants."""

    def forward(self, input: Any) -> Tensor:
        return A.selu(input)


class SiLU(_Inplace):
    """``x * sigmoid(x)`` (swish)."""

    def forward(self, input: Any) -> Tensor:
        return A.silu(input)


class Mish(_Inplace):
    """``x * tanh(softplus(x))``."""

    def forward(self, input: Any) -> Tensor:
        return A.mish(input)


class Hardswish(_Inplace):
    """``x * relu6(x + 3) / 6``."""

    def forward(self, input: Any) -> Tensor:
        return A.hardswish(input)

    def extra_repr(self) -> str:
        return ""  # PyTorch does not show it here


class Hardsigmoid(_Inplace):
    """``relu6(x + 3) / 6``."""

    def forward(self, input: Any) -> Tensor:
        return A.hardsigmoid(input)

    def extra_repr(self) -> str:
        return ""


class LeakyReLU(Module):
    """``x`` for ``x > 0``, else ``negative_slope * x``."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Any) -> Tensor:
        return A.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace(self.inplace)}"


class ELU(Module):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Any) -> Tensor:
        return A.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace(self.inplace)}"


class CELU(ELU):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""

    def forward(self, input: Any) -> Tensor:
        return A.celu(input, self.alpha)


class GELU(Module):
    """``x * Φ(x)``; ``approximate='tanh'`` uses the tanh approximation."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Any) -> Tensor:
        return A.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Any) -> Tensor:
        return A.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softsign(Module):
    """``x / (1 + |x|)``."""

    def forward(self, input: Any) -> Tensor:
        return A.softsign(input)


class LogSigmoid(Module):
    """``log(sigmoid(x))``, stable."""

    def forward(self, input: Any) -> Tensor:
        return A.logsigmoid(input)


class Tanhshrink(Module):
    """``x - tanh(x)``."""

    def forward(self, input: Any) -> Tensor:
        return A.tanhshrink(input)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``, stable for any ``|x|``."""

    def forward(self, input: Any) -> Tensor:
        return as_tensor(input).sigmoid()


class Tanh(Module):
    """``tanh(x)``."""

    def forward(self, input: Any) -> Tensor:
        return as_tensor(input).tanh()


class Hardtanh(Module):
    """``clamp(x, min_val, max_val)`` (gradient 0 at and beyond the ends)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input: Any) -> Tensor:
        return A.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace(self.inplace)}"


class Threshold(Module):
    """``x`` where ``x > threshold``, else ``value``."""

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input: Any) -> Tensor:
        return A.threshold(input, self.threshold, self.value)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}{_inplace(self.inplace)}"


class Softshrink(Module):
    """``x ∓ lambd`` outside ``[-lambd, lambd]``, else 0."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        A._check_lambd(lambd, "Softshrink")
        self.lambd = lambd

    def forward(self, input: Any) -> Tensor:
        return A.softshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)


class Hardshrink(Module):
    """``x`` outside ``[-lambd, lambd]``, else 0."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def extra_repr(self) -> str:
        return str(self.lambd)

    def forward(self, input: Any) -> Tensor:
        return A.hardshrink(input, self.lambd)


class PReLU(Module):
    """Leaky ReLU with a learnable slope, shared (``num_parameters=1``) or one per channel.

    Args:
        num_parameters: 1, or the number of input channels (axis 1).
        init: the initial slope.
        device: ``None``, ``"cpu"`` or a torch CPU device (convprop runs on the CPU).
        dtype: the weight's dtype (the default dtype, float32, unless given).

    Attributes:
        weight: ``(num_parameters,)``.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if not isinstance(num_parameters, (int, np.integer)) or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive int, got {num_parameters!r}")
        dt = factory_dtype("PReLU", device, dtype)
        self.num_parameters, self.init = int(num_parameters), init
        self.weight = Parameter(np.full(self.num_parameters, init, dtype=dt))

    def reset_parameters(self) -> None:
        self.weight.data[...] = self.init

    def forward(self, input: Any) -> Tensor:
        return A.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomised leaky ReLU: in training, random slopes in ``[lower, upper]`` drawn
    from the generator that :func:`convprop.nn.init.manual_seed` seeds; in ``eval()``
    the fixed slope ``(lower + upper) / 2``."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
                 inplace: bool = False) -> None:
        super().__init__()
        if not 0 <= lower <= upper:
            raise ValueError(f"RReLU: need 0 <= lower <= upper, got lower={lower}, upper={upper}")
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input: Any) -> Tensor:
        return A.rrelu(input, self.lower, self.upper, self.training, generator=init.generator())

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}{_inplace(self.inplace)}"


class GLU(Module):
    """Gated linear unit ``a * sigmoid(b)`` of the two halves of ``dim``."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> Tensor:
        return A.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(Module):
    """Softmax along ``dim`` (PyTorch's legacy implicit choice, with a warning, when None)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> Tensor:
        return A.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmin(Softmax):
    """``softmax(-x)`` along ``dim``."""

    def forward(self, input: Any) -> Tensor:
        return A.softmin(input, self.dim)


class LogSoftmax(Softmax):
    """Log-softmax along ``dim``, computed stably."""

    def forward(self, input: Any) -> Tensor:
        return A.log_softmax(input, self.dim)


class Softmax2d(Module):
    """Softmax over the channels of ``(N, C, H, W)`` or ``(C, H, W)``."""

    def forward(self, input: Any) -> Tensor:
        return A.softmax2d(input)

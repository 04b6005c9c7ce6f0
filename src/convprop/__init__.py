"""convprop: convolution forward and backward propagation in NumPy.

Exact gradients for every convolution, an autograd :class:`Tensor`, PyTorch-shaped
layers and optimizers, and derivations in the notation of the founding document.
"""

from . import functional, nn, optim
from ._windows import output_size
from .autograd import Tensor, as_tensor, enable_grad, is_grad_enabled, no_grad, tensor
from .gradcheck import GradcheckError, gradcheck
from .io import load, save

__version__ = "0.1.0"

__all__ = [
    "GradcheckError",
    "Tensor",
    "as_tensor",
    "enable_grad",
    "functional",
    "gradcheck",
    "is_grad_enabled",
    "load",
    "nn",
    "no_grad",
    "optim",
    "output_size",
    "save",
    "tensor",
]


def __getattr__(name: str):  # lazy: SymPy-backed modules load only when asked for
    if name == "explain":
        from .explainer.derivation import explain

        return explain
    raise AttributeError(f"module 'convprop' has no attribute {name!r}")

"""convprop: convolution forward and backward propagation in NumPy.

Exact gradients for every convolution, an autograd :class:`Tensor`, PyTorch-shaped
layers and optimizers, and derivations in the notation of the founding document.
"""

import numpy as _np

from . import functional, nn, optim
from ._dtypes import get_default_dtype, result_type, set_default_dtype
from ._windows import output_size
from .autograd import (
    Tensor,
    as_tensor,
    cat,
    enable_grad,
    is_grad_enabled,
    no_grad,
    stack,
    where,
)
from .creation import (
    arange,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .gradcheck import GradcheckError, gradcheck
from .io import load, save

# (``torch.seed()`` is ``convprop.random.seed()``: ``convprop.seed`` is the founding pipeline)
from .random import Generator, get_rng_state, initial_seed, manual_seed, set_rng_state

__version__ = "0.1.0"

# dtypes: NumPy's dtype objects under torch's names (``x.dtype == cp.float32``)
float16 = half = _np.dtype(_np.float16)
float32 = _np.dtype(_np.float32)
float64 = double = _np.dtype(_np.float64)
int8 = _np.dtype(_np.int8)
uint8 = _np.dtype(_np.uint8)
int16 = short = _np.dtype(_np.int16)
int32 = _np.dtype(_np.int32)
int64 = long = _np.dtype(_np.int64)
bool = _np.dtype(_np.bool_)  # noqa: A001  (torch.bool)
float = float32  # noqa: A001  (torch.float)

__all__ = [
    "Generator",
    "GradcheckError",
    "Tensor",
    "arange",
    "as_tensor",
    "bool",
    "cat",
    "double",
    "empty",
    "empty_like",
    "enable_grad",
    "eye",
    "float",
    "float16",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "full_like",
    "functional",
    "get_default_dtype",
    "get_rng_state",
    "gradcheck",
    "half",
    "initial_seed",
    "int16",
    "int32",
    "int64",
    "int8",
    "is_grad_enabled",
    "linspace",
    "load",
    "long",
    "manual_seed",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "output_size",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "result_type",
    "save",
    "set_default_dtype",
    "set_rng_state",
    "short",
    "stack",
    "tensor",
    "uint8",
    "where",
    "zeros",
    "zeros_like",
]


def __getattr__(name: str):  # lazy: SymPy-backed modules load only when asked for
    if name == "explain":
        from .explainer.derivation import explain

        return explain
    raise AttributeError(f"module 'convprop' has no attribute {name!r}")

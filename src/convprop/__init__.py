"""convprop: convolution forward and backward propagation in NumPy.

Exact gradients for every convolution, an autograd :class:`Tensor`, PyTorch-shaped
layers and optimizers, and derivations in the notation of the founding document.
"""

import numpy as _np

from . import _functions, functional, nn, optim
from ._dtypes import get_default_dtype, result_type, set_default_dtype
from ._functions import (  # torch.<op>(tensor) spellings of the Tensor methods
    add,
    amax,
    amin,
    argmax,
    argmin,
    chunk,
    clamp,
    clip,
    clone,
    div,
    eq,
    exp,
    flatten,
    ge,
    gt,
    is_tensor,
    le,
    log,
    logsumexp,
    lt,
    matmul,
    maximum,
    mean,
    minimum,
    mul,
    narrow,
    ne,
    neg,
    norm,
    numel,
    permute,
    relu,
    reshape,
    sigmoid,
    split,
    sqrt,
    squeeze,
    std,
    sub,
    t,
    tanh,
    transpose,
    unbind,
    unflatten,
    unsqueeze,
    var,
)
from ._windows import output_size
from .autograd import (
    Tensor,
    as_tensor,
    cat,
    enable_grad,
    grad,
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
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .io import load, save

# torch.seed() has no top-level twin: ``convprop.seed`` is the founding document's module;
# ``convprop.random.seed()`` reseeds the default stream from the operating system.
from .random import Generator, get_rng_state, initial_seed, manual_seed, set_rng_state

__version__ = "0.1.0"

# dtypes: NumPy's dtype objects under torch's names (``x.dtype == cp.float32``)
float16 = half = _np.dtype(_np.float16)
float32 = _np.dtype(_np.float32)
float64 = double = _np.dtype(_np.float64)
int8 = _np.dtype(_np.int8)
uint8 = _np.dtype(_np.uint8)
int16 = short = _np.dtype(_np.int16)
int32 = int = _np.dtype(_np.int32)  # noqa: A001  (torch.int)
int64 = long = _np.dtype(_np.int64)
bool = _np.dtype(_np.bool_)  # noqa: A001  (torch.bool)
float = float32  # noqa: A001  (torch.float)

# torch.sum(x), torch.max(x, dim), ...: attributes, but outside __all__ (see below)
sum, max, min, abs = _functions.sum, _functions.max, _functions.min, _functions.abs
any, all, pow = _functions.any, _functions.all, _functions.pow

# names that would shadow Python's builtins (sum, max, bool, ...) are attributes only,
# so ``from convprop import *`` leaves the builtins alone
__all__ = [
    "add",
    "amax",
    "amin",
    "arange",
    "argmax",
    "argmin",
    "as_tensor",
    "cat",
    "chunk",
    "clamp",
    "clip",
    "clone",
    "div",
    "double",
    "empty",
    "empty_like",
    "enable_grad",
    "eq",
    "exp",
    "eye",
    "flatten",
    "float16",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "full_like",
    "functional",
    "ge",
    "Generator",
    "get_default_dtype",
    "get_rng_state",
    "grad",
    "gradcheck",
    "GradcheckError",
    "gradgradcheck",
    "gt",
    "half",
    "initial_seed",
    "int16",
    "int32",
    "int64",
    "int8",
    "is_grad_enabled",
    "is_tensor",
    "le",
    "linspace",
    "load",
    "log",
    "logsumexp",
    "long",
    "lt",
    "manual_seed",
    "matmul",
    "maximum",
    "mean",
    "minimum",
    "mul",
    "narrow",
    "ne",
    "neg",
    "nn",
    "no_grad",
    "norm",
    "numel",
    "ones",
    "ones_like",
    "optim",
    "output_size",
    "permute",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "relu",
    "reshape",
    "result_type",
    "save",
    "set_default_dtype",
    "set_rng_state",
    "short",
    "sigmoid",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "sub",
    "t",
    "tanh",
    "Tensor",
    "tensor",
    "transpose",
    "uint8",
    "unbind",
    "unflatten",
    "unsqueeze",
    "var",
    "where",
    "zeros",
    "zeros_like",
]


def __getattr__(name: str):  # lazy: SymPy-backed modules load only when asked for
    if name == "explain":
        from .explainer.derivation import explain

        return explain
    raise AttributeError(f"module 'convprop' has no attribute {name!r}")

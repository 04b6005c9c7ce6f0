"""Regenerate ``docs/pytorch-coverage.md``, convprop beside PyTorch: ``python docs/make_coverage.py``.

The document is built from the code: convprop's public names (``__all__`` of
``convprop``, ``convprop.nn``, ``convprop.functional``, ``convprop.optim`` and
``convprop.optim.lr_scheduler``, ``convprop.nn.init`` and ``convprop.nn.utils``, the
public attributes of ``Tensor``, ``nn.Module``, ``optim.Optimizer`` and
``optim.lr_scheduler.LRScheduler``) and the installed PyTorch's names in the same
places.  What is written by hand lives below, in plain lists:

* :data:`TOP_LEVEL` and :data:`TENSOR`: which of ``torch.*`` and ``torch.Tensor``'s
  several hundred names are in scope (the ones a conv net's code reaches for); the
  other namespaces are compared whole.
* :data:`OUT_OF_SCOPE`: each topic convprop leaves out, one line of why, and the PyTorch
  names it covers.  A PyTorch name that is neither in convprop nor listed there is
  reported as in scope and missing.
* :data:`NOT_API`: PyTorch's internal helpers that happen to be public attributes.
* :data:`ALIASES` (PyTorch name -> convprop name, where they differ), :data:`NOTES`
  (deliberate differences, one line each) and :data:`HINTS` (beside a missing name).

The "double backward" column (functions on tensors, Tensor methods, layers, functional ops,
``nn.utils``) comes from ``tests/test_double_backward_coverage.py`` (:func:`double_backward`):
"yes" for every op that test runs through ``gradgradcheck``, "no" with the reason for the
ops it lists as having no derivative, "—" for names that are not differentiable ops.

``tests/test_coverage_doc.py`` regenerates the document in memory and fails when the
committed file differs, so a new op is documented by rerunning this script.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import convprop
import convprop.nn.init
import convprop.nn.utils
import convprop.optim.lr_scheduler

DOC = Path(__file__).resolve().parent / "pytorch-coverage.md"
DOUBLE_BACKWARD_SWEEP = DOC.parent.parent / "tests" / "test_double_backward_coverage.py"
COMMAND = "python docs/make_coverage.py"

SCOPE_RULE = (
    "convprop covers what a convolutional network uses: its layers (convolution, pooling, padding, "
    "normalisation, dropout, activations, resampling and the other image ops), its losses, "
    "initialisation, optimizers and schedulers, the autograd `Tensor` operations its model and "
    "training code call, creation and seeded random numbers, and saving. A PyTorch name is in scope "
    "when a conv net's model, loss or training loop on the CPU would reach for it; it is out of "
    "scope when it belongs to another family of models (recurrent, attention, embeddings), another "
    "kind of tensor (sparse, quantized, complex) or another machine (GPUs, many processes), or is "
    "deprecated in PyTorch itself. `torch.nn`, `torch.nn.functional`, `torch.nn.init`, "
    "`torch.nn.utils`, `torch.optim` and the schedulers are compared name by name, and each name "
    "convprop leaves out is listed at the end with why; of `torch.*` and `torch.Tensor`'s several "
    "hundred names the tables list the ones conv-net code uses."
)

# ---------------------------------------------------------------------------- hand lists

#: ``torch.*`` names in scope, by group (the rest of torch's top level is out of scope).
TOP_LEVEL: dict[str, list[str]] = {
    "Creation": [
        "Tensor", "arange", "as_tensor", "empty", "empty_like", "eye", "from_numpy", "full", "full_like",
        "linspace", "ones", "ones_like", "tensor", "zeros", "zeros_like",
    ],
    "Random numbers": [
        "Generator", "bernoulli", "get_rng_state", "initial_seed", "manual_seed", "multinomial",
        "normal", "rand", "rand_like", "randint", "randint_like", "randn", "randn_like", "randperm",
        "seed", "set_rng_state",
    ],
    "Dtypes": [
        "bfloat16", "bool", "can_cast", "complex128", "complex64", "double", "finfo", "float",
        "float16", "float32", "float64", "get_default_dtype", "half", "iinfo", "int", "int16",
        "int32", "int64", "int8", "is_floating_point", "is_tensor", "long", "promote_types",
        "result_type", "set_default_dtype", "short", "uint8",
    ],
    "Autograd": [
        "autograd.grad", "autograd.gradcheck", "autograd.gradcheck.GradcheckError", "enable_grad",
        "inference_mode", "is_grad_enabled", "no_grad", "set_grad_enabled",
    ],
    "Saving": ["load", "save"],
    "Elementwise": [
        "abs", "add", "clamp", "clip", "div", "exp", "log", "matmul", "maximum", "minimum", "mul",
        "neg", "pow", "relu", "sigmoid", "sqrt", "sub", "tanh", "where",
    ],
    "Reductions": [
        "all", "amax", "amin", "any", "argmax", "argmin", "logsumexp", "max", "mean", "min", "norm",
        "prod", "std", "sum", "var",
    ],
    "Comparison": [
        "allclose", "eq", "equal", "ge", "gt", "isclose", "isfinite", "isnan", "le", "lt", "ne",
    ],
    "Shapes, joining and splitting": [
        "cat", "chunk", "clone", "concat", "concatenate", "flatten", "movedim", "narrow", "numel",
        "permute", "reshape", "split", "squeeze", "stack", "swapaxes", "t", "transpose", "unbind",
        "unflatten", "unsqueeze",
    ],
    "Namespaces": ["nn", "nn.functional", "optim"],
}

#: What each operator method spells, for the Tensor's "Operators" table.
OPERATORS = {
    "__abs__": "abs(a)", "__add__": "a + b", "__and__": "a & b", "__array__": "np.asarray(a)",
    "__bool__": "bool(a)", "__eq__": "a == b", "__float__": "float(a)", "__ge__": "a >= b",
    "__getitem__": "a[i]", "__gt__": "a > b", "__iadd__": "a += b", "__imul__": "a *= b",
    "__index__": "range(a)", "__int__": "int(a)", "__invert__": "~a", "__isub__": "a -= b",
    "__iter__": "for x in a", "__itruediv__": "a /= b", "__le__": "a <= b", "__len__": "len(a)",
    "__lt__": "a < b", "__matmul__": "a @ b", "__mul__": "a * b", "__ne__": "a != b",
    "__neg__": "-a", "__or__": "a | b", "__pow__": "a ** b", "__radd__": "2 + a",
    "__rand__": "m & a", "__rmatmul__": "w @ a", "__rmul__": "2 * a", "__ror__": "m | a",
    "__rpow__": "2 ** a", "__rsub__": "2 - a", "__rtruediv__": "2 / a", "__rxor__": "m ^ a",
    "__setitem__": "a[i] = b", "__sub__": "a - b", "__truediv__": "a / b", "__xor__": "a ^ b",
}

#: ``torch.Tensor`` attributes in scope, by group (the other ~500 are out of scope).
TENSOR: dict[str, list[str]] = {
    "Autograd": [
        "backward", "data", "detach", "detach_", "grad", "grad_fn", "is_leaf", "register_hook",
        "requires_grad", "requires_grad_", "retain_grad", "retains_grad",
    ],
    "Dtype, device and conversion": [
        "bool", "clone", "contiguous", "cpu", "cuda", "device", "double", "dtype", "float", "half",
        "int", "is_floating_point", "item", "long", "new_empty", "new_full", "new_ones", "new_tensor",
        "new_zeros", "numpy", "to", "tolist", "type_as",
    ],
    "Sizes and shapes": [
        "T", "chunk", "dim", "expand", "expand_as", "flatten", "mT", "movedim", "narrow", "ndim",
        "numel", "permute", "repeat", "reshape", "reshape_as", "shape", "size", "split", "squeeze",
        "swapaxes", "t", "transpose", "unbind", "unflatten", "unsqueeze", "view", "view_as",
    ],
    "Reductions": [
        "all", "amax", "amin", "any", "argmax", "argmin", "logsumexp", "max", "mean", "min", "norm",
        "prod", "std", "sum", "var",
    ],
    "Elementwise": [
        "abs", "add", "clamp", "clip", "div", "exp", "log", "matmul", "maximum", "minimum", "mul",
        "neg", "pow", "relu", "sigmoid", "sqrt", "sub", "tanh", "where",
    ],
    "Comparison": ["eq", "ge", "gt", "le", "lt", "ne"],
    "In place": ["add_", "clamp_", "copy_", "div_", "fill_", "mul_", "sub_", "zero_"],
    "Operators": sorted(OPERATORS),
}


@dataclass(frozen=True)
class Topic:
    """Something convprop leaves out: why, and the PyTorch names (by area key) it covers."""

    title: str
    why: str
    names: dict[str, list[str]] = field(default_factory=dict)


OUT_OF_SCOPE: list[Topic] = [
    Topic("Recurrent networks and sequence alignment",
          "another family of models: recurrences over time, packed sequences and CTC alignment.",
          {"nn": ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase",
                  "CTCLoss"],
           "functional": ["ctc_loss", "conv_tbc"],
           "utils": ["rnn"]}),
    Topic("Transformers and attention",
          "another family of models; a conv net's layers are all here without them.",
          {"nn": ["MultiheadAttention", "Transformer", "TransformerDecoder", "TransformerDecoderLayer",
                  "TransformerEncoder", "TransformerEncoderLayer", "attention"],
           "functional": ["multi_head_attention_forward", "scaled_dot_product_attention"]}),
    Topic("Embeddings and large-vocabulary outputs",
          "lookup tables and fused vocabulary-sized classifiers serve language models.",
          {"nn": ["AdaptiveLogSoftmaxWithLoss", "Embedding", "EmbeddingBag", "LinearCrossEntropyLoss",
                  "LinearCrossEntropyOptions"],
           "functional": ["embedding", "embedding_bag", "linear_cross_entropy"]}),
    Topic("Sparse tensors",
          "convprop's tensors are dense NumPy arrays; `torch.sparse` and sparse gradients are "
          "not modelled.",
          {"optim": ["SparseAdam"]}),
    Topic("Quantization",
          "integer inference kernels and quantization-aware training are a deployment concern, "
          "not gradients.",
          {"nn": ["intrinsic", "qat", "quantizable", "quantized"]}),
    Topic("Distributed and multi-process training",
          "convprop runs in one process; its threads are the BLAS's and Numba's.",
          {"nn": ["DataParallel", "SyncBatchNorm", "parallel"], "methods": ["Module.share_memory"]}),
    Topic("Devices other than the CPU",
          "NumPy runs on the CPU; `.to('cpu')`/`.cpu()` are accepted, any other device is an error "
          "naming it. GPU-only matrix products go with them.",
          {"methods": ["Module.cuda", "Module.ipu", "Module.mtia", "Module.to_empty", "Module.xpu"],
           "functional": ["grouped_mm", "scaled_grouped_mm", "scaled_mm", "ScalingType",
                          "SwizzleType"]}),
    Topic("Compilation: `torch.compile`, `torch.jit`, `torch.export`",
          "convprop's fast paths are NumPy and Numba kernels chosen per call; there is no graph "
          "compiler.",
          {"methods": ["Module.compile"]}),
    Topic("Complex and bfloat16 dtypes",
          "NumPy has no bfloat16, and a conv net's weights are real: convprop computes in float32 "
          "(the default) and float64 (float16 is storage only).",
          {"top": ["bfloat16", "complex128", "complex64"], "methods": ["Module.bfloat16"]}),
    Topic("Functional transforms (`torch.func`)",
          "convprop's modules and optimizers own their state; there is no vmap or stateless call.",
          {"utils": ["stateless"], "optim": ["swap_in_optimizer_params_and_state"]}),
    Topic("Memory formats",
          "convprop's arrays are NCHW (NCDHW), C-contiguous; there is no channels-last layout to "
          "convert to.",
          {"utils": ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]}),
    Topic("In-place functional variants",
          "convprop never overwrites a tensor another op may need for its backward; the layers' "
          "`inplace=` is accepted and computes out of place.",
          {"functional": ["celu_", "elu_", "hardtanh_", "leaky_relu_", "relu_", "rrelu_", "selu_",
                          "threshold_"]}),
    Topic("Deprecated in PyTorch",
          "PyTorch itself points to the newer name, which convprop has (or lists as missing).",
          {"nn": ["Container", "NLLLoss2d"],
           "init": ["constant", "dirac", "eye", "kaiming_normal", "kaiming_uniform", "normal",
                    "orthogonal", "sparse", "uniform", "xavier_normal", "xavier_uniform"],
           "utils": ["clip_grad_norm"],
           "methods": ["Module.register_backward_hook"]}),
    Topic("Data loading, mixed precision, profiling, model zoos",
          "outside the library's subject: convprop trains on NumPy arrays from any iterator "
          "(`torch.utils.data`, `torch.amp`, `torch.profiler`, `torchvision.models` have no twin).",
          {}),
]

#: PyTorch's public attributes that are internal helpers, not API (skipped, named in the doc).
NOT_API: dict[str, list[str]] = {
    "nn": ["common_types", "factory_kwargs", "modules", "parameter"],
    "functional": ["assert_int_or_pair", "boolean_dispatch", "handle_torch_function",
                   "has_torch_function", "has_torch_function_unary", "has_torch_function_variadic"],
    "methods": ["Module.T_destination", "Module.call_super_init", "Module.dump_patches",
                "Optimizer.OptimizerPostHook", "Optimizer.OptimizerPreHook",
                "Optimizer.profile_hook_step"],
}

#: PyTorch name -> convprop name, per area, where the two differ.
ALIASES: dict[str, dict[str, str]] = {
    "top": {"autograd.gradcheck": "gradcheck", "autograd.gradcheck.GradcheckError": "GradcheckError",
            "nn.functional": "functional", "seed": "random.seed"},
}

_RANDOM = "same distribution; the numbers differ from PyTorch's (a NumPy generator)"
_STREAM = "draws from convprop's default stream (`manual_seed`); the numbers differ from PyTorch's"
_BUILTIN = "an attribute outside `__all__`, so `from convprop import *` keeps Python's builtin"

#: One line per deliberate difference, by area and convprop-side name (or PyTorch name if missing).
NOTES: dict[str, dict[str, str]] = {
    "top": {
        "tensor": "Python floats become the default dtype (float32), ints int64; arrays keep theirs",
        "from_numpy": "shares the array's memory, as PyTorch's",
        "manual_seed": "seeds one stream that drives `rand*`, `nn.init` and dropout, so a seed repeats "
                       "a whole run; the numbers differ from PyTorch's",
        "Generator": "wraps a NumPy generator; pass it as `generator=`",
        "random.seed": "`convprop.seed` is the founding document's module, not this function",
        "rand": _RANDOM, "randn": _RANDOM, "randint": _RANDOM, "randperm": _RANDOM,
        "rand_like": _RANDOM, "randn_like": _RANDOM,
        "save": "`save(obj, path)` writes `.npz` (no pickle), atomically, and refuses another suffix; "
                "`optim.to_torch` carries optimizer state to PyTorch",
        "load": "`load(path)` reads convprop's `.npz` and never unpickles",
        "gradcheck": "float64 centred differences on a random projection: "
                     "`gradcheck(fn, *inputs, eps=, atol=, rtol=, seed=, raise_exception=)`",
        "GradcheckError": "raised by `gradcheck` on a mismatch",
        "output_size": "the founding document's eq. (1), with dilation",
        "explain": "the founding document's derivation, symbolic (SymPy); loaded on first use",
        "functional": "also importable as `convprop.nn.functional`",
        "Tensor": "`Tensor(data)` converts to a floating dtype, as `torch.Tensor(data)`",
        "abs": _BUILTIN, "all": _BUILTIN, "any": _BUILTIN, "max": _BUILTIN, "min": _BUILTIN,
        "pow": _BUILTIN, "sum": _BUILTIN,
        **{d: f"`np.dtype('{getattr(convprop, d).name}')`" for d in (
            "double", "float16", "float32", "float64", "half", "int16", "int32", "int64", "int8",
            "long", "short", "uint8")},
        "bool": f"`np.dtype('bool')`; {_BUILTIN}", "float": f"`np.dtype('float32')`; {_BUILTIN}",
        "result_type": "the promotion rule of a binary op on these operands",
    },
    "tensor": {
        **{name: f"`{spelling}`" for name, spelling in OPERATORS.items()},
        "__setitem__": "`a[i] = b`, recorded by autograd",
        "data": "the NumPy array itself",
        "grad": "a NumPy array (or None), not a Tensor",
        "numpy": "shares memory; refuses a tensor that requires grad unless `force=True`, as PyTorch",
        "device": "always the string `'cpu'`",
        "cuda": "raises an error naming the device: convprop runs on the CPU",
        "to": "dtypes and `'cpu'`; any other device is an error naming it",
        "astype": "NumPy's spelling of `.to(dtype)`",
    },
    "nn": {
        **{n: _STREAM for n in ("AlphaDropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
                                "FeatureAlphaDropout")},
        "RReLU": "training mode draws from convprop's default stream; eval mode is deterministic",
        "Parameter": "a Tensor subclass with `requires_grad=True`",
        "Module": "`state_dict()` holds NumPy arrays; `cp.save` writes it as `.npz`",
        "IncompatibleKeys": "PyTorch's `_IncompatibleKeys`, returned by `load_state_dict`",
        "StateDictError": "raised by `load_state_dict` (a `RuntimeError`, as PyTorch raises)",
    },
    "functional": {
        **{n: _STREAM for n in ("alpha_dropout", "dropout", "dropout1d", "dropout2d", "dropout3d",
                                "feature_alpha_dropout")},
        "rrelu": "training mode draws from convprop's default stream",
        "TargetError": "a class target outside [0, C): an `IndexError` (as PyTorch) and a `ValueError`",
        "exp": "elementwise, for `F.*` spellings of model code",
        "log": "elementwise, for `F.*` spellings of model code",
        "softmax2d": "the function behind `nn.Softmax2d` (softmax over axis -3)",
    },
    "init": {
        **{n: _RANDOM for n in ("uniform_", "normal_", "trunc_normal_", "xavier_uniform_",
                                "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_")},
        "calculate_fan_in_and_fan_out": "PyTorch's private `_calculate_fan_in_and_fan_out`, public here",
        "generator": "the NumPy generator behind the default stream",
        "manual_seed": "`convprop.manual_seed`, reachable here too",
        "default_init_": "the initialisation PyTorch's conv and linear layers apply in "
                         "`reset_parameters`",
    },
    "optim": {
        "Optimizer": "`state_dict()` in PyTorch's layout (param ids by position, `state`, "
                     "`param_groups`)",
        "from_torch": "a `torch.optim` state dict as NumPy arrays, ready for `load_state_dict`",
        "to_torch": "a convprop state dict as `torch.Tensor`s, ready for `torch.optim`",
    },
    "schedulers": {
        "LRScheduler": "`state_dict()` is PyTorch's, so a state dict loads either way",
    },
}

#: A hint beside a name convprop does not have yet: what to use meanwhile, or what it is.
HINTS: dict[str, dict[str, str]] = {
    "nn": {"grad": "`torch.nn.grad.conv2d_input/conv2d_weight`: convprop computes these inside "
                   "autograd"},
    "functional": {f"{p}_pool{d}d_with_indices": f"`{p}_pool{d}d(..., return_indices=True)` does this"
                   for p in ("max", "adaptive_max") for d in (1, 2, 3)},
    "tensor": {name: f"`{spelling}`" for name, spelling in OPERATORS.items()},
}


# ---------------------------------------------------------------------------- areas


@dataclass(frozen=True)
class Area:
    """One namespace compared: convprop's names, PyTorch's, and how to group them."""

    key: str
    title: str
    torch_prefix: str
    convprop_prefix: str
    convprop_names: Callable[[], set[str]]
    torch_names: Callable[[], set[str]] | None  # the whole namespace; None: TOP_LEVEL/TENSOR lists
    group: Callable[[str, str | None], str]  # (PyTorch name, convprop name or None) -> group title
    groups: dict[str, list[str]] | None = None  # the hand-listed scope of torch.* and torch.Tensor
    prose: str = ""
    labels: tuple[str, str] | None = None  # (PyTorch, convprop) where the prefixes say too little

    def torch_label(self) -> str:
        return self.labels[0] if self.labels else f"`{self.torch_prefix.rstrip('.')}`"

    def convprop_label(self) -> str:
        return self.labels[1] if self.labels else f"`{self.convprop_prefix.rstrip('.')}`"

    def qualified(self, name: str) -> str:
        """The full PyTorch name, e.g. ``torch.nn.Module.cuda`` for ``Module.cuda``."""
        cls, _, rest = name.partition(".")
        if self.key == "methods":
            return f"torch.{_METHOD_CLASSES[cls]}.{rest}"
        return self.torch_prefix + name

    def convprop_qualified(self, name: str) -> str:
        cls, _, rest = name.partition(".")
        if self.key == "methods":
            return f"convprop.{_METHOD_CLASSES[cls]}.{rest}"
        return self.convprop_prefix + name


_METHOD_CLASSES = {"Module": "nn.Module", "Optimizer": "optim.Optimizer",
                   "LRScheduler": "optim.lr_scheduler.LRScheduler"}


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def _dunders(cls: type) -> set[str]:
    """Operator methods a class defines itself (not inherited from ``object``)."""
    return {n for k in cls.__mro__[:-1] for n in vars(k) if n.startswith("__") and n.endswith("__")}


def _top_convprop() -> set[str]:
    shadowing = {n for n in _public(convprop) - set(convprop.__all__)
                 if not isinstance(getattr(convprop, n), types.ModuleType)}
    return set(convprop.__all__) | shadowing | {"explain", "random.seed"}


def _nn_convprop() -> set[str]:
    return set(convprop.nn.__all__) | {"utils"}  # convprop.nn.utils, outside nn.__all__


def _tensor_convprop() -> set[str]:
    ops = {n for n in _dunders(convprop.Tensor) if n in TENSOR["Operators"]}
    return _public(convprop.Tensor) | ops


def _methods_convprop() -> set[str]:
    return {f"{name}.{m}" for name, cls in _method_classes(convprop).items() for m in _public(cls)}


def _method_classes(lib: types.ModuleType) -> dict[str, type]:
    return {"Module": lib.nn.Module, "Optimizer": lib.optim.Optimizer,
            "LRScheduler": lib.optim.lr_scheduler.LRScheduler}


def _torch() -> types.ModuleType:
    import torch

    return torch


def _torch_nn() -> set[str]:
    return _public(_torch().nn)


def _torch_functional() -> set[str]:
    import torch.nn.functional as F

    return {n for n in _public(F) if inspect.isroutine(getattr(F, n))} | {"ScalingType", "SwizzleType"}


def _torch_all(module: str) -> Callable[[], set[str]]:
    return lambda: set(importlib.import_module(module).__all__)


def _torch_methods() -> set[str]:
    return {f"{name}.{m}" for name, cls in _method_classes(_torch()).items() for m in _public(cls)}


# grouping: torch.nn by the PyTorch source file a class lives in
_NN_FILES = {
    "conv": "Convolution", "pooling": "Pooling", "padding": "Padding", "activation": "Activations",
    "batchnorm": "Normalisation", "instancenorm": "Normalisation", "normalization": "Normalisation",
    "dropout": "Dropout", "linear": "Linear, identity, flatten", "flatten": "Linear, identity, flatten",
    "container": "Module and containers", "module": "Module and containers", "loss": "Losses",
    "pixelshuffle": "Resampling and image ops", "upsampling": "Resampling and image ops",
    "fold": "Resampling and image ops", "channelshuffle": "Resampling and image ops",
    "distance": "Distances", "parameter": "Parameters and buffers",
}


def _group_nn(torch_name: str, convprop_name: str | None) -> str:
    obj = getattr(_torch().nn, torch_name)
    if isinstance(obj, types.ModuleType):
        return "Namespaces"
    return _NN_FILES.get(obj.__module__.rsplit(".", 1)[-1], "Other")


def _group_functional(name: str, convprop_name: str | None) -> str:
    rules: list[tuple[str, Callable[[str], bool]]] = [
        ("Convolution and linear", lambda n: n.startswith("conv") or n in ("linear", "bilinear")),
        ("Pooling", lambda n: "pool" in n),
        ("Dropout", lambda n: "dropout" in n),
        ("Normalisation", lambda n: n.endswith("norm") or n == "normalize"),
        ("Losses and targets", lambda n: "loss" in n or n in (
            "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "kl_div",
            "nll_loss", "one_hot", "TargetError")),
        ("Distances", lambda n: n in ("cosine_similarity", "pairwise_distance", "pdist")),
        ("Padding, resampling and image ops", lambda n: n in (
            "pad", "interpolate", "fold", "unfold", "grid_sample", "affine_grid", "pixel_shuffle",
            "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle") or n.startswith("upsample")),
    ]
    return next((title for title, rule in rules if rule(name)), "Activations and elementwise")


def _group_listed(groups: dict[str, list[str]]) -> Callable[[str, str | None], str]:
    where = {name: title for title, names in groups.items() for name in names}
    return lambda name, convprop_name: where.get(name, "Other")


def _one_group(title: str) -> Callable[[str, str | None], str]:
    return lambda name, convprop_name: title


def areas() -> list[Area]:
    """The compared namespaces, in the document's order."""
    lr = convprop.optim.lr_scheduler
    return [
        Area("top", "Creation, random numbers, dtypes and functions on tensors", "torch.", "convprop.",
             _top_convprop, None, _group_listed(TOP_LEVEL), TOP_LEVEL,
             "torch's top level has hundreds of names; these groups are the ones a conv net's code "
             "uses, the rest (linear algebra, FFT, special functions, ...) is out of scope."),
        Area("tensor", "Tensor methods and properties", "torch.Tensor.", "convprop.Tensor.",
             _tensor_convprop, None, _group_listed(TENSOR), TENSOR,
             "Indexing and slicing (basic and integer-array) record gradients that scatter back; "
             "comparisons return bool tensors."),
        Area("nn", "Layers, losses and containers", "torch.nn.", "convprop.nn.",
             _nn_convprop, _torch_nn, _group_nn),
        Area("functional", "Functional ops", "torch.nn.functional.", "convprop.functional.",
             lambda: set(convprop.functional.__all__), _torch_functional, _group_functional,
             prose="`import convprop.nn.functional as F` gives the same module."),
        Area("init", "Initialisation", "torch.nn.init.", "convprop.nn.init.",
             lambda: _public(convprop.nn.init) - _NOT_INIT, _torch_all("torch.nn.init"),
             _one_group("`nn.init`"),
             prose="Every function fills in place and returns the tensor, with PyTorch's fan rules."),
        Area("utils", "Utilities: gradient clipping, parameter vectors", "torch.nn.utils.",
             "convprop.nn.utils.",
             lambda: set(convprop.nn.utils.__all__), _torch_all("torch.nn.utils"),
             _one_group("`nn.utils`")),
        Area("optim", "Optimizers", "torch.optim.", "convprop.optim.",
             lambda: set(convprop.optim.__all__) - set(lr.__all__), _torch_all("torch.optim"),
             _one_group("Optimizers"),
             prose="Each follows PyTorch's trajectory; `convprop.optim` also re-exports the "
                   "schedulers."),
        Area("schedulers", "Learning-rate schedulers", "torch.optim.lr_scheduler.",
             "convprop.optim.lr_scheduler.", lambda: set(lr.__all__),
             _torch_all("torch.optim.lr_scheduler"), _one_group("Schedulers")),
        Area("methods", "Methods of Module, Optimizer and LRScheduler", "torch.", "convprop.",
             _methods_convprop, _torch_methods, lambda n, c: f"`{n.split('.')[0]}`",
             prose="`Module` lives in `nn`, `Optimizer` in `optim`, `LRScheduler` in "
                   "`optim.lr_scheduler`, as in PyTorch.",
             labels=("`Module`, `Optimizer`, `LRScheduler`", "the same classes")),
    ]


#: module-level imports of convprop.nn.init that are not its API
_NOT_INIT = {"Any", "Tensor", "annotations", "math", "np"}


# ---------------------------------------------------------------------------- classification


@dataclass
class Group:
    title: str
    rows: list[tuple[str | None, str | None, str]] = field(default_factory=list)  # torch, convprop, note
    missing: list[str] = field(default_factory=list)


@dataclass
class Compared:
    area: Area
    torch_names: set[str]
    groups: list[Group]
    out_of_scope: list[str]
    not_api: list[str]
    switches: dict[str, list[str]] = field(default_factory=dict)  # PyTorch argument -> names lacking it

    def count(self, kind: str) -> int:
        if kind == "have":
            return sum(1 for g in self.groups for t, c, _ in g.rows if t and c)
        if kind == "only":
            return sum(1 for g in self.groups for t, c, _ in g.rows if not t)
        if kind == "missing":
            return sum(len(g.missing) for g in self.groups)
        return len(self.out_of_scope)


def _out_of_scope(key: str) -> set[str]:
    return {n for topic in OUT_OF_SCOPE for n in topic.names.get(key, [])}


def _sort_key(name: str) -> tuple[str, str]:
    return name.lower(), name


def _torch_scope(area: Area) -> set[str]:
    if area.groups is not None:
        return {n for names in area.groups.values() for n in names}
    assert area.torch_names is not None
    return area.torch_names() - set(NOT_API.get(area.key, []))


_MISSING = object()


def resolve(dotted: str) -> object:
    """The object a dotted name such as ``torch.autograd.gradcheck.GradcheckError`` names, or
    :data:`_MISSING`.  Walks attributes, importing submodules where an attribute is absent or is
    a function that shadows its module (``torch.autograd.gradcheck``)."""
    parts = dotted.split(".")
    obj: object = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=2):
        attr = getattr(obj, part, _MISSING)
        if attr is _MISSING or (isinstance(attr, types.FunctionType) and i < len(parts)):
            try:
                attr = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                return _MISSING
        obj = attr
    return obj


def _arguments(obj: object) -> tuple[list[str], bool, set[str]] | None:
    """Named arguments of a function or class, in order, whether it takes ``**kwargs``, and
    the required ones; None when the signature is unknown or only ``*args, **kwargs``."""
    try:
        params = list(inspect.signature(obj).parameters.values())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    named = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
             and p.name != "self"]
    if not named and params:
        return None
    required = {p.name for p in params if p.default is p.empty and p.name in named}
    return named, any(p.kind is p.VAR_KEYWORD for p in params), required


def argument_differences(theirs: object, ours: object
                         ) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """PyTorch's arguments convprop lacks, convprop's extra ones, and (PyTorch, convprop) pairs
    of the same argument under another name (same position, both required, neither name on the
    other side)."""
    mine = _arguments(ours) if callable(ours) and not isinstance(ours, types.ModuleType) else None
    torchs = _arguments(theirs) if callable(theirs) else None
    if mine is None or torchs is None:
        return [], [], []
    renamed = [(t, c) for t, c in zip(torchs[0], mine[0], strict=False)
               if t != c and t not in mine[0] and c not in torchs[0] and t in torchs[2] and c in mine[2]]
    lacks = [a for a in torchs[0] if a not in mine[0] and a not in _INTERNAL_ARGUMENTS
             and a not in {t for t, _ in renamed}]
    adds = [a for a in mine[0] if a not in torchs[0] and a not in {c for _, c in renamed}]
    return ([] if mine[1] else lacks), ([] if torchs[1] else adds), renamed


def _signature_note(name: str, theirs: object, ours: object) -> str:
    """Generated: ``inplace=`` is accepted but computes out of place (outside
    :data:`WRITES_IN_PLACE`); arguments PyTorch takes
    that convprop does not, the other way round, and renamed ones (:data:`SWITCHES` are
    summed up per area instead; operators' argument names do not matter)."""
    if name.startswith("__"):
        return ""
    mine = _arguments(ours) if callable(ours) and not isinstance(ours, types.ModuleType) else None
    notes = []
    if mine is not None and "inplace" in mine[0] and name not in WRITES_IN_PLACE:
        notes.append("`inplace=True` is accepted and computes out of place")
    lacks, adds, renamed = argument_differences(theirs, ours)
    lacks = [a for a in lacks if a not in SWITCHES]
    if lacks:
        notes.append(f"PyTorch's {_code(a + '=' for a in lacks)} not taken")
    if adds:
        notes.append(f"also takes {_code(a + '=' for a in adds)}")
    if renamed:
        notes.append("; ".join(f"`{t}=` is `{c}=` here" for t, c in renamed))
    return "; ".join(notes)


#: Where ``inplace=True`` writes into the input, as PyTorch (its in-place rules): no note.
WRITES_IN_PLACE = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                   "feature_alpha_dropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d"}

#: PyTorch arguments that are plumbing, not options (``enable_grad(orig_func)``).
_INTERNAL_ARGUMENTS = {"orig_func"}

#: Hand notes that already say how the arguments differ (no generated argument note then).
SIGNATURE_EXPLAINED = {("top", "gradcheck"), ("top", "load"), ("top", "save")}

#: PyTorch arguments that choose a device or an implementation, not a result: one line per area
#: names what lacks them, instead of a note on every row.
SWITCHES = {
    "device": "convprop runs on the CPU",
    "foreach": "implementation switch",
    "fused": "implementation switch",
    "capturable": "CUDA graphs",
    "differentiable": "gradients through the update",
}


def _note(area: Area, torch_name: str | None, name: str) -> str:
    ours = resolve(area.convprop_qualified(name))
    theirs = resolve(area.qualified(torch_name)) if torch_name else _MISSING
    generated = "" if (area.key, name) in SIGNATURE_EXPLAINED else _signature_note(name, theirs, ours)
    notes = [NOTES.get(area.key, {}).get(name, ""), generated]
    return "; ".join(n for n in notes if n)


def compare(area: Area) -> Compared:
    """Sort every name of one area into a table row, a missing name or an out-of-scope one."""
    ours = area.convprop_names()
    aliases = ALIASES.get(area.key, {})
    scope = _torch_scope(area)
    if area.groups is not None:  # a name convprop adds later that PyTorch has too is compared
        scope |= {n for n in ours - set(aliases.values()) if resolve(area.qualified(n)) is not _MISSING}
    out = _out_of_scope(area.key)
    by_title: dict[str, Group] = {}
    matched: set[str] = set()

    def group(title: str) -> Group:
        return by_title.setdefault(title, Group(title))

    for name in sorted(scope, key=_sort_key):
        mine = aliases.get(name, name)
        if mine in ours:
            matched.add(mine)
            group(area.group(name, mine)).rows.append((name, mine, _note(area, name, mine)))
        elif name not in out:
            group(area.group(name, None)).missing.append(name)
    for name in sorted(ours - matched, key=_sort_key):
        group("Only in convprop").rows.append((None, name, _note(area, None, name)))
    order = list(area.groups) if area.groups is not None else sorted(by_title)
    order = [t for t in order if t not in ("Other", "Only in convprop")] + ["Other", "Only in convprop"]
    groups = [by_title[t] for t in order if t in by_title]
    switches: dict[str, list[str]] = {}
    for g in groups:
        for theirs, mine, _ in g.rows:
            if theirs and not mine.startswith("__"):
                lacks = argument_differences(resolve(area.qualified(theirs)),
                                             resolve(area.convprop_qualified(mine)))[0]
                for arg in sorted(set(lacks) & set(SWITCHES), key=list(SWITCHES).index):
                    switches.setdefault(arg, []).append(mine)
    return Compared(area, scope, groups, sorted(scope & out - set(aliases), key=_sort_key),
                    sorted(set(NOT_API.get(area.key, [])), key=_sort_key), switches)


def problems() -> list[str]:
    """Hand lists that disagree with the installed PyTorch or with convprop (empty when sound)."""
    found = []
    for area in areas():
        ours = area.convprop_names()
        universe = (area.torch_names() if area.torch_names is not None
                    else _torch_scope(area))
        if area.groups is not None:
            universe = {n for n in universe if resolve(area.qualified(n)) is not _MISSING}
        for topic in OUT_OF_SCOPE:
            for name in topic.names.get(area.key, []):
                if name not in universe:
                    found.append(f"{area.key}: out-of-scope name {name!r} is not in this PyTorch")
                if name in ours:
                    found.append(f"{area.key}: {name!r} is listed out of scope but convprop has it")
        for name in NOT_API.get(area.key, []):
            if area.torch_names is not None and name not in area.torch_names():
                found.append(f"{area.key}: helper {name!r} is not in this PyTorch")
        if area.groups is not None:
            found += [f"{area.key}: {n!r} is not in this PyTorch" for n in _torch_scope(area) - universe]
        for table in ("NOTES", "HINTS"):
            stale = set(globals()[table].get(area.key, {})) - ours - universe
            found += [f"{area.key}: {table} has {n!r}, which neither side has" for n in sorted(stale)]
    return found


# ---------------------------------------------------------------------------- double backward

#: areas whose tables carry the "double backward" column
DOUBLE_BACKWARD_AREAS = ("top", "tensor", "nn", "functional", "utils")


def double_backward() -> dict[str, str]:
    """Qualified convprop name -> ``"yes"`` or ``"no: <reason>"``, from the sweep that checks it
    (``tests/test_double_backward_coverage.py``, loaded by path: the tests are no package)."""
    spec = importlib.util.spec_from_file_location("double_backward_sweep", DOUBLE_BACKWARD_SWEEP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.double_backward_table()


def _double_cell(table: dict[str, str], qualified: str) -> str:
    verdict = table.get(qualified, "—")  # not a differentiable op
    return verdict.replace("no: ", "no (") + ")" if verdict.startswith("no: ") else verdict


def _double_summary(table: dict[str, str], area: Area, names: Iterable[str]) -> str:
    verdicts = {n: table.get(area.convprop_qualified(n), "") for n in names}
    have = sorted(n for n, v in verdicts.items() if v == "yes")
    refused = sorted(n for n, v in verdicts.items() if v.startswith("no"))
    many = "names here have one" if len(have) != 1 else "name here has one"
    line = (f"Double backward (`create_graph=True`): {len(have)} differentiable {many}, "
            "each checked by `gradgradcheck` in `tests/test_double_backward_coverage.py` (and against "
            "PyTorch's in `tests/test_higher_order.py`, where PyTorch has one)")
    if refused:
        line += f"; {len(refused)} have no derivative at all and refuse one: {_code(refused)}"
    return line + "."


# ---------------------------------------------------------------------------- rendering


def _code(names: Iterable[str], prefix: str = "") -> str:
    return ", ".join(f"`{prefix}{n}`" for n in names)


def _missing_line(area: Area, names: list[str]) -> str:
    parts = []
    for name in names:
        note = HINTS.get(area.key, {}).get(name)
        parts.append(f"`{name}` ({note})" if note else f"`{name}`")
    return "In scope, not in convprop yet: " + ", ".join(parts) + "."


def render() -> str:
    """The whole document, as ``docs/pytorch-coverage.md`` should hold it."""
    torch = _torch()
    compared = [compare(area) for area in areas()]
    doubles = double_backward()
    lines = [
        "# convprop beside PyTorch",
        "",
        "<!-- generated by `python docs/make_coverage.py`: edit the script, not this file -->",
        "",
        f"Generated from the code by `{COMMAND}`, against PyTorch {torch.__version__.split('+')[0]}; "
        "`tests/test_coverage_doc.py` fails when this file is out of date. Each table gives a PyTorch "
        "name, convprop's name for the same thing (the same name unless shown otherwise), and how "
        "they differ where they do. Arguments, defaults and results are PyTorch's unless a note says "
        "otherwise.",
        "",
        f"**Scope.** {SCOPE_RULE}",
        "",
        "Deliberate differences everywhere: tensors hold NumPy arrays on the CPU; float32 is the "
        "default dtype, as in PyTorch; random numbers come from one seeded NumPy stream, so a seed "
        "repeats a run but not PyTorch's numbers; files are `.npz`, never pickle.",
        "",
        "| area | PyTorch | convprop | has | in scope, missing | out of scope | only in convprop |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    for c in compared:
        anchor = re.sub(r"[^\w\- ]", "", c.area.title.lower()).replace(" ", "-")  # GitHub's slug
        lines.append(f"| [{c.area.title}](#{anchor}) | {c.area.torch_label()} | "
                     f"{c.area.convprop_label()} | {c.count('have')} | {c.count('missing')} | "
                     f"{c.count('out')} | {c.count('only')} |")
    for c in compared:
        mapping = "" if c.area.labels else f"`{c.area.torch_prefix}*` → `{c.area.convprop_prefix}*`. "
        lines += ["", f"## {c.area.title}", "", (mapping + c.area.prose).strip()]
        double = c.area.key in DOUBLE_BACKWARD_AREAS
        if double:
            lines += ["", _double_summary(doubles, c.area, (m for g in c.groups for _, m, _ in g.rows))]
        for g in c.groups:
            lines += ["", f"### {g.title}"]
            if g.rows:
                lines += (["", "| PyTorch | convprop | double backward | notes |", "|---|---|---|---|"]
                          if double else ["", "| PyTorch | convprop | notes |", "|---|---|---|"])
                for t, mine, note in g.rows:
                    theirs = f"`{t}`" if t else "—"
                    ours = f"`{mine}`"
                    extra = (_double_cell(doubles, c.area.convprop_qualified(mine)),) if double else ()
                    cells = (theirs, ours, *extra, note.replace("|", "\\|"))  # a bare | ends a cell
                    lines.append("| " + " | ".join(cells) + " |")
            if g.missing:
                lines += ["", _missing_line(c.area, g.missing)]
        for arg, names in c.switches.items():
            lines += ["", f"PyTorch's `{arg}=` ({SWITCHES[arg]}) is not taken by "
                          f"{_code(sorted(names, key=_sort_key))}."]
        if c.out_of_scope:
            lines += ["", f"Out of scope (see below): {_code(c.out_of_scope)}."]
        if c.not_api:
            lines += ["", f"Not counted, PyTorch's internal helpers: {_code(c.not_api)}."]
    lines += ["", "## Out of scope", "",
              "These PyTorch features have no convprop twin, on purpose."]
    by_key = {a.key: a for a in areas()}
    for topic in OUT_OF_SCOPE:
        why = topic.why if topic.why.startswith("convprop") else topic.why[0].upper() + topic.why[1:]
        lines += ["", f"### {topic.title}", "", why]
        names = [by_key[k].qualified(n) for k, ns in topic.names.items() for n in ns]
        if names:
            lines += ["", f"PyTorch names: {_code(sorted(names, key=_sort_key))}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    trouble = problems()
    for line in trouble:
        print(f"warning: {line}", file=sys.stderr)
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC.relative_to(DOC.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

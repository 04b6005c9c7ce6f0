"""Dtypes and devices by PyTorch's rules: names, the default dtype, type promotion,
and the conversion ``Tensor(data)`` applies.

A leaf module (it imports nothing from convprop), shared by the Tensor, the
creation functions and the ops that must refuse mixed dtypes.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

# ------------------------------------------------------------------ dtypes and devices
_default_dtype = np.dtype(np.float32)

# torch's names for dtypes where they differ from NumPy's ("float" is float32 in torch)
_TORCH_NAMES = {
    "float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
    "short": "int16", "bool": "bool", "float32": "float32", "float64": "float64",
    "float16": "float16", "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8",
    "uint8": "uint8",
}


# PyTorch's device types: a string naming one is a device, any other string a dtype
_DEVICE_TYPES = {"cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "ipu", "hpu", "mtia",
                 "vulkan", "lazy", "ve", "fpga", "mkldnn", "opengl", "opencl", "ideep",
                 "privateuseone"}


def get_default_dtype() -> np.dtype:
    """The dtype of Python floats turned into Tensors (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the floating dtype for Python data (``torch.set_default_dtype``; process-wide, as there).

    Raises:
        TypeError: for a dtype other than float16, float32 or float64.
    """
    global _default_dtype
    d = to_dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"set_default_dtype: dtype must be floating, got {d}")
    _default_dtype = d


def to_dtype(dtype: Any) -> np.dtype:
    """A dtype from a NumPy dtype, a Python type (``float`` is float64, as ``torch.tensor``
    reads it), a torch dtype, or a name in torch's spelling (``"float"`` is float32,
    ``"torch.float64"``, ``"long"``).

    Raises:
        TypeError: for anything else, or a dtype convprop's Tensors cannot hold.
    """
    if isinstance(dtype, str) or type(dtype).__name__ == "dtype" and not isinstance(dtype, np.dtype):
        name = str(dtype).removeprefix("torch.")
        if name not in _TORCH_NAMES:
            raise TypeError(f"dtype {dtype!r} is not supported; use one of "
                            f"{', '.join(sorted(_TORCH_NAMES))}")
        return np.dtype(_TORCH_NAMES[name])
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a dtype, got {dtype!r}") from None
    if d.kind not in "biuf":
        raise TypeError(f"dtype must be a real number type (float, int or bool), got {d}")
    return d


def check_device(device: Any, where: str) -> None:
    """Accept ``None``, ``"cpu"`` (``"cpu:0"``) or a torch CPU device; anything else is a
    ``ValueError`` naming the device, since convprop computes on the CPU only."""
    if device is None:
        return
    name = str(device)
    if name not in ("cpu", "cpu:0"):
        raise ValueError(f"{where}: device {name!r} is not available; convprop runs on the CPU "
                         "only (use 'cpu')")


def factory_dtype(where: str, device: Any = None, dtype: Any = None) -> np.dtype:
    """The parameter dtype that a layer's ``device=`` and ``dtype=`` arguments (PyTorch's
    factory keywords) ask for.

    ``device`` must name the CPU (see :func:`check_device`); ``dtype`` is a floating
    dtype in any spelling :func:`to_dtype` reads, and ``None`` means the default
    dtype (float32 unless :func:`set_default_dtype` changed it), as in PyTorch.

    Raises:
        ValueError: for a device other than the CPU, naming it and ``where``.
        TypeError: for a dtype that is not floating, naming it and ``where``.
    """
    check_device(device, where)
    if dtype is None:
        return _default_dtype
    try:
        d = to_dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{where}: {e}") from None
    if d.kind != "f":
        raise TypeError(f"{where}: dtype must be a floating type (parameters are learned), got {d}")
    return d


def is_device(x: Any) -> bool:
    """Whether a ``to()`` argument names a device (a string that is no dtype name, or a
    torch.device) rather than a dtype."""
    if type(x).__name__ == "device":
        return True
    return isinstance(x, str) and x.split(":")[0] in _DEVICE_TYPES


def check_same_dtype(op: str, **named: Any) -> np.dtype:
    """Require every named Tensor or array (``None`` skipped) to have one dtype; return it.

    PyTorch refuses to mix, e.g., a float32 weight with a float64 input in a matrix
    product instead of silently promoting; this is its rule, with one message for
    every op that needs it (linear, matmul, convolutions).

    Raises:
        TypeError: naming each argument and its dtype.
    """
    items = [(k, v.dtype) for k, v in named.items() if v is not None]
    if any(dt != items[0][1] for _, dt in items[1:]):
        listing = ", ".join(f"{k} is {dt}" for k, dt in items)
        raise TypeError(f"{op}: expected all arguments to have the same dtype, but {listing}; "
                        "convert with .float()/.double(), or the model with .to(dtype)")
    return items[0][1] if items else _default_dtype


_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def _promote(a: np.dtype | None, b: np.dtype | None) -> np.dtype | None:
    """torch.promote_types: across kinds (bool < int < float) the higher kind wins as is."""
    if a is None or b is None:
        return a if b is None else b
    ra, rb = _RANK[a.kind], _RANK[b.kind]
    if ra != rb:
        return a if ra > rb else b
    return np.promote_types(a, b)


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    """A weaker class of operand changes the result only by raising its kind."""
    if higher is None or lower is None:
        return lower if higher is None else higher
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return _promote(higher, lower)
    return higher


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, np.ndarray)


def result_type(*operands: Any) -> np.dtype:
    """The dtype of an op on ``operands`` by PyTorch's rules (``torch.result_type``).

    Tensors with dimensions outrank 0-d tensors, which outrank Python (and NumPy)
    scalars: a weaker operand decides the dtype only when it is of a higher kind
    (bool < int < float), e.g. ``float32 tensor * 2.0 -> float32``,
    ``int64 tensor * 2.5 -> float32`` (the default dtype), ``int tensor + float32
    tensor -> float32``.
    """
    dim = zero = wrapped = None
    for x in operands:
        if isinstance(x, np.ndarray) or hasattr(x, "_backward"):  # an array or a Tensor
            if x.ndim:
                dim = _promote(dim, x.dtype)
            else:
                zero = _promote(zero, x.dtype)
        elif isinstance(x, (bool, np.bool_)):
            wrapped = _promote(wrapped, np.dtype(bool))
        elif isinstance(x, (numbers.Integral, np.integer)):
            wrapped = _promote(wrapped, np.dtype(np.int64))
        elif isinstance(x, (numbers.Real, np.floating)):
            wrapped = _promote(wrapped, _default_dtype)
        else:
            raise TypeError(f"operands must be Tensors, arrays or real numbers, "
                            f"got {type(x).__name__}")
    out = _combine(dim, _combine(zero, wrapped))
    return _default_dtype if out is None else out


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Convert user data to a float ndarray by :class:`Tensor`'s constructor rules.

    Floating arrays keep their precision; bool and integer data (and Python
    scalars and lists) become the default dtype (float32), as ``torch.Tensor(data)``
    does; complex, object and string data are a ``TypeError``.  (:func:`convprop.tensor`
    infers int and bool dtypes instead, as ``torch.tensor``.)
    """
    if hasattr(data, "_backward"):  # a Tensor
        data = data.data
    arr = np.array(data, copy=True)
    if dtype is not None:
        dtype = to_dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype must be a floating type, got {dtype}")
        return arr.astype(dtype, copy=False) if arr.dtype.kind in "biuf" else _bad_kind(arr)
    if arr.dtype.kind == "f":
        if not isinstance(data, np.ndarray) and not isinstance(data, np.floating):
            return arr.astype(_default_dtype)  # Python floats/lists: the default dtype
        return arr
    if arr.dtype.kind in "biu":
        return arr.astype(_default_dtype)
    return _bad_kind(arr)


def _bad_kind(arr: np.ndarray) -> np.ndarray:
    raise TypeError(
        f"Tensor data must be real numbers (float, int or bool), got dtype {arr.dtype}"
    )

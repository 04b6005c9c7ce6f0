"""Making tensors, with ``torch``'s names, arguments and dtype rules.

``tensor`` infers the dtype as ``torch.tensor`` does (Python floats take the
default dtype, float32; ints become int64; bools bool; NumPy arrays keep theirs);
``from_numpy`` shares the array's memory.  Sizes are given as ``zeros(2, 3)`` or
``zeros((2, 3))``.  Random tensors draw from :mod:`convprop.random`'s default
stream, or from ``generator=``.  ``device`` accepts only the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import random as _random
from ._dtypes import _bad_kind, check_device, get_default_dtype, to_dtype
from .autograd import Tensor

Size = int | Sequence[int]


def _finish(data: np.ndarray, requires_grad: bool, name: str) -> Tensor:
    if requires_grad and data.dtype.kind != "f":
        raise TypeError(f"{name}: only floating-point tensors can require gradients, "
                        f"got dtype {data.dtype}")
    t = Tensor._wrap(data)
    t.requires_grad = bool(requires_grad)
    return t


def _size(size: tuple[Any, ...], name: str) -> tuple[int, ...]:
    """``(2, 3)`` from ``size`` given as ``2, 3`` or ``(2, 3)``; sizes must be ints >= 0."""
    if not size:
        raise TypeError(f"{name}: missing the size (give () for a 0-d tensor)")
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{name}: size must be integers, got {size!r}")
        if s < 0:
            raise ValueError(f"{name}: sizes must be >= 0, got {tuple(size)}")
    return tuple(int(s) for s in size)


def _float_dtype(dtype: Any, name: str) -> np.dtype:
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"{name}: dtype must be floating, got {d}")
    return d


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
           ) -> Tensor:
    """A new tensor holding a copy of ``data`` (``torch.tensor``).

    Args:
        data: a number, nested lists, an ndarray or a Tensor.
        dtype: the dtype; inferred when None (Python floats: the default dtype,
            ints: int64, bools: bool; arrays and tensors keep theirs).
        device: None or ``"cpu"``.
        requires_grad: record operations for :meth:`Tensor.backward` (floating only).

    Raises:
        TypeError: for complex, string or object data, or ``requires_grad`` on a
            non-floating dtype.
    """
    check_device(device, "tensor")
    src = data.data if isinstance(data, Tensor) else data
    arr = np.array(src, copy=True)
    if arr.dtype.kind not in "biuf":
        _bad_kind(arr)
    if dtype is not None:
        arr = arr.astype(to_dtype(dtype), copy=False)
    elif not isinstance(src, (np.ndarray, np.generic)):
        if arr.dtype.kind == "f":
            arr = arr.astype(get_default_dtype())
        elif arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
    return _finish(arr, requires_grad, "tensor")


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing ``ndarray``'s memory and dtype (``torch.from_numpy``): writes to
    either show in the other."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected an np.ndarray, got {type(ndarray).__name__}")
    if ndarray.dtype.kind not in "biuf":
        _bad_kind(ndarray)
    return Tensor._wrap(ndarray)


def _filled(size: tuple[Any, ...], value: Any, dtype: Any, requires_grad: bool, device: Any,
            name: str) -> Tensor:
    check_device(device, name)
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    return _finish(np.full(_size(size, name), value, dtype=d), requires_grad, name)


def zeros(*size: Size, dtype: Any = None, device: Any = None, requires_grad: bool = False
          ) -> Tensor:
    """A tensor of zeros of shape ``size`` (default dtype unless ``dtype``)."""
    return _filled(size, 0, dtype, requires_grad, device, "zeros")


def ones(*size: Size, dtype: Any = None, device: Any = None, requires_grad: bool = False
         ) -> Tensor:
    """A tensor of ones of shape ``size``."""
    return _filled(size, 1, dtype, requires_grad, device, "ones")


def empty(*size: Size, dtype: Any = None, device: Any = None, requires_grad: bool = False
          ) -> Tensor:
    """A tensor of shape ``size`` with unspecified contents (here: zeros)."""
    return _filled(size, 0, dtype, requires_grad, device, "empty")


def full(size: Size, fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value``; the dtype is inferred from the
    value when not given (bool, int64, or the default float dtype), as ``torch.full``."""
    if dtype is None:
        dtype = tensor(fill_value).dtype
    return _filled((size,) if isinstance(size, (int, np.integer)) else tuple(size),
                   fill_value, dtype, requires_grad, device, "full")


def arange(start: float, end: float | None = None, step: float = 1, *, dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """``start, start + step, ...`` up to but excluding ``end`` (``arange(end)`` starts at 0).

    The dtype is int64 when every argument is an integer, else the default dtype.
    """
    check_device(device, "arange")
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: upper bound and step sign are inconsistent "
                         f"(start {start}, end {end}, step {step})")
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
               for v in (start, end, step))
    d = (np.dtype(np.int64) if ints else get_default_dtype()) if dtype is None else to_dtype(dtype)
    n = max(math.ceil((end - start) / step), 0)
    # start + i * step with one rounding (as PyTorch's fused multiply-add), via long double
    wide = np.int64 if ints else np.longdouble
    data = (wide(start) + wide(step) * np.arange(n, dtype=wide)).astype(d)
    return _finish(data, requires_grad, "arange")


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    check_device(device, "linspace")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    return _finish(np.linspace(start, end, int(steps)).astype(d), requires_grad, "linspace")


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The ``n x m`` identity (``m = n`` by default)."""
    check_device(device, "eye")
    n, m = _size((n, n if m is None else m), "eye")
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    return _finish(np.eye(n, m, dtype=d), requires_grad, "eye")


# ------------------------------------------------------------------------ *_like
def _like(input: Tensor, dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
    if not isinstance(input, Tensor):
        raise TypeError(f"expected a Tensor, got {type(input).__name__}")
    return input.shape, input.dtype if dtype is None else to_dtype(dtype)


def zeros_like(input: Tensor, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    """Zeros with ``input``'s shape and (unless given) dtype."""
    shape, d = _like(input, dtype)
    return _filled(shape, 0, d, requires_grad, device, "zeros_like")


def ones_like(input: Tensor, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """Ones with ``input``'s shape and dtype."""
    shape, d = _like(input, dtype)
    return _filled(shape, 1, d, requires_grad, device, "ones_like")


def empty_like(input: Tensor, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    """Unspecified contents (here: zeros) with ``input``'s shape and dtype."""
    shape, d = _like(input, dtype)
    return _filled(shape, 0, d, requires_grad, device, "empty_like")


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """``fill_value`` with ``input``'s shape and dtype."""
    shape, d = _like(input, dtype)
    return _filled(shape, fill_value, d, requires_grad, device, "full_like")


def rand_like(input: Tensor, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False, generator: Any = None) -> Tensor:
    """U[0, 1) with ``input``'s shape and (floating) dtype."""
    shape, d = _like(input, dtype)
    return rand(shape, dtype=_float_dtype(d, "rand_like"), device=device,
                requires_grad=requires_grad, generator=generator)


def randn_like(input: Tensor, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False, generator: Any = None) -> Tensor:
    """N(0, 1) with ``input``'s shape and (floating) dtype."""
    shape, d = _like(input, dtype)
    return randn(shape, dtype=_float_dtype(d, "randn_like"), device=device,
                 requires_grad=requires_grad, generator=generator)


# ------------------------------------------------------------------------- random
def rand(*size: Size, generator: Any = None, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples from ``[0, 1)`` of shape ``size``.

    Drawn in float64 and rounded to ``dtype``, so one seed gives the same numbers
    (to rounding) in every floating dtype.
    """
    check_device(device, "rand")
    d = _float_dtype(dtype, "rand")
    rng = _random.numpy_generator(generator)
    data = rng.random(_size(size, "rand")).astype(d)
    if d != np.float64:  # rounding up to 1.0 would leave [0, 1)
        data = np.minimum(data, np.nextafter(d.type(1), d.type(0)))
    return _finish(data, requires_grad, "rand")


def randn(*size: Size, generator: Any = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples of shape ``size``."""
    check_device(device, "randn")
    d = _float_dtype(dtype, "randn")
    rng = _random.numpy_generator(generator)
    return _finish(rng.standard_normal(_size(size, "randn")).astype(d), requires_grad, "randn")


def randint(*args: Any, size: Size | None = None, generator: Any = None, dtype: Any = None,
            device: Any = None, requires_grad: bool = False) -> Tensor:
    """Integers uniform on ``[low, high)``: ``randint(high, size)`` or
    ``randint(low, high, size)`` (``torch.randint``); int64 unless ``dtype``."""
    check_device(device, "randint")
    if size is not None:
        args = (*args, size)
    if len(args) == 2:
        low, high, shape = 0, args[0], args[1]
    elif len(args) == 3:
        low, high, shape = args
    else:
        raise TypeError("randint expects (high, size) or (low, high, size)")
    if not low < high:
        raise ValueError(f"randint: low must be < high, got low={low}, high={high}")
    d = np.dtype(np.int64) if dtype is None else to_dtype(dtype)
    shape = _size((shape,) if isinstance(shape, (int, np.integer)) else tuple(shape), "randint")
    rng = _random.numpy_generator(generator)
    return _finish(rng.integers(int(low), int(high), shape).astype(d), requires_grad, "randint")


def randperm(n: int, *, generator: Any = None, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0 .. n - 1`` (int64 unless ``dtype``)."""
    check_device(device, "randperm")
    (n,) = _size((n,), "randperm")
    d = np.dtype(np.int64) if dtype is None else to_dtype(dtype)
    rng = _random.numpy_generator(generator)
    return _finish(rng.permutation(n).astype(d), requires_grad, "randperm")

"""``Module``, ``Parameter`` and the containers, with PyTorch's names and state-dict layout.

A module registers what is assigned to it, as PyTorch does: a :class:`Parameter`
becomes a parameter, a :class:`Module` a child, and :meth:`Module.register_buffer`
declares non-trainable state (BatchNorm's running statistics).  Registered
objects are also kept as ordinary attributes, so reading ``self.weight`` in a
``forward`` costs a plain attribute lookup.

State-dict keys are dotted paths (``"0.weight"``, ``"features.1.running_mean"``)
and values are NumPy arrays in PyTorch's layouts, so a state dict moves between
convprop and PyTorch models of the same architecture unchanged.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from typing import Any, NamedTuple

import numpy as np

from ..autograd import Tensor, check_device, is_device, to_dtype


class Parameter(Tensor):
    """A Tensor that a :class:`Module` registers as trainable (``requires_grad=True``).

    Args:
        data: array-like (copied; ints become float32, as for :class:`Tensor`).
        requires_grad: whether optimizers and ``backward`` should treat it as trainable.
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        super().__init__(np.empty(0, dtype=np.float32) if data is None else data,
                         requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class StateDictError(RuntimeError, ValueError):
    """``load_state_dict`` found missing, unexpected or mis-shaped entries.

    A ``RuntimeError`` as in PyTorch, and a ``ValueError`` (bad argument)."""


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


def _as_array(value: Any) -> np.ndarray:
    """A state-dict value as an ndarray: convprop Tensors, arrays, and anything with
    ``.detach().cpu().numpy()`` (a ``torch.Tensor``) or ``__array__``."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class RemovableHandle:
    """What ``register_forward_hook`` returns: ``remove()`` (or leaving a ``with``) unhooks."""

    _next_id = 0

    def __init__(self, hooks: dict) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()`` first, assign parameters, buffers and
    sub-modules as attributes, and define ``forward``; calling the module calls
    ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        hooks = self.__dict__.get("_hooks")
        if not hooks:
            return self.forward(*args, **kwargs)
        for pre, hook in list(hooks.values()):
            if pre:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for pre, hook in list(hooks.values()):
            if not pre:
                result = hook(self, args, out)
                if result is not None:
                    out = result
        return out

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, args)`` before each forward; a non-None result replaces
        ``args`` (a tuple, or a single value)."""
        return self._add_hook(True, hook)

    def register_forward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each forward; a non-None result
        replaces the output."""
        return self._add_hook(False, hook)

    def _add_hook(self, pre: bool, hook: Callable[..., Any]) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.setdefault("_hooks", OrderedDict())
        handle = RemovableHandle(hooks)
        hooks[handle.id] = (pre, hook)
        return handle

    # ------------------------------------------------------------ registration
    def _registries(self) -> tuple[dict, dict, dict]:
        try:
            d = self.__dict__
            return d["_parameters"], d["_buffers"], d["_modules"]
        except KeyError:
            raise AttributeError(
                f"cannot assign to {type(self).__name__} before Module.__init__() is called"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            params, buffers, modules = self._registries()
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params, buffers, modules = self._registries()
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif "_parameters" in self.__dict__:
            params, buffers, modules = self._registries()
            if name in params:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as parameter "
                                    f"{name!r} (a Parameter or None is required)")
                params[name] = None
            elif name in buffers:
                if value is not None and not isinstance(value, Tensor):
                    raise TypeError(f"cannot assign {type(value).__name__} as buffer "
                                    f"{name!r} (a Tensor or None is required)")
                buffers[name] = value
            elif name in modules:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} as child module "
                                    f"{name!r} (a Module or None is required)")
                modules[name] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in self._registries():
            registry.pop(name, None)
        self.__dict__.get("_non_persistent", set()).discard(name)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a ``None`` placeholder, e.g. ``bias=False``)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self._registries()[0][name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add non-trainable state (running statistics, a loss's class weights).

        Buffers follow the module through :meth:`to` and appear in
        :meth:`named_buffers`; persistent ones are also part of the state dict.

        Raises:
            TypeError: ``name`` is not a string or ``tensor`` not a Tensor or None.
            KeyError: ``name`` is empty, contains ``"."`` or is already another
                attribute (PyTorch's rules and exception).
        """
        if not isinstance(name, str):
            raise TypeError(f"register_buffer: name must be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"register_buffer: name must be non-empty and without '.', got {name!r}")
        if name not in self._registries()[1] and hasattr(self, name):
            raise KeyError(f"register_buffer: attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self._registries()[1][name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got {type(module).__name__}")
        self._registries()[2][name] = module
        object.__setattr__(self, name, module)

    # --------------------------------------------------------------- traversal
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, each once, depth first."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{k}" if name else k, c) for k, c in m.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def _named_members(self, registry: str, prefix: str, recurse: bool
                       ) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mname, m in mods:
            for k, v in getattr(m, registry).items():
                if v is None or id(v) in seen:
                    continue
                seen.add(id(v))
                yield (f"{mname}.{k}" if mname else k), v

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs; a shared parameter appears once."""
        yield from self._named_members("_parameters", prefix, recurse)  # type: ignore[misc]

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True
                      ) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every descendant, then on this module (as PyTorch does)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode here and in every descendant (Dropout, BatchNorm care)."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad`` (to None by default, as PyTorch 2)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def to(self, *args: Any, dtype: Any = None, device: Any = None,
           non_blocking: bool = False) -> Module:
        """Convert every floating parameter and buffer (and gradient) to ``dtype``, in place.

        Accepts ``to(dtype)``, ``to("cpu")``, ``to("cpu", dtype)``, ``to(tensor)``
        (its dtype) and the keywords, as ``torch.nn.Module.to``; integer buffers
        (counters) keep their dtype.

        Raises:
            TypeError: for a non-floating dtype.
            ValueError: for a device other than the CPU.
        """
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif is_device(a):
                device = a
            else:
                dtype = a
        check_device(device, "Module.to")
        if dtype is None:
            return self
        dtype = to_dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Module.to: dtype must be floating, got {dtype}")
        for t in list(self.parameters()) + list(self.buffers()):
            if t.data.dtype.kind == "f":
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad = t.grad.astype(dtype)
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def half(self) -> Module:
        return self.to(np.float16)

    def cpu(self) -> Module:
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    # ------------------------------------------------------------- state dict
    def _state_modules(self, prefix: str, ancestors: tuple[int, ...]
                       ) -> Iterator[tuple[str, Module]]:
        """This module and every descendant under *every* name, depth first."""
        yield prefix, self
        ancestors = (*ancestors, id(self))
        for k, c in self.named_children():
            if id(c) not in ancestors:  # a cycle would recurse forever
                yield from c._state_modules(f"{prefix}.{k}" if prefix else k, ancestors)

    def _state_entries(self) -> Iterator[tuple[str, Tensor]]:
        """Parameters then persistent buffers of each module, parents before children,
        in PyTorch's order; shared tensors appear under every name, as in PyTorch.

        Unlike :meth:`named_modules`, a module registered under several names is
        visited under each of them (PyTorch's ``state_dict`` recursion does not
        de-duplicate); only a module that contains itself is cut short.
        """
        for mname, m in self._state_modules("", ()):
            for k, p in m._parameters.items():
                if p is not None:
                    yield (f"{mname}.{k}" if mname else k), p
            for k, b in m._buffers.items():
                if b is not None and k not in m._non_persistent:
                    yield (f"{mname}.{k}" if mname else k), b

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Every parameter and persistent buffer by dotted name, as NumPy arrays.

        The arrays are copies (unlike PyTorch's views), so a saved state dict
        does not change as training goes on.  Layouts are PyTorch's.
        """
        return OrderedDict((k, np.array(t.data, copy=True)) for k, t in self._state_entries())

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True
                        ) -> IncompatibleKeys:
        """Copy values into this module's parameters and buffers, in place.

        Every entry is checked before anything is written, so a failed load
        leaves the module untouched.

        Args:
            state_dict: name -> array (NumPy arrays, convprop Tensors or
                ``torch.Tensor``s).
            strict: require the keys to match exactly.

        Returns:
            ``(missing_keys, unexpected_keys)`` (both empty when ``strict``).

        Raises:
            StateDictError: listing missing and unexpected keys (when ``strict``)
                and every shape mismatch (always).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a mapping, got {type(state_dict).__name__}")
        own = OrderedDict(self._state_entries())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and missing:
            errors.append("missing key(s): " + ", ".join(missing))
        if strict and unexpected:
            errors.append("unexpected key(s): " + ", ".join(map(str, unexpected)))
        values = {}
        for k, target in own.items():
            if k not in state_dict:
                continue
            value = _as_array(state_dict[k])
            if value.dtype.kind not in "biuf":
                errors.append(f"{k}: values must be numbers, got dtype {value.dtype}")
            elif value.shape != target.shape:
                errors.append(f"size mismatch for {k}: the state dict has shape {value.shape}, "
                              f"the model {target.shape}")
            values[k] = value
        if errors:
            raise StateDictError(f"Error(s) loading state dict into {type(self).__name__}:\n  "
                                 + "\n  ".join(errors))
        for k, value in values.items():
            np.copyto(own[k].data, value, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's ``repr``."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"


def _position(container: Module, idx: Any) -> int:
    """``idx`` as a position among ``container``'s children (negative counts from the end)."""
    name, n = type(container).__name__, len(container._modules)
    try:
        i = operator.index(idx)
    except TypeError:
        raise TypeError(f"{name} indices must be integers or slices, "
                        f"not {type(idx).__name__}") from None
    if not -n <= i < n:
        raise IndexError(f"{name}: index {i} is out of range for {n} modules")
    return i % n


def _insert_position(container: Module, index: Any, module: Any) -> int:
    """Where ``insert(index, module)`` puts ``module``: ``-n <= index <= n``, as PyTorch."""
    name, n = type(container).__name__, len(container._modules)
    if not isinstance(module, Module):
        raise TypeError(f"{name}.insert: module must be a Module, got {type(module).__name__}")
    i = operator.index(index)
    if not -n <= i <= n:
        raise IndexError(f"{name}.insert: index {i} is out of range for {n} modules "
                         f"(-{n}..{n})")
    return i + n if i < 0 else i


def _renumber(container: Module, modules: Iterable[Module]) -> None:
    """Make ``modules`` the children ``"0"``, ``"1"``, ... of ``container``, in order.

    After a delete or an insert PyTorch numbers a container's children afresh, so
    state-dict keys stay ``"0.weight"``, ``"1.weight"``, ... with no gaps."""
    modules = list(modules)
    for key in list(container._modules):
        delattr(container, key)
    for i, m in enumerate(modules):
        container.add_module(str(i), m)


class Sequential(Module):
    """Modules applied one after another; children are named ``"0"``, ``"1"``, ...

    Args:
        *modules: the modules in order, or a single ``OrderedDict`` of name -> module.

    Indexing, slicing (a ``Sequential`` of the same modules), ``append``, ``extend``,
    ``insert``, ``pop``, item assignment and ``del`` behave as PyTorch's: after a
    delete or an insert the children are numbered ``"0"``, ``"1"``, ... afresh.
    ``+`` and ``+=`` take another ``Sequential``.
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, "
                                    "not a Module")
                self.add_module(str(i), m)

    def forward(self, input: Any) -> Any:
        for m in self._modules.values():
            input = m(input)
        return input

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return type(self)(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[_position(self, index)]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, list(self._modules)[_position(self, index)], module)

    def __delitem__(self, index: int | slice) -> None:
        keys = list(self._modules)
        for key in (keys[index] if isinstance(index, slice) else [keys[_position(self, index)]]):
            delattr(self, key)
        _renumber(self, self._modules.values())

    def pop(self, index: int | slice) -> Any:
        """Remove and return the module at ``index`` (a ``Sequential`` for a slice)."""
        module = self[index]
        del self[index]
        return module

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, sequential: Iterable[Module]) -> Sequential:
        """Append every module of ``sequential`` (any iterable of modules)."""
        if not isinstance(sequential, Iterable):
            raise TypeError(f"Sequential.extend takes an iterable of modules, "
                            f"got {type(sequential).__name__}")
        for m in list(sequential):
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Put ``module`` before position ``index`` (``-len <= index <= len``)."""
        i = _insert_position(self, index, module)
        if list(self._modules) != [str(j) for j in range(len(self))]:
            raise ValueError(f"Sequential.insert needs children numbered 0, 1, ... (as PyTorch); "
                             f"this one has named children {list(self._modules)}")
        modules = list(self._modules.values())
        _renumber(self, modules[:i] + [module] + modules[i:])
        return self

    def _sequential(self, other: Any) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but "
                             f"{type(other).__name__} is given")
        return other

    def __add__(self, other: Sequential) -> Sequential:
        return Sequential(*self, *self._sequential(other))

    def __iadd__(self, other: Sequential) -> Sequential:
        return self.extend(self._sequential(other))


class ModuleList(Module):
    """A list of modules, registered as children ``"0"``, ``"1"``, ... (no ``forward``).

    Args:
        modules: an iterable of modules (or ``None``).

    Indexing, slicing (a ``ModuleList``), ``append``, ``extend``, ``insert``, ``pop``,
    item assignment, ``del``, ``+`` and ``+=`` behave as PyTorch's: after a delete or
    an insert the children are numbered ``"0"``, ``"1"``, ... afresh.
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append every module of ``modules``."""
        if not isinstance(modules, Iterable):
            raise TypeError(f"ModuleList.extend should be called with an iterable, "
                            f"but got {type(modules).__name__}")
        for m in list(modules):
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Put ``module`` before position ``index`` (``-len <= index <= len``)."""
        i = _insert_position(self, index, module)
        modules = list(self._modules.values())
        _renumber(self, modules[:i] + [module] + modules[i:])

    def pop(self, index: int | slice) -> Any:
        """Remove and return the module at ``index`` (a ``ModuleList`` for a slice)."""
        module = self[index]
        del self[index]
        return module

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return type(self)(list(self._modules.values())[index])
        return self._modules[str(_position(self, index))]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, str(_position(self, index)), module)

    def __delitem__(self, index: int | slice) -> None:
        positions = range(len(self))[index] if isinstance(index, slice) else [
            _position(self, index)]
        for i in positions:
            delattr(self, str(i))
        _renumber(self, self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(chain(self, other))

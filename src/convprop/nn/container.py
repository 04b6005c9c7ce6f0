"""``ModuleDict``: sub-modules by name, registered so that parameters, buffers,
``state_dict``, ``train``/``eval`` and ``to`` reach them (``Sequential`` and
``ModuleList`` live with :class:`~convprop.nn.Module`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .module import Module


class ModuleDict(Module):
    """An ordered dictionary of named sub-modules (``torch.nn.ModuleDict``).

    Args:
        modules: a mapping of name -> Module, or an iterable of ``(name, module)``
            pairs; insertion order is kept.

    It has no ``forward``: a model's own ``forward`` picks modules out of it.
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None
                 ) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be strings, got {type(key).__name__}")
        if not key or "." in key:
            raise KeyError(f"ModuleDict: key must be non-empty and without '.', got {key!r}")
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]
        object.__delattr__(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def clear(self) -> None:
        """Remove every module."""
        for key in list(self._modules):
            del self[key]

    def pop(self, key: str) -> Module:
        """Remove ``key`` and return its module."""
        module = self[key]
        del self[key]
        return module

    def keys(self) -> Any:
        return self._modules.keys()

    def items(self) -> Any:
        return self._modules.items()

    def values(self) -> Any:
        return self._modules.values()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add or replace modules from a mapping or from ``(name, module)`` pairs, in order."""
        if isinstance(modules, (Mapping, ModuleDict)):
            pairs: Iterable[Any] = modules.items()
        elif isinstance(modules, Iterable) and not isinstance(modules, (str, bytes)):
            pairs = modules
        else:
            raise TypeError(f"ModuleDict.update takes a mapping or an iterable of "
                            f"(name, module) pairs, got {type(modules).__name__}")
        for j, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"ModuleDict.update: element #{j} must be a (name, module) "
                                 f"pair, got {pair!r}")
            self[pair[0]] = pair[1]


__all__ = ["ModuleDict"]

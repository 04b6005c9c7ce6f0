"""The optimizer base class: parameter groups, per-parameter state, and state dicts.

An optimizer only updates parameters: :meth:`Optimizer.step` reads each
parameter's ``.grad`` and changes ``param.data`` in place (no graph is
recorded).  Hyper-parameters live in ``param_groups`` (a list of dicts, each
with its ``"params"``), as in PyTorch, so a scheduler or the user can change
``group["lr"]`` between steps.

State dicts use PyTorch's layout, so a run can be resumed, or carried to and
from ``torch.optim`` mid-run (see :func:`convprop.optim.to_torch`)::

    {"state": {0: {"step": array(3., dtype=float32), "exp_avg": ndarray, ...}, ...},
     "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), ..., "params": [0, 1, 2]}, ...]}

Parameters are numbered by their position across the groups; ``state`` holds,
for each parameter that has any, its buffers as NumPy arrays.  Scalar counters
(``step``, NAdam's ``mu_product``) are 0-d float32 arrays, as PyTorch keeps them.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..autograd import Tensor

#: how PyTorch names each hyper-parameter in its "Invalid ..." errors
_LABELS = {"lr": "learning rate", "eps": "epsilon value"}


def _as_state_array(value: Any) -> np.ndarray:
    """A state entry (ndarray, convprop Tensor, ``torch.Tensor`` or number) as a fresh ndarray."""
    if isinstance(value, Tensor):
        return np.array(value.data, copy=True)
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor, converted without torch
        return np.array(value.detach().cpu().numpy(), copy=True)
    return np.array(value, copy=True)


def _is_array_like(value: Any) -> bool:
    is_torch = hasattr(value, "detach") and hasattr(value, "cpu")
    return is_torch or isinstance(value, (np.ndarray, Tensor))


class Optimizer:
    """Base class: holds ``param_groups`` and per-parameter ``state``.

    Args:
        params: an iterable of Tensors, or of dicts ``{"params": [...], **options}``
            (options override ``defaults`` for that group).
        defaults: the hyper-parameters of this optimizer.

    Subclasses name the options that must be ``>= 0`` in ``_nonnegative`` and
    implement :meth:`_update` for one parameter.
    """

    #: options that must be numbers >= 0 (checked for every group, also on load)
    _nonnegative: tuple[str, ...] = ()
    #: 0-d counters, kept in their own dtype on load; every other array entry is cast to
    #: its parameter's dtype and must have its shape
    _scalar_state: tuple[str, ...] = ("step",)

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors (e.g. model.parameters()), "
                            "not a single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self._validate(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Append a group of parameters with its own options (validated first).

        ``group["params"]`` holds Tensors, or ``(name, Tensor)`` pairs (e.g. from
        ``model.named_parameters()``), whose names are kept in ``group["param_names"]``
        as PyTorch does; all groups have names or none has.
        """
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a param group must be a dict with a 'params' entry")
        params = group["params"]
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters must be in an ordered collection (a list), not "
                            "a set: a set's order changes between runs")
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) and len(p) == 2 else p for p in params]
        if names and len(names) != len(params):
            raise ValueError("all optimizer params should be with/without names. "
                             "Some param names are missing")
        if any(("param_names" in g) != bool(names) for g in self.param_groups):
            raise ValueError("all optimizer param groups should be with/without names: cannot "
                             f"add a param group {'with' if names else 'without'} names")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, "
                                f"got {type(p).__name__}")
            if p.data.dtype.kind != "f":
                raise TypeError(f"{type(self).__name__} can only optimize floating Tensors, "
                                f"got dtype {p.data.dtype}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError("some parameters appear more than once in the optimizer")
        full = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._validate(full)
        full["params"] = params
        if names:
            full["param_names"] = names
        self.param_groups.append(full)

    def _validate(self, options: dict[str, Any]) -> None:
        """Raise ``ValueError`` naming the option and its rule, as PyTorch's constructors do."""
        lr = options.get("lr")
        if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not lr >= 0:
            raise ValueError(f"Invalid learning rate: {lr!r} (lr must be a number >= 0)")
        for key in self._nonnegative:
            value = options.get(key)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
                label = _LABELS.get(key, f"{key} value")
                raise ValueError(f"Invalid {label}: {value!r} ({key} must be a number >= 0)")
        if "betas" in options:
            betas = options["betas"]
            if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                raise ValueError(f"Invalid betas: {betas!r} (betas must be a pair (beta1, beta2))")
            for i, beta in enumerate(betas):
                if not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
                    raise ValueError(f"Invalid beta parameter at index {i}: {beta!r} "
                                     "(betas must each be in [0, 1))")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter (to None by default, as PyTorch 2)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            loss = closure()
        self._opt_called = True  # lets a scheduler warn when it is stepped first
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad, group, self.state.setdefault(p, {}))
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any],
                state: dict[str, Any]) -> None:
        """Apply one step to ``p`` given its gradient, its group and its state (subclasses)."""
        raise NotImplementedError(f"{type(self).__name__} must define _update")

    # ------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in PyTorch's layout (a copy: later steps do not change it).

        Returns:
            ``{"state": {id: {name: ndarray}}, "param_groups": [{option: value, "params": [id]}]}``
            where ``id`` numbers the parameters by position across the groups; parameters
            without state (never stepped, or SGD without momentum) have no entry.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                entries = self.state.get(p)
                if entries:
                    state[index[id(p)]] = {k: np.array(v, copy=True) if isinstance(v, np.ndarray)
                                           else copy.deepcopy(v) for k, v in entries.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state dict from :meth:`state_dict` or from ``torch.optim`` (arrays may be
        NumPy arrays, convprop Tensors or ``torch.Tensor``s).

        Each saved group replaces the matching group's options (extra keys such as a
        scheduler's ``initial_lr`` are kept); buffers are copied and cast to their
        parameter's dtype, except the scalar counters (``step``).

        Raises:
            ValueError: if the number of groups, a group's size, a parameter id or a buffer's
                shape does not match this optimizer, or a saved option breaks its rule.
                Nothing is changed then.
        """
        if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError("load_state_dict expects a mapping with 'state' and 'param_groups' "
                             "(what Optimizer.state_dict() returns)")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        id_map: dict[Any, Tensor] = {}
        new_groups = []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"loaded state dict's parameter group {i} has "
                                 f"{len(saved['params'])} parameters, this optimizer's has "
                                 f"{len(group['params'])}")
            id_map.update(zip(saved["params"], group["params"]))
            options = {**self.defaults, **{k: copy.deepcopy(v) for k, v in saved.items()
                                           if k != "params"}}
            if "betas" in options:
                options["betas"] = tuple(options["betas"])
            self._validate(options)
            options["params"] = group["params"]
            if "param_names" in group and "param_names" not in options:
                options["param_names"] = group["param_names"]
            new_groups.append(options)
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, entries in state_dict["state"].items():
            if key not in id_map:
                raise ValueError(f"loaded state dict has state for parameter id {key!r}, which "
                                 "none of its param_groups lists")
            p = id_map[key]
            new_state[p] = {name: self._load_entry(key, p, name, value)
                            for name, value in entries.items()}
        self.param_groups = new_groups
        self.state = new_state

    def _load_entry(self, key: Any, p: Tensor, name: str, value: Any) -> Any:
        if value is None or not (_is_array_like(value) or isinstance(value, numbers.Number)):
            return copy.deepcopy(value)
        arr = _as_state_array(value)
        if name in self._scalar_state:
            if arr.shape != ():
                raise ValueError(f"loaded state dict's {name!r} for parameter id {key!r} has shape "
                                 f"{arr.shape}, expected a scalar")
            return arr.astype(np.float32) if arr.dtype.kind != "f" else arr
        if arr.shape != p.shape:
            raise ValueError(f"loaded state dict's {name!r} for parameter id {key!r} has shape "
                             f"{arr.shape}, expected the parameter's shape {p.shape}")
        return arr.astype(p.dtype, copy=False)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        return "\n".join(lines) + "\n)"


def lerp_(a: np.ndarray, b: np.ndarray, weight: float) -> None:
    """``a += weight * (b - a)`` in place, in PyTorch's two-branch form (exact at weight 1)."""
    diff = b - a
    if weight < 0.5:
        diff *= weight
        a += diff
    else:
        diff *= 1 - weight
        np.subtract(b, diff, out=a)


def new_step() -> np.ndarray:
    """A fresh step counter: a 0-d float32 array, PyTorch's ``state["step"]``."""
    return np.zeros((), dtype=np.float32)

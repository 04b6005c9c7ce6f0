"""Carry optimizer and scheduler state dicts between convprop and PyTorch.

Both libraries use the same nested layout; only the array type differs (NumPy
arrays here, ``torch.Tensor`` there).  These helpers convert the arrays and keep
everything else (dicts, lists, tuples, ``Counter``, numbers, strings) as it is::

    topt.load_state_dict(optim.to_torch(opt.state_dict()))      # continue in PyTorch
    opt.load_state_dict(optim.from_torch(topt.state_dict()))    # and back

(``Optimizer.load_state_dict`` also accepts ``torch.Tensor`` values directly.)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..autograd import Tensor


def _tree_map(value: Any, leaf: Any) -> Any:
    if isinstance(value, Counter):
        return Counter({k: _tree_map(v, leaf) for k, v in value.items()})
    if isinstance(value, dict):
        return type(value)((k, _tree_map(v, leaf)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_tree_map(v, leaf) for v in value)
    return leaf(value)


def to_torch(state_dict: Any) -> Any:
    """A copy of ``state_dict`` with every NumPy array (or convprop Tensor) as a
    ``torch.Tensor`` of the same dtype and shape, ready for ``torch.optim``'s
    ``load_state_dict``.  Needs PyTorch installed."""
    import torch

    def leaf(v: Any) -> Any:
        if isinstance(v, Tensor):
            v = v.data
        if isinstance(v, np.ndarray):
            return torch.from_numpy(np.array(v, copy=True))
        if isinstance(v, np.generic):
            return v.item()
        return v

    return _tree_map(state_dict, leaf)


def from_torch(state_dict: Any) -> Any:
    """A copy of ``state_dict`` with every ``torch.Tensor`` as a NumPy array (dtype and
    shape kept), as convprop's ``load_state_dict`` expects.  Works without importing torch."""
    def leaf(v: Any) -> Any:
        if hasattr(v, "detach") and hasattr(v, "cpu") and hasattr(v, "numpy"):
            return np.array(v.detach().cpu().numpy(), copy=True)
        return v

    return _tree_map(state_dict, leaf)

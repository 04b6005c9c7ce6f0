"""``import convprop.nn.functional as F``: the same module as :mod:`convprop.functional`.

One implementation, two import paths (as PyTorch users write ``torch.nn.functional``):
every public name of :mod:`convprop.functional`, including names added there
later, is found here too, as the same object.
"""

from __future__ import annotations

from typing import Any

from .. import functional as _functional
from ..functional import *  # noqa: F403
from ..functional import __all__ as __all__  # noqa: F401


def __getattr__(name: str) -> Any:
    """Names defined in :mod:`convprop.functional` but not (yet) in its ``__all__``."""
    try:
        return getattr(_functional, name)
    except AttributeError:
        raise AttributeError(f"module 'convprop.nn.functional' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(dir(_functional)))

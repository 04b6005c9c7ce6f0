"""Random number generation: :class:`Generator` and the one default stream.

As in PyTorch, every random draw in convprop (``rand``, ``randn``, ``randint``,
``randperm``, ``nn.init`` and dropout masks) comes from one per-process default
:class:`Generator` unless a ``generator=`` is passed, so :func:`manual_seed`
reproduces a whole run.  The bits come from NumPy's PCG64, so the numbers
differ from PyTorch's (a different algorithm); the distributions are the same.

A generator's state is a ``uint8`` Tensor, as ``torch.Generator.get_state``
returns, and round-trips through :meth:`Generator.set_state`.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np

from ._dtypes import check_device
from .autograd import Tensor

DEFAULT_SEED = 67280421310721  # PyTorch's initial seed for its default CPU generator
_STATE_BYTES = 16 + 16 + 1 + 4  # PCG64's 128-bit state and increment, the cached 32 bits


class Generator:
    """A seedable stream of random numbers (``torch.Generator``'s interface).

    Args:
        device: only ``"cpu"`` (the default) is accepted.

    A new generator starts from :data:`DEFAULT_SEED`, as PyTorch's do.
    """

    def __init__(self, device: Any = "cpu") -> None:
        check_device(device, "Generator")
        self._bits = np.random.PCG64(DEFAULT_SEED)
        self._numpy = np.random.Generator(self._bits)
        self._initial_seed = DEFAULT_SEED

    @property
    def device(self) -> str:
        return "cpu"

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from ``seed`` (a non-negative integer); returns ``self``."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"manual_seed: seed must be >= 0, got {seed}")
        # reseed in place, so anyone holding numpy_generator() sees the new stream
        self._bits.state = np.random.PCG64(seed).state
        self._initial_seed = seed
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy; returns the new seed."""
        seed = secrets.randbits(63)
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        """The seed this stream was last started from."""
        return self._initial_seed

    def get_state(self) -> Tensor:
        """The stream's position as a ``uint8`` Tensor of 37 bytes (for :meth:`set_state`)."""
        st = self._bits.state
        raw = (st["state"]["state"].to_bytes(16, "little") + st["state"]["inc"].to_bytes(16, "little")
               + bytes([int(st["has_uint32"])]) + int(st["uinteger"]).to_bytes(4, "little"))
        return Tensor._wrap(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, new_state: Any) -> Generator:
        """Return to a position saved by :meth:`get_state`; returns ``self``."""
        raw = np.asarray(new_state.data if isinstance(new_state, Tensor) else new_state)
        if raw.dtype != np.uint8 or raw.shape != (_STATE_BYTES,):
            raise ValueError(f"set_state: new_state must be the uint8 tensor of {_STATE_BYTES} "
                             f"bytes that get_state() returns, got dtype {raw.dtype}, "
                             f"shape {raw.shape}")
        b = raw.tobytes()
        self._bits.state = {
            "bit_generator": "PCG64",
            "state": {"state": int.from_bytes(b[:16], "little"),
                      "inc": int.from_bytes(b[16:32], "little")},
            "has_uint32": b[32], "uinteger": int.from_bytes(b[33:37], "little"),
        }
        return self

    def numpy_generator(self) -> np.random.Generator:
        """The NumPy generator that draws this stream's numbers (shared, not a copy)."""
        return self._numpy

    def __repr__(self) -> str:
        return f"<convprop.Generator initial_seed={self._initial_seed}>"


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default stream (creation, ``nn.init``, dropout); returns it."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the default stream nondeterministically; returns the seed."""
    return default_generator.seed()


def initial_seed() -> int:
    """The seed the default stream was last started from."""
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    """The default stream's state (``uint8`` Tensor)."""
    return default_generator.get_state()


def set_rng_state(new_state: Any) -> None:
    """Restore the default stream to a state from :func:`get_rng_state`."""
    default_generator.set_state(new_state)


def numpy_generator(generator: Generator | np.random.Generator | None = None
                    ) -> np.random.Generator:
    """The NumPy generator to draw from: ``generator``'s, or the default stream's.

    A ``np.random.Generator`` is accepted as is (convprop's earlier spelling)."""
    if generator is None:
        return default_generator.numpy_generator()
    if isinstance(generator, Generator):
        return generator.numpy_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"generator must be a convprop.Generator or None, "
                    f"got {type(generator).__name__}")

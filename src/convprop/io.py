"""``save`` / ``load`` of state dicts as ``.npz`` archives: no pickle, atomic writes.

A state dict is a flat mapping of names to numeric arrays, which is exactly
what ``.npz`` holds, so nothing needs pickle: :func:`save` refuses object
arrays and :func:`load` reads with ``allow_pickle=False``.  :func:`save` writes
a temporary file beside the target and renames it over the target only when it
is complete, so a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .autograd import Tensor


def _to_array(key: str, value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        arr = value.data
    elif hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        arr = value.detach().cpu().numpy()
    else:
        arr = np.asarray(value)
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            f"save: {key!r} holds {arr.dtype} data; only numeric arrays can be saved "
            "(convprop never pickles Python objects)"
        )
    return arr


def _write_npz(f: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` (what ``np.savez`` writes).

    ``np.savez(f, **arrays)`` would take keys such as ``file`` or
    ``allow_pickle`` as its own arguments, so each entry is written here
    directly: member ``name + ".npy"``, which ``np.load`` lists as ``name``.
    """
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            with zf.open(key + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def check_target(path: str | os.PathLike) -> Path:
    """Check that :func:`save` can write ``path``, before any work is spent on what it will hold.

    Raises:
        ValueError: when the name does not end in ``.npz``.
        FileNotFoundError: when its directory does not exist (naming ``path``).
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(
            f"save: {os.fspath(path)!r} must end in .npz: convprop writes NumPy .npz archives "
            "(no pickle), not PyTorch's .pt format. To give the weights to PyTorch: "
            "torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in "
            "convprop.load('net.npz').items()})"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"save: cannot write {os.fspath(path)!r}: directory "
                                f"{os.fspath(path.parent)!r} does not exist")
    return path


def save(obj: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write a mapping of names to arrays (a ``state_dict()``) to ``path`` as ``.npz``.

    Args:
        obj: ``{name: array}``; values may be NumPy arrays, convprop Tensors,
            ``torch.Tensor``s or numbers.  Names must be strings.
        path: the file to write, ending in ``.npz`` (no suffix is added).  Written
            atomically: a temporary file in the same directory, flushed to disk,
            then renamed.

    Raises:
        TypeError: for a non-mapping, a non-string key or a non-numeric value;
            nothing is written then.
        ValueError: for a path not ending in ``.npz`` (the file *is* an ``.npz``
            archive; a ``.pt`` name would promise PyTorch's pickle format).
        FileNotFoundError: when the directory does not exist (naming ``path``).
    """
    if not isinstance(obj, Mapping):
        raise TypeError(f"save expects a mapping of names to arrays (e.g. model.state_dict()), "
                        f"got {type(obj).__name__}")
    arrays = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"save: keys must be strings, got {key!r}")
        arrays[key] = _to_array(key, value)
    path = Path(path)
    check_target(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode an ordinary write would
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike) -> OrderedDict[str, np.ndarray]:
    """Read a ``.npz`` written by :func:`save` (or ``np.savez``) without pickle.

    Returns:
        An ordered ``{name: ndarray}``, ready for ``model.load_state_dict``
        (or, through ``torch.from_numpy``, for a PyTorch model's).

    Raises:
        ValueError: if the file holds Python objects (it would need pickle) or
            is not an ``.npz`` archive.
    """
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"load: {os.fspath(path)!r} is not a pickle-free .npz archive ({e})") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"load: {os.fspath(path)!r} holds a single array, not an .npz archive "
                         "of named arrays")
    with archive:
        for key in archive.files:
            try:
                out[key] = archive[key]
            except ValueError as e:
                raise ValueError(
                    f"load: refusing {os.fspath(path)!r}: entry {key!r} holds Python objects, "
                    "which would need pickle to read (convprop never unpickles)"
                ) from e
    return out

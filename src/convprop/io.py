"""``save`` / ``load`` of state dicts as ``.npz`` archives: no pickle, atomic writes.

A model's state dict is a flat mapping of names to numeric arrays, which is
exactly what ``.npz`` holds, so nothing needs pickle: :func:`save` refuses object
arrays and :func:`load` reads with ``allow_pickle=False``.  An optimizer's or a
scheduler's state dict is nested (``{"state": {0: {...}}, "param_groups": [...]}``
with ints, floats, strings and lists beside the arrays): its arrays become
entries named by their path (``state.0.exp_avg``) and the rest of the tree is one
JSON document in the entry :data:`TREE` (a ``uint8`` array), so it comes back
with the same keys, types and values -- still without pickle.  :func:`save` writes
a temporary file beside the target and renames it over the target only when it
is complete, so a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .autograd import Tensor

#: Entry holding the JSON description of a nested state dict (absent for flat ones).
TREE = "__convprop_tree__"


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


def _is_flat(obj: Mapping[str, Any]) -> bool:
    return not any(isinstance(v, (Mapping, list, tuple, str)) or v is None for v in obj.values())


def _encode(value: Any, where: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON node for ``value``; its arrays go into ``arrays`` under their path ``where``."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return {"v": value}
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, float):
        return {"float": repr(value)}  # repr keeps every bit, and nan/inf
    if isinstance(value, Counter):
        return {"counter": [[_encode(k, f"{where}.{i}k", arrays), v]
                            for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, Mapping):
        return {"dict": [[_encode(k, f"{where}.{i}k", arrays), _encode(v, f"{where}.{k}", arrays)]
                         for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [_encode(v, f"{where}.{i}", arrays) for i, v in enumerate(value)]}
    name = where.lstrip(".")
    if name == TREE or name in arrays:
        raise ValueError(f"save: two entries would be named {name!r}")
    arrays[name] = _to_array(name, value)
    return {"array": name}


def _decode(node: dict, arrays: Mapping[str, np.ndarray]) -> Any:
    (kind, v), = node.items()
    if kind == "v":
        return v
    if kind == "int":
        return int(v)
    if kind == "float":
        return float(v)
    if kind == "array":
        return arrays[v]
    if kind in ("list", "tuple"):
        items = [_decode(x, arrays) for x in v]
        return items if kind == "list" else tuple(items)
    pairs = [(_decode(k, arrays), _decode(x, arrays) if kind == "dict" else x) for k, x in v]
    return Counter(dict(pairs)) if kind == "counter" else dict(pairs)


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
    """Write a state dict to ``path`` as ``.npz``: a model's, an optimizer's or a scheduler's.

    Args:
        obj: ``{name: array}`` (a model's ``state_dict()``); values may be NumPy
            arrays, convprop Tensors, ``torch.Tensor``s or numbers.  Or a nested
            state dict (an optimizer's or scheduler's): dicts, lists and tuples of
            arrays, numbers, strings, booleans and None, with string or int keys.
        path: the file to write, ending in ``.npz`` (no suffix is added).  Written
            atomically: a temporary file in the same directory, flushed to disk,
            then renamed.

    Raises:
        TypeError: for a non-mapping, a key that is neither a string nor an int, or a
            value of another type; nothing is written then.
        ValueError: for a path not ending in ``.npz`` (the file *is* an ``.npz``
            archive; a ``.pt`` name would promise PyTorch's pickle format).
        FileNotFoundError: when the directory does not exist (naming ``path``).
    """
    if not isinstance(obj, Mapping):
        raise TypeError(f"save expects a mapping of names to arrays (e.g. model.state_dict()), "
                        f"got {type(obj).__name__}")
    arrays: dict[str, np.ndarray] = {}
    bad = [k for k in obj if not isinstance(k, str)] + [
        k for k in _keys(obj) if not isinstance(k, (str, int)) or isinstance(k, bool)]
    if bad:
        raise TypeError(f"save: keys must be strings (ints are allowed inside a nested state "
                        f"dict), got {bad[0]!r}")
    if _is_flat(obj):
        for key, value in obj.items():
            arrays[key] = _to_array(key, value)
    else:
        tree = json.dumps(_encode(dict(obj), "", arrays), allow_nan=False)
        arrays[TREE] = np.frombuffer(tree.encode("utf-8"), dtype=np.uint8)
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


def _keys(obj: Any) -> list:
    """Every mapping key anywhere in ``obj``."""
    if isinstance(obj, Counter):
        return list(obj)
    if isinstance(obj, Mapping):
        return [k for key, v in obj.items() for k in (key, *_keys(v))]
    if isinstance(obj, (list, tuple)):
        return [k for v in obj for k in _keys(v)]
    return []


def load(path: str | os.PathLike) -> Any:
    """Read a ``.npz`` written by :func:`save` (or ``np.savez``) without pickle.

    Returns:
        An ordered ``{name: ndarray}``, ready for ``model.load_state_dict``
        (or, through ``torch.from_numpy``, for a PyTorch model's); for a nested
        state dict, the same tree :func:`save` was given (dicts, lists, tuples,
        ints, floats, strings, None, with the arrays as ndarrays), ready for an
        optimizer's or scheduler's ``load_state_dict``.

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
    if TREE in out:
        return _decode(json.loads(out.pop(TREE).tobytes().decode("utf-8")), out)
    return out

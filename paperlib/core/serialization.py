"""Files that are safe to share: checkpoints hold tensors and plain data, and loading runs no code.

Every checkpoint paperlib writes (maskers, the CIFAR-10 and VOC black boxes, a training run's
``last.pt``, caches) is a ``torch.save`` of tensors and plain Python data (dict, list, tuple, str,
int, float, bool, None), and every loader reads it with ``torch.load(..., weights_only=True)``,
whose unpickler builds only those types. A pickle that names any other Python object (a class,
a function such as ``os.system``) is refused before anything of it runs.

>>> import io, torch
>>> buf = io.BytesIO(); torch.save({"w": torch.ones(2), "meta": {"step": 3}}, buf); _ = buf.seek(0)
>>> safe_load(buf, what="example")["meta"]
{'step': 3}

Old files that pickled other objects are converted once, on request, by the only code that
unpickles: ``paperlib convert-checkpoint OLD NEW --trust`` (:func:`paperlib.tools.convert.convert_checkpoint`).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .errors import CorruptCheckpointError, DataNotFoundError, UnsafeCheckpointError

__all__ = ["safe_load", "to_plain", "CONVERT_HINT"]

#: How to turn a trusted old checkpoint into the safe form.
CONVERT_HINT = "paperlib convert-checkpoint OLD NEW --trust"


def safe_load(source: str | os.PathLike | BinaryIO, *, what: str = "checkpoint", map_location: Any = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True``, with errors that name the file and say what to do.

    Args:
        source: A path or a binary file object.
        what: What the file should be, for the messages (e.g. ``"masker checkpoint"``).
        map_location: As for ``torch.load``.

    Raises:
        DataNotFoundError: The path does not exist.
        UnsafeCheckpointError: The file pickles Python objects other than tensors and plain data
            (loading it would run code); nothing of it was executed.
        CorruptCheckpointError: The file is truncated, corrupted or not a ``torch.save`` file.
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<file object>")
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise DataNotFoundError(f"The {what} {name} does not exist.")
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc).strip().splitlines()
        reason = next((ln for ln in detail if "global" in ln.lower()), "")
        if reason:  # the file names a Python object to build (a class, a function): refused before it runs
            raise UnsafeCheckpointError(
                f"Refused to load the {what} {name}: it holds pickled Python objects, not only tensors and plain data, "
                f"so loading it could run code from the file ({reason.strip()[:200]}). Nothing of it was run. If you "
                f"trust where it came from, convert it once with `{CONVERT_HINT}` and load the new file."
            ) from None
        raise _corrupt(what, name, exc) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, IndexError, KeyError) as exc:
        raise _corrupt(what, name, exc) from None


def _corrupt(what: str, name: str, exc: BaseException) -> CorruptCheckpointError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return CorruptCheckpointError(
        f"The {what} {name} could not be read: it is truncated, corrupted or not a torch.save file "
        f"({type(exc).__name__}: {first}). Download or save it again."
    )


def to_plain(obj: Any) -> Any:
    """A copy of ``obj`` made of tensors and plain data only, loadable with ``weights_only=True``.

    NumPy arrays become tensors, NumPy scalars Python numbers, subclasses of str, int and float
    (``torch.__version__``) their base type, paths strings, other mappings dicts, sets sorted lists;
    anything else raises ``TypeError`` naming its type.

    >>> import numpy as np
    >>> to_plain({"a": np.float32(0.5), "p": Path("x/y"), "t": (1, np.arange(2))})
    {'a': 0.5, 'p': 'x/y', 't': (1, tensor([0, 1]))}
    """
    if obj is None or type(obj) in (bool, int, float, str, bytes) or isinstance(obj, (torch.Tensor, torch.dtype, torch.device)):
        return obj
    for base in (bool, int, float, str, bytes):  # subclasses (torch.__version__, IntEnum, ...) as their base type
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        return {to_plain(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v) for v in obj]
        return tuple(items) if isinstance(obj, tuple) else items
    if isinstance(obj, (set, frozenset)):
        return sorted(to_plain(v) for v in obj)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with torch
        np = None
    if np is not None and isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if np is not None and isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "items"):
        return {to_plain(k): to_plain(v) for k, v in obj.items()}
    raise TypeError(f"{type(obj).__module__}.{type(obj).__qualname__} is not plain data; store its fields instead.")

"""Convert an old checkpoint that pickles Python objects into the safe form (tensors and plain data).

``paperlib convert-checkpoint OLD NEW --trust`` is the only place in paperlib that unpickles a file
(``torch.load(..., weights_only=False)``), and only when asked with ``--trust``: loading a pickle can
run any code it carries, so do it only for files whose source you trust. The new file holds the same
tensors (bit for bit) and the same data as plain types (:func:`paperlib.core.serialization.to_plain`),
and every paperlib loader reads it with ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

import torch

from ..core._common import atomic_save
from ..core.errors import DataNotFoundError, InputError, UnsafeCheckpointError, one_line_errors
from ..core.serialization import safe_load, to_plain

__all__ = ["convert_checkpoint", "main"]


def convert_checkpoint(old: str | os.PathLike, new: str | os.PathLike, *, trust: bool = False) -> Path:
    """Re-save ``old`` as ``new`` with only tensors and plain data.

    Args:
        old: A checkpoint, possibly a pickle of Python objects (an old masker file, ``last.pt``, ...).
        new: Where to write the safe copy (atomically); must differ from ``old``.
        trust: Required: ``old`` is unpickled, which runs any code the file carries.

    Returns:
        The path written.

    Raises:
        UnsafeCheckpointError: ``trust`` was not given.
        InputError: ``new`` is ``old``, or the content holds objects that have no plain form (e.g. a
            whole pickled model: save its ``state_dict()`` instead).
    """
    old, new = Path(old), Path(new)
    if not old.is_file():
        raise DataNotFoundError(f"{old} does not exist.")
    if old.resolve() == new.resolve():
        raise InputError("Give another path for the converted file: the original is kept until you delete it.")
    if not trust:
        raise UnsafeCheckpointError(
            f"Converting {old} unpickles it, which runs any code the file carries. If you trust its source, "
            "run again with --trust (trust=True)."
        )
    content = torch.load(old, map_location="cpu", weights_only=False)  # the one trusted unpickling, on request
    try:
        plain = to_plain(content)
    except TypeError as exc:
        raise InputError(f"{old} holds data with no plain form: {exc}") from None
    atomic_save(plain, new)
    safe_load(new, what="converted checkpoint")  # check: it loads without unpickling objects
    return new


def main(argv: Sequence[str] | None = None, prog: str = "paperlib convert-checkpoint") -> None:
    """Command line: ``paperlib convert-checkpoint OLD NEW --trust``."""
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="the checkpoint to convert (it is unpickled: only files you trust)")
    ap.add_argument("new", help="where to write the safe copy")
    ap.add_argument("--trust", action="store_true", help="confirm that you trust OLD's source (required)")
    args = ap.parse_args(argv)
    with one_line_errors(prog):
        path = convert_checkpoint(args.old, args.new, trust=args.trust)
    print(f"wrote {path} (tensors and plain data; loads with weights_only=True)")


if __name__ == "__main__":
    main()

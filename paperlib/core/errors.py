"""Exceptions raised by paperlib: each says what is wrong and what to do."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

__all__ = [
    "PaperlibError",
    "DataNotFoundError",
    "CorruptImageError",
    "UnknownClassError",
    "UnknownModelError",
    "WeightsNotFoundError",
    "CheckpointMismatchError",
    "UnsafeCheckpointError",
    "CorruptCheckpointError",
    "InputError",
    "one_line_errors",
]


class PaperlibError(Exception):
    """Base class of every error paperlib raises on purpose."""


class DataNotFoundError(PaperlibError, FileNotFoundError):
    """A data set or file is missing: the message names it, where it was looked for, and how to get it."""


class CorruptImageError(PaperlibError, OSError):
    """An image file could not be decoded: the message names the file."""


class UnknownClassError(PaperlibError, KeyError):
    """A class name or index is not known: the message lists the closest matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownModelError(PaperlibError, KeyError):
    """A black box or masker name is not registered: the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WeightsNotFoundError(PaperlibError, FileNotFoundError):
    """Pretrained weights could not be found or downloaded: the message says where to put them."""


class CheckpointMismatchError(PaperlibError, ValueError):
    """A checkpoint was made for another black box or architecture."""


class UnsafeCheckpointError(PaperlibError, ValueError):
    """A checkpoint holds pickled Python objects (code would run to load it): refused, with how to convert it."""


class CorruptCheckpointError(PaperlibError, ValueError):
    """A checkpoint file is truncated or corrupted: the message names the file."""


class InputError(PaperlibError, ValueError):
    """An input tensor has the wrong shape, dtype or value range."""


@contextmanager
def one_line_errors(prog: str) -> Iterator[None]:
    """For command-line tools: a :class:`PaperlibError` becomes one line on stderr and exit status 2.

    Every other exception (a bug) keeps its traceback.

    >>> try:
    ...     with one_line_errors("demo"):
    ...         raise InputError("the image is grayscale: give (N, 3, H, W) RGB.")
    ... except SystemExit as e:
    ...     print("exit", e.code)
    exit 2
    """
    try:
        yield
    except PaperlibError as exc:
        text = " ".join(str(exc).split())  # one line, whatever the message's own line breaks
        print(f"{prog}: error: {text}", file=sys.stderr)
        raise SystemExit(2) from None

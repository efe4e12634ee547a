"""Paths of the project, anchored at the repository root (showyourwork style).

Every path the library reads or writes comes from here, so that notebooks,
scripts and tests agree on where things live.

The data root is ``data/`` at the repository root unless the environment
variable ``PAPERLIB_DATA`` names another folder (the Makefile sets it from its
``DATA`` variable). Inside the data root the layout is::

    imagenet/val/ILSVRC2012_val_00000001.JPEG ...
    imagenet/LOC_val_solution.csv          (or imagenet/ILSVRC2012_bbox_val_v3/val/*.xml)
    imagenet/LOC_synset_mapping.txt
    imagenet/train-sample/<wnid>/*.JPEG    (any ImageFolder of labelled images)
    cifar10/cifar-10-batches-py/           (official files), or cifar10/{train,test}/<class>/,
                                           or cifar10/cifar10-jpeg.tar.gz
    voc2012/JPEGImages/, voc2012/SegmentationClass[Aug]/, voc2012/image_labels.csv
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "REPO_ROOT",
    "PACKAGE_DIR",
    "CHECKPOINT_DIR",
    "FIGURES_DIR",
    "NOTEBOOKS_DIR",
    "DATA_ENV_VAR",
    "CACHE_ENV_VAR",
    "data_root",
    "cache_dir",
]

PACKAGE_DIR: Path = Path(__file__).resolve().parent.parent  # paperlib/ (this file is paperlib/core/paths.py)
REPO_ROOT: Path = PACKAGE_DIR.parent
CHECKPOINT_DIR: Path = PACKAGE_DIR / "checkpoints"
FIGURES_DIR: Path = REPO_ROOT / "figures"
NOTEBOOKS_DIR: Path = REPO_ROOT / "notebooks"

DATA_ENV_VAR = "PAPERLIB_DATA"
CACHE_ENV_VAR = "PAPERLIB_CACHE"


def data_root() -> Path:
    """Return the data root: ``$PAPERLIB_DATA`` if set, else ``<repo>/data``.

    Read anew at every call, so a notebook may change the variable at run time.
    """
    env = os.environ.get(DATA_ENV_VAR)
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "data"


def cache_dir() -> Path:
    """Return a writable cache folder for extracted archives (never the source tree).

    ``$PAPERLIB_CACHE`` if set, else ``$XDG_CACHE_HOME/paperlib``, else ``~/.cache/paperlib``.
    """
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
        path = Path(base) / "paperlib"
    path.mkdir(parents=True, exist_ok=True)
    return path

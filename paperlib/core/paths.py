"""Paths of the project, anchored at the repository root (showyourwork style).

Every path the library reads or writes comes from here, so that notebooks,
scripts and tests agree on where things live.

The data root is ``data/`` at the repository root unless the environment
variable ``PAPERLIB_DATA`` names another folder (the Makefile sets it from its
``DATA`` variable); figures go to ``figures/`` unless ``PAPERLIB_FIGURES`` names another folder. An installed paperlib (not a source checkout) uses ``./data``
and writes figures under ``./figures`` of the current working directory, never
into site-packages. Inside the data root the layout is::

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
    "FIGURES_ENV_VAR",
    "NOTEBOOKS_DIR",
    "DATA_ENV_VAR",
    "CACHE_ENV_VAR",
    "IN_CHECKOUT",
    "data_root",
    "data_root_help",
    "cache_dir",
]

PACKAGE_DIR: Path = Path(__file__).resolve().parent.parent  # paperlib/ (this file is paperlib/core/paths.py)


def _is_checkout(root: Path) -> bool:
    """Whether ``root`` is this project's source tree (not, e.g., a site-packages folder)."""
    return (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir()


#: True when paperlib runs from its source tree (a clone, or an editable install); False when it is
#: installed as a library. An installed paperlib never writes next to its own files: the
#: repository paths below then point into the current working directory.
IN_CHECKOUT: bool = _is_checkout(PACKAGE_DIR.parent)
REPO_ROOT: Path = PACKAGE_DIR.parent if IN_CHECKOUT else Path.cwd()
CHECKPOINT_DIR: Path = PACKAGE_DIR / "checkpoints"  # read-only: the shipped models
#: Where results are written: ``figures/`` of the repository, or the folder named by the environment
#: variable ``PAPERLIB_FIGURES`` (``make test`` points it at a copy, so that the notebooks' smoke runs
#: never overwrite the committed results).
FIGURES_ENV_VAR = "PAPERLIB_FIGURES"
FIGURES_DIR: Path = Path(os.environ[FIGURES_ENV_VAR]).resolve() if os.environ.get(FIGURES_ENV_VAR) else REPO_ROOT / "figures"
NOTEBOOKS_DIR: Path = REPO_ROOT / "notebooks"

DATA_ENV_VAR = "PAPERLIB_DATA"
CACHE_ENV_VAR = "PAPERLIB_CACHE"


def data_root() -> Path:
    """Return the data root: ``$PAPERLIB_DATA`` if set, else ``<repo>/data`` in a source checkout,
    else ``./data`` (the current working directory) for an installed paperlib.

    Read anew at every call, so a notebook may change the variable (or the folder) at run time.
    """
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return PACKAGE_DIR.parent / "data" if IN_CHECKOUT else Path.cwd() / "data"


def data_root_help() -> str:
    """One sentence on where data are looked for, for error messages."""
    env = os.environ.get(DATA_ENV_VAR)
    where = f"${DATA_ENV_VAR} = {env}" if env else f"${DATA_ENV_VAR} is not set, so {data_root()}"
    return (
        f"Data are looked for under the data root ({where}); set {DATA_ENV_VAR} to your data folder or put the data under ./data."
    )


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

"""Image files and where the data live: the helpers shared by :mod:`paperlib.core.data` and
:mod:`paperlib.core.folders`.

:func:`load_image` opens every image of the project (any mode to RGB; decoding failures become
:class:`~paperlib.core.errors.CorruptImageError`); :func:`to_tensor` turns it into a float tensor
``(3, H, W)`` in ``[0, 1]``. The private helpers locate a data set under the data root
(:func:`paperlib.core.paths.data_root`) and build the :class:`~paperlib.core.errors.DataNotFoundError`
that names the path looked for and how to get the data. This module imports neither torchvision nor
any data set: it stays cheap to import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image

from . import paths
from .errors import CorruptImageError, DataNotFoundError, InputError

__all__ = ["PathLike", "Transform", "IMAGE_EXTENSIONS", "load_image", "to_tensor"]

PathLike = Union[str, "os.PathLike[str]"]
Transform = Optional[Callable[[Image.Image], Any]]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

_SET_ROOT = (
    "Set PAPERLIB_DATA (or run `make DATA=/path`) to the folder that holds your data (without it: data/ in a source "
    "checkout, ./data for an installed paperlib)"
)
_HOWTO_IMAGENET = (
    f"{_SET_ROOT}, with imagenet/val/*.JPEG and imagenet/LOC_val_solution.csv. Official source: the "
    "ILSVRC2012 validation images and LOC_val_solution.csv from Kaggle's imagenet-object-localization-challenge "
    "(https://www.kaggle.com/c/imagenet-object-localization-challenge/data), or the ILSVRC2012 val images with "
    "ILSVRC2012_bbox_val_v3.tgz from https://image-net.org."
)
_HOWTO_IMAGENET_FOLDER = (
    f"{_SET_ROOT}, with an ImageFolder of labelled ImageNet images (one folder per wnid, e.g. "
    "imagenet/train-sample/n01440764/*.JPEG), e.g. part of the ILSVRC2012 train set from Kaggle's "
    "imagenet-object-localization-challenge or https://image-net.org."
)
_HOWTO_CIFAR = (
    f"{_SET_ROOT}, with cifar10/cifar-10-batches-py/ (official files), cifar10/{{train,test}}/<class>/ or "
    "cifar10/cifar10-jpeg.tar.gz; or call paperlib.core.data.cifar10(..., download=True) to fetch the official "
    "files with torchvision (https://www.cs.toronto.edu/~kriz/cifar.html)."
)
_HOWTO_VOC = (
    f"{_SET_ROOT}, with voc2012/JPEGImages/ and voc2012/SegmentationClassAug/ (or SegmentationClass/). Official "
    "source: VOCtrainval_11-May-2012.tar from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ and the "
    "SegmentationClassAug masks (Hariharan et al. SBD augmentation, e.g. SegmentationClassAug.zip)."
)


def _missing(what: str, looked: Union[Path, Sequence[Path]], how: str) -> DataNotFoundError:
    """Build a DataNotFoundError naming what is missing, where it was looked for, and how to get it."""
    if isinstance(looked, (str, Path)):
        where = f"looked for {looked}\n"
    else:
        where = "looked in:\n" + "".join(f"  - {p}\n" for p in looked)
    return DataNotFoundError(f"{what} not found; {where}{how}")


def _root(root: Optional[PathLike]) -> Path:
    return Path(root).expanduser() if root is not None else paths.data_root()


def _sub(root: Optional[PathLike], name: str, marker: str) -> Path:
    """``<root>/<name>``, or ``root`` itself if it already is that folder (contains ``marker``)."""
    base = _root(root)
    if not (base / name).is_dir() and (base / marker).exists():
        return base
    return base / name


def _list_images(folder: Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    exts = {e.lower() for e in extensions}
    with os.scandir(folder) as it:
        return sorted(
            (Path(e.path) for e in it if e.is_file() and os.path.splitext(e.name)[1].lower() in exts),
            key=lambda p: p.name,
        )


# --------------------------------------------------------------------------- images
def load_image(path: PathLike) -> Image.Image:
    """Open an image file as an RGB PIL image, fully decoded.

    Grayscale, palette, CMYK, RGBA (alpha dropped, as torchvision's loader does) and
    16-bit images are converted to 8-bit RGB.

    Args:
        path: Image file.

    Returns:
        A PIL image in mode ``"RGB"``.

    Raises:
        DataNotFoundError: The file does not exist.
        CorruptImageError: PIL cannot decode it (the message names the file and the reason).
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                scale = 255.0 / 65535.0 if arr.max(initial=0) > 255 else 1.0
                im = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), "L")
            elif im.mode in ("P", "PA") and "transparency" in im.info:
                im = im.convert("RGBA")  # avoids PIL's warning; alpha is then dropped
            elif im.mode == "F":
                arr = np.asarray(im, dtype=np.float64)
                if arr.size and arr.max() <= 1.0:
                    arr = arr * 255.0
                im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
            return im.convert("RGB") if im.mode != "RGB" else im.copy()
    except FileNotFoundError:
        raise DataNotFoundError(f"Image file not found: looked for {path}.") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as e:
        raise CorruptImageError(f"Cannot decode image {path}: {type(e).__name__}: {e}") from e


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB image -> float tensor ``(3, H, W)`` in ``[0, 1]``."""
    arr = np.asarray(image.convert("RGB") if image.mode != "RGB" else image, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def _apply(transform: Transform, image: Image.Image) -> Any:
    return to_tensor(image) if transform is None else transform(image)


# --------------------------------------------------------------------------- CIFAR-10
_CIFAR_MARKER = ".paperlib-extracted"


def _cifar_places(root: Path) -> tuple[Path, Path, Path]:
    base = root / "cifar10"
    return base / "cifar-10-batches-py", base, base / "cifar10-jpeg.tar.gz"


def _has_split_folders(folder: Path, split: str) -> bool:
    d = folder / split
    return d.is_dir() and any(e.is_dir() for e in os.scandir(d))


def _cifar_source(split: str, root: Optional[PathLike], download: bool) -> tuple[str, Path]:
    """Which CIFAR-10 copy to use: ("official" | "folder" | "jpeg-tar" | "download", path)."""
    if split not in ("train", "test"):
        raise InputError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}.")
    base = _root(root)
    official, folder, tar = _cifar_places(base)
    if official.is_dir():
        return "official", official
    if _has_split_folders(folder, split):
        return "folder", folder / split
    if tar.is_file():
        return "jpeg-tar", tar
    if download:
        return "download", folder
    raise _missing(
        f"CIFAR-10 ({split})",
        [official, folder / split / "<class name>/", tar],
        _HOWTO_CIFAR,
    )

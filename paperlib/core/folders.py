"""Folder data sets built on torchvision: ImageNet image folders and CIFAR-10.

Kept apart from :mod:`paperlib.core.data` because importing torchvision costs seconds (it imports
``torch._dynamo``): :mod:`paperlib.core.data` re-exports these names lazily, so a process that reads
only the ImageNet validation images or VOC never pays for it. Layout under the data root::

    imagenet/train-sample/<wnid>/*.JPEG                any ImageFolder of labelled ImageNet images
    cifar10/cifar-10-batches-py/                       official python files, or
    cifar10/{train,test}/<class name>/*.{png,jpg}      an ImageFolder, or
    cifar10/cifar10-jpeg.tar.gz                        the same as a tarball (extracted once to the cache)
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from filelock import FileLock  # a dependency of torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import CIFAR10, ImageFolder

from . import paths
from .classes import ClassIndex, cifar10_classes, imagenet_classes
from .datafiles import (
    _CIFAR_MARKER,
    _HOWTO_CIFAR,
    _HOWTO_IMAGENET_FOLDER,
    PathLike,
    Transform,
    _apply,
    _cifar_source,
    _has_split_folders,
    _missing,
    load_image,
    to_tensor,
)
from .errors import CorruptImageError, DataNotFoundError, UnknownClassError

__all__ = ["ImageNetFolder", "CIFAR10Folder", "imagenet_folder", "cifar10", "cifar10_tensors"]


# --------------------------------------------------------------------------- ImageFolders
class _ClassFolder(ImageFolder):
    """ImageFolder whose class folders are looked up in a fixed class list (not folder-sorted indices)."""

    _what = "image folder"
    _howto = ""

    @staticmethod
    def _class_list() -> ClassIndex:  # pragma: no cover - overridden
        raise NotImplementedError

    def __init__(self, root: PathLike, transform: Transform = None) -> None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise _missing(self._what, root, self._howto)
        try:
            super().__init__(str(root), transform=transform, loader=load_image)
        except DataNotFoundError:
            raise
        except FileNotFoundError as e:  # torchvision: a class folder without images
            raise DataNotFoundError(f"{self._what} incomplete in {root}: {e}\n{self._howto}") from None
        self.folder_classes: list[str] = list(self.classes)

    def find_classes(self, directory: Union[str, Path]) -> tuple[list[str], dict[str, int]]:
        """Class folders -> class indices of the standard class list.

        Raises:
            DataNotFoundError: No class folders.
            UnknownClassError: A folder name is not a known wnid / class name.
        """
        with os.scandir(directory) as it:
            folders = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
        if not folders:
            raise _missing(f"{self._what} class folders", Path(directory) / "<class>/", self._howto)
        ci = self._class_list()
        mapping: dict[str, int] = {}
        for f in folders:
            try:
                mapping[f] = ci.index(f)
            except UnknownClassError as e:
                raise UnknownClassError(f"Folder {Path(directory) / f} is not a known {ci.dataset} class: {e}") from None
        return folders, mapping

    def __getitem__(self, i: int) -> tuple[Any, int]:
        path, target = self.samples[i]
        return _apply(self.transform, load_image(path)), target


class ImageNetFolder(_ClassFolder):
    """ImageFolder of ImageNet images, one folder per wnid; labels are STANDARD class indices.

    A folder holding only 3 classes still yields their true ImageNet indices (looked up by
    wnid, or by class name if a folder is named after one).

    Args:
        root: Folder of ``<wnid>/*.JPEG``.
        transform: Applied to the PIL RGB image; default: float tensor ``(3, H, W)`` in ``[0, 1]``.

    Items are ``(image, label)``. Attributes (besides ImageFolder's ``samples``, ``targets``,
    ``class_to_idx``): ``folder_classes``, the folder names in sorted order.
    """

    _what = "ImageNet image folder"
    _howto = _HOWTO_IMAGENET_FOLDER
    _class_list = staticmethod(imagenet_classes)


class CIFAR10Folder(_ClassFolder):
    """ImageFolder of CIFAR-10 images, ``<class name>/*``; labels are standard CIFAR-10 indices.

    Items are ``(image, label)``, image a float tensor ``(3, 32, 32)`` in ``[0, 1]`` by default.
    """

    _what = "CIFAR-10 image folder"
    _howto = _HOWTO_CIFAR
    _class_list = staticmethod(cifar10_classes)


def imagenet_folder(root_or_subdir: Optional[PathLike] = None, transform: Transform = None) -> ImageNetFolder:
    """Labelled ImageNet images in ImageFolder layout (``<folder>/<wnid>/*.JPEG``).

    Args:
        root_or_subdir: ``None`` for ``<data_root>/imagenet/train-sample``; else a data root
            holding ``imagenet/train-sample``, a folder of wnid folders, or the name of a
            folder under ``<data_root>/imagenet`` (e.g. ``"train-sample"``).
        transform: Applied to the PIL RGB image; default: float tensor ``(3, H, W)`` in ``[0, 1]``.

    Returns:
        An :class:`ImageNetFolder` (a torchvision ``ImageFolder``) yielding ``(image, label)``
        with ``label`` the standard ImageNet class index.

    Raises:
        DataNotFoundError: No such folder (the message lists the paths tried).
        UnknownClassError: A class folder is not a known wnid.
    """
    if root_or_subdir is None:
        candidates = [paths.data_root() / "imagenet" / "train-sample"]
    else:
        p = Path(root_or_subdir).expanduser()
        candidates = [p / "imagenet" / "train-sample", p]
        if not p.is_absolute():
            candidates.append(paths.data_root() / "imagenet" / p)
    for c in candidates:
        if c.is_dir():
            return ImageNetFolder(c, transform=transform)
    raise _missing("ImageNet image folder", candidates, _HOWTO_IMAGENET_FOLDER)


# --------------------------------------------------------------------------- CIFAR-10
def _tar_signature(tar_path: Path) -> str:
    st = tar_path.stat()
    return f"{tar_path.resolve()}\n{st.st_size}\n{st.st_mtime_ns}\n"


def _extract_cifar_tar(tar_path: Path) -> Path:
    """Extract the CIFAR-10 JPEG tarball once into ``cache_dir()/cifar10-jpeg`` and return that folder.

    Extraction goes to a temporary folder in the cache, then is renamed into place
    atomically, under a file lock so that concurrent processes extract once. A marker
    file records which tarball (path, size, mtime) it came from; a changed tarball is
    extracted anew. The source tree is never written to.
    """
    cache = paths.cache_dir()
    dest = cache / "cifar10-jpeg"
    marker = dest / _CIFAR_MARKER
    sig = _tar_signature(tar_path)

    def done() -> bool:
        return marker.is_file() and marker.read_text() == sig

    if done():
        return dest
    with FileLock(str(cache / ".cifar10-jpeg.lock")):
        if done():  # another process extracted it while we waited
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=".cifar10-jpeg-tmp-", dir=cache))
        try:
            try:
                with tarfile.open(tar_path, "r:*") as tf:
                    members = [
                        m
                        for m in tf.getmembers()
                        if (m.isfile() or m.isdir()) and m.name.lstrip("./").split("/", 1)[0] in ("train", "test")
                    ]
                    if not members:
                        raise _missing(
                            f"train/<class>/ or test/<class>/ members in the CIFAR-10 tarball {tar_path}",
                            tar_path,
                            _HOWTO_CIFAR,
                        )
                    if hasattr(tarfile, "data_filter"):
                        tf.extractall(tmp, members=members, filter="data")
                    else:  # pragma: no cover - Python < 3.11.4
                        for m in members:
                            if m.name.startswith("/") or ".." in Path(m.name).parts:
                                raise CorruptImageError(f"Unsafe member {m.name!r} in {tar_path}.")
                        tf.extractall(tmp, members=members)
            except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
                raise CorruptImageError(f"Cannot extract CIFAR-10 tarball {tar_path}: {type(e).__name__}: {e}") from e
            (tmp / _CIFAR_MARKER).write_text(sig)
            os.chmod(tmp, 0o755)  # mkdtemp makes it private
            if dest.exists():  # from another tarball, or left incomplete: move aside, then delete
                trash = Path(tempfile.mkdtemp(prefix=".cifar10-jpeg-old-", dir=cache))
                os.rename(dest, trash / "old")
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


def cifar10(
    split: str = "train",
    root: Optional[PathLike] = None,
    transform: Transform = None,
    download: bool = False,
) -> Dataset:
    """CIFAR-10 with its standard labels (0 airplane ... 9 truck).

    Looks, in order, for

    a. the official python files ``<root>/cifar10/cifar-10-batches-py`` (torchvision CIFAR10);
    b. an ImageFolder ``<root>/cifar10/{train,test}/<class name>/*``;
    c. the tarball ``<root>/cifar10/cifar10-jpeg.tar.gz`` (``train/<class>/NNNN.jpg``, ...),
       extracted once into ``paths.cache_dir()/cifar10-jpeg/``, then read as (b);
    d. with ``download=True``, torchvision's official download into ``<root>/cifar10``.

    Note:
        The JPEG copy (c) is a lossy re-encoding of the official images (mean absolute
        pixel error about 5.8/255), so accuracies measured on it run slightly below those
        on the official files: say so wherever they are reported.

    Args:
        split: ``"train"`` (50000 images) or ``"test"`` (10000).
        root: Data root (default :func:`paths.data_root`).
        transform: Applied to the PIL RGB image; default: float tensor ``(3, 32, 32)`` in ``[0, 1]``.
        download: Allow downloading the official files if nothing is found.

    Returns:
        A Dataset of ``(image, label)`` with an attribute ``source`` in ``{"official",
        "folder", "jpeg-tar"}`` and ``targets`` (list of labels).

    Raises:
        DataNotFoundError: Nothing found (the message lists the three places looked).
    """
    kind, path = _cifar_source(split, root, download)
    tf = transform if transform is not None else to_tensor
    if kind in ("official", "download"):
        ds = CIFAR10(
            root=str(path.parent if kind == "official" else path),
            train=split == "train",
            transform=tf,
            download=kind == "download",
        )
        ds.source = "official"  # type: ignore[attr-defined]
        return ds
    if kind == "jpeg-tar":
        folder = _extract_cifar_tar(path)
        if not _has_split_folders(folder, split):
            raise _missing(f"CIFAR-10 split {split!r} in the extracted tarball", folder / split, _HOWTO_CIFAR)
        path = folder / split
    ds = CIFAR10Folder(path, transform=transform)
    ds.source = "folder" if kind == "folder" else "jpeg-tar"
    return ds


def cifar10_tensors(split: str = "train", root: Optional[PathLike] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All CIFAR-10 images of a split as one uint8 tensor, for fast training loops.

    Decodes once and caches a ``.pt`` file in :func:`paths.cache_dir` (keyed by the source
    path, its size and modification time, and the split); later calls load that file.

    Args:
        split: ``"train"`` or ``"test"``.
        root: Data root (default :func:`paths.data_root`).

    Returns:
        ``(images, labels)``: uint8 ``(N, 3, 32, 32)`` and LongTensor ``(N,)``.
        Divide by 255 for ``[0, 1]`` floats.
    """
    kind, path = _cifar_source(split, root, download=False)
    if kind == "official":
        ds = CIFAR10(root=str(path.parent), train=split == "train", download=False)
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets, dtype=torch.long)
    st = path.stat()
    key = hashlib.sha1(f"{kind}\n{path.resolve()}\n{st.st_size}\n{st.st_mtime_ns}\n{split}".encode()).hexdigest()[:16]
    cache_file = paths.cache_dir() / f"cifar10-{split}-{key}.pt"
    if cache_file.is_file():
        try:
            data = torch.load(cache_file, map_location="cpu", weights_only=True)
            return data["images"], data["labels"]
        except Exception:  # unreadable cache: rebuild
            pass
    ds = cifar10(split, root=root, transform=lambda im: im)
    samples = ds.samples  # type: ignore[attr-defined]
    n = len(samples)
    images = torch.empty((n, 3, 32, 32), dtype=torch.uint8)
    labels = torch.tensor([t for _, t in samples], dtype=torch.long)

    def decode(lo_hi: tuple[int, int]) -> None:
        for i in range(*lo_hi):
            im = load_image(samples[i][0])
            if im.size != (32, 32):
                im = im.resize((32, 32), Image.BILINEAR)
            images[i] = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)

    chunks = [(lo, min(lo + 1000, n)) for lo in range(0, n, 1000)]
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        list(pool.map(decode, chunks))  # PIL decodes without the GIL
    fd, tmp = tempfile.mkstemp(prefix=".cifar10-", suffix=".pt", dir=cache_file.parent)
    os.close(fd)
    try:
        torch.save({"images": images, "labels": labels}, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, cache_file)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return images, labels

"""Loaders for the real data sets: ImageNet validation (with boxes), ImageNet folders, CIFAR-10, PASCAL VOC 2012.

All data are found through :func:`paperlib.paths.data_root` (``$PAPERLIB_DATA``, default
``<repo>/data``; the Makefile sets it from ``make DATA=/path``). Layout under the data root::

    imagenet/val/ILSVRC2012_val_00000001.JPEG ...      validation images (original size)
    imagenet/LOC_val_solution.csv                      boxes, Kaggle format, or
    imagenet/ILSVRC2012_bbox_val_v3/[val/]*.xml        boxes, per-image Pascal-VOC-style XML
    imagenet/LOC_synset_mapping.txt                    wnid -> class index (standard sorted order)
    imagenet/train-sample/<wnid>/*.JPEG                any ImageFolder of labelled ImageNet images
    cifar10/cifar-10-batches-py/                       official python files, or
    cifar10/{train,test}/<class name>/*.{png,jpg}      an ImageFolder, or
    cifar10/cifar10-jpeg.tar.gz                        the same as a tarball (extracted once to the cache)
    voc2012/JPEGImages/<id>.jpg
    voc2012/SegmentationClassAug/<id>.png              (or SegmentationClass/) palette PNG masks
    voc2012/val.txt                                    ids (optional; else all masks)
    voc2012/image_labels.csv                           id,labels (optional; else from the masks, with a warning)

Images are float tensors ``(3, H, W)`` in ``[0, 1]``, RGB, unless a ``transform`` is given,
which then receives the PIL RGB image. Every image is opened by :func:`load_image`, which
converts any mode to RGB and turns decoding failures into :class:`CorruptImageError`.
A missing data set raises :class:`DataNotFoundError` naming the path looked for and how
to get the data. Nothing is ever written into the data folder: archives are extracted
into :func:`paperlib.paths.cache_dir`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import warnings
import xml.etree.ElementTree as ET
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
from filelock import FileLock  # a dependency of torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import CIFAR10, ImageFolder

from . import paths
from .classes import ClassIndex, cifar10_classes, imagenet_classes
from .errors import CorruptImageError, DataNotFoundError, InputError, UnknownClassError

__all__ = [
    "SkipUnreadable",
    "IMAGE_EXTENSIONS",
    "VOC_CLASSES",
    "Sample",
    "VOCSample",
    "load_image",
    "to_tensor",
    "ImageNetVal",
    "ImageNetFolder",
    "imagenet_folder",
    "collate_samples",
    "CIFAR10Folder",
    "cifar10",
    "cifar10_tensors",
    "VOCSegmentation",
    "available_data",
]

PathLike = Union[str, "os.PathLike[str]"]
Transform = Optional[Callable[[Image.Image], Any]]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

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
    "cifar10/cifar10-jpeg.tar.gz; or call paperlib.data.cifar10(..., download=True) to fetch the official "
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


# --------------------------------------------------------------------------- ImageNet val
class Sample(NamedTuple):
    """One ImageNet validation sample.

    Attributes:
        image: Float tensor ``(3, H, W)`` in ``[0, 1]`` (original size), or the transform's output.
        label: Standard ImageNet class index.
        boxes: FloatTensor ``(K, 4)``: ``xmin, ymin, xmax, ymax`` in original pixels.
        size: Original ``(width, height)``.
        id: Image id, e.g. ``"ILSVRC2012_val_00000001"``.
    """

    image: Any
    label: int
    boxes: torch.Tensor
    size: tuple[int, int]
    id: str


def _read_loc_csv(path: Path) -> dict[str, list[tuple[str, list[float]]]]:
    """Parse Kaggle's LOC_val_solution.csv -> {image id: [(wnid, [xmin, ymin, xmax, ymax]), ...]}."""
    out: dict[str, list[tuple[str, list[float]]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise DataNotFoundError(
                f"Malformed annotation file {path}: expected the header 'ImageId,PredictionString' "
                f"(Kaggle LOC_val_solution.csv). {_HOWTO_IMAGENET}"
            )
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            image_id, fields = row[0].strip(), (row[1] if len(row) > 1 else "").split()
            if len(fields) % 5 or not fields:
                raise DataNotFoundError(
                    f"Malformed annotation file {path}, line {lineno}: PredictionString must be repeated "
                    f"'wnid xmin ymin xmax ymax', got {len(fields)} fields."
                )
            objs = [(fields[j], [float(v) for v in fields[j + 1 : j + 5]]) for j in range(0, len(fields), 5)]
            out[image_id] = objs
    return out


def _read_voc_xml(path: Path) -> tuple[str, list[tuple[str, list[float]]]]:
    """Parse one ILSVRC bbox XML file -> (image id, [(wnid, box), ...])."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as e:
        raise DataNotFoundError(f"Malformed annotation file {path}: {e}") from e
    root = tree.getroot()
    fn = root.findtext("filename")
    image_id = Path(fn.strip()).stem if fn and fn.strip() else path.stem
    objs = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        if not name or bb is None:
            continue
        try:
            box = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore[arg-type]
        except (TypeError, ValueError) as e:
            raise DataNotFoundError(f"Malformed annotation file {path}: bad <bndbox>: {e}") from e
        objs.append((name, box))
    return image_id, objs


def _find_xml_dir(imagenet_dir: Path) -> Optional[Path]:
    for d in (imagenet_dir / "ILSVRC2012_bbox_val_v3" / "val", imagenet_dir / "ILSVRC2012_bbox_val_v3"):
        if d.is_dir() and any(p.suffix.lower() == ".xml" for p in d.iterdir()):
            return d
    return None


class ImageNetVal(Dataset):
    """ImageNet (ILSVRC2012) validation images with class labels and bounding boxes.

    Only images that have annotations are included, sorted by file name.

    Args:
        root: Data root (default :func:`paths.data_root`); images are read from
            ``<root>/imagenet/val/*.JPEG``. ``root`` may also be the ``imagenet`` folder itself.
        annotations: ``"auto"`` (the CSV if present, else the XML folder), ``"csv"``,
            ``"xml"``, or a path to a CSV file or to a folder of XML files.
        transform: Applied to the PIL RGB image; default: float tensor ``(3, H, W)`` in ``[0, 1]``.
        limit: Keep only the first ``limit`` images.

    Items are :class:`Sample` ``(image, label, boxes (K, 4) original pixels, size (W, H), id)``;
    ``label`` is the class of the image's boxes (all boxes of an ILSVRC validation image
    share one class; the first box's wnid is used). Use :func:`collate_samples` in a DataLoader.

    Attributes:
        ids: Image ids in order. labels: class indices. boxes: list of ``(K, 4)`` tensors.
        wnids: the wnid of each image. annotation_source: ``"csv"`` or ``"xml"``.
        annotation_path: the CSV file or XML folder used.

    Raises:
        DataNotFoundError: No images, or no annotations (message names the paths looked for).
    """

    def __init__(
        self,
        root: Optional[PathLike] = None,
        annotations: Union[str, PathLike] = "auto",
        transform: Transform = None,
        limit: Optional[int] = None,
    ) -> None:
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InputError(f"limit must be a positive int or None, got {limit!r}.")
        self.root = _sub(root, "imagenet", "val")
        self.transform = transform
        val_dir = self.root / "val"
        if not val_dir.is_dir():
            raise _missing("ImageNet validation images", val_dir, _HOWTO_IMAGENET)
        images = {p.stem: p for p in _list_images(val_dir, (".jpeg", ".jpg", ".png"))}
        if not images:
            raise _missing("ImageNet validation images (*.JPEG)", val_dir / "*.JPEG", _HOWTO_IMAGENET)

        ann = self._load_annotations(annotations)
        classes = imagenet_classes()
        wnid_to_index = {w: i for i, w in enumerate(classes.wnids)}
        self.ids: list[str] = []
        self.paths: list[Path] = []
        self.labels: list[int] = []
        self.wnids: list[str] = []
        self.boxes: list[torch.Tensor] = []
        for image_id in sorted(set(images) & set(ann), key=lambda s: images[s].name):
            objs = ann[image_id]
            if not objs:
                continue
            wnid = objs[0][0]
            if wnid not in wnid_to_index:
                raise UnknownClassError(
                    f"Annotation of {image_id} in {self.annotation_path} names wnid {wnid!r}, which is not "
                    f"among the 1000 ImageNet classes of {classes._synsets().path}."
                )
            self.ids.append(image_id)
            self.paths.append(images[image_id])
            self.labels.append(wnid_to_index[wnid])
            self.wnids.append(wnid)
            self.boxes.append(torch.tensor([b for _, b in objs], dtype=torch.float32).reshape(-1, 4))
            if limit is not None and len(self.ids) >= limit:
                break
        if not self.ids:
            raise DataNotFoundError(
                f"No ImageNet validation image in {val_dir} has an annotation in {self.annotation_path} "
                f"(ids such as {next(iter(sorted(images)))!r} vs {next(iter(sorted(ann)), None)!r}). {_HOWTO_IMAGENET}"
            )

    def _load_annotations(self, annotations: Union[str, PathLike]) -> dict[str, list[tuple[str, list[float]]]]:
        csv_path = self.root / "LOC_val_solution.csv"
        if isinstance(annotations, str) and annotations in ("auto", "csv", "xml"):
            kind = annotations
            xml_dir = _find_xml_dir(self.root) if kind in ("auto", "xml") else None
            if kind == "auto":
                kind = "csv" if csv_path.is_file() else ("xml" if xml_dir is not None else "none")
            if kind == "none":
                raise _missing(
                    "ImageNet validation annotations",
                    [
                        csv_path,
                        self.root / "ILSVRC2012_bbox_val_v3" / "val" / "*.xml",
                        self.root / "ILSVRC2012_bbox_val_v3" / "*.xml",
                    ],
                    _HOWTO_IMAGENET,
                )
            if kind == "csv":
                if not csv_path.is_file():
                    raise _missing("ImageNet annotation file LOC_val_solution.csv", csv_path, _HOWTO_IMAGENET)
                path: Path = csv_path
            else:
                if xml_dir is None:
                    raise _missing(
                        "ImageNet annotation XML files",
                        [
                            self.root / "ILSVRC2012_bbox_val_v3" / "val" / "*.xml",
                            self.root / "ILSVRC2012_bbox_val_v3" / "*.xml",
                        ],
                        _HOWTO_IMAGENET,
                    )
                path = xml_dir
        else:
            path = Path(annotations).expanduser()
            if not path.exists():
                raise _missing("ImageNet annotations", path, _HOWTO_IMAGENET)
            kind = "xml" if path.is_dir() else "csv"
        self.annotation_source = kind
        self.annotation_path = path
        if kind == "csv":
            return _read_loc_csv(path)
        out = {}
        for p in sorted(path.iterdir()):
            if p.suffix.lower() == ".xml":
                image_id, objs = _read_voc_xml(p)
                out[image_id] = objs
        return out

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Sample:
        img = load_image(self.paths[i])
        return Sample(_apply(self.transform, img), self.labels[i], self.boxes[i].clone(), img.size, self.ids[i])

    def __repr__(self) -> str:
        return f"ImageNetVal(root={str(self.root)!r}, n={len(self)}, annotations={self.annotation_source!r})"


def collate_samples(batch: Sequence[Sample]) -> Sample:
    """Collate :class:`Sample` items for a DataLoader.

    Returns:
        A :class:`Sample` of lists/tensors: ``image`` stacked to ``(B, 3, H, W)`` when all
        are tensors of one shape (else a list), ``label`` a LongTensor ``(B,)``, ``boxes`` a
        list of ``(K_i, 4)`` tensors, ``size`` a list of ``(W, H)``, ``id`` a list of str.
    """
    images = [s.image for s in batch]
    if images and all(isinstance(x, torch.Tensor) for x in images) and len({tuple(x.shape) for x in images}) == 1:
        image: Any = torch.stack(images)
    else:
        image = images
    return Sample(
        image,
        torch.tensor([int(s.label) for s in batch], dtype=torch.long),  # type: ignore[arg-type]
        [s.boxes for s in batch],  # type: ignore[arg-type]
        [s.size for s in batch],  # type: ignore[arg-type]
        [s.id for s in batch],  # type: ignore[arg-type]
    )


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
_CIFAR_MARKER = ".paperlib-extracted"


def _cifar_places(root: Path) -> tuple[Path, Path, Path]:
    base = root / "cifar10"
    return base / "cifar-10-batches-py", base, base / "cifar10-jpeg.tar.gz"


def _has_split_folders(folder: Path, split: str) -> bool:
    d = folder / split
    return d.is_dir() and any(e.is_dir() for e in os.scandir(d))


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


# --------------------------------------------------------------------------- VOC 2012
class VOCSample(NamedTuple):
    """One PASCAL VOC 2012 segmentation sample.

    Attributes:
        image: Float tensor ``(3, H, W)`` in ``[0, 1]``, or the transform's output.
        mask: LongTensor ``(H, W)``: 0 background, 1..20 classes (VOC order), 255 ignore.
        labels: Multi-hot LongTensor ``(20,)`` of the classes present (index = class - 1).
        id: Image id, e.g. ``"2007_000033"``.
    """

    image: Any
    mask: torch.Tensor
    labels: torch.Tensor
    id: str


def _load_mask(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("P", "L"):
                raise CorruptImageError(
                    f"Mask {path} has mode {im.mode!r}; expected a palette (P) or grayscale (L) PNG whose "
                    "values are class ids (VOC SegmentationClass / SegmentationClassAug)."
                )
            return np.array(im)
    except FileNotFoundError:
        raise DataNotFoundError(f"Mask file not found: looked for {path}. {_HOWTO_VOC}") from None
    except CorruptImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CorruptImageError(f"Cannot decode mask {path}: {type(e).__name__}: {e}") from e


class VOCSegmentation(Dataset):
    """PASCAL VOC 2012 segmentation images with masks and image-level labels.

    Args:
        root: Data root (default :func:`paths.data_root`), holding ``voc2012/``; may also be
            the ``voc2012`` folder itself.
        split_file: Text file of ids; default ``voc2012/val.txt`` (or
            ``ImageSets/Segmentation/val.txt``) if present, else every mask file.
        transform: Applied to the PIL RGB image only (the mask keeps the original size);
            default: float tensor ``(3, H, W)`` in ``[0, 1]``.
        mask_dir: ``"auto"`` (``SegmentationClassAug`` first, then ``SegmentationClass``),
            a folder name under ``voc2012``, or a path.

    Items are :class:`VOCSample` ``(image, mask (H, W), labels (20,), id)``. The image-level
    labels come from ``voc2012/image_labels.csv`` (``id,labels`` with space-separated class
    names). When that file exists it must list every id that is read: an id missing from it
    raises :class:`DataNotFoundError` naming the id and the file (labels are never taken from
    the ground-truth mask behind the file's back, which would leak the segmentation into the
    image-level supervision). Only when there is no ``image_labels.csv`` at all are the labels
    read from each mask's values (excluding 0 and 255), and the constructor then warns
    (``UserWarning``) that it does so.

    Attributes:
        labels_file: The ``image_labels.csv`` read, or None when the labels come from the masks.
    """

    def __init__(
        self,
        root: Optional[PathLike] = None,
        split_file: Optional[PathLike] = None,
        transform: Transform = None,
        mask_dir: Union[str, PathLike] = "auto",
    ) -> None:
        self.root = _sub(root, "voc2012", "JPEGImages")
        self.transform = transform
        self.image_dir = self.root / "JPEGImages"
        if not self.image_dir.is_dir():
            raise _missing("PASCAL VOC 2012 images", self.image_dir, _HOWTO_VOC)
        if isinstance(mask_dir, str) and mask_dir == "auto":
            tried = [self.root / "SegmentationClassAug", self.root / "SegmentationClass"]
            found = next((d for d in tried if d.is_dir()), None)
            if found is None:
                raise _missing("PASCAL VOC 2012 segmentation masks", tried, _HOWTO_VOC)
            self.mask_dir = found
        else:
            md = Path(mask_dir).expanduser()
            self.mask_dir = md if md.is_absolute() or md.is_dir() else self.root / md
            if not self.mask_dir.is_dir():
                raise _missing("PASCAL VOC 2012 segmentation masks", self.mask_dir, _HOWTO_VOC)

        if split_file is None:
            for cand in (self.root / "val.txt", self.root / "ImageSets" / "Segmentation" / "val.txt"):
                if cand.is_file():
                    split_file = cand
                    break
        if split_file is not None:
            sf = Path(split_file).expanduser()
            if not sf.is_file():
                raise _missing("PASCAL VOC 2012 split file", sf, _HOWTO_VOC)
            self.ids: list[str] = [ln.split()[0] for ln in sf.read_text().splitlines() if ln.strip()]
        else:
            self.ids = sorted(p.stem for p in self.mask_dir.glob("*.png"))
        if not self.ids:
            raise _missing(
                "PASCAL VOC 2012 ids (val.txt or mask files)", [self.root / "val.txt", self.mask_dir / "*.png"], _HOWTO_VOC
            )
        self.split_file = Path(split_file) if split_file is not None else None

        self._csv_labels: dict[str, torch.Tensor] = {}
        labels_csv = self.root / "image_labels.csv"
        self.labels_file: Optional[Path] = labels_csv if labels_csv.is_file() else None
        if self.labels_file is None:
            warnings.warn(
                f"PASCAL VOC 2012 under {self.root}: no image_labels.csv, so the image-level labels are read from the "
                "ground-truth segmentation masks (classes present in each mask).",
                UserWarning,
                stacklevel=2,
            )
        else:
            with open(labels_csv, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    names = (row.get("labels") or "").split()
                    vec = torch.zeros(len(VOC_CLASSES), dtype=torch.long)
                    for n in names:
                        if n not in VOC_CLASSES:
                            raise UnknownClassError(
                                f"{labels_csv}: image {row.get('id')!r} has unknown VOC class {n!r}; "
                                f"known: {', '.join(VOC_CLASSES)}."
                            )
                        vec[VOC_CLASSES.index(n)] = 1
                    self._csv_labels[(row.get("id") or "").strip()] = vec

    def image_path(self, i: int) -> Path:
        """JPEG file of item ``i``."""
        return self.image_dir / f"{self.ids[i]}.jpg"

    def mask_path(self, i: int) -> Path:
        """Mask PNG of item ``i``."""
        return self.mask_dir / f"{self.ids[i]}.png"

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> VOCSample:
        img = load_image(self.image_path(i))
        mask = torch.from_numpy(_load_mask(self.mask_path(i)).astype(np.int64))
        labels = self._csv_labels.get(self.ids[i])
        if labels is None and self.labels_file is not None:
            missing = [x for x in self.ids if x not in self._csv_labels]
            raise DataNotFoundError(
                f"PASCAL VOC 2012: image {self.ids[i]!r} has no image-level labels in {self.labels_file} "
                f"({len(missing)} of the {len(self.ids)} ids lack a row, e.g. {', '.join(missing[:5])}). Add its row "
                "(id,labels with space-separated class names); labels are not taken from the masks when the file exists."
            )
        if labels is None:  # no labels file at all (the constructor warned)
            labels = torch.zeros(len(VOC_CLASSES), dtype=torch.long)
            vals = torch.unique(mask)
            vals = vals[(vals > 0) & (vals <= len(VOC_CLASSES))]
            labels[vals - 1] = 1
        return VOCSample(_apply(self.transform, img), mask, labels.clone(), self.ids[i])

    def __repr__(self) -> str:
        return f"VOCSegmentation(root={str(self.root)!r}, n={len(self)}, masks={self.mask_dir.name!r})"


# --------------------------------------------------------------------------- inventory
def _count_files(folder: Path, exts: Sequence[str] = IMAGE_EXTENSIONS, recursive: bool = False) -> int:
    exts = tuple(e.lower() for e in exts)
    n = 0
    if recursive:
        for _, _, files in os.walk(folder):
            n += sum(1 for f in files if f.lower().endswith(exts))
        return n
    with os.scandir(folder) as it:
        return sum(1 for e in it if e.is_file() and e.name.lower().endswith(exts))


def available_data(root: Optional[PathLike] = None) -> dict[str, dict[str, Any]]:
    """What data sets are present under the data root (for a setup notebook).

    Args:
        root: Data root (default :func:`paths.data_root`).

    Returns:
        ``{name: {"path": Path, "count": int | None, "found": bool, "hint": str}}`` for
        ``imagenet_val``, ``imagenet_annotations``, ``imagenet_synsets``,
        ``imagenet_train_sample``, ``cifar10`` (plus ``"source"``) and ``voc2012``.
        ``count`` is the number of images (annotated images, classes) or ``None`` where
        counting would be costly or nothing was found.
    """
    base = _root(root)
    inet = base / "imagenet"
    out: dict[str, dict[str, Any]] = {}

    val = inet / "val"
    out["imagenet_val"] = {
        "path": val,
        "found": val.is_dir(),
        "count": _count_files(val, (".jpeg", ".jpg", ".png")) if val.is_dir() else None,
        "hint": _HOWTO_IMAGENET,
    }
    csv_path, xml_dir = inet / "LOC_val_solution.csv", _find_xml_dir(inet) if inet.is_dir() else None
    if csv_path.is_file():
        with open(csv_path, encoding="utf-8") as f:
            n = max(sum(1 for ln in f if ln.strip()) - 1, 0)
        out["imagenet_annotations"] = {"path": csv_path, "found": True, "count": n, "hint": _HOWTO_IMAGENET}
    elif xml_dir is not None:
        out["imagenet_annotations"] = {
            "path": xml_dir,
            "found": True,
            "count": _count_files(xml_dir, (".xml",)),
            "hint": _HOWTO_IMAGENET,
        }
    else:
        out["imagenet_annotations"] = {"path": csv_path, "found": False, "count": None, "hint": _HOWTO_IMAGENET}
    syn = inet / "LOC_synset_mapping.txt"
    out["imagenet_synsets"] = {
        "path": syn,
        "found": syn.is_file(),
        "count": sum(1 for ln in syn.read_text(encoding="utf-8").splitlines() if ln.strip()) if syn.is_file() else None,
        "hint": "LOC_synset_mapping.txt from Kaggle's imagenet-object-localization-challenge, under imagenet/.",
    }
    ts = inet / "train-sample"
    out["imagenet_train_sample"] = {
        "path": ts,
        "found": ts.is_dir(),
        "count": _count_files(ts, recursive=True) if ts.is_dir() else None,
        "hint": _HOWTO_IMAGENET_FOLDER,
    }
    official, folder, tar = _cifar_places(base)
    if official.is_dir():
        cif = {"path": official, "found": True, "count": 60000, "source": "official"}
    elif _has_split_folders(folder, "train") or _has_split_folders(folder, "test"):
        cif = {"path": folder, "found": True, "count": None, "source": "folder"}
    elif tar.is_file():
        cif = {"path": tar, "found": True, "count": None, "source": "jpeg-tar"}
    else:
        cif = {"path": folder, "found": False, "count": None, "source": None}
    cif["hint"] = _HOWTO_CIFAR
    out["cifar10"] = cif
    voc = base / "voc2012"
    out["voc2012"] = {
        "path": voc,
        "found": (voc / "JPEGImages").is_dir(),
        "count": _count_files(voc / "JPEGImages") if (voc / "JPEGImages").is_dir() else None,
        "hint": _HOWTO_VOC,
    }
    return out


class SkipUnreadable(Dataset):
    """A training dataset whose unreadable images are replaced by the next readable one, and counted.

    Item ``i`` is ``(image, label, skipped)``: the first readable item at ``i``, ``i + 1``, ... (wrapping
    around), and how many unreadable files (:class:`~paperlib.core.errors.CorruptImageError`) were
    passed over to reach it. The replacement is deterministic, so a resumed run sees the same data.
    Each unreadable file is warned about once per process.

    Raises:
        CorruptImageError: No item of the dataset can be read.
    """

    def __init__(self, base: Dataset) -> None:
        self.base = base
        self._warned: set[int] = set()

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[Any, Any, int]:
        n = len(self.base)
        for k in range(n):
            j = (i + k) % n
            try:
                image, label = self.base[j]
            except CorruptImageError as exc:
                if j not in self._warned:
                    self._warned.add(j)
                    warnings.warn(f"skipping an unreadable training image: {exc}", RuntimeWarning, stacklevel=2)
                continue
            return image, label, k
        raise CorruptImageError(f"None of the {n} training images can be read: check the data folder.")

"""Loaders for the real data sets: ImageNet validation (with boxes), ImageNet folders, CIFAR-10, PASCAL VOC 2012.

ImageNet validation, VOC and the inventory of the data root are defined here; the torchvision-based
ImageNet folders and CIFAR-10 in :mod:`paperlib.core.folders` (importable from here, loaded on first
use); image reading (:func:`load_image`, :func:`to_tensor`) in :mod:`paperlib.core.datafiles`.

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
import os
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .classes import imagenet_classes
from .datafiles import (
    _HOWTO_CIFAR,
    _HOWTO_IMAGENET,
    _HOWTO_IMAGENET_FOLDER,
    _HOWTO_VOC,
    IMAGE_EXTENSIONS,
    PathLike,
    Transform,
    _apply,
    _cifar_places,
    _has_split_folders,
    _list_images,
    _missing,
    _root,
    _sub,
    load_image,
    to_tensor,
)
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
    "ImageNetFolder",  # noqa: F822 (lazy, see __getattr__)
    "imagenet_folder",  # noqa: F822 (lazy, see __getattr__)
    "collate_samples",
    "CIFAR10Folder",  # noqa: F822 (lazy, see __getattr__)
    "cifar10",  # noqa: F822 (lazy, see __getattr__)
    "cifar10_tensors",  # noqa: F822 (lazy, see __getattr__)
    "VOCSegmentation",
    "available_data",
]


#: Names served by :mod:`paperlib.core.folders`, imported on first use (torchvision costs seconds to import).
_FOLDER_NAMES = ("ImageNetFolder", "CIFAR10Folder", "imagenet_folder", "cifar10", "cifar10_tensors")


def __getattr__(name: str) -> Any:
    if name in _FOLDER_NAMES:
        from . import folders

        return getattr(folders, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FOLDER_NAMES))


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

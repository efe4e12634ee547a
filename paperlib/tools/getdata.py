"""``make data``: fetch what can be fetched, check and convert what the user placed.

    python -m paperlib.tools.getdata [all|cifar10|voc2012|imagenet] [--root DIR] [--from PATH ...]

* **CIFAR-10** and **PASCAL VOC 2012** download through torchvision (progress bar, MD5 checksum of
  the archive), are extracted into a hidden staging folder under the data root, checked file by
  file, and only then renamed into place (``cifar10/cifar-10-batches-py``, ``voc2012/{JPEGImages,
  SegmentationClass,val.txt}``). An interrupted or corrupt download leaves nothing behind.
* **ImageNet** is licence-gated: the tool prints which files to get and where to put them
  (``<root>/downloads/``), then checks and converts what is there:

  - the official files: ``ILSVRC2012_img_val.tar`` (MD5 29b22e2961454d5413ddabcf34fc5622) and
    ``ILSVRC2012_bbox_val_v3.tgz`` (per-image XML boxes), or
  - Kaggle's ``imagenet-object-localization-challenge`` layout, unzipped: ``LOC_val_solution.csv``,
    ``LOC_synset_mapping.txt`` and ``ILSVRC/Data/CLS-LOC/val/*.JPEG``.

Every check raises :class:`DataError` naming the file and what is wrong with it (missing, truncated,
checksum mismatch, unparsable). The staging folder is removed on any error.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Iterator, Sequence

from ..core.data import _read_loc_csv, _read_voc_xml
from ..core.errors import PaperlibError
from ..core.paths import data_root

__all__ = [
    "DataError",
    "download_cifar10",
    "verify_cifar10",
    "download_voc2012",
    "convert_voc",
    "import_imagenet",
    "imagenet_instructions",
    "main",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
VOC2012_URL = "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
VOC2012_MD5 = "6cd6e144f989b92b3379bac3b3de84fd"
IMAGENET_VAL_TAR = "ILSVRC2012_img_val.tar"
IMAGENET_VAL_MD5 = "29b22e2961454d5413ddabcf34fc5622"
IMAGENET_BBOX_TGZ = "ILSVRC2012_bbox_val_v3.tgz"
IMAGENET_VAL_COUNT = 50000


class DataError(PaperlibError):
    """A download or a placed file is missing, partial or corrupt: the message names it and says what to do."""


# --------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def staging(root: Path, name: str) -> Iterator[Path]:
    """A hidden folder ``<root>/.<name>-partial-XXXX`` that is deleted on exit (success or error).

    Move the finished result out of it with :func:`commit` before the block ends.
    """
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-partial-", dir=root))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def commit(src: Path, dest: Path) -> Path:
    """Rename ``src`` to ``dest`` (same file system: atomic); refuses to overwrite an existing ``dest``."""
    if dest.exists() or dest.is_symlink():
        raise DataError(f"{dest} already exists; remove it first if you want it replaced.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, dest)
    return dest


def md5sum(path: Path, progress: bool = True) -> str:
    h = hashlib.md5()
    size = path.stat().st_size
    bar = None
    if progress and size > 64 << 20:
        from tqdm.auto import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"md5 {path.name}")
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8 << 20), b""):
            h.update(chunk)
            if bar:
                bar.update(len(chunk))
    if bar:
        bar.close()
    return h.hexdigest()


def check_md5(path: Path, expected: str | None, what: str) -> None:
    if not path.is_file():
        raise DataError(f"{what}: {path} not found.")
    if expected and md5sum(path) != expected:
        raise DataError(
            f"{what}: checksum mismatch for {path} ({path.stat().st_size} bytes): the file is partial or "
            f"corrupt. Delete it and download it again (expected MD5 {expected})."
        )


def _extract(archive: Path, dest: Path, what: str, keep=lambda name: True) -> list[str]:
    """Extract members of a tar archive accepted by ``keep`` (safe filter); returns their names."""
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = [m for m in tf.getmembers() if (m.isfile() or m.isdir()) and keep(m.name)]
            tf.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataError(
            f"{what}: cannot read {archive} ({type(exc).__name__}: {exc}); the file is truncated or "
            "corrupt. Delete it and download it again."
        ) from exc
    return [m.name for m in members if m.isfile()]


def _download(url: str, folder: Path, md5: str, what: str) -> Path:
    from torchvision.datasets.utils import download_url

    name = url.rsplit("/", 1)[1]
    try:
        download_url(url, str(folder), filename=name, md5=md5)  # tqdm progress bar, MD5 check
    except Exception as exc:
        raise DataError(f"{what}: download of {url} failed ({type(exc).__name__}: {exc}).") from exc
    path = folder / name
    check_md5(path, md5, what)
    return path


# --------------------------------------------------------------------------- CIFAR-10
def verify_cifar10(folder: Path) -> Path:
    """Check every file of the official ``cifar-10-batches-py`` folder against torchvision's MD5 list."""
    from torchvision.datasets import CIFAR10

    folder = Path(folder)
    files = CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    for name, md5 in files:
        check_md5(folder / name, md5, "CIFAR-10")
    return folder


def download_cifar10(root: Path | None = None) -> Path:
    """Download the official CIFAR-10 python files into ``<root>/cifar10/cifar-10-batches-py`` (verified)."""
    root = Path(root or data_root())
    dest = root / "cifar10" / "cifar-10-batches-py"
    if dest.is_dir():
        return verify_cifar10(dest)
    with staging(root, "cifar10") as tmp:
        archive = _download(CIFAR10_URL, tmp, CIFAR10_MD5, "CIFAR-10")
        _extract(archive, tmp, "CIFAR-10")
        verify_cifar10(tmp / "cifar-10-batches-py")
        return commit(tmp / "cifar-10-batches-py", dest)


# --------------------------------------------------------------------------- VOC 2012
def convert_voc(voc_dir: Path, dest: Path) -> Path:
    """Move an extracted ``VOCdevkit/VOC2012`` into paperlib's layout ``dest`` (``voc2012/``), after checks.

    Checks that ``ImageSets/Segmentation/val.txt`` exists and that each id has its JPEG image and
    its segmentation PNG. ``voc_dir`` is consumed (its folders are moved).
    """
    voc_dir = Path(voc_dir)
    split = voc_dir / "ImageSets" / "Segmentation" / "val.txt"
    jpeg, seg = voc_dir / "JPEGImages", voc_dir / "SegmentationClass"
    for p in (split, jpeg, seg):
        if not p.exists():
            raise DataError(f"PASCAL VOC 2012: {p} is missing; the archive is incomplete. Download it again.")
    ids = [ln.strip() for ln in split.read_text().splitlines() if ln.strip()]
    missing = [i for i in ids if not (jpeg / f"{i}.jpg").is_file() or not (seg / f"{i}.png").is_file()]
    if not ids or missing:
        raise DataError(
            f"PASCAL VOC 2012: {len(missing)} of {len(ids)} validation ids lack an image or a mask "
            f"(first: {missing[:3]}); the archive is incomplete."
        )
    with staging(dest.parent, dest.name) as tmp:
        os.rename(jpeg, tmp / "JPEGImages")
        os.rename(seg, tmp / "SegmentationClass")
        shutil.copyfile(split, tmp / "val.txt")
        return commit(tmp, dest)


def download_voc2012(root: Path | None = None) -> Path:
    """Download VOC 2012 trainval (2 GB) into ``<root>/voc2012`` (checked; nothing left on failure)."""
    root = Path(root or data_root())
    dest = root / "voc2012"
    if (dest / "JPEGImages").is_dir():
        print(f"VOC 2012 already in {dest}")
        return dest
    with staging(root, "voc2012-download") as tmp:
        archive = _download(VOC2012_URL, tmp, VOC2012_MD5, "PASCAL VOC 2012")
        _extract(archive, tmp, "PASCAL VOC 2012", keep=lambda n: "/SegmentationObject/" not in n)
        archive.unlink()
        return convert_voc(tmp / "VOCdevkit" / "VOC2012", dest)


# --------------------------------------------------------------------------- ImageNet
def imagenet_instructions(root: Path | None = None) -> str:
    root = Path(root or data_root())
    dl = root / "downloads"
    return f"""ImageNet (ILSVRC2012) is licence-gated: download it yourself, then run `make data` again.
Put ONE of these into {dl}/ :
  a) from https://image-net.org/download-images (log in, accept the terms; ILSVRC2012):
       {IMAGENET_VAL_TAR}            6.3 GB, MD5 {IMAGENET_VAL_MD5}
       {IMAGENET_BBOX_TGZ}        2.2 MB, bounding boxes of the validation images (XML)
  b) from Kaggle (https://www.kaggle.com/c/imagenet-object-localization-challenge/data, accept the rules;
     `kaggle competitions download -c imagenet-object-localization-challenge`), unzipped into
       {dl}/imagenet-object-localization-challenge/  with LOC_val_solution.csv, LOC_synset_mapping.txt
       and ILSVRC/Data/CLS-LOC/val/*.JPEG
`make data` then checks them (checksum, image count, every box file parses) and writes {root / "imagenet"}/
(val/, boxes, LOC_synset_mapping.txt) as the notebooks expect."""


def _synsets_from_wnids(wnids: set[str], dest: Path) -> None:
    from ..core.classes import imagenet_classes

    if len(wnids) != 1000:
        raise DataError(f"ImageNet boxes name {len(wnids)} classes, not 1000: the box archive is incomplete.")
    names = imagenet_classes().names  # torchvision's names, in the standard (sorted-wnid) order
    lines = [f"{w} {n}" for w, n in zip(sorted(wnids), names)]
    dest.write_text("\n".join(lines) + "\n")


def _import_kaggle(kaggle: Path, root: Path, dest: Path, expected_images: int | None) -> Path:
    """:func:`import_imagenet` from a Kaggle folder: the images linked, the CSV and synsets copied."""
    val = kaggle / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    for p in (kaggle / "LOC_synset_mapping.txt", val):
        if not p.exists():
            raise DataError(f"ImageNet (Kaggle layout): {p} is missing; unzip the whole download.")
    boxes = _read_loc_csv(kaggle / "LOC_val_solution.csv")
    images = {p.stem for p in val.iterdir() if p.suffix.lower() in (".jpeg", ".jpg")}
    lacking = sorted(set(boxes) - images)
    if lacking or (expected_images and len(images) < expected_images):
        raise DataError(
            f"ImageNet (Kaggle layout): {len(images)} images in {val}, {len(lacking)} boxed ids without "
            f"an image (first: {lacking[:3]}); the unzip is incomplete."
        )
    with staging(root, "imagenet") as tmp:
        os.symlink(val.resolve(), tmp / "val")  # 6 GB: linked, not copied
        shutil.copyfile(kaggle / "LOC_val_solution.csv", tmp / "LOC_val_solution.csv")
        shutil.copyfile(kaggle / "LOC_synset_mapping.txt", tmp / "LOC_synset_mapping.txt")
        _commit_into(tmp, dest)
    return _verified(dest)


def _import_boxes(tgz: Path, tmp: Path, names: Sequence[str], expected_images: int | None) -> set[str]:
    """Extract the box XML files of ``tgz`` into ``tmp/ILSVRC2012_bbox_val_v3/val``, check them against the
    images ``names``; returns the wnids they mention."""
    xml_names = _extract(
        tgz,
        tmp / "bbox",
        "ImageNet boxes",
    )
    xml_dir = tmp / "ILSVRC2012_bbox_val_v3" / "val"
    xml_dir.mkdir(parents=True)
    wnids = set()
    for n in xml_names:
        p = tmp / "bbox" / n
        if p.suffix != ".xml":
            continue
        try:
            _, objs = _read_voc_xml(p)
        except Exception as exc:
            raise DataError(f"ImageNet boxes: {n} in {tgz} cannot be parsed ({exc}); the archive is corrupt.") from exc
        wnids.update(w for w, _ in objs)
        os.rename(p, xml_dir / p.name)
    shutil.rmtree(tmp / "bbox")
    stems = {Path(n).stem for n in names}
    xml_stems = {p.stem for p in xml_dir.iterdir()}
    if not xml_stems or (expected_images and xml_stems != stems):
        raise DataError(
            f"ImageNet boxes: {len(xml_stems)} XML files in {tgz} for {len(stems)} images; the box "
            "archive does not match the images."
        )
    return wnids


def import_imagenet(
    sources: Sequence[Path] | None = None,
    root: Path | None = None,
    *,
    expected_images: int | None = IMAGENET_VAL_COUNT,
    val_md5: str | None = IMAGENET_VAL_MD5,
) -> Path:
    """Check and convert the ImageNet validation files placed by the user into ``<root>/imagenet``.

    Args:
        sources: Files or folders (default: everything in ``<root>/downloads``): the official
            ``ILSVRC2012_img_val.tar`` + ``ILSVRC2012_bbox_val_v3.tgz`` [+ ``LOC_synset_mapping.txt``],
            or a Kaggle folder (``LOC_val_solution.csv``, ``LOC_synset_mapping.txt``, ``ILSVRC/Data/CLS-LOC/val``).
        expected_images: How many validation images the source must hold (``None``: no count check).
        val_md5: Checksum of the validation tar (``None``: skip).

    Returns:
        The ``imagenet`` folder; :class:`paperlib.data.ImageNetVal` loads it.
    """
    root = Path(root or data_root())
    dest = root / "imagenet"
    if sources is None:
        dl = root / "downloads"
        sources = sorted(dl.iterdir()) if dl.is_dir() else []
    sources = [Path(s) for s in sources]
    by_name = {s.name: s for s in sources}
    kaggle = next((s for s in sources if s.is_dir() and (s / "LOC_val_solution.csv").is_file()), None)
    if (dest / "val").exists():
        raise DataError(f"{dest / 'val'} already exists; remove it first to import ImageNet again.")

    if kaggle is not None:
        return _import_kaggle(kaggle, root, dest, expected_images)

    tar, tgz = by_name.get(IMAGENET_VAL_TAR), by_name.get(IMAGENET_BBOX_TGZ)
    if tar is None or tgz is None:
        missing = [n for n, p in ((IMAGENET_VAL_TAR, tar), (IMAGENET_BBOX_TGZ, tgz)) if p is None]
        raise DataError(
            f"ImageNet: {', '.join(missing)} not found among {[str(s) for s in sources] or 'the placed files'}.\n"
            + imagenet_instructions(root)
        )
    check_md5(tar, val_md5, "ImageNet validation images")
    with staging(root, "imagenet") as tmp:
        names = _extract(
            tar, tmp / "val", "ImageNet validation images", keep=lambda n: n.endswith(".JPEG") and "/" not in n.strip("./")
        )
        if not names or (expected_images and len(names) != expected_images):
            raise DataError(
                f"ImageNet validation images: {tar} holds {len(names)} images, expected {expected_images}; "
                "the download is partial. Delete it and download it again."
            )
        wnids = _import_boxes(tgz, tmp, names, expected_images)
        if "LOC_synset_mapping.txt" in by_name:
            shutil.copyfile(by_name["LOC_synset_mapping.txt"], tmp / "LOC_synset_mapping.txt")
        elif not (dest / "LOC_synset_mapping.txt").is_file():
            _synsets_from_wnids(wnids, tmp / "LOC_synset_mapping.txt")
        _commit_into(tmp, dest)
    return _verified(dest)


def _commit_into(tmp: Path, dest: Path) -> None:
    """Move each entry of ``tmp`` into ``dest`` (checked first, so that nothing is half-moved)."""
    dest.mkdir(parents=True, exist_ok=True)
    clashes = [dest / e.name for e in tmp.iterdir() if (dest / e.name).exists()]
    if clashes:
        raise DataError(f"{', '.join(map(str, clashes))} already exist; remove them first to import again.")
    for e in sorted(tmp.iterdir()):
        os.rename(e, dest / e.name)


def _verified(dest: Path) -> Path:
    from ..core.data import ImageNetVal

    ds = ImageNetVal(root=dest.parent)
    ds[0]  # decodes
    print(f"ImageNet: {len(ds)} validation images with boxes ({ds.annotation_source}) in {dest}")
    return dest


# --------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="paperlib data", description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="*", default=["all"], choices=["all", "cifar10", "voc2012", "imagenet"])
    ap.add_argument("--root", type=Path, default=None, help="data root (default $PAPERLIB_DATA or data/)")
    ap.add_argument(
        "--from", dest="sources", nargs="+", type=Path, help="ImageNet files or Kaggle folder (default <root>/downloads/*)"
    )
    args = ap.parse_args(argv)
    root = Path(args.root or data_root())
    what = {"cifar10", "voc2012", "imagenet"} if "all" in args.what else set(args.what)
    print(f"data root: {root}")
    errors = 0
    for name, fn in (("cifar10", download_cifar10), ("voc2012", download_voc2012)):
        if name in what:
            try:
                print(f"{name}: ready in {fn(root)}")
            except (DataError, OSError) as exc:
                errors += 1
                print(f"{name}: FAILED: {exc}", file=sys.stderr)
    if "imagenet" in what:
        from ..core import data

        if data.available_data(root)["imagenet_val"]["found"]:
            print(f"imagenet: already in {root / 'imagenet'}")
        elif args.sources or (root / "downloads").is_dir() and any((root / "downloads").iterdir()):
            try:
                import_imagenet(args.sources, root)
            except DataError as exc:
                errors += 1
                print(f"imagenet: FAILED: {exc}", file=sys.stderr)
        else:
            print(imagenet_instructions(root))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared pytest fixtures: the real offline data (skipped when absent) and tiny generated data sets.

The real data are found only through ``paperlib.core.paths.data_root()`` (``$PAPERLIB_DATA``;
the Makefile sets it). The tiny data sets are written into ``tmp_path`` with PIL, so the
loaders' code paths are tested on every machine, data or not.
"""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Optional, Sequence

import numpy as np
import pytest
from PIL import Image

from paperlib.core import paths

#: The data root when the test session started (before any test changes PAPERLIB_DATA).
SESSION_DATA_ROOT: Path = paths.data_root()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds (deselect with -m 'not slow')")


# --------------------------------------------------------------------------- torch
@pytest.fixture
def one_thread():
    """Run the test with one torch thread (restored afterwards): steadier, and fair to parallel jobs."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny_masker():
    """An untrained EfficientNet-Lite0 masker with a narrow decoder (seed 0), in eval mode."""
    import torch

    from paperlib.core.masker import build_masker

    torch.manual_seed(0)
    return build_masker("efficientnet_lite0", widths=[16, 8, 8], blocks=1).eval()


# --------------------------------------------------------------------------- real data
def require_shared(subpath: str) -> Path:
    """``data_root()/subpath``, or skip the test with a clear reason if it is absent."""
    root = paths.data_root()
    p = root / subpath
    if not p.exists():
        pytest.skip(
            f"real data {subpath!r} not found under the data root {root} "
            f"(set PAPERLIB_DATA, or run `make DATA=/path`, to a folder holding it)"
        )
    return p


@pytest.fixture
def shared_data() -> Path:
    """The data root holding the real offline data; skips the test when ``imagenet/val`` is missing."""
    require_shared("imagenet/val")
    return paths.data_root()


@pytest.fixture
def require_data() -> Callable[[str], Path]:
    """``require_data("voc2012")``: the real data's path, or skip the test if it is absent."""
    return require_shared


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``PAPERLIB_CACHE`` folder for this test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(paths.CACHE_ENV_VAR, str(cache))
    return cache


# --------------------------------------------------------------------------- generated data
def synset_lines() -> list[str]:
    """Lines of a synset mapping: the real file's when available, else 1000 synthetic wnids.

    The synthetic file keeps the format (``wnid name, synonyms``) and the sorted order,
    with fake wnids ``n00000000`` ... ``n00000999`` and torchvision's class names.
    """
    real = SESSION_DATA_ROOT / "imagenet" / "LOC_synset_mapping.txt"
    if real.is_file():
        return real.read_text(encoding="utf-8").splitlines()
    from paperlib.core.classes import imagenet_classes

    return [f"n{i:08d} {name}" for i, name in enumerate(imagenet_classes().names)]


def write_synsets(imagenet_dir: Path) -> list[str]:
    """Write ``LOC_synset_mapping.txt`` into ``imagenet_dir``; returns the 1000 wnids in order."""
    imagenet_dir.mkdir(parents=True, exist_ok=True)
    lines = synset_lines()
    (imagenet_dir / "LOC_synset_mapping.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [ln.split()[0] for ln in lines]


def write_image(path: Path, size: tuple[int, int] = (24, 16), mode: str = "RGB", seed: int = 0) -> Path:
    """Write a random image of ``size`` (width, height) in ``mode``; format from the suffix."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpeg": "JPEG", ".jpg": "JPEG", ".png": "PNG"}[path.suffix.lower()]
    img.save(path, format=fmt)
    return path


def _xml(image_id: str, size: tuple[int, int], objs: Sequence[tuple[str, Sequence[int]]]) -> str:
    objects = "".join(
        f"<object><name>{w}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for w, b in objs
    )
    return (
        f"<annotation><folder>val</folder><filename>{image_id}</filename><source><database>ILSVRC_2012</database>"
        f"</source><size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{objects}</annotation>"
    )


def make_imagenet_val(
    root: Path,
    csv_file: bool = True,
    xml: Optional[str] = "val",
) -> dict:
    """Write a tiny ImageNet validation set under ``root/imagenet``.

    Images 1 (RGB 40x30, class 285, one box) and 2 (grayscale 32x20, class 1, two boxes)
    are annotated; image 3 has no annotation and must be left out; the CSV also annotates
    an image 9 that does not exist.

    Args:
        root: Data root to create.
        csv_file: Write ``LOC_val_solution.csv``.
        xml: ``"val"`` for ``ILSVRC2012_bbox_val_v3/val/*.xml``, ``"flat"`` for
            ``ILSVRC2012_bbox_val_v3/*.xml``, ``None`` for no XML.

    Returns:
        ``{"root", "wnids", "expected": {id: (label, boxes, size)}}``.
    """
    inet = root / "imagenet"
    wnids = write_synsets(inet)
    items = {
        "ILSVRC2012_val_00000001": (285, [[3, 4, 30, 25]], (40, 30), "RGB"),
        "ILSVRC2012_val_00000002": (1, [[0, 0, 10, 12], [5, 6, 31, 19]], (32, 20), "L"),
    }
    for n, (image_id, (label, boxes, size, mode)) in enumerate(items.items()):
        write_image(inet / "val" / f"{image_id}.JPEG", size, mode, seed=n)
    write_image(inet / "val" / "ILSVRC2012_val_00000003.JPEG", (20, 20), seed=3)
    if csv_file:
        with open(inet / "LOC_val_solution.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["ImageId", "PredictionString"])
            for image_id, (label, boxes, _, _) in items.items():
                w.writerow([image_id, " ".join(f"{wnids[label]} {' '.join(map(str, b))}" for b in boxes) + " "])
            w.writerow(["ILSVRC2012_val_00000009", f"{wnids[7]} 1 2 3 4 "])
    if xml is not None:
        d = inet / "ILSVRC2012_bbox_val_v3" / ("val" if xml == "val" else "")
        d.mkdir(parents=True, exist_ok=True)
        for image_id, (label, boxes, size, _) in items.items():
            (d / f"{image_id}.xml").write_text(_xml(image_id, size, [(wnids[label], b) for b in boxes]))
    expected = {i: (lab, boxes, size) for i, (lab, boxes, size, _) in items.items()}
    return {"root": root, "wnids": wnids, "expected": expected}


def make_imagenet_folder(folder: Path, wnids: Sequence[str], per_class: int = 2) -> Path:
    """Write an ImageFolder ``folder/<wnid>/img_k.JPEG`` with ``per_class`` images per wnid."""
    for c, w in enumerate(wnids):
        for k in range(per_class):
            write_image(folder / w / f"img_{k}.JPEG", (20 + k, 18), seed=10 * c + k)
    return folder


def make_cifar_tar(path: Path, per_class: dict[str, dict[str, int]]) -> Path:
    """Write a CIFAR-10-style JPEG tarball: ``{"train": {"cat": 2}, ...}`` -> ``train/cat/0000.jpg``.

    Also adds a top-level README.md, as in the real archive.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("README.md")
        data = b"# CIFAR-10 test fixture\n"
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        seed = 0
        for split, classes in per_class.items():
            for cls, n in classes.items():
                for k in range(n):
                    buf = io.BytesIO()
                    rng = np.random.default_rng(seed)
                    seed += 1
                    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
                    info = tarfile.TarInfo(f"{split}/{cls}/{k:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tf.addfile(info, buf)
    return path


def make_voc(
    root: Path,
    ids: Sequence[str] = ("2007_000001", "2007_000002"),
    aug: bool = True,
    val_txt: bool = True,
    labels_csv: bool = True,
) -> dict:
    """Write a tiny VOC 2012 segmentation set under ``root/voc2012``.

    Image k has a mask with background 0, a 255 border and class ``k + 1``
    (aeroplane, bicycle, ...) in its centre; ``image_labels.csv`` (if written) gives the
    same classes for every id (without it, the loader reads the labels from the masks and warns).

    Returns:
        ``{"root", "ids", "classes": {id: class id}}``.
    """
    voc = root / "voc2012"
    mask_dir = voc / ("SegmentationClassAug" if aug else "SegmentationClass")
    mask_dir.mkdir(parents=True, exist_ok=True)
    palette = [0, 0, 0] * 256
    classes = {}
    for k, image_id in enumerate(ids):
        write_image(voc / "JPEGImages" / f"{image_id}.jpg", (30, 20), seed=k)
        m = np.zeros((20, 30), np.uint8)
        m[0, :] = 255
        m[5:15, 10:20] = k + 1
        im = Image.fromarray(m, "P")
        im.putpalette(palette)
        im.save(mask_dir / f"{image_id}.png")
        classes[image_id] = k + 1
    if val_txt:
        (voc / "val.txt").write_text("\n".join(ids) + "\n")
    if labels_csv:
        from paperlib.core.data import VOC_CLASSES

        with open(voc / "image_labels.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "labels"])
            for image_id in ids:
                w.writerow([image_id, VOC_CLASSES[classes[image_id] - 1]])
    return {"root": root, "ids": list(ids), "classes": classes}


@pytest.fixture
def tiny_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data root in ``tmp_path``, made the current ``PAPERLIB_DATA``, with an isolated cache."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv(paths.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setenv(paths.DATA_ENV_VAR, str(root))
    return root


@pytest.fixture
def datagen() -> SimpleNamespace:
    """The generators above, for tests: ``datagen.make_imagenet_val(root)`` etc."""
    return SimpleNamespace(
        synset_lines=synset_lines,
        write_synsets=write_synsets,
        write_image=write_image,
        make_imagenet_val=make_imagenet_val,
        make_imagenet_folder=make_imagenet_folder,
        make_cifar_tar=make_cifar_tar,
        make_voc=make_voc,
    )

"""Real photographs that need no data download: the default images of the notebooks without ImageNet.

They come with scikit-image (a dependency), so a fresh clone with no data can still draw real
masks on real photographs. Each image is listed with the ImageNet class used as its label and its
licence as scikit-image states it (all public domain or CC0).

    >>> from paperlib.tools.sample_images import sample_batch
    >>> images, labels, titles = sample_batch(224)   # (3, 3, 224, 224), (3,), names
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.functional import interpolate

__all__ = ["SAMPLES", "SCENES", "Photo", "sample_image", "sample_batch", "scene_photos", "strict", "val_or_samples"]

#: name -> (scikit-image loader, ImageNet class used as its label, licence as scikit-image states it)
SAMPLES: dict[str, tuple[str, str, str]] = {
    "chelsea": ("chelsea", "Egyptian cat", "CC0 by the photographer (Stefan van der Walt), via scikit-image"),
    "coffee": ("coffee", "espresso", "CC0 by the photographer (Rachel Michetti), via scikit-image"),
    "rocket": ("rocket", "missile", "public domain (SpaceX), via scikit-image"),
}


#: Fig. 2's photographs of a small object in a larger scene: name -> (file under
#: ``$PAPERLIB_DATA/imagenet/train-extra/nips17``, ImageNet class). Creative Commons photographs of the
#: NIPS 2017 adversarial competition's development set (training data of no masker here, and no
#: ILSVRC2012 validation image); their licence and author are read from that folder's ``images.csv``.
SCENES: dict[str, tuple[str, str]] = {
    "ladybugs": ("n02165456/f6437ed4f1b8fe23.jpg", "ladybug"),  # two ladybugs on a road
    "balloon": ("n02782093/87937b805302f958.jpg", "balloon"),  # a balloon at the edge of a wide sky
}


@dataclass(frozen=True)
class Photo:
    """One photograph with its label and credit.

    Attributes:
        name: Short name.
        image: (1, 3, size, size) in [0, 1].
        label: ImageNet class index.
        credit: Author and licence, to print beside the figure.
    """

    name: str
    image: torch.Tensor
    label: int
    credit: str


def _nips17_credits(folder: Path) -> dict[str, str]:
    """ImageId -> "author, licence URL" from the NIPS 2017 set's ``images.csv`` (empty when absent)."""
    table = folder / "images.csv"
    if not table.is_file():
        return {}
    with table.open(newline="", encoding="utf-8") as f:
        return {r["ImageId"]: f"{r['Author']}, {r['License']}" for r in csv.DictReader(f)}


def scene_photos(size: int = 224) -> tuple[list[Photo], str]:
    """Fig. 2's three photographs: the scikit-image cat and the two :data:`SCENES` (small objects in a
    larger scene) when ``$PAPERLIB_DATA/imagenet/train-extra/nips17`` holds them; otherwise the three
    scikit-image samples (cat, coffee, rocket) with a line saying so (under :func:`strict`, an error).

    Returns:
        ``(photos, source)``: source says which set was used, for the figure and the log.
    """
    from PIL import Image

    from ..core.classes import imagenet_classes
    from ..core.errors import DataNotFoundError
    from ..core.paths import data_root, data_root_help

    classes = imagenet_classes()

    def sample(name: str) -> Photo:
        return Photo(name, sample_image(name, size)[None], classes.index(SAMPLES[name][1]), SAMPLES[name][2])

    folder = data_root() / "imagenet" / "train-extra" / "nips17"
    missing = [f for f, _ in SCENES.values() if not (folder / f).is_file()]
    if missing:
        message = f"Fig. 2's scene photographs not found under {folder} ({', '.join(missing)}); {data_root_help()}"
        if strict():
            raise DataNotFoundError(message + " `make data` says how to get them.")
        print(message + "; using the scikit-image samples (chelsea, coffee, rocket) instead.")
        return [sample(n) for n in SAMPLES], "scikit-image samples (chelsea, coffee, rocket)"
    credits = _nips17_credits(folder)
    photos = [sample("chelsea")]
    for name, (file, label) in SCENES.items():
        image = Image.open(folder / file).convert("RGB")
        x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float().div(255)[None]
        x = interpolate(x, size=(size, size), mode="bilinear", antialias=True).clamp(0, 1)
        credit = credits.get(Path(file).stem, "licence in images.csv of the NIPS 2017 development set")
        photos.append(Photo(name, x, classes.index(label), credit))
    return photos, "scikit-image's chelsea and two NIPS 2017 development-set photographs (Creative Commons)"


def strict() -> bool:
    """True when ``PAPERLIB_STRICT`` is set to 1/true/yes (``make reproduce STRICT=1``, ``make test``):
    no fallback to the sample photographs and no skipped notebook is accepted."""
    return os.environ.get("PAPERLIB_STRICT", "").strip().lower() in ("1", "true", "yes")


def sample_image(name: str, size: int | None = None) -> torch.Tensor:
    """One sample photograph as a float tensor ``(3, H, W)`` in [0, 1], squashed to ``size`` x ``size`` if given."""
    from skimage import data as skdata

    if name not in SAMPLES:
        raise KeyError(f"unknown sample image {name!r}; known: {', '.join(SAMPLES)}")
    array = getattr(skdata, SAMPLES[name][0])()
    image = torch.from_numpy(array).permute(2, 0, 1).float().div(255)
    if size is not None:
        image = interpolate(image[None], size=(size, size), mode="bilinear", antialias=True).clamp(0, 1)[0]
    return image


def sample_batch(size: int = 224, names: list[str] | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The sample photographs as ``(images (N, 3, size, size), ImageNet labels (N,), names)``."""
    from ..core.classes import imagenet_classes

    names = list(names or SAMPLES)
    classes = imagenet_classes()
    images = torch.stack([sample_image(n, size) for n in names])
    labels = torch.tensor([classes.index(SAMPLES[n][1]) for n in names])
    return images, labels, names


def val_or_samples(size: int, n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The first ``n`` ImageNet validation images with their labels, or, when those are not found,
    the sample photographs (fewer than ``n``) with a line saying so. Under :func:`strict` a missing
    ImageNet raises instead.

    Returns:
        ``(images, labels, source)``: source describes what was used, for the figure and the log.
    """
    from ..core.errors import DataNotFoundError
    from ..experiments.evaluate import val_batches

    try:
        batch = next(val_batches(size, limit=n, batch_size=n))
        return batch.images, batch.labels.long(), f"ImageNet validation images 1-{len(batch.images)}"
    except DataNotFoundError as exc:
        if strict():
            raise
        images, labels, names = sample_batch(size)
        first = str(exc).splitlines()[0]
        print(
            f"ImageNet validation images not found ({first}); using the {len(names)} sample photographs "
            f"shipped with scikit-image ({', '.join(names)}). `make data` says how to get ImageNet."
        )
        return images, labels, "sample photographs (scikit-image: " + ", ".join(names) + ")"

"""Real photographs that need no data download: the default images of the notebooks without ImageNet.

They come with scikit-image (a dependency), so a fresh clone with no data can still draw real
masks on real photographs. Each image is listed with the ImageNet class used as its label and its
licence as scikit-image states it (all public domain or CC0).

    >>> from paperlib.tools.sample_images import sample_batch
    >>> images, labels, titles = sample_batch(224)   # (3, 3, 224, 224), (3,), names
"""

from __future__ import annotations

import os

import torch
from torch.nn.functional import interpolate

__all__ = ["SAMPLES", "sample_image", "sample_batch", "strict", "val_or_samples"]

#: name -> (scikit-image loader, ImageNet class used as its label, licence as scikit-image states it)
SAMPLES: dict[str, tuple[str, str, str]] = {
    "chelsea": ("chelsea", "Egyptian cat", "CC0 by the photographer (Stefan van der Walt), via scikit-image"),
    "coffee": ("coffee", "espresso", "CC0 by the photographer (Rachel Michetti), via scikit-image"),
    "rocket": ("rocket", "missile", "public domain (SpaceX), via scikit-image"),
}


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

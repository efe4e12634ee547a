"""The VOC images of the WSSS study: the checked loader, one sample as the study uses it, and resizing."""

from __future__ import annotations

import os
from typing import Optional

import torch
import torch.nn.functional as F

from ...core.data import VOCSegmentation
from ...core.errors import DataNotFoundError, InputError

__all__ = ["open_voc"]


_HOWTO_VOC = (
    "How to get it: online, torchvision.datasets.VOCSegmentation(root, year='2012', image_set='val', download=True) "
    "fetches VOCtrainval_11-May-2012.tar (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/val.txt) from "
    "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/; the SBD augmented masks SegmentationClassAug (Hariharan et al. "
    "2011, e.g. SegmentationClassAug.zip) are optional (SegmentationClass/ is used when they are absent). Put or link "
    "VOCdevkit/VOC2012 as <data root>/voc2012 and set PAPERLIB_DATA to the data root."
)


def open_voc(root: Optional[os.PathLike | str] = None, limit: Optional[int] = None) -> VOCSegmentation:
    """The project's VOC loader, checked: every id to be used must have its image and its mask.

    Args:
        root: Data root (default ``$PAPERLIB_DATA``) or the ``voc2012`` folder itself.
        limit: Keep the first ``limit`` ids of the split file.

    Raises:
        DataNotFoundError: The folder, the masks or some files are missing. The message says what is
            missing, where it was looked for, and how to get PASCAL VOC 2012.
    """
    try:
        ds = VOCSegmentation(root)
    except DataNotFoundError as e:
        raise DataNotFoundError(f"{e}\n{_HOWTO_VOC}") from None
    ids = ds.ids[:limit] if limit else list(ds.ids)
    no_image = [i for i in ids if not (ds.image_dir / f"{i}.jpg").is_file()]
    no_mask = [i for i in ids if not (ds.mask_dir / f"{i}.png").is_file()]
    if no_image or no_mask:
        where = ds.split_file or ds.mask_dir
        parts = []
        if no_image:
            parts.append(
                f"{len(no_image)} image(s) missing in {ds.image_dir} (e.g. {', '.join(x + '.jpg' for x in no_image[:3])})"
            )
        if no_mask:
            parts.append(f"{len(no_mask)} mask(s) missing in {ds.mask_dir} (e.g. {', '.join(x + '.png' for x in no_mask[:3])})")
        raise DataNotFoundError(
            f"PASCAL VOC 2012 under {ds.root} is incomplete: of the {len(ids)} ids listed in {where}, "
            f"{'; '.join(parts)}.\n{_HOWTO_VOC}"
        )
    ds.ids = ids
    return ds


def _sample(ds: VOCSegmentation, i: int) -> tuple[torch.Tensor, torch.Tensor, list[int], str]:
    """(image (3, H, W), mask (H, W) long, present classes as 0-based indices, id)."""
    s = ds[i]
    if tuple(s.mask.shape) != tuple(s.image.shape[-2:]):
        raise InputError(f"VOC {s.id}: mask {tuple(s.mask.shape)} and image {tuple(s.image.shape[-2:])} differ in size.")
    classes = [int(c) for c in torch.nonzero(s.labels).flatten()]
    return s.image, s.mask, classes, s.id


def _resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Image (3, H, W) resized to ``size`` (bilinear, antialiased when it shrinks), clamped to [0, 1]."""
    shrink = size[0] * size[1] < image.shape[-2] * image.shape[-1]
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=shrink)[0].clamp(0, 1)

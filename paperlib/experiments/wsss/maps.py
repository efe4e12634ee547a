"""The four map methods, per (image, present class), at image resolution.

:func:`cam_maps` (relu of the class's 1x1 conv, bilinear upsampling), :func:`gradient_maps`
(``|d logit_c / d x|``, max over RGB), :func:`crop_saliency` (stochastic crop aggregation, in two
orders and two weightings) and :func:`masker_maps` (the masking model, one forward pass);
:func:`compute_maps` runs those of a configuration (all by default) on one image and clocks each.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import InputError
from .config import NUM_CLASSES, PRESETS, WSSSConfig
from .data import _resize_image
from .head import VOCBlackBox

__all__ = [
    "cam_maps",
    "gradient_maps",
    "resize_matrix",
    "sample_crops",
    "crop_image",
    "crop_saliency",
    "masker_maps",
    "compute_maps",
]


def _check_classes(classes: Sequence[int]) -> list[int]:
    """0-based VOC class indices as ints (any number, possibly none)."""
    cls = [int(c) for c in classes]
    bad = [c for c in cls if not 0 <= c < NUM_CLASSES]
    if bad:
        raise InputError(f"classes are 0-based VOC class indices in [0, {NUM_CLASSES}), got {bad}.")
    return cls


def _check_image(image: torch.Tensor) -> None:
    """One float image (3, H, W); unlike :func:`paperlib.core._common.check_images` (a batch (N, 3, H, W),
    values checked in [0, 1]) it takes a single image and does not read the values."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"image must be a float tensor (3, H, W) in [0, 1], got {shape}.")


def cam_maps(
    bb: VOCBlackBox, image: torch.Tensor, classes: Optional[Sequence[int]] = None, *, all_classes: bool = False
) -> torch.Tensor:
    """CAMs relu(W_c . f) upsampled bilinearly to the image size, raw scale (K, H, W).

    Args:
        classes: 0-based VOC class indices of the maps; required unless ``all_classes``.
        all_classes: Return every one of the 20 maps, in class order (for the DR regions); ``classes`` may
            then be left out, and is ignored if given.

    Raises:
        InputError: ``classes`` is missing without ``all_classes``, or holds an index outside [0, 20).
    """
    _check_image(image)
    if classes is None and not all_classes:
        raise InputError("cam_maps needs classes (0-based VOC class indices), or all_classes=True for all 20 maps.")
    cls = list(range(NUM_CLASSES)) if all_classes else _check_classes(classes or ())
    h, w = image.shape[-2:]
    if not cls:
        return image.new_zeros(0, h, w)
    with torch.no_grad():
        cam = bb.cam_raw(image[None])[:, cls].relu()
        return F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)[0]


def gradient_maps(bb: nn.Module, image: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Vanilla gradient |d logit_c / d x|, max over RGB, at the image's size: (K, H, W)."""
    _check_image(image)
    cls = _check_classes(classes)
    h, w = image.shape[-2:]
    if not cls:
        return image.new_zeros(0, h, w)
    x = image[None].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        z = bb(x)[0]
        out = []
        for j, c in enumerate(cls):
            (g,) = torch.autograd.grad(z[c], x, retain_graph=j < len(cls) - 1)
            out.append(g[0].abs().amax(0))
    return torch.stack(out)


@lru_cache(maxsize=4096)
def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) matrix of 1-D linear interpolation, ``align_corners=False`` (PyTorch's bilinear is separable:
    ``F.interpolate(x, (S, S), mode="bilinear") == R_h @ x @ R_w.T``)."""
    eye = torch.eye(n_in)[:, None, :]
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[:, 0, :].T.contiguous()


def sample_crops(
    height: int,
    width: int,
    n: int,
    scale: tuple[float, float] = (0.05, 0.3),
    ratio: tuple[float, float] = (0.85, 1.25),
    generator: Optional[torch.Generator] = None,
) -> list[tuple[int, int, int, int]]:
    """Draw ``n`` boxes ``(y0, x0, h, w)`` as torchvision's ``RandomResizedCrop.get_params`` does (10 tries,
    then a central crop), with a seeded generator."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    area_ = height * width
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    boxes = []
    for _ in range(n):
        for _try in range(10):
            target = area_ * float(torch.empty(1).uniform_(scale[0], scale[1], generator=g))
            ar = math.exp(float(torch.empty(1).uniform_(log_r[0], log_r[1], generator=g)))
            w = int(round(math.sqrt(target * ar)))
            h = int(round(math.sqrt(target / ar)))
            if 0 < w <= width and 0 < h <= height:
                y0 = int(torch.randint(0, height - h + 1, (1,), generator=g))
                x0 = int(torch.randint(0, width - w + 1, (1,), generator=g))
                boxes.append((y0, x0, h, w))
                break
        else:  # central crop, as torchvision
            in_ratio = width / height
            if in_ratio < ratio[0]:
                w, h = width, int(round(width / ratio[0]))
            elif in_ratio > ratio[1]:
                h, w = height, int(round(height * ratio[1]))
            else:
                w, h = width, height
            boxes.append(((height - h) // 2, (width - w) // 2, h, w))
    return boxes


def crop_image(image: torch.Tensor, box: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """Cut ``box`` (y0, x0, h, w) from image (3, H, W) and resize it to (3, size, size), bilinear."""
    y0, x0, h, w = box
    patch = image[:, y0 : y0 + h, x0 : x0 + w]
    return resize_matrix(h, size) @ patch @ resize_matrix(w, size).T


def _crop_gradients(
    bb: nn.Module, image: torch.Tensor, bx: Sequence[tuple[int, int, int, int]], size: int, cls: Sequence[int]
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Gradients of each class logit w.r.t. a batch of crops, and the crops' sigmoid(logit) weights.

    Returns:
        ``[(B, 3, size, size)] * K`` gradients and ``(B, K)`` weights.
    """
    with torch.no_grad():
        crops = torch.stack([crop_image(image, b, size) for b in bx])
    crops.requires_grad_(True)
    with torch.enable_grad():
        z = bb(crops)
        grads = [torch.autograd.grad(z[:, c].sum(), crops, retain_graph=j < len(cls) - 1)[0] for j, c in enumerate(cls)]
    return grads, torch.sigmoid(z.detach()[:, cls])


def _add_crop(
    signed: dict[str, torch.Tensor],
    per_crop: dict[str, torch.Tensor],
    grads: Sequence[torch.Tensor],
    wts: torch.Tensor,
    box: tuple[int, int, int, int],
    size: int,
) -> None:
    """Add one crop's per-class gradients (``[(3, size, size)] * K``), mapped back to its box, in place."""
    y0, x0, h, w = box
    rh, rw = resize_matrix(h, size), resize_matrix(w, size)
    for j, g in enumerate(grads):
        G = rh.T @ g @ rw  # (3, h, w): the crop's gradient in image coordinates
        a = G.abs().amax(0)
        wk = float(wts[j])
        signed["w"][j, :, y0 : y0 + h, x0 : x0 + w] += wk * G
        signed["u"][j, :, y0 : y0 + h, x0 : x0 + w] += G
        per_crop["w"][j, y0 : y0 + h, x0 : x0 + w] += wk * a
        per_crop["u"][j, y0 : y0 + h, x0 : x0 + w] += a


def crop_saliency(
    bb: nn.Module,
    image: torch.Tensor,
    classes: Sequence[int],
    *,
    n_crops: int = 32,
    size: int = 160,
    scale: tuple[float, float] = (0.05, 0.3),
    ratio: tuple[float, float] = (0.85, 1.25),
    abs_every: int = 100,
    batch: int = 16,
    counts: Sequence[int] = (),
    generator: Optional[torch.Generator] = None,
    boxes: Optional[Sequence[tuple[int, int, int, int]]] = None,
) -> dict[str, Any]:
    """Stochastic crop aggregation of vanilla gradients, in full-image coordinates.

    Args:
        bb: Black box (N, 3, S, S) -> (N, 20) logits.
        image: (3, H, W) in [0, 1]. classes: 0-based class indices.
        n_crops, size, scale, ratio: Crops (see :func:`sample_crops`), resized to ``size``.
        abs_every: Reference order: signed gradients of this many consecutive crops are summed before
            abs and the RGB max (the reference sums a batch of 100). 1 gives the per-crop order.
        batch: Crops per forward pass (memory only).
        counts: Crop counts at which to snapshot the weighted reference-order map (mIoU vs N).
        boxes: Use these boxes instead of drawing them.

    Returns:
        ``{"crops_w", "crops_u", "crops_w_abs", "crops_u_abs": (K, H, W), "sweep": {n: (K, H, W)},
        "boxes": [...], "weights": (n_crops, K) sigmoid(logit) of each crop}``.
    """
    _check_image(image)
    cls = _check_classes(classes)
    H, W = image.shape[-2:]
    K = len(cls)
    if boxes is None:
        boxes = sample_crops(H, W, n_crops, scale, ratio, generator)
    boxes = list(boxes)
    n_crops = len(boxes)
    counts = sorted(set(int(c) for c in counts if 0 < c <= n_crops))
    zeros = lambda *s: image.new_zeros(*s)
    signed = {"w": zeros(K, 3, H, W), "u": zeros(K, 3, H, W)}
    folded = {"w": zeros(K, H, W), "u": zeros(K, H, W)}
    per_crop = {"w": zeros(K, H, W), "u": zeros(K, H, W)}
    sweep: dict[int, torch.Tensor] = {}
    weights = zeros(n_crops, K)
    if K == 0:
        empty = zeros(0, H, W)
        return {
            "crops_w": empty,
            "crops_u": empty,
            "crops_w_abs": empty,
            "crops_u_abs": empty,
            "sweep": {n: empty for n in counts},
            "boxes": boxes,
            "weights": weights,
        }
    done = 0
    for start in range(0, n_crops, batch):
        bx = boxes[start : start + batch]
        grads, wts = _crop_gradients(bb, image, bx, size, cls)
        weights[start : start + len(bx)] = wts
        for i, box in enumerate(bx):
            _add_crop(signed, per_crop, [g[i] for g in grads], wts[i], box, size)
            done += 1
            if done % abs_every == 0:
                for k in ("w", "u"):
                    folded[k] += signed[k].abs().amax(1)
                    signed[k].zero_()
            if done in counts:
                sweep[done] = folded["w"] + signed["w"].abs().amax(1)
    return {
        "crops_w": folded["w"] + signed["w"].abs().amax(1),
        "crops_u": folded["u"] + signed["u"].abs().amax(1),
        "crops_w_abs": per_crop["w"],
        "crops_u_abs": per_crop["u"],
        "sweep": sweep,
        "boxes": boxes,
        "weights": weights,
    }


def masker_maps(masker: nn.Module, image: torch.Tensor, classes: Sequence[int], size: int = 224) -> torch.Tensor:
    """Masks of the masking model for each class (one forward pass for the batch of classes), (K, H, W) in [0, 1].

    The image is squashed to ``size`` x ``size`` (as during training) and the masks upsampled back.
    """
    _check_image(image)
    cls = _check_classes(classes)
    h, w = image.shape[-2:]
    if not cls:
        return image.new_zeros(0, h, w)
    x = _resize_image(image, (size, size))[None].expand(len(cls), -1, -1, -1)
    with torch.no_grad():
        m = masker(x, torch.tensor(cls))
    return F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)[:, 0].clamp(0, 1)


def compute_maps(
    image: torch.Tensor,
    classes: Sequence[int],
    *,
    bb: VOCBlackBox,
    masker: Optional[nn.Module] = None,
    cfg: WSSSConfig = PRESETS["quick"],
    generator: Optional[torch.Generator] = None,
    timings: Optional[dict[str, float]] = None,
) -> dict[str, Any]:
    """The maps of the methods ``cfg.methods`` (default all) for one image and its classes.

    ``timings`` (if given) accumulates, per method, the CPU seconds of this process (``time.process_time``,
    all torch threads; the number that does not depend on other jobs sharing the CPU) under the method's
    key, and the wall-clock seconds under ``<key>_wall``.

    The CAMs of all 20 classes are always computed (the DR regions need them). The crops are drawn and
    computed only when a crop method is selected (``generator`` is then consumed), the masking model runs
    only when ``masker`` is given and ``"masker"`` selected.

    Returns:
        The selected keys of ``{"cam", "grad", "crops_w", "crops_u", "crops_w_abs", "crops_u_abs", "masker":
        (K, H, W)}`` (``"cam"`` also for ``"cam_ref"``), ``"cam_all": (20, H, W)`` (all classes, for the DR
        regions), and with ``"crops_w"`` selected ``"sweep": {n: (K, H, W)}``.
    """
    selected = cfg.selected
    t = timings if timings is not None else {}
    out: dict[str, Any] = {}

    def clock(key: str, t0: tuple[float, float]) -> None:
        t[key] = t.get(key, 0.0) + time.process_time() - t0[0]
        t[key + "_wall"] = t.get(key + "_wall", 0.0) + time.perf_counter() - t0[1]

    now = lambda: (time.process_time(), time.perf_counter())
    t0 = now()
    out["cam_all"] = cam_maps(bb, image, all_classes=True)
    if "cam" in selected or "cam_ref" in selected:
        out["cam"] = out["cam_all"][list(classes)] if classes else out["cam_all"][:0]
    clock("cam", t0)
    if "grad" in selected:
        t0 = now()
        out["grad"] = gradient_maps(bb, image, classes)
        clock("grad", t0)
    if cfg.uses_crops:
        t0 = now()
        cr = _crops(image, classes, bb, cfg, generator)
        clock("crops", t0)
        out.update({k: cr[k] for k in ("crops_w", "crops_u", "crops_w_abs", "crops_u_abs") if k in selected})
        if "crops_w" in selected:
            out["sweep"] = cr["sweep"]
    if masker is not None and "masker" in selected:
        t0 = now()
        out["masker"] = masker_maps(masker, image, classes, cfg.masker_size)
        clock("masker", t0)
    return out


def _crops(
    image: torch.Tensor, classes: Sequence[int], bb: nn.Module, cfg: WSSSConfig, generator: Optional[torch.Generator]
) -> dict[str, Any]:
    """:func:`crop_saliency` with the crop settings of ``cfg``."""
    return crop_saliency(
        bb,
        image,
        classes,
        n_crops=cfg.n_crops,
        size=cfg.crop_size,
        scale=cfg.crop_scale,
        ratio=cfg.crop_ratio,
        abs_every=cfg.abs_every,
        batch=cfg.crop_batch,
        counts=cfg.crop_counts,
        generator=generator,
    )

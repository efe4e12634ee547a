"""Pseudo-masks from maps, and the discriminative regions (DR / NDR) of the ground truth.

:func:`prepare_maps` (multi-class subtraction, per-class normalisation) then :func:`pseudo_mask`
(a constant background channel ``t``, argmax): the same function serves every method.
:func:`dr_levels` / :func:`dr_region` split each ground-truth object into the part its class's CAM
labels (DR) and the rest (NDR). The metrics are in :mod:`paperlib.core.segmentation`.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ...core.errors import InputError
from ...core.segmentation import argmax_labels
from .config import NUM_CLASSES
from .maps import _check_classes

__all__ = ["subtract_classes", "normalise_class_maps", "prepare_maps", "pseudo_mask", "dr_levels", "dr_region"]


def subtract_classes(maps: torch.Tensor, weight: float = 0.5) -> torch.Tensor:
    """Multi-class subtraction S'_i = relu(S_i - weight * sum_{j != i} S_j); identity for one class."""
    if maps.ndim != 3:
        raise InputError(f"maps must be (K, H, W), got {tuple(maps.shape)}.")
    if len(maps) <= 1 or weight == 0:
        return maps.clone()
    total = maps.sum(0, keepdim=True)
    return (maps - weight * (total - maps)).relu()


def _kth_quantile(flat: torch.Tensor, q: float) -> torch.Tensor:
    """Per-row q-th percentile with 'nearest' interpolation: the value at rank round(q/100 * (n - 1))."""
    n = flat.shape[-1]
    k = int(round(q / 100.0 * (n - 1))) + 1
    return flat.kthvalue(k, dim=-1).values


def normalise_class_maps(maps: torch.Tensor, quantile: float = 99.5, mode: str = "quantile") -> torch.Tensor:
    """Per-class normalisation to [0, 1].

    ``"quantile"`` (reference, saliency): ``(S - min) / (q - min)`` clamped to [0, 1], q the ``quantile``-th
    percentile ('nearest'). ``"max"`` (reference, CAM): ``S / max`` (maps are assumed >= 0). A map with
    ``q <= min`` (or ``max <= 0``) is constant and becomes all zeros. (Not
    :func:`paperlib.experiments.baselines.normalise_maps`, which divides each image's non-negative map by its max.)
    """
    if maps.ndim != 3:
        raise InputError(f"maps must be (K, H, W), got {tuple(maps.shape)}.")
    if len(maps) == 0 or maps.shape[1] * maps.shape[2] == 0:
        return maps.clone()
    flat = maps.flatten(1).float()
    if mode == "max":
        lo = torch.zeros(len(maps), dtype=flat.dtype)
        hi = flat.amax(1)
    elif mode == "quantile":
        lo = flat.amin(1)
        hi = _kth_quantile(flat, quantile)
    else:
        raise InputError(f"mode must be 'quantile' or 'max', got {mode!r}.")
    span = hi - lo
    ok = span > 0
    out = torch.zeros_like(flat)
    if ok.any():
        out[ok] = ((flat[ok] - lo[ok, None]) / span[ok, None]).clamp(0, 1)
    return out.view_as(maps)


def prepare_maps(maps: torch.Tensor, *, subtract: float = 0.5, quantile: float = 99.5, mode: str = "quantile") -> torch.Tensor:
    """The first half of :func:`pseudo_mask`: subtraction, then per-class normalisation."""
    return normalise_class_maps(subtract_classes(maps, subtract), quantile, mode)


def pseudo_mask(
    maps: torch.Tensor,
    classes: Sequence[int],
    t: float,
    *,
    subtract: float = 0.5,
    quantile: float = 99.5,
    mode: str = "quantile",
    prepared: bool = False,
) -> torch.Tensor:
    """Pseudo-mask (H, W) with values 0 (background) and 1..20 (VOC labels) from one map per class.

    Args:
        maps: (K, H, W), one map per class of ``classes`` (0-based class indices, ascending).
        t: Background threshold: a pixel is background unless its best normalised class score is > t.
        prepared: ``maps`` are already normalised (skip :func:`prepare_maps`).
    """
    cls = _check_classes(classes)
    if maps.ndim != 3 or len(maps) != len(cls):
        raise InputError(f"maps must be (K, H, W) with K = {len(cls)} classes, got {tuple(maps.shape)}.")
    if not cls:
        return torch.zeros(maps.shape[-2:], dtype=torch.long)
    p = maps if prepared else prepare_maps(maps, subtract=subtract, quantile=quantile, mode=mode)
    v, lab = argmax_labels(p, torch.tensor(cls) + 1)
    return torch.where(v > t, lab, torch.zeros_like(lab))


# =========================================================================== DR / NDR
def dr_levels(gt: torch.Tensor, cam_all: torch.Tensor, taus: Sequence[float]) -> torch.Tensor:
    """Per pixel, the number of ``taus`` that the max-normalised CAM of its ground-truth class reaches.

    Args:
        gt: (H, W) labels (0 background, 1..20, 255 ignore).
        cam_all: (20, H, W) CAMs (relu'd, any scale), one per class.
        taus: Ascending thresholds.

    Returns:
        (H, W) long in [0, len(taus)]; 0 on background and ignore pixels. DR at ``taus[j]`` is ``level > j``,
        NDR the object pixels with ``level <= j``.
    """
    lev = torch.zeros(gt.shape, dtype=torch.long)
    if cam_all.shape[0] != NUM_CLASSES:
        raise InputError(f"cam_all must hold the {NUM_CLASSES} class maps, got {tuple(cam_all.shape)}.")
    th = torch.tensor(list(taus), dtype=torch.float32)
    for g in torch.unique(gt).tolist():
        if not 1 <= g <= NUM_CLASSES:
            continue
        cam = cam_all[g - 1]
        mx = float(cam.max())
        m = gt == g
        if mx <= 0:
            continue  # a CAM that is zero everywhere: the whole region is non-discriminative
        lev[m] = ((cam[m] / mx)[:, None] >= th).sum(1)
    return lev


def dr_region(gt: torch.Tensor, cam_all: torch.Tensor, tau: float = 0.3) -> torch.Tensor:
    """(H, W): 1 = discriminative region (GT object pixel whose class's max-normalised CAM >= tau),
    2 = non-discriminative region (the other GT object pixels), 0 = background or ignore."""
    lev = dr_levels(gt, cam_all, [tau])
    obj = (gt >= 1) & (gt <= NUM_CLASSES)
    return torch.where(obj, torch.where(lev > 0, 1, 2), 0)

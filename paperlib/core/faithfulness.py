"""Metrics beyond the paper's: deletion and insertion curves, and the pointing game.

The reviewers of the paper doubted that localisation error measures saliency at all. Two families
of metrics in common use answer that without boxes or with a weaker use of them:

* **Deletion and insertion** (Petsiuk et al., RISE, BMVC 2018). Pixels are ranked by saliency.
  *Deletion* replaces the top ``k / steps`` share of them by an alternative image (a blurred or a
  grey copy) for ``k = 0 .. steps`` and records the black box's probability of the class;
  *insertion* starts from the alternative image and puts the top pixels back. The area under
  each curve (x = share of pixels changed, trapezoidal rule) summarises it: a faithful map gives
  a **low** deletion AUC (the probability drops at once) and a **high** insertion AUC.
  Ties in the saliency order (a flat map, a binary mask) are broken by a fixed random
  permutation drawn from ``seed``, so a constant map behaves like a random order rather than a
  raster scan.
* **Pointing game** (Zhang et al., ECCV 2016, as in TorchRay's benchmark): a hit when the point of
  maximal saliency lies within ``tolerance`` pixels (15 in TorchRay) of an object of the class;
  here the objects are the ImageNet ground-truth boxes, so a hit is a maximum inside a box grown
  by the tolerance on each side. Accuracy = hits / images.

Why the project's own code: Captum has no deletion/insertion curve and Quantus, which has
(``RegionPerturbation``-style) variants, is not a dependency and works on NumPy arrays one
sample at a time; these functions are batched, run the black box in evaluation mode on the
project's tensors, use the same alternative images as the paper's objective
(:func:`paperlib.core.objective.gaussian_blur`) and are short enough to read in full.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ._common import check_images, check_maps, eval_mode, module_device
from .errors import InputError
from .objective import gaussian_blur

__all__ = [
    "alternative_image",
    "pixel_order",
    "deletion_curve",
    "insertion_curve",
    "curve_auc",
    "pointing_hits",
]


def alternative_image(images: Tensor, kind: str = "blur", sigma: float = 10.0) -> Tensor:
    """The image that replaces removed pixels: ``"blur"`` (Gaussian, sigma in pixels at 224 px) or ``"grey"`` (0.5).

    Shape:
        images (N, 3, H, W) -> (N, 3, H, W).
    """
    if kind == "blur":
        return gaussian_blur(images, sigma * images.shape[-1] / 224.0)
    if kind in ("grey", "gray"):
        return torch.full_like(images, 0.5)
    raise InputError(f"Unknown alternative image {kind!r}: use 'blur' or 'grey'.")


def pixel_order(saliency: Tensor, seed: int = 0) -> Tensor:
    """Pixel indices from most to least salient, ties broken by a fixed random permutation.

    Args:
        saliency: (N, 1, H, W) or (N, H, W) maps (any real values; higher = more salient).
        seed: Seed of the tie-breaking permutation (the same for every image).

    Returns:
        LongTensor (N, H * W) of flat pixel indices.

    Example:
        >>> pixel_order(torch.tensor([[[0.1, 0.9], [0.5, 0.2]]])).tolist()
        [[1, 2, 3, 0]]
    """
    flat = check_maps(saliency, "saliency maps").flatten(1)
    perm = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(seed)).to(flat.device)
    # stable sort of the permuted values, mapped back: equal values keep the permutation's order
    order = torch.sort(flat[:, perm], dim=1, descending=True, stable=True).indices
    return perm[order]


@torch.no_grad()
def _curve(
    black_box: nn.Module,
    images: Tensor,
    saliency: Tensor,
    classes: Tensor,
    *,
    insert: bool,
    steps: int,
    alternative: str | Tensor,
    batch_size: int,
    seed: int,
) -> Tensor:
    check_images(images)
    n, _, h, w = images.shape
    if saliency.shape[0] != n or saliency.shape[-2:] != (h, w):
        raise InputError(f"saliency maps {tuple(saliency.shape)} must match the images {tuple(images.shape)} in N, H, W.")
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}.")
    classes = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
    if len(classes) != n:
        raise InputError(f"need one class per image: {len(classes)} classes for {n} images.")
    alt = alternative_image(images, alternative) if isinstance(alternative, str) else alternative
    if alt.shape != images.shape:
        raise InputError(f"alternative image {tuple(alt.shape)} must have the images' shape {tuple(images.shape)}.")
    order = pixel_order(saliency, seed)
    # rank[i, p] = position of pixel p in image i's order
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(h * w, device=order.device).expand(n, -1))
    counts = [round(k * h * w / steps) for k in range(steps + 1)]
    device = module_device(black_box)
    probs = torch.empty(n, steps + 1)
    with eval_mode(black_box):
        for k, count in enumerate(counts):
            changed = (rank < count).reshape(n, 1, h, w).to(images.dtype)  # the top `count` pixels
            keep = changed if insert else 1 - changed
            x = images * keep + alt * (1 - keep)
            for lo in range(0, n, batch_size):
                logits = black_box(x[lo : lo + batch_size].to(device))
                p = logits.float().softmax(-1).gather(1, classes[lo : lo + batch_size, None].to(device))[:, 0]
                probs[lo : lo + batch_size, k] = p.cpu()
    return probs


def deletion_curve(
    black_box: nn.Module,
    images: Tensor,
    saliency: Tensor,
    classes: Tensor,
    *,
    steps: int = 16,
    alternative: str | Tensor = "blur",
    batch_size: int = 64,
    seed: int = 0,
) -> Tensor:
    """Probability of the class as the most salient pixels are removed (RISE's deletion game).

    Args:
        black_box: Classifier taking (B, 3, H, W) images in [0, 1] and returning logits (B, K).
        images: (N, 3, H, W) in [0, 1].
        saliency: (N, 1, H, W) or (N, H, W) maps at image resolution.
        classes: (N,) class indices.
        steps: Number of deletion steps; the curve has ``steps + 1`` points, the first on the
            intact image, the last on the alternative image.
        alternative: ``"blur"``, ``"grey"`` or an (N, 3, H, W) tensor of replacement pixels.
        batch_size: Images per black-box call.
        seed: Tie-breaking seed (see :func:`pixel_order`).

    Returns:
        (N, steps + 1) probabilities; point ``k`` has the top ``round(k * H * W / steps)`` pixels replaced.
    """
    return _curve(
        black_box, images, saliency, classes, insert=False, steps=steps, alternative=alternative, batch_size=batch_size, seed=seed
    )


def insertion_curve(
    black_box: nn.Module,
    images: Tensor,
    saliency: Tensor,
    classes: Tensor,
    *,
    steps: int = 16,
    alternative: str | Tensor = "blur",
    batch_size: int = 64,
    seed: int = 0,
) -> Tensor:
    """Probability of the class as the most salient pixels are put back into the alternative image.

    Same arguments as :func:`deletion_curve`; point 0 is the alternative image, point ``steps`` the
    intact image.

    Returns:
        (N, steps + 1) probabilities.
    """
    return _curve(
        black_box, images, saliency, classes, insert=True, steps=steps, alternative=alternative, batch_size=batch_size, seed=seed
    )


def curve_auc(curves: Tensor) -> Tensor:
    """Area under each curve over x in [0, 1] (trapezoidal rule, evenly spaced points).

    Args:
        curves: (N, S + 1) values at x = 0, 1/S, ..., 1.

    Returns:
        (N,) areas.

    Example:
        >>> curve_auc(torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])).tolist()
        [0.25, 1.0]
    """
    if curves.ndim != 2 or curves.shape[1] < 2:
        raise InputError(f"curves must have shape (N, S + 1) with S >= 1, got {tuple(curves.shape)}.")
    return torch.trapezoid(curves.float(), dx=1.0 / (curves.shape[1] - 1), dim=1)


def pointing_hits(saliency: Tensor, boxes: Sequence[Tensor], tolerance: float = 15.0) -> Tensor:
    """Pointing game: does each map's maximum fall within ``tolerance`` pixels of a box?

    Args:
        saliency: (N, 1, H, W) or (N, H, W) maps, in the boxes' pixel coordinates.
        boxes: N tensors (B_i, 4) of ``(xmin, ymin, xmax, ymax)`` inclusive pixel boxes of the class.
        tolerance: Pixels the box is grown by on each side (TorchRay: 15).

    Returns:
        BoolTensor (N,). With several maxima, the first in raster order is the point.

    Example:
        >>> m = torch.zeros(1, 1, 40, 40); m[0, 0, 5, 30] = 1
        >>> pointing_hits(m, [torch.tensor([[0.0, 0.0, 10.0, 10.0]])], tolerance=15).tolist()
        [False]
        >>> pointing_hits(m, [torch.tensor([[0.0, 0.0, 20.0, 10.0]])], tolerance=15).tolist()
        [True]
    """
    s = check_maps(saliency, "saliency maps")
    if len(boxes) != s.shape[0]:
        raise InputError(f"need maps (N, H, W) and N box tensors, got {tuple(saliency.shape)} and {len(boxes)} boxes.")
    w = s.shape[-1]
    idx = s.flatten(1).argmax(1)
    ys, xs = (idx // w).float(), (idx % w).float()
    hits = []
    for x, y, b in zip(xs, ys, boxes):
        b = torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4)
        inside = (x >= b[:, 0] - tolerance) & (x <= b[:, 2] + tolerance) & (y >= b[:, 1] - tolerance) & (y <= b[:, 3] + tolerance)
        hits.append(bool(inside.any()))
    return torch.tensor(hits, dtype=torch.bool)

"""Evaluation metrics of the paper: weakly supervised localisation and the saliency metric.

Everything here is a pure function on tensors (torchmetrics / TorchRay style),
plus one small accumulator, :class:`LocalisationError`, for evaluation loops.

Box convention
--------------
Boxes are float tensors of shape ``(..., 4)`` holding ``(xmin, ymin, xmax, ymax)``
in pixel coordinates with **inclusive** pixel indices, as in the ImageNet
(ILSVRC) annotations: a box covering pixel columns ``i..j`` (both included) has
``xmin = i`` and ``xmax = j``. Hence

* the whole ``W x H`` image is ``(0, 0, W - 1, H - 1)``;
* a single pixel at (row ``r``, column ``c``) is ``(c, r, c, r)``;
* the area is ``(xmax - xmin + 1) * (ymax - ymin + 1)`` (clamped at 0).

Pixel index ``i`` is taken to cover the continuous interval ``[i, i + 1)``;
:func:`scale_boxes` uses that to move boxes between resolutions so that the
whole image always maps onto the whole image. Converting 1-based annotation
files (if any) to 0-based indices is the data loader's job, not this module's.

Masks are tensors ``(N, 1, H, W)`` or ``(N, H, W)`` with values in ``[0, 1]``
(1 = salient / keep).

Metrics (Dabkowski & Gal 2017, section 5)
-----------------------------------------
* Localisation (paper sec. 5.1): threshold the mask at 0.5, take the tightest
  box containing all pixels above it (:func:`mask_to_box`); a prediction is
  correct iff ``IoU > 0.5`` with any ground-truth box of the image
  (:func:`localisation_correct`); the error is the percentage of incorrect
  images (:func:`localisation_error`).
* Saliency metric (paper sec. 5.2): ``s(a, p) = log(max(a, 0.05)) - log(p)``
  (:func:`saliency_metric`), where ``a`` is the box area over the image area and
  ``p`` the classifier's probability of the requested class on the box crop,
  resized to the classifier's input size ignoring the aspect ratio
  (:func:`box_saliency_scores`). Lower is better.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import class_probability_from_logits, eval_mode, module_device
from .errors import InputError
from .objective import apply_mask

__all__ = [
    "paired_gain",
    "encode_correct",
    "decode_correct",
    "mask_to_box",
    "box_area",
    "box_iou",
    "scale_boxes",
    "localisation_correct",
    "localisation_error",
    "LocalisationError",
    "max_box",
    "center_box",
    "ground_truth_box",
    "saliency_metric",
    "box_saliency_scores",
    "mean_saliency_metric",
    "MIN_AREA",
    "MIN_PROB",
    "evidence_probabilities",
]

#: Lower clamp of the area fraction in the saliency metric (paper: 0.05).
MIN_AREA: float = 0.05
#: Lower clamp of the class probability in the saliency metric, so that a
#: probability that underflows to 0 gives a large finite score, not ``inf``.
MIN_PROB: float = 1e-12

Size = Union[Tuple[int, int], Sequence[int], Tensor]
GtBoxes = Union[Tensor, Sequence[Tensor]]


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _check_boxes(boxes: Tensor, name: str = "boxes", ndim: Optional[int] = None) -> Tensor:
    if not isinstance(boxes, Tensor):
        try:
            boxes = torch.as_tensor(boxes, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"{name} must be a tensor of shape (..., 4), got {type(boxes).__name__}") from exc
    if boxes.ndim == 0 or boxes.shape[-1] != 4:
        raise InputError(f"{name} must have shape (..., 4) as (xmin, ymin, xmax, ymax), got shape {tuple(boxes.shape)}")
    if ndim is not None and boxes.ndim != ndim:
        expected = "(4,)" if ndim == 1 else "(N, 4)" if ndim == 2 else f"{ndim}-D (..., 4)"
        raise InputError(f"{name} must have shape {expected}, got shape {tuple(boxes.shape)}")
    if not boxes.is_floating_point():
        boxes = boxes.float()
    if not torch.isfinite(boxes).all():
        raise InputError(f"{name} contains NaN or infinite coordinates")
    return boxes


def _check_masks(masks: Tensor, name: str = "masks") -> Tensor:
    """Return masks as (N, H, W) after checking shape and [0, 1] range."""
    if not isinstance(masks, Tensor):
        raise InputError(f"{name} must be a tensor of shape (N, 1, H, W) or (N, H, W), got {type(masks).__name__}")
    if masks.ndim == 4:
        if masks.shape[1] != 1:
            raise InputError(
                f"{name} must have shape (N, 1, H, W) or (N, H, W); got {tuple(masks.shape)} "
                f"with {masks.shape[1]} channels (take one channel or reduce over channels first)"
            )
        masks = masks[:, 0]
    elif masks.ndim != 3:
        raise InputError(f"{name} must have shape (N, 1, H, W) or (N, H, W), got {masks.ndim}-D shape {tuple(masks.shape)}")
    if masks.shape[-1] == 0 or masks.shape[-2] == 0:
        raise InputError(f"{name} has an empty spatial size {tuple(masks.shape[-2:])}")
    if masks.dtype == torch.bool:
        return masks.float()
    if not masks.is_floating_point():
        masks = masks.float()
    if masks.numel() > 0:
        if torch.isnan(masks).any():
            raise InputError(f"{name} contains NaN values")
        lo, hi = float(masks.min()), float(masks.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise InputError(
                f"{name} must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}] "
                "(normalise the map, e.g. divide by its per-image max)"
            )
    return masks


def _sizes_tensor(size: Size, name: str) -> Tensor:
    """Sizes (W, H) as a float tensor (..., 2)."""
    t = torch.as_tensor(size, dtype=torch.float64) if not isinstance(size, Tensor) else size.double()
    if t.ndim == 0 or t.shape[-1] != 2:
        raise InputError(f"{name} must be (W, H) or a tensor (..., 2) of (W, H) pairs, got {tuple(t.shape)}")
    if (t <= 0).any() or not torch.isfinite(t).all():
        raise InputError(f"{name} must hold positive finite sizes (W, H), got {t.tolist()}")
    return t


# --------------------------------------------------------------------------- #
# boxes
# --------------------------------------------------------------------------- #
def mask_to_box(masks: Tensor, threshold: float = 0.5, return_empty: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Tightest box containing all mask pixels strictly above ``threshold``.

    This is the paper's box rule for localisation (threshold 0.5, "the tightest
    rectangle that contains the whole salient region"). Vectorised over the
    batch and pixels.

    Empty masks (no pixel above the threshold) fall back to the whole image
    ``(0, 0, W - 1, H - 1)``: with no salient region the prediction is "the
    object is everywhere", which is also what the max-box baseline predicts.
    Use ``return_empty=True`` to know which images fell back.

    Args:
        masks: ``(N, 1, H, W)`` or ``(N, H, W)`` with values in ``[0, 1]``.
        threshold: pixels with ``mask > threshold`` (strict) are salient.
        return_empty: also return a bool tensor ``(N,)``, True where the mask
            was empty and the fallback box was used.

    Returns:
        Float tensor ``(N, 4)`` of inclusive boxes ``(xmin, ymin, xmax, ymax)``
        in mask pixels, and optionally the bool tensor ``(N,)`` of empties.

    Raises:
        InputError: wrong ndim, more than one channel, or values outside [0, 1].
    """
    m = _check_masks(masks)
    n, h, w = m.shape
    fg = m > threshold
    cols = fg.any(dim=1)  # (N, W): column has a salient pixel
    rows = fg.any(dim=2)  # (N, H)
    empty = ~cols.any(dim=1)
    xs = torch.arange(w, device=m.device).expand(n, w)
    ys = torch.arange(h, device=m.device).expand(n, h)
    xmin = torch.where(cols, xs, w).amin(dim=1)
    xmax = torch.where(cols, xs, -1).amax(dim=1)
    ymin = torch.where(rows, ys, h).amin(dim=1)
    ymax = torch.where(rows, ys, -1).amax(dim=1)
    boxes = torch.stack([xmin, ymin, xmax, ymax], dim=1).to(torch.float32)
    full = torch.tensor([0.0, 0.0, w - 1.0, h - 1.0], device=m.device)
    boxes = torch.where(empty[:, None], full, boxes)
    if return_empty:
        return boxes, empty
    return boxes


def box_area(boxes: Tensor) -> Tensor:
    """Area of inclusive boxes: ``(xmax - xmin + 1) * (ymax - ymin + 1)``.

    Args:
        boxes: ``(..., 4)`` as ``(xmin, ymin, xmax, ymax)``, inclusive pixel indices.

    Returns:
        Tensor ``(...)``; degenerate boxes (``xmax < xmin - 1`` etc.) have area 0.
    """
    b = _check_boxes(boxes)
    w = (b[..., 2] - b[..., 0] + 1).clamp(min=0)
    h = (b[..., 3] - b[..., 1] + 1).clamp(min=0)
    return w * h


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise intersection over union of two sets of inclusive boxes.

    ``IoU(A, B) = |A ∩ B| / (|A| + |B| - |A ∩ B|)`` with areas computed by
    :func:`box_area` (inclusive convention: ``[0,0,9,9]`` vs ``[5,5,14,14]``
    gives ``25 / 175``).

    Args:
        a: ``(N, 4)`` boxes (a single ``(4,)`` box is treated as ``(1, 4)``).
        b: ``(M, 4)`` boxes (likewise).

    Returns:
        Float tensor ``(N, M)``; 0 where the union is empty.
    """
    a = _check_boxes(a, "a")
    b = _check_boxes(b, "b")
    if a.ndim == 1:
        a = a[None]
    if b.ndim == 1:
        b = b[None]
    if a.ndim != 2 or b.ndim != 2:
        raise InputError(f"box_iou expects (N, 4) and (M, 4) boxes, got {tuple(a.shape)} and {tuple(b.shape)}")
    b = b.to(device=a.device, dtype=torch.promote_types(a.dtype, b.dtype))
    a = a.to(b.dtype)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt + 1).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def scale_boxes(boxes: Tensor, from_size: Size, to_size: Size) -> Tensor:
    """Move inclusive boxes from one image resolution to another.

    Pixel ``i`` covers the continuous interval ``[i, i + 1)``; a box
    ``[xmin, xmax]`` therefore covers ``[xmin, xmax + 1)``, which is scaled by
    ``s = W_to / W_from`` and turned back into inclusive indices::

        xmin' = xmin * s,    xmax' = (xmax + 1) * s - 1      (same for y)

    so the whole image ``(0, 0, W_from-1, H_from-1)`` maps exactly onto
    ``(0, 0, W_to-1, H_to-1)`` and the map is invertible (round trips are exact
    up to float error). No rounding is done; :func:`box_saliency_scores` rounds
    outwards when it crops.

    Args:
        boxes: ``(..., 4)`` inclusive boxes at ``from_size``.
        from_size: ``(W, H)`` of the resolution the boxes are in, or a tensor
            ``(..., 2)`` of per-box sizes broadcastable against ``boxes[..., :2]``.
        to_size: ``(W, H)`` of the target resolution, or per-box sizes likewise.

    Returns:
        Float tensor with the shape of ``boxes``.
    """
    b = _check_boxes(boxes)
    fs = _sizes_tensor(from_size, "from_size").to(b.device)
    ts = _sizes_tensor(to_size, "to_size").to(b.device)
    s = (ts / fs).to(b.dtype)
    s4 = torch.cat([s, s], dim=-1)
    out = torch.cat([b[..., :2], b[..., 2:] + 1], dim=-1) * s4
    return torch.cat([out[..., :2], out[..., 2:] - 1], dim=-1)


def _gt_list(gt_boxes: GtBoxes, n: int) -> list:
    if isinstance(gt_boxes, Tensor):
        if gt_boxes.ndim == 2:  # one gt box per image
            gt_boxes = [g[None] for g in gt_boxes]
        elif gt_boxes.ndim == 3:  # (N, K, 4)
            gt_boxes = list(gt_boxes)
        else:
            raise InputError(
                "gt_boxes must be a list of (K_i, 4) tensors, an (N, 4) or an (N, K, 4) tensor, "
                f"got shape {tuple(gt_boxes.shape)}"
            )
    gt_boxes = list(gt_boxes)
    if len(gt_boxes) != n:
        raise InputError(f"got {n} predicted boxes but ground-truth boxes for {len(gt_boxes)} images")
    out = []
    for i, g in enumerate(gt_boxes):
        g = _check_boxes(torch.as_tensor(g, dtype=torch.float32) if not isinstance(g, Tensor) else g, f"gt_boxes[{i}]")
        if g.ndim == 1:
            g = g[None]
        if g.ndim != 2:
            raise InputError(f"gt_boxes[{i}] must have shape (K, 4), got {tuple(g.shape)}")
        out.append(g)
    return out


def localisation_correct(pred_boxes: Tensor, gt_boxes: GtBoxes, iou_threshold: float = 0.5) -> Tensor:
    """Whether each predicted box localises the object (paper sec. 5.1).

    Correct iff ``IoU(pred_i, g) > iou_threshold`` (strict, default 0.5) for
    **any** ground-truth box ``g`` of image ``i``. An image with no
    ground-truth box counts as incorrect.

    Args:
        pred_boxes: ``(N, 4)`` predicted inclusive boxes, in the same pixel
            coordinates as the ground truth (see :func:`scale_boxes`).
        gt_boxes: list of ``N`` tensors ``(K_i, 4)``, or a tensor ``(N, 4)``
            (one box per image) or ``(N, K, 4)``.
        iou_threshold: IoU that must be exceeded.

    Returns:
        Bool tensor ``(N,)``.
    """
    pred = _check_boxes(pred_boxes, "pred_boxes", ndim=2)
    gts = _gt_list(gt_boxes, pred.shape[0])
    correct = torch.zeros(pred.shape[0], dtype=torch.bool)
    for i, g in enumerate(gts):
        if g.shape[0] > 0:
            correct[i] = bool((box_iou(pred[i : i + 1], g.to(pred.device)) > iou_threshold).any())
    return correct.to(pred.device)


def localisation_error(pred_boxes: Tensor, gt_boxes: GtBoxes, iou_threshold: float = 0.5) -> float:
    """Localisation error in percent: ``100 * (1 - mean(correct))``.

    Args:
        pred_boxes: ``(N, 4)`` predicted boxes, ``N >= 1``.
        gt_boxes: ground-truth boxes as in :func:`localisation_correct`.
        iou_threshold: IoU that must be exceeded to be correct.

    Returns:
        Error in percent (0 = all correct), a Python float.
    """
    correct = localisation_correct(pred_boxes, gt_boxes, iou_threshold)
    if correct.numel() == 0:
        raise InputError("localisation_error needs at least one predicted box")
    return 100.0 * (1.0 - correct.float().mean().item())


class LocalisationError:
    """Localisation error accumulated over batches (torchmetrics-style).

    Example::

        metric = LocalisationError()
        for masks, gt_boxes in loader:
            metric.update(mask_to_box(masks), gt_boxes)
        print(metric.compute())  # percent

    Args:
        iou_threshold: IoU that must be exceeded to be correct (paper: 0.5).
    """

    def __init__(self, iou_threshold: float = 0.5) -> None:
        self.iou_threshold = iou_threshold
        self.reset()

    def reset(self) -> None:
        """Forget every update."""
        self.correct = 0
        self.total = 0

    def update(self, pred_boxes: Tensor, gt_boxes: GtBoxes) -> Tensor:
        """Add a batch; returns its bool tensor ``(N,)`` of correct predictions."""
        c = localisation_correct(pred_boxes, gt_boxes, self.iou_threshold)
        self.correct += int(c.sum())
        self.total += int(c.numel())
        return c

    def compute(self) -> float:
        """Error in percent over all updates so far."""
        if self.total == 0:
            raise InputError("LocalisationError.compute() called before any update()")
        return 100.0 * (1.0 - self.correct / self.total)

    def __repr__(self) -> str:
        return f"LocalisationError(correct={self.correct}, total={self.total})"


# --------------------------------------------------------------------------- #
# box baselines (paper tables 2 and 3)
# --------------------------------------------------------------------------- #
def max_box(size: Size) -> Tensor:
    """The whole image as a box (Table 3 "max box").

    Args:
        size: ``(W, H)``, or a tensor ``(N, 2)`` of per-image sizes.

    Returns:
        ``(4,)`` box ``(0, 0, W - 1, H - 1)``, or ``(N, 4)`` for batched sizes.
    """
    s = _sizes_tensor(size, "size")
    z = torch.zeros_like(s)
    return torch.cat([z, s - 1], dim=-1).float()


def center_box(size: Size) -> Tensor:
    """Centred box with half the image area and the image's aspect ratio (Table 2/3 "center").

    Sides are the image sides scaled by ``1 / sqrt(2)`` and rounded to whole
    pixels, so the area is ``W * H / 2`` up to rounding and the box is centred
    up to half a pixel::

        w = round(W / sqrt(2)),  xmin = floor((W - w) / 2),  xmax = xmin + w - 1

    Args:
        size: ``(W, H)``, or a tensor ``(N, 2)`` of per-image sizes.

    Returns:
        ``(4,)`` (or ``(N, 4)``) inclusive box with integer-valued coordinates.
    """
    s = _sizes_tensor(size, "size")
    side = torch.round(s / math.sqrt(2.0)).clamp(min=1)
    lo = torch.floor((s - side) / 2)
    return torch.cat([lo, lo + side - 1], dim=-1).float()


def ground_truth_box(
    gt_boxes: GtBoxes,
    gt_labels: Optional[Sequence[Tensor]] = None,
    classes: Optional[Tensor] = None,
    mode: str = "enclose",
) -> Tensor:
    """One ground-truth box per image (Table 3 "ground truth").

    The paper's Table 3 row needs one box per image; images may have several
    ground-truth boxes of the requested class. ``mode="enclose"`` takes the tightest box
    enclosing all of them; it can have IoU <= 0.5 with every single box when the boxes are
    far apart, so its localisation error is not exactly 0. ``mode="largest"`` takes the
    largest single box, whose localisation error is 0 by construction, as in the paper's row
    (0.00 %).

    Args:
        gt_boxes: list of ``N`` tensors ``(K_i, 4)``, an ``(N, K, 4)`` tensor,
            or a single ``(K, 4)`` tensor (one image).
        gt_labels: optional list of ``N`` integer tensors ``(K_i,)`` with the
            class of each box; with ``classes`` it selects the boxes to enclose.
            Without it all boxes are enclosed (the caller already filtered them).
        classes: ``(N,)`` requested classes, used with ``gt_labels``.
        mode: ``"enclose"`` or ``"largest"`` (see above).

    Returns:
        ``(N, 4)`` boxes (``(4,)`` for a single ``(K, 4)`` input).

    Raises:
        InputError: an image has no ground-truth box (of the requested class).
    """
    single = isinstance(gt_boxes, Tensor) and gt_boxes.ndim == 2
    boxes = [gt_boxes] if single else list(gt_boxes)
    if gt_labels is not None:
        if classes is None:
            raise InputError("ground_truth_box: pass `classes` together with `gt_labels`")
        labels = [gt_labels] if single else list(gt_labels)
        cls = torch.as_tensor(classes).reshape(-1)
        if len(labels) != len(boxes) or cls.numel() != len(boxes):
            raise InputError(
                f"ground_truth_box: got {len(boxes)} images of boxes, {len(labels)} of labels and {cls.numel()} classes"
            )
    out = []
    for i, g in enumerate(boxes):
        g = _check_boxes(g if isinstance(g, Tensor) else torch.as_tensor(g, dtype=torch.float32), f"gt_boxes[{i}]")
        if g.ndim == 1:
            g = g[None]
        if gt_labels is not None:
            keep = torch.as_tensor(labels[i]).reshape(-1).to(g.device) == int(cls[i])
            if keep.numel() != g.shape[0]:
                raise InputError(f"gt_labels[{i}] has {keep.numel()} labels for {g.shape[0]} boxes")
            g = g[keep]
        if g.shape[0] == 0:
            raise InputError(f"image {i} has no ground-truth box of the requested class")
        if mode == "largest":
            out.append(g[int(box_area(g).argmax())])
        elif mode == "enclose":
            out.append(torch.cat([g[:, :2].amin(dim=0), g[:, 2:].amax(dim=0)]))
        else:
            raise InputError(f"ground_truth_box: mode must be 'enclose' or 'largest', got {mode!r}")
    res = torch.stack(out)
    return res[0] if single else res


# --------------------------------------------------------------------------- #
# saliency metric (paper sec. 5.2)
# --------------------------------------------------------------------------- #
def saliency_metric(a: Union[Tensor, float], p: Union[Tensor, float]) -> Tensor:
    """Saliency metric ``s(a, p) = log(max(a, 0.05)) - log(p)``, elementwise. Lower is better.

    Args:
        a: area fraction(s) of the box over the image, in ``[0, 1]``.
        p: probability(ies) of the requested class on the box crop, in
            ``[0, 1]``; clamped below at ``MIN_PROB = 1e-12`` so that an
            underflowing probability gives a large finite score instead of inf.

    Returns:
        Tensor with the broadcast shape of ``a`` and ``p``.
    """
    a_t = torch.as_tensor(a, dtype=torch.float64) if not isinstance(a, Tensor) else a
    p_t = torch.as_tensor(p, dtype=torch.float64) if not isinstance(p, Tensor) else p
    for name, t in (("a", a_t), ("p", p_t)):
        if t.numel() and (torch.isnan(t).any() or t.min() < 0 or t.max() > 1 + 1e-6):
            raise InputError(f"saliency_metric: {name} must lie in [0, 1], got {t.min().item()}..{t.max().item()}")
    return torch.log(a_t.clamp(min=MIN_AREA)) - torch.log(p_t.clamp(min=MIN_PROB))


def _crop_box(img: Tensor, box: Tensor) -> Tuple[Tensor, float]:
    """Crop an inclusive box (rounded outwards, clipped to the image); return crop and area fraction."""
    _, h, w = img.shape
    eps = 1e-4
    x0 = int(math.floor(float(box[0]) + eps))
    y0 = int(math.floor(float(box[1]) + eps))
    x1 = int(math.ceil(float(box[2]) - eps))
    y1 = int(math.ceil(float(box[3]) - eps))
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, w - 1), min(y1, h - 1)
    if x1 < x0 or y1 < y0:
        raise InputError(
            f"box {box.tolist()} is empty or lies outside the {w}x{h} image "
            "(boxes are inclusive (xmin, ymin, xmax, ymax) in image pixels)"
        )
    crop = img[:, y0 : y1 + 1, x0 : x1 + 1]
    return crop, (x1 - x0 + 1) * (y1 - y0 + 1) / float(h * w)


def box_saliency_scores(
    classifier: nn.Module,
    images: Union[Tensor, Sequence[Tensor]],
    boxes: Tensor,
    classes: Union[Tensor, Sequence[int], int],
    input_size: Optional[Union[int, Tuple[int, int]]] = None,
    batch_size: int = 32,
) -> Dict[str, Tensor]:
    """Saliency metric of boxes on images for a black-box classifier (paper sec. 5.2).

    For each image: crop the box (coordinates rounded outwards to whole pixels
    and clipped to the image), resize the crop to the classifier's input size
    ignoring the aspect ratio (bilinear, ``antialias=True``), and read
    ``p = softmax(classifier(crop))[class]``. Then ``a = crop area / image
    area`` and ``score = log(max(a, 0.05)) - log(max(p, 1e-12))``.

    Runs under ``torch.no_grad()`` with the classifier temporarily in eval mode
    (its previous mode is restored), in batches of ``batch_size`` crops, on the
    classifier's device.

    Args:
        classifier: module taking ``(B, 3, h, w)`` RGB in ``[0, 1]`` and
            returning logits ``(B, num_classes)``.
        images: ``(N, 3, H, W)`` in ``[0, 1]``, or a sequence of ``N`` tensors
            ``(3, H_i, W_i)`` (e.g. ImageNet images at their original sizes).
        boxes: ``(N, 4)`` inclusive boxes in each image's pixel coordinates.
        classes: ``(N,)`` requested class indices (an int applies to all).
        input_size: classifier input size, an int (square) or ``(h, w)``;
            defaults to ``getattr(classifier, "input_size", 224)``.
        batch_size: crops per forward pass.

    Returns:
        Dict of CPU float tensors ``(N,)``: ``'area'`` (a), ``'prob'`` (p) and
        ``'score'`` (s).
    """
    imgs, bx, cls, size = _saliency_inputs(classifier, images, boxes, classes, input_size, batch_size)
    n = len(imgs)
    device = module_device(classifier, imgs[0].device if n else torch.device("cpu"))
    areas = torch.empty(n, dtype=torch.float64)
    probs = torch.empty(n, dtype=torch.float64)
    with eval_mode(classifier), torch.no_grad():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            crops = []
            for i in range(start, stop):
                crop, areas[i] = _crop_box(imgs[i], bx[i])
                crop = F.interpolate(crop[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)
                crops.append(crop.clamp_(0, 1))
            logits = classifier(torch.cat(crops).to(device))
            if logits.ndim != 2 or logits.shape[0] != stop - start:
                raise InputError(f"classifier must return logits (B, num_classes), got shape {tuple(logits.shape)}")
            c = cls[start:stop].to(logits.device).long()
            if (c < 0).any() or (c >= logits.shape[1]).any():
                raise InputError(f"classes must be in [0, {logits.shape[1]}), got {c.tolist()}")
            multi = bool(getattr(classifier, "multi_label", False))
            probs[start:stop] = class_probability_from_logits(logits.double(), c, multi).cpu()
    score = saliency_metric(areas, probs)
    return {"area": areas.float(), "prob": probs.float(), "score": score.float()}


def _saliency_inputs(
    classifier: nn.Module,
    images: Union[Tensor, Sequence[Tensor]],
    boxes: Tensor,
    classes: Union[Tensor, Sequence[int], int],
    input_size: Optional[Union[int, Tuple[int, int]]],
    batch_size: int,
) -> Tuple[list, Tensor, Tensor, Tuple[int, int]]:
    """Check the inputs of :func:`box_saliency_scores`; returns (images as a list, boxes, classes, (h, w))."""
    if isinstance(images, Tensor):
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
        imgs = list(images)
    else:
        imgs = list(images)
        for i, im in enumerate(imgs):
            if not isinstance(im, Tensor) or im.ndim != 3 or im.shape[0] != 3:
                raise InputError(f"images[{i}] must be a (3, H, W) tensor")
    n = len(imgs)
    for i, im in enumerate(imgs):
        if im.numel() and (im.min() < -1e-6 or im.max() > 1 + 1e-6):
            raise InputError(
                f"images must be RGB in [0, 1] (not ImageNet-normalised); images[{i}] has values "
                f"in [{im.min().item():.3g}, {im.max().item():.3g}]"
            )
    bx = _check_boxes(boxes, "boxes", ndim=2)
    if bx.shape[0] != n:
        raise InputError(f"got {n} images but {bx.shape[0]} boxes")
    cls = torch.as_tensor(classes).reshape(-1) if not isinstance(classes, int) else torch.full((n,), classes)
    if cls.numel() == 1 and n != 1:
        cls = cls.expand(n)
    if cls.numel() != n:
        raise InputError(f"got {n} images but {cls.numel()} classes")
    if cls.is_floating_point() or cls.dtype == torch.bool:
        raise InputError(f"classes must be integer class indices, got dtype {cls.dtype}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if input_size is None:
        input_size = getattr(classifier, "input_size", 224)
    size = (int(input_size), int(input_size)) if isinstance(input_size, int) else tuple(int(s) for s in input_size)
    if len(size) != 2:
        raise InputError(f"input_size must be an int or (h, w), got {input_size}")
    return imgs, bx, cls, size


def mean_saliency_metric(
    classifier: nn.Module,
    images: Union[Tensor, Sequence[Tensor]],
    boxes: Tensor,
    classes: Union[Tensor, Sequence[int], int],
    input_size: Optional[Union[int, Tuple[int, int]]] = None,
    batch_size: int = 32,
) -> float:
    """Mean of :func:`box_saliency_scores` ``['score']`` over the images (the number in Table 3)."""
    return float(box_saliency_scores(classifier, images, boxes, classes, input_size, batch_size)["score"].mean())


def evidence_probabilities(
    classifier: nn.Module,
    images: Tensor,
    masks: Tensor,
    classes: Union[Tensor, Sequence[int], int],
    alternative: Optional[Tensor] = None,
) -> Dict[str, Tensor]:
    """The classifier's probability of the class with the salient region kept or removed.

    With the evidence-removal function Phi(X, M) = X * M + A * (1 - M) of eq. 4:
    ``kept`` is p(c | Phi(X, M)) (the smallest sufficient region, SSR) and ``removed`` is
    p(c | Phi(X, 1 - M)) (the smallest destroying region, SDR). A useful saliency mask gives
    ``kept`` close to ``image`` and ``removed`` far below it, with a small ``area``.

    Args:
        classifier: Images in [0, 1] -> logits (a :class:`~paperlib.classifiers.BlackBox`; sigmoid
            probabilities when its ``multi_label`` is true, softmax otherwise).
        images: X, (N, 3, H, W) in [0, 1].
        masks: M, (N, 1, H, W) or (N, H, W) in [0, 1], at image resolution (1 = salient).
        classes: N class indices (or one for all).
        alternative: A, (N, 3, H, W); default: a constant grey image (0.5), which is
            deterministic (the training objective draws random blur / colour + noise instead).

    Returns:
        ``{"image", "kept", "removed", "area"}``, each (N,): the three probabilities and the
        mean mask value.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise InputError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
    m = _check_masks(masks)[:, None]
    if m.shape[0] != images.shape[0] or m.shape[-2:] != images.shape[-2:]:
        raise InputError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
    n = images.shape[0]
    cls = torch.as_tensor(classes, dtype=torch.long).reshape(-1)
    if cls.numel() == 1:
        cls = cls.expand(n)
    if cls.numel() != n:
        raise InputError(f"got {n} images but {cls.numel()} classes")
    a = torch.full_like(images, 0.5) if alternative is None else alternative
    m = m.to(images.dtype)
    views = {"image": images, "kept": apply_mask(images, m, a), "removed": apply_mask(images, 1 - m, a)}
    device = module_device(classifier, images.device)
    out: Dict[str, Tensor] = {}
    with torch.no_grad():
        for k, v in views.items():
            logits = classifier(v.to(device)).float()
            multi = bool(getattr(classifier, "multi_label", False))
            out[k] = class_probability_from_logits(logits, cls.to(logits.device), multi).cpu()
    out["area"] = m.flatten(1).mean(1).cpu()
    return out


def paired_gain(new: torch.Tensor, old: torch.Tensor) -> dict[str, float]:
    """Paired comparison of two maskers' per-image localisation correctness on the same images.

    Returns the gain in error points (old error - new error, positive = the new one is better), its
    paired standard error ``std(d) / sqrt(n)`` of ``d_i = new_i - old_i`` (in points), ``n`` and both errors.

    >>> paired_gain(torch.tensor([1, 1, 0, 1]).bool(), torch.tensor([1, 0, 0, 1]).bool())
    {'gain_points': 25.0, 'se_points': 25.0, 'n': 4, 'err_new': 25.0, 'err_old': 50.0}
    """
    d = new.float() - old.float()
    n = len(d)
    se = float(d.std(unbiased=True)) / n**0.5 if n > 1 else float("nan")
    return {
        "gain_points": round(100 * float(d.mean()), 1),
        "se_points": round(100 * se, 1),
        "n": n,
        "err_new": round(100 * (1 - float(new.float().mean())), 1),
        "err_old": round(100 * (1 - float(old.float().mean())), 1),
    }


def encode_correct(correct: torch.Tensor) -> str:
    """Per-image correctness as a compact string, one ``"0"``/``"1"`` per image, for a result JSON.

    >>> encode_correct(torch.tensor([True, False, True]))
    '101'
    """
    return "".join("1" if bool(c) else "0" for c in correct.reshape(-1).tolist())


def decode_correct(text: str) -> torch.Tensor:
    """The inverse of :func:`encode_correct`.

    Raises:
        InputError: ``text`` holds characters other than ``0`` and ``1``.
    """
    if set(text) - {"0", "1"}:
        raise InputError("per-image correctness must be a string of 0 and 1 (as written by encode_correct).")
    return torch.tensor([c == "1" for c in text], dtype=torch.bool)

"""Saliency maps vs CAMs as seeds for weakly supervised semantic segmentation (issue 11).

The study of Maruf et al., "Beyond Discriminative Regions: Saliency Maps as Alternatives to
CAMs for Weakly Supervised Semantic Segmentation", on the project's offline PASCAL VOC 2012
images, with the project's offline backbone, and with this project's real-time masking model
as a third contender. Protocol and reference numbers: ``shared/papers/README.md``, "Seed 002"
(read from the authors' code, sammarfy/WS3_lib; ResNet-50 on VOC *train*).

Pieces, in the order a run uses them:

* **VOC black box** (:class:`VOCBlackBox`): the frozen EfficientNet-Lite0 backbone (its
  1280-channel head features, stride 32), a 1x1 convolution to the 20 VOC classes *without
  bias* (as the reference's CAM head) and global average pooling. Because the head is linear,
  ``logit = W . GAP(features)``: it is trained in seconds on cached pooled features
  (:func:`train_head`, multi-label soft-margin loss, two views per image: the image at its own
  size and squashed to 224 px). Its multi-label mAP is **cross-fitted** (two folds of images:
  train on one half, score the other). The shipped head is then trained on all images: the maps
  below are computed on the images the head was trained on, as the reference does.
* **Maps** per (image, present class), at image resolution:
  :func:`cam_maps` (relu of the class's 1x1 conv, bilinear upsampling), :func:`gradient_maps`
  (``|d logit_c / d x|``, max over RGB), :func:`crop_saliency` (stochastic crop aggregation)
  and :func:`masker_maps` (the masking model, one forward pass).
* **Pseudo-masks** (:func:`prepare_maps`, :func:`pseudo_mask`): multi-class subtraction
  ``S'_i = relu(S_i - 0.5 sum_{j != i} S_j)``, per-class normalisation
  ``(S - min) / (q99.5 - min)`` clamped to [0, 1], a constant background channel ``t``,
  argmax (ties go to the background, then to the lower class index, as ``np.argmax`` in the
  reference). The same function serves every method.
* **Metrics** (:class:`SegmentationScores`, :func:`mean_iou` ...): one confusion matrix
  over the data set for every ``t`` of a grid at once, from which mIoU (21 classes), FG
  precision, DR and NDR recall and the region-restricted mIoU of the reference's older code.

Stochastic crops. ``n_crops`` boxes are drawn as torchvision's ``RandomResizedCrop`` does
(area fraction in ``crop_scale``, aspect ratio in ``crop_ratio``), cut from the full image and
resized to ``crop_size`` with bilinear interpolation written as two matrix products, so that the
gradient of each crop is carried back into full-image coordinates by the transposed matrices
(exactly what autograd does through the crop and resize). Each crop's gradient is weighted by
``sigmoid(logit_c)`` of that crop ("weighted") or by 1 ("unweighted"). Two orders:

* ``reference`` (**the default**): as the authors' code, the signed, weighted gradients of a
  batch of ``abs_every`` crops (their batch size, 100) are summed in image coordinates, then
  ``abs`` and the max over RGB are taken, and those per-batch maps are summed. It is the default
  because the reference numbers were made this way and the study compares with them.
* ``per-crop``: ``sum_k w_k max_RGB |G_k|``, the abs taken per crop. Gradients of overlapping
  crops cannot cancel, so the map does not depend on how crops are batched; reported beside.

Both orders and both weightings come from the same crops and the same backward pass per class.

DR / NDR. The reference does not publish its discriminative-region maps. Here DR of class c is
the ground-truth region of c where the class's CAM, relu'd and divided by its maximum, is at least
``tau``; NDR is the rest of that ground-truth region. Default ``tau = 0.3``: inside the 0.2-0.5
range the reference suggests and above the whole background-threshold range the reference sweeps
for CAM (0.01-0.19), so DR is the part of the object that the CAM alone labels at any threshold,
and NDR the part where its decision depends on ``t`` or where it misses the object. Because DR is
defined from the CAM itself, the CAM's DR recall is near 100 % by construction; the comparison that
matters is NDR. Results for ``tau`` in 0.2, 0.3, 0.4, 0.5 are kept in the JSON.

Run ``python -m paperlib.experiments.wsss --preset quick|full`` (writes ``figures/wsss.json`` and
``.md`` for the full preset, ``figures/wsss_quick.*`` for the quick one, so that ``make test``
never overwrites the committed full-preset table); ``... wsss train-head`` and ``... wsss
train-masker`` retrain the shipped VOC head and masking model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Public paperlib modules this study builds on (kept together for the package restructuring).
from ..core import _common
from ..core._common import atomic_save, atomic_write_text
from ..core.data import VOC_CLASSES, VOCSegmentation
from ..core.encoders import build_encoder
from ..core.errors import DataNotFoundError, InputError
from ..core.masker import Masker
from ..core.objective import ObjectiveConfig, saliency_objective
from ..core.paths import CHECKPOINT_DIR, FIGURES_DIR, cache_dir
from ..core.serialization import safe_load
from ..core.storage import load_masker, save_masker
from ._loop import masker_optimiser

__all__ = [
    "NUM_CLASSES",
    "IGNORE",
    "BLACK_BOX",
    "HEAD_PATH",
    "MASKER_PATH",
    "REFERENCE",
    "METHODS",
    "WSSSConfig",
    "PRESETS",
    "HeadConfig",
    "MaskerConfig",
    "open_voc",
    "VOCBlackBox",
    "load_voc_black_box",
    "pooled_features",
    "fit_head",
    "average_precision",
    "mean_average_precision",
    "cross_fit_map",
    "train_head",
    "cam_maps",
    "gradient_maps",
    "resize_matrix",
    "sample_crops",
    "crop_image",
    "crop_saliency",
    "masker_maps",
    "compute_maps",
    "subtract_classes",
    "normalise_maps",
    "prepare_maps",
    "pseudo_mask",
    "dr_levels",
    "dr_region",
    "confusion_matrix",
    "iou_per_class",
    "mean_iou",
    "fg_precision",
    "region_recall",
    "region_miou",
    "SegmentationScores",
    "draw_voc_classes",
    "masker_objective",
    "build_voc_masker",
    "train_masker",
    "load_voc_masker",
    "run",
    "to_markdown",
    "write_outputs",
    "hardware",
    "hardware_line",
    "claim_sentence",
    "select_weight_decay",
    "main",
]

NUM_CLASSES = 20
N_LABELS = NUM_CLASSES + 1  # background + 20 classes
IGNORE = 255
BACKBONE = "efficientnet_lite0"
BLACK_BOX = "voc_efficientnet_lite0"
HEAD_PATH: Path = CHECKPOINT_DIR / f"{BLACK_BOX}_classifier.pt"
MASKER_PATH: Path = CHECKPOINT_DIR / f"{BLACK_BOX}.pt"
HEAD_FORMAT = "paperlib-voc-head/1"
MIN_SIDE = 32  # smallest image side the EfficientNet-Lite backbone accepts (its static "same" padding)

#: The reference numbers (ResNet-50 on VOC 2012 train, 1,464 images; shared/papers/README.md,
#: "Seed 002"). Their DR / NDR numbers use the region-restricted mIoU of the code before its 2023
#: fix: compare them with our ``DR mIoU*`` / ``NDR mIoU*`` columns.
REFERENCE: dict[str, Any] = {
    "source": "sammarfy/WS3_lib notebooks, read in shared/papers/README.md section 'Seed 002'",
    "setting": "ResNet-50 (output stride 16) fine-tuned on VOC 2012 train (1,464 images), scored on the same images "
    "against SegmentationClass, single scale, no CRF; crops 224 px, scale (0.05, 0.3)",
    "dr_ndr_formula": "region-restricted mIoU (the code's 'recall' before its 2023 fix)",
    "rows": {
        "cam": {"t": 0.08, "mIoU": 43.7, "FG precision": 56.1, "DR": 88.1, "NDR": 39.9},
        "cam@0.04": {"t": 0.04, "mIoU": 42.9, "NDR": 50.8},
        "crops_w": {"t": 0.04, "mIoU": 43.0, "NDR": 55.7, "n_crops": 200},
        "crops_u": {"t": 0.04, "mIoU": 40.1, "NDR": 55.3, "n_crops": 200},
    },
    "crop_sweep_t0.1": {"100": [39.0, 39.7], "150": [41.5, 41.9], "200": [41.2, 41.7]},
    "seconds_per_image_crops": "about 1 s per image for 100 to 200 crops on a GPU",
}

#: Method keys and their labels, in table order.
METHODS: dict[str, str] = {
    "cam": "CAM",
    "cam_ref": "CAM, reference recipe (/max, no subtraction)",
    "grad": "Gradient |d logit / dx|",
    "crops_w": "Crops, weighted (reference order)",
    "crops_u": "Crops, unweighted (reference order)",
    "crops_w_abs": "Crops, weighted (per-crop abs)",
    "crops_u_abs": "Crops, unweighted (per-crop abs)",
    "masker": "Masking model (one forward pass)",
}

_HOWTO_VOC = (
    "How to get it: online, torchvision.datasets.VOCSegmentation(root, year='2012', image_set='val', download=True) "
    "fetches VOCtrainval_11-May-2012.tar (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/val.txt) from "
    "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/; the SBD augmented masks SegmentationClassAug (Hariharan et al. "
    "2011, e.g. SegmentationClassAug.zip) are optional (SegmentationClass/ is used when they are absent). Put or link "
    "VOCdevkit/VOC2012 as <data root>/voc2012 and set PAPERLIB_DATA to the data root."
)


# =========================================================================== configuration
@dataclass(frozen=True)
class WSSSConfig:
    """What a scoring run does (see :data:`PRESETS`).

    Attributes:
        preset: Name recorded in the outputs.
        limit: Score the first ``limit`` ids of ``val.txt`` (None: all).
        n_crops: Crops per (image, class) for the crop methods (reference: 100 to 200).
        crop_size: Side the crops are resized to (reference: 224).
        crop_scale: Range of a crop's area as a fraction of the image's (reference: 0.05-0.3).
        crop_ratio: Range of a crop's aspect ratio (reference notebook: 0.85-1.25).
        crop_batch: Crops per forward pass (memory only; does not change the maps).
        abs_every: Crops whose signed gradients are summed before abs, reference order (reference: 100).
        crop_counts: Crop counts at which the weighted reference-order map is also scored (mIoU vs N).
        masker_size: Side the image is squashed to for the masking model.
        t_grid: Background thresholds, ascending.
        tau: Default DR threshold on the max-normalised CAM.
        taus: DR thresholds kept in the output (must contain ``tau``).
        subtract: Weight of the multi-class subtraction.
        quantile: Percentile of the per-class normalisation.
        claim_margin: mIoU points within which two methods "match" (the claim check).
        seed: Seed of the crops.
        threads: torch threads for the command line (0: torch's default).
    """

    preset: str = "full"
    limit: Optional[int] = None
    n_crops: int = 32
    crop_size: int = 160
    crop_scale: tuple[float, float] = (0.05, 0.3)
    crop_ratio: tuple[float, float] = (0.85, 1.25)
    crop_batch: int = 16
    abs_every: int = 100
    crop_counts: tuple[int, ...] = (4, 8, 16, 32)
    masker_size: int = 224
    t_grid: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(1, 81))
    tau: float = 0.3
    taus: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5)
    subtract: float = 0.5
    quantile: float = 99.5
    claim_margin: float = 2.0
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if list(self.t_grid) != sorted(self.t_grid) or not self.t_grid:
            raise InputError(f"t_grid must be a non-empty ascending sequence, got {self.t_grid}.")
        if self.tau not in self.taus or list(self.taus) != sorted(self.taus):
            raise InputError(f"taus must be ascending and contain tau={self.tau}, got {self.taus}.")
        if self.n_crops < 1 or any(n < 1 or n > self.n_crops for n in self.crop_counts):
            raise InputError(f"crop_counts {self.crop_counts} must lie in [1, n_crops={self.n_crops}].")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit must be a positive int or None, got {self.limit}.")
        if self.crop_size < MIN_SIDE or self.masker_size < MIN_SIDE:
            raise InputError(f"crop_size and masker_size must be at least {MIN_SIDE} px (the backbone's minimum).")


#: quick: 10 images, 8 crops (``make test``, the notebook); full: all images (500 here), 32 crops.
PRESETS: dict[str, WSSSConfig] = {
    "quick": WSSSConfig(preset="quick", limit=10, n_crops=8, crop_counts=(2, 4, 8)),
    "full": WSSSConfig(preset="full"),
}


def hardware() -> dict[str, Any]:
    """The project's hardware description plus the load average (other jobs share this CPU)."""
    info = _common.hardware()
    try:
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return info


def hardware_line(info: dict[str, Any]) -> str:
    """One line describing :func:`hardware` output."""
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ", no GPU"
    load = f", load average {info['load_average_1min']} at start" if "load_average_1min" in info else ""
    return f"{info['cpu']}, {info['cores']} cores, {info['threads']} torch threads, torch {info['torch']}{gpu}{load}"


def _out_dir(out: str) -> Path:
    """An output folder; relative paths are taken from the repository root."""
    p = Path(out).expanduser()
    return p if p.is_absolute() else CHECKPOINT_DIR.parent.parent / p


# =========================================================================== data
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


# =========================================================================== the VOC black box
class VOCBlackBox(nn.Module):
    """Frozen EfficientNet-Lite0 backbone + 1x1 conv to 20 classes (no bias) + global average pooling.

    Any input size (fully convolutional). ``cam_raw`` gives the class activation maps at stride
    32 before pooling, so ``forward(x) == cam_raw(x).mean((2, 3))`` exactly.

    Shape: (N, 3, H, W) in [0, 1] -> (N, 20) logits.
    """

    name = BLACK_BOX

    def __init__(self, weight: Optional[torch.Tensor] = None, encoder: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else build_encoder(BACKBONE)
        self.head = nn.Conv2d(self.encoder.channels[-1], NUM_CLASSES, 1, bias=False)
        if weight is not None:
            self.head.weight.data.copy_(weight.reshape(self.head.weight.shape))
        else:
            nn.init.zeros_(self.head.weight)
        self.requires_grad_(False)
        self.eval()
        self.meta: dict[str, Any] = {}

    def train(self, mode: bool = True) -> "VOCBlackBox":
        return super().train(False)

    @property
    def weight(self) -> torch.Tensor:
        """The head's weights, (20, 1280)."""
        return self.head.weight.detach().flatten(1)

    min_side = MIN_SIDE

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Deepest backbone features (N, 1280, H/32, W/32)."""
        if min(images.shape[-2:]) < self.min_side and getattr(self.encoder, "name", "").startswith("efficientnet_lite"):
            raise InputError(
                f"Images of {tuple(images.shape[-2:])} px are too small for the {self.encoder.name} backbone: both sides "
                f"must be at least {self.min_side} px (upsample the image, or use a larger crop_size / masker_size)."
            )
        return self.encoder(images)[-1]

    def cam_raw(self, images: torch.Tensor) -> torch.Tensor:
        """Class activation maps before relu, (N, 20, H/32, W/32)."""
        return self.head(self.features(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.cam_raw(images).mean((2, 3))


_BB_CACHE: dict[str, VOCBlackBox] = {}


def load_voc_black_box(path: os.PathLike | str = HEAD_PATH, *, cache: bool = True) -> VOCBlackBox:
    """Load the VOC black box from a head checkpoint (default: the shipped one).

    Raises:
        DataNotFoundError: No checkpoint at ``path`` (the message says how to train one).
        InputError: The file is not a VOC head checkpoint.
    """
    path = Path(path)
    key = str(path.resolve())
    if cache and key in _BB_CACHE:
        return _BB_CACHE[key]
    if not path.is_file():
        raise DataNotFoundError(
            f"VOC head checkpoint not found: looked for {path}. Train it with "
            "`python -m paperlib.experiments.wsss train-head` (about a minute on a CPU)."
        )
    ck = safe_load(path, what="VOC head checkpoint")
    if not isinstance(ck, dict) or ck.get("format") != HEAD_FORMAT:
        raise InputError(f"{path} is not a VOC head checkpoint (format {HEAD_FORMAT!r}).")
    bb = VOCBlackBox(ck["weight"].float())
    bb.meta = dict(ck.get("meta", {}))
    info = path.with_suffix(".json")
    if info.is_file():
        bb.meta = {**json.loads(info.read_text()), **bb.meta}
    if cache:
        _BB_CACHE[key] = bb
    return bb


# =========================================================================== head training
def _resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    shrink = size[0] * size[1] < image.shape[-2] * image.shape[-1]
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=shrink)[0].clamp(0, 1)


#: Views of each image used to train the head: its own size, and squashed to 224 x 224.
HEAD_VIEWS = ("native", "s224")


def pooled_features(
    ds: VOCSegmentation, encoder: Optional[nn.Module] = None, views: Sequence[str] = HEAD_VIEWS, progress: bool = False
) -> dict[str, Any]:
    """Globally pooled backbone features of every image and view, cached in :func:`paths.cache_dir`.

    Returns:
        ``{"X": (V, N, 1280) float, "Y": (N, 20) float multi-hot, "ids": [...], "views": [...], "seconds": float}``.
    """
    key = hashlib.sha1(("\n".join(ds.ids) + "|" + ",".join(views) + "|" + str(ds.root.resolve())).encode()).hexdigest()[:16]
    cache_file = cache_dir() / f"voc-pooled-{BACKBONE}-{key}.pt"
    if cache_file.is_file():
        try:
            return safe_load(cache_file, what="feature cache")
        except Exception:  # unreadable cache: recompute
            pass
    enc = encoder if encoder is not None else build_encoder(BACKBONE)
    X = torch.zeros(len(views), len(ds), enc.channels[-1])
    Y = torch.zeros(len(ds), NUM_CLASSES)
    t0 = time.time()
    for i in range(len(ds)):
        s = ds[i]
        Y[i] = s.labels.float()
        for v, view in enumerate(views):
            x = s.image if view == "native" else _resize_image(s.image, (int(view[1:]), int(view[1:])))
            with torch.no_grad():
                X[v, i] = enc(x[None])[-1].mean((2, 3))[0]
        if progress and (i + 1) % 50 == 0:
            print(f"  features {i + 1}/{len(ds)} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    out = {"X": X, "Y": Y, "ids": list(ds.ids), "views": list(views), "seconds": round(time.time() - t0, 1)}
    atomic_save(out, cache_file)
    return out


def fit_head(
    X: torch.Tensor,
    Y: torch.Tensor,
    *,
    steps: int = 400,
    lr: float = 0.01,
    weight_decay: float = 1e-4,
    log: Optional[list] = None,
) -> torch.Tensor:
    """Train the 1x1-conv head on pooled features: full-batch Adam on the multi-label soft-margin loss.

    Args:
        X: (M, C) pooled features. Y: (M, 20) multi-hot labels.
        weight_decay: L2 penalty ``weight_decay * sum(W^2)`` added to the loss.
        log: If given, one dict per step is appended (``step``, ``loss``, ``data_loss``, ``time``).

    Returns:
        W (20, C); logits are ``X @ W.T`` (no bias, as the reference's CAM head).
    """
    if X.ndim != 2 or Y.shape != (X.shape[0], NUM_CLASSES):
        raise InputError(f"X must be (M, C) and Y (M, {NUM_CLASSES}); got {tuple(X.shape)} and {tuple(Y.shape)}.")
    W = torch.zeros(NUM_CLASSES, X.shape[1], requires_grad=True)
    opt = torch.optim.Adam([W], lr=lr)
    loss_fn = nn.MultiLabelSoftMarginLoss()
    t0 = time.time()
    for step in range(1, steps + 1):
        data_loss = loss_fn(X @ W.T, Y.float())
        loss = data_loss + weight_decay * W.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log is not None:
            log.append({"step": step, "loss": loss.item(), "data_loss": data_loss.item(), "time": round(time.time() - t0, 3)})
    return W.detach()


def average_precision(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Non-interpolated average precision: the mean, over positives, of the precision at their rank.

    Ties in score are broken by putting negatives first (pessimistic). NaN if there is no positive.
    Example: scores (0.9, 0.8, 0.7), labels (1, 0, 1) -> (1/1 + 2/3) / 2 = 0.8333.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if y.sum() == 0:
        return float("nan")
    order = np.lexsort((y, -s))  # by score descending, negatives first within ties
    hits = y[order]
    ranks = np.nonzero(hits)[0] + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def mean_average_precision(scores: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> tuple[float, list[float]]:
    """mAP over the classes that have at least one positive; returns (mAP, per-class AP with NaN for none)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    aps = [average_precision(s[:, c], y[:, c]) for c in range(s.shape[1])]
    return float(np.nanmean(aps)), aps


def _fold_parts(n: int, folds: int, seed: int) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [perm[k::folds] for k in range(folds)]


def _fit_views(X: torch.Tensor, Y: torch.Tensor, idx: torch.Tensor, **fit_kw: Any) -> torch.Tensor:
    """Fit on images ``idx``, every view of them as a training row."""
    return fit_head(X[:, idx].reshape(-1, X.shape[-1]), Y[idx].repeat(X.shape[0], 1), **fit_kw)


def select_weight_decay(
    X: torch.Tensor,
    Y: torch.Tensor,
    idx: torch.Tensor,
    weight_decays: Sequence[float],
    *,
    folds: int = 2,
    seed: int = 0,
    **fit_kw: Any,
) -> tuple[float, dict[str, float]]:
    """Choose the L2 weight by a ``folds``-fold cross-fitted mAP computed on the images ``idx`` only."""
    out = {}
    for wd in weight_decays:
        parts = [idx[p] for p in _fold_parts(len(idx), folds, seed)]
        scores = torch.zeros(len(Y), NUM_CLASSES)
        for k in range(folds):
            train = torch.cat([parts[j] for j in range(folds) if j != k])
            scores[parts[k]] = X[0, parts[k]] @ _fit_views(X, Y, train, weight_decay=wd, **fit_kw).T
        out[str(wd)] = round(100 * mean_average_precision(scores[idx], Y[idx])[0], 2)
    best = max(weight_decays, key=lambda wd: out[str(wd)])
    return best, out


def cross_fit_map(
    features: dict[str, Any],
    *,
    folds: int = 2,
    seed: int = 0,
    weight_decays: Optional[Sequence[float]] = None,
    **fit_kw: Any,
) -> dict[str, Any]:
    """Cross-fitted multi-label mAP: the images are split into ``folds`` parts; each part is scored (on its
    first view, the image at its own size) by a head trained on the other parts (all views).

    With ``weight_decays``, the L2 weight of each outer fold is chosen by an inner cross-fit on that fold's
    training images only (nested), so the mAP stays a held-out number.

    Returns:
        ``{"mAP", "per_class_AP", "folds", "seed", "weight_decay_per_fold", "inner_mAP"}``; mAP in percent.
    """
    X, Y = features["X"], features["Y"]
    n = Y.shape[0]
    if n < folds:
        raise InputError(f"Cross-fitting with {folds} folds needs at least {folds} images, got {n}.")
    parts = _fold_parts(n, folds, seed)
    scores = torch.zeros(n, NUM_CLASSES)
    chosen, inner = [], []
    for k in range(folds):
        test = parts[k]
        train = torch.cat([parts[j] for j in range(folds) if j != k])
        kw = dict(fit_kw)
        if weight_decays:
            wd, table = select_weight_decay(X, Y, train, weight_decays, folds=folds, seed=seed + 1, **fit_kw)
            kw["weight_decay"] = wd
            chosen.append(wd)
            inner.append(table)
        scores[test] = X[0, test] @ _fit_views(X, Y, train, **kw).T
    m, aps = mean_average_precision(scores, Y)
    out = {
        "mAP": round(100 * m, 2),
        "per_class_AP": {c: round(100 * a, 1) for c, a in zip(VOC_CLASSES, aps)},
        "folds": folds,
        "seed": seed,
    }
    if weight_decays:
        out["weight_decay_per_fold"] = chosen
        out["inner_mAP"] = inner
    return out


@dataclass
class HeadConfig:
    """Training of the VOC head (``python -m paperlib.experiments.wsss train-head``)."""

    steps: int = 400
    lr: float = 0.01
    weight_decays: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    folds: int = 2
    seed: int = 0
    limit: Optional[int] = None
    out: str = "paperlib/checkpoints"


def train_head(cfg: HeadConfig | None = None, *, root=None, command: str = "", progress: bool = True) -> Path:
    """Cache pooled features, cross-fit the mAP, train the shipped head on all images, write
    ``<out>/voc_efficientnet_lite0_classifier.{pt,json,log.jsonl}``; returns the ``.pt`` path."""
    cfg = cfg or HeadConfig()
    ds = open_voc(root, cfg.limit)
    t0 = time.time()
    feats = pooled_features(ds, progress=progress)
    t_feat = time.time() - t0
    fit_kw = dict(steps=cfg.steps, lr=cfg.lr)
    t1 = time.time()
    cv = cross_fit_map(feats, folds=cfg.folds, seed=cfg.seed, weight_decays=cfg.weight_decays, **fit_kw)
    t_cv = time.time() - t1
    X, Y = feats["X"], feats["Y"]
    everyone = torch.arange(len(Y))
    wd, wd_table = select_weight_decay(X, Y, everyone, cfg.weight_decays, folds=cfg.folds, seed=cfg.seed + 1, **fit_kw)
    log: list[dict] = []
    t2 = time.time()
    W = _fit_views(X, Y, everyone, weight_decay=wd, log=log, **fit_kw)
    t_fit = time.time() - t2
    train_map, _ = mean_average_precision(X[0] @ W.T, Y)
    out = _out_dir(cfg.out)
    name = f"{BLACK_BOX}_classifier"
    info = {
        "name": name,
        "black_box": BLACK_BOX,
        "architecture": "frozen EfficientNet-Lite0 backbone (1280-channel head features, stride 32) + 1x1 conv to 20 VOC "
        "classes without bias + global average pooling",
        "command": command or "python -m paperlib.experiments.wsss train-head",
        "train_args": shlex.split(command)[3:] if command else ["train-head"],
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "loss": "multi-label soft margin + weight_decay * sum(W^2), full-batch Adam on cached pooled features",
        "weight_decay": wd,
        "weight_decay_selection": {
            "cross_fitted_mAP_by_weight_decay": wd_table,
            "how": f"{cfg.folds}-fold cross-fit on all images; inside the reported cross-fit the "
            "choice is nested (made on each outer fold's training half only)",
        },
        "views": feats["views"],
        "data": f"PASCAL VOC 2012: the first {len(ds)} ids of {ds.split_file or ds.mask_dir} (shared offline copy of val), "
        "image-level labels from image_labels.csv",
        "images": len(ds),
        "cross_fitted_mAP": cv["mAP"],
        "cross_fit": cv,
        "train_mAP": round(100 * train_map, 2),
        "feature_seconds": feats.get("seconds", round(t_feat, 1)),
        "cross_fit_seconds": round(t_cv, 1),
        "fit_seconds": round(t_fit, 1),
        "steps": cfg.steps,
        "hardware": hardware(),
        "notes": "mAP cross-fitted over two folds of images (train on one half, score the other half at the images' "
        "own size); the shipped head is then trained on all images, and the maps of the study are computed on those "
        "same images (as the reference scores pseudo-masks on its classifier's training images).",
    }
    atomic_save(
        {
            "format": HEAD_FORMAT,
            "weight": W.clone(),
            "classes": list(VOC_CLASSES),
            "backbone": BACKBONE,
            "meta": {"cross_fitted_mAP": cv["mAP"]},
        },
        out / f"{name}.pt",
    )
    atomic_write_text("".join(json.dumps(r) + "\n" for r in log), out / f"{name}.log.jsonl")
    atomic_write_text(json.dumps(info, indent=2) + "\n", out / f"{name}.json")
    _BB_CACHE.clear()
    return out / f"{name}.pt"


# =========================================================================== maps
def _check_classes(classes: Sequence[int]) -> list[int]:
    cls = [int(c) for c in classes]
    bad = [c for c in cls if not 0 <= c < NUM_CLASSES]
    if bad:
        raise InputError(f"classes are 0-based VOC class indices in [0, {NUM_CLASSES}), got {bad}.")
    return cls


def _check_image(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"image must be a float tensor (3, H, W) in [0, 1], got {shape}.")


def cam_maps(bb: VOCBlackBox, image: torch.Tensor, classes: Sequence[int], *, all_classes: bool = False) -> torch.Tensor:
    """CAMs relu(W_c . f) upsampled bilinearly to the image size, raw scale (K, H, W).

    With ``all_classes`` every one of the 20 maps is returned (for the DR regions), whatever ``classes``.
    """
    _check_image(image)
    cls = list(range(NUM_CLASSES)) if all_classes else _check_classes(classes)
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
    """Every method's maps for one image and its classes.

    ``timings`` (if given) accumulates, per method, the CPU seconds of this process (``time.process_time``,
    all torch threads; the number that does not depend on other jobs sharing the CPU) under the method's
    key, and the wall-clock seconds under ``<key>_wall``.

    Returns:
        ``{"cam", "grad", "crops_w", "crops_u", "crops_w_abs", "crops_u_abs", "masker": (K, H, W),
        "cam_all": (20, H, W) (all classes, for the DR regions), "sweep": {n: (K, H, W)}}``.
    """
    t = timings if timings is not None else {}
    out: dict[str, Any] = {}

    def clock(key: str, t0: tuple[float, float]) -> None:
        t[key] = t.get(key, 0.0) + time.process_time() - t0[0]
        t[key + "_wall"] = t.get(key + "_wall", 0.0) + time.perf_counter() - t0[1]

    now = lambda: (time.process_time(), time.perf_counter())
    t0 = now()
    out["cam_all"] = cam_maps(bb, image, [], all_classes=True)
    out["cam"] = out["cam_all"][list(classes)] if classes else out["cam_all"][:0]
    clock("cam", t0)
    t0 = now()
    out["grad"] = gradient_maps(bb, image, classes)
    clock("grad", t0)
    t0 = now()
    cr = crop_saliency(
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
    clock("crops", t0)
    out.update({k: cr[k] for k in ("crops_w", "crops_u", "crops_w_abs", "crops_u_abs", "sweep")})
    if masker is not None:
        t0 = now()
        out["masker"] = masker_maps(masker, image, classes, cfg.masker_size)
        clock("masker", t0)
    return out


# =========================================================================== pseudo-masks
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


def normalise_maps(maps: torch.Tensor, quantile: float = 99.5, mode: str = "quantile") -> torch.Tensor:
    """Per-class normalisation to [0, 1].

    ``"quantile"`` (reference, saliency): ``(S - min) / (q - min)`` clamped to [0, 1], q the ``quantile``-th
    percentile ('nearest'). ``"max"`` (reference, CAM): ``S / max`` (maps are assumed >= 0). A map with
    ``q <= min`` (or ``max <= 0``) is constant and becomes all zeros.
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
    return normalise_maps(subtract_classes(maps, subtract), quantile, mode)


def _argmax_labels(prepared: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(best value, its VOC label) per pixel; ties go to the first (lowest) class."""
    k = prepared.argmax(0)
    v = prepared.gather(0, k[None])[0]
    return v, labels[k]


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
    v, lab = _argmax_labels(p, torch.tensor(cls) + 1)
    return torch.where(v > t, lab, torch.zeros_like(lab))


# =========================================================================== DR / NDR and metrics
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


def confusion_matrix(
    pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray, n: int = N_LABELS, ignore: int = IGNORE
) -> np.ndarray:
    """C[i, j] = pixels of true class i predicted j (ignore pixels of ``gt`` skipped), (n, n) int64."""
    p = np.asarray(pred).reshape(-1).astype(np.int64)
    g = np.asarray(gt).reshape(-1).astype(np.int64)
    if p.shape != g.shape:
        raise InputError(f"pred and gt differ in size: {p.shape} vs {g.shape}.")
    keep = g != ignore
    p, g = p[keep], g[keep]
    if len(g) and (g.min() < 0 or g.max() >= n or p.min() < 0 or p.max() >= n):
        raise InputError(f"labels must lie in [0, {n}) (or be {ignore} in gt).")
    return np.bincount(g * n + p, minlength=n * n).reshape(n, n)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU_c = C_cc / (row_c + col_c - C_cc); NaN for a class that is neither present nor predicted."""
    conf = np.asarray(conf, dtype=np.float64)
    d = np.diagonal(conf, axis1=-2, axis2=-1)
    return _div(d, conf.sum(-1) + conf.sum(-2) - d)


def _nanmean(a: np.ndarray, axis: int = -1) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    cnt = (~np.isnan(a)).sum(axis)
    s = np.nansum(a, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)


def mean_iou(conf: np.ndarray) -> float | np.ndarray:
    """Mean IoU over the classes of the matrix (21 for VOC) that are present or predicted."""
    return _nanmean(iou_per_class(conf))


def fg_precision(conf: np.ndarray) -> float | np.ndarray:
    """Mean over object classes 1..20 of C_cc / sum_i C_ic (classes never predicted are skipped)."""
    conf = np.asarray(conf, dtype=np.float64)
    d = np.diagonal(conf, axis1=-2, axis2=-1)[..., 1:]
    return _nanmean(_div(d, conf.sum(-2)[..., 1:]))


def region_recall(conf: np.ndarray) -> float | np.ndarray:
    """Mean over object classes 1..20 of C_cc / sum_j C_cj, for a confusion matrix restricted to a region
    (DR or NDR); classes without pixels in the region are skipped. (The reference code after its 2023 fix.)"""
    conf = np.asarray(conf, dtype=np.float64)
    d = np.diagonal(conf, axis1=-2, axis2=-1)[..., 1:]
    return _nanmean(_div(d, conf.sum(-1)[..., 1:]))


def region_miou(conf: np.ndarray) -> float | np.ndarray:
    """The reference's older "recall": the mIoU over all 21 classes of a region-restricted confusion matrix
    (background has no true pixels there, so its IoU is 0 whenever some region pixel is predicted
    background, and it is skipped otherwise)."""
    return mean_iou(conf)


class SegmentationScores:
    """Confusion matrices over a data set for every background threshold of a grid, and every DR threshold.

    ``update`` takes one image's *prepared* maps (normalised, one per present class); pixel counts go
    into a histogram over (DR level, true label, best class, threshold bin), from which the confusion
    matrix at every ``t`` follows exactly: a pixel is its best class at ``t`` iff its score is > t.
    """

    def __init__(self, t_grid: Sequence[float], taus: Sequence[float] = (0.3,)) -> None:
        self.t = np.asarray(t_grid, dtype=np.float64)
        self.taus = tuple(taus)
        self.shape = (len(self.taus) + 1, N_LABELS, N_LABELS, len(self.t) + 1)
        self.hist = np.zeros(self.shape, dtype=np.int64)
        self.images = 0
        self._t32 = torch.tensor(self.t, dtype=torch.float32)

    def update(self, prepared: torch.Tensor, classes: Sequence[int], gt: torch.Tensor, levels: torch.Tensor) -> None:
        """Add one image: ``prepared`` (K, H, W) normalised maps of ``classes`` (0-based), ``gt`` (H, W),
        ``levels`` from :func:`dr_levels` with this object's ``taus``."""
        gt = gt.long()
        valid = gt != IGNORE
        if not bool(valid.any()):
            return
        if len(classes):
            v, lab = _argmax_labels(prepared.float(), torch.tensor(list(classes)) + 1)
            b = torch.searchsorted(self._t32, v.contiguous(), right=False)  # number of thresholds t < v
        else:
            lab = torch.zeros_like(gt)
            b = torch.zeros_like(gt)
        L, n, _, nb = self.shape
        idx = ((levels[valid] * n + gt[valid]) * n + lab[valid]) * nb + b[valid]
        self.hist += torch.bincount(idx.flatten(), minlength=L * n * n * nb).view(self.shape).numpy()
        self.images += 1

    def confusions(self, region: Optional[str] = None, tau: Optional[float] = None) -> np.ndarray:
        """(T, 21, 21) confusion matrices, one per threshold; ``region`` None (all pixels), "DR" or "NDR" (at ``tau``)."""
        h = self.hist
        if region is not None:
            j = self.taus.index(self.taus[0] if tau is None else tau)
            lev = np.arange(h.shape[0])
            sel = lev > j if region == "DR" else lev <= j
            if region not in ("DR", "NDR"):
                raise InputError(f"region must be None, 'DR' or 'NDR', got {region!r}.")
            h = h[sel]
            if region == "NDR":  # level 0 also holds background / ignore rows: keep object rows only
                h = h.copy()
                h[:, 0] = 0
        h = h.sum(0)  # (21, 21, T + 1)
        le = np.cumsum(h, axis=-1)[..., :-1]  # pixels with bin <= i, i.e. score <= t_i -> background
        total = h.sum(-1, keepdims=True)
        C = np.moveaxis(total - le, -1, 0).copy()  # (T, 21, 21): predicted as their best class
        C[:, :, 0] = np.moveaxis(le.sum(1), -1, 0) + np.moveaxis(total[:, 0] - le[:, 0], -1, 0)
        return C

    def curves(self, tau: Optional[float] = None) -> dict[str, np.ndarray]:
        """Metrics against t (percent): mIoU, FG precision, DR / NDR recall and the region-restricted mIoU."""
        tau = self.taus[0] if tau is None else tau
        C, D, N = self.confusions(), self.confusions("DR", tau), self.confusions("NDR", tau)
        return {
            "t": self.t.copy(),
            "mIoU": 100 * mean_iou(C),
            "FG precision": 100 * fg_precision(C),
            "DR recall": 100 * region_recall(D),
            "NDR recall": 100 * region_recall(N),
            "DR mIoU*": 100 * region_miou(D),
            "NDR mIoU*": 100 * region_miou(N),
        }


# =========================================================================== the masking model on VOC
@dataclass
class MaskerConfig:
    """Training of the VOC masking model (``python -m paperlib.experiments.wsss train-masker``).

    Defaults: the shipped ImageNet Lite0 masker's decoder (widths 256/128/64, 1 bottleneck, output gate) as
    the starting point, its objective weights (l2 = 2 with AV = mean(M), selector loss 1), f_c = sigmoid.
    ``black_box_size``: side of the images the black box sees in the objective's two passes (images and masks
    are resized to it; 0 = ``image_size``), to make a step cheaper on a CPU.
    """

    steps: int = 250
    batch_size: int = 8
    lr: float = 5e-4
    image_size: int = 224
    black_box_size: int = 160
    crop_scale: tuple[float, float] = (0.6, 1.0)
    fake_prob: float = 0.3
    widths: tuple[int, ...] = (256, 128, 64)
    blocks: int = 1
    output_gate: bool = True
    init_from: Optional[str] = "efficientnet_lite0"
    gate_lr_mult: float = 30.0
    l0: float = 1.0
    l1: float = 10.0
    l2: float = 2.0
    l3: float = 5.0
    l4: float = 0.3
    area_power: float = 1.0
    area_eps: float = 0.0
    selector_weight: float = 1.0
    seed: int = 0
    threads: int = 1
    limit: Optional[int] = None
    head: str = str(HEAD_PATH)
    out: str = "paperlib/checkpoints"


def draw_voc_classes(labels: torch.Tensor, fake_prob: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One class per image: with probability ``fake_prob`` a class *absent* from the image (a fake label),
    else one of its present classes, uniformly. Images with no class get a fake label; images with all
    20 get a real one.

    Args:
        labels: (B, 20) multi-hot.

    Returns:
        (classes (B,) long, is_real (B,) bool).
    """
    B = labels.shape[0]
    fake = torch.rand(B, generator=generator) < fake_prob
    classes = torch.zeros(B, dtype=torch.long)
    for i in range(B):
        present = torch.nonzero(labels[i]).flatten()
        absent = torch.nonzero(labels[i] == 0).flatten()
        use_fake = (bool(fake[i]) and len(absent) > 0) or len(present) == 0
        pool = absent if use_fake else present
        classes[i] = pool[int(torch.randint(len(pool), (1,), generator=generator))]
        fake[i] = use_fake
    return classes, ~fake


def masker_objective(
    bb: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    classes: torch.Tensor,
    is_real: torch.Tensor,
    *,
    masks_low: torch.Tensor,
    gate: Optional[torch.Tensor],
    cfg: MaskerConfig,
    generator: Optional[torch.Generator] = None,
) -> dict[str, torch.Tensor]:
    """Eq. 4 of the paper with f_c = sigmoid(logit_c) (multi-label black box), per sample.

    ``total = l2 AV + real * (l1 TV - l0 log f_c(Phi(X, M)) + l3 f_c(Phi(X, 1 - M))^l4) + w_sel * selector``;
    fake labels keep only the area (and selector) terms, so the mask of an absent class shrinks to nothing.
    It is :func:`paperlib.core.objective.saliency_objective` with the weights of ``cfg`` and ``multi_label``.
    """
    config = ObjectiveConfig(
        l0=cfg.l0, l1=cfg.l1, l2=cfg.l2, l3=cfg.l3, l4=cfg.l4, area_power=cfg.area_power, area_eps=cfg.area_eps,
        selector_weight=cfg.selector_weight,
    )  # fmt: skip
    return saliency_objective(
        bb, images, masks, classes, is_real=is_real, masks_low=masks_low, gate=gate, config=config, generator=generator,
        multi_label=True,
    )  # fmt: skip


def build_voc_masker(
    head_weight: Optional[torch.Tensor] = None,
    *,
    widths: Sequence[int] = (256, 128, 64),
    blocks: int = 1,
    output_gate: bool = True,
    init_from: Optional[str] = None,
) -> Masker:
    """A 20-class masking model on the Lite0 encoder, for the VOC black box.

    Args:
        head_weight: (20, 1280) VOC head weights: the class embedding starts from them (so the feature
            filter's gate starts as sigmoid of the class's CAM), biases at 0.
        init_from: A shipped ImageNet masker (e.g. ``"efficientnet_lite0"``) whose decoder and gate scale /
            offset start this one (its architecture must match).
    """
    masker = Masker(
        build_encoder(BACKBONE),
        NUM_CLASSES,
        black_box=BLACK_BOX,
        dataset="voc",
        widths=list(widths),
        blocks=blocks,
        output_gate=output_gate,
    )
    if init_from:
        src = load_masker(init_from)
        state = {k: v for k, v in src.trainable_state_dict().items() if k not in ("filter.embedding.weight", "filter.bias")}
        mine = masker.trainable_state_dict()
        bad = [k for k, v in state.items() if k not in mine or mine[k].shape != v.shape]
        if bad:
            raise InputError(f"init_from={init_from!r} does not match the decoder {widths}/{blocks}: {bad[:3]}.")
        masker.load_state_dict(state, strict=False)
    if head_weight is not None:
        with torch.no_grad():
            masker.filter.embedding.weight.copy_(head_weight)
            masker.filter.bias.zero_()
    return masker


def load_voc_masker(path: os.PathLike | str = MASKER_PATH) -> Masker:
    """Load the VOC masking model (default: the shipped one), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"VOC masking model not found: looked for {path}. Train it with "
            "`python -m paperlib.experiments.wsss train-masker` (needs the VOC head; minutes on a CPU)."
        )
    ck = safe_load(path, what="VOC masking model")
    cfg = ck.get("config", {}) if isinstance(ck, dict) else {}
    if cfg.get("black_box") != BLACK_BOX or cfg.get("num_classes") != NUM_CLASSES:
        raise InputError(f"{path} is not a masking model for {BLACK_BOX} (config {cfg}).")
    masker = build_voc_masker(widths=cfg["widths"], blocks=cfg["blocks"], output_gate=cfg.get("output_gate", False))
    state = {k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    missing, unexpected = masker.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise InputError(f"{path} does not fit the architecture: missing {missing[:3]}, unexpected {unexpected[:3]}.")
    masker.meta = dict(ck.get("meta", {}))
    info = path.with_suffix(".json")
    if info.is_file():
        masker.meta = {**json.loads(info.read_text()), **masker.meta}
    return masker.eval()


def _training_images(ds: VOCSegmentation, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All images squashed to side x side (uint8) and their labels (N, 20)."""
    imgs = torch.zeros(len(ds), 3, side, side, dtype=torch.uint8)
    labels = torch.zeros(len(ds), NUM_CLASSES)
    for i in range(len(ds)):
        s = ds[i]
        imgs[i] = (_resize_image(s.image, (side, side)) * 255).round().to(torch.uint8)
        labels[i] = s.labels.float()
    return imgs, labels


def _voc_batch(imgs: torch.Tensor, side: int, cfg: MaskerConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch: random crops of area ``crop_scale`` squashed to ``image_size``, random flips.

    Returns:
        Images (B, 3, S, S) in [0, 1] and the indices of the images drawn.
    """
    idx = torch.randint(len(imgs), (cfg.batch_size,), generator=gen)
    batch = []
    for i in idx.tolist():
        box = sample_crops(side, side, 1, cfg.crop_scale, (3 / 4, 4 / 3), gen)[0]
        x = crop_image(imgs[i].float() / 255, box, cfg.image_size)
        if bool(torch.rand(1, generator=gen) < 0.5):
            x = x.flip(-1)
        batch.append(x.clamp(0, 1))
    return torch.stack(batch), idx


def _black_box_side(images: torch.Tensor, masks: torch.Tensor, cfg: MaskerConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and masks at ``black_box_size`` (unchanged when it is 0 or the training side)."""
    if not cfg.black_box_size or cfg.black_box_size == cfg.image_size:
        return images, masks
    side = (cfg.black_box_size,) * 2
    seen = F.interpolate(images, size=side, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return seen, F.interpolate(masks, size=side, mode="bilinear", align_corners=False)


def _step_record(step: int, t0: float, loss: torch.Tensor, lr: float, terms: dict, outp: Any) -> dict[str, Any]:
    """The log record of one step: loss, the objective's terms and the mask's area and gate (real / fake labels)."""
    real = terms["is_real"]
    mean_real = lambda v: float(v.detach()[real].mean()) if real.any() else float("nan")
    return {
        "step": step,
        "time": round(time.time() - t0, 2),
        "lr": lr,
        "loss": loss.item(),
        **{k: mean_real(terms[k]) for k in ("tv", "preserve", "destroy", "p_preserve", "p_destroy")},
        "area_real": mean_real(outp.mask_low.flatten(1).mean(1)),
        "area_fake": float(outp.mask_low.detach()[~real].mean()) if (~real).any() else float("nan"),
        "gate_real": mean_real(outp.gate.flatten(1).amax(1)),
        "gate_fake": float(outp.gate.detach().flatten(1).amax(1)[~real].mean()) if (~real).any() else float("nan"),
    }


def train_masker(cfg: MaskerConfig | None = None, *, root=None, command: str = "", progress: bool = True) -> Path:
    """Train the VOC masking model against the VOC black box; writes ``<out>/voc_efficientnet_lite0.{pt,json,log.jsonl}``.

    Each step: a batch of images (random crop of area ``crop_scale`` of the image, squashed to
    ``image_size``, random flip), one class per image from :func:`draw_voc_classes` (fake labels drawn
    from the classes absent from the image), the objective :func:`masker_objective`, Adam.
    """
    cfg = cfg or MaskerConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    ds = open_voc(root, cfg.limit)
    bb = load_voc_black_box(cfg.head, cache=False)
    masker = build_voc_masker(
        bb.weight, widths=cfg.widths, blocks=cfg.blocks, output_gate=cfg.output_gate, init_from=cfg.init_from
    )
    side = int(round(cfg.image_size * 256 / 224))
    imgs, labels = _training_images(ds, side)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    opt, sched = masker_optimiser(masker, cfg.lr, cfg.gate_lr_mult, cfg.steps)
    masker.train()
    log: list[dict] = []
    t0, c0 = time.time(), time.process_time()
    for step in range(1, cfg.steps + 1):
        images, idx = _voc_batch(imgs, side, cfg, gen)
        classes, is_real = draw_voc_classes(labels[idx], cfg.fake_prob, gen)
        outp = masker(images, classes, return_aux=True)
        seen, seen_masks = _black_box_side(images, outp.mask, cfg)
        terms = masker_objective(
            bb, seen, seen_masks, classes, is_real, masks_low=outp.mask_low, gate=outp.gate, cfg=cfg, generator=gen
        )
        loss = terms["total"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        rec = _step_record(step, t0, loss, sched.get_last_lr()[0], terms, outp)
        log.append(rec)
        if progress and (step % 10 == 0 or step == 1):
            print(
                f"  step {step}/{cfg.steps} loss {rec['loss']:.3f} p_keep {rec['p_preserve']:.2f} area {rec['area_real']:.2f} "
                f"fake {rec['area_fake']:.2f} ({rec['time']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    masker.eval()
    return _save_voc_masker(masker, cfg, log, ds, command, time.time() - t0, time.process_time() - c0)


def _save_voc_masker(
    masker: nn.Module, cfg: MaskerConfig, log: list[dict], ds: Any, command: str, seconds: float, cpu_seconds: float
) -> Path:
    """Write the trained VOC masker (fp16), its log and its JSON record into ``cfg.out``; returns the ``.pt`` path."""
    out = _out_dir(cfg.out)
    tail = log[-50:]
    mean = lambda k: round(float(np.nanmean([r[k] for r in tail])), 4)
    info = {
        "name": BLACK_BOX,
        "black_box": BLACK_BOX,
        "command": command or "python -m paperlib.experiments.wsss train-masker",
        "train_args": shlex.split(command)[3:] if command else ["train-masker"],
        "train_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "masker_config": masker.config,
        "steps": cfg.steps,
        "train_seconds": round(seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "last50": {
            k: mean(k) for k in ("loss", "preserve", "destroy", "tv", "p_preserve", "p_destroy", "area_real", "area_fake")
        },
        "hardware": hardware(),
        "weights": "fp16",
        "data": f"PASCAL VOC 2012: the first {len(ds)} ids of {ds.split_file or ds.mask_dir} (shared offline copy of val); "
        "the masking model is scored on these same images (its own training images)",
        "notes": "f_c = sigmoid(logit_c) of the VOC black box; fake labels drawn among the classes absent from the image "
        f"(probability {cfg.fake_prob}); decoder started from the shipped ImageNet masker {cfg.init_from!r}, class "
        "embedding from the VOC head's weights.",
    }
    save_masker(masker, out / f"{BLACK_BOX}.pt", half=True, meta={"steps": cfg.steps})
    atomic_write_text("".join(json.dumps(r) + "\n" for r in log), out / f"{BLACK_BOX}.log.jsonl")
    atomic_write_text(json.dumps(info, indent=2) + "\n", out / f"{BLACK_BOX}.json")
    return out / f"{BLACK_BOX}.pt"


# =========================================================================== the study
def _method_keys(cfg: WSSSConfig, with_masker: bool) -> list[str]:
    keys = [k for k in METHODS if with_masker or k != "masker"]
    return keys + [f"crops_w@{n}" for n in cfg.crop_counts]


def _summary(scores: SegmentationScores, cfg: WSSSConfig) -> dict[str, Any]:
    """Metrics at the best t (max mIoU) and at the reference's thresholds, for every tau."""
    cur = scores.curves(cfg.tau)
    miou = np.nan_to_num(cur["mIoU"], nan=-1.0)
    i = int(np.argmax(miou))

    def at(j: int) -> dict[str, Any]:
        row = {k: round(float(v[j]), 2) for k, v in cur.items() if k != "t"}
        row["t"] = round(float(cur["t"][j]), 3)
        row["by_tau"] = {
            str(tau): {
                "DR recall": round(float(100 * region_recall(scores.confusions("DR", tau)[j])), 2),
                "NDR recall": round(float(100 * region_recall(scores.confusions("NDR", tau)[j])), 2),
                "DR mIoU*": round(float(100 * region_miou(scores.confusions("DR", tau)[j])), 2),
                "NDR mIoU*": round(float(100 * region_miou(scores.confusions("NDR", tau)[j])), 2),
            }
            for tau in cfg.taus
        }
        return row

    fixed = {}
    for t in (0.04, 0.08, 0.1):
        j = np.nonzero(np.isclose(cur["t"], t))[0]
        if len(j):
            fixed[str(t)] = at(int(j[0]))
    return {"best": at(i), "at_t": fixed, "curves": {k: [round(float(x), 3) for x in v] for k, v in cur.items()}}


@dataclass
class _Progress:
    """What a :func:`run` has accumulated so far (and what its resume file keeps)."""

    scores: dict[str, "SegmentationScores"]
    gen: torch.Generator
    timings: dict[str, float] = field(default_factory=dict)
    n_maps: int = 0
    skipped_ignore: list = field(default_factory=list)
    no_label: list = field(default_factory=list)
    start: int = 0
    elapsed_before: float = 0.0

    def state(self, ident: dict, next_i: int, elapsed: float) -> dict[str, Any]:
        """The resume file's content after the images before ``next_i``."""
        return {
            "ident": json.loads(json.dumps(ident)),
            "next": next_i,
            "elapsed": self.elapsed_before + elapsed,
            "hist": {k: s.hist for k, s in self.scores.items()},
            "images": {k: s.images for k, s in self.scores.items()},
            "timings": self.timings,
            "n_maps": self.n_maps,
            "skipped": self.skipped_ignore,
            "no_label": self.no_label,
            "generator": self.gen.get_state(),
        }

    def restore(self, st: dict[str, Any]) -> None:
        """Continue from a resume file's content (see :meth:`state`)."""
        self.start, self.elapsed_before = st["next"], st["elapsed"]
        for k, sc in self.scores.items():  # saved as tensors (plain data, see core.serialization): back to NumPy
            sc.hist, sc.images = _numpy(st["hist"][k]), st["images"][k]
        self.timings, self.n_maps, self.skipped_ignore, self.no_label = st["timings"], st["n_maps"], st["skipped"], st["no_label"]
        self.gen.set_state(st["generator"])


def _numpy(x: Any) -> Any:
    return x.numpy() if isinstance(x, torch.Tensor) else x


def _prepared(k: str, maps: dict[str, Any], classes: list[int], cfg: WSSSConfig) -> torch.Tensor:
    """Method ``k``'s maps of one image as pseudo-mask scores (:func:`prepare_maps`)."""
    if k.startswith("crops_w@"):
        raw = maps["sweep"][int(k.split("@")[1])] if classes else maps["cam"]
    else:
        raw = maps["cam" if k == "cam_ref" else k]
    if k == "cam_ref":
        return prepare_maps(raw, subtract=0.0, mode="max")
    return prepare_maps(raw, subtract=cfg.subtract, quantile=cfg.quantile)


def _score_image(ds: Any, i: int, prog: _Progress, bb: nn.Module, mk: Any, cfg: WSSSConfig) -> Optional[tuple]:
    """Compute and score every method's maps of image ``i``; returns (image_id, image, gt, classes, maps) or None."""
    image, gt, classes, image_id = _sample(ds, i)
    if not bool((gt != IGNORE).any()):
        prog.skipped_ignore.append(image_id)
        return None
    if not classes:
        prog.no_label.append(image_id)
    maps = compute_maps(image, classes, bb=bb, masker=mk, cfg=cfg, generator=prog.gen, timings=prog.timings)
    prog.n_maps += len(classes)
    levels = dr_levels(gt, maps["cam_all"], cfg.taus)
    for k, sc in prog.scores.items():
        sc.update(_prepared(k, maps, classes, cfg), classes, gt, levels)
    return image_id, image, gt, classes, maps


def _table_rows(summary: dict[str, Any], keys: Sequence[str], cfg: WSSSConfig, seconds_per_map: dict) -> tuple[list, list]:
    """The main table's rows (best threshold of each method) and the crop-count sweep."""
    rows = []
    for k in keys:
        if "@" in k:
            continue
        b = summary[k]["best"]
        rows.append(
            {
                "key": k,
                "method": METHODS[k],
                "t": b["t"],
                **{m: b[m] for m in ("mIoU", "FG precision", "DR recall", "NDR recall", "DR mIoU*", "NDR mIoU*")},
                "s/map": seconds_per_map.get(k),
            }
        )
    sweep = []
    for n in cfg.crop_counts:
        s = summary[f"crops_w@{n}"]
        sweep.append(
            {
                "n_crops": n,
                "best t": s["best"]["t"],
                "mIoU (best t)": s["best"]["mIoU"],
                "mIoU (t = 0.1)": s["at_t"].get("0.1", {}).get("mIoU"),
                "NDR recall (best t)": s["best"]["NDR recall"],
            }
        )
    return rows, sweep


def _per_map_by_method(timings: dict[str, float], n_maps: int, suffix: str) -> dict[str, Optional[float]]:
    """Seconds per map of each method (``suffix`` ``""``: CPU, ``"_wall"``: wall clock)."""
    per_map = {k: round(v / max(n_maps, 1), 4) for k, v in timings.items()}
    return {
        k: per_map.get(k.split("_")[0] + suffix if k.startswith("crops") else ("cam" if k == "cam_ref" else k) + suffix)
        for k in METHODS
    }


def _open_progress(
    cfg: WSSSConfig, keys: list[str], ident: dict, state_file: Optional[Path], n: int, progress: bool
) -> _Progress:
    """A fresh :class:`_Progress`, or the one in ``state_file`` when it belongs to the same run."""
    prog = _Progress(
        scores={k: SegmentationScores(cfg.t_grid, cfg.taus) for k in keys}, gen=torch.Generator().manual_seed(cfg.seed)
    )
    if state_file is not None and state_file.is_file():
        st = safe_load(state_file, what="WSSS study state")
        if st.get("ident") == json.loads(json.dumps(ident)):
            prog.restore(st)
            if progress:
                print(f"  resuming from {state_file} at image {prog.start + 1}/{n}", file=sys.stderr, flush=True)
    return prog


def run(
    cfg: WSSSConfig = PRESETS["quick"],
    *,
    root=None,
    head: os.PathLike | str = HEAD_PATH,
    masker: os.PathLike | str | None = MASKER_PATH,
    progress: bool = False,
    keep_maps: Sequence[int] = (),
    resume: Optional[os.PathLike | str] = None,
    resume_every: int = 10,
) -> dict[str, Any]:
    """Score every method on the VOC images of ``cfg`` and return the result (also what :func:`write_outputs` writes).

    Args:
        cfg: Preset (see :data:`PRESETS`).
        root: Data root (default ``$PAPERLIB_DATA``).
        head: VOC head checkpoint. masker: VOC masking model checkpoint (None: leave the masker out).
        keep_maps: Indices (into the scored images) whose maps, image and mask are returned under ``"maps"``.
        resume: A state file: written atomically every ``resume_every`` images; if it exists and belongs to the
            same configuration, data, head and masker, the run continues from it (a killed run loses at most
            ``resume_every`` images). Deleted at the end.

    Images whose mask is all ignore pixels are counted and skipped (nothing to score); an image without
    any class label is scored with an all-background pseudo-mask.
    """
    t_start = time.time()
    ds = open_voc(root, cfg.limit)
    bb = load_voc_black_box(head)
    mk = load_voc_masker(masker) if masker is not None else None
    keys = _method_keys(cfg, mk is not None)
    ident = {"config": asdict(cfg), "ids": list(ds.ids), "head": str(head), "masker": str(masker), "keys": keys}
    state_file = Path(resume) if resume else None
    prog = _open_progress(cfg, keys, ident, state_file, len(ds), progress)
    kept: dict[str, Any] = {}
    for i in range(prog.start, len(ds)):
        done = _score_image(ds, i, prog, bb, mk, cfg)
        if done is not None and i in keep_maps:
            image_id, image, gt, classes, maps = done
            kept[image_id] = {"image": image, "gt": gt, "classes": classes, **{k: v for k, v in maps.items() if k != "sweep"}}
        if state_file is not None and (i + 1) % resume_every == 0 and i + 1 < len(ds):
            atomic_save(prog.state(ident, i + 1, time.time() - t_start), state_file)
        if progress and (i + 1) % 10 == 0:
            cpu = sum(v for k, v in prog.timings.items() if not k.endswith("_wall"))
            print(
                f"  {i + 1}/{len(ds)} images, {time.time() - t_start:.0f} s wall, {cpu:.0f} s CPU in the maps",
                file=sys.stderr,
                flush=True,
            )
    if not any(s.images for s in prog.scores.values()):
        raise InputError(f"None of the {len(ds)} VOC images has a scorable pixel (all masks are ignore pixels).")
    result = _result(cfg, ds, bb, mk, head, masker, keys, prog)
    result["seconds"] = round(prog.elapsed_before + time.time() - t_start, 1)
    result["resumed_at_image"] = prog.start or None
    if state_file is not None and state_file.is_file():
        state_file.unlink()
    if keep_maps:
        result["maps"] = kept
    return result


def _result(
    cfg: WSSSConfig, ds: Any, bb: nn.Module, mk: Any, head: Any, masker: Any, keys: list[str], prog: _Progress
) -> dict[str, Any]:
    """The JSON result of :func:`run` from what it accumulated (without the run time)."""
    summary = {k: _summary(s, cfg) for k, s in prog.scores.items()}
    seconds_per_map = _per_map_by_method(prog.timings, prog.n_maps, "")
    rows, sweep = _table_rows(summary, keys, cfg, seconds_per_map)
    return {
        "table": "wsss" if cfg.preset == "full" else f"wsss_{cfg.preset}",
        "title": f"Saliency maps vs CAMs for weakly supervised segmentation (Maruf et al.), VOC black box {BLACK_BOX}",
        "preset": cfg.preset,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "data": f"PASCAL VOC 2012 val, the first {len(ds)} ids of {ds.split_file or ds.mask_dir} (the shared offline copy), "
        f"masks {ds.mask_dir.name}; maps for the image-level labels of each image",
        "images": len(ds),
        "images_scored": len(ds) - len(prog.skipped_ignore),
        "maps_per_method": prog.n_maps,
        "skipped_all_ignore": prog.skipped_ignore,
        "no_class_label": prog.no_label,
        "black_box": {
            "name": BLACK_BOX,
            "cross_fitted_mAP": bb.meta.get("cross_fitted_mAP"),
            "train_mAP": bb.meta.get("train_mAP"),
            "head": str(Path(head).name),
        },
        "masker": None
        if mk is None
        else {
            "name": Path(masker).name,
            "train_seconds": mk.meta.get("train_seconds"),
            "steps": mk.meta.get("steps"),
            "scored_on_training_images": True,
        },
        "rows": rows,
        "crop_sweep": sweep,
        "claim": _claim({r["key"]: r for r in rows}, cfg),
        "methods": summary,
        "seconds_per_map": seconds_per_map,
        "seconds_per_map_note": "CPU seconds of the process per (image, class) map (time.process_time, "
        f"{torch.get_num_threads()} torch thread(s)); CAM and gradient include their forward pass, crops all crops",
        "wall_seconds_per_map": _per_map_by_method(prog.timings, prog.n_maps, "_wall"),
        "seconds_total": {k: round(v, 1) for k, v in prog.timings.items()},
        "hardware": hardware(),
        "reference": REFERENCE,
    }


def _claim(by: dict[str, dict], cfg: WSSSConfig) -> dict[str, Any]:
    """The study's claim on these numbers: crops (weighted) match CAM on mIoU (within ``claim_margin``
    points) and recover more of the NDR (higher NDR recall), each at its best t."""
    cam, crops = by["cam"], by["crops_w"]
    d_miou = round(crops["mIoU"] - cam["mIoU"], 2)
    d_ndr = round(crops["NDR recall"] - cam["NDR recall"], 2)
    matches = abs(d_miou) <= cfg.claim_margin
    more_ndr = d_ndr > 0
    out = {
        "mIoU crops_w - cam": d_miou,
        "NDR recall crops_w - cam": d_ndr,
        "NDR mIoU* crops_w - cam": round(crops["NDR mIoU*"] - cam["NDR mIoU*"], 2),
        "margin": cfg.claim_margin,
        "matches_on_mIoU": bool(matches),
        "higher_NDR_recall": bool(more_ndr),
        "holds": bool(matches and more_ndr),
    }
    if "masker" in by:
        out["mIoU masker - cam"] = round(by["masker"]["mIoU"] - cam["mIoU"], 2)
        out["NDR recall masker - cam"] = round(by["masker"]["NDR recall"] - cam["NDR recall"], 2)
    return out


def claim_sentence(result: dict[str, Any]) -> str:
    """One paragraph stating the outcome of the claim, from the computed numbers."""
    c = result["claim"]
    by = {r["key"]: r for r in result["rows"]}
    cam, cw = by["cam"], by["crops_w"]
    verdict = "holds" if c["holds"] else "does not hold"
    parts = [
        f"On {result['images_scored']} VOC images ({result['preset']} preset, {result['config']['n_crops']} crops), "
        f"the claim {verdict}: weighted crops reach mIoU {cw['mIoU']:.1f} at t = {cw['t']:.2f} against CAM's "
        f"{cam['mIoU']:.1f} at t = {cam['t']:.2f} (difference {c['mIoU crops_w - cam']:+.1f} points, "
        f"{'within' if c['matches_on_mIoU'] else 'outside'} the {c['margin']:.0f}-point margin), and NDR recall "
        f"{cw['NDR recall']:.1f} against {cam['NDR recall']:.1f} ({c['NDR recall crops_w - cam']:+.1f}; "
        f"{'higher' if c['higher_NDR_recall'] else 'not higher'})."
    ]
    if "masker" in by:
        m = by["masker"]
        parts.append(
            f" The masking model gives mIoU {m['mIoU']:.1f} (t = {m['t']:.2f}) and NDR recall {m['NDR recall']:.1f} "
            f"in one forward pass per image."
        )
    return "".join(parts)


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def to_markdown(result: dict[str, Any]) -> str:
    """The table (ours beside the reference), the crop sweep, the claim, preset, data and hardware."""
    return "\n".join(_md_main_table(result) + _md_reference_thresholds(result) + _md_notes(result)) + "\n"


def _md_main_table(result: dict[str, Any]) -> list[str]:
    """The main table: every method, ours beside the reference."""
    ref = REFERENCE["rows"]
    lines = [f"### {result['title']}", ""]
    lines += [
        "| method | best t | mIoU | FG prec. | DR recall | NDR recall | DR mIoU* | NDR mIoU* | s / map "
        "| ref. t | ref. mIoU | ref. FG prec. | ref. DR* | ref. NDR* |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        rr = ref.get(r["key"], {})
        lines.append(
            f"| {r['method']} | {r['t']:.2f} | {_fmt(r['mIoU'])} | {_fmt(r['FG precision'])} | {_fmt(r['DR recall'])} "
            f"| {_fmt(r['NDR recall'])} | {_fmt(r['DR mIoU*'])} | {_fmt(r['NDR mIoU*'])} | {_fmt(r['s/map'], 3)} "
            f"| {_fmt(rr.get('t'), 2)} | {_fmt(rr.get('mIoU'))} | {_fmt(rr.get('FG precision'))} | {_fmt(rr.get('DR'))} "
            f"| {_fmt(rr.get('NDR'))} |"
        )
    return lines


def _md_reference_thresholds(result: dict[str, Any]) -> list[str]:
    """Our numbers at the reference's own thresholds, and the crop-count sweep."""
    ref = REFERENCE["rows"]
    lines: list[str] = []
    m = result["methods"]
    lines += ["", "At the reference's thresholds (ours vs reference, mIoU / NDR mIoU*):", ""]
    lines += [
        "| method | t | mIoU (ours) | NDR mIoU* (ours) | NDR recall (ours) | mIoU (ref.) | NDR* (ref.) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, rk in (("cam", "cam"), ("cam", "cam@0.04"), ("crops_w", "crops_w"), ("crops_u", "crops_u")):
        rr = ref[rk]
        ours = m[key]["at_t"].get(str(rr["t"]))
        if ours:
            lines.append(
                f"| {METHODS[key]} | {rr['t']:.2f} | {_fmt(ours['mIoU'])} | {_fmt(ours['NDR mIoU*'])} "
                f"| {_fmt(ours['NDR recall'])} | {_fmt(rr['mIoU'])} | {_fmt(rr['NDR'])} |"
            )
    lines += [
        "",
        "Crop count (weighted, reference order):",
        "",
        "| crops | best t | mIoU (best t) | mIoU (t = 0.1) | NDR recall (best t) |",
        "|---|---|---|---|---|",
    ]
    for s in result["crop_sweep"]:
        lines.append(
            f"| {s['n_crops']} | {s['best t']:.2f} | {_fmt(s['mIoU (best t)'])} | {_fmt(s['mIoU (t = 0.1)'])} "
            f"| {_fmt(s['NDR recall (best t)'])} |"
        )
    return lines


def _md_notes(result: dict[str, Any]) -> list[str]:
    """The claim, the provenance and how each number is made."""
    lines: list[str] = []
    ref_sweep = ", ".join(f"{n}: {a}-{b}" for n, (a, b) in REFERENCE["crop_sweep_t0.1"].items())
    cfg = result["config"]
    bbm = result["black_box"]
    lines += [
        "",
        f"**Claim** (crops match CAM on mIoU within {cfg['claim_margin']} points and recover more NDR): {claim_sentence(result)}",
        "",
        f"Preset `{result['preset']}`; data: {result['data']}; {result['images_scored']} images scored, "
        f"{result['maps_per_method']} maps per method"
        + (f", {len(result['skipped_all_ignore'])} skipped (mask all ignore)" if result["skipped_all_ignore"] else "")
        + f"; hardware: {hardware_line(result['hardware'])}. Run time {result['seconds']} s.",
        "",
        f"Black box: frozen EfficientNet-Lite0 + 1x1 conv (20 classes, no bias) + GAP, cross-fitted mAP "
        f"{_fmt(bbm.get('cross_fitted_mAP'))} % (2 folds; {_fmt(bbm.get('train_mAP'))} % on its training images). "
        + (
            "Masking model: trained on these same images (scored on its own training images)"
            + (
                f", {result['masker']['steps']} steps, {_fmt(result['masker']['train_seconds'], 0)} s of training. "
                if result["masker"] and result["masker"].get("steps")
                else ". "
            )
            if result["masker"]
            else ""
        ),
        "",
        f"Pseudo-masks: the same function for every method (multi-class subtraction {cfg['subtract']}, per-class "
        f"{cfg['quantile']}th-percentile normalisation, background threshold t over {cfg['t_grid'][0]}-{cfg['t_grid'][-1]}, "
        "argmax), except the row 'CAM, reference recipe' (CAM / max, no subtraction, as the reference scores CAMs). "
        f"Crops: {cfg['n_crops']} per image, resized to {cfg['crop_size']} px, area {cfg['crop_scale'][0]}-{cfg['crop_scale'][1]}, "
        f"ratio {cfg['crop_ratio'][0]}-{cfg['crop_ratio'][1]}; reference order = signed gradients of up to "
        f"{cfg['abs_every']} crops summed before abs (the default), per-crop abs beside. DR = ground-truth pixels of a "
        f"class whose max-normalised CAM >= tau = {cfg['tau']} (so CAM's DR recall is high by construction), NDR = the "
        "rest of the object. DR / NDR recall: mean over classes of correct / true pixels in the region; DR mIoU* / "
        "NDR mIoU*: the region-restricted mIoU over 21 classes that the reference code reported as 'recall' before its "
        "2023 fix, which is what the reference's DR / NDR columns are. s / map: CPU seconds of the process per (image, "
        "class) map on this CPU (1 torch thread unless stated; CAM and gradient include their forward pass, crops all "
        "crops); wall-clock times, longer on this shared machine, are in the JSON.",
        "",
        f"Reference: {REFERENCE['setting']}; crop sweep at t = 0.1 (mIoU over crop scales): {ref_sweep}. "
        "The reference numbers come from another classifier (ResNet-50) and other images (VOC train): compare the "
        "ordering of the methods more than the values.",
    ]
    return lines


def write_outputs(result: dict[str, Any], folder: Path = FIGURES_DIR) -> Path:
    """Write ``<folder>/<table>.json`` and ``.md`` (``wsss`` for the full preset, ``wsss_<preset>`` otherwise)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in result.items() if k != "maps"}
    atomic_write_text(json.dumps(data, indent=2, default=float) + "\n", folder / f"{result['table']}.json")
    return atomic_write_text(to_markdown(result), folder / f"{result['table']}.md")


# =========================================================================== command line
def _add_dataclass_args(p: argparse.ArgumentParser, cls: type, skip: Iterable[str] = ()) -> None:
    defaults = cls()
    for f in fields(cls):
        if f.name in skip:
            continue
        d = getattr(defaults, f.name)
        name = "--" + f.name.replace("_", "-")
        if isinstance(d, bool):
            p.add_argument(name, action=argparse.BooleanOptionalAction, default=None)
        elif isinstance(d, tuple):
            p.add_argument(name, type=type(d[0]) if d else float, nargs="+", default=None)
        elif f.name in ("limit", "init_from"):
            p.add_argument(name, type=int if f.name == "limit" else str, default=None)
        else:
            p.add_argument(name, type=type(d), default=None)


def _overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items() if k in names and v is not None}


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m paperlib.experiments.wsss [--preset quick|full] [options]``, ``... train-head``, ``... train-masker``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "python -m paperlib.experiments.wsss " + " ".join(shlex.quote(a) for a in argv)
    sub = argv[0] if argv and argv[0] in ("train-head", "train-masker", "evaluate") else "evaluate"
    rest = argv[1:] if argv and argv[0] == sub else argv
    prog = f"paperlib wsss {sub}"
    if sub == "train-head":
        p = argparse.ArgumentParser(prog=prog, description="Train the VOC head (cached features, cross-fitted mAP).")
        _add_dataclass_args(p, HeadConfig)
        a = p.parse_args(rest)
        path = train_head(HeadConfig(**_overrides(a, HeadConfig)), command=command)
        print(
            json.dumps(
                {
                    k: v
                    for k, v in json.loads(path.with_suffix(".json").read_text()).items()
                    if k in ("cross_fitted_mAP", "train_mAP", "feature_seconds", "fit_seconds")
                },
                indent=2,
            )
        )
        return
    if sub == "train-masker":
        p = argparse.ArgumentParser(prog=prog, description="Train the VOC masking model against the VOC black box.")
        _add_dataclass_args(p, MaskerConfig)
        a = p.parse_args(rest)
        kw = _overrides(a, MaskerConfig)
        if kw.get("init_from") == "none":
            kw["init_from"] = None
        path = train_masker(MaskerConfig(**kw), command=command)
        print(path.with_suffix(".json").read_text())
        return
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=list(PRESETS), default="quick")
    _add_dataclass_args(p, WSSSConfig, skip=("preset",))
    p.add_argument("--out-dir", type=Path, default=FIGURES_DIR)
    p.add_argument("--head", default=str(HEAD_PATH))
    p.add_argument("--masker", default=str(MASKER_PATH), help="VOC masking model checkpoint, or 'none'")
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="do not keep or use a state file in the cache folder (by default a killed run resumes)",
    )
    a = p.parse_args(rest)
    cfg = replace(PRESETS[a.preset], **_overrides(a, WSSSConfig))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    key = hashlib.sha1(json.dumps([asdict(cfg), a.head, a.masker], sort_keys=True).encode()).hexdigest()[:12]
    state = None if a.no_resume else cache_dir() / f"wsss-{cfg.preset}-{key}.state.pt"
    res = run(cfg, head=a.head, masker=None if a.masker == "none" else a.masker, progress=True, resume=state)
    path = write_outputs(res, a.out_dir)
    print(path.read_text())


if __name__ == "__main__":
    main()

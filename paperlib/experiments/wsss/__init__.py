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

Modules (everything is re-exported here, so ``paperlib.experiments.wsss.<name>`` keeps working):

================  ============================================================================
module            what it holds
================  ============================================================================
``config``        constants, :data:`REFERENCE`, :data:`METHODS`, the configurations and presets
``data``          the checked VOC loader (:func:`open_voc`)
``head``          the VOC black box, its head training (cross-fitted mAP) and its loading
``maps``          CAM, gradient, stochastic crops, masking model; :func:`compute_maps`
``pseudo_masks``  subtraction, normalisation, pseudo-masks, DR / NDR regions
``masker``        the VOC masking model: build, train, save, load
``study``         the resumable scoring run (:func:`run`)
``report``        the claim sentence, the markdown tables, the written files
``cli``           the command line (:func:`main`; ``python -m paperlib.experiments.wsss``)
================  ============================================================================

The segmentation metrics and the mAP are pure functions of :mod:`paperlib.core.segmentation`.
"""

from __future__ import annotations

from ...core.segmentation import (
    SegmentationScores,
    average_precision,
    confusion_matrix,
    fg_precision,
    iou_per_class,
    mean_average_precision,
    mean_iou,
    region_miou,
    region_recall,
)
from .cli import main
from .config import (
    BACKBONE,  # noqa: F401  (outside __all__, as in the old module)
    BLACK_BOX,
    HEAD_FORMAT,  # noqa: F401
    HEAD_PATH,
    IGNORE,
    MASKER_PATH,
    METHODS,
    MIN_SIDE,  # noqa: F401
    N_LABELS,  # noqa: F401
    NUM_CLASSES,
    PRESETS,
    REFERENCE,
    HeadConfig,
    MaskerConfig,
    WSSSConfig,
    hardware,
    hardware_line,
)
from .data import _sample, open_voc  # noqa: F401  (_sample: notebook 11 and tests/test_wsss.py use it)
from .head import (
    HEAD_VIEWS,  # noqa: F401
    VOCBlackBox,
    cross_fit_map,
    fit_head,
    load_voc_black_box,
    pooled_features,
    select_weight_decay,
    train_head,
)
from .maps import (
    cam_maps,
    compute_maps,
    crop_image,
    crop_saliency,
    gradient_maps,
    masker_maps,
    resize_matrix,
    sample_crops,
)
from .masker import build_voc_masker, draw_voc_classes, load_voc_masker, masker_objective, train_voc_masker
from .pseudo_masks import dr_levels, dr_region, normalise_class_maps, prepare_maps, pseudo_mask, subtract_classes
from .report import claim_sentence, to_markdown, write_results
from .study import run

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
    "normalise_class_maps",
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
    "train_voc_masker",
    "load_voc_masker",
    "run",
    "to_markdown",
    "write_results",
    "hardware",
    "hardware_line",
    "claim_sentence",
    "select_weight_decay",
    "main",
]

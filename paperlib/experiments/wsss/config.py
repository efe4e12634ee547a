"""Constants, reference numbers and configurations of the WSSS study.

What every other module of :mod:`paperlib.experiments.wsss` reads: the VOC label constants, the
paths of the shipped VOC head and masking model, the reference numbers of Maruf et al.
(:data:`REFERENCE`), the methods compared (:data:`METHODS`), the configurations of a scoring run
(:class:`WSSSConfig`, :data:`PRESETS`), of the head training (:class:`HeadConfig`) and of the masker
training (:class:`MaskerConfig`), and the provenance helpers of the records they write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ...core import _common
from ...core.errors import InputError
from ...core.paths import CHECKPOINT_DIR
from ...core.segmentation import DEFAULT_TAU, IGNORE, N_LABELS

__all__ = [
    "NUM_CLASSES",
    "N_LABELS",
    "IGNORE",
    "BACKBONE",
    "BLACK_BOX",
    "HEAD_PATH",
    "MASKER_PATH",
    "HEAD_FORMAT",
    "MIN_SIDE",
    "REFERENCE",
    "METHODS",
    "WSSSConfig",
    "PRESETS",
    "HeadConfig",
    "MaskerConfig",
    "hardware",
    "hardware_line",
]


NUM_CLASSES = 20  # VOC object classes; N_LABELS = NUM_CLASSES + 1 labels with the background
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


# =========================================================================== configuration
@dataclass(frozen=True)
class WSSSConfig:
    """What a scoring run does (see :data:`PRESETS`).

    Attributes:
        preset: Name recorded in the outputs.
        limit: Score the first ``limit`` ids of ``val.txt`` (None: all).
        methods: Keys of :data:`METHODS` to compute and score (None: all of them, the masker when one is
            given). Without a crop method nothing is cropped, ``n_crops`` may be 0 and ``crop_counts`` is not used;
            the mIoU-vs-N sweep (``crops_w@N``) is scored only with ``crops_w``.
        n_crops: Crops per (image, class) for the crop methods (reference: 100 to 200).
        crop_size: Side the crops are resized to (reference: 224).
        crop_scale: Range of a crop's area as a fraction of the image's (reference: 0.05-0.3).
        crop_ratio: Range of a crop's aspect ratio (reference notebook: 0.85-1.25).
        crop_batch: Crops per forward pass (memory only; does not change the maps).
        abs_every: Crops whose signed gradients are summed before abs, reference order (reference: 100).
        crop_counts: Crop counts at which the weighted reference-order map is also scored (mIoU vs N).
        masker_size: Side the image is squashed to for the masking model.
        t_grid: Background thresholds, ascending.
        fixed_t: Score the table's rows (and the claim) at this background threshold, e.g. one chosen on other
            images, instead of at each method's best t on the scored images (None). Must be a value of ``t_grid``.
            The result records which (``"t_choice"``); each method's best t is kept beside it.
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
    methods: Optional[tuple[str, ...]] = None
    n_crops: int = 32
    crop_size: int = 160
    crop_scale: tuple[float, float] = (0.05, 0.3)
    crop_ratio: tuple[float, float] = (0.85, 1.25)
    crop_batch: int = 16
    abs_every: int = 100
    crop_counts: tuple[int, ...] = (4, 8, 16, 32)
    masker_size: int = 224
    t_grid: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(1, 81))
    fixed_t: Optional[float] = None
    tau: float = DEFAULT_TAU
    taus: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5)
    subtract: float = 0.5
    quantile: float = 99.5
    claim_margin: float = 2.0
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if self.methods is not None:
            if isinstance(self.methods, str) or not all(isinstance(m, str) for m in self.methods):
                raise InputError(f"methods must be a sequence of method keys (or None for all), got {self.methods!r}.")
            object.__setattr__(self, "methods", tuple(self.methods))
            bad = [m for m in self.methods if m not in METHODS]
            if bad or not self.methods or len(set(self.methods)) != len(self.methods):
                raise InputError(
                    f"methods must be distinct keys among {', '.join(METHODS)} (or None for all), got {self.methods}"
                    + (f"; unknown: {', '.join(bad)}." if bad else ".")
                )
        if list(self.t_grid) != sorted(self.t_grid) or not self.t_grid:
            raise InputError(f"t_grid must be a non-empty ascending sequence, got {self.t_grid}.")
        if self.fixed_t is not None and not any(abs(self.fixed_t - t) < 1e-9 for t in self.t_grid):
            raise InputError(f"fixed_t={self.fixed_t} must be one of the background thresholds t_grid {self.t_grid}.")
        if self.tau not in self.taus or list(self.taus) != sorted(self.taus):
            raise InputError(f"taus must be ascending and contain tau={self.tau}, got {self.taus}.")
        if self.uses_crops and (self.n_crops < 1 or any(n < 1 or n > self.n_crops for n in self.crop_counts)):
            raise InputError(f"crop_counts {self.crop_counts} must lie in [1, n_crops={self.n_crops}].")
        if self.n_crops < 0:
            raise InputError(f"n_crops must be >= 0 (0 only without a crop method), got {self.n_crops}.")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit must be a positive int or None, got {self.limit}.")
        if self.crop_size < MIN_SIDE or self.masker_size < MIN_SIDE:
            raise InputError(f"crop_size and masker_size must be at least {MIN_SIDE} px (the backbone's minimum).")

    @property
    def selected(self) -> tuple[str, ...]:
        """The method keys this run computes, in :data:`METHODS` order (all of them when ``methods`` is None)."""
        return tuple(k for k in METHODS if self.methods is None or k in self.methods)

    @property
    def uses_crops(self) -> bool:
        """Whether a crop method is selected (else no crop is drawn or computed)."""
        return any(k.startswith("crops") for k in self.selected)


#: smoke: 5 images, 4 crops (``make test``: every code path); quick: 10 images, 8 crops (``make reproduce``);
#: full: all images (500 here), 32 crops.
PRESETS: dict[str, WSSSConfig] = {
    "smoke": WSSSConfig(preset="smoke", limit=5, n_crops=4, crop_counts=(2, 4)),
    "quick": WSSSConfig(preset="quick", limit=10, n_crops=8, crop_counts=(2, 4, 8)),
    "full": WSSSConfig(preset="full"),
}


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


# =========================================================================== provenance
def hardware() -> dict[str, Any]:
    """The project's hardware description plus the load average (other jobs share this CPU)."""
    info = _common.hardware()
    try:
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return info


def hardware_line(info: dict[str, Any]) -> str:
    """One line describing :func:`hardware` output: :func:`paperlib.core._common.hardware_line` plus the load average."""
    load = f", load average {info['load_average_1min']} at start" if "load_average_1min" in info else ""
    return _common.hardware_line(info) + load


def _out_dir(out: str) -> Path:
    """An output folder; relative paths are taken from the repository root."""
    p = Path(out).expanduser()
    return p if p.is_absolute() else CHECKPOINT_DIR.parent.parent / p

"""paperlib: real-time saliency for black-box classifiers (Dabkowski & Gal, NeurIPS 2017).

Quick start::

    import paperlib
    black_box = paperlib.load_classifier("efficientnet_lite0")   # frozen, [0, 1] RGB in, logits out
    masker = paperlib.load_masker("efficientnet_lite0")          # the shipped masking model
    masks = masker(images, ["Egyptian cat"] * len(images))       # (N, 1, H, W) in [0, 1], one forward pass

Modules: :mod:`~paperlib.classifiers` (black boxes), :mod:`~paperlib.masker` and
:mod:`~paperlib.encoders` (the masking model), :mod:`~paperlib.objective` (eq. 4),
:mod:`~paperlib.train`, :mod:`~paperlib.iterative` (per-image optimisation),
:mod:`~paperlib.metrics` (localisation, saliency metric), :mod:`~paperlib.baselines`
(gradient maps via Captum), :mod:`~paperlib.data` (data sets), :mod:`~paperlib.classes`
(class names), :mod:`~paperlib.checkpoints`, :mod:`~paperlib.paths`,
:mod:`~paperlib.bench` and :mod:`~paperlib.realtime` (speed; optimised CPU back ends),
:mod:`~paperlib.video` (saliency over video frames).
"""

from .checkpoints import load_masker, save_masker, shipped_maskers
from .classifiers import BlackBox, available_classifiers, load_classifier
from .errors import (
    CheckpointMismatchError,
    CorruptImageError,
    DataNotFoundError,
    InputError,
    PaperlibError,
    UnknownClassError,
    UnknownModelError,
    WeightsNotFoundError,
)
from .masker import Masker, build_masker
from .objective import ObjectiveConfig, SaliencyLoss, saliency_objective
from .realtime import FastMasker, fast_masker

__version__ = "0.1.0"

__all__ = [
    "BlackBox",
    "FastMasker",
    "Masker",
    "ObjectiveConfig",
    "SaliencyLoss",
    "available_classifiers",
    "build_masker",
    "fast_masker",
    "load_classifier",
    "load_masker",
    "save_masker",
    "saliency_objective",
    "shipped_maskers",
    "CheckpointMismatchError",
    "CorruptImageError",
    "DataNotFoundError",
    "InputError",
    "PaperlibError",
    "UnknownClassError",
    "UnknownModelError",
    "WeightsNotFoundError",
]

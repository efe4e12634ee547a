"""paperlib: real-time saliency for black-box classifiers (Dabkowski & Gal, NeurIPS 2017).

Quick start::

    import paperlib
    black_box = paperlib.load_classifier("efficientnet_lite0")   # frozen, [0, 1] RGB in, logits out
    masker = paperlib.load_masker("efficientnet_lite0")          # the shipped masking model
    masks = masker(images, ["Egyptian cat"] * len(images))       # (N, 1, H, W) in [0, 1], one forward pass

Your own classifier::

    black_box = paperlib.wrap_classifier(model, input_size=224, mean=..., std=..., class_names=[...])
    masker = paperlib.train_masker(black_box, "my_images/", steps=500)

Three layers, each importing only from the ones below it:

* :mod:`paperlib.core`: the masking model (:mod:`~paperlib.core.masker`, :mod:`~paperlib.core.encoders`),
  the objective of eq. 4 (:mod:`~paperlib.core.objective`), the metrics (:mod:`~paperlib.core.metrics`),
  the black boxes (:mod:`~paperlib.core.classifiers`), data, class names, checkpoint storage.
* :mod:`paperlib.experiments`: training (:mod:`~paperlib.experiments.train`, :mod:`~paperlib.experiments.cifar`),
  baselines, per-image optimisation, the tables (:mod:`~paperlib.experiments.evaluate`), the presets.
* :mod:`paperlib.tools`: speed benchmark, CPU back ends, video, retraining, report, plots.

The old flat paths (``paperlib.masker``, ``paperlib.train``, ...) still import, with a
``DeprecationWarning``, until 0.3 (no files: a finder in :mod:`paperlib._deprecated` maps them);
``python -m paperlib.train`` (and ``evaluate``, ``cifar``, ``bench``, ``realtime``, ``video``,
``retrain``, ``report``) keep working.
"""

import importlib as _importlib

from ._deprecated import MOVED as _MOVED
from ._deprecated import install as _install_old_paths
from .core.classifiers import BlackBox, available_classifiers, load_classifier
from .core.errors import (
    CheckpointMismatchError,
    CorruptCheckpointError,
    CorruptImageError,
    DataNotFoundError,
    InputError,
    PaperlibError,
    UnknownClassError,
    UnknownModelError,
    UnsafeCheckpointError,
    WeightsNotFoundError,
)
from .core.explainer import Explainer, load_explainer
from .core.masker import Masker, build_masker
from .core.objective import ObjectiveConfig, SaliencyLoss, saliency_objective
from .core.storage import load_masker, save_masker, shipped_maskers

_install_old_paths()  # import paperlib.masker & co. (deprecated): see paperlib._deprecated

__version__ = "0.2.1"

__all__ = [
    "BlackBox",
    "Explainer",
    "FastMasker",
    "Masker",
    "ObjectiveConfig",
    "SaliencyLoss",
    "available_classifiers",
    "build_masker",
    "fast_masker",
    "load_classifier",
    "load_explainer",
    "load_masker",
    "save_masker",
    "saliency_objective",
    "shipped_maskers",
    "train_masker",
    "wrap_classifier",
    "CheckpointMismatchError",
    "CorruptCheckpointError",
    "CorruptImageError",
    "DataNotFoundError",
    "InputError",
    "PaperlibError",
    "UnknownClassError",
    "UnknownModelError",
    "UnsafeCheckpointError",
    "WeightsNotFoundError",
]


#: Names imported on first access: paperlib.tools.realtime brings the evaluation harness and
#: torchvision (which imports torch._dynamo, seconds), which ``import paperlib`` should not pay for.
_LAZY = {
    "FastMasker": "paperlib.tools.realtime",
    "fast_masker": "paperlib.tools.realtime",
    "train_masker": "paperlib.experiments.own",
    "wrap_classifier": "paperlib.experiments.own",
}


def __getattr__(name: str):
    """``paperlib.fast_masker``, and the old module paths (``paperlib.masker``, deprecated), on first access."""
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    if name in _MOVED:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

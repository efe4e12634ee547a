"""The old flat module paths (``paperlib.train``, ``paperlib.masker``, ...), kept for one release.

Each old module file is a shim that makes its name an alias of the module's new home (the very
same module object, so private names and monkeypatching keep working) and warns with a
``DeprecationWarning``. Run as a script (``python -m paperlib.train ...``, the commands recorded
in the shipped checkpoints) a shim runs the new module's ``main`` without a warning: those
commands stay supported.
"""

from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["MOVED", "alias", "run_main"]

#: Old module name (under ``paperlib.``) -> new module.
MOVED: dict[str, str] = {
    "errors": "paperlib.core.errors",
    "paths": "paperlib.core.paths",
    "classes": "paperlib.core.classes",
    "data": "paperlib.core.data",
    "classifiers": "paperlib.core.classifiers",
    "encoders": "paperlib.core.encoders",
    "masker": "paperlib.core.masker",
    "objective": "paperlib.core.objective",
    "metrics": "paperlib.core.metrics",
    "checkpoints": "paperlib.core.storage",
    "train": "paperlib.experiments.train",
    "cifar": "paperlib.experiments.cifar",
    "baselines": "paperlib.experiments.baselines",
    "iterative": "paperlib.experiments.iterative",
    "evaluate": "paperlib.experiments.evaluate",
    "bench": "paperlib.tools.bench",
    "realtime": "paperlib.tools.realtime",
    "video": "paperlib.tools.video",
    "retrain": "paperlib.tools.retrain",
    "report": "paperlib.tools.report",
    "viz": "paperlib.tools.viz",
}


def alias(old: str) -> None:
    """Make the module ``old`` (``"paperlib.<name>"``) an alias of its new home, with a warning."""
    new = MOVED[old.rsplit(".", 1)[-1]]
    module = importlib.import_module(new)
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; import {new} instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    sys.modules[old] = module


def run_main(old: str) -> None:
    """``python -m paperlib.<name> ...``: run the new module's command line (no warning: still supported)."""
    module = importlib.import_module(MOVED[old])
    module.main()

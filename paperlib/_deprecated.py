"""The old flat module paths (``paperlib.train``, ``paperlib.masker``, ...), kept until 0.3.

There are no files for them: :func:`install` (run by ``import paperlib``) puts a finder first on
:data:`sys.meta_path` that answers for exactly the names in :data:`MOVED`.

* Imported (``import paperlib.masker``, ``from paperlib.masker import Masker``), an old name is the
  very same module object as its new home (``sys.modules["paperlib.masker"] is paperlib.core.masker``,
  so private names and monkeypatching keep working), with a ``DeprecationWarning`` that names the
  new path.
* Run as a script (``python -m paperlib.train ...``, the commands recorded in the shipped
  checkpoints), an old name runs the new module's ``main`` without a warning: those commands stay
  supported. ``runpy`` asks the finder for a spec and the loader for code (:meth:`_AliasLoader.get_code`).

The finder comes before the path finders, so ``paperlib.checkpoints`` is the alias of
:mod:`paperlib.core.storage`, not the folder ``paperlib/checkpoints/`` of shipped weights (a
namespace package without code). Any other name is left to the normal import system
(``ModuleNotFoundError``).
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from importlib.abc import InspectLoader, MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

__all__ = ["MOVED", "REMOVED_IN", "SCRIPTS", "install", "run_main"]

#: The release that drops the old paths.
REMOVED_IN = "0.3"

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

#: Old names whose script (``python -m paperlib.<name>``) runs another module's ``main`` than
#: :data:`MOVED` says: ``python -m paperlib.train`` has always run :func:`paperlib.experiments.own.main`
#: (built-in black boxes go on to :func:`paperlib.experiments.train.main`; it takes your own black box too).
SCRIPTS: dict[str, str] = {"train": "paperlib.experiments.own"}

_PACKAGE = __name__.rpartition(".")[0]  # "paperlib"
_HERE = Path(__file__).parent
#: Frames skipped to find the code that imported an old name: importlib's and paperlib's own (``paperlib.masker``
#: as an attribute goes through ``paperlib.__getattr__``).
_IMPORT_MACHINERY = (os.path.dirname(importlib.__file__) + os.sep, "<frozen importlib", __file__, str(_HERE / "__init__.py"))


def _old_name(fullname: str) -> str | None:
    parent, _, name = fullname.rpartition(".")
    return name if parent == _PACKAGE and name in MOVED else None


def _script_module(name: str) -> str:
    return SCRIPTS.get(name, MOVED[name])


def run_main(name: str) -> None:
    """``python -m paperlib.<name> ...``: run the new module's command line (no warning: still supported)."""
    module = importlib.import_module(_script_module(name))
    main = getattr(module, "main", None)
    if main is None:
        raise SystemExit(f"{_PACKAGE}.{name} is no command: it is now {MOVED[name]} (import it from there).")
    main()


def _warn_at_importer(message: str) -> None:
    """``warnings.warn`` attributed to the code that imported the old name (past importlib and paperlib/__init__)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_IMPORT_MACHINERY):
        frame = frame.f_back
    g = frame.f_globals
    warnings.warn_explicit(
        message,
        DeprecationWarning,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=g.get("__name__", "<unknown>"),
        registry=g.setdefault("__warningregistry__", {}),
    )


class _AliasLoader(InspectLoader):
    """Imported: the old name becomes the new module (with a warning). Run: the code that runs its ``main``."""

    def is_package(self, fullname: str) -> bool:
        return False

    def get_source(self, fullname: str) -> str:
        name = _old_name(fullname)
        if name is None:
            raise ImportError(f"{fullname} is no deprecated paperlib path", name=fullname)
        # __mp_main__ (multiprocessing's spawn re-running the script's module) and runpy.run_module
        # under another name only define names, as the old shim files did.
        return f'from {__name__} import run_main\n\nif __name__ == "__main__":\n    run_main({name!r})\n'

    def get_code(self, fullname: str):
        return compile(self.get_source(fullname), f"<{fullname}: deprecated alias>", "exec")

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # a blank module; exec_module puts the new one in its place

    def exec_module(self, module: ModuleType) -> None:
        old = module.__name__
        new = MOVED[old.rpartition(".")[2]]
        target = importlib.import_module(new)
        _warn_at_importer(f"{old} is deprecated and will be removed in {REMOVED_IN}; import {new} instead.")
        # the import system returns what sys.modules holds once exec_module is done: the new module itself
        sys.modules[old] = target


class _AliasFinder(MetaPathFinder):
    """Finds exactly ``paperlib.<old>`` for the names of :data:`MOVED`; nothing else."""

    loader = _AliasLoader()

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        name = _old_name(fullname)
        if name is None:
            return None
        # origin: the file whose main runs as a script (runpy makes it sys.argv[0] and __file__)
        rel = _script_module(name).split(".")[1:]
        return ModuleSpec(fullname, self.loader, origin=str(_HERE.joinpath(*rel).with_suffix(".py")))


def install() -> None:
    """Put the finder of the old paths first on :data:`sys.meta_path` (once)."""
    if not any(type(f).__name__ == _AliasFinder.__name__ and type(f).__module__ == __name__ for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())

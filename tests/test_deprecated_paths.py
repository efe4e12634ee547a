"""The old flat module paths (``paperlib.train``, ``paperlib.masker``, ...): no files, one finder.

``paperlib/_deprecated.py`` maps every name of ``MOVED`` to its new module: imported, the very same
module object with a ``DeprecationWarning``; run with ``python -m``, the new module's ``main`` without
one. This is the only test module that imports the old paths on purpose.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import runpy
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import paperlib
from paperlib._deprecated import MOVED, REMOVED_IN, SCRIPTS

PACKAGE = Path(paperlib.__file__).resolve().parent


def _has_main(module: str) -> bool:
    path = PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")
    return any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in ast.parse(path.read_text()).body)


#: Old names that are commands (``python -m paperlib.<name>``): those whose script module has ``main``.
COMMANDS = sorted(old for old in MOVED if _has_main(SCRIPTS.get(old, MOVED[old])))


def test_no_shim_files_are_left():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py", "_deprecated.py", "cli.py"]
    assert not [old for old in MOVED if (PACKAGE / f"{old}.py").exists()]


def test_the_commands_are_the_ones_of_the_old_shims():
    assert COMMANDS == ["bench", "cifar", "evaluate", "realtime", "report", "retrain", "train", "video"]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_is_the_new_module_with_a_warning(old, monkeypatch):
    name, new = f"paperlib.{old}", MOVED[old]
    monkeypatch.delitem(sys.modules, name, raising=False)  # a fresh import (restored afterwards)
    with pytest.warns(DeprecationWarning) as record:
        module = importlib.import_module(name)
    messages = [str(w.message) for w in record if issubclass(w.category, DeprecationWarning)]
    assert f"{name} is deprecated and will be removed in {REMOVED_IN}; import {new} instead." in messages
    assert REMOVED_IN == "0.3"
    assert module is importlib.import_module(new) is sys.modules[name]
    assert module.__name__ == new and module.__spec__.name == new  # the new module is left as it was


def test_from_import_gives_the_same_objects_and_blames_the_importer(monkeypatch):
    monkeypatch.delitem(sys.modules, "paperlib.masker", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from paperlib.masker import Masker  # noqa: F401 -- the deprecated path, on purpose
    import paperlib.core.masker

    assert Masker is paperlib.core.masker.Masker
    assert sys.modules["paperlib.masker"] is paperlib.core.masker and paperlib.masker is paperlib.core.masker
    (w,) = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert "paperlib.core.masker" in str(w.message) and "removed in 0.3" in str(w.message)
    assert Path(w.filename).resolve() == Path(__file__).resolve()  # the line that imported it, not importlib


def test_package_attribute_of_an_old_name_warns_too(monkeypatch):
    if "viz" in vars(paperlib):  # (hasattr would import it: paperlib.__getattr__)
        monkeypatch.delattr(paperlib, "viz")
    monkeypatch.delitem(sys.modules, "paperlib.viz", raising=False)
    with pytest.warns(DeprecationWarning, match=r"import paperlib\.tools\.viz instead"):
        viz = paperlib.viz
    assert viz is importlib.import_module("paperlib.tools.viz")


def test_checkpoints_is_the_storage_module_not_the_weights_folder(monkeypatch):
    """``paperlib/checkpoints/`` (the shipped .pt/.json files) would be a namespace package; the finder comes first."""
    assert (PACKAGE / "checkpoints").is_dir() and list((PACKAGE / "checkpoints").glob("*.pt"))
    monkeypatch.delitem(sys.modules, "paperlib.checkpoints", raising=False)
    with pytest.warns(DeprecationWarning, match=r"paperlib\.core\.storage"):
        import paperlib.checkpoints as old
    from paperlib.core import storage

    assert old is storage and old.load_masker is paperlib.load_masker
    assert "efficientnet_lite0" in storage.shipped_maskers()  # the weights are still found in the folder


@pytest.mark.parametrize("name", ["paperlib.nonexistent", "paperlib.core.train", "paperlib.masker_v2"])
def test_unknown_names_are_not_found(name):
    assert importlib.util.find_spec(name) is None
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)


def test_unknown_attribute_of_the_package():
    with pytest.raises(AttributeError):
        paperlib.nonexistent  # noqa: B018


def test_spec_of_an_old_name_is_a_runnable_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "paperlib.train", raising=False)  # (else find_spec gives the imported module's)
    spec = importlib.util.find_spec("paperlib.train")
    assert spec is not None and spec.submodule_search_locations is None and spec.loader.is_package("paperlib.train") is False
    assert spec.origin.endswith(os.path.join("experiments", "own.py"))  # runpy's sys.argv[0]: the script that runs
    assert spec.loader.get_code("paperlib.train") is not None


@pytest.mark.parametrize("old", COMMANDS)
def test_running_an_old_name_calls_the_new_main_without_a_warning(old, monkeypatch):
    target = importlib.import_module(SCRIPTS.get(old, MOVED[old]))
    calls = []
    monkeypatch.setattr(target, "main", lambda *a: calls.append(a))
    monkeypatch.delitem(sys.modules, f"paperlib.{old}", raising=False)  # runpy warns when it is already imported
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runpy.run_module(f"paperlib.{old}", run_name="__main__", alter_sys=True)
    assert calls == [()]
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning) and "paperlib" in str(w.message)]


def test_train_script_runs_own_main():
    """``python -m paperlib.train`` took your own black box too: paperlib.experiments.own.main, as before."""
    assert SCRIPTS == {"train": "paperlib.experiments.own"} and MOVED["train"] == "paperlib.experiments.train"


def test_script_under_another_name_runs_nothing(monkeypatch):
    """multiprocessing's spawn re-runs the main module as ``__mp_main__``: that must not start the command again."""
    import paperlib.experiments.own as own

    monkeypatch.setattr(own, "main", lambda *a: pytest.fail("main ran"))
    monkeypatch.delitem(sys.modules, "paperlib.train", raising=False)  # a spawned process has not imported it
    runpy.run_module("paperlib.train", run_name="__mp_main__")


def test_running_an_old_name_without_main_says_where_it_went(monkeypatch):
    monkeypatch.delitem(sys.modules, "paperlib.masker", raising=False)
    with pytest.raises(SystemExit, match=r"paperlib\.masker is no command: it is now paperlib\.core\.masker"):
        runpy.run_module("paperlib.masker", run_name="__main__")


@pytest.mark.slow
@pytest.mark.parametrize("old, usage", [("train", "paperlib train"), ("evaluate", "paperlib evaluate")])
def test_python_m_old_name_help_in_a_subprocess(old, usage):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONWARNINGS", None)
    res = subprocess.run(
        [sys.executable, "-W", "always::DeprecationWarning", "-m", f"paperlib.{old}", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert usage in res.stdout
    assert not re.search(r"DeprecationWarning", res.stderr), res.stderr[-2000:]

"""The layering of issue 13: core <- experiments <- tools, no import cycles, working old paths.

Imports are read from the source with ``ast`` (module level and inside functions alike), so
the checks hold for every code path, not only for what one test happens to import.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import paperlib
from paperlib._deprecated import MOVED

PACKAGE = Path(paperlib.__file__).resolve().parent
LAYERS = ("core", "experiments", "tools")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """paperlib modules that ``name`` imports (``from .x import y`` counts ``.x.y`` when that is a module)."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods) | {f"paperlib.{old}" for old in MOVED}  # the old flat paths have no files, but count
    # the package itself is imported on the way to any submodule; it is no dependency of its own
    return {m: _imports(m, p, known) - {"paperlib"} for m, p in mods.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_layers_import_only_downwards():
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    bad = []
    for module, deps in import_graph().items():
        mine = _layer(module)
        if mine is None:
            continue
        for dep in deps:
            theirs = _layer(dep)
            if theirs is None:  # paperlib._deprecated or an old flat path: not allowed inside a layer
                bad.append(f"{module} imports {dep} (outside the layers)")
            elif rank[theirs] > rank[mine]:
                bad.append(f"{module} ({mine}) imports {dep} ({theirs})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    cycles = import_cycles(import_graph())
    assert cycles == [], cycles


def test_reading_data_and_scoring_do_not_import_torchvision():
    """torchvision imports torch._dynamo (seconds per process): only the folder data sets, the
    torchvision classifiers and training's augmentation may pull it in, when they are used."""
    code = (
        "import sys\n"
        "import paperlib.cli, paperlib.core.data, paperlib.experiments.evaluate, paperlib.experiments.train\n"
        "assert 'torchvision' not in sys.modules, 'torchvision imported'\n"
    )  # that the lazy names still resolve, tests/test_data.py checks (D.cifar10, D.imagenet_folder)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_the_layering_test_sees_a_violation():
    """The checks above can fail: a core module importing a tool is caught."""
    graph = {"paperlib.core.a": {"paperlib.tools.b"}, "paperlib.tools.b": {"paperlib.core.a"}}
    assert import_cycles(graph) == [["paperlib.core.a", "paperlib.tools.b"]]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_paths_are_deprecated_aliases(old):
    sys.modules.pop(f"paperlib.{old}", None)
    with pytest.warns(DeprecationWarning, match=MOVED[old].replace(".", r"\.")):
        module = importlib.import_module(f"paperlib.{old}")
    assert module is importlib.import_module(MOVED[old])


def test_public_names_unchanged():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for name in paperlib.__all__:
            assert getattr(paperlib, name) is not None, name
    from paperlib.core.storage import load_masker
    from paperlib.tools.realtime import fast_masker

    assert paperlib.load_masker is load_masker and paperlib.fast_masker is fast_masker


@pytest.mark.parametrize("name", ["train", "cifar", "evaluate"])
def test_old_command_lines_still_run(name, capsys, monkeypatch):
    """``python -m paperlib.train ...`` is recorded in the shipped checkpoints' json files.

    Run as ``python -m`` would (``runpy``, ``__main__``) inside this process: a subprocess per entry
    point cost 5-14 s of imports each.
    """
    import runpy
    import warnings

    monkeypatch.setattr(sys, "argv", [f"paperlib.{name}", "--help"])
    sys.modules.pop(f"paperlib.{name}", None)  # run_module warns when the module is already imported
    with warnings.catch_warnings(record=True) as caught, pytest.raises(SystemExit) as exit_:
        warnings.simplefilter("always")
        runpy.run_module(f"paperlib.{name}", run_name="__main__", alter_sys=True)
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert f"python -m paperlib.{name}" in out or f"paperlib {name}" in out  # the tools now name the paperlib command
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning) and "paperlib" in str(w.message)]


#: The longest a function or method of paperlib may be, docstring included (issue 13).
MAX_FUNCTION_LINES = 80


def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line name (n lines)`` of every function or method under ``root`` longer than ``limit`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_function_is_longer_than_80_lines():
    assert long_functions(PACKAGE) == []


def test_the_length_test_sees_a_long_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(81))
    (pkg / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n")
    assert long_functions(pkg) == ["pkg/m.py:5 long (82 lines)"]


def test_figures_folder_follows_the_environment(tmp_path):
    """``PAPERLIB_FIGURES`` redirects every result (make test's smoke runs write into a copy of figures/)."""
    code = "from paperlib.core import paths; print(paths.FIGURES_DIR)"
    env = {**os.environ, "PAPERLIB_FIGURES": str(tmp_path / "figs")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == str((tmp_path / "figs").resolve()), out.stderr
    env.pop("PAPERLIB_FIGURES")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == str(PACKAGE.parent / "figures"), out.stderr

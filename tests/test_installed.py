"""paperlib used as an installed library, outside the checkout: README examples verbatim, no writes into the package.

The package folder is copied to a temporary "site-packages" (what ``pip install`` puts there: the
``paperlib`` folder with its package data) and imported from another temporary folder with no data
root set, as a user who installed it would. Every ```python block of README.md then runs verbatim,
in order, in one interpreter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_installed_copy_runs_the_readme_examples_and_writes_nothing_into_the_package(tmp_path):
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "paperlib", site / "paperlib", ignore=shutil.ignore_patterns("__pycache__"))
    before = _listing(site)
    work = tmp_path / "user"
    work.mkdir()
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 3, "README.md should hold its Python examples in ```python blocks"
    script = "\n".join(
        [
            "import paperlib, pathlib",
            f"assert pathlib.Path(paperlib.__file__).resolve().is_relative_to({str(site)!r}), paperlib.__file__",
            "from paperlib.core import paths",
            "assert not paths.IN_CHECKOUT",
            "assert paths.data_root() == pathlib.Path.cwd() / 'data', paths.data_root()",
            "assert paths.FIGURES_DIR == pathlib.Path.cwd() / 'figures', paths.FIGURES_DIR",
            *blocks,
            "print('README examples ran')",
        ]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PAPERLIB_DATA", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), PAPERLIB_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="2")
    r = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "README examples ran" in r.stdout
    assert _listing(site) == before, "an installed paperlib must not write into its own folder"

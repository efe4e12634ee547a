"""The conda environment and pyproject.toml name the same direct dependencies; the Makefile documents itself."""

import re
import subprocess

import tomllib

from paperlib.core.paths import REPO_ROOT


def _norm(req: str) -> str:
    return re.sub(r"[-_.]+", "-", req.strip().lower())


def _all_dependencies() -> list[str]:
    """The library's dependencies and every extra's (notebooks, test)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]


def test_environment_yml_matches_pyproject():
    project = _all_dependencies()
    lines = (REPO_ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    pip_deps = [l.strip()[2:] for l in lines[start + 1 :] if l.strip().startswith("- ") and not l.strip().startswith("- -e")]
    assert sorted(map(_norm, pip_deps)) == sorted(map(_norm, project))


def test_lock_pins_every_direct_dependency():
    lock = (REPO_ROOT / "requirements.lock").read_text().lower()
    project = _all_dependencies()
    for dep in project:
        name = _norm(re.split(r"[=<>!~\[]", dep)[0])
        assert re.search(rf"^{re.escape(name)}==", lock.replace("_", "-"), re.M), name


def test_make_help_lists_targets():
    out = subprocess.run(["make", "-s", "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    for target in ("setup", "test", "reproduce", "train", "bench"):
        assert target in out


def test_notebook_and_test_tools_are_not_runtime_dependencies():
    runtime = {
        _norm(re.split(r"[=<>!~\[]", d)[0])
        for d in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    assert not runtime & {"jupyterlab", "papermill", "nbval", "pytest", "jupytext", "ruff", "pandas"}

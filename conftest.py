"""Repository-level pytest settings: ``pytest --doctest-modules paperlib`` (part of ``make test``) skips
the top-level command modules (``paperlib/__main__.py`` runs the command line when imported, and
``paperlib/cli.py``); the doctests are collected in ``paperlib/core``, ``paperlib/experiments`` and
``paperlib/tools``. (The deprecated flat paths, ``paperlib.train`` and the rest, have no files:
``paperlib/_deprecated.py`` maps them.)
"""

from pathlib import Path

_HERE = Path(__file__).parent
collect_ignore = [
    str(p.relative_to(_HERE))
    for p in sorted((_HERE / "paperlib").glob("*.py"))
    if p.name not in ("__init__.py", "_deprecated.py")
]

"""Repository-level pytest settings: ``pytest --doctest-modules paperlib`` (part of ``make test``) skips
the deprecated flat module paths (``paperlib/train.py`` and the rest), which only alias the modules
of ``paperlib/core``, ``paperlib/experiments`` and ``paperlib/tools``, where the doctests are collected.
"""

from pathlib import Path

_HERE = Path(__file__).parent
collect_ignore = [
    str(p.relative_to(_HERE))
    for p in sorted((_HERE / "paperlib").glob("*.py"))
    if p.name not in ("__init__.py", "_deprecated.py")
]

"""Deprecated alias of :mod:`paperlib.tools.report` (kept for one release)."""

from paperlib._deprecated import alias, run_main

if __name__ == "__main__":
    run_main("report")
else:
    alias(__name__)

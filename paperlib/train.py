"""Deprecated alias of :mod:`paperlib.experiments.train` (kept for one release)."""

from paperlib._deprecated import alias, run_main

if __name__ == "__main__":
    run_main("train")
else:
    alias(__name__)

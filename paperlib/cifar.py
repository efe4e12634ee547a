"""Deprecated alias of :mod:`paperlib.experiments.cifar` (kept for one release)."""

from paperlib._deprecated import alias, run_main

if __name__ == "__main__":
    run_main("cifar")
else:
    alias(__name__)

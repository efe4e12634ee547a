"""Deprecated alias of :mod:`paperlib.experiments.iterative` (kept for one release)."""

from paperlib._deprecated import alias

alias(__name__)

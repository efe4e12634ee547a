"""Deprecated alias of :mod:`paperlib.tools.viz` (kept for one release)."""

from paperlib._deprecated import alias

alias(__name__)

"""Deprecated alias of :mod:`paperlib.core.storage` (kept for one release)."""

from paperlib._deprecated import alias

alias(__name__)

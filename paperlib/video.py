"""Deprecated alias of :mod:`paperlib.tools.video` (kept for one release)."""

from paperlib._deprecated import alias, run_main

if __name__ == "__main__":
    run_main("video")
else:
    alias(__name__)

"""Deprecated alias of :mod:`paperlib.tools.realtime` (kept for one release)."""

from paperlib._deprecated import alias, run_main

if __name__ == "__main__":
    run_main("realtime")
else:
    alias(__name__)

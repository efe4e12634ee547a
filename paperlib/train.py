"""Deprecated alias of :mod:`paperlib.experiments.train` (kept for one release)."""

from paperlib._deprecated import alias

if __name__ == "__main__":
    # paperlib.experiments.own.main runs the built-in command line, and takes your own black box too.
    from paperlib.experiments.own import main

    main()
else:
    alias(__name__)

"""``python -m paperlib <command> ...``: the same as the ``paperlib`` command (:mod:`paperlib.cli`)."""

from paperlib.cli import main

main()

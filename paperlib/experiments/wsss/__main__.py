"""``python -m paperlib.experiments.wsss ...``: the study's command line (:func:`paperlib.experiments.wsss.cli.main`)."""

from .cli import main

if __name__ == "__main__":
    main()

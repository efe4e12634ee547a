"""The ``paperlib`` command line: one tool, with a sub-command per task.

``paperlib <command> [options]`` (or ``python -m paperlib <command> ...``); ``paperlib <command> --help``
lists a command's options. Each command runs the ``main`` of the module named in :data:`COMMANDS`,
imported only when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Sequence

__all__ = ["COMMANDS", "main"]

#: command -> (module whose ``main(argv)`` runs it, one-line description).
COMMANDS: dict[str, tuple[str, str]] = {
    "explain": ("paperlib.tools.explain", "masks and overlays for your images (top-1, top-k or a given class)"),
    "train": ("paperlib.experiments.own", "train a masker for a shipped black box or your own classifier"),
    "evaluate": ("paperlib.experiments.evaluate", "localisation error and the saliency metric (Tables 1-3)"),
    "bench": ("paperlib.tools.bench", "speed of the masker and the baselines (masks/s, latency)"),
    "explain-bench": ("paperlib.tools.explain_bench", "cost of explaining a prediction: one pass, two passes, Grad-CAM"),
    "realtime": ("paperlib.tools.realtime", "real-time back ends on the CPU (eager, TorchScript, ONNX)"),
    "video": ("paperlib.tools.video", "masks for every frame of a video"),
    "retrain": ("paperlib.tools.retrain", "fine-tune a shipped masker and export it"),
    "cifar": ("paperlib.experiments.cifar", "the CIFAR-10 black box and masker (Fig. 6)"),
    "wsss": ("paperlib.experiments.wsss", "saliency maps vs CAMs for weakly supervised segmentation (VOC)"),
    "ablation": ("paperlib.experiments.ablation", "the recipe ablation tables"),
    "architecture": ("paperlib.experiments.architecture", "the masker-architecture table"),
    "extremal-loc": (
        "paperlib.experiments.extremal_loc",
        "Table 2's per-image Mask row with extremal perturbations (tuned on val 401-500)",
    ),
    "beyond": ("paperlib.experiments.beyond", "methods beyond the paper's tables (Grad-CAM, occlusion, faithfulness)"),
    "sanity": ("paperlib.experiments.sanity", "the randomisation sanity checks"),
    "resume": ("paperlib.experiments.resume", "compact resume state of a training run (export, restore)"),
    "curve": ("paperlib.experiments.curve", "score a run's snapshots on the tuning split (learning curve)"),
    "trainspeed": ("paperlib.tools.trainspeed", "how fast the masker trains on this machine"),
    "claims": ("paperlib.tools.claims", "the ledger of the papers' claims, measured (figures/claims.*, README)"),
    "reproduce": ("paperlib.tools.reproduce", "run every notebook and write figures/report.md"),
    "data": ("paperlib.tools.getdata", "download or check the data sets"),
    "convert-checkpoint": ("paperlib.tools.convert", "re-save a trusted old pickle checkpoint in the safe form"),
}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="paperlib",
        description="Real time image saliency for black box classifiers (Dabkowski & Gal, 2017): the companion's tools.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {name:<20}{desc}" for name, (_, desc) in COMMANDS.items()),
    )
    ap.add_argument("command", choices=list(COMMANDS), metavar="command", help="one of the commands below")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="the command's own options (paperlib <command> --help)")
    return ap


def main(argv: Sequence[str] | None = None) -> Any:
    """Run ``paperlib <command> ...``; returns what the command's ``main`` returns (an int is the exit status)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        _parser().print_help()
        return
    args = _parser().parse_args(argv[:1])
    module = importlib.import_module(COMMANDS[args.command][0])
    result = module.main(argv[1:])
    if isinstance(result, int) and not isinstance(result, bool):
        sys.exit(result)
    return result


if __name__ == "__main__":
    main()

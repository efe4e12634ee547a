"""What explaining a prediction costs on top of making it: classification alone, with the one-pass
explainer, with the masker as a second pass, and with Grad-CAM, in one run on the same images.

``paperlib explain-bench`` (``python -m paperlib.tools.explain_bench``) times, for a shipped masker and
its black box, at batch 1 and 16 (:func:`~paperlib.tools.timing.time_callable`; the rows interleaved, median over rounds of the timed
calls, eager PyTorch under ``torch.inference_mode()``; Grad-CAM needs autograd and runs with it):

* ``classify``: the black box's logits;
* ``one pass``: logits and the top-1 class's mask from one backbone pass (:class:`~paperlib.core.explainer.Explainer`);
* ``two passes``: the black box, then the masker on the top-1 class;
* ``Grad-CAM``: the black box's forward and backward for the top-1 class (:func:`~paperlib.experiments.baselines.gradcam_saliency`).

The headline is the overhead ratio, seconds of each row / seconds of ``classify`` in the same run
(a ratio of two timings on one machine, steadier than either). Writes ``figures/explain_bench.json``
and ``.md``; the hardware is recorded.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..core._common import hardware, hardware_line, write_result
from ..core.errors import InputError, one_line_errors
from ..core.explainer import Explainer, load_explainer
from ..core.paths import FIGURES_DIR
from ..experiments.baselines import gradcam_saliency
from .realtime import optimise_for_cpu
from .timing import load_bench_images, time_callable

__all__ = ["ROWS", "BACKENDS", "optimised_explainer", "run", "to_markdown", "summary", "write_results", "main"]

#: Row names, in table order.
ROWS: tuple[str, ...] = ("classify", "one pass", "two passes", "Grad-CAM")
#: CPU back ends timed besides eager PyTorch: the black box and the masker both get the same treatment
#: (:func:`paperlib.tools.realtime.optimise_for_cpu`: batch norm folded into the convolutions, channels-last).
BACKENDS: tuple[str, ...] = ("fused_bn+channels_last",)


def optimised_explainer(explainer: Explainer, backend: str = "fused_bn+channels_last") -> Explainer:
    """The explainer with its masker and its black box's network through the same CPU back end.

    Both sides are optimised alike, so the backbone they share stays one and the same computation (the
    one-pass check, :func:`~paperlib.core.explainer.shares_backbone`, compares their weights after folding).

    Raises:
        InputError: An unknown back end.
    """
    if backend not in BACKENDS:
        raise InputError(f"Unknown back end {backend!r}; known: {', '.join(BACKENDS)}.")
    bb = copy.deepcopy(explainer.black_box)
    bb.net = optimise_for_cpu(bb.net, check=False)  # logits checked against the original by the caller
    return Explainer(optimise_for_cpu(explainer.masker), bb)


def _callables(explainer: Any, x: torch.Tensor) -> dict[str, Callable[[], Any]]:
    bb, masker = explainer.black_box, explainer.masker

    def classify():
        with torch.inference_mode():
            return bb(x)

    def one_pass():
        with torch.inference_mode():
            return explainer(x)

    def two_passes():
        with torch.inference_mode():
            logits = bb(x)
            return masker(x, logits.argmax(-1))

    def gradcam():
        with torch.no_grad():
            top = bb(x).argmax(-1)  # the class to explain, as a deployed classifier would have it
        return gradcam_saliency(bb, x, top)

    return {"classify": classify, "one pass": one_pass, "two passes": two_passes, "Grad-CAM": gradcam}


def _time_rows(
    explainer: Any, images: torch.Tensor, batches: Sequence[int], names: Sequence[str], repeats: int, warmup: int
) -> dict:
    """``{row: {batch: seconds, min, max, per_image_ms, ratio to classify}}`` for the rows ``names``.

    The rows are timed interleaved: after ``warmup`` untimed calls of each, every one of ``repeats`` rounds
    calls each row once, and each row's median over the rounds is taken. A slow spell of a shared CPU then
    falls on every row alike instead of on whichever row was being timed.
    """
    rows: dict[str, dict[str, Any]] = {r: {} for r in names}
    for b in batches:
        x = images[:b].repeat((b + len(images) - 1) // len(images), 1, 1, 1)[:b]
        fns = _callables(explainer, x)
        for name in names:
            for _ in range(warmup):
                fns[name]()
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(repeats):
            for name in names:
                times[name].append(time_callable(fns[name], repeats=1, warmup=0)["median"])
        for name in names:
            t = sorted(times[name])
            med = t[len(t) // 2] if len(t) % 2 else 0.5 * (t[len(t) // 2 - 1] + t[len(t) // 2])
            rows[name][str(b)] = {"seconds": med, "min": t[0], "max": t[-1], "per_image_ms": 1e3 * med / b}
        base = rows["classify"][str(b)]["seconds"]
        for name in names:
            rows[name][str(b)]["ratio"] = round(rows[name][str(b)]["seconds"] / base, 3)
    return rows


def run(
    masker: str = "efficientnet_lite0",
    *,
    batches: Sequence[int] = (1, 16),
    repeats: int = 10,
    warmup: int = 2,
    backends: Sequence[str] = (),
) -> dict[str, Any]:
    """Time the four rows at each batch size in eager PyTorch, then classification, one pass and two passes
    through each of ``backends`` (:data:`BACKENDS`); returns the result dict (seconds and ratios)."""
    if not batches or any(b < 1 for b in batches):
        raise InputError(f"batches must be positive sizes, got {list(batches)}.")
    explainer = load_explainer(masker)
    size = explainer.black_box.input_size
    images, _, described = load_bench_images(size, max(batches))
    result = {
        "masker": masker,
        "black_box": explainer.black_box.name,
        "one_pass": explainer.one_pass,
        "images": described,
        "protocol": (
            f"eager PyTorch, rows timed interleaved: median of {repeats} rounds (each calls every row once) after "
            f"{warmup} untimed calls of each, torch threads {torch.get_num_threads()}"
        ),
        "rows": _time_rows(explainer, images, batches, ROWS, repeats, warmup),
        "hardware": hardware(),
        "hardware_line": hardware_line(),
    }
    if backends:
        result["backends"] = {}
        for backend in backends:
            fast = optimised_explainer(explainer, backend)
            with torch.inference_mode():
                x = images[:4]
                diff = float((fast.black_box(x) - explainer.black_box(x)).abs().max())
                mdiff = float((fast(x).masks - explainer(x).masks).abs().max())
            result["backends"][backend] = {
                "one_pass": fast.one_pass,
                "max_abs_diff": {"logits": diff, "masks": mdiff},
                "rows": _time_rows(fast, images, batches, ROWS[:3], repeats, warmup),
            }
    return result


def _table(rows: dict[str, dict[str, Any]], batches: Sequence[str]) -> list[str]:
    """The Markdown lines of one table: header, rule, one line per row (ms per image and ratio per batch)."""
    head = "| | " + " | ".join(f"ms / image @{b} | x classify @{b}" for b in batches) + " |"
    lines = [head, "|---" * (1 + 2 * len(batches)) + "|"]
    for name, per in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{per[b]['per_image_ms']:.1f} | {per[b]['ratio']:.2f}" for b in batches) + " |")
    return lines


def to_markdown(result: dict[str, Any]) -> str:
    """The table: per batch size, ms per image and the ratio to classification alone."""
    batches = list(next(iter(result["rows"].values())))
    lines = [
        f"## Classify and explain: {result['black_box']} with its masker ({result['masker']})",
        "",
        f"Hardware: {result['hardware_line']}. {result['protocol']}; {result['images']}.",
        "",
        *_table(result["rows"], batches),
    ]
    for backend, b_res in result.get("backends", {}).items():
        d = b_res["max_abs_diff"]
        lines += [
            "",
            f"**Back end `{backend}`** on both sides (same run; largest difference from eager on 4 images: logits "
            f"{d['logits']:.1e}, masks {d['masks']:.1e}):",
            "",
            *_table(b_res["rows"], batches),
        ]
    lines += [
        "",
        "x classify: seconds of the row / seconds of classification alone in the same run (and the same back end). "
        "The one pass computes the backbone once; two passes run it twice (black box, then masker); Grad-CAM adds a "
        "backward pass.",
    ]
    return "\n".join(lines) + "\n"


def summary(result: dict[str, Any]) -> str:
    """One sentence for the README, generated from the result (so it cannot go stale)."""
    r = result["rows"]
    parts = [
        f"at batch {b}: classification {r['classify'][b]['per_image_ms']:.1f} ms per image, classification + mask in one pass "
        f"{r['one pass'][b]['ratio']:.2f}x that, two passes {r['two passes'][b]['ratio']:.2f}x, Grad-CAM {r['Grad-CAM'][b]['ratio']:.2f}x"
        for b in r["classify"]
    ]
    for backend, b_res in result.get("backends", {}).items():
        rb = b_res["rows"]
        parts.append(
            f"with `{backend}` on both sides, one pass "
            + ", ".join(
                f"{rb['one pass'][b]['ratio']:.2f}x at batch {b} ({rb['classify'][b]['per_image_ms']:.1f} ms per image to classify)"
                for b in rb["classify"]
            )
        )
    return f"Explaining the top-1 class of {result['black_box']} ({result['hardware_line']}): " + "; ".join(parts) + "."


def write_results(result: dict[str, Any], out: str | Path = FIGURES_DIR) -> tuple[Path, Path]:
    """Write ``explain_bench.json`` and ``.md`` atomically; returns both paths."""
    return write_result(result, to_markdown(result), out, "explain_bench", indent=1, newline=True)


def main(argv: Sequence[str] | None = None) -> None:
    """``paperlib explain-bench [--masker NAME] [--batches 1 16] [--repeats N] [--out DIR] [--backends ...]``."""
    ap = argparse.ArgumentParser(prog="paperlib explain-bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--masker", default="efficientnet_lite0")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", default=str(FIGURES_DIR))
    ap.add_argument(
        "--backends",
        nargs="*",
        default=list(BACKENDS),
        choices=list(BACKENDS),
        help="CPU back ends timed besides eager (none: eager only)",
    )
    args = ap.parse_args(argv)
    with one_line_errors("paperlib explain-bench"):
        result = run(args.masker, batches=args.batches, repeats=args.repeats, warmup=args.warmup, backends=args.backends)
        paths = write_results(result, args.out)
    print(to_markdown(result))
    print("wrote", *paths)


if __name__ == "__main__":
    main()

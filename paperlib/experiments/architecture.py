"""Does the masking model depend on its architecture? The decoder's width and the encoder, at one budget.

The paper's masker is one U-Net: a frozen ResNet-50 encoder, upsampler blocks of 768, 384 and 192
channels with 3 bottleneck blocks each (paper, sec. 4). Its reviewers asked whether the results hold
beyond that one design. The shipped maskers differ from it twice: the encoder is the black box's own
backbone (EfficientNet-Lite), and the decoder is lighter (256/128/64 channels, 1 bottleneck block)
so that it runs in real time on a CPU. This module compares, at the same training budget (same
recipe, data, seed and number of steps; only the architecture differs):

* the shipped decoder against the paper's widths and depth, on the same black box and encoder;
* the black box's own encoder against another one (the Lite0 backbone explaining Lite2), as in the
  paper, whose ResNet-50 encoder explained AlexNet and GoogLeNet.

Each row reports what the tables of the project report for a masker (localisation error on
validation images 1-500 at the paper's threshold 0.5, the tuning-split statistics of
:func:`paperlib.experiments.ablation.evaluate_checkpoint`: saliency metric, mask area, speckle)
plus the size of the decoder and the masker's speed on this machine (masks per second, measured
with :class:`torch.utils.benchmark.Timer`, median of its adaptive runs).

Run ``python -m paperlib.experiments.architecture name=path ... --about name "what it is"``
(writes ``figures/architecture.json`` and ``.md``). The same rows serve any comparison at one budget:
``--out figures/recipe_200 --title "..."`` writes another table (the recipe ablation of issue 10), and
``name=figures/architecture.json#row`` takes a row already evaluated there instead of evaluating it again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils import benchmark

from ..core._common import hardware, hardware_line, write_result
from ..core.errors import InputError
from ..core.paths import FIGURES_DIR
from ..core.storage import load_masker
from .ablation import evaluate_checkpoint, paired_rows

__all__ = [
    "parameter_counts",
    "masks_per_second",
    "architecture_row",
    "config_changes",
    "architecture_table",
    "to_markdown",
    "main",
]

#: Title of the table unless ``--title`` gives another.
TITLE = "Architecture dependence of the masking model (same recipe, data, seed and steps within each pair)"

#: The paper's masking model on its closest black box (Tables 1 and 3: ResNet-50 encoder, GoogLeNet):
#: localisation error (%) and saliency metric.
PAPER = {"error": 36.9, "saliency": 0.318}


def parameter_counts(masker: torch.nn.Module) -> dict[str, int]:
    """Parameters of the masker's encoder and of the rest (decoder, feature filter, class embedding)."""
    enc = {id(p) for p in masker.encoder.parameters()}
    counts = {"encoder": 0, "decoder": 0}
    for p in masker.parameters():
        counts["encoder" if id(p) in enc else "decoder"] += p.numel()
    return counts


@torch.no_grad()
def masks_per_second(masker: torch.nn.Module, size: int, batch_size: int = 1, threads: int | None = None) -> float:
    """Masks per second of ``masker`` on random images of side ``size`` (this process's device: the CPU).

    Median time of :meth:`torch.utils.benchmark.Timer.blocked_autorange` (at least 2 s of runs).
    """
    x = torch.rand(batch_size, 3, size, size)
    y = torch.zeros(batch_size, dtype=torch.long)
    masker(x, y)  # warm-up
    timer = benchmark.Timer(
        stmt="masker(x, y)", globals={"masker": masker, "x": x, "y": y}, num_threads=threads or torch.get_num_threads()
    )
    return batch_size / timer.blocked_autorange(min_run_time=2.0).median


def architecture_row(path: str | Path, *, val_limit: int = 500, n_tune: int = 300) -> dict[str, Any]:
    """Quality (:func:`~paperlib.experiments.ablation.evaluate_checkpoint`, hole closing on), size and speed of a masker."""
    row = evaluate_checkpoint(path, n_tune=n_tune, val_limit=val_limit, close_holes=True)
    masker = load_masker(path)
    cfg = masker.config
    size = int((row["meta"].get("train_config") or {}).get("image_size", 224))
    row["architecture"] = {
        "black_box": masker.black_box,
        "encoder": cfg["encoder"],
        "widths": cfg["widths"],
        "blocks": cfg["blocks"],
        "mask_stride": cfg["mask_stride"],
        "output_gate": cfg["output_gate"],
    }
    row["parameters"] = parameter_counts(masker)
    row["speed"] = {
        "size": size,
        "masks_per_s_batch1": round(masks_per_second(masker, size, 1), 1),
        "masks_per_s_batch16": round(masks_per_second(masker, size, 16), 1),
    }
    return row


#: Training settings that do not change what is learned (where it is written, how it is scheduled on
#: the machine), left out of :func:`config_changes`.
RUN_ONLY_SETTINGS = frozenset(
    {"out", "workers", "threads", "checkpoint_every", "snapshot_every", "device", "amp", "channels_last"}
)

#: Values of settings added to the training configuration after older runs were made.
SETTING_DEFAULTS = {"class_embedding": "learned", "max_images": 0}


def config_changes(config: dict[str, Any], reference: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """What a run's training configuration changes against a reference run's: ``{setting: (reference, run)}``.

    Objective weights are compared one by one (``objective.l2``); settings that only say where and
    how the run was executed (:data:`RUN_ONLY_SETTINGS`) are ignored, and settings missing from an
    older configuration take their default (:data:`SETTING_DEFAULTS`). Used to check that a row of a
    one-change-at-a-time table changes what it says and nothing else.

    >>> config_changes({"lr": 1e-3, "out": "a", "objective": {"l2": 4.0}}, {"lr": 1e-3, "out": "b", "objective": {"l2": 2.0}})
    {'objective.l2': (2.0, 4.0)}
    >>> config_changes({"max_images": 500}, {})
    {'max_images': (0, 500)}
    """

    def flat(cfg: dict[str, Any]) -> dict[str, Any]:
        out = {**SETTING_DEFAULTS}
        for k, v in cfg.items():
            if k in RUN_ONLY_SETTINGS:
                continue
            if isinstance(v, dict):
                out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            else:
                out[k] = v
        return out

    a, b = flat(reference), flat(config)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def copied_row(spec: str) -> dict[str, Any]:
    """A row already evaluated in another table: ``spec`` is ``path/to/table.json#row``.

    Raises:
        InputError: The table or the row does not exist.
    """
    path, _, name = spec.partition("#")
    table = Path(path)
    if not table.exists():
        raise InputError(f"{table} not found: give name=path/to/table.json#row of a table written by this module.")
    rows = json.loads(table.read_text()).get("rows", {})
    if name not in rows:
        raise InputError(f"{table} has no row {name!r}; its rows are {sorted(rows)}.")
    return {**rows[name], "copied_from": f"{table.name}#{name}"}


def architecture_table(
    rows: dict[str, dict[str, Any]],
    *,
    pairs: Sequence[Sequence[str]] = (),
    notes: str = "",
    commands: Sequence[str] = (),
    title: str = TITLE,
) -> dict[str, Any]:
    """The JSON result: the rows, the pairs compared (baseline, variant), the paper's numbers, the commands that wrote the rows and the hardware."""
    for pair in pairs:
        missing = [n for n in pair if n not in rows]
        if missing:
            raise InputError(f"--pair names {missing}, not among the rows {sorted(rows)}.")
    paired = {f"{b} vs {v}": paired_rows(rows[v], rows[b]) for b, v in pairs}
    return {
        "table": "architecture",
        "title": title,
        "paper": PAPER,
        "rows": rows,
        "pairs": [list(p) for p in pairs],
        # image-by-image gain of each pair's variant over its base (None where a row lacks per-image results)
        "paired": {k: v for k, v in paired.items() if v is not None},
        "notes": notes,
        "commands": list(commands),
        "hardware": hardware(),
    }


def to_markdown(res: dict[str, Any]) -> str:
    """The table as Markdown: architecture, steps, validation error, tuning statistics, size, speed."""
    head = [
        "row",
        "black box",
        "encoder",
        "decoder (widths x blocks, mask stride)",
        "steps",
        "val err 1-500 @0.5 (%)",
        "tune err 401-500 (%)",
        "saliency (Flickr)",
        "mean area",
        "islands",
        "decoder params (M)",
        "masks/s batch 1",
        "masks/s batch 16",
    ]
    lines = [f"### {res['title']}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in res["rows"].items():
        a, t = r["architecture"], r["tuning"]
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    a["black_box"],
                    a["encoder"],
                    f"{'/'.join(map(str, a['widths']))} x {a['blocks']}, {a['mask_stride']}",
                    str(r["steps"]),
                    f"{r['val_error']['0.5']:.1f}",
                    f"{r.get('tune_error', {}).get('0.5', float('nan')):.1f}",
                    f"{t['saliency']:.3f}",
                    f"{t['area']:.3f}",
                    f"{t['islands']:.2f}",
                    f"{r['parameters']['decoder'] / 1e6:.2f}",
                    f"{r['speed']['masks_per_s_batch1']:.1f}",
                    f"{r['speed']['masks_per_s_batch16']:.1f}",
                ]
            )
            + " |"
        )
    first = next(iter(res["rows"].values()))
    lines += [
        "",
        f"Paper (ResNet-50 encoder, 768/384/192 x 3, GoogLeNet black box, full ImageNet training): localisation error "
        f"{res['paper']['error']} %, saliency metric {res['paper']['saliency']} (Tables 1 and 3; its saliency metric is "
        "on validation images, ours here on the Flickr tuning split, so compare rows with each other, not with it).",
        f"Localisation error on ILSVRC2012 validation images 1-{first.get('n_val', 0)} of the shared copy (true classes); "
        f"'tune err' on images 401-500 of them; saliency metric, area and islands on the {first['n_tune']} Flickr "
        "photographs of the tuning split (imagenet/train-extra/nips17), mask hole closing on. Speed: masker alone, "
        "CPU, at each row's training size.",
        f"Hardware: {hardware_line(res['hardware'])}.",
    ]
    for name, r in res["rows"].items():
        if r.get("about"):
            copied = f" (row evaluated in {r['copied_from']})" if r.get("copied_from") else ""
            lines.append(f"- {name}: {r['about']}{copied}")
    if res.get("paired"):
        lines += [
            "",
            "Paired comparisons (variant's gain over its base in error points, positive = better, +- paired standard error):",
        ]
        for key, p in res["paired"].items():
            parts = [
                f"images {span.split('_', 1)[1].replace('_', '-')}: {g['gain_points']:+.1f} +- {g['se_points']:.1f}"
                for span, g in p.items()
            ]
            lines.append(f"- {key}: " + "; ".join(parts))
    if res.get("notes"):
        lines += ["", res["notes"]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m paperlib.experiments.architecture name=path ... [--about NAME TEXT] [--merge] [--out figures/architecture]``."""
    ap = argparse.ArgumentParser(prog="paperlib architecture", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", help="name=path of a masker checkpoint (or a shipped masker's name)")
    ap.add_argument("--out", type=Path, default=FIGURES_DIR / "architecture")
    ap.add_argument("--val-limit", type=int, default=500)
    ap.add_argument("--n-tune", type=int, default=300)
    ap.add_argument("--about", nargs=2, action="append", default=[], metavar=("ROW", "TEXT"), help="what a row is")
    ap.add_argument("--pair", nargs=2, action="append", default=None, metavar=("BASE", "VARIANT"), help="rows compared")
    ap.add_argument("--notes", default="")
    ap.add_argument("--title", default=None, help="the table's title (default: the architecture table's)")
    ap.add_argument("--merge", action="store_true", help="add the rows (and pairs) to an existing <out>.json")
    a = ap.parse_args(argv)
    out_json = a.out.with_suffix(".json")
    old = json.loads(out_json.read_text()) if (a.merge and out_json.exists()) else {}
    rows: dict[str, Any] = old.get("rows", {})
    for spec in a.runs:
        name, _, path = spec.partition("=")
        if "#" in path:  # a row evaluated in another table
            rows[name] = copied_row(path)
            continue
        t0 = time.time()
        rows[name] = {**architecture_row(path or name, val_limit=a.val_limit, n_tune=a.n_tune), "path": path or name}
        rows[name]["seconds"] = round(time.time() - t0, 1)
        print(name, rows[name]["val_error"], rows[name]["tuning"]["saliency"], rows[name]["speed"], flush=True)
    for name, text in a.about:
        if name not in rows:
            raise InputError(f"--about names row {name!r}, which is not among {sorted(rows)}.")
        rows[name]["about"] = text
    cmd = "python -m paperlib.experiments.architecture " + " ".join(map(str, argv if argv is not None else sys.argv[1:]))
    pairs = [list(p) for p in old.get("pairs", [])]
    pairs += [list(p) for p in (a.pair or []) if list(p) not in pairs]  # --merge adds pairs, it keeps the old ones
    commands = [*old.get("commands", []), cmd]  # every command that wrote rows of this table
    title = a.title or old.get("title", TITLE)
    res = architecture_table(rows, pairs=pairs, notes=a.notes or old.get("notes", ""), commands=commands, title=title)
    md = to_markdown(res)
    write_result(res, md, out_json.parent, out_json.stem)
    print(md)


if __name__ == "__main__":
    main()

"""Mask quality on a tuning split, and the ablation table of the masker's training recipe.

Every choice of the training recipe (weights of eq. 4, length of training, data) is made on a
**tuning split** that is neither trained on nor reported: the 1,000 Flickr photographs of
``imagenet/train-extra/nips17`` (430 ImageNet classes; none is an ILSVRC2012 validation image).
They have class labels but no boxes, so the tuning criteria are the ones that need no boxes:

* the paper's saliency metric s(a, p) = log(max(a, 0.05)) - log(p) of the box around the mask
  thresholded at 0.5 (paper, sec. 5.2; lower is better);
* the mean mask area (mean of M) and the share of pixels above 0.5;
* speckle: connected *islands* of the thresholded mask beyond the first, and *holes* (connected
  background regions that do not touch the border) per mask;
* the black box's probability of the class with only the mask kept and with the mask removed
  (blurred alternative image).

A second tuning split has boxes: ILSVRC2012 validation images **401-500** of the shared copy, the
same held-out images on which the baselines' thresholds are tuned (Tables 2 and 3). Their
localisation error at the paper's threshold 0.5 is the primary criterion when it is recorded
(``tune_error``); the saliency metric on the Flickr split breaks ties. Localisation error on
images 1-400 (never used to choose) and on 1-500 (the paper's table, which includes the tuning
images) is reported beside them.

Run ``python -m paperlib.experiments.ablation name=path/to/masker.pt ... --out figures/ablation``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..core import metrics
from ..core._common import check_maps, hardware, hardware_line, write_result
from ..core.classifiers import load_classifier
from ..core.errors import InputError
from ..core.metrics import decode_correct, encode_correct, paired_gain
from ..core.objective import apply_mask, gaussian_blur
from ..core.paths import FIGURES_DIR
from ..core.storage import load_masker
from .evaluate import val_batches

__all__ = [
    "TUNING_FOLDER",
    "tuning_images",
    "speckle",
    "mask_statistics",
    "TUNE_VAL",
    "threshold_correct",
    "error_of",
    "paired_gain",
    "encode_correct",
    "decode_correct",
    "paired_rows",
    "evaluate_checkpoint",
    "total_steps",
    "ablation_table",
    "to_markdown",
    "TRAIN_SAMPLE_IMAGES",
    "mask_columns",
    "table_rows",
    "summary_lines",
    "recipe_rows",
    "image_curve",
    "recipe_lines",
    "lite1_rows",
    "lite1_sentence",
    "main",
]

#: The tuning split: a folder under ``<data_root>/imagenet`` that no shipped masker is trained on.
TUNING_FOLDER = "train-extra/nips17"


def tuning_images(size: int, n: int = 300, folder: str = TUNING_FOLDER) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, evenly spread subset of the tuning split at the black box's square input size.

    Args:
        size: Side of the images (the black box's input size).
        n: Number of images (taken every ``len // n``-th in file order, so always the same ones).
        folder: Image folder (``<wnid>/*``) under ``<data_root>/imagenet`` or a path.

    Returns:
        images (n, 3, size, size) in [0, 1] and labels (n,) standard ImageNet indices.
    """
    from ..core.folders import imagenet_folder  # here: torchvision costs seconds to import

    ds = imagenet_folder(folder)
    step = max(1, len(ds) // n)
    idx = list(range(0, len(ds), step))[:n]
    images, labels = [], []
    for i in idx:
        img, label = ds[i]
        images.append(F.interpolate(img[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0])
        labels.append(label)
    return torch.stack(images).clamp(0, 1), torch.tensor(labels)


def speckle(masks: torch.Tensor, threshold: float = 0.5) -> dict[str, torch.Tensor]:
    """Count the islands and holes of thresholded masks.

    An *island* is a connected component (8-connectivity) of ``M > threshold`` beyond the largest
    one; a *hole* is a connected component (4-connectivity) of ``M <= threshold`` that does not touch
    the image border. A clean, compact mask has 0 islands and 0 holes; speckle raises both.

    Args:
        masks: (N, 1, H, W) or (N, H, W) in [0, 1].
        threshold: The paper's localisation threshold (0.5).

    Returns:
        ``{"islands": (N,), "holes": (N,)}`` as float tensors.

    Example:
        >>> m = torch.zeros(1, 1, 10, 10); m[..., 1:7, 1:7] = 1; m[..., 3, 3] = 0; m[..., 9, 9] = 1
        >>> {k: v.tolist() for k, v in speckle(m).items()}
        {'islands': [1.0], 'holes': [1.0]}
    """
    fg = (check_maps(masks, "masks") > threshold).cpu().numpy()
    islands, holes = [], []
    eight = np.ones((3, 3), dtype=bool)
    for f in fg:
        _, n_fg = ndimage.label(f, structure=eight)
        islands.append(max(n_fg - 1, 0))
        bg_labels, n_bg = ndimage.label(~f)
        border = set(np.unique(np.concatenate([bg_labels[0], bg_labels[-1], bg_labels[:, 0], bg_labels[:, -1]]))) - {0}
        holes.append(n_bg - len(border))
    return {"islands": torch.tensor(islands, dtype=torch.float32), "holes": torch.tensor(holes, dtype=torch.float32)}


@torch.no_grad()
def mask_statistics(
    masker: torch.nn.Module, black_box: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 50
) -> dict[str, float]:
    """Box-free quality of a masker's masks for the given classes (the tuning criteria).

    Returns:
        Means over the images of: ``saliency`` (s(a, p) of the box of M > 0.5), ``box_area`` (a),
        ``box_prob`` (p), ``area`` (mean of M), ``area_05`` (share of pixels with M > 0.5),
        ``islands``, ``holes``, ``p_kept`` and ``p_removed`` (probability of the class for
        Phi(X, M) and Phi(X, 1 - M) with the blurred image as the alternative), ``empty`` (share of
        masks with no pixel above 0.5).
    """
    acc: dict[str, list[torch.Tensor]] = {}
    for lo in range(0, len(labels), batch_size):
        x, y = images[lo : lo + batch_size], labels[lo : lo + batch_size]
        m = masker(x, y)
        boxes, empty = metrics.mask_to_box(m, 0.5, return_empty=True)
        s = metrics.box_saliency_scores(black_box, x, boxes, y)
        blurred = gaussian_blur(x, 10.0 * x.shape[-1] / 224.0)
        probs = black_box(torch.cat([apply_mask(x, m, blurred), apply_mask(x, 1 - m, blurred)])).softmax(-1)
        p = probs.gather(1, torch.cat([y, y])[:, None])[:, 0]
        sp = speckle(m)
        parts = {
            "saliency": s["score"],
            "box_area": s["area"],
            "box_prob": s["prob"],
            "area": m.flatten(1).mean(1),
            "area_05": (m > 0.5).flatten(1).float().mean(1),
            "islands": sp["islands"],
            "holes": sp["holes"],
            "p_kept": p[: len(y)],
            "p_removed": p[len(y) :],
            "empty": empty.float(),
        }
        for k, v in parts.items():
            acc.setdefault(k, []).append(v.float().cpu())
    return {k: round(float(torch.cat(v).mean()), 4) for k, v in acc.items()}


#: The box tuning split: validation images 401-500 (0-based slice of the shared copy's images).
TUNE_VAL = slice(400, 500)


@torch.no_grad()
def threshold_correct(
    masker: torch.nn.Module,
    black_box: torch.nn.Module,
    thresholds: Sequence[float] = (0.3, 0.4, 0.5, 0.6, 0.7),
    *,
    limit: int | None = 500,
    batch_size: int = 50,
) -> dict[float, torch.Tensor]:
    """Per-image localisation correctness on the validation images for several thresholds (one pass).

    Returns:
        ``{threshold: BoolTensor (n,)}``, image ``i`` being validation image ``i + 1``.
    """
    correct: dict[float, list[torch.Tensor]] = {t: [] for t in thresholds}
    size = black_box.input_size
    for batch in _cached_val(size, limit, batch_size):
        m = masker(batch.images, batch.labels)
        for t in thresholds:
            boxes = metrics.scale_boxes(metrics.mask_to_box(m, t), (size, size), batch.sizes)
            correct[t].append(metrics.localisation_correct(boxes, batch.boxes).bool().cpu())
    return {t: torch.cat(c) if c else torch.zeros(0, dtype=torch.bool) for t, c in correct.items()}


def error_of(correct: dict[float, torch.Tensor], part: slice = slice(None)) -> dict[str, float]:
    """Localisation error (%) per threshold over a slice of the images of :func:`threshold_correct`."""
    return {
        str(t): round(100.0 * (1 - float(c[part].float().mean())), 1) if len(c[part]) else float("nan")
        for t, c in correct.items()
    }


def paired_rows(new: dict[str, Any], old: dict[str, Any], threshold: str = "0.5") -> dict[str, dict[str, float]] | None:
    """Paired comparison (:func:`paired_gain`) of two evaluated rows on all their validation images
    (key ``val_1_<n>``) and, with 500 or more, on the box tuning split (validation images 401-500)
    and on images 1-400 (never used to choose).

    Both rows need the per-image correctness that :func:`evaluate_checkpoint` records
    (``val_correct``) on the same images; returns ``None`` when either lacks it (rows evaluated
    before it was recorded).
    """
    a, b = new.get("val_correct", {}).get(threshold), old.get("val_correct", {}).get(threshold)
    if a is None or b is None:
        return None
    if len(a) != len(b):
        raise InputError(f"the rows were evaluated on different numbers of images ({len(a)} vs {len(b)}).")
    x, y = decode_correct(a), decode_correct(b)
    out = {f"val_1_{len(x)}": paired_gain(x, y)}  # val_1_500 for the paper's 500 images
    if len(x) >= TUNE_VAL.stop:
        out["tune_401_500"] = paired_gain(x[TUNE_VAL], y[TUNE_VAL])
        out["report_1_400"] = paired_gain(x[: TUNE_VAL.start], y[: TUNE_VAL.start])
    return out


_VAL_CACHE: dict[tuple, list] = {}


def _cached_val(size: int, limit: int | None, batch_size: int) -> list:
    """The validation batches without the original images, kept in memory for the next checkpoint."""
    key = (size, limit, batch_size)
    if key not in _VAL_CACHE:
        _VAL_CACHE[key] = [
            SimpleNamespace(images=b.images, labels=b.labels, boxes=b.boxes, sizes=b.sizes)
            for b in val_batches(size, limit=limit, batch_size=batch_size)
        ]
    return _VAL_CACHE[key]


def evaluate_checkpoint(
    path: str | Path,
    *,
    n_tune: int = 300,
    val_limit: int | None = 500,
    thresholds: Sequence[float] = (0.3, 0.4, 0.5, 0.6, 0.7),
    close_holes: bool | None = None,
) -> dict[str, Any]:
    """Tuning-split statistics and validation localisation of one masker checkpoint.

    ``close_holes``: switch the masker's hole closing on or off (:func:`paperlib.core.masker.close_mask`);
    ``None`` keeps the checkpoint's setting.
    """
    masker = load_masker(path)
    if close_holes is not None:
        masker.close_holes = close_holes
    black_box = load_classifier(masker.black_box)
    images, labels = tuning_images(black_box.input_size, n_tune)
    row: dict[str, Any] = {"tuning": mask_statistics(masker, black_box, images, labels), "n_tune": len(labels)}
    if val_limit != 0:
        correct = threshold_correct(masker, black_box, thresholds, limit=val_limit)
        row["val_error"], row["n_val"] = error_of(correct), len(correct[thresholds[0]])
        # per-image correctness at each threshold, for paired comparisons between rows (paired_rows)
        row["val_correct"] = {str(t): encode_correct(c) for t, c in correct.items()}
        if row["n_val"] >= TUNE_VAL.stop:
            row["tune_error"] = error_of(correct, TUNE_VAL)  # tuning split with boxes: val 401-500
            row["report_error"] = error_of(correct, slice(0, TUNE_VAL.start))  # val 1-400, never used to choose
    row["meta"] = {k: v for k, v in (getattr(masker, "meta", {}) or {}).items() if k in ("step", "train_config")}
    row["steps"] = total_steps(masker)
    row["close_holes"] = masker.close_holes
    return row


def total_steps(masker: torch.nn.Module) -> int:
    """Training steps behind a masker, following warm starts (``init_from``) back to the first run."""
    meta = getattr(masker, "meta", {}) or {}
    cfg = meta.get("train_config") or {}
    steps = int(meta.get("step", cfg.get("steps", 0)) or 0)
    if cfg.get("init_from"):
        steps += total_steps(load_masker(cfg["init_from"]))
    return steps


def ablation_table(rows: dict[str, dict[str, Any]], notes: str = "", command: str = "") -> dict[str, Any]:
    """Assemble the JSON result of an ablation from ``{row name: evaluate_checkpoint(...)}``.

    ``chosen`` is the row with the lowest localisation error at 0.5 on the box tuning split
    (validation images 401-500), ties broken by the saliency metric on the Flickr tuning split; rows
    without ``tune_error`` rank by the saliency metric alone. Whether it is shipped is a separate
    decision, stated in ``notes``.
    """
    return {
        "chosen": min(rows, key=lambda n: _rank(rows[n])),
        "command": command,
        "table": "ablation",
        "title": "Masker recipe ablation (tuning split for choices; validation localisation reported only)",
        "tuning_split": f"imagenet/{TUNING_FOLDER}: Flickr photographs with ImageNet labels, never trained on",
        "rows": rows,
        "notes": notes,
        "hardware": hardware(),
    }


def _rank(row: dict[str, Any]) -> tuple[float, float]:
    tune = row.get("tune_error", {}).get("0.5")
    return (tune if tune is not None else float("inf"), row["tuning"]["saliency"])


def to_markdown(result: dict[str, Any]) -> str:
    """The ablation as a Markdown table: tuning criteria first, then the reported validation error."""
    cols = ["saliency", "box_area", "area", "islands", "holes", "p_kept", "p_removed"]
    first = next(iter(result["rows"].values()))
    ts = list(first.get("val_error", {}))
    boxed = any("tune_error" in r for r in result["rows"].values())
    head = ["row", "steps", *cols, *(["tune err @0.5", "err 1-400 @0.5"] if boxed else []), *(f"val err @{t}" for t in ts)]
    lines = [f"### {result['title']}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in result["rows"].items():
        vals = [f"{r['tuning'][c]:.2f}" if c in ("islands", "holes") else f"{r['tuning'][c]:.3f}" for c in cols]
        if boxed:
            vals += [f"{r.get(k, {}).get('0.5', float('nan')):.1f}" for k in ("tune_error", "report_error")]
        vals += [f"{r.get('val_error', {}).get(t, float('nan')):.1f}" for t in ts]
        label = f"**{name}** (tuning-best)" if name == result.get("chosen") else name
        lines.append("| " + " | ".join([label, str(r.get("steps", "")), *vals]) + " |")
    n_val = first.get("n_val", 0)
    lines += [
        "",
        f"Tuning splits: {result['tuning_split']} ({first['n_tune']} images) for the box-free columns"
        + (
            "; ImageNet validation images 401-500 for 'tune err @0.5' (localisation error, the primary criterion). "
            "'err 1-400 @0.5' is never used to choose"
            if boxed
            else "; choices are made on these columns only"
        )
        + f". 'val err @t': localisation error (%) on validation images 1-{n_val} (the paper's table; it includes "
        "images 401-500) with the mask read at threshold t (the paper's protocol is t = 0.5; the other thresholds "
        "show calibration).",
        f"Hardware: {hardware_line(result['hardware'])}.",
    ]
    if result.get("notes"):
        lines += ["", result["notes"]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- reading the committed tables
#: Distinct images of the ImageNet train sample (``imagenet/train-sample``), the base recipe's data.
TRAIN_SAMPLE_IMAGES = 3035
_TUNING_COLUMNS = ("saliency", "box_area", "area", "islands", "holes", "p_kept", "p_removed")


def mask_columns(row: dict[str, Any]) -> dict[str, float]:
    """The tuning split's mask statistics of one evaluated row, under the names the tables show.

    Example:
        >>> t = {"saliency": -1.0, "area": 0.4, "islands": 0.5, "holes": 2.0, "p_removed": 0.1}
        >>> list(mask_columns({"tuning": t}))
        ['saliency (Flickr)', 'area', 'islands', 'holes', 'p removed']
    """
    t = row["tuning"]
    return {
        "saliency (Flickr)": t["saliency"],
        "area": t["area"],
        "islands": t["islands"],
        "holes": t["holes"],
        "p removed": t["p_removed"],
    }


def table_rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ablation (``ablation.json``) as row name -> columns: steps, change, tuning criteria, errors.

    Errors: ``tune err @0.5`` (val 401-500), ``err 1-400 @0.5`` (never used to choose) and
    ``val err @<t>`` (val 1-500) for every threshold recorded; None where a row has no such entry.
    """
    return {
        name: {
            "steps": r["steps"],
            "change": r["change"],
            **{k: r["tuning"][k] for k in _TUNING_COLUMNS},
            "tune err @0.5": r.get("tune_error", {}).get("0.5"),
            "err 1-400 @0.5": r.get("report_error", {}).get("0.5"),
            **{f"val err @{t}": e for t, e in r["val_error"].items()},
        }
        for name, r in result["rows"].items()
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    """What the ablation says, as Markdown bullets: the chosen row against ``shipped`` and ``control``.

    The tuning-split and held-out errors, the saliency metric, the mask area, holes and p(removed),
    the reported error at 0.5, and the rows behind the chosen one on the saliency metric.
    """
    rows, chosen = result["rows"], result["chosen"]
    base, ctrl, ch = rows["shipped"], rows["control"], rows[chosen]
    lines = [
        f"- On the box tuning split (validation images 401-500) the tuning-best row `{chosen}` localises with "
        f"{ch['tune_error']['0.5']:.1f} % error against {base['tune_error']['0.5']:.1f} % for the shipped masker; on images "
        f"1-400, never used to choose, {ch['report_error']['0.5']:.1f} % against {base['report_error']['0.5']:.1f} %.",
        f"- On the tuning split, 150 more steps of the shipped recipe (control) moved the saliency metric from "
        f"{base['tuning']['saliency']:.3f} to {ctrl['tuning']['saliency']:.3f}; the best row on that metric, `{chosen}` "
        f"({ch['change']}) reached **{ch['tuning']['saliency']:.3f}**, with mean mask area "
        f"{ch['tuning']['area']:.2f} (shipped {base['tuning']['area']:.2f}) and {ch['tuning']['holes']:.1f} holes "
        f"per mask (shipped {base['tuning']['holes']:.1f}); removing its mask leaves p = {ch['tuning']['p_removed']:.2f} "
        f"of the class (shipped {base['tuning']['p_removed']:.2f}).",
        f"- Reported on validation images 1-{base['n_val']}, at the paper's threshold 0.5: shipped "
        f"{base['val_error']['0.5']:.1f} %, control {ctrl['val_error']['0.5']:.1f} %, `{chosen}` "
        f"{ch['val_error']['0.5']:.1f} %.",
    ]
    worse = {n: r["tuning"]["saliency"] for n, r in rows.items() if r["tuning"]["saliency"] > ch["tuning"]["saliency"]}
    lines.append(
        "- Rows behind it on the tuning split's saliency metric: "
        + ", ".join(f"`{n}` {v:.3f}" for n, v in sorted(worse.items(), key=lambda kv: kv[1]))
        + "."
    )
    return lines


def _gain_text(paired: dict[str, Any], key: str) -> str:
    if key not in paired:
        return ""
    p = paired[key]["val_1_500"]
    return f"{p['gain_points']:+.1f} ± {p['se_points']:.1f}"


def recipe_rows(recipe: dict[str, Any], changes: dict[str, dict[str, tuple[Any, Any]]]) -> dict[str, dict[str, Any]]:
    """The from-scratch recipe rows (``recipe_200.json``) as row name -> columns, the ``base*`` rows first.

    Args:
        recipe: The committed result (``rows`` and, where computed, ``paired``).
        changes: Row name -> what its training configuration changes from the base's
            (:func:`paperlib.experiments.architecture.config_changes`): key -> (base value, row value).

    Returns:
        Per row: the changes in words, the errors on val 1-500 and 401-500, the paired gain over the
        base on 1-500 (``"gain ± se"``, empty without a paired result) and :func:`mask_columns`.
    """
    rows, paired = recipe["rows"], recipe.get("paired", {})
    order = sorted(rows, key=lambda n: not n.startswith("base"))
    return {
        n: {
            "changes (from the configs)": "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in changes[n].items()) or "-",
            "val err 1-500": rows[n]["val_error"]["0.5"],
            "tune err 401-500": rows[n]["tune_error"]["0.5"],
            "gain vs base 1-500 (pts)": _gain_text(paired, f"base vs {n}"),
            **mask_columns(rows[n]),
        }
        for n in order
    }


def image_curve(changes: dict[str, dict[str, tuple[Any, Any]]], all_images: int = TRAIN_SAMPLE_IMAGES) -> dict[int, str]:
    """The learning curve over distinct training images: number of images -> recipe row.

    The rows that change nothing but ``max_images`` (the base itself counts with ``all_images``; the
    second seed does not).

    Example:
        >>> image_curve({"base": {}, "base_seed1": {"seed": (0, 1)}, "images_500": {"max_images": (None, 500)}})
        {3035: 'base', 500: 'images_500'}
    """
    return {
        (changes[n].get("max_images", (0, 0))[1] or all_images): n
        for n in changes
        if set(changes[n]) <= {"max_images"} and n != "base_seed1"
    }


def recipe_lines(recipe: dict[str, Any], base: str = "base", seed_row: str = "base_seed1") -> list[str]:
    """What the recipe rows say, as Markdown bullets: the seed's own difference, then each row against it.

    A change counts only if its paired gain over the base on images 1-500 is beyond two paired
    standard errors and beyond the difference a second seed of the base makes.
    """
    rows, paired = recipe["rows"], recipe["paired"]
    ref = rows[base]
    seed = paired[f"{base} vs {seed_row}"]["val_1_500"]
    lines = [
        f"- Seed alone: the base recipe with seed 1 localises with {rows[seed_row]['val_error']['0.5']:.1f} % "
        f"against {ref['val_error']['0.5']:.1f} % (seed 0) on images 1-500: a paired difference of "
        f"{seed['gain_points']:+.1f} ± {seed['se_points']:.1f} points. The paired standard error measures which images "
        "were tested, not the training's own randomness; a change counts only if its gain is beyond two paired "
        f"standard errors **and** beyond the seed's own difference ({abs(seed['gain_points']):.1f} points)."
    ]
    for n, r in rows.items():
        if n.startswith(base):
            continue
        p = paired[f"{base} vs {n}"]["val_1_500"]
        counts = abs(p["gain_points"]) > max(2 * p["se_points"], abs(seed["gain_points"]))
        lines.append(
            f"- `{n}`: {r['val_error']['0.5']:.1f} % on images 1-500 (paired gain {p['gain_points']:+.1f} ± "
            f"{p['se_points']:.1f}: {'counts' if counts else 'within the noise'}), {r['tune_error']['0.5']:.1f} % on the "
            f"tuning images; saliency metric {r['tuning']['saliency']:.3f} (base {ref['tuning']['saliency']:.3f}), "
            f"area {r['tuning']['area']:.2f}, {r['tuning']['islands']:.2f} islands per mask, removing the mask "
            f"leaves p = {r['tuning']['p_removed']:.2f}."
        )
    return lines


def lite1_rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Lite1 ablation (``ablation_lite1.json``) as row name -> steps, the three errors at 0.5, :func:`mask_columns`."""
    return {
        n: {
            "steps": r["steps"],
            "tune err 401-500": r["tune_error"]["0.5"],
            "err 1-400": r["report_error"]["0.5"],
            "val err 1-500": r["val_error"]["0.5"],
            **mask_columns(r),
        }
        for n, r in result["rows"].items()
    }


def lite1_sentence(result: dict[str, Any], reference: str = "shipped_closed") -> str:
    """Whether the new Lite1 row passes the shipping rule against the shipped masker, in one sentence.

    The rule: its paired gain on the tuning images (val 401-500) exceeds twice the paired standard
    error; the gain on images 1-400 (never used to choose) is given beside it.
    """
    new = next(n for n in result["rows"] if n != reference)
    gain = result["rows"][new][f"paired_vs_{reference}"]
    t = gain["tune_401_500"]
    passes = t["gain_points"] > 2 * t["se_points"]
    return (
        f"Lite1, `{new}` against the shipped masker on the tuning images: {t['gain_points']:+.1f} ± "
        f"{t['se_points']:.1f} points ({'passes' if passes else 'does not pass'} the rule); on images 1-400 "
        f"{gain['report_1_400']['gain_points']:+.1f} ± {gain['report_1_400']['se_points']:.1f}."
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m paperlib.experiments.ablation name=checkpoint ... [--out figures/ablation] [--n-tune 300] [--val-limit 500]``."""
    ap = argparse.ArgumentParser(prog="paperlib ablation", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", help="name=path of a masker checkpoint (or a shipped masker's name)")
    ap.add_argument("--out", type=Path, default=FIGURES_DIR / "ablation")
    ap.add_argument("--n-tune", type=int, default=300)
    ap.add_argument("--val-limit", type=int, default=500, help="validation images for the reported error (0: skip)")
    ap.add_argument("--notes", default="")
    ap.add_argument("--merge", action="store_true", help="add the rows to an existing <out>.json")
    ap.add_argument("--change", nargs=2, action="append", default=[], metavar=("ROW", "TEXT"), help="what a row changes")
    ap.add_argument("--close-holes", nargs="*", default=[], metavar="ROW", help="rows evaluated with the mask's hole closing on")
    ap.add_argument(
        "--paired-with",
        default=None,
        metavar="ROW",
        help="compare every row with this one image by image (paired gain and standard error, key paired_vs_<ROW>)",
    )
    a = ap.parse_args(argv)
    out_json = a.out.with_suffix(".json")
    rows: dict[str, Any] = json.loads(out_json.read_text())["rows"] if (a.merge and out_json.exists()) else {}
    for spec in a.runs:
        name, _, path = spec.partition("=")
        t0 = time.time()
        change = rows.get(name, {}).get("change")  # a re-evaluated row keeps what it changes
        rows[name] = evaluate_checkpoint(
            path or name, n_tune=a.n_tune, val_limit=a.val_limit, close_holes=True if name in a.close_holes else None
        )
        if change is not None:
            rows[name]["change"] = change
        rows[name]["path"] = path or name
        rows[name]["seconds"] = round(time.time() - t0, 1)
        print(name, json.dumps(rows[name]["tuning"]), rows[name].get("val_error"), flush=True)
    for name, r in rows.items():
        if "steps" not in r:  # rows evaluated before the step count was recorded
            r["steps"] = total_steps(load_masker(r["path"]))
    for name, text in a.change:
        if name not in rows:
            raise InputError(f"--change names row {name!r}, which is not among {sorted(rows)}.")
        rows[name]["change"] = text
    if a.paired_with is not None:
        if a.paired_with not in rows:
            raise InputError(f"--paired-with names row {a.paired_with!r}, which is not among {sorted(rows)}.")
        for name, r in rows.items():
            paired = paired_rows(r, rows[a.paired_with]) if name != a.paired_with else None
            if paired is not None:
                r[f"paired_vs_{a.paired_with}"] = paired
    res = ablation_table(
        rows, a.notes, command="python -m paperlib.experiments.ablation " + " ".join(map(str, argv or sys.argv[1:]))
    )
    md = to_markdown(res)
    write_result(res, md, out_json.parent, out_json.stem)
    print(md)


if __name__ == "__main__":
    main()

"""Learning curves of a long training run: snapshots scored on the box tuning split, and progress per session.

A run started with ``--snapshot-every K`` keeps its masker every K steps (``<run>/snapshots/step<k>.pt``).
:func:`score_snapshot` scores one on the **box tuning split** only (ILSVRC2012 validation images
401-500, the split on which thresholds and recipes are chosen; images 1-400 are never looked at
here): localisation error at several thresholds (the paper's protocol, t = 0.5 the paper's), the
mean mask area for the true class and for a wrong class (a fixed random other class per image).

``python -m paperlib.experiments.curve RUN --out results/full/runs/<name>/curve.json`` scores every
snapshot not yet in the JSON (atomically rewritten after each), so that the curve grows session by
session; image passes = steps x batch size.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from ..core import metrics
from ..core._common import atomic_write_text, hardware_line
from ..core.classifiers import load_classifier
from ..core.errors import DataNotFoundError, InputError, one_line_errors
from ..core.storage import load_masker
from . import baselines
from .ablation import TUNE_VAL, encode_correct, paired_gain
from .evaluate import val_batches

__all__ = [
    "THRESHOLDS",
    "OFFSETS",
    "score_masker",
    "shipping_rule",
    "tune_inference",
    "score_snapshot",
    "snapshots",
    "update_curve",
    "per_doubling",
    "earlier_points",
    "log_segments",
    "record_session",
    "per_image_correct",
    "report_heldout",
    "summary_sentence",
    "main",
]

#: Thresholds at which the tuning-split error is recorded.
THRESHOLDS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)

#: Gate offsets (the authors' model_confidence; theirs: 6 at inference) tried by :func:`tune_inference`.
OFFSETS: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)

_CACHE: dict[int, list] = {}


def _tuning_batches(size: int) -> list:
    if size not in _CACHE:
        _CACHE[size] = list(val_batches(size, start=TUNE_VAL.start, limit=TUNE_VAL.stop - TUNE_VAL.start, batch_size=50))
    return _CACHE[size]


@torch.no_grad()
def score_masker(
    masker: torch.nn.Module, black_box: torch.nn.Module, thresholds: Sequence[float] = THRESHOLDS, *, wrong_class: bool = True
) -> dict[str, Any]:
    """Localisation error (%) per threshold and mean mask areas on validation images 401-500.

    Returns:
        ``{"tune_error": {t: %}, "correct": {t: "0101..."}, "area_true": float, "area_wrong": float, "n": 100}``
        (``correct``: per-image localisation, :func:`~paperlib.experiments.ablation.encode_correct`); the wrong class
        of image ``i`` is ``(label + 1 + i * 7919) % C``, the same for every masker.
    """
    size = black_box.input_size
    correct: dict[float, list[torch.Tensor]] = {t: [] for t in thresholds}
    area_true, area_wrong, seen = [], [], 0
    for b in _tuning_batches(size):
        m = masker(b.images, b.labels)
        for t in thresholds:
            boxes = metrics.scale_boxes(metrics.mask_to_box(m, t), (size, size), b.sizes)
            correct[t].append(metrics.localisation_correct(boxes, b.boxes).bool())
        idx = torch.arange(seen, seen + len(b.labels))
        wrong = (b.labels + 1 + idx * 7919) % masker.num_classes
        wrong = torch.where(wrong == b.labels, (wrong + 1) % masker.num_classes, wrong)
        area_true.append(m.flatten(1).mean(1))
        if wrong_class:
            area_wrong.append(masker(b.images, wrong).flatten(1).mean(1))
        seen += len(b.labels)
    err = {str(t): round(100.0 * (1 - float(torch.cat(c).float().mean())), 1) for t, c in correct.items()}
    return {
        "tune_error": err,
        "correct": {str(t): encode_correct(torch.cat(c)) for t, c in correct.items()},  # per image, for paired gains
        "area_true": round(float(torch.cat(area_true).mean()), 4),
        "area_wrong": round(float(torch.cat(area_wrong).mean()), 4) if area_wrong else None,
        "n": seen,
    }


def tune_inference(
    masker: Any, black_box: torch.nn.Module, offsets: Sequence[float] = OFFSETS, thresholds: Sequence[float] = THRESHOLDS
) -> dict[str, Any]:
    """Choose the masker's gate offset and box threshold on validation images 401-500 (the tuning split).

    The lowest error wins; ties go to the smaller offset, then to the threshold nearest the paper's 0.5.
    The masker's own ``gate_offset`` is restored afterwards.

    Returns:
        ``{"grid": {offset: {threshold: error %}}, "gate_offset", "threshold", "tune_error", "area"}``.
    """
    before = masker.gate_offset
    grid, areas = {}, {}
    try:
        for k in offsets:
            masker.gate_offset = k
            row = score_masker(masker, black_box, thresholds, wrong_class=False)
            grid[str(k)], areas[str(k)] = row["tune_error"], row["area_true"]
    finally:
        masker.gate_offset = before
    best = min(
        ((float(k), float(t), e) for k, errs in grid.items() for t, e in errs.items()),
        key=lambda r: (r[2], r[0], abs(r[1] - 0.5)),
    )
    return {"grid": grid, "area": areas, "gate_offset": best[0], "threshold": best[1], "tune_error": best[2]}


def snapshots(run: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of a run's snapshots, in step order."""
    found = []
    for p in (Path(run) / "snapshots").glob("step*.pt"):
        m = re.fullmatch(r"step(\d+)\.pt", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def score_snapshot(path: str | Path, batch_size: int) -> dict[str, Any]:
    """One curve point: :func:`score_masker` of the masker file ``path`` with its step and image passes."""
    masker = load_masker(path)
    step = int((masker.meta or {}).get("step", 0))
    black_box = load_classifier(masker.black_box)
    t0 = time.perf_counter()
    row = score_masker(masker, black_box)
    return {"step": step, "passes": step * batch_size, **row, "seconds": round(time.perf_counter() - t0, 1)}


def update_curve(run: str | Path, out: str | Path, *, every: int = 1) -> dict[str, Any]:
    """Score the snapshots of ``run`` that ``out`` lacks (every ``every``-th one), rewriting ``out`` after each."""
    run, out = Path(run), Path(out)
    cfg_file = run / "config.json"
    if not cfg_file.is_file():
        raise DataNotFoundError(f"{cfg_file} does not exist: give a run folder of python -m paperlib.train.")
    cfg = json.loads(cfg_file.read_text())
    curve = (
        json.loads(out.read_text())
        if out.is_file()
        else {"run": run.name, "split": "ILSVRC2012 val 401-500 (tuning)", "points": []}
    )
    curve["train_config"] = cfg
    curve["hardware"] = hardware_line()
    done = {p["step"] for p in curve["points"]}
    todo = [(s, p) for s, p in snapshots(run) if s not in done and (s // max(cfg.get("snapshot_every", 1), 1)) % every == 0]
    for step, path in todo:
        curve["points"].append(score_snapshot(path, cfg["batch_size"]))
        curve["points"].sort(key=lambda r: r["step"])
        atomic_write_text(json.dumps(curve, indent=1) + "\n", out)
        p = curve["points"][-1]
        print(
            f"step {step}: tuning error at 0.5 {p['tune_error']['0.5']} %, mask area {p.get('area_true')} (wrong class {p.get('area_wrong')})"
        )
    return curve


def per_doubling(passes: Sequence[float], errors: Sequence[float]) -> float | None:
    """Least-squares slope of error against log2(passes): the error change per doubling of training.

    >>> per_doubling([1000, 2000, 4000], [50.0, 48.0, 46.0])
    -2.0
    >>> per_doubling([1000], [50.0]) is None
    True
    """
    if len(passes) < 2 or len(set(passes)) < 2:
        return None
    x = torch.tensor([float(p) for p in passes]).log2()
    y = torch.tensor([float(e) for e in errors])
    xc = x - x.mean()
    return round(float((xc * (y - y.mean())).sum() / (xc * xc).sum()), 2)


def earlier_points(figures: str | Path) -> list[dict[str, Any]]:
    """Tuning-split points of the maskers trained before the long run, from the committed tables.

    Rows of ``ablation.json`` and ``recipe_200.json`` with a tuning error (val 401-500 at 0.5) and a
    training length: ``{"name", "table", "passes", "tune_error", "recipe"}``, passes = steps x 16 (every
    one of those runs used batch 16; warm starts count their start's steps too).
    """
    out = []
    for table in ("ablation", "recipe_200"):
        f = Path(figures) / f"{table}.json"
        if not f.is_file():
            continue
        for name, r in json.loads(f.read_text())["rows"].items():
            err = (r.get("tune_error") or {}).get("0.5")
            if err is None or not r.get("steps"):
                continue
            preset = ((r.get("meta") or {}).get("train_config") or {}).get("objective_preset", "project")
            out.append({"name": name, "table": table, "passes": 16 * int(r["steps"]), "tune_error": err, "recipe": preset})
    return out


def log_segments(log: str | Path) -> list[dict[str, float]]:
    """The stretches of a run's ``log.jsonl`` trained by one process each (``time`` restarts at a resume).

    Returns ``[{"first": step, "last": step, "seconds": wall time of the stretch}]``.
    """
    segs: list[dict[str, float]] = []
    prev_t = None
    for line in Path(log).read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if prev_t is None or rec["time"] < prev_t:
            segs.append({"first": rec["step"], "last": rec["step"], "seconds": 0.0})
        segs[-1]["last"], segs[-1]["seconds"] = rec["step"], rec["time"]
        prev_t = rec["time"]
    return segs


def record_session(run: str | Path, out: str | Path, *, session: str, first_step: int, note: str = "") -> dict[str, Any]:
    """Add (or replace) this session's row in the run's ``progress.json``: steps, passes, hours, tuning error.

    ``first_step``: the first step this session trained; the session's rows of the log from it on count.
    """
    run, out = Path(run), Path(out)
    cfg = json.loads((run / "config.json").read_text())
    segs = [g for g in log_segments(run / "log.jsonl") if g["last"] >= first_step]
    last = max(int(g["last"]) for g in segs)
    seconds = sum(g["seconds"] * (g["last"] - max(g["first"], first_step) + 1) / (g["last"] - g["first"] + 1) for g in segs)
    curve_file = out.parent / "curve.json"
    pts = json.loads(curve_file.read_text())["points"] if curve_file.is_file() else []
    row = {
        "session": session,
        "steps": [first_step, last],
        "passes_total": last * cfg["batch_size"],
        "hours": round(seconds / 3600, 2),
        "s_per_step": round(seconds / max(last - first_step + 1, 1), 2),
        "tune_error_at_0.5": pts[-1]["tune_error"]["0.5"] if pts else None,
        "tune_error_step": pts[-1]["step"] if pts else None,
        "hardware": hardware_line(),
        "note": note,
    }
    progress = json.loads(out.read_text()) if out.is_file() else {"run": run.name, "budget_passes": 192_000, "sessions": []}
    progress["sessions"] = [r for r in progress["sessions"] if r["session"] != session] + [row]
    atomic_write_text(json.dumps(progress, indent=1) + "\n", out)
    return row


@torch.no_grad()
def per_image_correct(
    method: str, black_box: torch.nn.Module, *, masker: Any = None, threshold: float = 0.5, alpha: float = 0.5, limit: int = 500
) -> torch.Tensor:
    """Per-image localisation correctness (bool, validation image ``i + 1`` at ``i``) of the masker at
    ``threshold`` (``method="masker"``) or of a gradient map at ``alpha`` (``"gradcam"``, ``"grad"``)."""
    size, out = black_box.input_size, []
    for b in val_batches(size, limit=limit, batch_size=50):
        if method == "masker":
            boxes = metrics.mask_to_box(masker(b.images, b.labels), threshold)
        else:
            with torch.enable_grad():
                maps = baselines.saliency_map(method, black_box, b.images, b.labels).detach()
            boxes = baselines.threshold_box(maps, alpha)
        out.append(metrics.localisation_correct(metrics.scale_boxes(boxes, (size, size), b.sizes), b.boxes).bool())
    return torch.cat(out)


def report_heldout(candidate: dict[str, torch.Tensor], references: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Errors of a chosen masker on images 1-400 (never used to choose) and 1-500 (the paper's table), and its
    paired gains (:func:`~paperlib.experiments.ablation.paired_gain`) against each reference on 1-400.

    Args:
        candidate: ``{reading: correctness (500,)}``, e.g. ``{"t=0.5": ..., "tuned": ...}``.
        references: ``{name: correctness (500,)}`` (the shipped masker, Grad-CAM at its tuned alpha, ...).
    """
    report: dict[str, Any] = {}
    for reading, c in candidate.items():
        report[reading] = {
            "error_1_400": round(100 * (1 - float(c[: TUNE_VAL.start].float().mean())), 1),
            "error_1_500": round(100 * (1 - float(c.float().mean())), 1),
            "paired_1_400": {name: paired_gain(c[: TUNE_VAL.start], r[: TUNE_VAL.start]) for name, r in references.items()},
        }
    report["references"] = {
        name: {
            "error_1_400": round(100 * (1 - float(r[: TUNE_VAL.start].float().mean())), 1),
            "error_1_500": round(100 * (1 - float(r.float().mean())), 1),
        }
        for name, r in references.items()
    }
    return report


def shipping_rule(candidate: torch.Tensor, shipped: torch.Tensor) -> dict[str, Any]:
    """The project's rule for replacing a shipped masker, on the tuning split (validation images 401-500) only.

    A candidate replaces the shipped masker when its paired gain there (:func:`~paperlib.experiments.ablation.paired_gain`,
    positive = fewer errors) exceeds twice its paired standard error.

    Args:
        candidate, shipped: Per-image correctness (bool) of validation images 1-500 (:func:`per_image_correct`).

    Returns:
        The paired gain on images 401-500 with ``"passes"`` (bool) and the rule in words.

    >>> new = torch.ones(500, dtype=torch.bool); old = new.clone(); old[400:450] = False
    >>> r = shipping_rule(new, old); (r["gain_points"], r["se_points"], r["passes"])
    (50.0, 5.0, True)
    """
    if len(candidate) < TUNE_VAL.stop or len(shipped) < TUNE_VAL.stop:
        raise InputError(
            f"the rule needs the correctness of validation images 1-{TUNE_VAL.stop}; got {len(candidate)} and {len(shipped)}."
        )
    gain = paired_gain(candidate[TUNE_VAL], shipped[TUNE_VAL])
    return {
        **gain,
        "split": f"ILSVRC2012 val {TUNE_VAL.start + 1}-{TUNE_VAL.stop} (tuning)",
        "rule": "replace when the paired gain exceeds twice its paired standard error",
        "passes": bool(gain["gain_points"] > 2 * gain["se_points"]),
    }


def _closing_words(inference: dict[str, Any]) -> str:
    """How the decision chose hole closing, in words (empty for decisions made before it was chosen)."""
    if "close_holes" not in inference or "speckle" not in inference:
        return ""
    ours, other = inference["speckle"], inference["other"]["speckle"]
    state = "closed" if inference["close_holes"] else "open"
    return (
        f", with its masks' holes {state} (tuning error {inference['tune_error']} % {state}, "
        f"{inference['other']['tune_error']} % otherwise; holes per mask {ours['holes']:g} against {other['holes']:g})"
    )


def summary_sentence(decision: dict[str, Any], curve_json: dict[str, Any]) -> str:
    """The README's sentence on a long run, generated from its shipping decision (``ship.json`` of
    :func:`paperlib.tools.retrain.ship_best`) and ``curve.json``, so that it cannot go stale."""
    pts = curve_json["points"]
    chosen = next(p for p in pts if p["step"] == decision["snapshot"])
    rep = decision["heldout"]
    at05 = rep["t=0.5"]
    pairs = at05["paired_1_400"]
    old = next(k for k in pairs if k.startswith("shipped"))
    gradcam = next(k for k in pairs if k.startswith("Grad-CAM"))
    rule = decision["shipping_rule"]
    slope = per_doubling([p["passes"] for p in pts], [p["tune_error"]["0.5"] for p in pts])
    return (
        f"After {pts[-1]['passes']:,} image passes ({pts[-1]['passes'] / 192_000:.0%} of the authors' budget), the snapshot "
        f"chosen on validation images 401-500 (step {chosen['step']}, {chosen['passes']:,} passes: {chosen['tune_error']['0.5']} % "
        f"there at t = 0.5, mask area {chosen['area_true']:.2f}, {chosen['area_wrong']:.3f} for a wrong class) "
        + ("passed" if rule["passes"] else "failed")
        + f" the shipping rule there against the masker shipped before it (gain {rule['gain_points']:+.1f} ± "
        f"{rule['se_points']:.1f} points)"
        + (" and is the shipped Lite0 masker" if decision.get("shipped") else ", so it was not shipped")
        + _closing_words(decision.get("inference", {}))
        + f". On images 1-400, never used to choose, it localises at {at05['error_1_400']} % (1-500: {at05['error_1_500']} %), "
        f"against {rep['references'][old]['error_1_400']} % for the earlier masker (paired gain "
        f"{pairs[old]['gain_points']:+.1f} ± {pairs[old]['se_points']:.1f} points) and "
        f"{rep['references'][gradcam]['error_1_400']} % for Grad-CAM at its tuned threshold "
        f"({pairs[gradcam]['gain_points']:+.1f} ± {pairs[gradcam]['se_points']:.1f})"
        + (f"; tuning error change per doubling of passes so far: {slope:+.1f} points." if slope is not None else ".")
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m paperlib.experiments.curve RUN --out JSON``."""
    ap = argparse.ArgumentParser(prog="paperlib curve", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="run folder with snapshots/ (python -m paperlib.train --snapshot-every K)")
    ap.add_argument("--out", required=True, help="curve JSON to extend")
    ap.add_argument("--every", type=int, default=1, help="score only every n-th snapshot")
    args = ap.parse_args(argv)
    with one_line_errors("curve"):
        update_curve(args.run, args.out, every=args.every)


if __name__ == "__main__":
    main()

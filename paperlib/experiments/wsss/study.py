"""The resumable study: every method's maps on the VOC images, scored at every background threshold.

:func:`run` computes the maps of each image (:func:`~paperlib.experiments.wsss.maps.compute_maps`),
turns them into pseudo-mask scores and adds them to one
:class:`~paperlib.core.segmentation.SegmentationScores` per method; a state file written every few
images lets a killed run continue. The result is the dictionary that
:func:`~paperlib.experiments.wsss.report.write_outputs` writes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...core._common import atomic_save
from ...core.errors import InputError
from ...core.segmentation import IGNORE, SegmentationScores, region_miou, region_recall
from ...core.serialization import safe_load
from .config import BLACK_BOX, HEAD_PATH, MASKER_PATH, METHODS, PRESETS, REFERENCE, WSSSConfig, hardware
from .data import _sample, open_voc
from .head import load_voc_black_box
from .maps import compute_maps
from .masker import load_voc_masker
from .pseudo_masks import dr_levels, prepare_maps

__all__ = ["run"]


def _method_keys(cfg: WSSSConfig, with_masker: bool) -> list[str]:
    keys = [k for k in METHODS if with_masker or k != "masker"]
    return keys + [f"crops_w@{n}" for n in cfg.crop_counts]


def _summary(scores: SegmentationScores, cfg: WSSSConfig) -> dict[str, Any]:
    """Metrics at the best t (max mIoU) and at the reference's thresholds, for every tau."""
    cur = scores.curves(cfg.tau)
    miou = np.nan_to_num(cur["mIoU"], nan=-1.0)
    i = int(np.argmax(miou))

    def at(j: int) -> dict[str, Any]:
        row = {k: round(float(v[j]), 2) for k, v in cur.items() if k != "t"}
        row["t"] = round(float(cur["t"][j]), 3)
        row["by_tau"] = {
            str(tau): {
                "DR recall": round(float(100 * region_recall(scores.confusions("DR", tau)[j])), 2),
                "NDR recall": round(float(100 * region_recall(scores.confusions("NDR", tau)[j])), 2),
                "DR mIoU*": round(float(100 * region_miou(scores.confusions("DR", tau)[j])), 2),
                "NDR mIoU*": round(float(100 * region_miou(scores.confusions("NDR", tau)[j])), 2),
            }
            for tau in cfg.taus
        }
        return row

    fixed = {}
    for t in (0.04, 0.08, 0.1):
        j = np.nonzero(np.isclose(cur["t"], t))[0]
        if len(j):
            fixed[str(t)] = at(int(j[0]))
    return {"best": at(i), "at_t": fixed, "curves": {k: [round(float(x), 3) for x in v] for k, v in cur.items()}}


@dataclass
class _Progress:
    """What a :func:`run` has accumulated so far (and what its resume file keeps)."""

    scores: dict[str, "SegmentationScores"]
    gen: torch.Generator
    timings: dict[str, float] = field(default_factory=dict)
    n_maps: int = 0
    skipped_ignore: list = field(default_factory=list)
    no_label: list = field(default_factory=list)
    start: int = 0
    elapsed_before: float = 0.0

    def state(self, ident: dict, next_i: int, elapsed: float) -> dict[str, Any]:
        """The resume file's content after the images before ``next_i``."""
        return {
            "ident": json.loads(json.dumps(ident)),
            "next": next_i,
            "elapsed": self.elapsed_before + elapsed,
            "hist": {k: s.hist for k, s in self.scores.items()},
            "images": {k: s.images for k, s in self.scores.items()},
            "timings": self.timings,
            "n_maps": self.n_maps,
            "skipped": self.skipped_ignore,
            "no_label": self.no_label,
            "generator": self.gen.get_state(),
        }

    def restore(self, st: dict[str, Any]) -> None:
        """Continue from a resume file's content (see :meth:`state`)."""
        self.start, self.elapsed_before = st["next"], st["elapsed"]
        for k, sc in self.scores.items():  # saved as tensors (plain data, see core.serialization): back to NumPy
            sc.hist, sc.images = _numpy(st["hist"][k]), st["images"][k]
        self.timings, self.n_maps, self.skipped_ignore, self.no_label = st["timings"], st["n_maps"], st["skipped"], st["no_label"]
        self.gen.set_state(st["generator"])


def _numpy(x: Any) -> Any:
    return x.numpy() if isinstance(x, torch.Tensor) else x


def _prepared(k: str, maps: dict[str, Any], classes: list[int], cfg: WSSSConfig) -> torch.Tensor:
    """Method ``k``'s maps of one image as pseudo-mask scores (:func:`prepare_maps`)."""
    if k.startswith("crops_w@"):
        raw = maps["sweep"][int(k.split("@")[1])] if classes else maps["cam"]
    else:
        raw = maps["cam" if k == "cam_ref" else k]
    if k == "cam_ref":
        return prepare_maps(raw, subtract=0.0, mode="max")
    return prepare_maps(raw, subtract=cfg.subtract, quantile=cfg.quantile)


def _score_image(ds: Any, i: int, prog: _Progress, bb: nn.Module, mk: Any, cfg: WSSSConfig) -> Optional[tuple]:
    """Compute and score every method's maps of image ``i``; returns (image_id, image, gt, classes, maps) or None."""
    image, gt, classes, image_id = _sample(ds, i)
    if not bool((gt != IGNORE).any()):
        prog.skipped_ignore.append(image_id)
        return None
    if not classes:
        prog.no_label.append(image_id)
    maps = compute_maps(image, classes, bb=bb, masker=mk, cfg=cfg, generator=prog.gen, timings=prog.timings)
    prog.n_maps += len(classes)
    levels = dr_levels(gt, maps["cam_all"], cfg.taus)
    for k, sc in prog.scores.items():
        sc.update(_prepared(k, maps, classes, cfg), classes, gt, levels)
    return image_id, image, gt, classes, maps


def _table_rows(summary: dict[str, Any], keys: Sequence[str], cfg: WSSSConfig, seconds_per_map: dict) -> tuple[list, list]:
    """The main table's rows (best threshold of each method) and the crop-count sweep."""
    rows = []
    for k in keys:
        if "@" in k:
            continue
        b = summary[k]["best"]
        rows.append(
            {
                "key": k,
                "method": METHODS[k],
                "t": b["t"],
                **{m: b[m] for m in ("mIoU", "FG precision", "DR recall", "NDR recall", "DR mIoU*", "NDR mIoU*")},
                "s/map": seconds_per_map.get(k),
            }
        )
    sweep = []
    for n in cfg.crop_counts:
        s = summary[f"crops_w@{n}"]
        sweep.append(
            {
                "n_crops": n,
                "best t": s["best"]["t"],
                "mIoU (best t)": s["best"]["mIoU"],
                "mIoU (t = 0.1)": s["at_t"].get("0.1", {}).get("mIoU"),
                "NDR recall (best t)": s["best"]["NDR recall"],
            }
        )
    return rows, sweep


def _per_map_by_method(timings: dict[str, float], n_maps: int, suffix: str) -> dict[str, Optional[float]]:
    """Seconds per map of each method (``suffix`` ``""``: CPU, ``"_wall"``: wall clock)."""
    per_map = {k: round(v / max(n_maps, 1), 4) for k, v in timings.items()}
    return {
        k: per_map.get(k.split("_")[0] + suffix if k.startswith("crops") else ("cam" if k == "cam_ref" else k) + suffix)
        for k in METHODS
    }


def _open_progress(
    cfg: WSSSConfig, keys: list[str], ident: dict, state_file: Optional[Path], n: int, progress: bool
) -> _Progress:
    """A fresh :class:`_Progress`, or the one in ``state_file`` when it belongs to the same run."""
    prog = _Progress(
        scores={k: SegmentationScores(cfg.t_grid, cfg.taus) for k in keys}, gen=torch.Generator().manual_seed(cfg.seed)
    )
    if state_file is not None and state_file.is_file():
        st = safe_load(state_file, what="WSSS study state")
        if st.get("ident") == json.loads(json.dumps(ident)):
            prog.restore(st)
            if progress:
                print(f"  resuming from {state_file} at image {prog.start + 1}/{n}", file=sys.stderr, flush=True)
    return prog


def run(
    cfg: WSSSConfig = PRESETS["quick"],
    *,
    root=None,
    head: os.PathLike | str = HEAD_PATH,
    masker: os.PathLike | str | None = MASKER_PATH,
    progress: bool = False,
    keep_maps: Sequence[int] = (),
    resume: Optional[os.PathLike | str] = None,
    resume_every: int = 10,
) -> dict[str, Any]:
    """Score every method on the VOC images of ``cfg`` and return the result (also what :func:`write_outputs` writes).

    Args:
        cfg: Preset (see :data:`PRESETS`).
        root: Data root (default ``$PAPERLIB_DATA``).
        head: VOC head checkpoint. masker: VOC masking model checkpoint (None: leave the masker out).
        keep_maps: Indices (into the scored images) whose maps, image and mask are returned under ``"maps"``.
        resume: A state file: written atomically every ``resume_every`` images; if it exists and belongs to the
            same configuration, data, head and masker, the run continues from it (a killed run loses at most
            ``resume_every`` images). Deleted at the end.

    Images whose mask is all ignore pixels are counted and skipped (nothing to score); an image without
    any class label is scored with an all-background pseudo-mask.
    """
    t_start = time.time()
    ds = open_voc(root, cfg.limit)
    bb = load_voc_black_box(head)
    mk = load_voc_masker(masker) if masker is not None else None
    keys = _method_keys(cfg, mk is not None)
    ident = {"config": asdict(cfg), "ids": list(ds.ids), "head": str(head), "masker": str(masker), "keys": keys}
    state_file = Path(resume) if resume else None
    prog = _open_progress(cfg, keys, ident, state_file, len(ds), progress)
    kept: dict[str, Any] = {}
    for i in range(prog.start, len(ds)):
        done = _score_image(ds, i, prog, bb, mk, cfg)
        if done is not None and i in keep_maps:
            image_id, image, gt, classes, maps = done
            kept[image_id] = {"image": image, "gt": gt, "classes": classes, **{k: v for k, v in maps.items() if k != "sweep"}}
        if state_file is not None and (i + 1) % resume_every == 0 and i + 1 < len(ds):
            atomic_save(prog.state(ident, i + 1, time.time() - t_start), state_file)
        if progress and (i + 1) % 10 == 0:
            cpu = sum(v for k, v in prog.timings.items() if not k.endswith("_wall"))
            print(
                f"  {i + 1}/{len(ds)} images, {time.time() - t_start:.0f} s wall, {cpu:.0f} s CPU in the maps",
                file=sys.stderr,
                flush=True,
            )
    if not any(s.images for s in prog.scores.values()):
        raise InputError(f"None of the {len(ds)} VOC images has a scorable pixel (all masks are ignore pixels).")
    result = _result(cfg, ds, bb, mk, head, masker, keys, prog)
    result["seconds"] = round(prog.elapsed_before + time.time() - t_start, 1)
    result["resumed_at_image"] = prog.start or None
    if state_file is not None and state_file.is_file():
        state_file.unlink()
    if keep_maps:
        result["maps"] = kept
    return result


def _result(
    cfg: WSSSConfig, ds: Any, bb: nn.Module, mk: Any, head: Any, masker: Any, keys: list[str], prog: _Progress
) -> dict[str, Any]:
    """The JSON result of :func:`run` from what it accumulated (without the run time)."""
    summary = {k: _summary(s, cfg) for k, s in prog.scores.items()}
    seconds_per_map = _per_map_by_method(prog.timings, prog.n_maps, "")
    rows, sweep = _table_rows(summary, keys, cfg, seconds_per_map)
    return {
        "table": "wsss" if cfg.preset == "full" else f"wsss_{cfg.preset}",
        "title": f"Saliency maps vs CAMs for weakly supervised segmentation (Maruf et al.), VOC black box {BLACK_BOX}",
        "preset": cfg.preset,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "data": f"PASCAL VOC 2012 val, the first {len(ds)} ids of {ds.split_file or ds.mask_dir} (the shared offline copy), "
        f"masks {ds.mask_dir.name}; maps for the image-level labels of each image",
        "images": len(ds),
        "images_scored": len(ds) - len(prog.skipped_ignore),
        "maps_per_method": prog.n_maps,
        "skipped_all_ignore": prog.skipped_ignore,
        "no_class_label": prog.no_label,
        "black_box": {
            "name": BLACK_BOX,
            "cross_fitted_mAP": bb.meta.get("cross_fitted_mAP"),
            "train_mAP": bb.meta.get("train_mAP"),
            "head": str(Path(head).name),
        },
        "masker": None
        if mk is None
        else {
            "name": Path(masker).name,
            "train_seconds": mk.meta.get("train_seconds"),
            "steps": mk.meta.get("steps"),
            "scored_on_training_images": True,
        },
        "rows": rows,
        "crop_sweep": sweep,
        "claim": _claim({r["key"]: r for r in rows}, cfg),
        "methods": summary,
        "seconds_per_map": seconds_per_map,
        "seconds_per_map_note": "CPU seconds of the process per (image, class) map (time.process_time, "
        f"{torch.get_num_threads()} torch thread(s)); CAM and gradient include their forward pass, crops all crops",
        "wall_seconds_per_map": _per_map_by_method(prog.timings, prog.n_maps, "_wall"),
        "seconds_total": {k: round(v, 1) for k, v in prog.timings.items()},
        "hardware": hardware(),
        "reference": REFERENCE,
    }


def _claim(by: dict[str, dict], cfg: WSSSConfig) -> dict[str, Any]:
    """The study's claim on these numbers: crops (weighted) match CAM on mIoU (within ``claim_margin``
    points) and recover more of the NDR (higher NDR recall), each at its best t."""
    cam, crops = by["cam"], by["crops_w"]
    d_miou = round(crops["mIoU"] - cam["mIoU"], 2)
    d_ndr = round(crops["NDR recall"] - cam["NDR recall"], 2)
    matches = abs(d_miou) <= cfg.claim_margin
    more_ndr = d_ndr > 0
    out = {
        "mIoU crops_w - cam": d_miou,
        "NDR recall crops_w - cam": d_ndr,
        "NDR mIoU* crops_w - cam": round(crops["NDR mIoU*"] - cam["NDR mIoU*"], 2),
        "margin": cfg.claim_margin,
        "matches_on_mIoU": bool(matches),
        "higher_NDR_recall": bool(more_ndr),
        "holds": bool(matches and more_ndr),
    }
    if "masker" in by:
        out["mIoU masker - cam"] = round(by["masker"]["mIoU"] - cam["mIoU"], 2)
        out["NDR recall masker - cam"] = round(by["masker"]["NDR recall"] - cam["NDR recall"], 2)
    return out

"""The resumable study: every method's maps on the VOC images, scored at every background threshold.

:func:`run` computes the maps of each image (:func:`~paperlib.experiments.wsss.maps.compute_maps`),
turns them into pseudo-mask scores and adds them to one
:class:`~paperlib.core.segmentation.SegmentationScores` per method; a state file written every few
images lets a killed run continue. The result is the dictionary that
:func:`~paperlib.experiments.wsss.report.write_results` writes.
"""

from __future__ import annotations

import json
import os
import re
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
    """The score keys of a run: the selected methods, then the crop-count sweep of ``crops_w`` (if selected)."""
    keys = [k for k in cfg.selected if with_masker or k != "masker"]
    return keys + ([f"crops_w@{n}" for n in cfg.crop_counts] if "crops_w" in keys else [])


def _t_index(t_grid: Any, t: float) -> int:
    """Index of ``t`` in ``t_grid`` (:class:`WSSSConfig` checks that it is there)."""
    return int(np.nonzero(np.isclose(np.asarray(t_grid, dtype=np.float64), t))[0][0])


def _summary(scores: SegmentationScores, cfg: WSSSConfig) -> dict[str, Any]:
    """Metrics at the best t (max mIoU), at the reference's thresholds and at ``cfg.fixed_t`` (if set), for every tau."""
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
    out = {"best": at(i), "at_t": fixed, "curves": {k: [round(float(x), 3) for x in v] for k, v in cur.items()}}
    if cfg.fixed_t is not None:
        out["fixed_t"] = at(_t_index(cur["t"], cfg.fixed_t))
    return out


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
        raw = maps["sweep"][int(k.split("@")[1])] if classes else maps["cam_all"][:0]
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
    """The main table's rows (each method at its best threshold, or at ``cfg.fixed_t``) and the crop-count sweep."""
    rows = []
    for k in keys:
        if "@" in k:
            continue
        b = summary[k]["best" if cfg.fixed_t is None else "fixed_t"]
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
    for n in cfg.crop_counts if "crops_w" in keys else ():
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


def _per_map_by_method(
    timings: dict[str, float], n_maps: int, suffix: str, methods: Sequence[str] = tuple(METHODS)
) -> dict[str, Optional[float]]:
    """Seconds per map of each of ``methods`` (``suffix`` ``""``: CPU, ``"_wall"``: wall clock)."""
    per_map = {k: round(v / max(n_maps, 1), 4) for k, v in timings.items()}
    return {
        k: per_map.get(k.split("_")[0] + suffix if k.startswith("crops") else ("cam" if k == "cam_ref" else k) + suffix)
        for k in methods
    }


def _open_progress(
    cfg: WSSSConfig, keys: list[str], ident: dict, state_file: Optional[Path], n: int, progress: bool
) -> _Progress:
    """A fresh :class:`_Progress`, or the one in ``state_file`` when it belongs to the same run."""
    prog = _Progress(
        scores={k: SegmentationScores(cfg.t_grid, cfg.taus, cfg.tau) for k in keys}, gen=torch.Generator().manual_seed(cfg.seed)
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
    """Score every method on the VOC images of ``cfg`` and return the result (also what :func:`~paperlib.experiments.wsss.report.write_results` writes).

    Args:
        cfg: Preset (see :data:`PRESETS`); ``cfg.methods`` selects the methods (None: all), ``cfg.fixed_t``
            scores the rows at a given threshold instead of each method's best one.
        root: Data root (default ``$PAPERLIB_DATA``).
        head: VOC head checkpoint. masker: VOC masking model checkpoint (None: leave the masker out; it is
            also neither loaded nor run when ``cfg.methods`` leaves ``"masker"`` out).
        keep_maps: Indices (into the scored images) whose maps, image and mask are returned under ``"maps"``.
        resume: A state file: written atomically every ``resume_every`` images; if it exists and belongs to the
            same configuration, data, head and masker, the run continues from it (a killed run loses at most
            ``resume_every`` images). Deleted at the end.

    Images whose mask is all ignore pixels are counted and skipped (nothing to score); an image without
    any class label is scored with an all-background pseudo-mask.

    Raises:
        InputError: ``cfg.methods`` names ``"masker"`` but ``masker`` is None; or no image has a scorable pixel.
    """
    if masker is None and cfg.methods is not None and "masker" in cfg.methods:
        raise InputError("cfg.methods selects 'masker' but masker=None: give the masking model's checkpoint.")
    if "masker" not in cfg.selected:
        masker = None
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
    methods = [k for k in cfg.selected if k in keys]
    seconds_per_map = _per_map_by_method(prog.timings, prog.n_maps, "", methods)
    rows, sweep = _table_rows(summary, keys, cfg, seconds_per_map)
    scored = [i for i in ds.ids if i not in set(prog.skipped_ignore)]
    return {
        "table": "wsss" if cfg.preset == "full" else f"wsss_{cfg.preset}",
        "title": f"Saliency maps vs CAMs for weakly supervised segmentation (Maruf et al.), VOC black box {BLACK_BOX}",
        "preset": cfg.preset,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "data": _data_description(ds),
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
            **_training_overlap(bb.meta, scored),
        },
        "masker": None
        if mk is None
        else {
            "name": Path(masker).name,
            "train_seconds": mk.meta.get("train_seconds"),
            "steps": mk.meta.get("steps"),
            **_training_overlap(mk.meta, scored),
        },
        "t_choice": _t_choice(cfg),
        "rows": rows,
        "crop_sweep": sweep,
        "claim": _claim({r["key"]: r for r in rows}, cfg),
        "methods": summary,
        "seconds_per_map": seconds_per_map,
        "seconds_per_map_note": "CPU seconds of the process per (image, class) map (time.process_time, "
        f"{torch.get_num_threads()} torch thread(s)); CAM and gradient include their forward pass, crops all crops",
        "wall_seconds_per_map": _per_map_by_method(prog.timings, prog.n_maps, "_wall", methods),
        "seconds_total": {k: round(v, 1) for k, v in prog.timings.items()},
        "hardware": hardware(),
        "reference": REFERENCE,
    }


def _listed_ids(src: Path) -> Optional[list[str]]:
    """The ids a split file lists (or, for a folder, its mask files' names, sorted); None if unreadable."""
    if src.is_file():
        return [ln.split()[0] for ln in src.read_text().splitlines() if ln.strip()]
    if src.is_dir():
        return sorted(p.stem for p in src.glob("*.png"))
    return None


def _data_description(ds: Any) -> str:
    """What was scored, from the loader's actual ids, split file or mask folder, root and labels file."""
    src = Path(ds.split_file) if ds.split_file is not None else Path(ds.mask_dir)
    listed = _listed_ids(src) or []
    ids, n = list(ds.ids), len(ds.ids)
    if ids == listed:
        which = f"all {n} ids of"
    elif ids == listed[:n]:
        which = f"the first {n} ids of"
    else:
        which = f"{n} ids ({', '.join(ids[:3])}{', ...' if n > 3 else ''}) set by the caller, not the first {n} of"
    where = f"split file {src}" if ds.split_file is not None else f"the masks in {src}"
    labels_file = getattr(ds, "labels_file", None)
    labels = (
        f"image-level labels from {labels_file}"
        if labels_file
        else "image-level labels read from the masks (no image_labels.csv)"
    )
    return (
        f"PASCAL VOC 2012 under {ds.root}: {which} {where}, masks {ds.mask_dir.name}; maps for the image-level labels of "
        f"each image ({labels})"
    )


#: "the first N ids of <file or folder> (" in the ``data`` line of a head's or masker's training record.
_FIRST_IDS = re.compile(r"the first (\d+) ids of (.+?) \(")


def _training_ids(meta: dict[str, Any]) -> tuple[Optional[list[str]], str]:
    """The ids a VOC head or masker was trained on, from its record (JSON beside the checkpoint), and how they are
    known; (None, why not) when its record does not say."""
    if isinstance(meta.get("train_ids"), list):
        return [str(i) for i in meta["train_ids"]], "the train_ids listed in its training record"
    m = _FIRST_IDS.search(str(meta.get("data", "")))
    if m is None:
        return None, "its training record (JSON beside the checkpoint) lists no train_ids and no 'the first N ids of <file>'"
    n, src = int(m.group(1)), Path(m.group(2))
    listed = _listed_ids(src)
    if listed is None or len(listed) < n:
        return None, f"its training record says 'the first {n} ids of {src}', which cannot be read here"
    return listed[:n], f"the first {n} ids of {src}, as its training record says (file read at scoring time)"


def _training_overlap(meta: dict[str, Any], scored: Sequence[str]) -> dict[str, Any]:
    """Whether the scored ids overlap the model's training ids: ``scored_on_training_images`` (True / False, or None
    with ``scored_on_training_images_unknown_because``), and how many of the scored images it was trained on."""
    train, how = _training_ids(meta)
    if train is None:
        return {"scored_on_training_images": None, "scored_on_training_images_unknown_because": how}
    k = len(set(scored) & set(train))
    return {
        "scored_on_training_images": k > 0,
        "scored_training_images": k,
        "training_images": len(train),
        "training_ids_from": how,
    }


def _t_choice(cfg: WSSSConfig) -> dict[str, Any]:
    """Which background threshold the rows and the claim use."""
    if cfg.fixed_t is None:
        return {"mode": "best", "t": None, "note": "each method at its own best t (max mIoU) on the scored images"}
    return {
        "mode": "fixed",
        "t": cfg.fixed_t,
        "note": "every method at the given fixed_t (chosen outside these scores); each method's best t on the scored "
        "images stays under methods.<key>.best",
    }


def _claim(by: dict[str, dict], cfg: WSSSConfig) -> Optional[dict[str, Any]]:
    """The study's claim on these numbers: crops (weighted) match CAM on mIoU (within ``claim_margin``
    points) and recover more of the NDR (higher NDR recall), each at its best t (or at ``cfg.fixed_t``).
    None when ``cam`` or ``crops_w`` was not scored."""
    if "cam" not in by or "crops_w" not in by:
        return None
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

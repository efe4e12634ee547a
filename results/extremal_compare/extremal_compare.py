"""Extremal perturbation masks vs. the paper-style iterative masks on the three sample photographs.

Black box: EfficientNet-Lite0 (paperlib.load_classifier("efficientnet_lite0")); images:
paperlib.tools.sample_images.sample_batch(224) (chelsea / Egyptian cat, coffee / espresso, rocket / missile).

Methods (300 iterations each):
* extremal: paperlib.experiments.extremal.extremal_masks, modes ssr and sdr, areas 0.05 / 0.1 / 0.2, defaults otherwise;
* iterative: paperlib.experiments.iterative.optimise_masks, modes ssr and sdr, its defaults
  (ObjectiveConfig() = eq. 4 as printed, 28 x 28 mask, Adam lr 0.1, init 0.5).

Every mask is scored the same way, with the deterministic blurred alternative A = blur(X, sigma 10 px)
and f_c the softmax probability of the label:
* rel_prob: SSR f_c(X M + A (1 - M)) / f_c(X) (the kept region must keep the class: high is good);
  SDR f_c(X (1 - M) + A M) / f_c(X) (removing the region must kill the class: low is good);
* rel_prob_bin: the same with the mask binarised at 0.5;
* area: mean(M); area_bin: mean(M > 0.5); islands: connected components of M > 0.5 (scipy.ndimage.label);
* grey: fraction of pixels with 0.1 < M < 0.9 (a "grey noise" mask has it near 1).

Usage (resumable: finished (method, mode) chunks in the JSON are kept):
    OMP_NUM_THREADS=1 nice -n 19 PAPERLIB_DATA=/work/shared/data /work/main/.venv/bin/python extremal_compare.py \
        [--out extremal_compare.json] [--masks masks.pt]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import time
from pathlib import Path

import torch
from scipy import ndimage

from paperlib import load_classifier
from paperlib.core.objective import apply_mask, gaussian_blur
from paperlib.experiments.extremal import ExtremalConfig, extremal_masks
from paperlib.experiments.iterative import optimise_masks
from paperlib.tools.sample_images import sample_batch

AREAS = (0.05, 0.1, 0.2)
ITERATIONS = 300
MODES = ("ssr", "sdr")


def probability(black_box: torch.nn.Module, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return black_box(images).softmax(-1).gather(1, classes[:, None])[:, 0]


def score(black_box, x, y, p0, blur, masks: torch.Tensor, mode: str) -> list[dict]:
    """Metrics of (N, 1, H, W) masks, one dict per image."""
    keep = masks if mode == "ssr" else 1.0 - masks
    binary = (masks > 0.5).float()
    keep_bin = binary if mode == "ssr" else 1.0 - binary
    rel = probability(black_box, apply_mask(x, keep, blur), y) / p0
    rel_bin = probability(black_box, apply_mask(x, keep_bin, blur), y) / p0
    rows = []
    for i in range(len(x)):
        m = masks[i, 0]
        rows.append(
            {
                "rel_prob": round(float(rel[i]), 4),
                "rel_prob_bin": round(float(rel_bin[i]), 4),
                "area": round(float(m.mean()), 4),
                "area_bin": round(float((m > 0.5).float().mean()), 4),
                "islands": int(ndimage.label((m > 0.5).numpy())[1]),
                "grey": round(float(((m > 0.1) & (m < 0.9)).float().mean()), 4),
            }
        )
    return rows


def summary(rows: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for r in rows:
        key = f"{r['method']}/{r['mode']}" + (f"/a={r['target_area']}" if r["target_area"] is not None else "")
        out.setdefault(key, []).append(r)
    return {
        k: {
            m: round(sum(r[m] for r in v) / len(v), 4)
            for m in ("rel_prob", "rel_prob_bin", "area", "area_bin", "islands", "grey")
        }
        for k, v in out.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    parser.add_argument("--masks", type=Path, default=None, help="also save every mask to this .pt file")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    done = {(c["method"], c["mode"]) for c in result.get("chunks", [])}
    saved_masks = torch.load(args.masks) if args.masks and args.masks.exists() else {}

    black_box = load_classifier("efficientnet_lite0")
    x, y, names = sample_batch(224)
    p0 = probability(black_box, x, y)
    blur = gaussian_blur(x, 10.0 * x.shape[-1] / 224.0)
    result["setup"] = {
        "black_box": "efficientnet_lite0",
        "images": names,
        "classes": y.tolist(),
        "p_original": [round(float(p), 4) for p in p0],
        "iterations": ITERATIONS,
        "areas": list(AREAS),
        "extremal_config": {
            **ExtremalConfig().__dict__,
            **{
                k: v.default
                for k, v in inspect.signature(extremal_masks).parameters.items()
                if k in ("grid", "smooth", "lr", "alternative")
            },
        },
        "iterative": "optimise_masks defaults: ObjectiveConfig() (paper eq. 4 terms), mask_size 28, Adam lr 0.1, init 0.5",
        "scoring": "blurred alternative, sigma 10 px; rel_prob = f_c(perturbed) / f_c(original); ssr keeps M, sdr removes M",
        "threads": torch.get_num_threads(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, shared with other jobs (nice 19)",
    }
    result.setdefault("chunks", [])

    for method in ("extremal", "iterative"):
        for mode in MODES:
            if (method, mode) in done:
                print(f"{method}/{mode}: already done")
                continue
            wall, cpu = time.time(), time.process_time()
            if method == "extremal":
                masks = extremal_masks(
                    black_box, x, y, mode=mode, areas=AREAS, iterations=ITERATIONS, generator=torch.Generator().manual_seed(0)
                )
            else:
                masks = optimise_masks(
                    black_box, x, y, mode=mode, iterations=ITERATIONS, generator=torch.Generator().manual_seed(0)
                )[:, None]
            wall, cpu = time.time() - wall, time.process_time() - cpu
            areas = AREAS if method == "extremal" else (None,)
            rows = []
            for j, a in enumerate(areas):
                for i, r in enumerate(score(black_box, x, y, p0, blur, masks[:, j], mode)):
                    rows.append({"method": method, "mode": mode, "target_area": a, "image": names[i], **r})
            result["chunks"].append(
                {
                    "method": method,
                    "mode": mode,
                    "wall_s": round(wall, 1),
                    "cpu_s": round(cpu, 1),
                    "wall_s_per_image": round(wall / len(x), 1),
                    "cpu_s_per_image": round(cpu / len(x), 1),
                    "masks_per_image": len(areas),
                    "rows": rows,
                }
            )
            result["summary"] = summary([r for c in result["chunks"] for r in c["rows"]])
            args.out.write_text(json.dumps(result, indent=1))
            if args.masks:
                saved_masks[f"{method}/{mode}"] = masks
                torch.save(saved_masks, args.masks)
            for r in rows:
                print(r, flush=True)
            print(f"{method}/{mode}: {wall:.0f} s wall, {cpu:.0f} s CPU for {len(x)} images", flush=True)


if __name__ == "__main__":
    main()

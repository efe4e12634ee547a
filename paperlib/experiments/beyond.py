"""Beyond the paper's metrics: deletion / insertion, the pointing game and the saliency metric's bias.

The paper's reviewers doubted (``../shared/papers``) that localisation error measures saliency at
all, and that the saliency metric is fair: it crops the box and squashes it to the black box's
square input, which favours some box shapes. This module scores every method on the same
ImageNet validation images with:

* **deletion and insertion AUC** (:mod:`paperlib.core.faithfulness`) with a blurred and a grey
  alternative image;
* the **pointing game** (hit when the map's maximum lies within 15 px, at 224 px, of a
  ground-truth box of the class);
* the **saliency metric** s(a, p) = log(max(a, 0.05)) - log(p) of each method's box read three
  ways: ``squash`` (the paper: crop, resize ignoring the aspect ratio), ``pad`` (crop, pad to a
  square with grey, resize: aspect kept) and ``blur`` (keep the whole image and blur everything
  outside the box).

Methods: the masking model, Grad, guided backprop, Grad-CAM, a centred Gaussian map (the
"centre" floor of the pointing game and a centre box for the saliency metric), a random map, and
for the box metrics the ground-truth and max boxes. Gradient maps are boxed at thresholds tuned
on validation images 401-500 (:func:`paperlib.experiments.evaluate.tune_alphas`, as in Table 2) in
the full preset, and at 0.25 of the maximum in the quick one.

Run ``python -m paperlib.experiments.beyond --preset quick|full`` (writes
``figures/beyond[_quick].json`` and ``.md``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core import faithfulness as fa
from ..core import metrics
from ..core._common import hardware, hardware_line, write_result
from ..core.classifiers import load_classifier
from ..core.errors import InputError
from ..core.objective import gaussian_blur
from ..core.paths import FIGURES_DIR
from ..core.storage import load_masker
from . import baselines, iterative
from .evaluate import tune_alphas, val_batches

__all__ = [
    "BeyondConfig",
    "PRESETS",
    "table_name",
    "MAP_METHODS",
    "BOX_METHODS",
    "READINGS",
    "LABELS",
    "method_maps",
    "box_reading_scores",
    "run",
    "to_markdown",
    "write_results",
    "committed",
    "differences",
    "ranked_labels",
    "ranking_sentence",
    "summary_lines",
    "main",
]

#: Methods with a saliency map (deletion, insertion, pointing game).
MAP_METHODS = ("masker", "grad", "guided", "gradcam", "occlusion", "mask", "centre", "random")
#: Methods with a box (saliency metric under each reading).
BOX_METHODS = ("ground_truth", "max", "centre", "grad", "gradcam", "occlusion", "mask", "masker")
#: How the saliency metric reads a box: the paper's crop-and-squash, crop-and-pad, blur outside.
READINGS = ("squash", "pad", "blur")
LABELS = {
    "masker": "Masking model",
    "grad": "Grad",
    "guided": "Guided backprop",
    "gradcam": "Grad-CAM",
    "occlusion": "Occlusion",
    "mask": "Mask (iterative)",
    "centre": "Centre",
    "random": "Random map",
    "ground_truth": "Ground truth boxes",
    "max": "Max box",
}


@dataclass(frozen=True)
class BeyondConfig:
    """What a run scores: ``limit`` validation images from image 1, ``steps`` per curve, box thresholds;
    ``occlusion_window`` the occlusion square (``None``: H / 7, 32 px at 224)."""

    preset: str = "full"
    black_box: str = "efficientnet_lite0"
    limit: int = 500
    steps: int = 16
    alpha: float | str = "tuned"
    tolerance_224: float = 15.0
    batch_size: int = 25
    seed: int = 0
    mask_iterations: int = 300
    methods: tuple[str, ...] = MAP_METHODS
    occlusion_window: int | None = None

    def box_methods(self) -> list[str]:
        """The box methods this run scores: the boxes that need no map, and those of its map methods."""
        return [m for m in BOX_METHODS if m in ("ground_truth", "max", "centre") or m in self.methods]


PRESETS: dict[str, BeyondConfig] = {
    # smoke: a 112 px occlusion square (9 positions, not 169): every code path in a few seconds
    "smoke": BeyondConfig(preset="smoke", limit=3, steps=2, alpha=0.25, batch_size=3, mask_iterations=3, occlusion_window=112),
    "quick": BeyondConfig(preset="quick", limit=6, steps=4, alpha=0.25, batch_size=6, mask_iterations=10),
    "full": BeyondConfig(preset="full"),
}


def _centre_map(n: int, size: int) -> torch.Tensor:
    """A centred isotropic Gaussian (sigma = size / 4): maximum at the centre, ties nowhere."""
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * (size / 4) ** 2))
    return g.expand(n, 1, size, size).clone()


def method_maps(
    method: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    black_box,
    masker,
    seed: int = 0,
    mask_iterations: int = 300,
    occlusion_window: int | None = None,
) -> torch.Tensor:
    """Saliency map (N, 1, H, W) of one method at the images' resolution (higher = more salient).

    ``"mask"`` is Fong & Vedaldi's iterative mask (``mask_iterations`` Adam steps per batch, as in
    Table 2; salient = 1 - M); ``"occlusion"`` a grey square (``occlusion_window`` px, default H / 7,
    32 px at 224) slid at half its side (Captum).
    """
    n, _, h, w = images.shape
    if method == "masker":
        with torch.inference_mode():
            return masker(images, labels).clone()
    if method == "occlusion":
        return baselines.occlusion_saliency(black_box, images, labels, window=occlusion_window).detach()
    if method in ("grad", "guided", "gradcam"):
        return baselines.saliency_map(method, black_box, images, labels).detach()
    if method == "mask":
        gen = torch.Generator().manual_seed(seed)
        return iterative.optimise_masks(
            black_box, images, labels, mode="fong", iterations=mask_iterations, generator=gen
        ).detach()
    if method == "centre":
        return F.interpolate(_centre_map(n, max(h, w)), size=(h, w), mode="bilinear", align_corners=False)
    if method == "random":
        return torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(seed + int(labels.sum())))
    raise InputError(f"Unknown method {method!r}; known: {', '.join(MAP_METHODS)}.")


def _read_box(image: torch.Tensor, box: torch.Tensor, reading: str, size: int) -> tuple[torch.Tensor, float]:
    """One image (3, H, W) seen through a box under a reading; returns (input (3, size, size), area a)."""
    _, h, w = image.shape
    x0, y0 = int(max(0, torch.floor(box[0]))), int(max(0, torch.floor(box[1])))
    x1, y1 = int(min(w - 1, torch.ceil(box[2]))), int(min(h - 1, torch.ceil(box[3])))
    area = (x1 - x0 + 1) * (y1 - y0 + 1) / (h * w)
    if reading == "blur":
        keep = torch.zeros(1, h, w)
        keep[:, y0 : y1 + 1, x0 : x1 + 1] = 1
        blurred = gaussian_blur(image[None], 10.0 * w / 224.0)[0]
        out = image * keep + blurred * (1 - keep)
    else:
        out = image[:, y0 : y1 + 1, x0 : x1 + 1]
        if reading == "pad":
            ch, cw = out.shape[-2:]
            side = max(ch, cw)
            canvas = torch.full((3, side, side), 0.5)
            top, left = (side - ch) // 2, (side - cw) // 2
            canvas[:, top : top + ch, left : left + cw] = out
            out = canvas
        elif reading != "squash":
            raise InputError(f"Unknown reading {reading!r}; known: {', '.join(READINGS)}.")
    out = F.interpolate(out[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    return out.clamp(0, 1), area


@torch.no_grad()
def box_reading_scores(
    black_box, originals: Sequence[torch.Tensor], boxes: torch.Tensor, labels: torch.Tensor, reading: str
) -> torch.Tensor:
    """s(a, p) per image of boxes (N, 4) in original pixels, read the given way (see :data:`READINGS`)."""
    size = black_box.input_size
    pairs = [_read_box(o, b, reading, size) for o, b in zip(originals, boxes)]
    x = torch.stack([p[0] for p in pairs])
    a = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    prob = black_box(x).double().softmax(-1).gather(1, labels[:, None])[:, 0]
    return metrics.saliency_metric(a, prob).float()


def _boxes(method: str, batch, maps: dict[str, torch.Tensor], alphas: dict[str, float]) -> torch.Tensor:
    size = batch.images.shape[-1]
    if method == "ground_truth":
        return metrics.ground_truth_box(batch.boxes, mode="largest")
    if method == "max":
        return metrics.max_box(batch.sizes)
    if method == "centre":
        return metrics.center_box(batch.sizes)
    if method in ("masker", "mask"):  # masks in [0, 1], read at the paper's 0.5
        box = metrics.mask_to_box(maps[method], 0.5)
    else:
        box = baselines.threshold_box(maps[method], alphas[method])
    return metrics.scale_boxes(box, (size, size), batch.sizes)


def _score_batch(batch, cfg: BeyondConfig, black_box, masker, alphas: dict[str, float], acc: dict[str, list]) -> None:
    """Add one batch's per-image numbers to ``acc`` (key ``method/metric``)."""
    size = batch.images.shape[-1]
    maps = {
        m: method_maps(m, batch.images, batch.labels, black_box, masker, cfg.seed, cfg.mask_iterations, cfg.occlusion_window)
        for m in cfg.methods
    }
    scaled = [metrics.scale_boxes(b, s, (size, size)) for b, s in zip(batch.boxes, batch.sizes)]
    grey = fa.alternative_image(batch.images, "grey")
    blur = fa.alternative_image(batch.images, "blur")
    tol = cfg.tolerance_224 * size / 224.0
    for m, sal in maps.items():
        for alt_name, alt in (("blur", blur), ("grey", grey)):
            for kind, fn in (("deletion", fa.deletion_curve), ("insertion", fa.insertion_curve)):
                curve = fn(black_box, batch.images, sal, batch.labels, steps=cfg.steps, alternative=alt, seed=cfg.seed)
                acc.setdefault(f"{m}/{kind}_{alt_name}", []).append(fa.curve_auc(curve))
        acc.setdefault(f"{m}/pointing", []).append(fa.pointing_hits(sal, scaled, tolerance=tol).float())
    for m in cfg.box_methods():
        boxes = _boxes(m, batch, maps, alphas)
        acc.setdefault(f"{m}/correct", []).append(metrics.localisation_correct(boxes, batch.boxes).float())
        for reading in READINGS:
            acc.setdefault(f"{m}/saliency_{reading}", []).append(
                box_reading_scores(black_box, batch.originals, boxes, batch.labels, reading)
            )


def _alphas(cfg: BeyondConfig, black_box) -> tuple[dict[str, float], str]:
    if cfg.alpha == "tuned":
        tuned = tune_alphas(black_box, tuple(m for m in ("grad", "gradcam", "occlusion") if m in cfg.methods))
        return {m: t["alpha"] for m, t in tuned.items()}, "tuned on validation images 401-500"
    return {m: float(cfg.alpha) for m in ("grad", "gradcam", "occlusion")}, f"fixed at {cfg.alpha} of the map's maximum"


def table_name(cfg: BeyondConfig) -> str:
    """``beyond`` for the full preset, ``beyond_<preset>`` otherwise, ``_<limit>`` added for another number of images.

    >>> table_name(PRESETS["full"]), table_name(replace(PRESETS["full"], limit=50)), table_name(PRESETS["quick"])
    ('beyond', 'beyond_50', 'beyond_quick')
    """
    name = "beyond" if cfg.preset == "full" else f"beyond_{cfg.preset}"
    return name if cfg.limit == PRESETS.get(cfg.preset, cfg).limit else f"{name}_{cfg.limit}"


def run(cfg: BeyondConfig = PRESETS["quick"], progress: bool = True) -> dict[str, Any]:
    """Score every method on validation images 1-``cfg.limit``; returns the JSON-ready result."""
    t0 = time.time()
    black_box = load_classifier(cfg.black_box)
    masker = load_masker(cfg.black_box, black_box=cfg.black_box)
    alphas, alpha_note = _alphas(cfg, black_box)
    acc: dict[str, list] = {}
    bar = tqdm(total=cfg.limit, desc="beyond", disable=not progress)
    for batch in val_batches(black_box.input_size, limit=cfg.limit, batch_size=cfg.batch_size):
        _score_batch(batch, cfg, black_box, masker, alphas, acc)
        bar.update(len(batch.labels))
    bar.close()
    if not acc:
        raise InputError("No validation images were scored: check the ImageNet validation data (make data).")
    mean = {k: round(float(torch.cat(v).mean()), 4) for k, v in acc.items()}
    n = len(torch.cat(acc[f"{cfg.methods[0]}/pointing"]))
    maps = {
        m: {k.split("/")[1]: v for k, v in mean.items() if k.startswith(m + "/") and "saliency" not in k and k != f"{m}/correct"}
        for m in cfg.methods
    }
    boxes = {
        m: {**{r: mean[f"{m}/saliency_{r}"] for r in READINGS}, "error": round(100 * (1 - mean[f"{m}/correct"]), 1)}
        for m in cfg.box_methods()
    }
    return {
        "table": table_name(cfg),
        "title": f"Beyond the paper's metrics, black box {cfg.black_box}",
        "preset": cfg.preset,
        "config": asdict(cfg),
        "data": f"ImageNet val images 1-{n} (shared copy, squashed to the black box's input size)",
        "n": n,
        "alphas": alphas,
        "alpha_note": alpha_note,
        "maps": maps,
        "boxes": boxes,
        "rankings": {r: sorted(boxes, key=lambda m: boxes[m][r]) for r in READINGS},
        "seconds": round(time.time() - t0, 1),
        "hardware": hardware(),
    }


def to_markdown(res: dict[str, Any]) -> str:
    """Two tables: map metrics per method, and the saliency metric of each box under each reading."""
    lines = [
        f"### {res['title']}",
        "",
        "| method | deletion AUC (blur) | deletion AUC (grey) | insertion AUC (blur) | insertion AUC (grey) | pointing game |",
        "|---|---|---|---|---|---|",
    ]
    for m, r in res["maps"].items():
        lines.append(
            f"| {LABELS[m]} | {r['deletion_blur']:.3f} | {r['deletion_grey']:.3f} | {r['insertion_blur']:.3f} | {r['insertion_grey']:.3f} | {100 * r['pointing']:.1f} % |"
        )
    lines += ["", "| box | loc. error % | s, crop + squash (paper) | s, crop + pad | s, blur outside |", "|---|---|---|---|---|"]
    for m, r in res["boxes"].items():
        lines.append(f"| {LABELS[m]} | {r['error']:.1f} | {r['squash']:.3f} | {r['pad']:.3f} | {r['blur']:.3f} |")
    ranks = "; ".join(f"{r}: " + " < ".join(LABELS[m] for m in order) for r, order in res["rankings"].items())
    lines += [
        "",
        f"Preset `{res['preset']}`; data: {res['data']}; deletion / insertion with {res['config']['steps']} steps "
        f"(lower deletion AUC and higher insertion AUC = more faithful); pointing game tolerance "
        f"{res['config']['tolerance_224']:.0f} px at 224 px; gradient boxes at thresholds {res['alpha_note']} "
        f"({', '.join(f'{k} {v:.2f}' for k, v in res['alphas'].items())}); centre map: a centred Gaussian, centre box: "
        "half the image area. Saliency metric rankings (best first): " + ranks + ".",
        f"Hardware: {hardware_line(res['hardware'])}; {res['seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def write_results(res: dict[str, Any], out: str | Path = FIGURES_DIR) -> tuple[Path, Path]:
    """Write ``<out>/<table>.json`` and ``.md`` (``beyond`` for the full preset, ``beyond_<preset>`` otherwise); returns both paths."""
    return write_result(res, to_markdown(res), out, res["table"])


# --------------------------------------------------------------------------- reading results
def committed(name: str, folder: Path = FIGURES_DIR) -> dict[str, Any] | None:
    """A committed JSON result under ``folder`` (default ``figures/``), or None when it is missing.

    Args:
        name: File name, e.g. ``"beyond.json"`` or ``"sanity.json"``.
        folder: Where the results are.
    """
    path = Path(folder) / name
    return json.loads(path.read_text()) if path.exists() else None


def differences(res: dict[str, Any], before: dict[str, Any], tol: float = 2e-3) -> list[str]:
    """The map metrics of ``res`` that differ from ``before`` (same preset, same images) by ``tol`` or more.

    Returns:
        One line per metric, ``"<method> <metric>: <here> here, <before> committed"``; empty when all repeat.

    Example:
        >>> differences({"maps": {"grad": {"pointing": 0.5}}}, {"maps": {"grad": {"pointing": 0.5001}}})
        []
        >>> differences({"maps": {"grad": {"pointing": 0.5}}}, {"maps": {"grad": {"pointing": 0.6}}})
        ['grad pointing: 0.5000 here, 0.6000 committed']
    """
    out = []
    for m, r in res["maps"].items():
        for k, v in r.items():
            if not abs(v - before["maps"][m][k]) < tol:
                out.append(f"{m} {k}: {v:.4f} here, {before['maps'][m][k]:.4f} committed")
    return out


def ranked_labels(res: dict[str, Any]) -> dict[str, list[str]]:
    """Reading -> the boxes' labels, best saliency metric first (``res["rankings"]`` in words)."""
    return {r: [LABELS[m] for m in order] for r, order in res["rankings"].items()}


def ranking_sentence(res: dict[str, Any]) -> str:
    """The methods of a run ranked by insertion AUC and by deletion AUC (blur), best first, in one paragraph."""
    mf = res["maps"]
    by_ins = sorted(mf, key=lambda m: -mf[m]["insertion_blur"])
    by_del = sorted(mf, key=lambda m: mf[m]["deletion_blur"])
    return (
        f"On {res['data']}: insertion AUC (blur), best first: "
        + ", ".join(f"{LABELS[m]} {mf[m]['insertion_blur']:.3f}" for m in by_ins)
        + ". Deletion AUC (blur), best first: "
        + ", ".join(f"{LABELS[m]} {mf[m]['deletion_blur']:.3f}" for m in by_del)
        + f". {res['n']} images: differences of a few hundredths are within noise here."
    )


def summary_lines(res: dict[str, Any]) -> list[str]:
    """What a run says, as Markdown bullets: the masking model against a random map, the best method
    on each metric, whether the three readings rank the boxes alike, and a warning below the full preset.
    """
    maps = res["maps"]
    mk, rnd = maps["masker"], maps["random"]
    ranks = ranked_labels(res)
    lines = [
        f"- On {res['data']}, the masking model's deletion AUC (blur) is {mk['deletion_blur']:.3f} against "
        f"{rnd['deletion_blur']:.3f} for a random map, its insertion AUC (blur) {mk['insertion_blur']:.3f} against "
        f"{rnd['insertion_blur']:.3f}; pointing game {100 * mk['pointing']:.1f} % (random {100 * rnd['pointing']:.1f} %).",
        "- Best deletion AUC (blur): "
        + min(maps, key=lambda m: maps[m]["deletion_blur"]).replace("_", " ")
        + "; best insertion AUC (blur): "
        + max(maps, key=lambda m: maps[m]["insertion_blur"]).replace("_", " ")
        + "; best pointing: "
        + max(maps, key=lambda m: maps[m]["pointing"]).replace("_", " ")
        + ".",
    ]
    same = ranks["squash"] == ranks["pad"] == ranks["blur"]
    lines.append(
        "- The saliency metric ranks the boxes "
        + (
            "the same way under all three readings."
            if same
            else "differently under the three readings: " + "; ".join(f"{r}: {' < '.join(o)}" for r, o in ranks.items()) + "."
        )
    )
    if res["preset"] != "full":
        lines.append(f"- Preset `{res['preset']}` on {res['n']} images: too few to draw conclusions; the full preset scores 500.")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m paperlib.experiments.beyond [--preset quick|full] [--limit N] [--black-box NAME] [--out-dir DIR]``."""
    ap = argparse.ArgumentParser(prog="paperlib beyond", description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="quick")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--black-box", default=None)
    ap.add_argument("--methods", nargs="+", choices=MAP_METHODS, default=None, help="map methods to score (default: all)")
    ap.add_argument("--mask-iterations", type=int, default=None, help="steps of the iterative Mask")
    ap.add_argument("--alpha", type=float, default=None, help="box threshold of the map methods (default: the preset's)")
    ap.add_argument("--out-dir", type=Path, default=FIGURES_DIR)
    a = ap.parse_args(argv)
    cfg = PRESETS[a.preset]
    over = {"limit": a.limit, "black_box": a.black_box, "mask_iterations": a.mask_iterations, "alpha": a.alpha}
    over["methods"] = tuple(a.methods) if a.methods else None
    cfg = replace(cfg, **{k: v for k, v in over.items() if v is not None})
    res = run(cfg)
    write_results(res, a.out_dir)
    print(to_markdown(res))


if __name__ == "__main__":
    main()

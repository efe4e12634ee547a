"""Model-randomisation sanity check (Adebayo et al., 2018) for every saliency method.

A saliency method that explains the black box must give different maps when the black box's
learned weights are replaced by random ones. This module re-initialises the top of a black box
(``classifier``: the final linear layer; ``head``: that layer and the last convolutional head,
:attr:`~paperlib.core.classifiers.BlackBox.cam_layer`), computes each method's map for the same
images and classes under the original and the randomised black box, and reports the Spearman rank
correlation between the two maps (per image, on maps average-pooled to 56 x 56; mean and its
standard error). A correlation near 1 means the map does not depend on the randomised layers
(the method fails the check); near 0 means it does. A random map gives the floor.

The masking model needs care. Trained once, it never calls the black box when it explains an
image, so its maps cannot change when the black box does: the check is meaningful only for the
*training*. The ``masker (trained once)`` row states that by construction; the
``masker (fine-tuned)`` row fine-tunes the shipped masker for ``steps`` steps against the
original black box (control) and, from the same start with the same data and seed, against the
randomised one, and correlates the two resulting maps.

The fine-tuning is a short loop over a fixed batch pool with the shipped masker's recorded
objective (:func:`paperlib.experiments.train.saved_objective`), not the training command: it must
run against a black box that exists only in memory. Training images are labelled with each black
box's own top-1 class (the objective needs no ground truth).

Run ``python -m paperlib.experiments.sanity --preset quick|full`` (writes
``figures/sanity[_quick].json`` and ``.md``).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core import metrics
from ..core._common import hardware, hardware_line, write_result
from ..core.classifiers import LEVELS, BlackBox, load_classifier, randomise_top
from ..core.errors import InputError
from ..core.objective import SaliencyLoss
from ..core.paths import FIGURES_DIR
from ..core.storage import load_masker
from . import baselines
from .evaluate import val_batches
from .train import saved_objective

__all__ = [
    "SanityConfig",
    "PRESETS",
    "LEVELS",
    "randomise_top",
    "rank_correlation",
    "from_scratch",
    "finetune_masker",
    "run",
    "to_markdown",
    "write_results",
    "main",
]

_GRADIENT_METHODS = ("grad", "guided", "gradcam")
_LABELS = {
    "grad": "Grad",
    "guided": "Guided backprop",
    "gradcam": "Grad-CAM",
    "masker_once": "Masking model (trained once)",
    "masker_finetuned": "Masking model (fine-tuned against each box)",
    "random": "Random map (floor)",
}


@dataclass(frozen=True)
class SanityConfig:
    """Images explained (validation images 1 to ``limit``), the fine-tuning budget, the seed."""

    preset: str = "full"
    black_box: str = "efficientnet_lite0"
    limit: int = 100
    train_images: int = 256
    steps: int = 60
    batch_size: int = 16
    lr: float = 5e-4
    pool: int = 56
    seed: int = 0


PRESETS: dict[str, SanityConfig] = {
    "quick": SanityConfig(preset="quick", limit=4, train_images=8, steps=2, batch_size=4),
    "full": SanityConfig(preset="full"),
}


def rank_correlation(a: torch.Tensor, b: torch.Tensor, pool: int = 56) -> torch.Tensor:
    """Spearman rank correlation between two sets of maps, per image.

    Args:
        a, b: Maps (N, 1, H, W) (or (N, H, W)); pooled to ``pool`` x ``pool`` by area averaging.
        pool: Side after pooling (0: no pooling).

    Returns:
        (N,) correlations in [-1, 1]; 0 for an image whose map is constant in either set.

    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> rank_correlation(x, 2 * x + 1, pool=0).item(), rank_correlation(x, -x, pool=0).item()
    (1.0, -1.0)
    """
    if a.shape != b.shape:
        raise InputError(f"maps differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}.")
    a, b = a.reshape(len(a), -1, *a.shape[-2:]).float(), b.reshape(len(b), -1, *b.shape[-2:]).float()
    if pool:
        a, b = F.adaptive_avg_pool2d(a, pool), F.adaptive_avg_pool2d(b, pool)
    ra, rb = (_ranks(t.flatten(1)) for t in (a, b))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    den = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(den > 0, (ra * rb).sum(1) / den.clamp_min(1e-12), torch.zeros_like(den))


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks along dim 1, ties given their average rank (rows of (N, K))."""
    order = x.argsort(dim=1)
    ranks = torch.empty_like(x)
    ranks.scatter_(1, order, torch.arange(x.shape[1], dtype=x.dtype).expand_as(x).contiguous())
    out = torch.empty_like(x)
    for i in range(len(x)):  # average the ranks of tied values
        _, inv, counts = torch.unique(x[i], return_inverse=True, return_counts=True)
        sums = torch.zeros(len(counts), dtype=x.dtype).index_add_(0, inv, ranks[i])
        out[i] = (sums / counts.to(x.dtype))[inv]
    return out


def _top1(black_box: nn.Module, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([black_box(images[i : i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])


def finetune_masker(
    masker: nn.Module, black_box: BlackBox, images: torch.Tensor, *, steps: int, batch_size: int, lr: float, seed: int
) -> nn.Module:
    """A copy of ``masker`` fine-tuned for ``steps`` Adam steps against ``black_box``.

    The objective is the masker's recorded one (eq. 4 with its training weights); every image is
    labelled with ``black_box``'s top-1 class; batches are drawn from ``images`` with ``seed``.
    """
    train_config = (getattr(masker, "meta", {}) or {}).get("train_config") or {}
    loss_fn = SaliencyLoss(black_box, saved_objective(train_config))
    labels = _top1(black_box, images)
    m = copy.deepcopy(masker)
    closing, m.close_holes = m.close_holes, False  # trained without the closing, as in training
    m.train()
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randperm(len(images), generator=gen)[:batch_size]
        out = m(images[idx], labels[idx], return_aux=True)
        loss = loss_fn(images[idx], out.mask, labels[idx], masks_low=out.mask_low, gate=out.gate, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    m.close_holes = closing
    return m.eval()


def _train_pool(cfg: SanityConfig, size: int) -> torch.Tensor:
    """``cfg.train_images`` training images (train-sample, evenly spread), resized to ``size``."""
    from ..core.folders import imagenet_folder  # here: torchvision costs seconds to import

    ds = imagenet_folder("train-sample")
    step = max(1, len(ds) // cfg.train_images)
    picks = list(range(0, len(ds), step))[: cfg.train_images]
    return torch.stack(
        [F.interpolate(ds[i][0][None], size=(size, size), mode="bilinear", antialias=True)[0] for i in picks]
    ).clamp(0, 1)


def _maps(method: str, black_box: BlackBox, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return baselines.saliency_map(method, black_box, images, labels).detach()


def _summary(r: torch.Tensor) -> dict[str, float]:
    n = len(r)
    se = float(r.std(unbiased=True) / n**0.5) if n > 1 else float("nan")
    return {"mean": round(float(r.mean()), 4), "se": round(se, 4), "n": n}


def _level_rows(
    cfg: SanityConfig, black_box: BlackBox, masker: nn.Module, tuned: nn.Module, batch, pool: torch.Tensor, level: str
) -> dict:
    """Rank correlations of every method's maps, original vs ``level``-randomised black box.

    ``tuned``: the masker fine-tuned against the original black box (the control, shared by the levels).
    """
    rand_box = randomise_top(black_box, level, seed=cfg.seed)
    x, c = batch
    rows: dict[str, torch.Tensor] = {}
    for method in _GRADIENT_METHODS:
        rows[method] = rank_correlation(_maps(method, black_box, x, c), _maps(method, rand_box, x, c), cfg.pool)
    with torch.inference_mode():
        once = masker(x, c)
    rows["masker_once"] = rank_correlation(once, once.clone(), cfg.pool)  # the masker never calls the box
    kw = {"steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed}
    tuned_rand = finetune_masker(masker, rand_box, pool, **kw)
    with torch.inference_mode():
        rows["masker_finetuned"] = rank_correlation(tuned(x, c), tuned_rand(x, c), cfg.pool)
        # how far each fine-tuning moved the masker from where it started
        moved = {
            "control": rank_correlation(once, tuned(x, c), cfg.pool),
            "randomised": rank_correlation(once, tuned_rand(x, c), cfg.pool),
        }
    g = torch.Generator().manual_seed(cfg.seed)
    rows["random"] = rank_correlation(
        torch.rand(x.shape[0], 1, *x.shape[-2:], generator=g), torch.rand(x.shape[0], 1, *x.shape[-2:], generator=g), cfg.pool
    )
    with torch.inference_mode():
        agree = float((black_box(x).argmax(1) == rand_box(x).argmax(1)).float().mean())
    return {
        "rows": {k: _summary(v) for k, v in rows.items()},
        "finetune_moved_from_start": {k: _summary(v) for k, v in moved.items()},
        "top1_agreement": round(agree, 4),
        "randomised_modules": rand_box.randomised,
    }


def run(cfg: SanityConfig = PRESETS["quick"], progress: bool = True) -> dict[str, Any]:
    """Run the check at every level of :data:`LEVELS`; returns a JSON-serialisable result."""
    t0 = time.time()
    black_box = load_classifier(cfg.black_box)
    masker = load_masker(cfg.black_box)
    size = black_box.input_size
    batches = list(val_batches(size, limit=cfg.limit, batch_size=cfg.limit))
    if not batches:
        raise InputError("No ImageNet validation images found: set PAPERLIB_DATA (see `python -m paperlib.data`).")
    batch = (batches[0].images, batches[0].labels)
    pool = _train_pool(cfg, size)
    kw = {"steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed}
    tuned = finetune_masker(masker, black_box, pool, **kw)  # the control: fine-tuned against the original box
    levels = {}
    for level in LEVELS:
        if progress:
            print(f"sanity: level {level} ...", flush=True)
        levels[level] = _level_rows(cfg, black_box, masker, tuned, batch, pool, level)
    hw = hardware()
    return {
        "title": "Model-randomisation sanity check (Adebayo et al., 2018): rank correlation of maps",
        "config": asdict(cfg),
        "preset": cfg.preset,
        "black_box": cfg.black_box,
        "data": f"ImageNet val images 1-{len(batch[1])} (true classes); fine-tuning: {len(pool)} train-sample images",
        "levels": levels,
        "labels": _LABELS,
        "hardware": hw,
        "hardware_line": hardware_line(hw),
        "seconds": round(time.time() - t0, 1),
    }


def from_scratch(
    reference: str | Path, randomised: str | Path, control: str | Path, *, limit: int = 100, pool: int = 56
) -> dict[str, Any]:
    """The stronger check for the masker: maskers trained from scratch by ``python -m paperlib.train``.

    ``reference`` is trained against the black box, ``randomised`` with the same command, seed and
    data but ``--randomise-top LEVEL``, ``control`` against the black box with another seed. If
    the masker's training reads the black box, reference and randomised maps differ more than
    reference and control maps (which differ only by the seed). Maps for validation images
    1-``limit`` and their true classes; localisation error (%) of each masker on the same images.

    Returns:
        Rank correlations (``reference_vs_randomised``, ``reference_vs_control``), each masker's
        ``error`` and ``area``, the randomised level and the three training configurations.
    """
    maskers = {k: load_masker(p) for k, p in (("reference", reference), ("randomised", randomised), ("control", control))}
    cfgs = {k: (getattr(m, "meta", {}) or {}).get("train_config") or {} for k, m in maskers.items()}
    level = cfgs["randomised"].get("randomise_top")
    if not level or cfgs["reference"].get("randomise_top") or cfgs["control"].get("randomise_top"):
        raise InputError("from_scratch needs the randomised masker second and two maskers trained against the black box.")
    black_box = load_classifier(maskers["reference"].black_box)
    batch = next(iter(val_batches(black_box.input_size, limit=limit, batch_size=limit)), None)
    if batch is None:
        raise InputError("No ImageNet validation images found: set PAPERLIB_DATA (see `python -m paperlib.data`).")
    with torch.inference_mode():
        maps = {k: m(batch.images, batch.labels) for k, m in maskers.items()}
    error = {}
    for k, m in maps.items():
        boxes = metrics.scale_boxes(metrics.mask_to_box(m, 0.5), (black_box.input_size,) * 2, batch.sizes)
        error[k] = round(100.0 * (1 - float(metrics.localisation_correct(boxes, batch.boxes).float().mean())), 1)
    return {
        "level": level,
        "n": len(batch.labels),
        "reference_vs_randomised": _summary(rank_correlation(maps["reference"], maps["randomised"], pool)),
        "reference_vs_control": _summary(rank_correlation(maps["reference"], maps["control"], pool)),
        "error": error,
        "area": {k: round(float(m.mean()), 4) for k, m in maps.items()},
        "paths": {"reference": str(reference), "randomised": str(randomised), "control": str(control)},
        "train_configs": cfgs,
    }


def _scratch_lines(fs: dict[str, Any]) -> list[str]:
    steps = fs["train_configs"]["reference"].get("steps")
    rr, rc = fs["reference_vs_randomised"], fs["reference_vs_control"]
    e, a = fs["error"], fs["area"]
    return [
        "",
        f"**Masker trained from scratch against the randomised black box** ({steps} steps each, the shipped recipe, "
        f"`python -m paperlib.train ... --randomise-top {fs['level']}`; val images 1-{fs['n']}, true classes): rank "
        f"correlation of its maps with those of the masker trained against the real black box {rr['mean']:.3f} ± "
        f"{rr['se']:.3f}; of a second masker trained against the real box with another seed {rc['mean']:.3f} ± "
        f"{rc['se']:.3f}. Localisation "
        f"error {e['randomised']:.1f} % (randomised) vs {e['reference']:.1f} % and {e['control']:.1f} % (real box, two "
        f"seeds); mean mask area {a['randomised']:.3f} vs {a['reference']:.3f} and {a['control']:.3f}.",
    ]


def to_markdown(res: dict[str, Any]) -> str:
    """The result as a Markdown table (one column per randomised level)."""
    levels = list(res["levels"])
    head = "| method | " + " | ".join(f"rank corr., {lv} randomised" for lv in levels) + " |"
    lines = [f"### {res['title']}", "", head, "|---|" + "---|" * len(levels)]
    for key, label in res["labels"].items():
        cells = []
        for lv in levels:
            s = res["levels"][lv]["rows"][key]
            cells.append(f"{s['mean']:.3f} ± {s['se']:.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    c = res["config"]
    moved = "; ".join(
        f"{lv}: control {res['levels'][lv]['finetune_moved_from_start']['control']['mean']:.3f}, randomised "
        f"{res['levels'][lv]['finetune_moved_from_start']['randomised']['mean']:.3f}"
        for lv in levels
    )
    agree = ", ".join(f"{lv} {100 * res['levels'][lv]['top1_agreement']:.0f} %" for lv in levels)
    lines += [
        "",
        f"Preset `{res['preset']}`, black box `{res['black_box']}`, {res['data']}; hardware: {res['hardware_line']}. "
        f"Spearman correlation per image on maps pooled to {c['pool']} x {c['pool']}, mean ± standard error "
        "(1: the map ignores the randomised layers; 0: it changes completely). The trained-once masker never calls "
        f"the black box, so its row is 1 by construction. Fine-tuning: {c['steps']} Adam steps (lr {c['lr']}, batch "
        f"{c['batch_size']}) from the shipped masker against each box; correlation of each fine-tuned masker with the "
        f"shipped one ({moved}). Top-1 agreement of the original and randomised box: {agree}.",
    ]
    if res.get("from_scratch"):
        lines += _scratch_lines(res["from_scratch"])
    return "\n".join(lines) + "\n"


def write_results(res: dict[str, Any], out: str | Path = FIGURES_DIR) -> tuple[Path, Path]:
    """Write ``sanity[_<preset>].json`` and ``.md`` into ``out``; returns both paths."""
    stem = "sanity" if res["preset"] == "full" else f"sanity_{res['preset']}"
    return write_result(res, to_markdown(res), out, stem)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m paperlib.experiments.sanity --preset quick|full [--out figures]``."""
    ap = argparse.ArgumentParser(prog="paperlib sanity", description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--out", type=Path, default=FIGURES_DIR)
    ap.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: the preset's)")
    ap.add_argument(
        "--from-scratch",
        nargs=3,
        metavar=("REFERENCE", "RANDOMISED", "CONTROL"),
        help="add the from-scratch comparison of three trained maskers to <out>/sanity.json (nothing else is rerun)",
    )
    a = ap.parse_args(argv)
    if a.from_scratch:
        path = Path(a.out) / "sanity.json"
        if not path.exists():
            raise InputError(f"{path} does not exist: run `python -m paperlib.experiments.sanity --preset full` first.")
        res = json.loads(path.read_text())
        res["from_scratch"] = from_scratch(*a.from_scratch)
        print(to_markdown(res))
        print("wrote", *write_results(res, a.out))
        return
    cfg = PRESETS[a.preset] if a.steps is None else SanityConfig(**{**asdict(PRESETS[a.preset]), "steps": a.steps})
    res = run(cfg)
    paths = write_results(res, a.out)
    print(to_markdown(res))
    print("wrote", *paths)


if __name__ == "__main__":
    main()

"""How fast the masker trains: one process against several (torchrun), the cost of a step, an epoch estimate.

``python -m paperlib.tools.trainspeed`` measures on this machine

* seconds per step and images per second of the shipped Lite0 recipe (224 px, global batch 16) with
  one process (all torch threads) and with ``torchrun --nproc_per_node N`` (one thread each), from the
  runs' own ``log.jsonl`` (first steps dropped as warm-up);
* the floating-point operations of one training step (forward and backward, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode`), and how many training images one loader process
  decodes and augments per second;

and from those *estimates* (stated as such in the output) the time of one epoch over the ImageNet
training set (1,281,167 images) on 1 and 8 GPUs at an assumed sustained rate per GPU, and the loader
processes that need. It writes ``figures/train_speed_<device>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..core import paths
from ..core._common import hardware, hardware_line, write_result
from ..core.objective import SaliencyLoss
from ..experiments.train import TrainConfig, build_for_training, training_dataset

__all__ = ["RECIPE", "IMAGENET_TRAIN", "step_flops", "loader_rate", "step_times", "epoch_estimate", "run", "to_markdown", "main"]

#: The shipped Lite0 masker's recipe (``paperlib/checkpoints/efficientnet_lite0.json``) as command-line flags.
RECIPE = ["--black-box", "efficientnet_lite0", "--batch-size", "16", "--image-size", "224", "--widths", "256", "128", "64",
          "--blocks", "1", "--output-gate", "--preset-objective", "project"]  # fmt: skip
#: The authors' recipe of the long run (``results/full/runs/q_lite0_authors_192k``) as command-line flags.
AUTHORS_RECIPE = ["--black-box", "efficientnet_lite0", "--batch-size", "16", "--image-size", "224", "--widths", "256", "128",
                  "64", "--blocks", "1", "--output-gate", "--preset-objective", "authors", "--class-embedding", "frozen",
                  "--schedule", "constant", "--weight-decay", "1e-4"]  # fmt: skip
RECIPES = {"project": RECIPE, "authors": AUTHORS_RECIPE}
#: Variants of one process timed by ``--variants``: name -> extra ``paperlib.train`` flags (``processes`` for torchrun).
VARIANTS: dict[str, dict[str, Any]] = {
    "as is": {"flags": []},
    "2 processes x 1 thread (torchrun)": {"flags": [], "processes": 2},
    "channels-last": {"flags": ["--channels-last", "on"]},
    "black box sees 160 px": {"flags": ["--black-box-size", "160"]},
    "batch 32": {"flags": ["--batch-size", "32"]},
}
#: Images in the ILSVRC2012 training set.
IMAGENET_TRAIN = 1_281_167


def step_flops(cfg: TrainConfig) -> dict[str, float]:
    """Floating-point operations of one training step of ``cfg`` (random images; forward + backward).

    Returns:
        ``{"total", "forward", "backward"}`` in FLOPs (a multiply-add counts 2), per global batch.
    """
    masker, black_box = build_for_training(cfg)
    loss_fn = SaliencyLoss(black_box, cfg.objective_config())
    masker.train()
    n, s = cfg.batch_size, cfg.image_size
    images = torch.rand(n, 3, s, s, generator=torch.Generator().manual_seed(0))
    classes = torch.randint(0, masker.num_classes, (n,), generator=torch.Generator().manual_seed(1))
    with FlopCounterMode(display=False) as fwd:
        out = masker(images, classes, return_aux=True)
        loss = loss_fn(images, out.mask, classes, masks_low=out.mask_low, gate=out.gate)
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    f, b = float(fwd.get_total_flops()), float(bwd.get_total_flops())
    return {"total": f + b, "forward": f, "backward": b}


def loader_rate(cfg: TrainConfig, n: int = 64) -> float:
    """Training images per second that one process decodes and augments (JPEG read, random resized crop, flip)."""
    ds = training_dataset(cfg)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:n].tolist()
    ds[idx[0]]  # warm caches
    t0 = time.perf_counter()
    for i in idx:
        ds[i]
    return n / (time.perf_counter() - t0)


def _times(log: Path, skip: int) -> list[float]:
    t = [json.loads(ln)["time"] for ln in log.read_text().splitlines()]
    return [b - a for a, b in zip(t[skip:], t[skip + 1 :])]


def step_times(
    nproc: int,
    steps: int,
    data: str | Sequence[str] | None = None,
    skip: int = 2,
    recipe: Sequence[str] = RECIPE,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ``steps`` steps of ``recipe`` (+ ``extra`` flags, which override it) with ``nproc`` processes; seconds per
    step (median of the steps after the first ``skip``) and images/s."""
    threads = max(1, (os.cpu_count() or 1) // nproc)
    batch = int((list(extra) + list(recipe))[(list(extra) + list(recipe)).index("--batch-size") + 1])
    with tempfile.TemporaryDirectory() as tmp:
        args = [*recipe, "--out", tmp, "--steps", str(steps), "--threads", str(threads), "--checkpoint-every", str(steps)]
        args += ["--data", *([data] if isinstance(data, str) else data)] if data else []
        args += list(extra)
        prefix = [sys.executable, "-m"] + (
            ["torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m"] if nproc > 1 else []
        )
        res = subprocess.run([*prefix, "paperlib.experiments.train", *args], capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"training with {nproc} process(es) failed:\n{res.stderr[-2000:]}")
        dt = _times(Path(tmp) / "log.jsonl", skip)
    sec = statistics.median(dt)
    return {"processes": nproc, "threads_each": threads, "batch": batch, "steps_timed": len(dt), "s_per_step": round(sec, 3),
            "images_per_s": round(batch / sec, 2)}  # fmt: skip


def epoch_estimate(
    flops_per_step: float,
    batch: int,
    tflops_sustained: float,
    gpus: int,
    loader_rate: float,
    workers_per_gpu: int,
    images: int = IMAGENET_TRAIN,
) -> dict[str, float]:
    """Minutes for one pass over ``images`` on ``gpus`` GPUs (an estimate, not a measurement).

    Compute: steps x FLOPs per step at ``tflops_sustained`` per GPU. Loading: ``images`` at
    ``loader_rate`` images/s per loader process, ``workers_per_gpu`` processes per GPU. The epoch takes
    the longer of the two (loading and compute overlap).

    >>> epoch_estimate(1e12, 10, 100.0, 1, 100.0, 10, images=60_000)["epoch_min"]
    1.0
    """
    compute = images / batch * flops_per_step / (tflops_sustained * 1e12 * gpus) / 60
    loading = images / (loader_rate * workers_per_gpu * gpus) / 60
    return {"compute_min": round(compute, 2), "loading_min": round(loading, 2), "epoch_min": round(max(compute, loading), 2)}


def _mean_side(cfg: TrainConfig, n: int = 32) -> float:
    """Mean shorter side (pixels) of ``n`` of the training images, to qualify the loader rate."""
    ds = training_dataset(cfg)
    base = ds.datasets[0] if hasattr(ds, "datasets") else ds
    from PIL import Image

    sides = []
    for path, _ in base.samples[:: max(1, len(base.samples) // n)][:n]:
        with Image.open(path) as im:
            sides.append(min(im.size))
    return statistics.fmean(sides)


def run(
    steps: int = 12,
    nprocs: Sequence[int] = (1, 2),
    tflops: float = 15.0,
    workers_per_gpu: int = 8,
    data: str | Sequence[str] | None = None,
    recipe: str = "project",
    variants: Sequence[str] = (),
) -> dict[str, Any]:
    """Measure and estimate (see the module docstring); returns the JSON record.

    ``variants`` (names of :data:`VARIANTS`) replaces the ``nprocs`` rows by one row per variant of ``recipe``
    (one process with all threads unless the variant says otherwise), all in the same call, on the same machine.
    """
    if recipe not in RECIPES:
        raise SystemExit(f"--recipe {recipe!r}: choose one of {', '.join(RECIPES)}.")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(repr(v) for v in VARIANTS)}.")
    data_list = [data] if isinstance(data, str) else (list(data) if data else None)
    cfg = TrainConfig(
        widths=[256, 128, 64],
        blocks=1,
        output_gate=True,
        objective_preset=recipe,
        class_embedding="frozen" if recipe == "authors" else "learned",
        data=data_list,
    )
    flops = step_flops(cfg)
    rate = loader_rate(cfg)
    flags = RECIPES[recipe]
    if variants:
        measured = []
        for v in variants:
            spec = VARIANTS[v]
            row = step_times(spec.get("processes", 1), steps, data_list, recipe=flags, extra=spec["flags"])
            measured.append({"variant": v, **row})
    else:
        measured = [step_times(n, steps, data_list, recipe=flags) for n in nprocs]
    est = {str(g): epoch_estimate(flops["total"], cfg.batch_size, tflops, g, rate, workers_per_gpu) for g in (1, 8)}
    return {
        "title": f"Training speed of the masker (Lite0, {recipe} recipe, 224 px, global batch 16)",
        "recipe": recipe,
        "hardware": hardware(),
        "measured": measured,
        "flops_per_step": flops,
        "gflops_per_image": round(flops["total"] / cfg.batch_size / 1e9, 2),
        "loader_images_per_s_per_process": round(rate, 1),
        "loader_mean_short_side_px": round(_mean_side(cfg)),
        "estimate": {
            "assumed_sustained_tflops_per_gpu": tflops,
            "loader_processes_per_gpu": workers_per_gpu,
            "epoch_images": IMAGENET_TRAIN,
            "gpus": est,
            "note": (
                "An estimate, not a measurement: the FLOPs of one step counted on the CPU at an assumed sustained "
                f"{tflops:g} TFLOP/s per GPU (mixed precision; an A100's bf16 peak is 312 TFLOP/s, but networks of "
                "depthwise convolutions at small batches reach only a few percent of a GPU's peak), against loading at this CPU's measured "
                f"decode-and-augment rate with {workers_per_gpu} loader processes per GPU; the epoch takes the longer. "
                "Full-size ImageNet JPEGs (about 400 x 350 px on average) decode more slowly than the train sample's."
            ),
        },
        "command": f"python -m paperlib.tools.trainspeed --steps {steps} --recipe {recipe} "
        + (" ".join(f"--variants {v!r}" for v in variants) if variants else f"--nprocs {' '.join(map(str, nprocs))}")
        + (f" --data {' '.join(data_list)}" if data_list else ""),
    }


def to_markdown(rec: dict[str, Any]) -> str:
    """The record as a Markdown table and notes."""
    lines = [f"## {rec['title']}", "", f"Hardware: {hardware_line(rec['hardware'])}.", ""]
    if any("variant" in m for m in rec["measured"]):
        base = rec["measured"][0]["images_per_s"]
        lines += ["| variant | processes | torch threads each | batch | s / step (median) | images / s | vs first row |"]
        lines += ["|---|---|---|---|---|---|---|"]
        for m in rec["measured"]:
            lines.append(
                f"| {m['variant']} | {m['processes']} | {m['threads_each']} | {m['batch']} | {m['s_per_step']:.2f} "
                f"| {m['images_per_s']:.1f} | {m['images_per_s'] / base:.2f}x |"
            )
    else:
        lines += ["| processes | torch threads each | s / step (median) | images / s |", "|---|---|---|---|"]
        for m in rec["measured"]:
            lines.append(f"| {m['processes']} | {m['threads_each']} | {m['s_per_step']:.2f} | {m['images_per_s']:.1f} |")
    est = rec["estimate"]
    gpus = ", ".join(
        f"{g} GPU{'s' if g != '1' else ''}: {e['epoch_min']:g} min (compute {e['compute_min']:g}, loading {e['loading_min']:g})"
        for g, e in est["gpus"].items()
    )
    lines += [
        "",
        f"One step: {rec['flops_per_step']['total'] / 1e9:.0f} GFLOP (forward {rec['flops_per_step']['forward'] / 1e9:.0f}, "
        f"backward {rec['flops_per_step']['backward'] / 1e9:.0f}), {rec['gflops_per_image']:.1f} GFLOP per image. "
        f"One loader process decodes and augments {rec['loader_images_per_s_per_process']:.0f} training images/s here "
        f"(mean shorter side of the images {rec['loader_mean_short_side_px']} px).",
        "",
        f"Estimate of one epoch over the {est['epoch_images']:,} ImageNet training images: {gpus}. " + est["note"],
        "",
        f"Command: `{rec['command']}`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="paperlib trainspeed", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=12, help="steps per run (the first 2 are not timed)")
    p.add_argument("--nprocs", type=int, nargs="+", default=[1, 2], help="process counts to time")
    p.add_argument("--tflops", type=float, default=15.0, help="assumed sustained TFLOP/s per GPU for the epoch estimate")
    p.add_argument("--workers-per-gpu", type=int, default=8, help="loader processes per GPU for the epoch estimate")
    p.add_argument("--data", nargs="+", default=None, help="training images (default: the ImageNet train sample)")
    p.add_argument("--recipe", choices=list(RECIPES), default="project", help="the shipped project recipe or the authors'")
    p.add_argument("--variants", action="append", default=[], choices=list(VARIANTS), help="time these variants (repeatable)")
    p.add_argument("--out", default=None, help="JSON path (default figures/train_speed_<cpu|cuda>.json)")
    a = p.parse_args(argv)
    rec = run(a.steps, a.nprocs, a.tflops, a.workers_per_gpu, a.data, a.recipe, a.variants)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    default = (
        f"train_speed_{device}.json" if a.recipe == "project" and not a.variants else f"train_speed_{device}_{a.recipe}.json"
    )
    out = Path(a.out) if a.out else paths.FIGURES_DIR / default
    md = to_markdown(rec)
    write_result(rec, md, out.parent, out.stem, newline=True)
    print(md)


if __name__ == "__main__":
    main()

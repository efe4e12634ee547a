"""Speed benchmark: masks per second, latency and peak memory of the masking model and the baselines.

``python -m paperlib.bench`` (``make bench``) measures, in one run on the same images (the first 16
ImageNet validation images at 224x224 when the data are found, else ``torch.rand`` images; the
result says which):

* every **masking model**: the paper's design (ResNet-50 encoder, upsamplers 768/384/192 with 3
  bottlenecks each, untrained weights: speed does not depend on weight values), the same design on
  the EfficientNet-Lite0 encoder, and every shipped masker (:func:`paperlib.shipped_maskers`);
* the **baselines** with the ``efficientnet_lite0`` black box: Grad (gradient saliency), Grad-CAM
  and the iterative Mask of Fong & Vedaldi (``optimise_masks(mode="fong")``, 300 iterations);
* the **speedup** of the best shipped masker over every row.

Protocol
--------
Each method is timed by :func:`time_callable`: ``warmup`` untimed calls, then ``repeats`` timed
calls; the table gives the median (and min-max) of the timed calls. *Masks/s @16* is
16 / (seconds per call on a batch of 16), *latency @1* the seconds per call on one image; on CUDA
also masks/s at batch 64, with ``torch.cuda.synchronize()`` before and after every timed call.
Maskers run under ``torch.inference_mode()``; the baselines need gradients and run with autograd on.
The iterative Mask at the ``quick`` preset is timed at ``mask_iterations`` (10) and at 1 iteration
and extrapolated linearly to 300 (t(300) = t(1) + (t(k) - t(1)) * 299 / (k - 1)); the table says so.

Peak memory
-----------
*Peak memory* is the method's weights plus the largest extra memory one call on a batch of 16
needs (activations, workspace, autograd graph), in MB:

* **CUDA**: ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``, minus what
  was allocated before the call, plus the weights' bytes.
* **CPU**: the process's peak resident set size (``VmHWM`` of ``/proc/self/status``) during the
  call minus the resident size before it, plus the weights' bytes. Each named method is measured
  in a **fresh subprocess** (``python -m paperlib.bench --only SPEC --json``, random images of the
  same shape): in one long process, freed memory kept by the allocator would hide part of a later
  method's peak. Methods given as Python objects (not names) are measured in this process, with
  the high-water mark reset through ``/proc/self/clear_refs`` where Linux allows it.

Outputs: ``figures/bench.json``, ``figures/bench.md`` (the table, with the hardware and the
paper's claim beside it) and ``figures/speed.png`` (masks/s, log scale), written atomically.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..core._common import hardware, hardware_line, write_result
from ..core.classifiers import load_classifier
from ..core.errors import InputError, PaperlibError, UnknownModelError
from ..core.masker import build_masker
from ..core.paths import FIGURES_DIR
from ..core.storage import load_masker, shipped_maskers
from ..experiments import presets
from .memory import measure_memory
from .realtime import optimise_for_cpu
from .timing import (
    BASELINES,
    _baseline_fn,
    _batch,
    _sync_for,
    bench_baseline,
    bench_masker,
    fmt_range,
    fmt_rate,
    load_bench_images,
    time_callable,
)

__all__ = [
    "PAPER_CLAIM",
    "PAPER_MASKS_PER_S",
    "PRESETS",
    "BASELINES",
    "MASK_ITERATIONS",
    "time_callable",
    "bench_masker",
    "bench_baseline",
    "optimise_for_cpu",
    "default_maskers",
    "build_masker_spec",
    "load_bench_images",
    "measure_memory",
    "run",
    "to_markdown",
    "speed_figure",
    "write_results",
    "main",
]

#: The paper's speed claim (Dabkowski & Gal 2017, section 4 and conclusion).
PAPER_CLAIM = "more than 100 masks of 224x224 per second on a standard 2017 GPU"
PAPER_MASKS_PER_S = 100.0

#: Iterations of the iterative Mask baseline that the table reports (optimise_masks' default).
MASK_ITERATIONS = presets.MASK_ITERATIONS

#: ``quick`` fits a 2-core CPU in a few minutes; ``full`` times the iterative Mask for all 300
#: iterations (:data:`paperlib.experiments.presets.BENCH`).
PRESETS: dict[str, presets.BenchSizes] = presets.BENCH

_BASELINE_NOTES = {
    "grad": "captum Saliency: one forward and one backward pass through the black box",
    "gradcam": "captum LayerGradCam on the black box's last feature map: one forward and one backward pass",
}

#: Default masker rows: label -> spec understood by :func:`build_masker_spec`.
_PAPER_MASKERS = {
    "Masking model, paper design (ResNet-50 encoder)": "paper-resnet50",
    "Masking model, paper design on the Lite0 encoder": "paper-lite0",
}
_SPEC_NOTES = {
    "paper-resnet50": "build_masker('resnet50', pretrained=False): ResNet-50 encoder, upsamplers 768/384/192 with "
    "3 bottlenecks each, mask at stride 4; untrained weights (speed does not depend on weight values)",
    "paper-lite0": "build_masker('efficientnet_lite0'): the paper's decoder (768/384/192, 3 bottlenecks) on the "
    "EfficientNet-Lite0 encoder; untrained decoder",
}


# --------------------------------------------------------------------------- methods
def default_maskers() -> dict[str, str]:
    """The default masker rows: ``{label: spec}`` (paper design x 2, then every shipped masker)."""
    rows = dict(_PAPER_MASKERS)
    for name in shipped_maskers():
        rows[f"Masking model, shipped `{name}`"] = f"shipped:{name}"
    return rows


def build_masker_spec(spec: str) -> nn.Module:
    """Build a masker from a spec: ``paper-resnet50``, ``paper-lite0``, ``shipped:<name>``;
    an ``opt:`` prefix returns :func:`optimise_for_cpu` of it. The result is in eval mode on the CPU."""
    if spec.startswith("opt:"):
        return optimise_for_cpu(build_masker_spec(spec[4:]))
    if spec == "paper-resnet50":
        return build_masker("resnet50", pretrained=False).eval()
    if spec == "paper-lite0":
        return build_masker("efficientnet_lite0").eval()
    if spec.startswith("shipped:"):
        return load_masker(spec.split(":", 1)[1]).eval()
    raise UnknownModelError(f"Unknown masker spec {spec!r}: use paper-resnet50, paper-lite0, shipped:<name>, opt:<spec>.")


def _describe(masker: nn.Module) -> str:
    cfg = getattr(masker, "config", None)
    if not isinstance(cfg, dict):
        return type(masker).__name__
    widths = "/".join(str(w) for w in cfg.get("widths", []))
    blocks = cfg.get("blocks")
    text = f"encoder {cfg.get('encoder')}, upsamplers {widths}, {blocks} bottleneck{'s' if blocks != 1 else ''} each"
    if cfg.get("output_gate"):
        text += ", output gate"
    return text + f", black box {cfg.get('black_box')}"


def _native(masker: nn.Module, images: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, str]:
    """CIFAR-10 maskers run at 32x32 (their native size); ImageNet ones on the images as given."""
    if getattr(masker, "dataset", "imagenet") == "cifar10":
        small = F.interpolate(images, size=(32, 32), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        return small, classes % int(getattr(masker, "num_classes", 10)), "at 32x32 (CIFAR-10), not comparable"
    return images, classes, ""


def _nbytes(module: nn.Module | None) -> int:
    if module is None:
        return 0
    tensors = {id(t): t for t in list(module.parameters()) + list(module.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _memory_subprocess(spec: str, *, size: int, threads: int, black_box: str, batch: int = 16) -> dict[str, Any]:
    """Run ``python -m paperlib.tools.bench --only SPEC --json`` and parse its result."""
    cmd = [
        sys.executable,
        "-m",
        "paperlib.tools.bench",
        "--only",
        spec,
        "--json",
        "--size",
        str(size),
        "--threads",
        str(threads),
        "--black-box",
        black_box,
        "--batch",
        str(batch),
        "--device",
        "cpu",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode == 0 and lines:
            res = json.loads(lines[-1])
            res["method"] = "fresh subprocess: " + res["method"]
            return res
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError) as exc:
        err = f"{type(exc).__name__}: {exc}"
    return {"peak_mb": None, "weights_mb": None, "extra_mb": None, "method": f"subprocess failed ({err[:200]})"}


def _only(spec: str, *, size: int, black_box: str, batch: int) -> dict[str, Any]:
    """Child of :func:`_memory_subprocess`: build one method here and measure one call at ``batch``."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, size, size, generator=g)
    classes = torch.randint(0, 1000, (batch,), generator=g)
    if spec.startswith("baseline:"):
        method = spec.split(":", 1)[1]
        bb = load_classifier(black_box, cache=False)
        classes = classes % bb.num_classes
        fn = _baseline_fn(method, bb, iterations=2)  # memory per iteration is constant
        return measure_memory(
            lambda: fn(images, classes), "cpu", weights_bytes=_nbytes(bb), warmup=lambda: fn(images[:1], classes[:1])
        )
    masker = build_masker_spec(spec)
    x, c, _ = _native(masker, images, classes)
    if spec.startswith("opt:"):
        x = x.contiguous(memory_format=torch.channels_last)

    def call(n: int = batch) -> None:
        with torch.inference_mode():
            masker(x[:n], c[:n])

    return measure_memory(call, "cpu", weights_bytes=_nbytes(masker), warmup=lambda: call(1))


# --------------------------------------------------------------------------- the run
def _result(
    ctx: "_Context", rows: list, skipped: list, preset: str, memory: str, image_note: str, size: int, t_start: float
) -> dict[str, Any]:
    """The JSON result of :func:`run` (adds each row's speedup over the reference row)."""
    ref = _add_speedups(rows)
    hw = hardware()
    dev = ctx.dev
    return {
        "title": "Speed: masks per second, latency and peak memory",
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else hw["cpu"],
        "hardware": hw,
        "hardware_line": hardware_line(hw),
        "torch": torch.__version__,
        "threads": ctx.n_threads,
        "preset": preset,
        "protocol": {
            **asdict(ctx.cfg),
            "batch_sizes": list(ctx.batch_sizes),
            "size": size,
            "mask_iterations_reported": MASK_ITERATIONS,
            "memory": memory,
        },
        "images": image_note,
        "paper_claim": PAPER_CLAIM,
        "paper_masks_per_s": PAPER_MASKS_PER_S,
        "reference": ref["method"] if ref else None,
        "rows": rows,
        "skipped": skipped,
        "seconds": round(time.time() - t_start, 1),
    }


def run(
    preset: str = "quick",
    device: str | torch.device | None = None,
    *,
    maskers: Mapping[str, str | nn.Module | Callable[[], nn.Module]] | None = None,
    baselines: Sequence[str] | None = None,
    black_box: str | nn.Module = "efficientnet_lite0",
    size: int = 224,
    threads: int | None = None,
    repeats: int | None = None,
    warmup: int | None = None,
    mask_iterations: int | None = None,
    optimised: bool = False,
    memory: str = "auto",
    images: torch.Tensor | None = None,
    classes: torch.Tensor | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Benchmark maskers and baselines on the same images; optionally write the results.

    Args:
        preset: ``"quick"`` or ``"full"`` (see :data:`PRESETS`).
        device: ``"cpu"`` or ``"cuda"``; default CUDA when available.
        maskers: ``{label: masker}``, each a spec for :func:`build_masker_spec`, a module, or a
            zero-argument factory. ``None``: :func:`default_maskers`.
        baselines: Names from :data:`BASELINES`; ``None``: all three.
        black_box: The baselines' black box, a registered name or a module.
        size: Image side in pixels (224).
        threads: ``torch.set_num_threads`` for the run (restored afterwards); default: unchanged.
        repeats, warmup, mask_iterations: Override the preset.
        optimised: Also time :func:`optimise_for_cpu` copies of the maskers.
        memory: ``"auto"`` (CUDA: in process; CPU: named methods in a fresh subprocess, objects
            in process), ``"subprocess"``, ``"inprocess"`` or ``"none"``.
        images, classes: The images (N, 3, H, W) in [0, 1] and classes; default
            :func:`load_bench_images`.
        out: Folder to write ``bench.json``, ``bench.md`` and ``speed.png`` into; None writes nothing.
        progress: Show a tqdm bar over the methods.

    Returns:
        A JSON-serialisable dict: ``rows`` (one per method), ``reference``, ``hardware``,
        ``device``, ``threads``, ``preset``, ``protocol``, ``images``, ``paper_claim``, ``seconds``.
    """
    cfg = _protocol(preset, repeats, warmup, mask_iterations)
    dev, baselines = _check_run_args(device, memory, baselines)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    t_start = time.time()
    try:
        images, classes, image_note = _bench_images(images, classes, size)
        ctx = _Context(
            cfg=cfg,
            dev=dev,
            images=images.to(dev),
            classes=classes.to(dev),
            memory=memory,
            black_box=black_box,
            batch_sizes=(16, 1, 64) if dev.type == "cuda" else (16, 1),
            n_threads=torch.get_num_threads(),
        )
        entries = _masker_entries(default_maskers() if maskers is None else maskers, optimised)
        rows, skipped = _measure_all(ctx, entries, baselines, progress)
        result = _result(ctx, rows, skipped, preset, memory, image_note, int(images.shape[-1]), t_start)
    finally:
        torch.set_num_threads(old_threads)
    if out is not None:
        write_results(result, out)
    return result


@dataclass
class _Context:
    """What every measurement of one :func:`run` shares."""

    cfg: presets.BenchSizes
    dev: torch.device
    images: torch.Tensor
    classes: torch.Tensor
    memory: str
    black_box: str | nn.Module
    batch_sizes: tuple[int, ...]
    n_threads: int
    bb_module: nn.Module | None = None

    @property
    def sync(self) -> Callable[[], None] | None:
        return _sync_for(self.dev)


def _check_run_args(
    device: str | torch.device | None, memory: str, baselines: Sequence[str] | None
) -> tuple[torch.device, list[str]]:
    """The run's device (default: CUDA when available) and baselines (default: all), checked."""
    if memory not in ("auto", "subprocess", "inprocess", "none"):
        raise InputError(f"memory must be auto, subprocess, inprocess or none, got {memory!r}.")
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but torch.cuda.is_available() is False; use --device cpu.")
    baselines = list(BASELINES) if baselines is None else list(baselines)
    for b in baselines:
        if b not in BASELINES:
            raise UnknownModelError(f"Unknown baseline {b!r}; known: {', '.join(BASELINES)}.")
    return dev, baselines


def _protocol(preset: str, repeats: int | None, warmup: int | None, mask_iterations: int | None) -> presets.BenchSizes:
    """The preset's timing protocol with the given overrides."""
    cfg = presets.check_preset(preset, PRESETS)
    given = {"repeats": repeats, "warmup": warmup, "mask_iterations": mask_iterations}
    cfg = replace(cfg, **{key: value for key, value in given.items() if value is not None})
    if repeats is not None:
        cfg = replace(cfg, mask_repeats=min(cfg.mask_repeats, repeats) if preset == "full" else repeats)
    return cfg


def _bench_images(images: torch.Tensor | None, classes: torch.Tensor | None, size: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The given images (classes default to 0), else :func:`load_bench_images`, with a description."""
    if images is None:
        images, classes, image_note = load_bench_images(size)
    else:
        if classes is None:
            classes = torch.zeros(images.shape[0], dtype=torch.long)
        image_note = f"{images.shape[0]} given images at {images.shape[-2]}x{images.shape[-1]}"
    return images, torch.as_tensor(classes).long().reshape(-1), image_note


def _masker_entries(maskers: Mapping[str, Any], optimised: bool) -> dict[str, Any]:
    """The masker rows to time, each optimised copy right after its original when ``optimised``."""
    entries: dict[str, Any] = {}
    for label, m in maskers.items():
        entries[label] = m
        if optimised:
            if isinstance(m, str):
                entries[f"{label}, optimised"] = f"opt:{m}"
            elif isinstance(m, nn.Module):
                entries[f"{label}, optimised"] = lambda m=m: optimise_for_cpu(m)
            else:
                entries[f"{label}, optimised"] = lambda m=m: optimise_for_cpu(m())
    return entries


def _measure_all(
    ctx: _Context, entries: dict[str, Any], baselines: Sequence[str], progress: bool
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Time every masker entry and baseline; a method that fails is listed in ``skipped``."""
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    todo = [("masker", k) for k in entries] + [("baseline", b) for b in baselines]
    bar = tqdm(todo, desc="bench", disable=not progress)
    for kind, key in bar:
        bar.set_postfix_str(str(key)[:40])
        try:
            rows.append(_masker_row(ctx, key, entries[key]) if kind == "masker" else _baseline_row(ctx, key))
        except (PaperlibError, RuntimeError, OSError, ImportError) as exc:  # e.g. CUDA out of memory
            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            skipped.append({"method": str(key) if kind == "masker" else BASELINES[key], "error": msg})
            warnings.warn(f"bench: skipped {key}: {msg}", stacklevel=2)
            if ctx.dev.type == "cuda":
                torch.cuda.empty_cache()
            continue
        gc.collect()
        if ctx.dev.type == "cuda":
            torch.cuda.empty_cache()
    bar.close()
    return rows, skipped


def _memory_of(
    ctx: _Context, spec: str | None, call: Callable[[], Any], module: nn.Module | None, warm: Callable[[], Any]
) -> dict[str, Any] | None:
    """Peak memory of ``call`` by the run's ``memory`` mode (named methods on the CPU: a fresh subprocess)."""
    mode = ctx.memory
    if mode == "none":
        return None
    if mode == "auto":
        mode = "subprocess" if (ctx.dev.type == "cpu" and spec is not None) else "inprocess"
    if mode == "subprocess" and spec is not None and ctx.dev.type == "cpu":
        return _memory_subprocess(
            spec,
            size=ctx.images.shape[-1],
            threads=ctx.n_threads,
            black_box=ctx.black_box if isinstance(ctx.black_box, str) else "efficientnet_lite0",
        )
    return measure_memory(call, ctx.dev, weights_bytes=_nbytes(module), warmup=warm)


def _masker_row(ctx: _Context, key: str, value: Any) -> dict[str, Any]:
    """Time one masker entry (a spec, a module or a factory) and measure its memory."""
    spec = value if isinstance(value, str) else None
    module = build_masker_spec(value) if spec else (value if isinstance(value, nn.Module) else value())
    module = module.eval().to(ctx.dev)
    x, c, native_note = _native(module, ctx.images, ctx.classes)
    cl = bool(getattr(module, "optimised", {}).get("channels_last"))
    res = bench_masker(
        module,
        x,
        c,
        batch_sizes=ctx.batch_sizes,
        repeats=ctx.cfg.repeats,
        warmup=ctx.cfg.warmup,
        sync=ctx.sync,
        channels_last=cl,
    )
    xb, cb = _batch(x, c, 16)
    if cl:
        xb = xb.contiguous(memory_format=torch.channels_last)

    def call(n: int = 16) -> None:
        with torch.inference_mode():
            module(xb[:n], cb[:n])

    mem = _memory_of(ctx, spec, call, module, lambda: call(n=1))
    base_spec = spec[4:] if spec and spec.startswith("opt:") else spec
    notes = [_SPEC_NOTES.get(base_spec or "", _describe(module))]
    if getattr(module, "optimised", None):
        o = module.optimised
        notes.append(
            f"optimise_for_cpu: {o['fused_conv_bn']} conv+BN pairs fused, "
            f"{'channels-last' if o['channels_last'] else 'contiguous'}"
        )
    if native_note:
        notes.append(native_note)
    return {
        "method": key,
        "kind": "masker",
        "spec": spec,
        "shipped": bool(base_spec and base_spec.startswith("shipped:")),
        "comparable": not native_note,
        "config": getattr(module, "config", None),
        **res,
        "memory": mem,
        "note": "; ".join(notes),
    }


def _baseline_row(ctx: _Context, key: str) -> dict[str, Any]:
    """Time one baseline with the run's black box (loaded once, a private copy) and measure its memory."""
    if ctx.bb_module is None:
        # a private copy of a named black box: it may move to CUDA
        bb = load_classifier(ctx.black_box, cache=False) if isinstance(ctx.black_box, str) else ctx.black_box
        ctx.bb_module = bb.to(ctx.dev).eval()
    bb_module, black_box = ctx.bb_module, ctx.black_box
    bb_name = black_box if isinstance(black_box, str) else getattr(black_box, "name", type(black_box).__name__)
    c_bb = ctx.classes % int(getattr(bb_module, "num_classes", 1000))
    bs = ctx.batch_sizes if key != "mask" else (16, 1)
    res = bench_baseline(
        key,
        bb_module,
        ctx.images,
        c_bb,
        batch_sizes=bs,
        repeats=ctx.cfg.mask_repeats if key == "mask" else ctx.cfg.repeats,
        warmup=ctx.cfg.warmup,
        sync=ctx.sync,
        iterations=MASK_ITERATIONS,
        timed_iterations=ctx.cfg.mask_iterations,
    )
    xb, cb = _batch(ctx.images, c_bb, 16)
    fn = _baseline_fn(key, bb_module, iterations=2)
    mem = _memory_of(
        ctx, f"baseline:{key}" if isinstance(black_box, str) else None, lambda: fn(xb, cb), bb_module, lambda: fn(xb[:1], cb[:1])
    )
    note = _BASELINE_NOTES.get(key, "")
    if key == "mask":
        note = f"optimise_masks(mode='fong'), {MASK_ITERATIONS} Adam iterations, 28x28 mask"
        if res["extrapolated"]:
            note += f"; measured at {res['timed_iterations']} iterations (and 1), scaled to {MASK_ITERATIONS} (linear)"
        if mem is not None:
            note += "; memory measured over 2 iterations"
    return {
        "method": BASELINES[key],
        "kind": "baseline",
        "spec": f"baseline:{key}",
        "shipped": False,
        "comparable": True,
        **res,
        "memory": mem,
        "note": f"{note}; black box {bb_name}",
    }


def _rate(r: dict[str, Any], b: str = "16") -> float | None:
    return r["batches"].get(b, {}).get("masks_per_s", {}).get("median")


def _add_speedups(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Add each row's speedup over the fastest comparable (shipped) masker; returns that reference row."""
    maskers_rows = [r for r in rows if r["kind"] == "masker" and r["comparable"]]
    pool = [r for r in maskers_rows if r["shipped"]] or maskers_rows
    ref = max(pool, key=lambda r: _rate(r) or 0.0) if pool else None
    for r in rows:
        if ref is not None and _rate(r):
            r["speedup"] = _rate(ref) / _rate(r)
            lat, lat_ref = r["batches"]["1"]["latency_ms"]["median"], ref["batches"]["1"]["latency_ms"]["median"]
            r["speedup_latency"] = lat / lat_ref
        else:
            r["speedup"] = r["speedup_latency"] = None
    return ref


# --------------------------------------------------------------------------- output
def to_markdown(result: dict[str, Any]) -> str:
    """Render :func:`run`'s result as a Markdown table with its provenance and the paper's claim."""
    has64 = any("64" in r["batches"] for r in result["rows"])
    ref = result.get("reference")
    ref_row = next((r for r in result["rows"] if r["method"] == ref), None)
    sp_col = "speedup of the best shipped masker" if ref_row and ref_row["shipped"] else "speedup of the fastest masker"
    cols = (
        ["method", "masks/s @16", "latency @1 (ms)"] + (["masks/s @64"] if has64 else []) + ["peak memory (MB)", sp_col, "note"]
    )
    lines = [f"### {result['title']}", ""]
    p = result["protocol"]
    lines.append(
        f"Hardware: {result['hardware_line']}. Device `{result['device']}` ({result['device_name']}); "
        f"preset `{result['preset']}` ({p['repeats']} timed run(s) after {p['warmup']} warm-up run(s); cells give the "
        f"median (min–max)); images: {result['images']}."
    )
    lines.append("")
    best = max(
        (r for r in result["rows"] if r["kind"] == "masker" and r.get("comparable")),
        key=lambda r: r["batches"]["16"]["masks_per_s"]["median"],
        default=None,
    )
    claim = f"**Paper's claim:** {result['paper_claim']}."
    if best is not None:
        claim += (
            f" **This run:** {best['method']} gives {fmt_rate(best['batches']['16']['masks_per_s']['median'])} "
            f"masks/s at batch 16 on `{result['device']}` ({result['device_name']})."
        )
    if ref is not None:
        claim += f" Speedups are relative to: {ref}" + ("" if ref_row and ref_row["shipped"] else " (no shipped masker)") + "."
    lines += [claim, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in result["rows"]:
        b = r["batches"]
        mem = (r.get("memory") or {}).get("peak_mb")
        cells = [r["method"], fmt_range(b["16"]["masks_per_s"], fmt_rate), fmt_range(b["1"]["latency_ms"], fmt_rate)]
        if has64:
            cells.append(fmt_range(b["64"]["masks_per_s"], fmt_rate) if "64" in b else "—")
        cells.append("—" if mem is None else (f"{mem:.0f}" if mem >= 10 else f"{mem:.1f}"))
        sp = r.get("speedup")
        cells.append("—" if sp is None else (f"{sp:.3g}×" if sp < 100 else f"{sp:.0f}×"))
        cells.append(r.get("note", "").replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    for sk in result.get("skipped", []):
        cells = [sk["method"]] + ["—"] * (len(cols) - 2) + ["not measured: " + sk["error"].replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    mem_methods = sorted({(r.get("memory") or {}).get("method", "") for r in result["rows"]} - {""})
    lines += [
        "",
        "Masks/s @16: 16 / seconds per call on a batch of 16; latency @1: seconds per call on one image. "
        "Maskers run under `torch.inference_mode()`; the baselines need one backward pass per mask (Grad, "
        "Grad-CAM) or one per iteration (Mask). Speedup: masks/s @16 of the reference masker divided by "
        "that of the row (>1: the masker is faster). Peak memory: the method's weights plus the largest extra "
        f"memory one call on a batch of 16 takes ({'; '.join(mem_methods) if mem_methods else 'not measured'}).",
    ]
    return "\n".join(lines) + "\n"


def speed_figure(result: dict[str, Any]):
    """Horizontal bar chart of masks/s at batch 16 (log scale), with the paper's 100 masks/s marked.

    Returns:
        A ``matplotlib.figure.Figure`` (no pyplot state involved).
    """
    from matplotlib.figure import Figure  # only here: the memory subprocesses (--only) never draw and stay lean

    rows = [r for r in result["rows"] if r["batches"].get("16")]
    names = [r["method"] for r in rows]
    vals = [r["batches"]["16"]["masks_per_s"]["median"] for r in rows]
    lo = [v - r["batches"]["16"]["masks_per_s"]["min"] for v, r in zip(vals, rows)]
    hi = [r["batches"]["16"]["masks_per_s"]["max"] - v for v, r in zip(vals, rows)]
    colors = ["tab:blue" if r["kind"] == "masker" else "tab:gray" for r in rows]
    fig = Figure(figsize=(8, 0.5 * len(rows) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]
    ax.barh(y, vals, xerr=[lo, hi], color=colors, capsize=3)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(PAPER_MASKS_PER_S, color="tab:red", ls="--", lw=1, label="paper: >100 masks/s (2017 GPU)")
    ax.legend(loc="lower right", fontsize=8)
    for yi, v, r in zip(y, vals, rows):
        ax.text(r["batches"]["16"]["masks_per_s"]["max"] * 1.08, yi, fmt_rate(v), va="center", fontsize=8)
    ax.set_xlabel(
        f"masks/s at batch 16 (log scale); {result['device']}: {result['device_name']}, "
        f"torch threads: {result['threads']}, preset {result['preset']}",
        fontsize=9,
    )
    ax.set_title("Masks per second (blue: masking models; grey: baselines)", fontsize=10)
    if vals:
        ax.set_xlim(min(min(vals) / 3, PAPER_MASKS_PER_S / 3), max(max(vals) * 5, PAPER_MASKS_PER_S * 3))
    return fig


def write_results(result: dict[str, Any], out: str | os.PathLike = FIGURES_DIR) -> tuple[Path, Path]:
    """Write ``bench.json``, ``bench.md`` and ``speed.png`` into ``out`` atomically; returns the JSON and Markdown paths."""
    out = Path(out)
    paths = write_result(result, to_markdown(result), out, "bench", default=str)
    fig = speed_figure(result)
    tmp = out / ".speed.png.tmp"
    fig.savefig(tmp, dpi=120, format="png")
    os.replace(tmp, out / "speed.png")
    return paths


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """``python -m paperlib.bench [--preset quick|full] [--device cpu|cuda] [--threads N] [--optimised]``."""
    ap = argparse.ArgumentParser(prog="paperlib bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="quick")
    ap.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when available")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default: the preset's)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed runs first (default: the preset's)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    ap.add_argument("--size", type=int, default=224, help="image side in pixels")
    ap.add_argument("--mask-iterations", type=int, default=None, help="iterations of the Mask baseline actually timed")
    ap.add_argument("--black-box", default="efficientnet_lite0", help="black box of the baselines")
    ap.add_argument("--baselines", nargs="*", default=None, choices=list(BASELINES), help="default: all")
    ap.add_argument(
        "--maskers",
        nargs="*",
        default=None,
        metavar="SPEC",
        help="paper-resnet50, paper-lite0, shipped:<name> (default: the two paper designs and every shipped one)",
    )
    ap.add_argument("--optimised", action="store_true", help="also time optimise_for_cpu copies of the maskers")
    ap.add_argument("--memory", choices=["auto", "subprocess", "inprocess", "none"], default="auto")
    ap.add_argument("--out", type=Path, default=FIGURES_DIR)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--only", metavar="SPEC", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=16, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    if a.only:  # memory child: one method, one call, one JSON line
        res = _only(a.only, size=a.size, black_box=a.black_box, batch=a.batch)
        print(json.dumps(res))
        return None
    maskers = None if a.maskers is None else {f"Masking model `{s}`": s for s in a.maskers}
    result = run(
        a.preset,
        a.device,
        maskers=maskers,
        baselines=a.baselines,
        black_box=a.black_box,
        size=a.size,
        threads=a.threads,
        repeats=a.repeats,
        warmup=a.warmup,
        mask_iterations=a.mask_iterations,
        optimised=a.optimised,
        memory=a.memory,
        out=a.out,
        progress=not a.no_progress,
    )
    if a.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(to_markdown(result))
        print(f"Written to {a.out}/bench.json, bench.md, speed.png")
    return result


if __name__ == "__main__":
    main()

"""Timing helpers shared by the speed benchmark (:mod:`paperlib.tools.bench`) and the CPU back ends
(:mod:`paperlib.tools.realtime`): timing a call, rates from times, the benchmark images, number formats,
and the timing of a masker (:func:`bench_masker`) and of a baseline (:func:`bench_baseline`).

>>> fmt_range({"median": 12.0, "min": 11.0, "max": 13.5}, fmt_rate)
'12 (11–13.5)'
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..core.errors import InputError, PaperlibError, UnknownModelError
from ..experiments.baselines import gradcam_saliency, gradient_saliency
from ..experiments.evaluate import val_batches
from ..experiments.iterative import optimise_masks
from ..experiments.presets import MASK_ITERATIONS

__all__ = [
    "BASELINES",
    "time_callable",
    "rates",
    "load_bench_images",
    "fmt_rate",
    "fmt_range",
    "bench_masker",
    "bench_baseline",
]

#: Baseline names accepted by :func:`bench_baseline` and ``run(baselines=...)``, with their labels.
BASELINES: dict[str, str] = {
    "grad": "Grad (gradient saliency)",
    "gradcam": "Grad-CAM",
    "mask": "Mask (iterative, Fong & Vedaldi)",
}


def time_callable(
    fn: Callable[[], Any], repeats: int = 5, warmup: int = 1, *, sync: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Time a zero-argument callable: ``warmup`` untimed calls, then ``repeats`` timed ones.

    Args:
        fn: What to time (called ``warmup + repeats`` times).
        repeats: Number of timed calls (>= 1).
        warmup: Number of untimed calls first (>= 0): one-time initialisation, caches.
        sync: Called before and after every timed call (``torch.cuda.synchronize`` on CUDA,
            whose kernels run asynchronously).

    Returns:
        ``{"median", "min", "max", "mean"}`` in seconds per call, ``"times"`` (every timed call),
        ``"repeats"`` and ``"warmup"``.

    Raises:
        InputError: ``repeats < 1`` or ``warmup < 0``.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InputError(f"repeats must be a positive int, got {repeats!r}.")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise InputError(f"warmup must be a non-negative int, got {warmup!r}.")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync is not None:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - t0)
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "mean": statistics.fmean(times),
        "times": times,
        "repeats": repeats,
        "warmup": warmup,
    }


def rates(seconds: dict[str, Any], batch: int) -> dict[str, Any]:
    """Seconds per call on ``batch`` images -> masks/s and latency, each median/min/max."""
    med, lo, hi = seconds["median"], seconds["min"], seconds["max"]
    return {
        "batch": batch,
        "seconds": seconds,
        "masks_per_s": {"median": batch / med, "min": batch / hi, "max": batch / lo},
        "latency_ms": {"median": 1e3 * med, "min": 1e3 * lo, "max": 1e3 * hi},
    }


def load_bench_images(size: int = 224, n: int = 16) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The first ``n`` ImageNet validation images at ``size`` x ``size`` with their labels, or
    ``torch.rand`` images (seed 0) and random labels when the data are not found.

    Returns:
        ``(images (n, 3, size, size), classes (n,), description)``.
    """
    try:
        batch = next(val_batches(size, limit=n, batch_size=n))
        return batch.images, batch.labels.long(), f"{len(batch.images)} ImageNet validation images at {size}x{size}"
    except (PaperlibError, OSError, StopIteration) as exc:
        g = torch.Generator().manual_seed(0)
        images = torch.rand(n, 3, size, size, generator=g)
        classes = torch.randint(0, 1000, (n,), generator=g)
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}" if str(exc) else type(exc).__name__
        return images, classes, f"{n} random images (torch.rand) at {size}x{size}; ImageNet validation data not found ({why})"


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def fmt_range(d: dict[str, float] | None, fmt: Callable[[float], str]) -> str:
    if not d:
        return "—"
    if fmt(d["min"]) == fmt(d["max"]):
        return fmt(d["median"])
    return f"{fmt(d['median'])} ({fmt(d['min'])}–{fmt(d['max'])})"


def _batch(images: torch.Tensor, classes: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``b`` images and classes, cycling through the set when ``b`` exceeds it."""
    n = images.shape[0]
    if b <= n:
        return images[:b], classes[:b]
    idx = torch.arange(b) % n
    return images[idx.to(images.device)], classes[idx.to(classes.device)]


def _sync_for(device: torch.device) -> Callable[[], None] | None:
    return torch.cuda.synchronize if device.type == "cuda" else None


def bench_masker(
    masker: nn.Module,
    images: torch.Tensor,
    classes: torch.Tensor,
    *,
    batch_sizes: Sequence[int] = (16, 1),
    repeats: int = 5,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
    channels_last: bool = False,
) -> dict[str, Any]:
    """Time a masker's forward pass (under ``torch.inference_mode``) at each batch size.

    Args:
        masker: ``masker(images, classes) -> masks``, already on the images' device, in eval mode.
        images: (N, 3, H, W) in [0, 1]; batches larger than N cycle through them.
        classes: (N,) class indices.
        batch_sizes: Batch sizes to time.
        repeats, warmup, sync: See :func:`time_callable`.
        channels_last: Feed the images in channels-last memory format.

    Returns:
        ``{"batches": {"16": {"batch", "seconds", "masks_per_s", "latency_ms"}, "1": ...}}``.
    """
    out: dict[str, Any] = {"batches": {}}
    for b in batch_sizes:
        x, c = _batch(images, classes, b)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)

        def call(x: torch.Tensor = x, c: torch.Tensor = c) -> None:
            with torch.inference_mode():
                masker(x, c)

        out["batches"][str(b)] = rates(time_callable(call, repeats, warmup, sync=sync), b)
    return out


def _baseline_fn(
    method: str, black_box: nn.Module, iterations: int = MASK_ITERATIONS
) -> Callable[[torch.Tensor, torch.Tensor], Any]:
    if method == "grad":
        return lambda x, c: gradient_saliency(black_box, x, c)
    if method == "gradcam":
        return lambda x, c: gradcam_saliency(black_box, x, c)
    if method == "mask":
        return lambda x, c: optimise_masks(black_box, x, c, mode="fong", iterations=iterations)
    raise UnknownModelError(f"Unknown baseline {method!r}; known: {', '.join(BASELINES)}.")


def bench_baseline(
    method: str,
    black_box: nn.Module,
    images: torch.Tensor,
    classes: torch.Tensor,
    *,
    batch_sizes: Sequence[int] = (16, 1),
    repeats: int = 5,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
    iterations: int = MASK_ITERATIONS,
    timed_iterations: int | None = None,
) -> dict[str, Any]:
    """Time a gradient baseline (``"grad"``, ``"gradcam"``) or the iterative Mask (``"mask"``).

    For ``"mask"`` with ``timed_iterations < iterations``, the calls are timed at 1 and at
    ``timed_iterations`` iterations and extrapolated linearly:
    ``t(iterations) = t(1) + (t(k) - t(1)) * (iterations - 1) / (k - 1)`` (a fixed cost per call,
    such as blurring the images, plus a cost per Adam step), separately for the median, min and max.

    Args:
        method: ``"grad"``, ``"gradcam"`` or ``"mask"``.
        black_box: The classifier explained (on the images' device).
        images, classes, batch_sizes, repeats, warmup, sync: See :func:`bench_masker`.
        iterations: Iterations of the Mask baseline to report (300).
        timed_iterations: Iterations actually timed (default: ``iterations``).

    Returns:
        ``{"batches": {...}, "iterations", "timed_iterations", "extrapolated"}`` (the last three
        for ``"mask"`` only).
    """
    out: dict[str, Any] = {"batches": {}}
    if method != "mask":
        fn = _baseline_fn(method, black_box)
        for b in batch_sizes:
            x, c = _batch(images, classes, b)
            out["batches"][str(b)] = rates(time_callable(lambda: fn(x, c), repeats, warmup, sync=sync), b)
        return out
    k = iterations if timed_iterations is None else min(int(timed_iterations), iterations)
    if k < 1:
        raise InputError(f"timed_iterations must be >= 1, got {timed_iterations!r}.")
    extrapolate = k < iterations
    out.update(iterations=iterations, timed_iterations=k, extrapolated=extrapolate)
    one, full = _baseline_fn("mask", black_box, 1), _baseline_fn("mask", black_box, k)
    for b in batch_sizes:
        x, c = _batch(images, classes, b)
        if not extrapolate:
            for _ in range(warmup):  # warm up with a 1-iteration call, not a whole run
                one(x, c)
            out["batches"][str(b)] = rates(time_callable(lambda: full(x, c), repeats, 0, sync=sync), b)
            continue
        t1 = time_callable(lambda: one(x, c), repeats, warmup, sync=sync)
        tk = t1 if k == 1 else time_callable(lambda: full(x, c), repeats, 0, sync=sync)
        est = {}
        for key in ("median", "min", "max"):
            per_step = (tk[key] - t1[key]) / (k - 1) if k > 1 else t1[key]
            if per_step <= 0:  # timing noise: fall back to proportional scaling
                est[key] = tk[key] * iterations / k
            else:
                est[key] = (t1[key] if k > 1 else 0.0) + per_step * (iterations - (1 if k > 1 else 0))
        lo, hi = min(est.values()), max(est.values())
        seconds = {
            "median": est["median"],
            "min": lo,
            "max": hi,
            "repeats": repeats,
            "warmup": warmup,
            "timed_1_iteration": t1,
            f"timed_{k}_iterations": tk,
        }
        out["batches"][str(b)] = rates(seconds, b)
    return out

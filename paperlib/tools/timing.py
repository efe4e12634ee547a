"""Timing helpers shared by the speed benchmark (:mod:`paperlib.tools.bench`) and the CPU back ends
(:mod:`paperlib.tools.realtime`): timing a call, rates from times, the benchmark images, number formats.

>>> fmt_range({"median": 12.0, "min": 11.0, "max": 13.5}, fmt_rate)
'12 (11–13.5)'
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch

from ..core.errors import InputError, PaperlibError
from ..experiments.evaluate import val_batches

__all__ = ["time_callable", "rates", "load_bench_images", "fmt_rate", "fmt_range"]


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

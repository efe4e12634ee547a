"""Peak memory of one call, in this process (:func:`measure_memory`), for the speed benchmark
(:mod:`paperlib.tools.bench`): CUDA's allocator statistics on a GPU, the resident set size on a CPU.
"""

from __future__ import annotations

import ctypes
import gc
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["measure_memory"]


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc ``malloc_trim``), so that RSS counts live memory only."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_memory(
    fn: Callable[[], Any],
    device: torch.device | str = "cpu",
    *,
    weights_bytes: int = 0,
    warmup: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Peak memory of one call of ``fn`` in this process, plus ``weights_bytes``, in MB.

    ``warmup`` (e.g. the same method on one image) runs first, so that lazy imports and one-time
    kernel initialisation are not counted. CUDA: ``max_memory_allocated`` during the call (after
    ``reset_peak_memory_stats``) minus what was allocated before it. CPU: freed heap memory is
    returned to the OS (``malloc_trim``), then the peak resident set size during the call
    (``VmHWM``, reset through ``/proc/self/clear_refs``) minus the resident size before it; when
    the reset is not allowed, the process-wide high-water mark is used and the result says so.

    Returns:
        ``{"peak_mb", "weights_mb", "extra_mb", "method"}`` (``peak_mb`` None if unmeasurable).
    """
    device = torch.device(device)
    weights_mb = weights_bytes / 2**20
    if warmup is not None:
        warmup()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        extra = (torch.cuda.max_memory_allocated(device) - before) / 2**20
        method = "torch.cuda.max_memory_allocated over the call + weights"
    else:
        _trim_heap()
        before = _status_mb("VmRSS")
        reset = _reset_peak_rss()
        fn()
        peak = _status_mb("VmHWM")
        if before is None or peak is None:
            return {"peak_mb": None, "weights_mb": weights_mb, "extra_mb": None, "method": "unavailable (no /proc/self/status)"}
        extra = max(peak - before, 0.0)
        method = (
            "peak RSS (VmHWM) over the call + weights"
            if reset
            else ("process high-water mark (VmHWM could not be reset: may reflect an earlier method) + weights")
        )
    return {"peak_mb": weights_mb + extra, "weights_mb": weights_mb, "extra_mb": extra, "method": method}

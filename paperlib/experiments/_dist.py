"""Several processes for one masker training run: ``torchrun --nproc_per_node N -m paperlib.train ...``.

The engine is PyTorch's own (:mod:`torch.distributed` started by ``torchrun``, the model wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel`); this module holds the few pieces a run needs
around it so that N processes train exactly the model one process would with the same global batch:

* :class:`RankSlice` gives each rank its contiguous share of every global batch of the run's one
  sample order (so sample ``k`` of the run is the same image with the same augmentation whatever N);
* :class:`SyncBatchNorm2d` computes the decoder's batch-norm statistics over the global batch. PyTorch's
  :class:`~torch.nn.SyncBatchNorm` does the same on GPUs only; this one uses the differentiable
  :func:`torch.distributed.nn.functional.all_reduce` of the per-rank sums, so it works with gloo on the
  CPU as well. Its state dict is a plain ``BatchNorm2d``'s, and it *is* one outside a multi-process run;
* :func:`gather` collects per-sample values of every rank (for the log, written by rank 0 only).

With one process (no ``torchrun``) everything here is a no-op and training is unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from ..core.errors import InputError

__all__ = ["Context", "setup", "cleanup", "RankSlice", "SyncBatchNorm2d", "convert_batchnorm", "gather", "all_sum"]


@dataclass(frozen=True)
class Context:
    """Where this process stands in a run: ``rank`` of ``world`` processes, on ``device``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """Whether this process writes the log, the checkpoints and the progress bar (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: CUDA is not available on this machine; use --device cpu (or auto).")
        if dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
    return dev


def setup(device: str = "auto") -> Context:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1), else a one-process context.

    The backend is nccl when the run uses CUDA, gloo otherwise. Each rank uses ``cuda:<LOCAL_RANK>``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = _device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Context(rank, world, local_rank, dev)


def cleanup(ctx: Context) -> None:
    """Leave the process group (multi-process runs only)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


class RankSlice(Sampler):
    """Rank ``rank``'s contiguous ``batch_size // world`` share of each global batch of ``sampler``.

    With ``world`` = 1 it yields ``sampler`` unchanged. Global batch ``b`` of the run holds samples
    ``b * batch_size ... (b + 1) * batch_size - 1`` of the one order; rank ``r`` loads the ``r``-th
    slice of it, so the ranks' batches put together are the one-process batch.

    >>> list(RankSlice(iter(range(12)), batch_size=4, rank=1, world=2))
    [2, 3, 6, 7, 10, 11]
    """

    def __init__(self, sampler, batch_size: int, rank: int, world: int) -> None:
        if batch_size % world:
            raise InputError(
                f"--batch-size {batch_size} (the global batch) must be a multiple of the number of processes ({world})."
            )
        self.sampler, self.batch_size, self.rank, self.world = sampler, batch_size, rank, world

    def __iter__(self) -> Iterator:
        share = self.batch_size // self.world
        lo, hi = self.rank * share, (self.rank + 1) * share
        batch: list = []
        for item in self.sampler:
            batch.append(item)
            if len(batch) == self.batch_size:
                yield from batch[lo:hi]
                batch = []

    def __len__(self) -> int:
        return len(self.sampler) // self.world


def _reduce(t: torch.Tensor) -> torch.Tensor:
    from torch.distributed.nn.functional import all_reduce  # differentiable: gradients flow to every rank

    return all_reduce(t, op=dist.ReduceOp.SUM)


class SyncBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics span every rank of a multi-process run (any backend).

    In training mode inside an initialised process group of several ranks, the mean and the (biased)
    variance of each channel are computed from the sums of ``x`` and ``x**2`` over all ranks' images;
    the running statistics are updated as ``BatchNorm2d`` does (unbiased variance). Otherwise it is a
    plain ``BatchNorm2d``. Same parameters and buffers, so checkpoints are interchangeable.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        count = torch.tensor([x.numel() / c], dtype=torch.float64, device=x.device)
        xf = x.float()
        stats = torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3))]).double()
        stats, count = _reduce(stats), _reduce(count.clone())
        n = count[0]
        mean = stats[:c] / n
        var = (stats[c:] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.mul_(1 - m).add_(m * mean.to(self.running_mean.dtype))
                unbiased = var * n / (n - 1).clamp_min(1.0)
                self.running_var.mul_(1 - m).add_(m * unbiased.to(self.running_var.dtype))
                self.num_batches_tracked.add_(1)
        y = (xf - mean.float()[None, :, None, None]) * torch.rsqrt(var.float() + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Make every trainable ``BatchNorm2d`` of ``module`` a :class:`SyncBatchNorm2d` (in place; returns it).

    Only the class changes (parameters and buffers stay the same objects), so a frozen encoder in
    eval mode behaves exactly as before and the state dict is unchanged.
    """
    for m in module.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = SyncBatchNorm2d
    return module


def gather(t: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Concatenate a per-sample tensor ``(n, ...)`` of every rank, in rank order (no gradient)."""
    if not ctx.distributed:
        return t
    t = t.detach().contiguous()
    parts = [torch.empty_like(t) for _ in range(ctx.world)]
    dist.all_gather(parts, t)
    return torch.cat(parts)


def all_sum(value: int | float, ctx: Context) -> float:
    """Sum of a number over every rank."""
    if not ctx.distributed:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return float(t.item())

"""The CIFAR-10 black box: a ResNet-9 trained from scratch, its training loop, export and loader.

The paper explains a FitNet at 92 % CIFAR-10 validation accuracy. No such weights are
public, so paperlib trains its own black box: :class:`CifarNet`, the ResNet-9 of David
Page's DAWNBench entry ("How to train your ResNet", 2018), which reaches about 94 % on the
official test files within 24 epochs. Recipe (:class:`ClassifierTrainConfig` defaults):

* 20 epochs, batch 512, SGD with Nesterov momentum 0.9, weight decay 5e-4 on a mean loss
  (the same update as Page's 5e-4 x 512 on a summed loss with lr / 512);
* learning rate 0 -> 0.4 linearly over the first 25 % of the steps, then linearly to 0;
* cross-entropy with label smoothing 0.2 on logits scaled by 0.125;
* augmentation on uint8 tensors, batched: random 32 x 32 crop of the image padded by 4 px
  (reflection), horizontal flip, 8 x 8 cutout filled with the mean colour;
* fp32 on the CPU; bf16 autocast on a GPU (``amp``).

Command line::

    python -m paperlib.cifar train --epochs 20                 # -> runs/cifar10_classifier/
    python -m paperlib.cifar evaluate runs/cifar10_classifier  # test accuracy
    python -m paperlib.cifar export runs/cifar10_classifier    # -> paperlib/checkpoints/cifar10_classifier.{pt,json}

``train`` writes ``<out>/log.jsonl`` (one record per epoch), ``<out>/last.pt`` atomically after
every epoch (model, optimiser, scheduler, epoch, random states; running the same command again
resumes from it) and ``<out>/classifier.pt`` at the end. ``export`` stores fp16 weights and a
JSON record (test accuracy, epochs, training time, command, hardware) in
``paperlib/checkpoints``, from where :func:`load_cifar10_classifier` (the registered black box
``"cifar10"``) loads them.

Note:
    The data set shipped with the project is a JPEG re-encoding of CIFAR-10, so accuracies
    measured on it run slightly below those on the official files.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shlex
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..core import data
from ..core._common import atomic_save, atomic_write_text, hardware, module_device, resolve_device
from ..core.cifarnet import (
    CIFAR_MEAN,
    CIFAR_STD,
    DATA_NOTE,
    DEFAULT_CHECKPOINT,
    EXPORT_COMMAND,
    FORMAT,
    TRAIN_COMMAND,
    CifarNet,
    cifar_normalise,
    cifar_normalize,
    net_from_file,
)
from ..core.classifiers import BlackBox, load_cifar10_classifier
from ..core.datafiles import _cifar_source
from ..core.errors import CheckpointMismatchError, DataNotFoundError, InputError, WeightsNotFoundError
from ..core.serialization import safe_load
from . import _loop

__all__ = [
    "CIFAR_MEAN",
    "CIFAR_STD",
    "FORMAT",
    "DEFAULT_CHECKPOINT",
    "DATA_NOTE",
    "TRAIN_COMMAND",
    "EXPORT_COMMAND",
    "net_from_file",
    "CifarNet",
    "cifar_normalise",
    "cifar_normalize",
    "config_command",
    "augment_batch",
    "ClassifierTrainConfig",
    "train_classifier",
    "evaluate_classifier",
    "export_classifier",
    "load_cifar10_classifier",
    "main",
]


# --------------------------------------------------------------------------- augmentation
def _reflect_index(size: int, pad: int, device: torch.device) -> torch.Tensor:
    """Source index of each position of a reflection-padded axis (length size + 2 * pad)."""
    i = torch.arange(-pad, size + pad, device=device).abs()
    return torch.where(i > size - 1, 2 * (size - 1) - i, i)


def augment_batch(
    images: torch.Tensor,
    *,
    padding: int = 4,
    flip_prob: float = 0.5,
    cutout: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random crop (reflection padding), horizontal flip and cutout of a batch, on tensors.

    All random numbers are drawn on the CPU from ``generator`` (so a run is reproducible on
    any device); the pixels are gathered on the images' device.

    Args:
        images: (N, C, H, W) of any dtype (uint8 in the training loop).
        padding: Pixels of reflection padding before the random H x W crop (0: no crop).
        flip_prob: Probability of a horizontal flip per image (1.0 flips all).
        cutout: Side of a square, centred at a uniform random pixel and clipped at the border,
            filled with the mean CIFAR-10 colour (0: none).
        generator: Source of randomness (default: torch's global generator).

    Returns:
        A new tensor of the same shape and dtype.
    """
    if images.ndim != 4:
        raise InputError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}.")
    n, c, h, w = images.shape
    dev = images.device
    out = images
    if padding > 0:
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(dev)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(dev)
        rows = _reflect_index(h, padding, dev)[dy[:, None] + torch.arange(h, device=dev)]  # (N, H)
        cols = _reflect_index(w, padding, dev)[dx[:, None] + torch.arange(w, device=dev)]  # (N, W)
        flat = images.reshape(n, c, h * w)
        idx = (rows[:, :, None] * w + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
        out = flat.gather(2, idx).reshape(n, c, h, w)
    if flip_prob > 0:
        flip = (torch.rand(n, generator=generator) < flip_prob).to(dev)
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    if cutout > 0:
        cy = torch.randint(0, h, (n,), generator=generator).to(dev)
        cx = torch.randint(0, w, (n,), generator=generator).to(dev)
        ys = torch.arange(h, device=dev)[None, :]
        xs = torch.arange(w, device=dev)[None, :]
        lo = cutout // 2
        in_y = (ys >= (cy[:, None] - lo)) & (ys < (cy[:, None] - lo + cutout))
        in_x = (xs >= (cx[:, None] - lo)) & (xs < (cx[:, None] - lo + cutout))
        hole = (in_y[:, :, None] & in_x[:, None, :])[:, None]  # (N, 1, H, W)
        scale = 255.0 if not images.is_floating_point() else 1.0
        fill = torch.tensor(CIFAR_MEAN, device=dev)[:c] * scale
        fill = (fill.round() if not images.is_floating_point() else fill).to(images.dtype).view(1, c, 1, 1)
        out = torch.where(hole, fill, out)
    return out.clone() if out is images else out


# --------------------------------------------------------------------------- configuration
@dataclass
class ClassifierTrainConfig:
    """Everything that defines a training run of the CIFAR-10 black box.

    Attributes:
        out: Run folder (``log.jsonl``, ``last.pt``, ``classifier.pt``, ``config.json``).
        epochs: Passes over the training images.
        batch_size: Images per step.
        lr: Peak learning rate (for the mean loss).
        warmup: Fraction of the steps over which the learning rate rises linearly from 0; it
            then falls linearly to 0 at the last step.
        momentum: SGD momentum (Nesterov when ``nesterov``).
        nesterov: Use Nesterov momentum.
        weight_decay: L2 penalty of SGD on every parameter.
        label_smoothing: Of the cross-entropy.
        width: :class:`CifarNet` width (channels of the first conv).
        padding: Reflection padding of the random crop.
        cutout: Side of the cutout square (0: none).
        seed: Seed of the initial weights, data order and augmentation.
        limit: Train on a fixed random subset of this many training images (tiny runs, tests).
        test_limit: Measure test accuracy on a fixed random subset of this many test images.
        checkpoint_every_epoch: Write ``last.pt`` after every epoch (else only at the end).
        threads: torch CPU threads (0 = torch's default).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        amp: bf16 autocast on CUDA (ignored on the CPU).
    """

    out: str = "runs/cifar10_classifier"
    epochs: int = 20
    batch_size: int = 512
    lr: float = 0.4
    warmup: float = 0.25
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    width: int = 64
    padding: int = 4
    cutout: int = 8
    seed: int = 0
    limit: int | None = None
    test_limit: int | None = None
    checkpoint_every_epoch: bool = True
    threads: int = 0
    device: str = "auto"
    amp: bool = True


#: Fields that may change when a run is resumed.
_RESUMABLE_CHANGES = ("out", "epochs", "threads", "device", "checkpoint_every_epoch")


def config_command(cfg: ClassifierTrainConfig) -> str:
    """The ``python -m paperlib.cifar train ...`` command line that reproduces ``cfg``."""
    defaults = ClassifierTrainConfig()
    parts = ["python -m paperlib.cifar train"]
    for f in fields(ClassifierTrainConfig):
        v, d = getattr(cfg, f.name), getattr(defaults, f.name)
        if f.name == "epochs" or v != d:
            flag = "--" + f.name.replace("_", "-")
            if isinstance(v, bool):
                parts.append(flag if v else "--no-" + f.name.replace("_", "-"))
            else:
                parts.append(f"{flag} {shlex.quote(str(v))}")
    return " ".join(parts)


def _subset(n: int, limit: int | None, seed: int = 2017) -> torch.Tensor | None:
    """A fixed random subset of ``limit`` indices out of ``n`` (sorted), or None for all.

    The image folders are sorted by class, so a prefix would hold a single class.
    """
    if limit is None or limit >= n:
        return None
    if limit < 1:
        raise InputError(f"limit must be a positive int or None, got {limit!r}.")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:limit].sort().values


def _load_split(split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = data.cifar10_tensors(split)
    idx = _subset(len(labels), limit)
    if idx is not None:
        images, labels = images[idx], labels[idx]
    return images, labels


def _data_source(split: str = "test") -> str:
    try:
        return _cifar_source(split, None, download=False)[0]
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


def _data_note(source: str) -> str:
    return DATA_NOTE if source != "official" else "official CIFAR-10 python files"


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def _accuracy(
    net: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, normalise: bool, batch_size: int = 1000, amp: bool = False
) -> float:
    """Top-1 accuracy of ``net`` on uint8 (N, 3, 32, 32) images (in eval mode, restored after)."""
    was_training = net.training
    net.eval()
    dev = module_device(net)
    correct = 0
    try:
        for lo in range(0, len(labels), batch_size):
            x = images[lo : lo + batch_size].to(dev, non_blocking=True).float().div_(255.0)
            if normalise:
                x = cifar_normalise(x)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp and dev.type == "cuda"):
                pred = net(x).argmax(1)
            correct += int((pred.cpu() == labels[lo : lo + batch_size]).sum())
    finally:
        net.train(was_training)
    return correct / max(len(labels), 1)


def evaluate_classifier(model: nn.Module, split: str = "test", limit: int | None = None, batch_size: int = 1000) -> float:
    """Top-1 accuracy on a CIFAR-10 split (from :func:`paperlib.data.cifar10_tensors`).

    Args:
        model: A :class:`~paperlib.classifiers.BlackBox` (takes images in [0, 1]) or a bare
            network such as :class:`CifarNet` (takes normalised images).
        split: ``"train"`` or ``"test"``.
        limit: Use a fixed random subset of this many images (the same one every call).
        batch_size: Images per forward pass.

    Returns:
        The fraction of correctly classified images, in [0, 1].
    """
    images, labels = _load_split(split, limit)
    return _accuracy(model, images, labels, normalise=not isinstance(model, BlackBox), batch_size=batch_size)


# --------------------------------------------------------------------------- training
def _lr_factor(step: int, total: int, warmup: float) -> float:
    """Piecewise-linear schedule 0 -> 1 (at ``warmup * total``) -> 0 (at ``total``), at step + 1."""
    s = step + 1
    peak = max(warmup * total, 1e-9)
    if s <= peak:
        return s / peak
    return max(0.0, (total - s) / max(total - peak, 1e-9))


def _classifier_record(net: CifarNet, meta: dict[str, Any], *, half: bool = False) -> dict[str, Any]:
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    return {
        "format": FORMAT,
        "width": net.width,
        "num_classes": net.num_classes,
        "scale": net.scale,
        "state_dict": state,
        "meta": meta,
    }


def train_classifier(cfg: ClassifierTrainConfig, progress: bool = True) -> CifarNet:
    """Train (or resume training) the CIFAR-10 black box; returns the network in eval mode.

    Args:
        cfg: The run's configuration. If ``<cfg.out>/last.pt`` exists the run resumes after
            its last completed epoch; its configuration must match apart from ``epochs``
            (which may be raised: the learning-rate schedule is then stretched to the new
            length), ``threads``, ``device``, ``checkpoint_every_epoch`` and ``out``.
        progress: Show a tqdm bar (loss, accuracy) per epoch.

    Returns:
        The trained :class:`CifarNet` (takes normalised images), on the CPU, in eval mode.
        ``<cfg.out>/classifier.pt`` holds its fp32 weights and a ``meta`` record.

    Raises:
        ConfigMismatchError: ``last.pt`` belongs to a run with another configuration (a ``ValueError``).
        DataNotFoundError: CIFAR-10 is not under the data root.
    """
    run = _start_run(cfg)
    log = open(run.out / "log.jsonl", "a")
    try:
        while run.epoch < cfg.epochs:
            rec = _train_epoch(run, progress)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if progress:
                print(
                    f"epoch {run.epoch}/{cfg.epochs}: loss {rec['train_loss']:.4f}, train acc {rec['train_acc']:.4f}, "
                    f"test acc {rec['test_acc']:.4f} ({len(run.test_y)} images), {rec['seconds']:.1f} s",
                    file=sys.stderr,
                )
            if cfg.checkpoint_every_epoch or run.epoch == cfg.epochs:
                _checkpoint(run)
    except KeyboardInterrupt:
        print(
            f"\nInterrupted during epoch {run.epoch + 1}: {run.out / 'last.pt'} holds the last completed epoch; run the "
            f"same command to resume.",
            file=sys.stderr,
        )
        raise
    finally:
        log.close()
    return _finish_run(run)


@dataclass
class _Run:
    """What a CIFAR-10 training run carries from epoch to epoch."""

    cfg: ClassifierTrainConfig
    out: Path
    device: torch.device
    amp: bool
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    steps_per_epoch: int
    net: nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    epoch: int = 0
    train_seconds: float = 0.0
    test_acc: float = float("nan")


def _start_run(cfg: ClassifierTrainConfig) -> _Run:
    """Seed, load the data, build the network and optimiser, and resume from ``last.pt`` if there is one."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    train_x, train_y = _load_split("train", cfg.limit)
    test_x, test_y = _load_split("test", cfg.test_limit)
    steps_per_epoch = max(1, math.ceil(len(train_y) / cfg.batch_size))
    total_steps = cfg.epochs * steps_per_epoch
    net = CifarNet(cfg.width).to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(
        net.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total_steps, cfg.warmup))
    run = _Run(
        cfg, out, device, cfg.amp and device.type == "cuda", train_x, train_y, test_x, test_y, steps_per_epoch, net, opt, sched
    )
    state = _loop.load_last(out)
    if state is not None:
        _loop.check_resume(
            out / "last.pt",
            dict(state["train_config"]),
            asdict(cfg),
            _RESUMABLE_CHANGES,
            defaults=asdict(ClassifierTrainConfig()),
        )
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        run.epoch, run.train_seconds = int(state["epoch"]), float(state.get("train_seconds", 0.0))
        _loop.set_rng_state(state["rng"])
        _loop.truncate_log(out / "log.jsonl", run.epoch, key="epoch")
        _loop.resumed(out, f"after epoch {run.epoch} of {cfg.epochs}")
    _loop.write_config(cfg, out)
    return run


def _checkpoint(run: _Run) -> None:
    atomic_save(
        {
            "format": "paperlib-cifar10-train/1",
            "model": {k: v.detach().cpu() for k, v in run.net.state_dict().items()},
            "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict(),
            "epoch": run.epoch,
            "train_seconds": run.train_seconds,
            "test_acc": run.test_acc,
            "rng": _loop.rng_state(),
            "train_config": asdict(run.cfg),
        },
        run.out / "last.pt",
    )


def _train_step(run: _Run, idx: torch.Tensor, gen: torch.Generator) -> tuple[float, int]:
    """One SGD step on the images ``idx``; returns (loss, correct predictions)."""
    cfg, device = run.cfg, run.device
    xb = run.train_x[idx].to(device, non_blocking=True)
    yb = run.train_y[idx].to(device, non_blocking=True)
    xb = augment_batch(xb, padding=cfg.padding, cutout=cfg.cutout, generator=gen)
    xb = cifar_normalise(xb.float().div_(255.0))
    if device.type == "cuda":
        xb = xb.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=run.amp):
        logits = run.net(xb)
    loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    run.sched.step()
    return loss.item(), int((logits.argmax(1) == yb).sum())


def _train_epoch(run: _Run, progress: bool) -> dict[str, Any]:
    """Train one epoch, measure the test accuracy; returns the epoch's log record."""
    cfg = run.cfg
    # Data order and augmentation depend only on (seed, epoch): a resumed run sees the
    # same images in the same order as an uninterrupted one.
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + run.epoch)
    perm = torch.randperm(len(run.train_y), generator=gen)
    run.net.train()
    t0 = time.time()
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(
        total=run.steps_per_epoch,
        disable=not progress,
        desc=f"epoch {run.epoch + 1}/{cfg.epochs}",
        dynamic_ncols=True,
        leave=False,
    )
    try:
        for b in range(run.steps_per_epoch):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            if len(idx) < 2:  # batch norm needs two images
                run.sched.step()
                continue
            loss, ok = _train_step(run, idx, gen)
            loss_sum += loss * len(idx)
            correct += ok
            seen += len(idx)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    finally:
        bar.close()
    run.test_acc = _accuracy(run.net, run.test_x, run.test_y, normalise=True, amp=run.amp)
    seconds = time.time() - t0
    run.epoch += 1
    run.train_seconds += seconds
    return {
        "epoch": run.epoch,
        "train_loss": loss_sum / max(seen, 1),
        "train_acc": correct / max(seen, 1),
        "test_acc": run.test_acc,
        "test_images": len(run.test_y),
        "lr": run.sched.get_last_lr()[0],
        "seconds": round(seconds, 2),
        "train_seconds": round(run.train_seconds, 2),
    }


def _finish_run(run: _Run) -> CifarNet:
    """Write ``classifier.pt`` with the run's record; returns the network on the CPU in eval mode."""
    cfg, last = run.cfg, run.out / "last.pt"
    net = run.net.cpu().to(memory_format=torch.contiguous_format).eval()
    test_acc = run.test_acc
    if math.isnan(test_acc) and last.exists():  # nothing left to train: take the saved number
        test_acc = float(safe_load(last, what="training run state").get("test_acc", float("nan")))
    source = _data_source("test")
    meta = {
        "epochs": run.epoch,
        "test_acc": test_acc,
        "test_images": len(run.test_y),
        "train_images": len(run.train_y),
        "train_seconds": round(run.train_seconds, 2),
        "train_config": asdict(cfg),
        "command": config_command(cfg),
        "hardware": {**hardware(), "device": str(run.device)},
        "data_source": source,
        "data_note": _data_note(source),
    }
    atomic_save(_classifier_record(net, meta), run.out / "classifier.pt")
    return net


def _resolve_run_file(run_dir: Path) -> Path:
    if run_dir.is_file():
        return run_dir
    for name in ("classifier.pt", "last.pt"):
        if (run_dir / name).is_file():
            return run_dir / name
    raise WeightsNotFoundError(
        f"No classifier.pt or last.pt in {run_dir}: train one first with `{TRAIN_COMMAND} --out {run_dir}`."
    )


def export_classifier(
    run_dir: str | Path,
    dest: str | Path = DEFAULT_CHECKPOINT,
    command: str = "",
    *,
    evaluate: bool = True,
    test_limit: int | None = None,
) -> Path:
    """Export a trained run as the shipped black box: fp16 weights plus a JSON record.

    Writes ``dest`` (``torch.save`` dict in :data:`FORMAT` with fp16 weights), ``dest`` with the
    suffix ``.json`` (width, test accuracy, epochs, training seconds, command, hardware, data
    note) and, when the run has one, the training log as ``<stem>.log.jsonl``, each atomically.

    Args:
        run_dir: A ``python -m paperlib.cifar train`` run folder (its ``classifier.pt``, else
            ``last.pt``) or one of those files.
        dest: Target ``.pt`` file (default ``paperlib/checkpoints/cifar10_classifier.pt``).
        command: The command that trained the run (default: rebuilt from the run's configuration).
        evaluate: Measure the test accuracy of the exported fp16 weights (else copy the run's
            last logged number).
        test_limit: Evaluate on a fixed random subset of this many test images.

    Returns:
        The path of the written ``.pt`` file.
    """
    src = _resolve_run_file(Path(run_dir))
    net, meta = net_from_file(src)
    dest = Path(dest)
    record = _classifier_record(net, {}, half=True)
    # Measure what is shipped: the fp16-rounded weights, cast back to fp32 as on loading.
    shipped = CifarNet(net.width, net.num_classes, net.scale)
    shipped.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in record["state_dict"].items()})
    shipped.eval()
    if evaluate:
        test_images, _ = _load_split("test", test_limit)
        test_acc, n_test = evaluate_classifier(shipped, "test", limit=test_limit), len(test_images)
    else:
        test_acc, n_test = meta.get("test_acc"), meta.get("test_images")
    cfg = meta.get("train_config", {})
    source = meta.get("data_source") or _data_source("test")
    info = {
        "name": "cifar10",
        "architecture": f"CifarNet (ResNet-9, DAWNBench design) width {net.width}",
        "width": net.width,
        "parameters": sum(p.numel() for p in net.parameters()),
        "test_accuracy": test_acc,
        "test_images": n_test,
        "test_accuracy_fp16_weights": bool(evaluate),
        "epochs": meta.get("epochs"),
        "train_seconds": meta.get("train_seconds"),
        "command": command or meta.get("command") or (config_command(ClassifierTrainConfig(**cfg)) if cfg else ""),
        "train_config": cfg,
        "hardware": meta.get("hardware") or hardware(),
        "export_hardware": hardware(),
        "data_source": source,
        "data_note": _data_note(source),
        "source_file": str(src),
    }
    record["meta"] = {k: info[k] for k in ("test_accuracy", "test_images", "epochs", "train_seconds", "command")}
    atomic_save(record, dest)
    atomic_write_text(json.dumps(info, indent=2) + "\n", dest.with_suffix(".json"))
    log = src.parent / "log.jsonl"
    if log.is_file():
        atomic_write_text(log.read_text(), dest.with_name(dest.stem + ".log.jsonl"))
    return dest


# --------------------------------------------------------------------------- command line
def _add_config_args(p: argparse.ArgumentParser) -> None:
    subset = {"type": int, "help": "use a fixed random subset of this many images"}
    _loop.add_dataclass_args(p, ClassifierTrainConfig, special={"limit": subset, "test_limit": subset})


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: ``python -m paperlib.cifar {train,evaluate,export}``."""
    p = argparse.ArgumentParser(prog="paperlib cifar", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pt = sub.add_parser("train", help="train (or resume) the CIFAR-10 black box")
    _add_config_args(pt)
    pt.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    pe = sub.add_parser("evaluate", help="test accuracy of a classifier file, run folder or the shipped one")
    pe.add_argument("path", nargs="?", default=None, help="run folder or classifier file (default: the shipped one)")
    pe.add_argument("--split", choices=["train", "test"], default="test")
    pe.add_argument("--limit", type=int, default=None)
    pe.add_argument("--batch-size", type=int, default=1000)
    pe.add_argument("--threads", type=int, default=0)
    px = sub.add_parser("export", help="export a run as paperlib/checkpoints/cifar10_classifier.{pt,json}")
    px.add_argument("run_dir")
    px.add_argument("--dest", default=str(DEFAULT_CHECKPOINT))
    px.add_argument("--command", default="", help="training command to record (default: rebuilt from the run)")
    px.add_argument("--no-evaluate", action="store_true", help="copy the run's test accuracy instead of measuring it")
    px.add_argument("--test-limit", type=int, default=None)
    px.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    try:
        _run(a)
    except (WeightsNotFoundError, CheckpointMismatchError, DataNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def _run(a: argparse.Namespace) -> None:
    if a.cmd == "train":
        kw = _loop.dataclass_kwargs(ClassifierTrainConfig, a)
        try:
            train_classifier(ClassifierTrainConfig(**kw), progress=not a.no_progress)
        except KeyboardInterrupt:
            sys.exit(130)
        print(f"Wrote {Path(a.out) / 'classifier.pt'}; export it with `python -m paperlib.cifar export {a.out}`.")
    elif a.cmd == "evaluate":
        if a.threads:
            torch.set_num_threads(a.threads)
        path = None if a.path is None else _resolve_run_file(Path(a.path))
        bb = load_cifar10_classifier(path)
        acc = evaluate_classifier(bb, a.split, limit=a.limit, batch_size=a.batch_size)
        print(json.dumps({"split": a.split, "limit": a.limit, "accuracy": acc, "source": _data_source(a.split)}))
    else:
        if a.threads:
            torch.set_num_threads(a.threads)
        dest = export_classifier(a.run_dir, a.dest, a.command, evaluate=not a.no_evaluate, test_limit=a.test_limit)
        print(Path(dest.with_suffix(".json")).read_text())


if __name__ == "__main__":
    main()

"""Train a masking model against a black box (paper, section 4).

Run as ``python -m paperlib.train --black-box efficientnet_lite0 --out runs/lite0`` or call
:func:`train` with a :class:`TrainConfig`.

What happens at each step:

1. a batch of labelled images is augmented (random resized crop, horizontal flip);
2. with probability ``fake_prob`` (paper: 0.3) a label is replaced by a random other class;
3. the masker predicts masks for (image, class) pairs;
4. the objective of eq. 4 (:mod:`paperlib.objective`) is evaluated through the frozen black
   box, and Adam updates the decoder and the class embedding (the encoder stays frozen,
   except for the from-scratch CIFAR-10 encoder).

Every step's terms go to ``<out>/log.jsonl``; ``<out>/last.pt`` is written atomically every
``checkpoint_every`` steps and on Ctrl-C, holding the model, optimiser, data position and random
states, so that running the same command again resumes where it stopped. A kill loses at most
the steps since the last checkpoint. ``<out>/masker.pt`` is the final masker checkpoint.

Several processes (``torchrun --nproc_per_node N -m paperlib.train ...``, gloo on the CPU, nccl on
CUDA) train the model that one process would train with the same global ``--batch-size``: each rank
loads its share of every batch of the run's one sample order, every sample's random draws
(augmentation, fake label, alternative image) come from its own seed, the decoder's batch norm
spans all ranks (:mod:`paperlib.experiments._dist`), and only rank 0 writes. On CUDA a run uses
mixed precision (bf16 where supported, else fp16 with a gradient scaler), channels-last tensors and
pinned memory unless told otherwise (``--amp``, ``--channels-last``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset
from tqdm.auto import tqdm

from ..core import data
from ..core._common import atomic_save
from ..core.classifiers import LEVELS, load_classifier, randomise_top
from ..core.data import SkipUnreadable
from ..core.errors import CorruptImageError, InputError, one_line_errors
from ..core.masker import Masker, build_masker
from ..core.objective import OBJECTIVE_PRESETS, ObjectiveConfig, SaliencyLoss
from ..core.storage import FORMAT, load_masker, save_masker
from . import _dist, _loop

__all__ = [
    "TrainConfig",
    "train",
    "ResumableSampler",
    "SeededSamples",
    "draw_fake_labels",
    "sample_generators",
    "build_for_training",
    "training_dataset",
    "truncate_log",
    "saved_objective",
    "main",
]


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved into its checkpoints and log).

    Attributes:
        black_box: Registered classifier to explain.
        out: Run folder (``log.jsonl``, ``last.pt``, ``masker.pt``, ``config.json``).
        data: ImageFolders of labelled images (one or several, joined); each a path or a folder name
            under ``<data_root>/imagenet`` such as ``"train-sample"`` or ``"train-extra/nips17"``;
            default: the ImageNet train sample (or the CIFAR-10 training split for
            ``black_box="cifar10"``).
        steps: Optimisation steps.
        batch_size: Images per step.
        lr: Adam learning rate.
        schedule: ``"cosine"`` (decay to 0 over ``steps``) or ``"constant"`` (the authors' code; a
            run can then be extended by giving more ``steps`` when it is resumed).
        weight_decay: Adam's L2 weight decay (authors' code: 1e-4).
        image_size: Training crop size (224 for ImageNet, 32 for CIFAR-10).
        fake_prob: Probability of a fake label (paper: 0.3).
        encoder: Encoder name (default: the black box's backbone, or ResNet-50).
        widths, blocks, mask_stride: Decoder shape (paper: 768/384/192, 3, 4).
        output_gate: Multiply the mask by the feature-filter gate (see :class:`~paperlib.core.masker.Masker`).
        filter_affine: Per-class bias and shared scale/offset in the feature filter (``--no-filter-affine``
            with ``output_gate=False`` is exactly the paper's model).
        init_embedding: Start the class embedding from the black box's final layer when the encoder
            features are the ones that layer reads.
        class_embedding: ``"learned"`` (a learned row per class), ``"projected"`` (the rows frozen
            at their start, a learned shared projection) or ``"frozen"`` (the rows and per-class biases
            frozen at their start, as the authors' second training phase keeps them); see
            :class:`~paperlib.core.masker.FeatureFilter`.
        gate_lr_mult: Learning-rate multiplier of the feature filter's shared scale and offset.
        objective: Weights of eq. 4 that differ from the preset (see :class:`~paperlib.core.objective.ObjectiveConfig`);
            the command line stores every weight.
        objective_preset: The named objective the weights start from: ``"paper"`` (eq. 4, the default),
            ``"project"`` (the shipped maskers' recipe) or ``"official"``; see :meth:`ObjectiveConfig.preset`.
        checkpoint_every: Steps between atomic checkpoints.
        snapshot_every: Also keep the masker every this many steps as ``<out>/snapshots/step<k>.pt``
            (0 = never), for learning curves.
        max_images: Train on only this many distinct images of ``data`` (a subset drawn once with
            ``seed``; 0 = all), for learning curves over the number of training images.
        seed: Seed of data order, augmentation, fake labels and alternative images.
        workers: DataLoader worker processes.
        threads: torch CPU threads (0 = torch's default).
        init_from: Masker checkpoint to start the decoder and class embedding from (warm start;
            the architecture must match). Recorded in the run's configuration.
        max_bad_fraction: Unreadable training images are skipped (each replaced by the next readable
            one, with a warning, counted as ``skipped_images`` in the log); the run stops with a
            :class:`~paperlib.core.errors.CorruptImageError` when more than this share of the
            images drawn so far was unreadable (judged from 64 draws on, or the whole dataset if smaller).
        black_box_size: Side of the images the black box sees during training (the objective's
            two passes): images and masks are resized to it. 0 = the training crop size. A lower
            size makes a step cheaper; evaluation always uses the black box's own size.
        draws: ``"per-sample"``: each sample's fake label and alternative image come from a seed made
            of (seed, its position in the run), like its augmentation, so that any number of
            processes draws the same (required under ``torchrun``); ``"per-batch"``: one generator
            for the run, drawn batch by batch (how runs before version 0.3 drew, the shipped
            maskers among them).
        randomise_top: Sanity check (Adebayo et al., 2018): train against a copy of the black box
            whose top layers are re-initialised (a key of :data:`~paperlib.core.classifiers.LEVELS`,
            seeded by ``seed``; ``None``: the black box as it is). The class embedding is then
            started from the randomised final layer. Not for maskers meant for use.
        device: ``"auto"`` (``cuda:<local rank>`` when CUDA is available, else the CPU), ``"cpu"`` or ``"cuda"``.
        amp: Mixed precision: ``"auto"`` (on CUDA bf16 where supported, else fp16 with a gradient
            scaler; off on the CPU), ``"off"``, ``"bf16"`` or ``"fp16"`` (CUDA only).
        channels_last: ``"auto"`` (on CUDA only), ``"on"`` or ``"off"``: the channels-last memory format
            for images, masker and black box.
    """

    black_box: str = "efficientnet_lite0"
    out: str = "runs/efficientnet_lite0"
    data: list[str] | None = None
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    schedule: str = "cosine"
    weight_decay: float = 0.0
    image_size: int = 224
    fake_prob: float = 0.3
    encoder: str | None = None
    widths: list[int] | None = None
    blocks: int | None = None
    mask_stride: int | None = None
    output_gate: bool = False
    filter_affine: bool = True
    init_embedding: bool = True
    class_embedding: str = "learned"
    gate_lr_mult: float = 30.0
    objective: dict[str, Any] = field(default_factory=dict)
    objective_preset: str = "paper"
    checkpoint_every: int = 50
    snapshot_every: int = 0
    seed: int = 0
    max_images: int = 0
    workers: int = 1
    threads: int = 0
    init_from: str | None = None
    black_box_size: int = 0
    max_bad_fraction: float = 0.1
    draws: str = "per-sample"
    randomise_top: str | None = None
    device: str = "auto"
    amp: str = "auto"
    channels_last: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.data, str):  # configurations written before several folders were allowed
            self.data = [self.data]

    def objective_config(self) -> ObjectiveConfig:
        """The objective of the run: the preset with the weights of ``objective`` over it."""
        return ObjectiveConfig.preset(self.objective_preset, **self.objective)


def saved_objective(train_config: dict[str, Any]) -> ObjectiveConfig:
    """The objective of a saved run configuration (``config.json``, ``last.pt``, a checkpoint's json).

    Configurations written before ``objective_preset`` existed stored only the weights given on the
    command line, over the defaults of that time (:meth:`ObjectiveConfig.legacy`).
    """
    return ObjectiveConfig.preset(train_config.get("objective_preset", "legacy"), **train_config.get("objective", {}))


class ResumableSampler(Sampler):
    """Random permutation per epoch, seeded by (seed, epoch), that can start mid-epoch.

    Args:
        n: Dataset size.
        seed: Base seed.
        start: Number of samples already consumed (over all epochs) to skip.
        positions: Yield ``(position, index)`` pairs (position = samples drawn before this one, over
            the whole run) for :class:`SeededSamples`, instead of bare indices.
    """

    def __init__(self, n: int, seed: int, start: int = 0, positions: bool = False) -> None:
        self.n, self.seed, self.start, self.positions = n, seed, start, positions

    def __iter__(self) -> Iterator:
        epoch, offset = divmod(self.start, self.n)
        pos = self.start
        while True:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            for i in torch.randperm(self.n, generator=g).tolist()[offset:]:
                yield (pos, i) if self.positions else i
                pos += 1
            offset, epoch = 0, epoch + 1

    def __len__(self) -> int:  # infinite in practice; DataLoader only needs a number
        return 2**62


class SeededSamples(Dataset):
    """Draw every sample's random augmentation from its own seed, derived from (run seed, position).

    Item ``(position, index)`` seeds Python's and torch's random generators of the process that
    loads it (the main process or a loader worker) with a number made from the run's seed and the
    position, then returns ``base[index]`` with the position appended (``(*base[index], position)``). A resumed run therefore augments sample ``k`` exactly as
    the uninterrupted run did, whatever the number of loader workers and wherever it was killed.
    """

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base, self.seed = base, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        pos, i = key
        s = (self.seed * 1_000_003 + pos) % (2**63 - 1)
        torch.manual_seed(s)
        random.seed(s)
        item = self.base[i]
        return (*item, pos) if isinstance(item, tuple) else (item, pos)


def draw_fake_labels(
    labels: torch.Tensor, num_classes: int, prob: float, generator: torch.Generator | Sequence[torch.Generator]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each label with probability ``prob`` by a uniformly drawn *different* class.

    Args:
        generator: One generator for the batch, or one per label (see :func:`sample_generators`).

    Returns:
        (classes (N,), is_real (N,) bool).
    """
    n = len(labels)
    if isinstance(generator, (list, tuple)):
        fake = torch.cat([torch.rand(1, generator=g) < prob for g in generator])
        shift = torch.cat([torch.randint(1, num_classes, (1,), generator=g) for g in generator])
    else:
        fake = torch.rand(n, generator=generator) < prob
        shift = torch.randint(1, num_classes, (n,), generator=generator)
    classes = torch.where(fake, (labels.cpu() + shift) % num_classes, labels.cpu())
    return classes, ~fake


def sample_generators(seed: int, positions: torch.Tensor) -> list[torch.Generator]:
    """One generator per sample for its fake label and alternative image, seeded by (run seed, position).

    The seeds differ from the augmentation's (:class:`SeededSamples`), and a sample draws the same
    numbers whichever process, batch or resumed run it lands in.
    """
    return [torch.Generator().manual_seed((2 * (seed * 1_000_003 + int(p)) + 1) % (2**63 - 1)) for p in positions]


def truncate_log(path: Path, step: int) -> None:
    """Drop log records after ``step`` (steps done after the last checkpoint of a killed run)."""
    _loop.truncate_log(path, step, key="step")


def training_dataset(cfg: TrainConfig) -> Dataset:
    """The labelled, augmented training images of ``cfg.data`` (random resized crop and flip; CIFAR-10: padded crop and flip)."""
    from torchvision import transforms as T  # here, not at the top: torchvision imports torch._dynamo (seconds)

    if cfg.black_box == "cifar10":
        tf = T.Compose([T.RandomCrop(32, padding=4, padding_mode="reflect"), T.RandomHorizontalFlip(), T.ToTensor()])
        if cfg.data is None:
            return data.cifar10("train", transform=tf)
        folders = [data.imagenet_folder(d, transform=tf) for d in cfg.data]
    else:
        tf = T.Compose([T.RandomResizedCrop(cfg.image_size, scale=(0.25, 1.0)), T.RandomHorizontalFlip(), T.ToTensor()])
        folders = [data.imagenet_folder(d, transform=tf) for d in (cfg.data or [None])]
    ds = folders[0] if len(folders) == 1 else ConcatDataset(folders)
    return image_subset(ds, cfg.max_images, cfg.seed)


def image_subset(ds: Dataset, n: int, seed: int) -> Dataset:
    """``n`` distinct items of ``ds`` drawn once with ``seed`` (all of it when ``n`` is 0).

    >>> sub = image_subset(list(range(10)), 3, seed=0)
    >>> len(sub), len(set(sub[i] for i in range(3)))
    (3, 3)
    >>> len(image_subset(list(range(10)), 0, seed=0))
    10
    """
    if n < 0:
        raise InputError(f"max_images must be 0 (all images) or positive, not {n}.")
    if n == 0:
        return ds
    if n > len(ds):
        raise InputError(f"max_images {n} is more than the {len(ds)} training images: give at most {len(ds)}, or 0 for all.")
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    return Subset(ds, sorted(order[:n].tolist()))


def build_for_training(cfg: TrainConfig) -> tuple[Masker, torch.nn.Module]:
    """The masker to train (fresh, seeded by ``cfg.seed``, or warm-started from ``cfg.init_from``) and its black box."""
    black_box = load_classifier(cfg.black_box)
    # Seed after loading the black box: building it the first time in a process draws random
    # initial weights, which would otherwise change the masker's initialisation.
    torch.manual_seed(cfg.seed)
    kw: dict[str, Any] = {}
    for k in ("widths", "blocks", "mask_stride", "output_gate"):
        if getattr(cfg, k) is not None:
            kw[k] = getattr(cfg, k)
    if not cfg.filter_affine:
        kw["filter_affine"] = False
    if cfg.class_embedding != "learned":
        kw["class_embedding"] = cfg.class_embedding
    masker = build_masker(cfg.black_box, encoder=cfg.encoder, **kw)
    # Only a frozen copy of the black box's own backbone reads the features its final layer reads
    # (the CIFAR-10 encoder shares the black box's name but is trained from scratch).
    same_features = masker.encoder.name == black_box.name and not masker.encoder.trainable
    if cfg.randomise_top:
        black_box = randomise_top(black_box, cfg.randomise_top, seed=cfg.seed)
    if cfg.init_embedding and black_box.classifier_layer is not None and same_features:
        masker.init_embedding(black_box.classifier_layer)
    if cfg.init_from:
        start = load_masker(cfg.init_from, black_box=cfg.black_box)
        start.close_holes = False  # inference-time options (the shipped maskers set them), not architecture
        start.gate_offset, start.threshold = 0.0, None
        if start.config != masker.config:
            raise InputError(
                f"--init-from {cfg.init_from} has the architecture {start.config}, not {masker.config}: "
                "pass the same decoder options, or start from scratch."
            )
        masker.load_state_dict(start.state_dict())
    return masker, black_box


def _black_box_view(images: torch.Tensor, masks: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and masks at the side the black box sees during training (``size`` 0: unchanged)."""
    if not size or images.shape[-1] == size and images.shape[-2] == size:
        return images, masks
    small = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return small.clamp(0.0, 1.0), F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=False)


#: Fields that may change when a run is resumed (how it runs, not what it computes).
_RESUMABLE_CHANGES = (
    "out",
    "steps",
    "workers",
    "threads",
    "checkpoint_every",
    "snapshot_every",
    "max_bad_fraction",
    "device",
    "amp",
    "channels_last",
)
#: What a run folder written before a field existed meant by it (for the resume check).
_LEGACY_DEFAULTS = {"draws": "per-batch"}


@dataclass
class _Run:
    """What a masker training run carries from step to step."""

    cfg: TrainConfig
    out: Path
    masker: Masker
    loss_fn: SaliencyLoss
    opt: torch.optim.Optimizer
    sched: Any
    gen: torch.Generator
    ctx: _dist.Context = field(default_factory=_dist.Context)
    model: torch.nn.Module | None = None  # the masker, wrapped in DistributedDataParallel with several processes
    amp_dtype: torch.dtype | None = None
    scaler: Any = None
    channels_last: bool = False
    step: int = 0
    seen: int = 0
    skipped: int = 0  # unreadable images passed over so far


def _optimiser(masker: Masker, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    """Adam with a cosine schedule (:func:`paperlib.experiments._loop.masker_optimiser`)."""
    return _loop.masker_optimiser(
        masker, cfg.lr, cfg.gate_lr_mult, cfg.steps, schedule=cfg.schedule, weight_decay=cfg.weight_decay
    )


def _precision(cfg: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether to use the fp16 gradient scaler) for ``cfg.amp`` on ``device``."""
    if cfg.amp not in ("auto", "off", "bf16", "fp16"):
        raise InputError(f"--amp {cfg.amp!r}: choose auto, off, bf16 or fp16.")
    if cfg.amp == "off" or (cfg.amp == "auto" and device.type != "cuda"):
        return None, False
    if cfg.amp == "auto":
        return (torch.bfloat16, False) if torch.cuda.is_bf16_supported() else (torch.float16, True)
    if cfg.amp == "fp16" and device.type != "cuda":
        raise InputError("--amp fp16 needs CUDA; on the CPU use --amp bf16 or off.")
    return (torch.bfloat16, False) if cfg.amp == "bf16" else (torch.float16, True)


def _check_execution(cfg: TrainConfig, ctx: _dist.Context) -> None:
    if cfg.draws not in ("per-sample", "per-batch"):
        raise InputError(f"--draws {cfg.draws!r}: choose per-sample or per-batch.")
    if ctx.distributed and cfg.draws != "per-sample":
        raise InputError("Several processes need --draws per-sample (each sample's draws from its own seed).")
    if cfg.channels_last not in ("auto", "on", "off"):
        raise InputError(f"--channels-last {cfg.channels_last!r}: choose auto, on or off.")


def _place(run: _Run) -> None:
    """Move the masker and the black box to the run's device and memory format; choose the precision."""
    ctx, cfg = run.ctx, run.cfg
    run.channels_last = cfg.channels_last == "on" or (cfg.channels_last == "auto" and ctx.device.type == "cuda")
    fmt = torch.channels_last if run.channels_last else torch.contiguous_format
    run.masker.to(ctx.device, memory_format=fmt)
    run.loss_fn.black_box.to(ctx.device, memory_format=fmt)
    run.amp_dtype, use_scaler = _precision(cfg, ctx.device)
    run.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    run.model = run.masker


def _wrap(run: _Run) -> None:
    """With several processes: batch norm over the global batch, and DistributedDataParallel."""
    ctx = run.ctx
    if ctx.distributed:
        _dist.convert_batchnorm(run.masker)
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        run.model = torch.nn.parallel.DistributedDataParallel(run.masker, device_ids=ids, find_unused_parameters=True)


def _resume(run: _Run, state: dict[str, Any]) -> None:
    """Check ``last.pt``'s configuration against the run's and restore its state."""
    cfg, out = run.cfg, run.out
    saved = dict(state["train_config"])
    mine = {k: v for k, v in asdict(cfg).items() if k not in ("objective", "objective_preset")}
    mine["resolved_objective"] = cfg.objective_config()
    saved["resolved_objective"] = saved_objective(saved)
    _loop.check_resume(out / "last.pt", saved, mine, _RESUMABLE_CHANGES, defaults={**asdict(TrainConfig()), **_LEGACY_DEFAULTS})
    run.masker.load_state_dict(state["masker_state"])
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    run.step, run.seen, run.skipped = state["step"], state["seen"], state.get("skipped", 0)
    run.gen.set_state(state["generator"])
    _loop.set_rng_state(state["rng"])
    if run.scaler is not None and state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    if run.ctx.main:
        truncate_log(out / "log.jsonl", run.step)
        _loop.resumed(out, f"at step {run.step}")


def _start_run(cfg: TrainConfig, ctx: _dist.Context | None = None) -> _Run:
    """Seed, build the masker, loss and optimiser, and resume from ``last.pt`` if there is one."""
    ctx = ctx or _dist.Context()
    _check_execution(cfg, ctx)
    out = Path(cfg.out)
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    masker, black_box = build_for_training(cfg)
    loss_fn = SaliencyLoss(black_box, cfg.objective_config())
    opt, sched = _optimiser(masker, cfg)
    run = _Run(cfg, out, masker, loss_fn, opt, sched, torch.Generator().manual_seed(cfg.seed + 1), ctx=ctx)
    _place(run)  # before resuming: the optimiser's state is then loaded where its parameters live
    state = _loop.load_last(out)
    if state is not None:
        _resume(run, state)
    _wrap(run)
    if ctx.main:
        _loop.write_config(cfg, out)
    return run


def _checkpoint(run: _Run) -> None:
    if not run.ctx.main:
        return
    masker = run.masker
    atomic_save(
        {
            "masker": {
                "format": FORMAT,
                "config": masker.config,
                "state_dict": _cpu(masker.trainable_state_dict()),
                "meta": {"step": run.step},
            },
            "masker_state": _cpu(masker.state_dict()),
            "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict(),
            "scaler": run.scaler.state_dict() if run.scaler is not None else None,
            "step": run.step,
            "seen": run.seen,
            "skipped": run.skipped,
            "generator": run.gen.get_state(),
            "rng": _loop.rng_state(),
            "train_config": asdict(run.cfg),
        },
        run.out / "last.pt",
    )


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _nan_mean(values: torch.Tensor, keep: torch.Tensor) -> float:
    """Mean of ``values[keep]``, NaN when ``keep`` selects nothing."""
    return float(values[keep].mean()) if keep.any() else float("nan")


def _draws(run: _Run, labels: torch.Tensor, positions: torch.Tensor | None) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """(generator(s) for the alternative images, classes, is_real) of a batch."""
    cfg, masker = run.cfg, run.masker
    gens: Any = run.gen if cfg.draws == "per-batch" or positions is None else sample_generators(cfg.seed, positions)
    classes, is_real = draw_fake_labels(labels, masker.num_classes, cfg.fake_prob, gens)
    return gens, classes, is_real


def _train_step(
    run: _Run, images: torch.Tensor, labels: torch.Tensor, t0: float, positions: torch.Tensor | None = None
) -> dict[str, Any]:
    """One Adam step on a batch (this rank's share of it); returns the step's log record (whole batch)."""
    cfg, loss_fn, ctx = run.cfg, run.loss_fn, run.ctx
    gens, classes, is_real = _draws(run, labels, positions)
    dev = ctx.device
    images = images.to(dev, non_blocking=True)
    if run.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    classes, is_real = classes.to(dev), is_real.to(dev)
    autocast = torch.autocast(dev.type, dtype=run.amp_dtype) if run.amp_dtype is not None else contextlib.nullcontext()
    with autocast:
        outp = run.model(images, classes, return_aux=True)
        seen_images, seen_masks = _black_box_view(images, outp.mask, cfg.black_box_size)
        loss = loss_fn(
            seen_images,
            seen_masks,
            classes,
            is_real=is_real,
            masks_low=outp.mask_low,
            gate=outp.gate,
            generator=gens,
            labels=labels.to(dev),
        )
    run.opt.zero_grad(set_to_none=True)
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        run.scaler.step(run.opt)
        run.scaler.update()
    else:
        loss.backward()
        run.opt.step()
    run.sched.step()
    run.step += 1
    run.seen += cfg.batch_size
    return _record(run, outp, t0)


def _record(run: _Run, outp: Any, t0: float) -> dict[str, Any]:
    """The log record of a step, from every rank's per-sample terms (gathered)."""
    terms, ctx = run.loss_fn.last_terms, run.ctx
    per_sample = {k: terms[k].detach().float() for k in ("total", "tv", "preserve", "destroy", "p_preserve", "p_destroy")}
    per_sample["area"] = outp.mask_low.detach().float().flatten(1).mean(1)
    per_sample["gate"] = outp.gate.detach().float().flatten(1).amax(1)
    per_sample["is_real"] = terms["is_real"].float()
    per_sample = {k: _dist.gather(v, ctx).cpu() for k, v in per_sample.items()}
    real = per_sample["is_real"].bool()
    return {
        "step": run.step,
        "time": round(time.time() - t0, 2),
        "lr": run.sched.get_last_lr()[0],
        "loss": float(per_sample["total"].mean()),
        **{k: _nan_mean(per_sample[k], real) for k in ("tv", "preserve", "destroy", "p_preserve", "p_destroy")},
        "area_real": _nan_mean(per_sample["area"], real),
        "area_fake": _nan_mean(per_sample["area"], ~real),
        "gate_real": _nan_mean(per_sample["gate"], real),
        "gate_fake": _nan_mean(per_sample["gate"], ~real),
    }


def _count_unreadable(run: _Run, skipped: int, n: int) -> None:
    """Add a batch's unreadable images (all ranks) to the run's count; stop when their share passes ``max_bad_fraction``."""
    run.skipped += int(_dist.all_sum(skipped, run.ctx))
    drawn = run.seen + run.cfg.batch_size + run.skipped
    if run.skipped and drawn >= min(64, n) and run.skipped / drawn > run.cfg.max_bad_fraction:
        raise CorruptImageError(
            f"{run.skipped} of the {drawn} training images drawn so far could not be read "
            f"({100 * run.skipped / drawn:.0f} %, above --max-bad-fraction {run.cfg.max_bad_fraction}): "
            "check or replace the data folder (the warnings above name the files)."
        )


def _loader(run: _Run, ds: Dataset) -> DataLoader:
    """This rank's loader: its share of each global batch of the run's one sample order, from the run's position."""
    cfg, ctx = run.cfg, run.ctx
    order = ResumableSampler(len(ds), cfg.seed, run.seen, positions=True)
    return DataLoader(
        SeededSamples(ds, cfg.seed),
        batch_size=cfg.batch_size // ctx.world,
        sampler=_dist.RankSlice(order, cfg.batch_size, ctx.rank, ctx.world),
        num_workers=cfg.workers,
        drop_last=True,
        persistent_workers=cfg.workers > 0,
        pin_memory=ctx.device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),  # its base seed is not drawn from the global RNG
    )


def _after_step(run: _Run, rec: dict[str, Any], log: Any, bar: Any) -> None:
    """Log (rank 0), checkpoint and snapshot after a step."""
    cfg = run.cfg
    if run.ctx.main:
        log.write(json.dumps(rec) + "\n")
        log.flush()
        bar.update(1)
        bar.set_postfix(
            loss=f"{rec['loss']:.3f}",
            area=f"{rec['area_real']:.2f}",
            fake=f"{rec['area_fake']:.2f}",
            p=f"{rec['p_preserve']:.2f}",
        )
    if run.step % cfg.checkpoint_every == 0 or run.step == cfg.steps:
        _checkpoint(run)
    if cfg.snapshot_every and run.step % cfg.snapshot_every == 0 and run.ctx.main:
        meta = {"step": run.step, "train_config": asdict(cfg)}
        save_masker(run.masker, run.out / "snapshots" / f"step{run.step:06d}.pt", meta=meta)


def train(cfg: TrainConfig, *, dataset: Dataset | None = None, progress: bool = True) -> Masker:
    """Train (or resume training) a masker; returns it in eval mode.

    Started by ``torchrun`` (``WORLD_SIZE`` > 1), each process trains its share of every global
    batch (see the module docstring); otherwise one process trains on ``cfg.device``.

    Args:
        cfg: The run's configuration. If ``<cfg.out>/last.pt`` exists the run resumes from it
            (its configuration must match, apart from ``steps``, which may be raised).
        dataset: Labelled images (image (3, S, S) in [0, 1], class index); default from ``cfg.data``.
        progress: Show a tqdm bar with the loss terms (rank 0).

    Raises:
        ConfigMismatchError: ``last.pt`` belongs to a run with another configuration (a ``ValueError``).
    """
    ctx = _dist.setup(cfg.device)
    run = None
    try:
        run = _start_run(cfg, ctx)
        ds = SkipUnreadable(dataset if dataset is not None else training_dataset(cfg))
        _loop_steps(run, _loader(run, ds), len(ds), progress)
    finally:
        if run is not None:
            run.model = None  # free DistributedDataParallel before its process group (else gloo's teardown can hang)
        _dist.cleanup(ctx)
    run.masker.eval()
    if ctx.main:
        save_masker(run.masker, run.out / "masker.pt", meta={"step": run.step, "train_config": asdict(cfg)})
    return run.masker


def _loop_steps(run: _Run, loader: DataLoader, n: int, progress: bool) -> None:
    """Train until ``cfg.steps``; on Ctrl-C checkpoint and re-raise."""
    cfg = run.cfg
    run.masker.train()
    log = open(run.out / "log.jsonl", "a") if run.ctx.main else None
    bar = tqdm(
        total=cfg.steps,
        initial=run.step,
        disable=not (progress and run.ctx.main),
        desc=f"train {cfg.black_box}",
        dynamic_ncols=True,
    )
    it = iter(loader)
    t0 = time.time()
    try:
        while run.step < cfg.steps:
            images, labels, skipped, positions = next(it)
            _count_unreadable(run, int(skipped.sum()), n)
            rec = _train_step(run, images, labels, t0, positions)
            rec["skipped_images"] = run.skipped
            _after_step(run, rec, log, bar)
    except KeyboardInterrupt:
        _checkpoint(run)
        if run.ctx.main:
            print(
                f"\nInterrupted: checkpoint saved at step {run.step} in {run.out / 'last.pt'}; run the same command to resume.",
                file=sys.stderr,
            )
        raise
    finally:
        bar.close()
        if log is not None:
            log.close()


#: ``--preset-objective`` choices; ``default`` is the meaning the flag had before 0.2 (kept for old commands).
_PRESET_CHOICES = (*OBJECTIVE_PRESETS, "default")


def _parse(argv: Sequence[str] | None) -> TrainConfig:
    """The :class:`TrainConfig` of a ``python -m paperlib.train`` command line.

    Every objective weight is resolved and stored: the preset (``--preset-objective``, default
    ``paper``) with the weights given as flags over it.
    """
    p = argparse.ArgumentParser(prog="paperlib train", description=__doc__.split("\n\n")[0])
    _loop.add_dataclass_args(
        p,
        TrainConfig,
        skip=("objective", "objective_preset"),
        special={
            "widths": {"type": int, "nargs": "+", "help": "decoder widths, deepest first"},
            "data": {"nargs": "+", "help": "image folders (joined), e.g. train-sample train-extra/nips17"},
            "class_embedding": {
                "choices": ["learned", "projected", "frozen"],
                "help": "learned class rows, frozen rows with a learned shared projection, or frozen rows",
            },
            "randomise_top": {
                "choices": list(LEVELS),
                "help": "sanity check: train against the black box with these top layers re-initialised",
            },
        },
        types={"blocks": int, "mask_stride": int},
    )
    for f in fields(ObjectiveConfig):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=None, help=f"objective: {f.name}")
    p.add_argument(
        "--preset-objective",
        choices=_PRESET_CHOICES,
        default="paper",
        help="start from ObjectiveConfig.paper() (eq. 4 as printed, the default), .project() (the shipped "
        "maskers' recipe), .official() (the authors' class defaults) or .authors() (the authors' objective as "
        "their saliency_train.py runs it); weights given as flags override it",
    )
    args = vars(p.parse_args(argv))
    obj_names = {f.name for f in fields(ObjectiveConfig)}
    given = {k: v for k, v in args.items() if k in obj_names and v is not None}
    preset = args.pop("preset_objective")
    preset = "legacy" if preset == "default" else preset  # before 0.2, "default" meant ObjectiveConfig() of that time
    objective = ObjectiveConfig.preset(preset, **given).to_dict()
    cfg_kw = {k: v for k, v in args.items() if k not in obj_names}
    return TrainConfig(**cfg_kw, objective=objective, objective_preset=preset)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    cfg = _parse(argv)
    try:
        with one_line_errors("python -m paperlib.train"):
            train(cfg)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

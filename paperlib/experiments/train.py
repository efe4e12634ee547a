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
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler
from torchvision import transforms as T
from tqdm.auto import tqdm

from ..core import data
from ..core._common import atomic_save
from ..core.classifiers import load_classifier
from ..core.data import SkipUnreadable
from ..core.errors import CorruptImageError, InputError, one_line_errors
from ..core.masker import Masker, build_masker
from ..core.objective import OBJECTIVE_PRESETS, ObjectiveConfig, SaliencyLoss
from ..core.storage import FORMAT, load_masker, save_masker
from . import _loop

__all__ = [
    "TrainConfig",
    "train",
    "ResumableSampler",
    "SeededSamples",
    "draw_fake_labels",
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
        image_size: Training crop size (224 for ImageNet, 32 for CIFAR-10).
        fake_prob: Probability of a fake label (paper: 0.3).
        encoder: Encoder name (default: the black box's backbone, or ResNet-50).
        widths, blocks, mask_stride: Decoder shape (paper: 768/384/192, 3, 4).
        output_gate: Multiply the mask by the feature-filter gate (see :class:`~paperlib.core.masker.Masker`).
        filter_affine: Per-class bias and shared scale/offset in the feature filter (``--no-filter-affine``
            with ``output_gate=False`` is exactly the paper's model).
        init_embedding: Start the class embedding from the black box's final layer when the encoder
            features are the ones that layer reads.
        gate_lr_mult: Learning-rate multiplier of the feature filter's shared scale and offset.
        objective: Weights of eq. 4 that differ from the preset (see :class:`~paperlib.core.objective.ObjectiveConfig`);
            the command line stores every weight.
        objective_preset: The named objective the weights start from: ``"paper"`` (eq. 4, the default),
            ``"project"`` (the shipped maskers' recipe) or ``"official"``; see :meth:`ObjectiveConfig.preset`.
        checkpoint_every: Steps between atomic checkpoints.
        snapshot_every: Also keep the masker every this many steps as ``<out>/snapshots/step<k>.pt``
            (0 = never), for learning curves.
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
    """

    black_box: str = "efficientnet_lite0"
    out: str = "runs/efficientnet_lite0"
    data: list[str] | None = None
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    image_size: int = 224
    fake_prob: float = 0.3
    encoder: str | None = None
    widths: list[int] | None = None
    blocks: int | None = None
    mask_stride: int | None = None
    output_gate: bool = False
    filter_affine: bool = True
    init_embedding: bool = True
    gate_lr_mult: float = 30.0
    objective: dict[str, Any] = field(default_factory=dict)
    objective_preset: str = "paper"
    checkpoint_every: int = 50
    snapshot_every: int = 0
    seed: int = 0
    workers: int = 1
    threads: int = 0
    init_from: str | None = None
    black_box_size: int = 0
    max_bad_fraction: float = 0.1

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
    position, then returns ``base[index]``. A resumed run therefore augments sample ``k`` exactly as
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
        return self.base[i]


def draw_fake_labels(
    labels: torch.Tensor, num_classes: int, prob: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each label with probability ``prob`` by a uniformly drawn *different* class.

    Returns:
        (classes (N,), is_real (N,) bool).
    """
    n = len(labels)
    fake = torch.rand(n, generator=generator) < prob
    shift = torch.randint(1, num_classes, (n,), generator=generator)
    classes = torch.where(fake, (labels + shift) % num_classes, labels)
    return classes, ~fake


def truncate_log(path: Path, step: int) -> None:
    """Drop log records after ``step`` (steps done after the last checkpoint of a killed run)."""
    _loop.truncate_log(path, step, key="step")


def _default_dataset(cfg: TrainConfig) -> Dataset:
    if cfg.black_box == "cifar10":
        tf = T.Compose([T.RandomCrop(32, padding=4, padding_mode="reflect"), T.RandomHorizontalFlip(), T.ToTensor()])
        if cfg.data is None:
            return data.cifar10("train", transform=tf)
        folders = [data.imagenet_folder(d, transform=tf) for d in cfg.data]
    else:
        tf = T.Compose([T.RandomResizedCrop(cfg.image_size, scale=(0.25, 1.0)), T.RandomHorizontalFlip(), T.ToTensor()])
        folders = [data.imagenet_folder(d, transform=tf) for d in (cfg.data or [None])]
    return folders[0] if len(folders) == 1 else ConcatDataset(folders)


def _build(cfg: TrainConfig) -> tuple[Masker, torch.nn.Module]:
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
    masker = build_masker(cfg.black_box, encoder=cfg.encoder, **kw)
    # Only a frozen copy of the black box's own backbone reads the features its final layer reads
    # (the CIFAR-10 encoder shares the black box's name but is trained from scratch).
    same_features = masker.encoder.name == black_box.name and not masker.encoder.trainable
    if cfg.init_embedding and black_box.classifier_layer is not None and same_features:
        masker.init_embedding(black_box.classifier_layer)
    if cfg.init_from:
        start = load_masker(cfg.init_from, black_box=black_box.name)
        start.close_holes = False  # an inference-time option (the shipped maskers switch it on), not architecture
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


#: Fields that may change when a run is resumed.
_RESUMABLE_CHANGES = ("out", "steps", "workers", "threads", "checkpoint_every", "snapshot_every", "max_bad_fraction")


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
    step: int = 0
    seen: int = 0
    skipped: int = 0  # unreadable images passed over so far


def _optimiser(masker: Masker, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    """Adam with a cosine schedule (:func:`paperlib.experiments._loop.masker_optimiser`)."""
    return _loop.masker_optimiser(masker, cfg.lr, cfg.gate_lr_mult, cfg.steps)


def _start_run(cfg: TrainConfig) -> _Run:
    """Seed, build the masker, loss and optimiser, and resume from ``last.pt`` if there is one."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    masker, black_box = _build(cfg)
    loss_fn = SaliencyLoss(black_box, cfg.objective_config())
    opt, sched = _optimiser(masker, cfg)
    run = _Run(cfg, out, masker, loss_fn, opt, sched, torch.Generator().manual_seed(cfg.seed + 1))
    state = _loop.load_last(out)
    if state is not None:
        saved = dict(state["train_config"])
        mine = {k: v for k, v in asdict(cfg).items() if k not in ("objective", "objective_preset")}
        mine["resolved_objective"] = cfg.objective_config()
        saved["resolved_objective"] = saved_objective(saved)
        _loop.check_resume(out / "last.pt", saved, mine, _RESUMABLE_CHANGES, defaults=asdict(TrainConfig()))
        masker.load_state_dict(state["masker_state"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        run.step, run.seen, run.skipped = state["step"], state["seen"], state.get("skipped", 0)
        run.gen.set_state(state["generator"])
        _loop.set_rng_state(state["rng"])
        truncate_log(out / "log.jsonl", run.step)
        print(f"Resuming {out} at step {run.step}.", file=sys.stderr)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return run


def _checkpoint(run: _Run) -> None:
    masker = run.masker
    atomic_save(
        {
            "masker": {
                "format": FORMAT,
                "config": masker.config,
                "state_dict": masker.trainable_state_dict(),
                "meta": {"step": run.step},
            },
            "masker_state": masker.state_dict(),
            "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict(),
            "step": run.step,
            "seen": run.seen,
            "skipped": run.skipped,
            "generator": run.gen.get_state(),
            "rng": _loop.rng_state(),
            "train_config": asdict(run.cfg),
        },
        run.out / "last.pt",
    )


def _nan_mean(values: torch.Tensor, keep: torch.Tensor) -> float:
    """Mean of ``values[keep]``, NaN when ``keep`` selects nothing."""
    return float(values[keep].mean()) if keep.any() else float("nan")


def _train_step(run: _Run, images: torch.Tensor, labels: torch.Tensor, t0: float) -> dict[str, Any]:
    """One Adam step on a batch; returns the step's log record."""
    cfg, masker, loss_fn = run.cfg, run.masker, run.loss_fn
    classes, is_real = draw_fake_labels(labels, masker.num_classes, cfg.fake_prob, run.gen)
    outp = masker(images, classes, return_aux=True)
    seen_images, seen_masks = _black_box_view(images, outp.mask, cfg.black_box_size)
    loss = loss_fn(seen_images, seen_masks, classes, is_real=is_real, masks_low=outp.mask_low, gate=outp.gate, generator=run.gen)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    run.sched.step()
    run.step += 1
    run.seen += len(images)
    terms = loss_fn.last_terms
    real = terms["is_real"]
    area, gate = outp.mask_low.detach(), outp.gate.detach().flatten(1).amax(1)
    return {
        "step": run.step,
        "time": round(time.time() - t0, 2),
        "lr": run.sched.get_last_lr()[0],
        "loss": loss.item(),
        **{
            k: terms[k].detach()[real].mean().item() if real.any() else float("nan")
            for k in ("tv", "preserve", "destroy", "p_preserve", "p_destroy")
        },
        "area_real": _nan_mean(area, real),
        "area_fake": _nan_mean(area, ~real),
        "gate_real": _nan_mean(gate, real),
        "gate_fake": _nan_mean(gate, ~real),
    }


def _count_unreadable(run: _Run, skipped: int, n: int) -> None:
    """Add a batch's unreadable images to the run's count; stop when their share passes ``max_bad_fraction``."""
    run.skipped += skipped
    drawn = run.seen + run.cfg.batch_size + run.skipped
    if run.skipped and drawn >= min(64, n) and run.skipped / drawn > run.cfg.max_bad_fraction:
        raise CorruptImageError(
            f"{run.skipped} of the {drawn} training images drawn so far could not be read "
            f"({100 * run.skipped / drawn:.0f} %, above --max-bad-fraction {run.cfg.max_bad_fraction}): "
            "check or replace the data folder (the warnings above name the files)."
        )


def train(cfg: TrainConfig, *, dataset: Dataset | None = None, progress: bool = True) -> Masker:
    """Train (or resume training) a masker; returns it in eval mode.

    Args:
        cfg: The run's configuration. If ``<cfg.out>/last.pt`` exists the run resumes from it
            (its configuration must match, apart from ``steps``, which may be raised).
        dataset: Labelled images (image (3, S, S) in [0, 1], class index); default from ``cfg.data``.
        progress: Show a tqdm bar with the loss terms.

    Raises:
        ConfigMismatchError: ``last.pt`` belongs to a run with another configuration (a ``ValueError``).
    """
    run = _start_run(cfg)
    ds = SkipUnreadable(dataset if dataset is not None else _default_dataset(cfg))
    loader = DataLoader(
        SeededSamples(ds, cfg.seed),
        batch_size=cfg.batch_size,
        sampler=ResumableSampler(len(ds), cfg.seed, run.seen, positions=True),
        num_workers=cfg.workers,
        drop_last=True,
        persistent_workers=cfg.workers > 0,
        generator=torch.Generator().manual_seed(cfg.seed),  # its base seed is not drawn from the global RNG
    )
    run.masker.train()
    log = open(run.out / "log.jsonl", "a")
    bar = tqdm(total=cfg.steps, initial=run.step, disable=not progress, desc=f"train {cfg.black_box}", dynamic_ncols=True)
    it = iter(loader)
    t0 = time.time()
    try:
        while run.step < cfg.steps:
            images, labels, skipped = next(it)
            _count_unreadable(run, int(skipped.sum()), len(ds))
            rec = _train_step(run, images, labels, t0)
            rec["skipped_images"] = run.skipped
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
            if cfg.snapshot_every and run.step % cfg.snapshot_every == 0:
                meta = {"step": run.step, "train_config": asdict(cfg)}
                save_masker(run.masker, run.out / "snapshots" / f"step{run.step:06d}.pt", meta=meta)
    except KeyboardInterrupt:
        _checkpoint(run)
        print(
            f"\nInterrupted: checkpoint saved at step {run.step} in {run.out / 'last.pt'}; run the same command to resume.",
            file=sys.stderr,
        )
        raise
    finally:
        bar.close()
        log.close()
    run.masker.eval()
    save_masker(run.masker, run.out / "masker.pt", meta={"step": run.step, "train_config": asdict(cfg)})
    return run.masker


#: ``--preset-objective`` choices; ``default`` is the meaning the flag had before 0.2 (kept for old commands).
_PRESET_CHOICES = (*OBJECTIVE_PRESETS, "default")


def _parse(argv: Sequence[str] | None) -> TrainConfig:
    """The :class:`TrainConfig` of a ``python -m paperlib.train`` command line.

    Every objective weight is resolved and stored: the preset (``--preset-objective``, default
    ``paper``) with the weights given as flags over it.
    """
    p = argparse.ArgumentParser(prog="python -m paperlib.train", description=__doc__.split("\n\n")[0])
    _loop.add_dataclass_args(
        p,
        TrainConfig,
        skip=("objective", "objective_preset"),
        special={
            "widths": {"type": int, "nargs": "+", "help": "decoder widths, deepest first"},
            "data": {"nargs": "+", "help": "image folders (joined), e.g. train-sample train-extra/nips17"},
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
        "maskers' recipe) or .official() (the authors' code); weights given as flags override it",
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

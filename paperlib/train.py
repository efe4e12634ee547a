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
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler

from .checkpoints import atomic_save, save_masker
from .classifiers import load_classifier
from .masker import Masker, build_masker
from .errors import InputError
from .objective import ObjectiveConfig, SaliencyLoss

__all__ = ["TrainConfig", "train", "ResumableSampler", "draw_fake_labels", "truncate_log", "main"]


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
        output_gate: Multiply the mask by the feature-filter gate (see :class:`~paperlib.masker.Masker`).
        init_embedding: Start the class embedding from the black box's final layer when the encoder
            features are the ones that layer reads.
        gate_lr_mult: Learning-rate multiplier of the feature filter's shared scale and offset.
        objective: Weights of eq. 4 (see :class:`~paperlib.objective.ObjectiveConfig`).
        checkpoint_every: Steps between atomic checkpoints.
        snapshot_every: Also keep the masker every this many steps as ``<out>/snapshots/step<k>.pt``
            (0 = never), for learning curves.
        seed: Seed of data order, augmentation, fake labels and alternative images.
        workers: DataLoader worker processes.
        threads: torch CPU threads (0 = torch's default).
        init_from: Masker checkpoint to start the decoder and class embedding from (warm start;
            the architecture must match). Recorded in the run's configuration.
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
    init_embedding: bool = True
    gate_lr_mult: float = 30.0
    objective: dict[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 50
    snapshot_every: int = 0
    seed: int = 0
    workers: int = 1
    threads: int = 0
    init_from: str | None = None
    black_box_size: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.data, str):  # configurations written before several folders were allowed
            self.data = [self.data]

    def objective_config(self) -> ObjectiveConfig:
        return ObjectiveConfig(**self.objective)


class ResumableSampler(Sampler[int]):
    """Random permutation per epoch, seeded by (seed, epoch), that can start mid-epoch.

    Args:
        n: Dataset size.
        seed: Base seed.
        start: Number of samples already consumed (over all epochs) to skip.
    """

    def __init__(self, n: int, seed: int, start: int = 0) -> None:
        self.n, self.seed, self.start = n, seed, start

    def __iter__(self) -> Iterator[int]:
        epoch, offset = divmod(self.start, self.n)
        while True:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            perm = torch.randperm(self.n, generator=g).tolist()
            yield from perm[offset:]
            offset, epoch = 0, epoch + 1

    def __len__(self) -> int:  # infinite in practice; DataLoader only needs a number
        return 2**62


def draw_fake_labels(labels: torch.Tensor, num_classes: int, prob: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
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
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    from .checkpoints import atomic_write_text

    atomic_write_text("".join(line + "\n" for line in keep), path)


def _default_dataset(cfg: TrainConfig) -> Dataset:
    from torchvision import transforms as T

    from . import data

    if cfg.black_box == "cifar10":
        tf = T.Compose([T.RandomCrop(32, padding=4, padding_mode="reflect"), T.RandomHorizontalFlip(), T.ToTensor()])
        if cfg.data is None:
            return data.cifar10("train", transform=tf)
        folders = [data.imagenet_folder(d, transform=tf) for d in cfg.data]
    else:
        tf = T.Compose(
            [T.RandomResizedCrop(cfg.image_size, scale=(0.25, 1.0)), T.RandomHorizontalFlip(), T.ToTensor()]
        )
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
    masker = build_masker(cfg.black_box, encoder=cfg.encoder, **kw)
    # Only a frozen copy of the black box's own backbone reads the features its final layer reads
    # (the CIFAR-10 encoder shares the black box's name but is trained from scratch).
    same_features = masker.encoder.name == black_box.name and not masker.encoder.trainable
    if cfg.init_embedding and black_box.classifier_layer is not None and same_features:
        masker.init_embedding(black_box.classifier_layer)
    if cfg.init_from:
        from .checkpoints import load_masker

        start = load_masker(cfg.init_from, black_box=black_box.name)
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
    import torch.nn.functional as F

    small = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return small.clamp(0.0, 1.0), F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=False)


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def train(cfg: TrainConfig, *, dataset: Dataset | None = None, progress: bool = True) -> Masker:
    """Train (or resume training) a masker; returns it in eval mode.

    Args:
        cfg: The run's configuration. If ``<cfg.out>/last.pt`` exists the run resumes from it
            (its configuration must match, apart from ``steps``, which may be raised).
        dataset: Labelled images (image (3, S, S) in [0, 1], class index); default from ``cfg.data``.
        progress: Show a tqdm bar with the loss terms.
    """
    from tqdm.auto import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    masker, black_box = _build(cfg)
    loss_fn = SaliencyLoss(black_box, cfg.objective_config())
    # The feature filter's shared scale and offset are two scalars that set the gate's threshold
    # for every class: they get a larger step (gate_lr_mult) so that absent classes learn to close
    # the gate within a short run.
    gate_names = {"filter.scale", "filter.offset"}
    named = [(n, p) for n, p in masker.named_parameters() if p.requires_grad]
    opt = torch.optim.Adam(
        [
            {"params": [p for n, p in named if n not in gate_names], "lr": cfg.lr},
            {"params": [p for n, p in named if n in gate_names], "lr": cfg.lr * cfg.gate_lr_mult},
        ]
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / max(cfg.steps, 1), 1.0))))
    step, seen = 0, 0
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    last = out / "last.pt"
    if last.exists():
        state = torch.load(last, map_location="cpu", weights_only=False)
        saved = dict(state["train_config"])
        mine = asdict(cfg)
        diff = {k: (saved.get(k), mine[k]) for k in mine if k not in ("out", "steps", "workers", "threads", "checkpoint_every", "snapshot_every") and saved.get(k) != mine[k]}
        if diff:
            raise ValueError(
                f"{last} belongs to a run with another configuration {diff}: use another --out, or delete it to start over."
            )
        masker.load_state_dict(state["masker_state"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, seen = state["step"], state["seen"]
        gen.set_state(state["generator"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        truncate_log(out / "log.jsonl", step)
        print(f"Resuming {out} at step {step}.", file=sys.stderr)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    ds = dataset if dataset is not None else _default_dataset(cfg)
    loader = DataLoader(
        ds, batch_size=cfg.batch_size, sampler=ResumableSampler(len(ds), cfg.seed, seen),
        num_workers=cfg.workers, drop_last=True, persistent_workers=cfg.workers > 0,
    )

    def checkpoint() -> None:
        atomic_save(
            {
                "masker": {"format": "paperlib-masker/1", "config": masker.config, "state_dict": masker.trainable_state_dict(), "meta": {"step": step}},
                "masker_state": masker.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "step": step,
                "seen": seen,
                "generator": gen.get_state(),
                "rng": _rng_state(),
                "train_config": asdict(cfg),
            },
            last,
        )

    masker.train()
    log = open(out / "log.jsonl", "a")
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc=f"train {cfg.black_box}", dynamic_ncols=True)
    it = iter(loader)
    t0 = time.time()
    try:
        while step < cfg.steps:
            images, labels = next(it)
            classes, is_real = draw_fake_labels(labels, masker.num_classes, cfg.fake_prob, gen)
            outp = masker(images, classes, return_aux=True)
            seen_images, seen_masks = _black_box_view(images, outp.mask, cfg.black_box_size)
            loss = loss_fn(seen_images, seen_masks, classes, is_real=is_real, masks_low=outp.mask_low, gate=outp.gate, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            seen += len(images)
            terms = loss_fn.last_terms
            real = terms["is_real"]
            rec = {
                "step": step,
                "time": round(time.time() - t0, 2),
                "lr": sched.get_last_lr()[0],
                "loss": loss.item(),
                **{k: terms[k].detach()[real].mean().item() if real.any() else float("nan") for k in ("tv", "preserve", "destroy", "p_preserve", "p_destroy")},
                "area_real": float(outp.mask_low.detach()[real].mean()) if real.any() else float("nan"),
                "area_fake": float(outp.mask_low.detach()[~real].mean()) if (~real).any() else float("nan"),
                "gate_real": float(outp.gate.detach().flatten(1).amax(1)[real].mean()) if real.any() else float("nan"),
                "gate_fake": float(outp.gate.detach().flatten(1).amax(1)[~real].mean()) if (~real).any() else float("nan"),
            }
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.3f}", area=f"{rec['area_real']:.2f}", fake=f"{rec['area_fake']:.2f}", p=f"{rec['p_preserve']:.2f}")
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                checkpoint()
            if cfg.snapshot_every and step % cfg.snapshot_every == 0:
                save_masker(masker, out / "snapshots" / f"step{step:06d}.pt", meta={"step": step, "train_config": asdict(cfg)})
    except KeyboardInterrupt:
        checkpoint()
        print(f"\nInterrupted: checkpoint saved at step {step} in {last}; run the same command to resume.", file=sys.stderr)
        raise
    finally:
        bar.close()
        log.close()
    masker.eval()
    save_masker(masker, out / "masker.pt", meta={"step": step, "train_config": asdict(cfg)})
    return masker


def _parse(argv: Sequence[str] | None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m paperlib.train", description=__doc__.split("\n\n")[0])
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name == "objective":
            continue
        name = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if f.name == "widths":
            p.add_argument(name, type=int, nargs="+", default=None, help="decoder widths, deepest first")
        elif f.name == "data":
            p.add_argument(name, nargs="+", default=None, help="image folders (joined), e.g. train-sample train-extra/nips17")
        elif isinstance(default, bool):
            p.add_argument(name, action=argparse.BooleanOptionalAction, default=default)
        else:
            typ = int if f.name in ("blocks", "mask_stride") else (type(default) if default is not None else str)
            p.add_argument(name, type=typ, default=default)
    for f in fields(ObjectiveConfig):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=None, help=f"objective: {f.name}")
    p.add_argument("--preset-objective", choices=["default", "paper", "official"], default="default",
                   help="start from ObjectiveConfig(), .paper() (eq. 4 as printed) or .official() (the authors' code)")
    args = vars(p.parse_args(argv))
    obj_names = {f.name for f in fields(ObjectiveConfig)}
    objective = {k: v for k, v in args.items() if k in obj_names and v is not None}
    preset = args.pop("preset_objective")
    if preset != "default":
        objective = {**getattr(ObjectiveConfig, preset)().to_dict(), **objective}
    cfg_kw = {k: v for k, v in args.items() if k not in obj_names}
    return TrainConfig(**cfg_kw, objective=objective)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    cfg = _parse(argv)
    try:
        train(cfg)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

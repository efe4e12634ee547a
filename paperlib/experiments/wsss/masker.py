"""The masking model on VOC: built on the Lite0 encoder for the VOC black box, trained, saved, loaded.

Each training step draws one class per image (fake labels among the classes absent from the image,
:func:`draw_voc_classes`) and minimises eq. 4 of the paper with ``f_c = sigmoid(logit_c)``
(:func:`masker_objective`).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ...core._common import atomic_write_text
from ...core.data import VOCSegmentation
from ...core.encoders import build_encoder
from ...core.errors import DataNotFoundError, InputError
from ...core.masker import Masker
from ...core.objective import ObjectiveConfig, saliency_objective
from ...core.serialization import safe_load
from ...core.storage import load_masker, save_masker
from .._loop import masker_optimiser
from ..train import _black_box_view
from .config import BACKBONE, BLACK_BOX, MASKER_PATH, NUM_CLASSES, MaskerConfig, _out_dir, hardware
from .data import _resize_image, open_voc
from .head import load_voc_black_box
from .maps import crop_image, sample_crops

__all__ = ["draw_voc_classes", "masker_objective", "build_voc_masker", "load_voc_masker", "train_voc_masker"]


def draw_voc_classes(labels: torch.Tensor, fake_prob: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One class per image: with probability ``fake_prob`` a class *absent* from the image (a fake label),
    else one of its present classes, uniformly. Images with no class get a fake label; images with all
    20 get a real one.

    Args:
        labels: (B, 20) multi-hot.

    Returns:
        (classes (B,) long, is_real (B,) bool).
    """
    B = labels.shape[0]
    fake = torch.rand(B, generator=generator) < fake_prob
    classes = torch.zeros(B, dtype=torch.long)
    for i in range(B):
        present = torch.nonzero(labels[i]).flatten()
        absent = torch.nonzero(labels[i] == 0).flatten()
        use_fake = (bool(fake[i]) and len(absent) > 0) or len(present) == 0
        pool = absent if use_fake else present
        classes[i] = pool[int(torch.randint(len(pool), (1,), generator=generator))]
        fake[i] = use_fake
    return classes, ~fake


def masker_objective(
    bb: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    classes: torch.Tensor,
    is_real: torch.Tensor,
    *,
    masks_low: torch.Tensor,
    gate: Optional[torch.Tensor],
    cfg: MaskerConfig,
    generator: Optional[torch.Generator] = None,
) -> dict[str, torch.Tensor]:
    """Eq. 4 of the paper with f_c = sigmoid(logit_c) (multi-label black box), per sample.

    ``total = l2 AV + real * (l1 TV - l0 log f_c(Phi(X, M)) + l3 f_c(Phi(X, 1 - M))^l4) + w_sel * selector``;
    fake labels keep only the area (and selector) terms, so the mask of an absent class shrinks to nothing.
    It is :func:`paperlib.core.objective.saliency_objective` with the weights of ``cfg`` and ``multi_label``.
    """
    config = ObjectiveConfig(
        l0=cfg.l0, l1=cfg.l1, l2=cfg.l2, l3=cfg.l3, l4=cfg.l4, area_power=cfg.area_power, area_eps=cfg.area_eps,
        selector_weight=cfg.selector_weight,
    )  # fmt: skip
    return saliency_objective(
        bb, images, masks, classes, is_real=is_real, masks_low=masks_low, gate=gate, config=config, generator=generator,
        multi_label=True,
    )  # fmt: skip


def build_voc_masker(
    head_weight: Optional[torch.Tensor] = None,
    *,
    widths: Sequence[int] = (256, 128, 64),
    blocks: int = 1,
    output_gate: bool = True,
    init_from: Optional[str] = None,
) -> Masker:
    """A 20-class masking model on the Lite0 encoder, for the VOC black box.

    Args:
        head_weight: (20, 1280) VOC head weights: the class embedding starts from them (so the feature
            filter's gate starts as sigmoid of the class's CAM), biases at 0.
        init_from: A shipped ImageNet masker (e.g. ``"efficientnet_lite0"``) whose decoder and gate scale /
            offset start this one (its architecture must match).
    """
    masker = Masker(
        build_encoder(BACKBONE),
        NUM_CLASSES,
        black_box=BLACK_BOX,
        dataset="voc",
        widths=list(widths),
        blocks=blocks,
        output_gate=output_gate,
    )
    if init_from:
        src = load_masker(init_from)
        state = {k: v for k, v in src.trainable_state_dict().items() if k not in ("filter.embedding.weight", "filter.bias")}
        mine = masker.trainable_state_dict()
        bad = [k for k, v in state.items() if k not in mine or mine[k].shape != v.shape]
        if bad:
            raise InputError(f"init_from={init_from!r} does not match the decoder {widths}/{blocks}: {bad[:3]}.")
        masker.load_state_dict(state, strict=False)
    if head_weight is not None:
        with torch.no_grad():
            masker.filter.embedding.weight.copy_(head_weight)
            masker.filter.bias.zero_()
    return masker


def load_voc_masker(path: os.PathLike | str = MASKER_PATH) -> Masker:
    """Load the VOC masking model (default: the shipped one), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"VOC masking model not found: looked for {path}. Train it with "
            "`python -m paperlib.experiments.wsss train-masker` (needs the VOC head; minutes on a CPU)."
        )
    ck = safe_load(path, what="VOC masking model")
    cfg = ck.get("config", {}) if isinstance(ck, dict) else {}
    if cfg.get("black_box") != BLACK_BOX or cfg.get("num_classes") != NUM_CLASSES:
        raise InputError(f"{path} is not a masking model for {BLACK_BOX} (config {cfg}).")
    masker = build_voc_masker(widths=cfg["widths"], blocks=cfg["blocks"], output_gate=cfg.get("output_gate", False))
    state = {k: v.float() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    missing, unexpected = masker.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise InputError(f"{path} does not fit the architecture: missing {missing[:3]}, unexpected {unexpected[:3]}.")
    masker.meta = dict(ck.get("meta", {}))
    info = path.with_suffix(".json")
    if info.is_file():
        masker.meta = {**json.loads(info.read_text()), **masker.meta}
    return masker.eval()


def _training_images(ds: VOCSegmentation, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All images squashed to side x side (uint8) and their labels (N, 20)."""
    imgs = torch.zeros(len(ds), 3, side, side, dtype=torch.uint8)
    labels = torch.zeros(len(ds), NUM_CLASSES)
    for i in range(len(ds)):
        s = ds[i]
        imgs[i] = (_resize_image(s.image, (side, side)) * 255).round().to(torch.uint8)
        labels[i] = s.labels.float()
    return imgs, labels


def _voc_batch(imgs: torch.Tensor, side: int, cfg: MaskerConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch: random crops of area ``crop_scale`` squashed to ``image_size``, random flips.

    Returns:
        Images (B, 3, S, S) in [0, 1] and the indices of the images drawn.
    """
    idx = torch.randint(len(imgs), (cfg.batch_size,), generator=gen)
    batch = []
    for i in idx.tolist():
        box = sample_crops(side, side, 1, cfg.crop_scale, (3 / 4, 4 / 3), gen)[0]
        x = crop_image(imgs[i].float() / 255, box, cfg.image_size)
        if bool(torch.rand(1, generator=gen) < 0.5):
            x = x.flip(-1)
        batch.append(x.clamp(0, 1))
    return torch.stack(batch), idx


def _step_record(step: int, t0: float, loss: torch.Tensor, lr: float, terms: dict, outp: Any) -> dict[str, Any]:
    """The log record of one step: loss, the objective's terms and the mask's area and gate (real / fake labels)."""
    real = terms["is_real"]
    mean_real = lambda v: float(v.detach()[real].mean()) if real.any() else float("nan")
    return {
        "step": step,
        "time": round(time.time() - t0, 2),
        "lr": lr,
        "loss": loss.item(),
        **{k: mean_real(terms[k]) for k in ("tv", "preserve", "destroy", "p_preserve", "p_destroy")},
        "area_real": mean_real(outp.mask_low.flatten(1).mean(1)),
        "area_fake": float(outp.mask_low.detach()[~real].mean()) if (~real).any() else float("nan"),
        "gate_real": mean_real(outp.gate.flatten(1).amax(1)),
        "gate_fake": float(outp.gate.detach().flatten(1).amax(1)[~real].mean()) if (~real).any() else float("nan"),
    }


def train_voc_masker(cfg: MaskerConfig | None = None, *, root=None, command: str = "", progress: bool = True) -> Path:
    """Train the VOC masking model against the VOC black box; writes ``<out>/voc_efficientnet_lite0.{pt,json,log.jsonl}``.

    Each step: a batch of images (random crop of area ``crop_scale`` of the image, squashed to
    ``image_size``, random flip), one class per image from :func:`draw_voc_classes` (fake labels drawn
    from the classes absent from the image), the objective :func:`masker_objective`, Adam.
    """
    cfg = cfg or MaskerConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    ds = open_voc(root, cfg.limit)
    bb = load_voc_black_box(cfg.head, cache=False)
    masker = build_voc_masker(
        bb.weight, widths=cfg.widths, blocks=cfg.blocks, output_gate=cfg.output_gate, init_from=cfg.init_from
    )
    side = int(round(cfg.image_size * 256 / 224))
    imgs, labels = _training_images(ds, side)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    opt, sched = masker_optimiser(masker, cfg.lr, cfg.gate_lr_mult, cfg.steps)
    masker.train()
    log: list[dict] = []
    t0, c0 = time.time(), time.process_time()
    for step in range(1, cfg.steps + 1):
        images, idx = _voc_batch(imgs, side, cfg, gen)
        classes, is_real = draw_voc_classes(labels[idx], cfg.fake_prob, gen)
        outp = masker(images, classes, return_aux=True)
        seen, seen_masks = _black_box_view(images, outp.mask, cfg.black_box_size)
        terms = masker_objective(
            bb, seen, seen_masks, classes, is_real, masks_low=outp.mask_low, gate=outp.gate, cfg=cfg, generator=gen
        )
        loss = terms["total"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        rec = _step_record(step, t0, loss, sched.get_last_lr()[0], terms, outp)
        log.append(rec)
        if progress and (step % 10 == 0 or step == 1):
            print(
                f"  step {step}/{cfg.steps} loss {rec['loss']:.3f} p_keep {rec['p_preserve']:.2f} area {rec['area_real']:.2f} "
                f"fake {rec['area_fake']:.2f} ({rec['time']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    masker.eval()
    return _save_voc_masker(masker, cfg, log, ds, command, time.time() - t0, time.process_time() - c0)


def _save_voc_masker(
    masker: nn.Module, cfg: MaskerConfig, log: list[dict], ds: Any, command: str, seconds: float, cpu_seconds: float
) -> Path:
    """Write the trained VOC masker (fp16), its log and its JSON record into ``cfg.out``; returns the ``.pt`` path."""
    out = _out_dir(cfg.out)
    tail = log[-50:]
    mean = lambda k: round(float(np.nanmean([r[k] for r in tail])), 4)
    info = {
        "name": BLACK_BOX,
        "black_box": BLACK_BOX,
        "command": command or "python -m paperlib.experiments.wsss train-masker",
        "train_args": shlex.split(command)[3:] if command else ["train-masker"],
        "train_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "masker_config": masker.config,
        "steps": cfg.steps,
        "train_seconds": round(seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "last50": {
            k: mean(k) for k in ("loss", "preserve", "destroy", "tv", "p_preserve", "p_destroy", "area_real", "area_fake")
        },
        "hardware": hardware(),
        "weights": "fp16",
        "data": f"PASCAL VOC 2012: the first {len(ds)} ids of {ds.split_file or ds.mask_dir} (shared offline copy of val); "
        "the masking model is scored on these same images (its own training images)",
        "train_ids": list(ds.ids),
        "notes": "f_c = sigmoid(logit_c) of the VOC black box; fake labels drawn among the classes absent from the image "
        f"(probability {cfg.fake_prob}); decoder started from the shipped ImageNet masker {cfg.init_from!r}, class "
        "embedding from the VOC head's weights.",
    }
    save_masker(masker, out / f"{BLACK_BOX}.pt", half=True, meta={"steps": cfg.steps})
    atomic_write_text("".join(json.dumps(r) + "\n" for r in log), out / f"{BLACK_BOX}.log.jsonl")
    atomic_write_text(json.dumps(info, indent=2) + "\n", out / f"{BLACK_BOX}.json")
    return out / f"{BLACK_BOX}.pt"

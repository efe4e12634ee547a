"""The VOC black box: frozen EfficientNet-Lite0 + a linear 1x1-conv head, its training and its loading.

Because the head is linear, ``logit = W . GAP(features)``: it is trained in seconds on cached pooled
features (:func:`train_head`, multi-label soft-margin loss, two views per image). Its multi-label mAP
(:func:`paperlib.core.segmentation.mean_average_precision`) is cross-fitted (:func:`cross_fit_map`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from ...core._common import atomic_save, atomic_write_text
from ...core.data import VOC_CLASSES, VOCSegmentation
from ...core.encoders import build_encoder
from ...core.errors import DataNotFoundError, InputError
from ...core.paths import cache_dir
from ...core.segmentation import mean_average_precision
from ...core.serialization import safe_load
from .config import BACKBONE, BLACK_BOX, HEAD_FORMAT, HEAD_PATH, MIN_SIDE, NUM_CLASSES, HeadConfig, _out_dir, hardware
from .data import _resize_image, open_voc

__all__ = [
    "VOCBlackBox",
    "load_voc_black_box",
    "HEAD_VIEWS",
    "pooled_features",
    "fit_head",
    "select_weight_decay",
    "cross_fit_map",
    "train_head",
]


# =========================================================================== the VOC black box
class VOCBlackBox(nn.Module):
    """Frozen EfficientNet-Lite0 backbone + 1x1 conv to 20 classes (no bias) + global average pooling.

    Any input size (fully convolutional). ``cam_raw`` gives the class activation maps at stride
    32 before pooling, so ``forward(x) == cam_raw(x).mean((2, 3))`` exactly.

    Shape: (N, 3, H, W) in [0, 1] -> (N, 20) logits.
    """

    name = BLACK_BOX

    def __init__(self, weight: Optional[torch.Tensor] = None, encoder: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else build_encoder(BACKBONE)
        self.head = nn.Conv2d(self.encoder.channels[-1], NUM_CLASSES, 1, bias=False)
        if weight is not None:
            self.head.weight.data.copy_(weight.reshape(self.head.weight.shape))
        else:
            nn.init.zeros_(self.head.weight)
        self.requires_grad_(False)
        self.eval()
        self.meta: dict[str, Any] = {}

    def train(self, mode: bool = True) -> "VOCBlackBox":
        return super().train(False)

    @property
    def weight(self) -> torch.Tensor:
        """The head's weights, (20, 1280)."""
        return self.head.weight.detach().flatten(1)

    min_side = MIN_SIDE

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Deepest backbone features (N, 1280, H/32, W/32)."""
        if min(images.shape[-2:]) < self.min_side and getattr(self.encoder, "name", "").startswith("efficientnet_lite"):
            raise InputError(
                f"Images of {tuple(images.shape[-2:])} px are too small for the {self.encoder.name} backbone: both sides "
                f"must be at least {self.min_side} px (upsample the image, or use a larger crop_size / masker_size)."
            )
        return self.encoder(images)[-1]

    def cam_raw(self, images: torch.Tensor) -> torch.Tensor:
        """Class activation maps before relu, (N, 20, H/32, W/32)."""
        return self.head(self.features(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.cam_raw(images).mean((2, 3))


_BB_CACHE: dict[str, VOCBlackBox] = {}


def load_voc_black_box(path: os.PathLike | str = HEAD_PATH, *, cache: bool = True) -> VOCBlackBox:
    """Load the VOC black box from a head checkpoint (default: the shipped one).

    Raises:
        DataNotFoundError: No checkpoint at ``path`` (the message says how to train one).
        InputError: The file is not a VOC head checkpoint.
    """
    path = Path(path)
    key = str(path.resolve())
    if cache and key in _BB_CACHE:
        return _BB_CACHE[key]
    if not path.is_file():
        raise DataNotFoundError(
            f"VOC head checkpoint not found: looked for {path}. Train it with "
            "`python -m paperlib.experiments.wsss train-head` (about a minute on a CPU)."
        )
    ck = safe_load(path, what="VOC head checkpoint")
    if not isinstance(ck, dict) or ck.get("format") != HEAD_FORMAT:
        raise InputError(f"{path} is not a VOC head checkpoint (format {HEAD_FORMAT!r}).")
    bb = VOCBlackBox(ck["weight"].float())
    bb.meta = dict(ck.get("meta", {}))
    info = path.with_suffix(".json")
    if info.is_file():
        bb.meta = {**json.loads(info.read_text()), **bb.meta}
    if cache:
        _BB_CACHE[key] = bb
    return bb


# =========================================================================== head training
#: Views of each image used to train the head: its own size, and squashed to 224 x 224.
HEAD_VIEWS = ("native", "s224")


def pooled_features(
    ds: VOCSegmentation, encoder: Optional[nn.Module] = None, views: Sequence[str] = HEAD_VIEWS, progress: bool = False
) -> dict[str, Any]:
    """Globally pooled backbone features of every image and view, cached in :func:`paths.cache_dir`.

    Returns:
        ``{"X": (V, N, 1280) float, "Y": (N, 20) float multi-hot, "ids": [...], "views": [...], "seconds": float}``.
    """
    key = hashlib.sha1(("\n".join(ds.ids) + "|" + ",".join(views) + "|" + str(ds.root.resolve())).encode()).hexdigest()[:16]
    cache_file = cache_dir() / f"voc-pooled-{BACKBONE}-{key}.pt"
    if cache_file.is_file():
        try:
            return safe_load(cache_file, what="feature cache")
        except Exception:  # unreadable cache: recompute
            pass
    enc = encoder if encoder is not None else build_encoder(BACKBONE)
    X = torch.zeros(len(views), len(ds), enc.channels[-1])
    Y = torch.zeros(len(ds), NUM_CLASSES)
    t0 = time.time()
    for i in range(len(ds)):
        s = ds[i]
        Y[i] = s.labels.float()
        for v, view in enumerate(views):
            x = s.image if view == "native" else _resize_image(s.image, (int(view[1:]), int(view[1:])))
            with torch.no_grad():
                X[v, i] = enc(x[None])[-1].mean((2, 3))[0]
        if progress and (i + 1) % 50 == 0:
            print(f"  features {i + 1}/{len(ds)} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    out = {"X": X, "Y": Y, "ids": list(ds.ids), "views": list(views), "seconds": round(time.time() - t0, 1)}
    atomic_save(out, cache_file)
    return out


def fit_head(
    X: torch.Tensor,
    Y: torch.Tensor,
    *,
    steps: int = 400,
    lr: float = 0.01,
    weight_decay: float = 1e-4,
    log: Optional[list] = None,
) -> torch.Tensor:
    """Train the 1x1-conv head on pooled features: full-batch Adam on the multi-label soft-margin loss.

    Args:
        X: (M, C) pooled features. Y: (M, 20) multi-hot labels.
        weight_decay: L2 penalty ``weight_decay * sum(W^2)`` added to the loss.
        log: If given, one dict per step is appended (``step``, ``loss``, ``data_loss``, ``time``).

    Returns:
        W (20, C); logits are ``X @ W.T`` (no bias, as the reference's CAM head).
    """
    if X.ndim != 2 or Y.shape != (X.shape[0], NUM_CLASSES):
        raise InputError(f"X must be (M, C) and Y (M, {NUM_CLASSES}); got {tuple(X.shape)} and {tuple(Y.shape)}.")
    W = torch.zeros(NUM_CLASSES, X.shape[1], requires_grad=True)
    opt = torch.optim.Adam([W], lr=lr)
    loss_fn = nn.MultiLabelSoftMarginLoss()
    t0 = time.time()
    for step in range(1, steps + 1):
        data_loss = loss_fn(X @ W.T, Y.float())
        loss = data_loss + weight_decay * W.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log is not None:
            log.append({"step": step, "loss": loss.item(), "data_loss": data_loss.item(), "time": round(time.time() - t0, 3)})
    return W.detach()


def _fold_parts(n: int, folds: int, seed: int) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [perm[k::folds] for k in range(folds)]


def _fit_views(X: torch.Tensor, Y: torch.Tensor, idx: torch.Tensor, **fit_kw: Any) -> torch.Tensor:
    """Fit on images ``idx``, every view of them as a training row."""
    return fit_head(X[:, idx].reshape(-1, X.shape[-1]), Y[idx].repeat(X.shape[0], 1), **fit_kw)


def select_weight_decay(
    X: torch.Tensor,
    Y: torch.Tensor,
    idx: torch.Tensor,
    weight_decays: Sequence[float],
    *,
    folds: int = 2,
    seed: int = 0,
    **fit_kw: Any,
) -> tuple[float, dict[str, float]]:
    """Choose the L2 weight by a ``folds``-fold cross-fitted mAP computed on the images ``idx`` only."""
    out = {}
    for wd in weight_decays:
        parts = [idx[p] for p in _fold_parts(len(idx), folds, seed)]
        scores = torch.zeros(len(Y), NUM_CLASSES)
        for k in range(folds):
            train = torch.cat([parts[j] for j in range(folds) if j != k])
            scores[parts[k]] = X[0, parts[k]] @ _fit_views(X, Y, train, weight_decay=wd, **fit_kw).T
        out[str(wd)] = round(100 * mean_average_precision(scores[idx], Y[idx])[0], 2)
    best = max(weight_decays, key=lambda wd: out[str(wd)])
    return best, out


def cross_fit_map(
    features: dict[str, Any],
    *,
    folds: int = 2,
    seed: int = 0,
    weight_decays: Optional[Sequence[float]] = None,
    **fit_kw: Any,
) -> dict[str, Any]:
    """Cross-fitted multi-label mAP: the images are split into ``folds`` parts; each part is scored (on its
    first view, the image at its own size) by a head trained on the other parts (all views).

    With ``weight_decays``, the L2 weight of each outer fold is chosen by an inner cross-fit on that fold's
    training images only (nested), so the mAP stays a held-out number.

    Returns:
        ``{"mAP", "per_class_AP", "folds", "seed", "weight_decay_per_fold", "inner_mAP"}``; mAP in percent.
    """
    X, Y = features["X"], features["Y"]
    n = Y.shape[0]
    if n < folds:
        raise InputError(f"Cross-fitting with {folds} folds needs at least {folds} images, got {n}.")
    parts = _fold_parts(n, folds, seed)
    scores = torch.zeros(n, NUM_CLASSES)
    chosen, inner = [], []
    for k in range(folds):
        test = parts[k]
        train = torch.cat([parts[j] for j in range(folds) if j != k])
        kw = dict(fit_kw)
        if weight_decays:
            wd, table = select_weight_decay(X, Y, train, weight_decays, folds=folds, seed=seed + 1, **fit_kw)
            kw["weight_decay"] = wd
            chosen.append(wd)
            inner.append(table)
        scores[test] = X[0, test] @ _fit_views(X, Y, train, **kw).T
    m, aps = mean_average_precision(scores, Y)
    out = {
        "mAP": round(100 * m, 2),
        "per_class_AP": {c: round(100 * a, 1) for c, a in zip(VOC_CLASSES, aps)},
        "folds": folds,
        "seed": seed,
    }
    if weight_decays:
        out["weight_decay_per_fold"] = chosen
        out["inner_mAP"] = inner
    return out


def train_head(cfg: HeadConfig | None = None, *, root=None, command: str = "", progress: bool = True) -> Path:
    """Cache pooled features, cross-fit the mAP, train the shipped head on all images, write
    ``<out>/voc_efficientnet_lite0_classifier.{pt,json,log.jsonl}``; returns the ``.pt`` path."""
    cfg = cfg or HeadConfig()
    ds = open_voc(root, cfg.limit)
    t0 = time.time()
    feats = pooled_features(ds, progress=progress)
    t_feat = time.time() - t0
    fit_kw = dict(steps=cfg.steps, lr=cfg.lr)
    t1 = time.time()
    cv = cross_fit_map(feats, folds=cfg.folds, seed=cfg.seed, weight_decays=cfg.weight_decays, **fit_kw)
    t_cv = time.time() - t1
    X, Y = feats["X"], feats["Y"]
    everyone = torch.arange(len(Y))
    wd, wd_table = select_weight_decay(X, Y, everyone, cfg.weight_decays, folds=cfg.folds, seed=cfg.seed + 1, **fit_kw)
    log: list[dict] = []
    t2 = time.time()
    W = _fit_views(X, Y, everyone, weight_decay=wd, log=log, **fit_kw)
    t_fit = time.time() - t2
    train_map, _ = mean_average_precision(X[0] @ W.T, Y)
    out = _out_dir(cfg.out)
    name = f"{BLACK_BOX}_classifier"
    info = {
        "name": name,
        "black_box": BLACK_BOX,
        "architecture": "frozen EfficientNet-Lite0 backbone (1280-channel head features, stride 32) + 1x1 conv to 20 VOC "
        "classes without bias + global average pooling",
        "command": command or "python -m paperlib.experiments.wsss train-head",
        "train_args": shlex.split(command)[3:] if command else ["train-head"],
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
        "loss": "multi-label soft margin + weight_decay * sum(W^2), full-batch Adam on cached pooled features",
        "weight_decay": wd,
        "weight_decay_selection": {
            "cross_fitted_mAP_by_weight_decay": wd_table,
            "how": f"{cfg.folds}-fold cross-fit on all images; inside the reported cross-fit the "
            "choice is nested (made on each outer fold's training half only)",
        },
        "views": feats["views"],
        "data": f"PASCAL VOC 2012: the first {len(ds)} ids of {ds.split_file or ds.mask_dir} (shared offline copy of val), "
        "image-level labels from image_labels.csv",
        "images": len(ds),
        "train_ids": list(ds.ids),
        "cross_fitted_mAP": cv["mAP"],
        "cross_fit": cv,
        "train_mAP": round(100 * train_map, 2),
        "feature_seconds": feats.get("seconds", round(t_feat, 1)),
        "cross_fit_seconds": round(t_cv, 1),
        "fit_seconds": round(t_fit, 1),
        "steps": cfg.steps,
        "hardware": hardware(),
        "notes": "mAP cross-fitted over two folds of images (train on one half, score the other half at the images' "
        "own size); the shipped head is then trained on all images, and the maps of the study are computed on those "
        "same images (as the reference scores pseudo-masks on its classifier's training images).",
    }
    atomic_save(
        {
            "format": HEAD_FORMAT,
            "weight": W.clone(),
            "classes": list(VOC_CLASSES),
            "backbone": BACKBONE,
            "meta": {"cross_fitted_mAP": cv["mAP"]},
        },
        out / f"{name}.pt",
    )
    atomic_write_text("".join(json.dumps(r) + "\n" for r in log), out / f"{name}.log.jsonl")
    atomic_write_text(json.dumps(info, indent=2) + "\n", out / f"{name}.json")
    _BB_CACHE.clear()
    return out / f"{name}.pt"

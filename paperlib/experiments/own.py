"""Explain your own classifier: wrap any PyTorch model as a black box and train a masker for it.

The paper's method needs only a differentiable classifier. This module opens it to any
``nn.Module`` that maps images to logits::

    import paperlib
    black_box = paperlib.wrap_classifier(model, input_size=224, mean=(0.485, 0.456, 0.406),
                                         std=(0.229, 0.224, 0.225), class_names=["cat", "dog", "fox"])
    masker = paperlib.train_masker(black_box, "my_images/", steps=500)   # an ImageFolder of cat/dog/fox
    masks = masker(images, "fox")                                        # (N, 1, H, W) in [0, 1]
    paperlib.save_masker(masker, "fox_masker.pt")
    masker = paperlib.load_masker("fox_masker.pt", black_box=black_box)  # checks the weights' sha256

Training is the project's own loop (:func:`paperlib.experiments.train.train`) and objective
(eq. 4, :mod:`paperlib.core.objective`, the ``project`` preset by default); this module only
checks the inputs (every problem is reported before the first step), turns the user's data
into labelled fixed-size tensors, and registers the black box so that the loop can load it by
name. The masker records the black box's name, class names and the sha256 of its weights.

Encoders (``encoder=``):

* ``"efficientnet_lite0"`` (default): the frozen ImageNet EfficientNet-Lite0 that ships offline
  (``"efficientnet_lite1"``, ``"efficientnet_lite2"`` and ``"resnet50"`` work too);
* ``"scratch"``: the paper's CIFAR-10 encoder, trained with the masker, for small images
  (widths ``encoder_widths``, default 32, 64, 128).

Command line (``python -m paperlib.train`` hands these over to :func:`main`)::

    python -m paperlib.train --black-box my_package.my_module:build_model --weights model.pt \\
        --class-names cat dog fox --input-size 224 --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 \\
        --data my_images/ --out runs/mine --steps 500
    python -m paperlib.train --black-box torchvision:resnet18 --weights resnet18.pth --class-names classes.txt ...
    python -m paperlib.train --black-box timm:convnext_tiny --weights model.pth ...   # when timm is installed
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..core import data as core_data
from ..core.classes import ClassIndex
from ..core.classifiers import BlackBox, classifier_spec, register_classifier
from ..core.errors import InputError, UnknownClassError, UnsafeCheckpointError, WeightsNotFoundError, one_line_errors
from ..core.masker import Masker
from ..core.serialization import safe_load
from .train import TrainConfig, _parse, train
from .train import main as _train_main

__all__ = [
    "ENCODER_CHOICES",
    "wrap_classifier",
    "check_black_box",
    "UserImages",
    "user_dataset",
    "train_masker",
    "black_box_from_spec",
    "pasted_scenes",
    "main",
]

#: ``encoder=`` values of :func:`train_masker`.
ENCODER_CHOICES: tuple[str, ...] = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet50", "scratch")


class _Normalise:
    """(x - mean) / std per channel; a plain callable so that it adds nothing to the state dict."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
            raise InputError(f"mean and std need 3 values each (RGB), std positive; got mean={mean}, std={std}.")
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - x.new_tensor(self.mean).view(1, 3, 1, 1)) / x.new_tensor(self.std).view(1, 3, 1, 1)


def check_black_box(black_box: nn.Module, num_classes: int | None = None, *, input_size: int = 224) -> int:
    """Probe a classifier with one small batch: logits of shape (N, K), finite, with gradients.

    Args:
        black_box: Images (N, 3, S, S) in [0, 1] -> logits (N, K) (a :class:`BlackBox`, or the bare
            model when called from :func:`wrap_classifier`).
        num_classes: The K the outputs must have (e.g. the number of class names); None: any.
        input_size: S of the probe images.

    Returns:
        K, the number of outputs.

    Raises:
        InputError: The output is not a (N, K) tensor, has the wrong K, is not finite, or carries
            no gradient back to the input (e.g. ``torch.no_grad`` or ``.detach()`` inside forward).
    """
    x = torch.rand(2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    try:
        device = next(black_box.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    with torch.enable_grad():
        out = black_box(x.to(device))
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InputError(
                f"The classifier must map images (N, 3, H, W) to logits (N, num_classes); for N = 2 it returned {got}. "
                f"Wrap it so that forward returns the logits tensor (e.g. out.logits, or out[0] of a tuple)."
            )
        if num_classes is not None and out.shape[1] != num_classes:
            raise InputError(
                f"The classifier returns {out.shape[1]} logits per image but {num_classes} class names were given: "
                f"give one name per output, in logit order."
            )
        if not torch.isfinite(out).all():
            raise InputError("The classifier returned NaN or infinite logits on random images in [0, 1]: check its weights.")
        grad = torch.autograd.grad(out.float().sum(), x, allow_unused=True)[0] if out.requires_grad else None
    if grad is None or not bool(grad.abs().sum() > 0):
        raise InputError(
            "The classifier gives no gradient with respect to its input (torch.no_grad, .detach(), argmax or a "
            "non-torch step inside forward?): the masker learns through the black box's gradients, so forward "
            "must be differentiable."
        )
    return int(out.shape[1])


def wrap_classifier(
    model: nn.Module,
    *,
    input_size: int,
    class_names: Sequence[str],
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    multi_label: bool = False,
    name: str = "my_classifier",
    resize: bool = True,
    classifier_layer: nn.Linear | None = None,
) -> BlackBox:
    """Wrap your own model as a frozen :class:`~paperlib.core.classifiers.BlackBox` of paperlib.

    Args:
        model: Maps normalised images (N, 3, S, S) to logits (N, K); any differentiable ``nn.Module``.
        input_size: S, the side the model expects; inputs of another size are resized to it
            (``resize=False``: fed as they are).
        class_names: K names, in logit order (``masker(images, "name")`` takes them).
        mean, std: The normalisation the model expects, applied to [0, 1] RGB images
            (default: none, the model takes [0, 1]).
        multi_label: The logits are independent sigmoid scores (f_c = sigmoid(z_c) in the
            objective) rather than one softmax.
        name: What to call the black box (recorded in the masker).
        resize: Resize inputs to ``input_size``.
        classifier_layer: The final ``nn.Linear``, if you want Grad-CAM baselines on it.

    Returns:
        The black box: (N, 3, H, W) in [0, 1] -> (N, K) logits, in eval mode, weights frozen.

    Raises:
        InputError: Wrong output shape, class names that do not match the outputs, no gradients
            (one probe batch of two random images finds these).
    """
    names = [str(c) for c in class_names]
    if len(set(n.strip().lower() for n in names)) != len(names):
        raise InputError(f"class_names must be distinct (case-insensitive), got {names}.")
    bb = BlackBox(
        model,
        name=name,
        num_classes=len(names),
        input_size=int(input_size),
        normalize=_Normalise(mean, std),
        classifier_layer=classifier_layer,
        dataset="custom",
        resize=resize,
        class_names=names,
        multi_label=multi_label,
    )
    check_black_box(bb, len(names), input_size=int(input_size))
    return bb


# --------------------------------------------------------------------------- data


def _as_image(x: Any, where: str) -> torch.Tensor:
    """A PIL image, a uint8 or float tensor / array (3, H, W) -> float (3, H, W); the range is checked later."""
    if hasattr(x, "convert") and hasattr(x, "size"):  # PIL
        return core_data.to_tensor(x.convert("RGB"))
    t = torch.as_tensor(x)
    if t.ndim != 3 or t.shape[0] != 3:
        raise InputError(f"{where}: an image must be (3, H, W), got shape {tuple(t.shape)}.")
    return t.float() / 255.0 if t.dtype == torch.uint8 else t.float()


class UserImages(Dataset):
    """A user's images as the training loop wants them: ``(image (3, S, S) in [0, 1], label)``.

    Args:
        source: A ``Dataset`` of ``(image, label)`` or of images alone (PIL, tensors), or a tensor
            (N, 3, H, W).
        labels: One label per item, overriding the source's (used for unlabelled images).
        size: S; images of another size are resized (bilinear).
        augment: Random horizontal flips.
    """

    def __init__(self, source: Any, labels: torch.Tensor | None, size: int, *, augment: bool = False) -> None:
        self.source, self.labels, self.size, self.augment = source, labels, size, augment

    def __len__(self) -> int:
        return len(self.source)

    def image(self, i: int) -> tuple[torch.Tensor, int | None]:
        """Item ``i`` at size S without augmentation, and the source's label (None when it has none)."""
        item = self.source[i]
        label = None
        if isinstance(item, (tuple, list)):
            item, label = item[0], int(item[1])
        img = _as_image(item, f"item {i}")
        if tuple(img.shape[-2:]) != (self.size, self.size):
            shrink = min(img.shape[-2:]) > self.size
            img = F.interpolate(img[None], size=(self.size, self.size), mode="bilinear", antialias=shrink, align_corners=False)[0]
        return img, label

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img, label = self.image(i)
        if self.labels is not None:
            label = int(self.labels[i])
        if self.augment and torch.rand(()) < 0.5:
            img = img.flip(-1)
        return img.clamp(0.0, 1.0), label


class _Files(Dataset):
    """Images of a folder without class sub-folders (unlabelled)."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        return core_data.load_image(self.files[i])


def _folder_source(folder: Path, names: Sequence[str]) -> Dataset:
    """An ImageFolder whose class folders are class names (or indices) of the black box; else unlabelled files."""
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in core_data.IMAGE_EXTENSIONS)
        if not files:
            raise InputError(f"{folder} holds no images ({', '.join(core_data.IMAGE_EXTENSIONS)}) and no class folders.")
        return _Files(files)
    index = ClassIndex(names, dataset="the black box")
    mapping = {}
    for d in subdirs:
        try:
            mapping[d.name] = int(d.name) if d.name.isdigit() else index.index(d.name)
        except UnknownClassError as exc:
            raise InputError(
                f"Class folder {d} is not a class of the black box ({exc}). Name the folders after the class "
                f"names or their indices, or put the images in one folder to label them by the black box's top-1."
            ) from None
    from torchvision.datasets import ImageFolder  # the loader of paperlib's own image folders

    ds = ImageFolder(str(folder), loader=core_data.load_image)
    remap = {i: mapping[c] for c, i in ds.class_to_idx.items()}
    ds.samples = [(p, remap[y]) for p, y in ds.samples]
    ds.targets = [y for _, y in ds.samples]
    return ds


@torch.no_grad()
def _top1(black_box: BlackBox, images: UserImages, batch_size: int = 32) -> torch.Tensor:
    """The black box's own top-1 class of every image (labels for unlabelled data)."""
    out = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([images.image(i)[0] for i in range(start, min(start + batch_size, len(images)))])
        out.append(black_box(batch.clamp(0.0, 1.0)).argmax(-1).cpu())
    return torch.cat(out)


def _check_items(ds: UserImages, num_classes: int, n_check: int = 16) -> None:
    """Images in [0, 1] and labels in [0, K) on a spread of items (all labels when the source lists them)."""
    if len(ds) == 0:
        raise InputError("The data set is empty.")
    targets = getattr(ds.source, "targets", None)
    if ds.labels is None and targets is not None:
        t = torch.as_tensor(list(targets))
        if len(t) and (int(t.min()) < 0 or int(t.max()) >= num_classes):
            bad = int(t.max()) if int(t.max()) >= num_classes else int(t.min())
            raise InputError(
                f"The data set has label {bad}, but the black box has {num_classes} classes (0 to {num_classes - 1})."
            )
    step = max(len(ds) // n_check, 1)
    for i in range(0, len(ds), step)[:n_check]:
        img, label = ds.image(i)
        lo, hi = float(img.min()), float(img.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise InputError(
                f"Image {i} of the data set holds values in [{lo:.3g}, {hi:.3g}]; images must be RGB in [0, 1] "
                f"(uint8 images are divided by 255 for you). Do not normalise them: the black box's wrapper does."
            )
        if ds.labels is None and label is not None and not 0 <= label < num_classes:
            raise InputError(f"Item {i} has label {label}, but the black box has {num_classes} classes (0 to {num_classes - 1}).")


def user_dataset(data: Any, black_box: BlackBox, size: int, *, augment: bool = True) -> UserImages:
    """The user's data as labelled ``(3, size, size)`` tensors in [0, 1], checked.

    Args:
        data: A folder (class sub-folders named after the black box's classes or their indices; or
            images directly in it, unlabelled), a ``Dataset`` of ``(image, label)`` or of images, or a
            tensor (N, 3, H, W) of images (unlabelled). Unlabelled images are labelled with the black
            box's own top-1 class.
        black_box: The classifier to explain.
        size: Training side S.
        augment: Random horizontal flips.

    Raises:
        InputError: Images outside [0, 1], labels outside the black box's classes, unknown class
            folders, an empty data set.
    """
    names = black_box.class_names or [str(i) for i in range(black_box.num_classes)]
    if isinstance(data, (str, Path)):
        folder = Path(data).expanduser()
        if not folder.is_dir():
            raise InputError(f"Data folder {folder} does not exist.")
        source = _folder_source(folder, names)
    elif isinstance(data, torch.Tensor):
        if data.ndim != 4:
            raise InputError(f"A tensor of images must be (N, 3, H, W), got shape {tuple(data.shape)}.")
        source = list(data)
    elif isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        source = data
    else:
        raise InputError(f"data must be a folder, a torch Dataset or an image tensor, got {type(data).__name__}.")
    ds = UserImages(source, None, size, augment=augment)
    first = source[0]
    labelled = isinstance(first, (tuple, list))
    _check_items(ds, black_box.num_classes)
    if not labelled:
        ds.labels = _top1(black_box, ds)
    return ds


# --------------------------------------------------------------------------- training


def _encoder_defaults(encoder: str, encoder_widths: Sequence[int] | None) -> tuple[str, dict[str, Any]]:
    """The registered encoder name and the decoder defaults of an ``encoder=`` choice."""
    if encoder not in ENCODER_CHOICES:
        raise InputError(f"Unknown encoder {encoder!r}; choose one of {', '.join(ENCODER_CHOICES)}.")
    if encoder == "scratch":
        widths = tuple(encoder_widths or (32, 64, 128))
        return "cifar10", {"encoder_widths": widths, "width": 2 * widths[0], "blocks": 1, "mask_stride": 2}
    return encoder, {"width": 256, "blocks": 1, "mask_stride": 4}


def _registered_fields(
    black_box: BlackBox, encoder: str, encoder_widths: Sequence[int] | None, steps: int, config: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    """Check ``black_box``, register it when it is the user's own, and resolve the training fields.

    Returns:
        The black box's registry name, the encoder's name and the extra
        :class:`~paperlib.experiments.train.TrainConfig` fields (``config`` over the defaults).
    """
    if not isinstance(black_box, BlackBox):
        raise InputError(
            f"train_masker takes a paperlib BlackBox, got {type(black_box).__name__}: wrap your model first with "
            "paperlib.wrap_classifier(model, input_size=..., mean=..., std=..., class_names=[...])."
        )
    check_black_box(black_box, black_box.num_classes, input_size=black_box.input_size)
    enc_name, defaults = _encoder_defaults(encoder, encoder_widths)
    if black_box.dataset == "custom":
        name = register_classifier(black_box, masker_defaults=defaults).name
    else:
        name = classifier_spec(black_box.name).name
        defaults.pop("encoder_widths", None)  # the registry's masker defaults apply to the built-in ones
    fields = {"output_gate": True, "workers": 0, "fake_prob": 0.3, "checkpoint_every": max(steps // 5, 1)}
    fields.update(config)
    if black_box.dataset != "custom":
        fields.update({k: v for k, v in defaults.items() if k in ("blocks", "mask_stride") and k not in config})
    return name, enc_name, fields


def train_masker(
    black_box: BlackBox,
    data: Any,
    *,
    steps: int = 500,
    batch_size: int = 16,
    lr: float = 1e-3,
    encoder: str = "efficientnet_lite0",
    encoder_widths: Sequence[int] | None = None,
    widths: Sequence[int] | None = None,
    image_size: int | None = None,
    objective: str = "project",
    objective_weights: dict[str, Any] | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    **config: Any,
) -> Masker:
    """Train a masking model that explains your own classifier.

    Args:
        black_box: From :func:`wrap_classifier` (or a built-in one from ``paperlib.load_classifier``).
        data: Training images: a folder, a ``Dataset`` or an image tensor (see :func:`user_dataset`).
        steps: Optimisation steps.
        batch_size: Images per step.
        lr: Adam learning rate.
        encoder: One of :data:`ENCODER_CHOICES` (the module docstring says which to take).
        encoder_widths: Channels of the three blocks of the ``"scratch"`` encoder.
        widths: Decoder widths, deepest first (default: 256 halved per upsampler; ``"scratch"``:
            twice the first encoder width).
        image_size: Training side (default: the black box's ``input_size``).
        objective: Objective preset (``"project"``, ``"paper"``, ``"official"``; see :class:`~paperlib.ObjectiveConfig`).
        objective_weights: Weights over the preset, e.g. ``{"l2": 1.0}``.
        out: Run folder (log, resumable ``last.pt``, ``masker.pt``); default a temporary folder,
            removed afterwards. An ``out`` holding a ``last.pt`` of the same run resumes it.
        progress: Show a progress bar.
        **config: Other :class:`~paperlib.experiments.train.TrainConfig` fields (``fake_prob``,
            ``seed``, ``output_gate``, ``blocks``, ``mask_stride``, ``black_box_size``, ...).

    Returns:
        The masker in eval mode: ``masker(images, "class name" or index) -> (N, 1, H, W)``; its
        ``config`` holds the class names and the sha256 of the black box's weights.

    Raises:
        InputError: Any problem with the black box or the data, before the first step.
    """
    name, enc_name, fields = _registered_fields(black_box, encoder, encoder_widths, steps, config)
    size = int(image_size or black_box.input_size)
    ds = user_dataset(data, black_box, size)
    with tempfile.TemporaryDirectory(prefix="paperlib-masker-") as tmp:
        cfg = TrainConfig(
            black_box=name,
            out=str(out) if out is not None else tmp,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            image_size=size,
            encoder=enc_name,
            widths=list(widths) if widths is not None else None,
            objective_preset=objective,
            objective=dict(objective_weights or {}),
            **fields,
        )
        cfg.objective_config()  # an unknown preset or weight fails here, before training
        masker = train(cfg, dataset=ds, progress=progress)
    masker.meta = {"train_config": asdict(cfg), "steps": steps}
    return masker.eval()


# --------------------------------------------------------------------------- command line


def pasted_scenes(photos: torch.Tensor, size: int = 64, photo: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Small photographs pasted at random places on smooth random backgrounds: images whose evidence lies
    in a known region (notebook 13 trains and checks a masker on them).

    Each background is a 4 x 4 grid of uniform random colours, upsampled bilinearly to ``size``; each
    photograph is resized to ``photo`` x ``photo`` and pasted at a uniformly drawn corner.

    Args:
        photos: (N, 3, h, w) uint8 (0-255) or float in [0, 1].
        size: Side of the scenes.
        photo: Side of the pasted photograph, at most ``size``.
        seed: Seed of the backgrounds and places (the same seed gives the same scenes).

    Returns:
        ``(scenes (N, 3, size, size) in [0, 1], where (N, 1, size, size) bool)``: ``where`` marks the
        pasted photograph's pixels.

    Example:
        >>> scenes, where = pasted_scenes(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), size=16, photo=8)
        >>> scenes.shape, int(where[0].sum())
        (torch.Size([2, 3, 16, 16]), 64)
    """
    if not (isinstance(photos, torch.Tensor) and photos.ndim == 4 and photos.shape[1] == 3):
        raise InputError(f"photos must be an (N, 3, h, w) tensor; got {getattr(photos, 'shape', type(photos))}.")
    if not 0 < photo <= size:
        raise InputError(f"photo ({photo}) must lie in 1..size ({size}).")
    g = torch.Generator().manual_seed(seed)
    n = len(photos)
    out = F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bilinear", align_corners=False)
    where = torch.zeros(n, 1, size, size, dtype=torch.bool)
    corners = torch.randint(0, size - photo + 1, (n, 2), generator=g)
    x = photos.float() / 255 if photos.dtype == torch.uint8 else photos.float()
    x = F.interpolate(x, size=(photo, photo), mode="bilinear", align_corners=False)
    for i, (top, left) in enumerate(corners.tolist()):
        out[i, :, top : top + photo, left : left + photo] = x[i]
        where[i, :, top : top + photo, left : left + photo] = True
    return out.clamp(0, 1), where


def _build_from_module(spec: str) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"--black-box {spec}: cannot import {module_name!r} ({exc}); is it on PYTHONPATH?") from exc
    if not hasattr(module, attr):
        raise InputError(f"--black-box {spec}: {module_name} has no attribute {attr!r}.")
    obj = getattr(module, attr)
    return obj if isinstance(obj, nn.Module) else obj()


def _build_named(kind: str, arch: str, num_classes: int | None) -> nn.Module:
    kw = {} if num_classes is None else {"num_classes": num_classes}
    if kind == "torchvision":
        import torchvision

        if arch not in torchvision.models.list_models():
            raise InputError(f"torchvision has no model {arch!r}; see torchvision.models.list_models().")
        return torchvision.models.get_model(arch, weights=None, **kw)
    try:
        import timm
    except ImportError:
        raise InputError(f"--black-box timm:{arch} needs timm, which is not installed (pip install timm).") from None
    return timm.create_model(arch, pretrained=False, **kw)


def black_box_from_spec(
    spec: str,
    *,
    weights: str | Path | None,
    class_names: Sequence[str] | None,
    input_size: int = 224,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    multi_label: bool = False,
    name: str | None = None,
) -> BlackBox:
    """Build, load and wrap a model named on the command line.

    Args:
        spec: ``package.module:function`` (a function returning the model, or a module-level
            model), ``torchvision:<arch>`` or ``timm:<arch>`` (when timm is installed).
        weights: A file holding a state dict (or ``{"state_dict": ...}`` / ``{"model": ...}``), read with
            ``weights_only=True``: a whole pickled model is refused (loading it would run code from the file);
            save ``model.state_dict()`` instead.
        class_names: One name per output; default: ``"0"``, ``"1"``, ... (as many as the model's outputs).
        input_size, mean, std, multi_label: As for :func:`wrap_classifier`.
        name: The black box's name (default: derived from ``spec``).
    """
    kind, _, arch = spec.partition(":")
    if not arch:
        raise InputError(f"--black-box {spec!r} is neither a built-in black box nor 'module:function'.")
    n = len(class_names) if class_names else None
    model = _build_named(kind, arch, n) if kind in ("torchvision", "timm") else _build_from_module(spec)
    if weights is not None:
        if not Path(weights).is_file():
            raise WeightsNotFoundError(f"--weights {weights} does not exist.")
        try:
            state = safe_load(weights, what="weights file")
        except UnsafeCheckpointError as exc:
            raise UnsafeCheckpointError(
                f"{exc} A whole pickled model cannot be loaded safely: save its weights with "
                f"`torch.save(model.state_dict(), PATH)` and pass that file."
            ) from None
        state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise InputError(f"--weights {weights} does not fit {spec}: {str(exc).splitlines()[0]}") from None
    if not class_names:
        k = check_black_box(model.eval(), None, input_size=input_size)
        class_names = [str(i) for i in range(k)]
    label = name or arch.replace(".", "_").replace("/", "_")
    return wrap_classifier(
        model, input_size=input_size, class_names=class_names, mean=mean, std=std, multi_label=multi_label, name=label
    )


def _own_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paperlib train", add_help=False)
    p.add_argument(
        "--weights", help="state dict of your own black box (--black-box module:function, torchvision:<arch>, timm:<arch>)"
    )
    p.add_argument("--class-names", nargs="+", help="one name per output, or a text file with one name per line")
    p.add_argument("--input-size", type=int, default=224, help="side of the images your model expects")
    p.add_argument("--mean", type=float, nargs=3, default=(0.0, 0.0, 0.0), help="normalisation mean (RGB)")
    p.add_argument("--std", type=float, nargs=3, default=(1.0, 1.0, 1.0), help="normalisation std (RGB)")
    p.add_argument("--multi-label", action="store_true", help="sigmoid outputs (f_c = sigmoid(z_c))")
    p.add_argument("--name", help="name of your black box (recorded in the masker)")
    p.add_argument("--masker-encoder", choices=ENCODER_CHOICES, default="efficientnet_lite0", help="encoder of the masker")
    return p


def _is_own(argv: Sequence[str]) -> bool:
    for i, a in enumerate(argv):
        value = (
            a.split("=", 1)[1]
            if a.startswith("--black-box=")
            else (argv[i + 1] if a == "--black-box" and i + 1 < len(argv) else None)
        )
        if value is not None and ":" in value:
            return True
    return False


def _class_names(values: Sequence[str] | None) -> list[str] | None:
    if values and len(values) == 1 and Path(values[0]).is_file():
        return [ln.strip() for ln in Path(values[0]).read_text().splitlines() if ln.strip()]
    return list(values) if values else None


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m paperlib.train``: a built-in black box goes to :func:`paperlib.experiments.train.main`;
    ``--black-box module:function`` (or ``torchvision:``/``timm:``) trains a masker for your own model."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not _is_own(argv):
        if "-h" in argv or "--help" in argv:
            print(_own_parser().format_help().replace("usage: ", "Your own black box (--black-box module:function): ", 1))
        _train_main(argv)
        return
    own, rest = _own_parser().parse_known_args(argv)
    if not any(a.startswith("--preset-objective") for a in rest):
        rest = ["--preset-objective", "project", *rest]  # the shipped maskers' recipe (paper's l2 keeps nearly all)
    cfg = _parse(rest)
    if not cfg.data or len(cfg.data) != 1:
        raise SystemExit("--data: give one folder of your images (class folders, or images to label by the black box).")
    bb = black_box_from_spec(
        cfg.black_box,
        weights=own.weights,
        class_names=_class_names(own.class_names),
        input_size=own.input_size,
        mean=own.mean,
        std=own.std,
        multi_label=own.multi_label,
        name=own.name,
    )
    out = cfg.out if cfg.out != TrainConfig().out else f"runs/{bb.name}"
    keep = ("steps", "batch_size", "lr", "fake_prob", "widths", "blocks", "mask_stride", "seed", "threads", "black_box_size")
    extra = {k: getattr(cfg, k) for k in keep if getattr(cfg, k) is not None}
    extra["output_gate"] = cfg.output_gate if any(a in rest for a in ("--output-gate", "--no-output-gate")) else True
    try:
        with one_line_errors("python -m paperlib.train"):
            train_masker(
                bb,
                cfg.data[0],
                encoder=own.masker_encoder,
                out=out,
                objective=cfg.objective_preset,
                objective_weights=cfg.objective,
                checkpoint_every=cfg.checkpoint_every,
                **extra,
            )
    except KeyboardInterrupt:
        sys.exit(130)
    print(f"Masker written to {Path(out) / 'masker.pt'}; load it with paperlib.load_masker({str(Path(out) / 'masker.pt')!r}).")


if __name__ == "__main__":
    main()

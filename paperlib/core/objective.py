"""The saliency objective of Dabkowski & Gal (2017), section 3, eq. 4.

For an image X, a mask M (1 = keep) and a class c, with f_c the black box's
softmax probability of class c (sigmoid(z_c) for a multi-label black box, one whose
``multi_label`` attribute is true):

    Phi(X, M) = X * M + A * (1 - M)                                   (evidence removal)
    TV(M)     = mean_ij (M_ij - M_i,j+1)^2 + mean_ij (M_ij - M_i+1,j)^2
    AV(M)     = mean_ij (M_ij + eps)^p                                  (p = 1, eps = 0: the paper)
    L(M)      = l1 TV(M) + l2 AV(M) - l0 log f_c(Phi(X, M)) + l3 f_c(Phi(X, 1 - M))^l4   (eq. 4, l0 = 1)

The alternative image ``A`` is drawn anew at every call: with probability 0.5 a
strongly blurred copy of X (Gaussian, sigma = 10 px at 224 px, scaled with the
image), otherwise a random constant colour plus Gaussian noise. For *fake* labels
(a class that is not in the image) only the area term applies, so the masker
learns to return an empty mask for absent classes.

Normalisation (left open by the paper, chosen here): TV and AV are **means** over the
mask's pixels (pairs of neighbours for TV), computed on the mask at the decoder's
own resolution (56 x 56 for a 224 px input) so that they do not depend on the input
size. With means, the paper's l2 = 1e-3 leaves the area term almost without force
(an all-ones mask costs 0.001), and a masker trained with it keeps nearly every pixel.

Named presets (``ObjectiveConfig.<name>()``, and ``--preset-objective <name>`` of
``python -m paperlib.train``):

* ``paper`` = ``ObjectiveConfig()``, the default: eq. 4 as printed (l1 = 10, l2 = 1e-3, l3 = 5,
  l4 = 0.3, AV = mean(M)).
* ``project``: the recipe of the shipped maskers (``paperlib/checkpoints/*.json``): l2 = 2 with the
  linear area, plus the feature-filter (selector) loss with weight 1.
* ``official``: the weights of the authors' public code (hinge losses, AV = mean((M + 5e-4)^0.3)).

>>> ObjectiveConfig() == ObjectiveConfig.paper()
True
>>> ObjectiveConfig.project().l2, ObjectiveConfig.project().area_power
(2.0, 1.0)

The authors' public code also replaces -log f_c and f_c^l4 by hinge-style
(Carlini-Wagner) losses on the logits; ``classification="hinge"`` selects that variant.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._common import class_log_probability, class_probability_from_logits
from .errors import InputError

__all__ = [
    "ObjectiveConfig",
    "OBJECTIVE_PRESETS",
    "total_variation",
    "smoothness_sum",
    "area",
    "gaussian_blur",
    "alternative_images",
    "apply_mask",
    "saliency_objective",
    "selector_loss",
    "preserve_term",
    "destroy_term",
    "SaliencyLoss",
]


#: Names accepted by :meth:`ObjectiveConfig.preset` and ``--preset-objective``.
OBJECTIVE_PRESETS: tuple[str, ...] = ("paper", "project", "official", "authors")


@dataclass(frozen=True)
class ObjectiveConfig:
    """Weights of the objective (eq. 4) and the choices the paper leaves open.

    Attributes:
        l0: Weight of the preserver term -log f_c(Phi(X, M)) (paper: 1; official code: 0.3).
        l1: TV weight (paper: 10).
        l2: Area weight (paper: 1e-3; the ``project`` preset: 2, see the module docstring).
        l3: Weight of the destroyer term f_c(Phi(X, 1-M))^l4 (paper: 5).
        l4: Its power (paper: 0.3).
        area_power: p in AV = mean((M + eps)^p) (paper: 1; official code: 0.3).
        area_eps: eps in AV (official code: 5e-4; 0 with p = 1).
        classification: ``"log"`` (paper: -log f and f^l4) or ``"hinge"`` (official code).
        blur_sigma: Sigma of the blurred alternative image, in pixels at 224 px (paper: 10).
        p_blur: Probability that A is the blurred image rather than colour + noise (paper: 0.5).
        noise_std: Std of the Gaussian noise added to the random colour.
        selector_weight: Weight of the optional feature-filter (selector) loss: the gate maximum
            should be high for a real class and low for a fake one (0 = off, as in eq. 4).
        preserve_confidence: Margin kappa of the hinge preserver relu(kappa - margin) (authors' code: 1).
        destroy_confidence: Margin kappa of the hinge destroyer relu(kappa + margin) (authors' code: 5).
        tv_form: ``"mean"``: TV as defined above, on the decoder-resolution mask; ``"sum"``: the
            authors' ``calc_smoothness_loss``, the *sum* of squared neighbour differences of the
            image-resolution mask plus ``tv_border`` times the sum of its squared edge values, halved
            (their division by power x batch, per sample).
        tv_border: Border penalty of the ``"sum"`` form (authors' code: 0.3).
        fake_targets: ``"area"``: a fake label gets the area term only (the project's choice);
            ``"reversed"`` (authors' code): for a fake label every term applies, with the *true* class
            as target and the roles reversed: the kept image must not show it
            (relu(1 + margin)), the image with the mask removed must (relu(1 - margin)).
        colour_range: Width of the uniform range of the random colour, centred on grey (1: [0, 1];
            authors' code: 0.66 in their [-1, 1] pixels, i.e. 0.33 here: [0.335, 0.665]).
        image_noise_std: Gaussian noise added to X in each of the two passes (authors' code: 0.03 in
            their [-1, 1] pixels, 0.015 here); 0 = none.
        separate_alternatives: Draw A anew for the destroyer pass (authors' code) instead of sharing
            the preserver's.
    """

    l0: float = 1.0
    l1: float = 10.0
    l2: float = 1e-3
    l3: float = 5.0
    l4: float = 0.3
    area_power: float = 1.0
    area_eps: float = 0.0
    classification: str = "log"
    blur_sigma: float = 10.0
    p_blur: float = 0.5
    noise_std: float = 0.2
    selector_weight: float = 0.0
    preserve_confidence: float = 1.0
    destroy_confidence: float = 1.0
    tv_form: str = "mean"
    tv_border: float = 0.0
    fake_targets: str = "area"
    colour_range: float = 1.0
    image_noise_std: float = 0.0
    separate_alternatives: bool = False

    @classmethod
    def paper(cls, **overrides: Any) -> "ObjectiveConfig":
        """The paper's eq. 4 as printed: l1=10, l2=1e-3, l3=5, l4=0.3, AV = mean(M)."""
        return replace(cls(l2=1e-3, area_power=1.0, area_eps=0.0), **overrides)

    @classmethod
    def project(cls, **overrides: Any) -> "ObjectiveConfig":
        """The recipe of the shipped maskers: eq. 4 with l2 = 2 (linear area) and the selector loss (weight 1)."""
        return replace(cls(l2=2.0, area_power=1.0, area_eps=0.0, selector_weight=1.0), **overrides)

    @classmethod
    def legacy(cls, **overrides: Any) -> "ObjectiveConfig":
        """What ``ObjectiveConfig()`` meant before version 0.2: l2 = 2 and AV = mean((M + 5e-4)^0.3).

        Used to read run configurations written then, which stored only the weights given on the command line.
        """
        return replace(cls(l2=2.0, area_power=0.3, area_eps=5e-4), **overrides)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ObjectiveConfig":
        """The named preset ``"paper"``, ``"project"``, ``"official"`` (or ``"legacy"``), with overrides."""
        if name not in OBJECTIVE_PRESETS + ("legacy",):
            raise InputError(f"Unknown objective preset {name!r}; known: {', '.join(OBJECTIVE_PRESETS)}.")
        return getattr(cls, name)(**overrides)

    @classmethod
    def official(cls, **overrides: Any) -> "ObjectiveConfig":
        """The weights of the authors' public code: hinge (Carlini-Wagner, kappa 1) losses, preserver 0.3,
        destroyer 1, area 8 * mean((M + 5e-4)^0.3), smoothness 0.5."""
        return replace(
            cls(l0=0.3, l1=0.5, l2=8.0, l3=1.0, l4=1.0, area_power=0.3, area_eps=5e-4, classification="hinge"), **overrides
        )

    @classmethod
    def authors(cls, **overrides: Any) -> "ObjectiveConfig":
        """The objective exactly as the authors' ``saliency_train.py`` constructs and runs it.

        ``SaliencyLoss(black_box_fn, smoothness_loss_coef=0.005)`` with its other defaults
        (``sal/saliency_model.py``) and ``apply_mask``'s defaults (``sal/utils/mask.py``), pixel
        values mapped from their [-1, 1] to our [0, 1] (stds and ranges halved):

        ========================  ==========================================  ==================
        their code                value                                       here
        ========================  ==========================================  ==================
        destroyer                 cw_loss, non-targeted, confidence 5, x 1    l3 = 1, destroy_confidence = 5
        preserver                 cw_loss, targeted, confidence 1, x 0.3      l0 = 0.3, preserve_confidence = 1
        area                      8 x mean((M + 5e-4)^0.3)                    l2 = 8, area_power = 0.3, area_eps = 5e-4
        smoothness                0.005 x (sum dM^2 + 0.3 sum edge M^2) / 2   l1 = 0.005, tv_form = "sum", tv_border = 0.3
        fake label (30 %)         true class as target, roles reversed        fake_targets = "reversed"
        blurred alternative       p = 0.5, sigma 11 px (kernel 55)            p_blur = 0.5, blur_sigma = 11
        colour alternative        U(-0.33, 0.33) + N(0, 0.11) in [-1, 1]     colour_range = 0.33, noise_std = 0.055
        noise on X per pass       N(0, 0.03) in [-1, 1]                       image_noise_std = 0.015
        A per pass                drawn in each ``apply_mask`` call           separate_alternatives = True
        ========================  ==========================================  ==================

        Under this project's mean normalisation the smoothness weight equals about l1 = 7.7 on
        TV(M) at 56 x 56 (their sum over a bilinearly upsampled 224 px mask is about the sum over the
        56 x 56 mask, 56 x 55 x 2 pairs, times 0.005 / 2), against 0.5 in :meth:`official`, which
        took the class default (0.5) that ``saliency_train.py`` overrides. Deviations: the Gaussian
        kernel is truncated at 3 sigma (theirs at 2.5), and X plus noise is clipped to [0, 1]
        (their black box took unclipped values).

        >>> c = ObjectiveConfig.authors()
        >>> (c.l0, c.l1, c.l2, c.l3, c.destroy_confidence, c.tv_form, c.fake_targets)
        (0.3, 0.005, 8.0, 1.0, 5.0, 'sum', 'reversed')
        """
        return replace(
            cls(
                l0=0.3, l1=0.005, l2=8.0, l3=1.0, l4=1.0, area_power=0.3, area_eps=5e-4, classification="hinge",
                blur_sigma=11.0, p_blur=0.5, noise_std=0.055, preserve_confidence=1.0, destroy_confidence=5.0,
                tv_form="sum", tv_border=0.3, fake_targets="reversed", colour_range=0.33, image_noise_std=0.015,
                separate_alternatives=True,
            ),
            **overrides,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __post_init__(self) -> None:
        if self.classification not in ("log", "hinge"):
            raise InputError(f"classification must be 'log' or 'hinge', got {self.classification!r}.")
        if self.tv_form not in ("mean", "sum"):
            raise InputError(f"tv_form must be 'mean' or 'sum', got {self.tv_form!r}.")
        if self.fake_targets not in ("area", "reversed"):
            raise InputError(f"fake_targets must be 'area' or 'reversed', got {self.fake_targets!r}.")
        if self.fake_targets == "reversed" and self.classification != "hinge":
            raise InputError("fake_targets='reversed' needs classification='hinge' (the authors' losses).")
        if not 0.0 <= self.colour_range <= 1.0:
            raise InputError(f"colour_range must lie in [0, 1], got {self.colour_range}.")
        if not 0.0 <= self.p_blur <= 1.0:
            raise InputError(f"p_blur must lie in [0, 1], got {self.p_blur}.")


def _check_masks(masks: torch.Tensor) -> None:
    if not isinstance(masks, torch.Tensor) or masks.ndim != 4 or masks.shape[1] != 1:
        shape = tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise InputError(f"masks must have shape (N, 1, H, W), got {shape}.")


def total_variation(masks: torch.Tensor) -> torch.Tensor:
    """Mean squared total variation, per image.

    TV(M) = mean_ij (M_ij - M_i,j+1)^2 + mean_ij (M_ij - M_i+1,j)^2

    Args:
        masks: (N, 1, H, W).

    Returns:
        (N,) tensor. A constant mask gives 0; a vertical half-black half-white H x W mask gives
        1 / (W - 1).
    """
    _check_masks(masks)
    dx = (
        (masks[..., :, 1:] - masks[..., :, :-1]).pow(2).flatten(1).mean(1) if masks.shape[-1] > 1 else masks.new_zeros(len(masks))
    )
    dy = (
        (masks[..., 1:, :] - masks[..., :-1, :]).pow(2).flatten(1).mean(1) if masks.shape[-2] > 1 else masks.new_zeros(len(masks))
    )
    return dx + dy


def smoothness_sum(masks: torch.Tensor, border: float = 0.3) -> torch.Tensor:
    """The authors' smoothness term (``calc_smoothness_loss`` of their ``sal/utils/mask.py``), per image.

    S(M) = (sum_ij (M_ij - M_i+1,j)^2 + sum_ij (M_ij - M_i,j+1)^2 + border * sum_edge M^2) / 2

    a *sum* over the mask's pixels (they apply it to the mask upsampled to the image size), so that
    it grows with the length of the mask's edges; the edge sum counts the four outer rows and columns.

    Args:
        masks: (N, 1, H, W).
        border: Weight of the squared mask values on the image border (theirs: 0.3).

    Returns:
        (N,) tensor. A constant zero mask gives 0; an all-ones H x W mask gives border * (2H + 2W) / 2.

    >>> round(float(smoothness_sum(torch.ones(1, 1, 4, 5), border=0.3)), 4)
    2.7
    """
    _check_masks(masks)
    dy = (masks[..., 1:, :] - masks[..., :-1, :]).pow(2).flatten(1).sum(1)
    dx = (masks[..., :, 1:] - masks[..., :, :-1]).pow(2).flatten(1).sum(1)
    m2 = masks.pow(2)
    edge = m2[..., -1, :].flatten(1).sum(1) + m2[..., 0, :].flatten(1).sum(1)
    edge = edge + m2[..., :, -1].flatten(1).sum(1) + m2[..., :, 0].flatten(1).sum(1)
    return (dx + dy + border * edge) / 2.0


def area(masks: torch.Tensor, power: float = 1.0, eps: float = 0.0) -> torch.Tensor:
    """Average area AV(M) = mean_ij (M_ij + eps)^power, per image.

    Args:
        masks: (N, 1, H, W) in [0, 1].
        power: 1 for the paper's mean; 0.3 for the official code's.
        eps: Offset keeping the gradient of (M + eps)^p finite at M = 0.

    Returns:
        (N,) tensor; for power 1 and eps 0 it is the fraction of the image kept.
    """
    _check_masks(masks)
    m = masks if (power == 1.0 and eps == 0.0) else (masks + eps).pow(power)
    return m.flatten(1).mean(1)


def _gaussian_kernel1d(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(int(math.ceil(3.0 * sigma)), 1)
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (sigma in pixels).

    Large sigmas are applied on a downsampled copy and upsampled back, which gives the same
    strongly blurred image at a fraction of the cost.

    Args:
        images: (N, C, H, W).
        sigma: Standard deviation in pixels; <= 0 returns the input.

    Returns:
        (N, C, H, W).
    """
    if sigma <= 0:
        return images
    n, c, h, w = images.shape
    factor = int(max(1, min(sigma // 2, min(h, w) // 16)))
    x = F.avg_pool2d(images, factor) if factor > 1 else images
    s = sigma / factor
    k = _gaussian_kernel1d(s, images.device, images.dtype)
    r = len(k) // 2
    x = x.reshape(n * c, 1, *x.shape[-2:])
    pad_h, pad_w = min(r, x.shape[-2] - 1), min(r, x.shape[-1] - 1)
    x = F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect") if pad_w > 0 else x
    x = F.conv2d(x, k[r - pad_w : r + pad_w + 1].view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, pad_h, pad_h), mode="reflect") if pad_h > 0 else x
    x = F.conv2d(x, k[r - pad_h : r + pad_h + 1].view(1, 1, -1, 1))
    x = x.reshape(n, c, *x.shape[-2:])
    if factor > 1:
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x


def alternative_images(
    images: torch.Tensor,
    *,
    p_blur: float = 0.5,
    blur_sigma: float = 10.0,
    noise_std: float = 0.2,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    colour_range: float = 1.0,
) -> torch.Tensor:
    """Draw the alternative image A of the evidence-removal function, one per image.

    With probability ``p_blur`` A is X blurred with sigma = blur_sigma * H / 224 px (paper: 10 px
    at 224 px); otherwise a random constant colour (uniform in [0, 1] per channel, or in
    [0.5 - r / 2, 0.5 + r / 2] with ``colour_range`` r < 1) plus Gaussian noise of std
    ``noise_std``, clipped to [0, 1].

    Args:
        images: (N, 3, H, W) in [0, 1].
        generator: One generator for the whole batch, or a sequence of N generators, one per image
            (each image's draws then depend on its own generator only, so a batch split over
            several processes draws what the whole batch would).

    Returns:
        (N, 3, H, W) in [0, 1]; not differentiable with respect to anything (A is a constant).
    """
    with torch.no_grad():
        n, c, h, w = images.shape
        dev = images.device
        if isinstance(generator, (list, tuple)):
            if len(generator) != n:
                raise InputError(f"{len(generator)} generators for {n} images: give one per image.")
            draws = [
                (torch.rand(1, generator=g), torch.rand(1, c, 1, 1, generator=g), torch.randn(1, c, h, w, generator=g))
                for g in generator
            ]
            use_blur, colour, noise = (torch.cat(d) for d in zip(*draws))
        else:
            use_blur = torch.rand(n, generator=generator, device="cpu")
            colour = torch.rand(n, c, 1, 1, generator=generator, device="cpu")
            noise = torch.randn(n, c, h, w, generator=generator, device="cpu")
        use_blur = use_blur.lt(p_blur).to(dev).view(n, 1, 1, 1)
        colour = colour.to(dev, images.dtype)
        if colour_range != 1.0:
            colour = 0.5 + (colour - 0.5) * colour_range
        noise = noise.to(dev, images.dtype) * noise_std
        solid = (colour + noise).clamp(0.0, 1.0)
        if bool(use_blur.any()):
            blurred = gaussian_blur(images, blur_sigma * h / 224.0)
            return torch.where(use_blur, blurred, solid)
        return solid


def _draw_alternative(images: torch.Tensor, config: ObjectiveConfig, generator: Any) -> torch.Tensor:
    return alternative_images(
        images,
        p_blur=config.p_blur,
        blur_sigma=config.blur_sigma,
        noise_std=config.noise_std,
        generator=generator,
        colour_range=config.colour_range,
    )


def _noisy(images: torch.Tensor, std: float, generator: Any, rows: torch.Tensor) -> torch.Tensor:
    """``images`` plus N(0, std) noise clipped to [0, 1] (unchanged when std is 0); ``rows`` picks each image's generator."""
    if std <= 0:
        return images
    with torch.no_grad():
        if isinstance(generator, (list, tuple)):
            noise = torch.cat([torch.randn(1, *images.shape[1:], generator=generator[int(i)]) for i in rows])
        else:
            noise = torch.randn(images.shape, generator=generator, device="cpu")
        return (images + std * noise.to(images.device, images.dtype)).clamp(0.0, 1.0)


def apply_mask(images: torch.Tensor, masks: torch.Tensor, alternative: torch.Tensor) -> torch.Tensor:
    """Evidence removal Phi(X, M) = X * M + A * (1 - M).

    Args:
        images: X, (N, 3, H, W).
        masks: M, (N, 1, H, W) in [0, 1] (1 = keep), at image resolution.
        alternative: A, (N, 3, H, W).

    Returns:
        (N, 3, H, W). With M = 1 it returns X; with M = 0 it returns A.
    """
    if masks.shape[-2:] != images.shape[-2:]:
        raise InputError(f"masks {tuple(masks.shape)} and images {tuple(images.shape)} differ in size.")
    return images * masks + alternative * (1.0 - masks)


def _hinge(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """z_c - max_{k != c} z_k (the Carlini-Wagner margin)."""
    target = logits.gather(1, classes[:, None]).squeeze(1)
    other = logits.scatter(1, classes[:, None], float("-inf")).amax(1)
    return target - other


def preserve_term(
    logits: torch.Tensor, classes: torch.Tensor, config: ObjectiveConfig, *, multi_label: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The preserver term of eq. 4 on the logits of Phi(X, M), per sample, and f_c for monitoring.

    With ``multi_label`` f_c = sigmoid(z_c) and the hinge margin is z_c itself.

    Returns:
        (-log f_c, or the official code's hinge relu(kappa - margin), kappa = ``config.preserve_confidence``, when ``config.classification == "hinge"``;
        f_c detached), each (N,).
    """
    logp = class_log_probability(logits, classes, multi_label)
    if config.classification == "log":
        return -logp, logp.exp().detach()
    return F.relu(config.preserve_confidence - _margin(logits, classes, multi_label)), logp.exp().detach()


def _margin(logits: torch.Tensor, classes: torch.Tensor, multi_label: bool) -> torch.Tensor:
    return logits.gather(1, classes[:, None]).squeeze(1) if multi_label else _hinge(logits, classes)


def destroy_term(
    logits: torch.Tensor, classes: torch.Tensor, config: ObjectiveConfig, *, multi_label: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The destroyer term of eq. 4 on the logits of Phi(X, 1 - M), per sample, and f_c for monitoring.

    Returns:
        (f_c^l4, or the official code's hinge relu(kappa + margin) with kappa = ``config.destroy_confidence``;
        f_c detached), each (N,).
    """
    p = class_probability_from_logits(logits, classes, multi_label)
    if config.classification == "log":
        return p.clamp_min(1e-12).pow(config.l4), p.detach()
    return F.relu(config.destroy_confidence + _margin(logits, classes, multi_label)), p.detach()


def selector_loss(gate: torch.Tensor, is_real: torch.Tensor) -> torch.Tensor:
    """Feature-filter loss: max_ij gate should be 1 for real classes and 0 for fake ones.

    Binary cross-entropy on the spatial maximum of the gate sigmoid(X_ij . C_s).

    Args:
        gate: (N, h, w) in (0, 1).
        is_real: (N,) bool.

    Returns:
        (N,) per-sample loss.
    """
    top = gate.flatten(1).amax(1).clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(top, is_real.to(top.dtype), reduction="none")


def _classification_terms(
    black_box: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    classes: torch.Tensor,
    is_real: torch.Tensor,
    labels: torch.Tensor | None,
    alternatives: tuple[torch.Tensor, torch.Tensor],
    config: ObjectiveConfig,
    generator: Any,
    multi_label: bool | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The preserver and destroyer terms (and f_c of both images) per sample, from one black-box pass.

    Samples with a fake label get zeros, unless ``config.fake_targets == "reversed"``: their true class
    is then the target with the roles reversed (the authors' ``cw_loss`` with their targets).
    """
    n = len(images)
    reversed_fakes = config.fake_targets == "reversed"
    zero = images.new_zeros(n)
    active = torch.arange(n, device=images.device) if reversed_fakes else is_real.nonzero().squeeze(1)
    preserve, destroy, p_keep, p_drop = zero.clone(), zero.clone(), zero.clone(), zero.clone()
    if not len(active):
        return preserve, destroy, p_keep, p_drop
    target = torch.where(is_real, classes, labels.to(classes.device)) if reversed_fakes and labels is not None else classes
    x, m, c = images[active], masks[active], target[active]
    x_keep, x_drop = _noisy(x, config.image_noise_std, generator, active), _noisy(x, config.image_noise_std, generator, active)
    alt_keep, alt_drop = alternatives
    logits = black_box(torch.cat([apply_mask(x_keep, m, alt_keep[active]), apply_mask(x_drop, 1.0 - m, alt_drop[active])]))
    multi = bool(getattr(black_box, "multi_label", False)) if multi_label is None else multi_label
    pres, pk = preserve_term(logits[: len(active)], c, config, multi_label=multi)
    dest, pd = destroy_term(logits[len(active) :], c, config, multi_label=multi)
    if reversed_fakes:
        # A fake label: the true class must be absent from the kept image (relu(1 + margin)) and present
        # in the image with the mask removed (relu(1 - margin)).
        fake = ~is_real[active]
        pres = torch.where(fake, F.relu(1.0 + _margin(logits[: len(active)], c, multi)), pres)
        dest = torch.where(fake, F.relu(1.0 - _margin(logits[len(active) :], c, multi)), dest)
    preserve = preserve.index_put((active,), pres.to(zero.dtype))  # bf16/fp16 under autocast
    destroy = destroy.index_put((active,), dest.to(zero.dtype))
    p_keep = p_keep.index_put((active,), pk.to(zero.dtype))
    p_drop = p_drop.index_put((active,), pd.to(zero.dtype))
    return preserve, destroy, p_keep, p_drop


def saliency_objective(
    black_box: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    classes: torch.Tensor,
    *,
    is_real: torch.Tensor | None = None,
    masks_low: torch.Tensor | None = None,
    gate: torch.Tensor | None = None,
    config: ObjectiveConfig = ObjectiveConfig(),
    alternative: torch.Tensor | None = None,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    multi_label: bool | None = None,
    labels: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Evaluate eq. 4 per sample, with every term returned for logging.

    Args:
        black_box: (N, 3, H, W) in [0, 1] -> logits. f_c is sigmoid(z_c) when it has a true
            ``multi_label`` attribute, softmax otherwise.
        images: X, (N, 3, H, W) in [0, 1].
        masks: M at image resolution, (N, 1, H, W) in [0, 1].
        classes: c, (N,) long.
        is_real: (N,) bool; False marks a fake label (area term only). Default: all real.
        masks_low: M at the decoder's resolution for TV and AV (default: ``masks``).
        gate: Feature-filter gate (N, h, w), for the optional selector loss.
        config: Weights and choices.
        alternative: A; drawn with :func:`alternative_images` when None.
        generator: Random generator for A, or one per image (:func:`alternative_images`).
        multi_label: f_c = sigmoid(z_c) instead of the softmax; default: the black box's ``multi_label`` attribute.
        labels: True classes (N,), needed for fake labels when ``config.fake_targets == "reversed"``.

    Returns:
        Dict of (N,) tensors: ``tv``, ``area``, ``preserve`` (-log f_c(Phi(X, M)) or its hinge),
        ``destroy`` (f_c(Phi(X, 1 - M))^l4 or its hinge), ``selector``, ``total`` (the weighted sum
        with fake-label samples reduced to the area term), and ``p_preserve`` / ``p_destroy``
        (the probabilities, for monitoring), ``is_real``. With ``fake_targets="reversed"`` the
        terms of a fake-label sample are those of its true class (see :class:`ObjectiveConfig`).
    """
    n = len(images)
    is_real = torch.ones(n, dtype=torch.bool, device=images.device) if is_real is None else is_real.bool()
    reg = masks if masks_low is None else masks_low
    reversed_fakes = config.fake_targets == "reversed"
    if reversed_fakes and labels is None and not bool(is_real.all()):
        raise InputError("fake_targets='reversed' needs the true labels of fake-label samples: pass labels=.")
    if alternative is None:
        alternative = _draw_alternative(images, config, generator)
    alternative_destroy = _draw_alternative(images, config, generator) if config.separate_alternatives else alternative
    tv = smoothness_sum(masks, config.tv_border) if config.tv_form == "sum" else total_variation(reg)
    av = area(reg, config.area_power, config.area_eps)
    zero = images.new_zeros(n)
    preserve, destroy, p_keep, p_drop = _classification_terms(
        black_box, images, masks, classes, is_real, labels, (alternative, alternative_destroy), config, generator, multi_label
    )
    sel = selector_loss(gate, is_real) if (gate is not None and config.selector_weight > 0) else zero
    realf = torch.ones_like(zero) if reversed_fakes else is_real.to(images.dtype)
    total = config.l2 * av + realf * (config.l1 * tv + config.l0 * preserve + config.l3 * destroy) + config.selector_weight * sel
    return {
        "total": total,
        "tv": tv,
        "area": av,
        "preserve": preserve,
        "destroy": destroy,
        "selector": sel,
        "p_preserve": p_keep,
        "p_destroy": p_drop,
        "is_real": is_real,
    }


class SaliencyLoss(nn.Module):
    """``nn.Module`` wrapper of :func:`saliency_objective` holding the black box and the weights.

    ``loss(images, masks, classes, is_real=None, masks_low=None, gate=None)`` returns the batch
    mean of the total objective; ``loss.last_terms`` keeps the per-sample terms of the last call.
    """

    def __init__(self, black_box: nn.Module, config: ObjectiveConfig = ObjectiveConfig()) -> None:
        super().__init__()
        self.black_box = black_box
        self.config = config
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(
        self, images, masks, classes, is_real=None, masks_low=None, gate=None, generator=None, labels=None
    ) -> torch.Tensor:
        self.last_terms = saliency_objective(
            self.black_box,
            images,
            masks,
            classes,
            is_real=is_real,
            masks_low=masks_low,
            gate=gate,
            config=self.config,
            generator=generator,
            labels=labels,
        )
        return self.last_terms["total"].mean()

"""Per-image (iterative) optimisation of saliency masks, the paper's point of comparison.

Dabkowski & Gal (2017) train a masking model that outputs a mask in one forward pass. The
alternative they compare against (section 3, figure 2, and Fong & Vedaldi's "Mask" baseline of
Table 2) optimises a mask for each image separately with gradient descent through the frozen black
box. This module does that, batched: every image has its own mask parameters and the per-image
losses are *summed* over the batch, so the problems stay independent (Adam is element-wise).

Notation: X images (N, 3, H, W) in [0, 1], class c, f_c the black box's softmax probability of c,
A the alternative image (:func:`paperlib.objective.alternative_images`, drawn anew every
iteration), Phi(X, M) = X * M + A * (1 - M) (:func:`paperlib.objective.apply_mask`), TV and AV the
mean-normalised total variation and area of :mod:`paperlib.objective`.

Parameterisation: M = sigmoid(theta), theta of shape (N, 1, s, s) with s = ``mask_size``;
M is upsampled bilinearly to (H, W) for Phi, while TV and AV are computed on the low-resolution
mask (resizing a small mask is itself a smoothness prior, as the paper notes).

Modes of :func:`optimise_masks` (paper figure 2):

* ``"ssr"`` smallest sufficient region:  l1 TV(M) + l2 AV(M) - log f_c(Phi(X, M)).
* ``"sdr"`` smallest destroying region: the optimised mask D marks what to *remove*;
  l1 TV(D) + l2 AV(D) + l3 f_c(Phi(X, 1 - D))^l4. D (the salient region) is returned.
* ``"both"`` the paper's eq. 4:  l1 TV(M) + l2 AV(M) - log f_c(Phi(X, M)) + l3 f_c(Phi(X, 1 - M))^l4.
* ``"fong"`` Fong & Vedaldi's (2017) "meaningful perturbation" deletion game, the Table 2 "Mask"
  baseline: M = 1 keeps, A = blurred X (no random colour, not redrawn),
  fv_l1 mean|1 - M| + fv_tv TV_beta(M) + f_c(Phi(X, M)),
  TV_beta(M) = mean_ij |M_ij - M_i,j+1|^beta + mean_ij |M_ij - M_i+1,j|^beta, beta = 3.
  The deleted region 1 - M is returned as the saliency map.

Normalisation of "fong" (our choice, documented): F&V publish lambda1 = 1e-4 (L1) and
lambda2 = 1e-2 (TV), beta = 3, a 28 x 28 mask upsampled to 224, Adam with lr 0.1 for 300
iterations and a Gaussian blur of sigma 10 px, but not whether the norms are sums or means nor at
which resolution TV is taken. Our terms are *means* over the 28 x 28 mask; read as sums over it,
the published values would become fv_l1 = 1e-4 * 784 = 0.078 and fv_tv = 1e-2 * 756 = 7.56, read
as a TV sum over the upsampled 224 x 224 mask fv_tv would be about 0.95, and a widely used PyTorch
port (mean-normalised, as here) uses 0.01 and 0.2. The defaults, fv_l1 = 0.05 and fv_tv = 0.2,
are our normalisation within that range; both are keyword parameters. F&V start from M = 1 (all
kept); we start from M = 0.5 as in the other modes (``init``), because near M = 1 a confident
black box's f_c is saturated (gradient f_c (1 - f_c) ~ 0) and the L1 term pulls M to 1 before the
class term acts (observed on the toy black box of the tests with init = 0.95).

:func:`adversarial_mask` reproduces the paper's figure 3: the *unregularised* optimisation of a
full-resolution mask with A = 0 (plain X * M) finds a nearly imperceptible mask that destroys
the class: adversarial artifacts, the reason for the regularisers above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..core._common import (
    check_classes,
    check_images,
    class_log_probability,
    class_probability_from_logits,
    frozen,
    module_device,
)
from ..core.errors import InputError
from ..core.objective import (
    ObjectiveConfig,
    alternative_images,
    apply_mask,
    area,
    destroy_term,
    gaussian_blur,
    preserve_term,
    saliency_objective,
    total_variation,
)

__all__ = [
    "MODES",
    "AdversarialResult",
    "optimise_masks",
    "optimize_masks",
    "adversarial_mask",
    "class_probability",
]

MODES = ("ssr", "sdr", "both", "fong")

ClassesLike = Union[torch.Tensor, Sequence[int], int]


class AdversarialResult(NamedTuple):
    """Result of :func:`adversarial_mask`.

    Attributes:
        masks: (N, 1, H, W) in [0, 1], the optimised mask M (1 = keep).
        prob_before: (N,) f_c(X), the class probability of the unmasked images.
        prob_after: (N,) f_c(X * M), the class probability after applying the mask.
        mean_change: (N,) mean_ij |1 - M_ij|, how much of the image the mask changed.
    """

    masks: torch.Tensor
    prob_before: torch.Tensor
    prob_after: torch.Tensor
    mean_change: torch.Tensor


# --------------------------------------------------------------------------- helpers


def _check_black_box(black_box: nn.Module) -> None:
    if not isinstance(black_box, nn.Module):
        raise InputError(
            f"black_box must be a torch.nn.Module mapping (N, 3, H, W) images in [0, 1] to logits, "
            f"got {type(black_box).__name__}."
        )


def _prepare(black_box: nn.Module, images: torch.Tensor, classes: ClassesLike) -> tuple[torch.Tensor, torch.Tensor, torch.device]:
    """Validate the inputs; return (images on the black box's device, classes, input device)."""
    _check_black_box(black_box)
    check_images(images)
    if len(images) == 0:
        raise InputError("images is an empty batch (N = 0); pass at least one image.")
    device = module_device(black_box, images.device)
    x = images.detach().to(device)
    return x, check_classes(classes, len(x), device), images.device


def _check_num_classes(logits: torch.Tensor, classes: torch.Tensor) -> None:
    """Check that ``logits`` is a (n, K) tensor and every class lies in [0, K)."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(f"The black box must return logits of shape (N, num_classes); got {shape}.")
    k = logits.shape[1]
    if bool((classes >= k).any()):
        raise InputError(f"classes must lie in [0, {k - 1}] for this black box ({k} classes), got {classes.tolist()}.")


def _check_logits(logits: torch.Tensor, classes: torch.Tensor) -> None:
    _check_num_classes(logits, classes)
    if logits.shape[0] != len(classes):
        raise InputError(f"The black box returned {logits.shape[0]} rows of logits for {len(classes)} images.")


def _probability(black_box: nn.Module, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    logits = black_box(images)
    _check_logits(logits, classes)
    return class_probability_from_logits(logits, classes)


def _tv_beta(masks: torch.Tensor, beta: float) -> torch.Tensor:
    """Fong & Vedaldi's TV_beta(M) = mean |dM/dx|^beta + mean |dM/dy|^beta, per image: (N,)."""
    n = len(masks)
    dx = (
        (masks[..., :, 1:] - masks[..., :, :-1]).abs().pow(beta).flatten(1).mean(1) if masks.shape[-1] > 1 else masks.new_zeros(n)
    )
    dy = (
        (masks[..., 1:, :] - masks[..., :-1, :]).abs().pow(beta).flatten(1).mean(1) if masks.shape[-2] > 1 else masks.new_zeros(n)
    )
    return dx + dy


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class _Adam:
    """Adam (Kingma & Ba 2015) on one tensor, same update as ``torch.optim.Adam`` with its defaults.

    Written out because constructing any ``torch.optim`` optimiser imports ``torch._dynamo``,
    which takes seconds on a busy machine and dominated the run time of small problems.
    """

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        grad = self.param.grad
        if grad is None:
            return
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v / (1 - b2**self.t)).sqrt_().add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / (1 - b1**self.t))
        self.param.grad = None


# --------------------------------------------------------------------------- public API


def class_probability(black_box: nn.Module, images: torch.Tensor, classes: ClassesLike) -> torch.Tensor:
    """Softmax probability f_c(X) of the requested class, without gradients.

    Args:
        black_box: Module mapping (N, 3, H, W) images in [0, 1] to (N, K) logits.
        images: (N, 3, H, W) in [0, 1].
        classes: (N,) integer class indices, or one int for every image.

    Returns:
        (N,) probabilities on the device of ``images``.

    Raises:
        InputError: Malformed images or classes, or a class outside the black box's range.
    """
    x, cls, out_device = _prepare(black_box, images, classes)
    with torch.no_grad(), frozen(black_box):
        return _probability(black_box, x, cls).to(out_device)


def _descend(
    black_box: nn.Module,
    x: torch.Tensor,
    cls: torch.Tensor,
    theta: torch.Tensor,
    mode: str,
    iterations: int,
    lr: float,
    config: ObjectiveConfig,
    fong: dict[str, float],
    generator: torch.Generator | None,
    progress: bool,
) -> dict[str, list[torch.Tensor]]:
    """The Adam steps of :func:`optimise_masks` on the mask logits ``theta`` (in place); returns the history."""
    h, w = x.shape[-2:]
    history: dict[str, list[torch.Tensor]] = {}
    with torch.enable_grad(), frozen(black_box):
        with torch.no_grad():  # fail early on malformed logits or a class out of range
            _check_num_classes(black_box(x[:1]), cls)
        blurred = gaussian_blur(x, fong["blur_sigma"] * h / 224.0) if mode == "fong" else None
        optimizer = _Adam(theta, lr)
        bar = tqdm(range(iterations), desc=f"optimise_masks[{mode}]", disable=not progress, leave=False)
        for _ in bar:
            m_low = torch.sigmoid(theta)
            m = _upsample(m_low, (h, w))
            if mode == "fong":
                terms = _fong_terms(black_box, x, m, m_low, cls, blurred, fong)
            else:
                alt = alternative_images(
                    x, p_blur=config.p_blur, blur_sigma=config.blur_sigma, noise_std=config.noise_std, generator=generator
                )
                terms = _paper_terms(mode, black_box, x, m, m_low, cls, alt, config)
            for key, value in terms.items():  # no host sync per step: stacked at the end
                history.setdefault(key, []).append(value.detach().mean())
            terms["total"].sum().backward()
            optimizer.step()
            if progress:
                bar.set_postfix(loss=f"{float(history['total'][-1]):.4f}", refresh=False)
    return history


def optimise_masks(
    black_box: nn.Module,
    images: torch.Tensor,
    classes: ClassesLike,
    *,
    mode: str = "ssr",
    iterations: int = 300,
    lr: float = 0.1,
    mask_size: int | None = 28,
    config: ObjectiveConfig | None = None,
    init: float = 0.5,
    generator: torch.Generator | None = None,
    progress: bool = False,
    return_history: bool = False,
    fv_l1: float = 0.05,
    fv_tv: float = 0.2,
    fv_beta: float = 3.0,
    fv_blur_sigma: float = 10.0,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Optimise one saliency mask per image by gradient descent through the frozen black box.

    M = sigmoid(theta), theta (N, 1, s, s) with s = ``mask_size``, optimised with Adam; M is
    upsampled bilinearly to (H, W) for Phi(X, M) = X * M + A * (1 - M), TV and AV are taken on the
    s x s mask. The per-image losses are summed over the batch, so images do not interact.

    Objectives: the four modes of the module docstring (``"ssr"``, ``"sdr"``, ``"both"`` = eq. 4 by
    :func:`~paperlib.objective.saliency_objective`, ``"fong"`` = Fong & Vedaldi's deletion game,
    which returns 1 - M); weights l1..l4 and the area's power/eps from ``config``; A drawn anew
    every iteration with :func:`~paperlib.objective.alternative_images`. With
    ``config.classification == "hinge"`` the class terms of the first three modes are the official
    code's hinge losses, as in :mod:`paperlib.objective`.

    Args:
        black_box: Frozen classifier, (N, 3, H, W) in [0, 1] -> (N, K) logits; not modified (its
            ``requires_grad`` flags and train/eval mode are restored on exit).
        images: X, (N, 3, H, W) in [0, 1].
        classes: (N,) integer classes c, or one int for every image.
        mode: ``"ssr"``, ``"sdr"``, ``"both"`` or ``"fong"``.
        iterations: Adam steps (>= 1).
        lr: Adam learning rate on the mask logits theta.
        mask_size: Side s of the optimised mask; ``None`` optimises at image resolution (H, W).
        config: Weights of the paper's objective; default :class:`ObjectiveConfig()` (eq. 4 as printed).
        init: Initial value in (0, 1) of the optimised mask variable (M, or D for "sdr").
        generator: CPU random generator for the alternative images.
        progress: Show a tqdm progress bar.
        return_history: Also return the per-iteration batch means of the objective's terms.
        fv_l1, fv_tv, fv_beta, fv_blur_sigma: "fong" weights of mean |1 - M| and of TV_beta(M) (our
            normalisation of F&V's lambda1 and lambda2), TV exponent beta (F&V: 3) and blur sigma in
            pixels at 224 px, scaled with H (F&V: 10).

    Returns:
        Saliency masks (N, 1, H, W) in [0, 1] (1 = salient), detached, on ``images``' device; with
        ``return_history`` also ``{term: (iterations,) batch means}``: ``"total"``, ``"tv"``, ``"area"``,
        ``"preserve"``/``"p_preserve"`` (ssr, both), ``"destroy"``/``"p_destroy"`` (sdr, both), for
        "fong" ``"l1"``, ``"tv"``, ``"prob"``; probabilities as seen at each step, before the update.

    Raises:
        InputError: Malformed images or classes, an unknown mode, or invalid settings.

    Example:
        >>> import torch
        >>> from paperlib.core.classifiers import BlackBox
        >>> toy = BlackBox(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2)), name="toy",
        ...                num_classes=2, input_size=8, normalize=lambda x: x)
        >>> optimise_masks(toy, torch.rand(1, 3, 8, 8), 0, mode="both", iterations=2, mask_size=4).shape
        torch.Size([1, 1, 8, 8])
    """
    config = _check_settings(mode, iterations, lr, mask_size, init, config, (fv_l1, fv_tv, fv_beta, fv_blur_sigma))
    x, cls, out_device = _prepare(black_box, images, classes)
    n, _, h, w = x.shape
    low = (h, w) if mask_size is None else (mask_size, mask_size)
    theta = torch.full((n, 1, *low), _logit(float(init)), device=x.device, dtype=x.dtype).requires_grad_(True)
    fong = {"l1": fv_l1, "tv": fv_tv, "beta": fv_beta, "blur_sigma": fv_blur_sigma}
    history = _descend(black_box, x, cls, theta, mode, iterations, lr, config, fong, generator, progress)
    with torch.no_grad():
        m = _upsample(torch.sigmoid(theta), (h, w))
        masks = ((1.0 - m) if mode == "fong" else m).clamp(0.0, 1.0).detach().to(out_device)
    if return_history:
        return masks, {k: torch.stack(v).cpu() for k, v in history.items()}
    return masks


#: Old (American) spelling of :func:`optimise_masks`, kept as an alias.
optimize_masks = optimise_masks


def _upsample(m_low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The optimised mask at image resolution (bilinear), or itself when it already is."""
    if tuple(m_low.shape[-2:]) == tuple(size):
        return m_low
    return F.interpolate(m_low, size=size, mode="bilinear", align_corners=False)


def _check_settings(
    mode: str, iterations: Any, lr: Any, mask_size: Any, init: Any, config: Any, fong: tuple[Any, Any, Any, Any]
) -> ObjectiveConfig:
    """Validate the settings of :func:`optimise_masks`; returns the objective (default ``ObjectiveConfig()``)."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(repr(m) for m in MODES)}, got {mode!r}.")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise InputError(f"iterations must be a positive int, got {iterations!r}.")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise InputError(f"lr must be a positive number, got {lr!r}.")
    if mask_size is not None and (isinstance(mask_size, bool) or not isinstance(mask_size, int) or mask_size < 1):
        raise InputError(f"mask_size must be a positive int or None, got {mask_size!r}.")
    if not (isinstance(init, (int, float)) and 0.0 < init < 1.0):
        raise InputError(f"init must lie strictly between 0 and 1 (M = sigmoid(theta)), got {init!r}.")
    if config is None:
        config = ObjectiveConfig()
    if not isinstance(config, ObjectiveConfig):
        raise InputError(f"config must be a paperlib.objective.ObjectiveConfig, got {type(config).__name__}.")
    fv_l1, fv_tv, fv_beta, fv_blur_sigma = fong
    for name, value in (("fv_l1", fv_l1), ("fv_tv", fv_tv), ("fv_blur_sigma", fv_blur_sigma)):
        if not (isinstance(value, (int, float)) and value >= 0):
            raise InputError(f"{name} must be a non-negative number, got {value!r}.")
    if not (isinstance(fv_beta, (int, float)) and fv_beta > 0):
        raise InputError(f"fv_beta must be positive, got {fv_beta!r}.")
    return config


def _fong_terms(
    black_box: nn.Module,
    x: torch.Tensor,
    m: torch.Tensor,
    m_low: torch.Tensor,
    cls: torch.Tensor,
    blurred: torch.Tensor | None,
    fong: dict[str, float],
) -> dict[str, torch.Tensor]:
    """Fong & Vedaldi's deletion game: fv_l1 mean|1 - M| + fv_tv TV_beta(M) + f_c(Phi(X, M)), per image."""
    assert blurred is not None
    prob = class_probability_from_logits(black_box(apply_mask(x, m, blurred)), cls)
    l1 = area(1.0 - m_low)  # mean |1 - M|, M in [0, 1]
    tv = _tv_beta(m_low, fong["beta"])
    return {"total": fong["l1"] * l1 + fong["tv"] * tv + prob, "l1": l1, "tv": tv, "prob": prob}


def _paper_terms(
    mode: str,
    black_box: nn.Module,
    x: torch.Tensor,
    m: torch.Tensor,
    m_low: torch.Tensor,
    cls: torch.Tensor,
    alt: torch.Tensor,
    config: ObjectiveConfig,
) -> dict[str, torch.Tensor]:
    """The terms of the SSR, SDR or eq. 4 (``"both"``) objective, per image, from :mod:`paperlib.core.objective`."""
    if mode == "both":
        terms = saliency_objective(black_box, x, m, cls, masks_low=m_low, config=config, alternative=alt)
        return {k: terms[k] for k in ("total", "tv", "area", "preserve", "destroy", "p_preserve", "p_destroy")}
    tv = total_variation(m_low)
    av = area(m_low, config.area_power, config.area_eps)
    if mode == "ssr":
        pres, p = preserve_term(black_box(apply_mask(x, m, alt)), cls, config)
        return {"total": config.l1 * tv + config.l2 * av + pres, "tv": tv, "area": av, "preserve": pres, "p_preserve": p}
    # sdr: D = m marks the removed region
    dest, p = destroy_term(black_box(apply_mask(x, 1.0 - m, alt)), cls, config)
    return {"total": config.l1 * tv + config.l2 * av + config.l3 * dest, "tv": tv, "area": av, "destroy": dest, "p_destroy": p}


def adversarial_mask(
    black_box: nn.Module,
    images: torch.Tensor,
    classes: ClassesLike,
    *,
    iterations: int = 100,
    lr: float = 0.05,
    target: str = "remove",
    progress: bool = False,
) -> AdversarialResult:
    """The paper's figure 3: an unregularised mask at full resolution produces adversarial artifacts.

    M = sigmoid(theta) of shape (N, 1, H, W), theta initialised to 3 (M ~ 0.95), applied as plain
    X * M (A = 0, black), with no TV, no area term and no resizing, optimised with Adam:

    * ``target="remove"`` minimises f_c(X * M): nothing stops the mask from exploiting the
      classifier's sensitivity, so it destroys the class while changing the image very little
      (``mean_change``), instead of removing the object.
    * ``target="keep"`` minimises -log f_c(X * M), i.e. raises the class probability: with the
      image's own class the mask *adds* evidence; with another class it is a targeted attack.

    Args:
        black_box: Frozen classifier, (N, 3, H, W) in [0, 1] -> (N, K) logits (not modified).
        images: X, (N, 3, H, W) in [0, 1].
        classes: (N,) integer classes c, or one int for every image.
        iterations: Adam steps (>= 1).
        lr: Adam learning rate on theta.
        target: ``"remove"`` or ``"keep"``.
        progress: Show a tqdm progress bar.

    Returns:
        :class:`AdversarialResult` (masks (N, 1, H, W), prob_before (N,), prob_after (N,),
        mean_change (N,) = mean |1 - M|), detached, on the device of ``images``.

    Raises:
        InputError: Malformed images or classes, an unknown target or invalid settings.
    """
    if target not in ("remove", "keep"):
        raise InputError(f"target must be 'remove' or 'keep', got {target!r}.")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise InputError(f"iterations must be a positive int, got {iterations!r}.")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise InputError(f"lr must be a positive number, got {lr!r}.")
    x, cls, out_device = _prepare(black_box, images, classes)
    theta = torch.full((len(x), 1, *x.shape[-2:]), 3.0, device=x.device, dtype=x.dtype, requires_grad=True)
    with torch.enable_grad(), frozen(black_box):
        with torch.no_grad():
            before = _probability(black_box, x, cls)
        optimizer = _Adam(theta, lr)
        for _ in tqdm(range(iterations), desc=f"adversarial_mask[{target}]", disable=not progress, leave=False):
            logits = black_box(x * torch.sigmoid(theta))
            if target == "remove":
                loss = class_probability_from_logits(logits, cls)
            else:
                loss = -class_log_probability(logits, cls)
            loss.sum().backward()
            optimizer.step()
        with torch.no_grad():
            m = torch.sigmoid(theta)
            after = _probability(black_box, x * m, cls)
    return AdversarialResult(
        masks=m.detach().to(out_device),
        prob_before=before.to(out_device),
        prob_after=after.to(out_device),
        mean_change=(1.0 - m).abs().flatten(1).mean(1).detach().to(out_device),
    )

"""Extremal perturbations: compact smallest sufficient / destroying regions of a fixed area.

The per-image optimisation of :mod:`paperlib.experiments.iterative` follows the paper's soft
regularisers (TV and a mean-area term) and, on real black boxes, tends to return grey masks
(values near 0.5 everywhere) that do not show a region. Fong, Patrick & Vedaldi (ICCV 2019,
"Understanding deep networks via extremal perturbations and smooth masks"; TorchRay's
``torchray.attribution.extremal_perturbation``) obtain compact masks by replacing the soft
regularisers with a *smooth parameterisation* and a *hard area constraint*. This module implements
that recipe (written from the paper and TorchRay's documented algorithm) for the two regions of
the paper's figure 2:

* SSR, smallest sufficient region: keep the region, blur the rest, the class must survive;
* SDR, smallest destroying region: blur the region, keep the rest, the class must die.

Notation: X images (N, 3, H, W) in [0, 1], class c, z the black box's logits, s_c the class score
(default the contrastive margin z_c - max_{k != c} z_k, see :class:`ExtremalConfig`), A the
alternative image (X blurred as the project's alternative, :func:`paperlib.objective.gaussian_blur`
with sigma = 10 px at 224 px, or black), Phi(X, M) = X * M + A * (1 - M)
(:func:`paperlib.objective.apply_mask`).

Smooth parameterisation (TorchRay's ``MaskGenerator``). Parameters p = sigmoid(theta) in (0, 1) sit
at the centres c_i of a coarse g x g grid over the image; the mask at a point u (in grid cells) is
the smooth maximum of the kernel-weighted parameters around it:

    m(u)    = smax_{i : |u - c_i| <= R} k(|u - c_i| / sigma) p_i,
    smax(z) = sum_i z_i exp(tau z_i) / sum_j exp(tau z_j)          (tau = 20, a soft maximum)
    k(t)    = exp(-2 max(t - 1/2, 0)^2)                           (flat top, Gaussian fall-off)

with sigma = ``smooth`` grid cells and R = min(ceil(2 sigma), g) (k(2) = 0.011). The grid is padded
by replication, so a constant p gives a constant m up to the border. Values lie in [0, 1] by
construction. A maximum, not a sum, of bumps: one parameter at 1 makes a round blob of radius
about 1.1 sigma at the 0.5 level, so the mask cannot be finer than the kernel (no high-frequency
adversarial pattern) and its level sets are unions of such blobs. m is evaluated at
``samples_per_cell`` points per cell and axis, (g s) x (g s), and upsampled bilinearly to (H, W).

Hard area constraint. With P = (g s)^2 mask samples and r_a the reference vector holding
(1 - a) P zeros followed by a P ones (a = target area),

    R_a(m) = (1/P) ||sort(vec(m)) - r_a||^2,

zero exactly for a binary mask of area a. Its weight grows geometrically over the T iterations,
lambda_t = lambda_0 * growth^(t / (T - 1)) (defaults 10 -> 500), so that the class term places the
region while lambda is small and the constraint squeezes it to area a at the end.

Objectives (summed over the batch; every image and area has its own parameters):

    ssr:   min_theta  -s_c(Phi(X, m)) + lambda_t R_a(m)                    (m: region kept)
    sdr:   min_theta   s_c(Phi(X, 1 - m)) + lambda_t R_a(m)                (m: region removed)
    both:  min_theta  -s_c(Phi(X, m)) + s_c(Phi(X, 1 - m)) + lambda_t R_a(m)   (TorchRay's "dual")

The perturbed image is flipped horizontally every other iteration (``jitter``, as TorchRay).

Optimiser: Adam whose second moment is *shared by the cells of each mask* (one RMS per mask): the
step is in units of theta whatever the scale of the black box's logits, while the cells keep their
relative rates. Plain Adam moves every cell at the same speed, and projected SGD on p in [0, 1]
(TorchRay) lets the cells that the class term favours saturate at 1, where they tie; the sort in
R_a then breaks the ties arbitrarily and the region lands off the evidence (both observed on the
planted-square black box of the tests; the sigmoid keeps the ordering).

Deviations from TorchRay, by choice: the sigmoid parameterisation and the optimiser above; a lambda
schedule from 10 to 500 over 300 iterations instead of 300 x 1.0035^t over 800 (on EfficientNet-Lite0
the class term then decides the region for about the first half of the run, and a final lambda of
5000 squeezed out the soft edge of the region together with the evidence: kept probability 0.06
instead of 0.6 on the cat photograph at a = 0.1); the project's single blurred alternative mixed
linearly instead of an 8-level blur pyramid of sigma <= 20 px; a circular truncation of the kernel;
the area taken over the image only (no margin).

>>> import torch
>>> from paperlib.core.classifiers import BlackBox
>>> toy = BlackBox(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 2)), name="toy",
...                num_classes=2, input_size=16, normalize=lambda x: x)
>>> extremal_masks(toy, torch.rand(2, 3, 16, 16), 0, areas=(0.1, 0.2), iterations=2, grid=4, smooth=1.0).shape
torch.Size([2, 2, 1, 16, 16])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from ..core._common import class_log_probability, frozen
from ..core.errors import InputError
from ..core.objective import apply_mask, gaussian_blur

# Shared with the other per-image optimisation (same layer): the input checks.
from .iterative import _check_num_classes, _prepare

__all__ = [
    "MODES",
    "ALTERNATIVES",
    "REWARDS",
    "PARAMS",
    "ExtremalConfig",
    "MaskGenerator",
    "RegionSweep",
    "area_penalty",
    "extremal_masks",
    "smallest_regions",
    "regions_result",
    "regions_markdown",
    "regions_summary",
]

MODES = ("ssr", "sdr", "both")
ALTERNATIVES = ("blur", "fade")
REWARDS = ("contrastive", "logit", "log_prob")
PARAMS = ("sigmoid", "clamp")

ClassesLike = Union[torch.Tensor, Sequence[int], int]


@dataclass(frozen=True)
class ExtremalConfig:
    """The settings of :func:`extremal_masks` that rarely need changing.

    Attributes:
        area_weight: lambda_0, the initial weight of the area constraint R_a (TorchRay: 300, for a
            penalty averaged over ~20 x more pixels per parameter cell).
        area_growth: lambda_T / lambda_0, the growth of that weight over the whole run (TorchRay:
            1.0035^800 = 16.4 over its 800 iterations).
        coldness: tau of the smooth maximum (TorchRay: 20; larger is closer to a hard max).
        samples_per_cell: s, mask samples per grid cell and axis before the bilinear upsampling to
            (H, W): 2 already resolves the smallest blob (radius ~ 1.1 sigma cells) and lies
            symmetrically about the cell centres (a constant p gives an exactly constant m).
        init: Initial value of the parameters p (TorchRay: 1, "keep everything"); 0.5 starts every
            cell half-way, unsaturated.
        init_noise: Half-width of the uniform noise added to theta = logit(init) (drawn with
            ``generator``); it breaks the ties of the sort in R_a between equal cells.
        blur_sigma: Sigma of the blurred alternative in pixels at 224 px, scaled with H (the
            project's ``ObjectiveConfig.blur_sigma``: 10).
        jitter: Flip the perturbed images horizontally every other iteration (TorchRay: on).
        reward: The class score s_c the objective raises (ssr) or lowers (sdr):
            ``"contrastive"`` z_c - max_{k != c} z_k (TorchRay's ``contrastive_reward``; z_c for a
            multi-label black box), ``"logit"`` z_c (its ``simple_reward``) or ``"log_prob"``
            log f_c (log-sigmoid for a multi-label black box). log f_c saturates: with half of
            every pixel kept (the start) a confident black box already has f_c ~ 1, its gradient
            vanishes and the area term alone places the mask (observed on the planted-square black
            box of the tests); the margin does not.
        betas: (b1, b2) of the optimiser (b2 short, as lambda grows ~1.3 % per iteration).
        param: ``"sigmoid"`` p = sigmoid(theta) (default) or ``"clamp"`` p = theta projected on
            [0, 1] after each step (TorchRay's; see the module docstring for why not).
    """

    area_weight: float = 10.0
    area_growth: float = 50.0
    coldness: float = 20.0
    samples_per_cell: int = 2
    init: float = 0.5
    init_noise: float = 0.01
    blur_sigma: float = 10.0
    jitter: bool = True
    reward: str = "contrastive"
    betas: tuple[float, float] = (0.9, 0.9)
    param: str = "sigmoid"

    def __post_init__(self) -> None:
        if self.reward not in REWARDS:
            raise InputError(f"ExtremalConfig.reward must be one of {', '.join(repr(r) for r in REWARDS)}, got {self.reward!r}.")
        for name in ("area_weight", "coldness", "blur_sigma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
                raise InputError(f"ExtremalConfig.{name} must be a non-negative number, got {value!r}.")
        if not (isinstance(self.area_growth, (int, float)) and math.isfinite(self.area_growth) and self.area_growth > 0):
            raise InputError(f"ExtremalConfig.area_growth must be a positive number, got {self.area_growth!r}.")
        if self.param not in PARAMS:
            raise InputError(f"ExtremalConfig.param must be one of {', '.join(repr(r) for r in PARAMS)}, got {self.param!r}.")
        b = self.betas
        if not (isinstance(b, tuple) and len(b) == 2 and all(isinstance(v, (int, float)) and 0.0 <= v < 1.0 for v in b)):
            raise InputError(f"ExtremalConfig.betas must be two numbers in [0, 1), got {b!r}.")
        spc = self.samples_per_cell
        if isinstance(spc, bool) or not isinstance(spc, int) or spc < 1:
            raise InputError(f"ExtremalConfig.samples_per_cell must be a positive int, got {spc!r}.")
        if not (isinstance(self.init, (int, float)) and 0.0 <= self.init <= 1.0):
            raise InputError(f"ExtremalConfig.init must lie in [0, 1], got {self.init!r}.")
        if not (isinstance(self.init_noise, (int, float)) and 0.0 <= self.init_noise <= 0.5):
            raise InputError(f"ExtremalConfig.init_noise must lie in [0, 0.5], got {self.init_noise!r}.")


def _kernel(t: torch.Tensor) -> torch.Tensor:
    """k(t) = exp(-2 max(t - 1/2, 0)^2): 1 up to half a sigma, then a Gaussian fall-off."""
    return torch.exp(-2.0 * (t - 0.5).clamp(min=0.0) ** 2)


def _offsets(samples: int, spc: int, radius: int) -> torch.Tensor:
    """Signed distances in grid cells (2R + 1, samples) from each of ``samples`` points along one
    axis (``spc`` per cell) to the cells at offsets -R..R from the cell holding it."""
    v = torch.arange(samples, dtype=torch.float64)
    pos = (v + 0.5) / spc - 0.5  # grid units: cell centres at 0, 1, ..., g - 1
    cell = torch.div(v, spc, rounding_mode="floor")[None, :] + torch.arange(-radius, radius + 1, dtype=torch.float64)[:, None]
    return pos[None, :] - cell


class MaskGenerator:
    """The smooth-max parameterisation m = G(p) of the module docstring (no trainable state).

    The mask is evaluated on a (g s) x (g s) grid, s = ``samples_per_cell`` points per cell and axis:
    each point looks at the (2R + 1)^2 cells around its own (``F.unfold`` of the parameters, then a
    nearest-neighbour upsampling by s), weighs them by the precomputed k(|u - c_i| / sigma) and takes
    their smooth maximum. Cost: (2R + 1)^2 (g s)^2 per mask and iteration.

    Args:
        grid: g, the side of the parameter grid.
        smooth: sigma of the kernel, in grid cells.
        samples_per_cell: s.
        coldness: tau of the smooth maximum.
        device, dtype: Where the kernel weights live.

    Shape:
        - Input: p, (B, 1, g, g) in [0, 1].
        - Output: m, (B, 1, g s, g s) in [0, 1].
    """

    def __init__(
        self,
        grid: int,
        smooth: float,
        samples_per_cell: int = 2,
        coldness: float = 20.0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.grid, self.spc, self.coldness = grid, samples_per_cell, coldness
        self.radius = r = max(1, min(math.ceil(2.0 * smooth), grid))
        d = _offsets(grid * samples_per_cell, samples_per_cell, r)  # (2R + 1, g s), same along both axes
        dist = torch.sqrt(d[:, None, :, None] ** 2 + d[None, :, None, :] ** 2).flatten(0, 1)  # (K, g s, g s)
        inside = dist <= r  # a disc, not the square window: isotropic blobs
        self.weight = (_kernel(dist / smooth) * inside).to(device, dtype)
        # log of the indicator: cells beyond R take no part in the soft maximum
        self.log_inside = torch.where(inside, 0.0, float("-inf")).to(device, dtype)

    def __call__(self, params: torch.Tensor) -> torch.Tensor:
        b, r, g = len(params), self.radius, self.grid
        # replicated beyond the image: a constant p gives a constant m, borders included (zero padding
        # would raise the border, whose soft maximum has fewer intermediate neighbours to average)
        padded = F.pad(params, (r, r, r, r), mode="replicate")
        p = F.unfold(padded, 2 * r + 1).view(b, -1, g, g)  # (B, K, g, g)
        p = F.interpolate(p, scale_factor=self.spc, mode="nearest")  # (B, K, g s, g s)
        z = p * self.weight  # k(|u - c_i| / sigma) p_i
        m = (z * torch.softmax(self.coldness * z + self.log_inside, dim=1)).sum(1, keepdim=True)
        return m.clamp(0.0, 1.0)


def area_penalty(masks: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """R_a(m) = mean_j (sort(vec(m))_j - r_j)^2 per mask.

    Args:
        masks: (B, 1, h, w) in [0, 1].
        reference: (B, h * w) sorted references r_a (zeros, then round(a h w) ones).

    Returns:
        (B,); 0 exactly for a binary mask of the reference's area.
    """
    return (masks.flatten(1).sort(dim=1).values - reference).pow(2).mean(1)


def _reference(areas: Sequence[float], n: int, count: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n * len(areas), count): image-major rows of r_a, (1 - a) count zeros then a count ones."""
    rows = torch.zeros(len(areas), count, device=device, dtype=dtype)
    for k, a in enumerate(areas):
        ones = int(round(a * count))
        if ones:
            rows[k, count - ones :] = 1.0
    return rows.repeat(n, 1)


class _SharedAdam:
    """Adam whose second moment is shared by all the cells of one mask (optionally then clamp to [0, 1]).

    m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) mean_cells(g^2),  theta <- theta - lr m^ / (sqrt(v^) + eps)
    (^: bias-corrected; m per cell, v one number per mask). The division by one number per mask
    makes lr a step size whatever the scale of the black box's logits, while the cells keep their
    relative rates: plain Adam rescales every cell on its own, all cells move at the same speed and
    the ranking that the class term gives them, which decides where the area constraint puts the
    region, is lost.
    """

    def __init__(
        self, param: torch.Tensor, lr: float, betas: tuple[float, float], clamp: bool = True, eps: float = 1e-12
    ) -> None:
        self.param, self.lr, self.betas, self.eps, self.t, self.clamp = param, lr, betas, eps, 0, clamp
        self.m = torch.zeros_like(param)
        self.v = param.new_zeros(len(param), *([1] * (param.ndim - 1)))

    @torch.no_grad()
    def __call__(self, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).add_(grad.pow(2).flatten(1).mean(1).view_as(self.v), alpha=1 - b2)
        denom = (self.v / (1 - b2**self.t)).sqrt_().add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / (1 - b1**self.t))
        if self.clamp:
            self.param.clamp_(0.0, 1.0)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1.0 - 1e-4)
    return math.log(p / (1.0 - p))


def _check_settings(
    mode: object,
    areas: object,
    iterations: object,
    grid: object,
    smooth: object,
    lr: object,
    alternative: object,
    generator: object,
    config: object,
) -> tuple[tuple[float, ...], ExtremalConfig]:
    """Validate the settings of :func:`extremal_masks`; returns (areas as a tuple, config)."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(repr(m) for m in MODES)}, got {mode!r}.")
    if isinstance(areas, (int, float)) and not isinstance(areas, bool):
        areas = (areas,)
    if not isinstance(areas, Sequence) or isinstance(areas, str) or len(areas) == 0:
        raise InputError(f"areas must be a non-empty sequence of fractions in (0, 1), got {areas!r}.")
    for a in areas:
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 < a < 1.0:
            raise InputError(f"every area must be a fraction of the image strictly between 0 and 1, got {a!r}.")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise InputError(f"iterations must be a positive int, got {iterations!r}.")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise InputError(f"grid must be an int >= 2 (cells per side of the parameter grid), got {grid!r}.")
    if isinstance(smooth, bool) or not isinstance(smooth, (int, float)) or not (math.isfinite(smooth) and smooth > 0):
        raise InputError(f"smooth must be a positive number (kernel sigma in grid cells), got {smooth!r}.")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise InputError(f"lr must be a positive number, got {lr!r}.")
    if alternative not in ALTERNATIVES:
        raise InputError(f"alternative must be one of {', '.join(repr(a) for a in ALTERNATIVES)}, got {alternative!r}.")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InputError(f"generator must be a torch.Generator or None, got {type(generator).__name__}.")
    if config is None:
        config = ExtremalConfig()
    if not isinstance(config, ExtremalConfig):
        raise InputError(f"config must be an ExtremalConfig, got {type(config).__name__}.")
    return tuple(float(a) for a in areas), config


def _class_terms(
    black_box: nn.Module,
    x: torch.Tensor,
    m: torch.Tensor,
    alt: torch.Tensor,
    cls: torch.Tensor,
    mode: str,
    reward: str,
    flip: bool,
) -> torch.Tensor:
    """The class part of the objective per mask, (B,): -s_c(Phi(X, m)) and/or s_c(Phi(X, 1 - m))."""
    parts = []
    if mode in ("ssr", "both"):
        parts.append(apply_mask(x, m, alt))
    if mode in ("sdr", "both"):
        parts.append(apply_mask(x, 1.0 - m, alt))
    batch = torch.cat(parts) if len(parts) > 1 else parts[0]
    if flip:
        batch = batch.flip(-1)
    logits = black_box(batch)
    _check_num_classes(logits, cls)
    if logits.shape[0] != len(batch):
        raise InputError(f"The black box returned {logits.shape[0]} rows of logits for {len(batch)} images.")
    score = _score(logits, cls.repeat(len(parts)), reward, bool(getattr(black_box, "multi_label", False)))
    if mode == "ssr":
        return -score
    if mode == "sdr":
        return score
    keep, drop = score.chunk(2)
    return drop - keep


def _score(logits: torch.Tensor, classes: torch.Tensor, reward: str, multi_label: bool) -> torch.Tensor:
    """s_c per row, (B,): the contrastive margin, the logit z_c or log f_c (see :class:`ExtremalConfig`)."""
    if reward == "log_prob":
        return class_log_probability(logits, classes, multi_label)
    target = logits.gather(1, classes[:, None]).squeeze(1)
    if reward == "logit" or multi_label:
        return target
    return target - logits.scatter(1, classes[:, None], float("-inf")).amax(1)


def extremal_masks(
    black_box: nn.Module,
    images: torch.Tensor,
    classes: ClassesLike,
    *,
    mode: str = "ssr",
    areas: Sequence[float] | float = (0.1,),
    iterations: int = 300,
    grid: int = 28,
    smooth: float = 3.0,
    lr: float = 0.1,
    alternative: str = "blur",
    generator: torch.Generator | None = None,
    config: ExtremalConfig | None = None,
) -> torch.Tensor:
    """Extremal perturbation masks of fixed areas: smallest sufficient (SSR) or destroying (SDR) regions.

    For every image and every target area a, optimises the parameters theta of a smooth mask
    m = G(sigmoid(theta)) (module docstring) under the area constraint R_a:

        ssr:   min_theta  -s_c(Phi(X, m)) + lambda_t R_a(m)
        sdr:   min_theta   s_c(Phi(X, 1 - m)) + lambda_t R_a(m)
        both:  min_theta  -s_c(Phi(X, m)) + s_c(Phi(X, 1 - m)) + lambda_t R_a(m)

    with s_c the class score (contrastive margin by default), Phi(X, M) = X * M + A * (1 - M),
    R_a(m) = mean((sort(vec m) - r_a)^2), lambda_t = area_weight * area_growth^(t / (T - 1)),
    optimised by Adam with one second moment per mask.

    Args:
        black_box: Classifier, (N, 3, H, W) images in [0, 1] -> (N, K) logits. Its parameters get
            ``requires_grad = False`` and eval mode during the call (both restored after); nothing
            in it is modified.
        images: X, (N, 3, H, W) in [0, 1], N >= 1.
        classes: (N,) integer classes c, or one int for every image.
        mode: ``"ssr"`` (m = region kept), ``"sdr"`` (m = region removed) or ``"both"``.
        areas: Target areas a in (0, 1), as fractions of the image; one mask per image and area.
        iterations: T, the number of optimiser steps (>= 1).
        grid: g, the side of the coarse parameter grid. 28 = 224 / 8: one parameter per 8 x 8 px
            patch at the black box's 224 px, the mask resolution of Fong & Vedaldi (2017) and of
            :func:`~paperlib.experiments.iterative.optimise_masks` (so the two differ only in the
            parameterisation and the constraint), close to TorchRay's 7 px step (32 cells).
            Finer grids give more parameters, not finer masks: the detail is set by ``smooth``. The
            grid is g x g whatever the aspect ratio (on a non-square image cells and blobs stretch
            with it); it may not exceed the image size.
        smooth: sigma of the smooth-max kernel, in grid cells (3 = 24 px at 224 px with g = 28, as
            TorchRay's 21 px for its 7 px step); the smallest blob has radius ~ 1.1 sigma at the 0.5
            level, about 4 % of a 224 px image for the defaults, so areas >= 0.05 are reachable.
        lr: Step size on theta (the logits of p), in units of the mask's gradient RMS.
        alternative: A: ``"blur"`` (X blurred with sigma = ``config.blur_sigma`` * H / 224 px, as the
            project's alternative image) or ``"fade"`` (black, TorchRay's fade perturbation).
        generator: CPU generator for the initial noise of theta (``config.init_noise``); the result
            is then deterministic. ``None`` uses torch's global generator.
        config: :class:`ExtremalConfig` (lambda schedule, reward, coldness, initialisation, blur,
            jitter, optimiser); default ``ExtremalConfig()``.

    Returns:
        Masks (N, len(areas), 1, H, W) in [0, 1], detached, on ``images``' device, in the order of
        ``areas``; 1 marks the region kept (ssr, both) or removed (sdr).

    Raises:
        InputError: Malformed images or classes, a class beyond the black box's outputs, an unknown
            mode or alternative, an area outside (0, 1), or other invalid settings.
    """
    areas, config = _check_settings(mode, areas, iterations, grid, smooth, lr, alternative, generator, config)
    x, cls, out_device = _prepare(black_box, images, classes)
    n, _, h, w = x.shape
    if grid > min(h, w):
        raise InputError(f"grid ({grid}) must not exceed the image size ({h} x {w}).")
    masks = _optimise(black_box, x, cls, areas, mode, iterations, grid, float(smooth), lr, alternative, generator, config)
    return masks.view(n, len(areas), 1, h, w).detach().to(out_device)


def _optimise(
    black_box: nn.Module,
    x: torch.Tensor,
    cls: torch.Tensor,
    areas: tuple[float, ...],
    mode: str,
    iterations: int,
    grid: int,
    smooth: float,
    lr: float,
    alternative: str,
    generator: torch.Generator | None,
    config: ExtremalConfig,
) -> torch.Tensor:
    """The optimisation of :func:`extremal_masks` on checked inputs: masks (N * len(areas), 1, H, W), image-major."""
    n, _, h, w = x.shape
    k = len(areas)
    generate = MaskGenerator(grid, smooth, config.samples_per_cell, config.coldness, x.device, x.dtype)
    reference = _reference(areas, n, (grid * config.samples_per_cell) ** 2, x.device, x.dtype)
    noise = torch.rand(n * k, 1, grid, grid, generator=generator) * 2.0 - 1.0
    if config.param == "sigmoid":
        theta = _logit(config.init) + config.init_noise * noise
    else:
        theta = (config.init + config.init_noise * noise).clamp(0.0, 1.0)
    theta = theta.to(x.device, x.dtype).requires_grad_(True)
    squash = torch.sigmoid if config.param == "sigmoid" else (lambda v: v)
    xs, cs = x.repeat_interleave(k, 0), cls.repeat_interleave(k)  # image-major: row i * k + j = image i, area j
    with torch.no_grad():
        alt = gaussian_blur(xs, config.blur_sigma * h / 224.0) if alternative == "blur" else torch.zeros_like(xs)

    with torch.enable_grad(), frozen(black_box):
        with torch.no_grad():  # fail early on malformed logits or a class out of range
            _check_num_classes(black_box(x[:1]), cls)
        step = _SharedAdam(theta, lr, config.betas, clamp=config.param != "sigmoid")
        for t in range(iterations):
            weight = config.area_weight * config.area_growth ** (t / max(iterations - 1, 1))
            m_low = generate(squash(theta))
            m = _upsample(m_low, (h, w))
            loss = _class_terms(black_box, xs, m, alt, cs, mode, config.reward, config.jitter and t % 2 == 0)
            loss = loss + weight * area_penalty(m_low, reference)
            (grad,) = torch.autograd.grad(loss.sum(), theta)
            step(grad)
    with torch.no_grad():
        return _upsample(generate(squash(theta)), (h, w)).clamp(0.0, 1.0)


def _upsample(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The mask at image resolution (bilinear), or itself when it already is."""
    if tuple(m.shape[-2:]) == tuple(size):
        return m
    return F.interpolate(m, size=size, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class RegionSweep:
    """Masks of one image swept over target areas, scored, and the smallest that does the job.

    Attributes:
        mode: ``"ssr"``, ``"sdr"`` or ``"both"``.
        areas: The target areas a, ascending.
        masks: (len(areas), 1, H, W) in [0, 1], one per area.
        kept: f_c(Phi(X, M)) / f_c(X) per area: the share of the class probability left with only the
            mask kept (the rest blurred).
        removed: f_c(Phi(X, 1 - M)) / f_c(X) per area: the share left with the mask removed.
        mean_area: mean(M) per area.
        islands: connected components (8-connectivity) of M > 0.5 per area.
        chosen: Index of the mask the sweep returns (see :func:`smallest_regions`).
        met: Whether the chosen mask meets the criterion (else it is the best of the sweep).
        p_original: f_c(X), the class probability of the unperturbed image.
    """

    mode: str
    areas: tuple[float, ...]
    masks: torch.Tensor
    kept: tuple[float, ...]
    removed: tuple[float, ...]
    mean_area: tuple[float, ...]
    islands: tuple[int, ...]
    chosen: int
    met: bool
    p_original: float

    @property
    def mask(self) -> torch.Tensor:
        """The chosen mask, (1, H, W)."""
        return self.masks[self.chosen]


def _components(mask: torch.Tensor) -> int:
    """Connected components (8-connectivity) of M > 0.5 of one (1, H, W) mask."""
    from scipy import ndimage

    return int(ndimage.label(mask[0].numpy() > 0.5, structure=[[1, 1, 1]] * 3)[1])


def _choose(mode: str, kept: Sequence[float], removed: Sequence[float], keep: float, destroy: float) -> tuple[int, bool]:
    """The smallest area that meets the mode's criterion, else the best one (see :func:`smallest_regions`)."""
    ok = {
        "ssr": [k >= keep for k in kept],
        "sdr": [r <= destroy for r in removed],
        "both": [k >= keep and r <= destroy for k, r in zip(kept, removed)],
    }[mode]
    if any(ok):
        return ok.index(True), True
    score = {"ssr": list(kept), "sdr": [-r for r in removed], "both": [k - r for k, r in zip(kept, removed)]}[mode]
    return max(range(len(score)), key=score.__getitem__), False


def smallest_regions(
    black_box: nn.Module,
    image: torch.Tensor,
    cls: int,
    *,
    modes: Sequence[str] = MODES,
    areas: Sequence[float] = (0.05, 0.1, 0.2, 0.4),
    keep: float = 0.9,
    destroy: float = 0.1,
    iterations: int = 300,
    grid: int = 28,
    smooth: float = 3.0,
    lr: float = 0.1,
    generator: torch.Generator | None = None,
    config: ExtremalConfig | None = None,
) -> dict[str, RegionSweep]:
    """Fig. 2's regions of one image: for each mode, the smallest swept area that does the job.

    For every mode and target area a, :func:`extremal_masks` optimises a mask; each is scored with the
    blurred alternative A of the optimisation (f_c the softmax probability):

        kept(M) = f_c(X M + A (1 - M)) / f_c(X),   removed(M) = f_c(X (1 - M) + A M) / f_c(X).

    The sweep returns the mask of the smallest area whose score meets the mode's criterion, as in
    extremal perturbations (the smallest area that keeps the class):

        ssr: kept >= ``keep``;  sdr: removed <= ``destroy``;  both: both.

    When no area meets it, the best mask of the sweep (highest kept, lowest removed, or highest
    kept - removed) is returned with ``met = False``.

    Args:
        black_box: Classifier, (N, 3, H, W) images in [0, 1] -> (N, K) logits.
        image: X, (1, 3, H, W) in [0, 1].
        cls: The class c.
        modes: Which of ``"ssr"``, ``"sdr"`` and ``"both"`` to sweep.
        areas: The target areas, fractions of the image in (0, 1); sorted ascending.
        keep, destroy: The criteria above, as shares of f_c(X).
        iterations: Optimiser steps per mask (all areas of a mode are optimised in one batch).
        grid, smooth, lr, config: As in :func:`extremal_masks` (the alternative is always the blur).
        generator: CPU generator for the initial noise (deterministic results).

    Returns:
        ``{mode: RegionSweep}``.
    """
    if not (isinstance(image, torch.Tensor) and image.ndim == 4 and image.shape[0] == 1):
        raise InputError(f"image must be one image, a (1, 3, H, W) tensor in [0, 1]; got {getattr(image, 'shape', type(image))}.")
    areas = tuple(sorted(float(a) for a in areas))
    config = config or ExtremalConfig()
    blurred = gaussian_blur(image, config.blur_sigma * image.shape[-2] / 224.0)
    target = torch.tensor([int(cls)])

    def prob(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return black_box(x).softmax(-1)[:, target[0]]

    p0 = float(prob(image))
    setup = {"areas": areas, "iterations": iterations, "grid": grid, "smooth": smooth, "lr": lr, "config": config}
    out = {}
    for mode in modes:
        masks = extremal_masks(black_box, image, target, mode=mode, generator=generator, **setup)[0]
        x = image.expand(len(areas), -1, -1, -1)
        alt = blurred.expand_as(x)
        kept = tuple(float(v) / p0 for v in prob(apply_mask(x, masks, alt)))
        removed = tuple(float(v) / p0 for v in prob(apply_mask(x, 1.0 - masks, alt)))
        chosen, met = _choose(mode, kept, removed, keep, destroy)
        out[mode] = RegionSweep(
            mode=mode,
            areas=areas,
            masks=masks,
            kept=kept,
            removed=removed,
            mean_area=tuple(float(m.mean()) for m in masks),
            islands=tuple(_components(m) for m in masks),
            chosen=chosen,
            met=met,
            p_original=p0,
        )
    return out


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """IoU of two masks binarised at 0.5."""
    a, b = a > 0.5, b > 0.5
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0


def regions_result(sweeps: dict[str, dict[str, RegionSweep]], labels: dict[str, str], **setup: object) -> dict:
    """Fig. 2's numbers as a JSON-ready result: per photograph and mode, every swept area and the chosen one.

    Args:
        sweeps: ``{photo name: smallest_regions(...)}``.
        labels: ``{photo name: class name}``.
        **setup: Recorded as they are (preset, black box, iterations, criteria, photographs' source, ...).

    Returns:
        ``{"figure": "fig2", **setup, "photos": [...]}``; each photo holds f_c(X), the IoU of its
        binarised SSR and SDR masks and, per mode, the sweep (``areas``, ``kept``, ``removed``,
        ``mean_area``, ``islands``) with the chosen index and whether it met the criterion.
    """
    photos = []
    for name, sw in sweeps.items():
        modes = {
            mode: {
                "areas": list(r.areas),
                "kept": [round(v, 4) for v in r.kept],
                "removed": [round(v, 4) for v in r.removed],
                "mean_area": [round(v, 4) for v in r.mean_area],
                "islands": list(r.islands),
                "chosen": r.chosen,
                "met": r.met,
            }
            for mode, r in sw.items()
        }
        row = {"photo": name, "class": labels[name], "p_original": round(next(iter(sw.values())).p_original, 4), "modes": modes}
        if "ssr" in sw and "sdr" in sw:
            row["iou_ssr_sdr"] = round(_iou(sw["ssr"].mask, sw["sdr"].mask), 3)
        photos.append(row)
    return {"figure": "fig2", **setup, "photos": photos}


def regions_markdown(result: dict) -> str:
    """The chosen region of every photograph and mode as a Markdown table."""
    lines = [
        f"Fig. 2: smallest sufficient (SSR) and destroying (SDR) regions, extremal perturbations ({result.get('preset', '?')} preset, "
        f"{result.get('black_box', '?')}, {result.get('iterations', '?')} iterations per mask, areas {result.get('areas', '?')}; "
        f"criteria: SSR keeps >= {result.get('keep', '?')} of p, removing the SDR leaves <= {result.get('destroy', '?')} of p). "
        f"Photographs: {result.get('source', '?')}. Hardware: {result.get('hardware', '?')}.",
        "",
        "| photo | class | p | region | target area | mask area | kept / p | removed / p | islands | criterion met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"ssr": "SSR", "sdr": "SDR", "both": "eq. 4"}
    for row in result["photos"]:
        for mode, r in row["modes"].items():
            i = r["chosen"]
            lines.append(
                f"| {row['photo']} | {row['class']} | {row['p_original']:.3f} | {names[mode]} | {r['areas'][i]:g} | "
                f"{r['mean_area'][i]:.3f} | {r['kept'][i]:.3f} | {r['removed'][i]:.3f} | {r['islands'][i]} | "
                f"{'yes' if r['met'] else 'no'} |"
            )
    ious = ", ".join(f"{r['photo']} {r['iou_ssr_sdr']:.2f}" for r in result["photos"] if "iou_ssr_sdr" in r)
    if ious:
        lines += ["", f"IoU of the binarised SSR and SDR masks: {ious}."]
    if result.get("credits"):
        lines += ["", "Photographs: " + "; ".join(f"{name}: {credit}" for name, credit in result["credits"].items()) + "."]
    return "\n".join(lines) + "\n"


def regions_summary(result: dict) -> str:
    """One clause per photograph on what the sweep found (the README quotes it; a test checks that it does)."""

    def found(r: dict, key: str, doing: str, goal: str) -> str:
        i = r["chosen"]
        islands = f"{r['islands'][i]} island{'s' * (r['islands'][i] != 1)}"
        how = f"{doing} leaves {r[key][i]:.0%} of p at a = {r['areas'][i]:.1%} ({islands})"
        return how if r["met"] else f"no swept area {goal} (best: {how})"

    parts = []
    for row in result["photos"]:
        ssr = found(row["modes"]["ssr"], "kept", "keeping the SSR", "keeps 90%")
        sdr = found(row["modes"]["sdr"], "removed", "removing the SDR", "leaves at most 10% when removed")
        parts.append(f"{row['photo']} ({row['class']}): {ssr}, {sdr}, IoU {row['iou_ssr_sdr']:.2f}")
    return (
        f"Fig. 2 ({result['preset']} preset, {result['iterations']} iterations per mask, areas up to {max(result['areas']):.0%}): "
        + "; ".join(parts)
        + "."
    )

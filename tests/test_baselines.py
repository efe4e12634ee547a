"""Tests of paperlib.baselines with tiny hand-made models (CPU, fast)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from paperlib.core.errors import InputError
from paperlib.experiments.baselines import (
    best_alpha,
    energy_box,
    gradcam_saliency,
    gradient_saliency,
    guided_backprop_saliency,
    normalise_maps,
    saliency_map,
    saliency_to_box,
    threshold_box,
)

H = W = 16
PATCH = (slice(4, 8), slice(9, 13))  # rows 4..7, cols 9..12 -> box [9, 4, 12, 7]


class TinyCNN(nn.Module):
    """conv-ReLU-conv-ReLU, global average pool, linear; `.cam_layer` = last ReLU."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 5)
        self.cam_layer = self.features[-1]

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


class PatchModel(nn.Module):
    """logit_0 = ReLU(<w, x> + 1) with w > 0 only in PATCH; logit_1 = 0.

    Its gradient (and guided gradient, since the ReLU input is > 0) is w:
    non-zero exactly inside the patch.
    """

    def __init__(self):
        super().__init__()
        w = torch.zeros(3, H, W)
        w[:, PATCH[0], PATCH[1]] = torch.rand(3, 4, 4) + 0.5
        self.register_buffer("w", w)
        self.relu = nn.ReLU()

    def forward(self, x):
        z = self.relu((x * self.w).sum(dim=(1, 2, 3)) + 1.0)
        return torch.stack([z, torch.zeros_like(z)], dim=1)


class PatchCAM(nn.Module):
    """Positive 1x1 conv + ReLU (cam_layer), GAP, positive linear head for class 0."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)
        nn.init.uniform_(self.conv.weight, 0.5, 1.0)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 2.0, 1.0, 0.5], [-1.0, -1.0, -1.0, -1.0]]))
            self.fc.bias.zero_()
        self.cam_layer = self.relu

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean(dim=(2, 3)))


def _no_hooks(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks and not getattr(m, "_backward_pre_hooks", {})
        for m in model.modules()
    )


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, H, W, generator=g)


@pytest.mark.parametrize("method", ["grad", "guided", "gradcam"])
def test_maps_shape_range_finite_and_clean(method, images):
    torch.manual_seed(0)
    model = TinyCNN().train()
    maps = saliency_map(method, model, images, torch.tensor([1, 3]))
    assert maps.shape == (2, 1, H, W)
    assert torch.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1
    for m in maps:  # per-image max is 1 (or the map is all zero)
        assert m.max().item() == pytest.approx(1.0) or m.max().item() == 0.0
    assert _no_hooks(model), "captum left hooks installed"
    assert model.training, "previous train/eval mode not restored"
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("fn", [gradient_saliency, guided_backprop_saliency])
def test_gradient_maps_localise_patch(fn, images):
    torch.manual_seed(0)
    model = PatchModel()
    maps = fn(model, images, torch.tensor([0, 0]))
    inside = torch.zeros(H, W, dtype=torch.bool)
    inside[PATCH] = True
    assert (maps[:, 0][:, inside] > 0).all()
    assert (maps[:, 0][:, ~inside] == 0).all()
    assert threshold_box(maps, 0.0).tolist() == [[9, 4, 12, 7]] * 2


def test_gradcam_localises_bright_patch():
    torch.manual_seed(0)
    x = torch.zeros(1, 3, H, W)
    x[0, :, PATCH[0], PATCH[1]] = 0.8
    model = PatchCAM()
    cam = gradcam_saliency(model, x, 0)  # layer from model.cam_layer
    inside = torch.zeros(H, W, dtype=torch.bool)
    inside[PATCH] = True
    assert cam[0, 0][inside].min() > 0.99
    assert cam[0, 0][~inside].max() < 0.01
    assert threshold_box(cam, 0.5).tolist() == [[9, 4, 12, 7]]
    explicit = gradcam_saliency(model, x, torch.tensor([0]), layer=model.relu)
    assert torch.allclose(cam, explicit)


def test_gradcam_needs_a_layer(images):
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(InputError, match="pass `layer="):
        gradcam_saliency(model, images, 0)


def test_guided_warns_without_relu(images):
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.warns(UserWarning, match="degenerates to the plain gradient"):
        guided = guided_backprop_saliency(model, images, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # grad emits no warning
        grad = gradient_saliency(model, images, 0)
    assert torch.allclose(guided, grad, atol=1e-6)


class FunctionalCNN(TinyCNN):
    """TinyCNN with its ReLUs applied as F.relu (like torchvision's GoogLeNet): no nn.ReLU module."""

    def __init__(self):
        super().__init__()
        self.features[1] = nn.Identity()
        self.features[3] = nn.Identity()
        self.cam_layer = self.features[2]  # drop the reference to the old nn.ReLU

    def forward(self, x):
        f = self.features
        x = F.relu(f[2](F.relu(f[0](x))), inplace=True)
        return self.fc(self.pool(x).flatten(1))


def test_guided_handles_functional_relu(images):
    torch.manual_seed(0)
    ref = TinyCNN()
    fun = FunctionalCNN()
    fun.features.load_state_dict(ref.features.state_dict())
    fun.fc.load_state_dict(ref.fc.state_dict())
    relu_before = F.relu
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "degenerates" warning
        guided_fun = guided_backprop_saliency(fun, images, torch.tensor([1, 3]))
    guided_ref = guided_backprop_saliency(ref, images, torch.tensor([1, 3]))
    assert F.relu is relu_before, "F.relu not restored"
    assert torch.allclose(guided_fun, guided_ref, atol=1e-6)
    grad = gradient_saliency(fun, images, torch.tensor([1, 3]))
    assert not torch.allclose(guided_fun, grad, atol=1e-3)
    with pytest.warns(UserWarning, match="degenerates"):
        captum_only = guided_backprop_saliency(fun, images, torch.tensor([1, 3]), functional_relu=False)
    assert torch.allclose(captum_only, grad, atol=1e-6)


def test_input_validation(images):
    model = TinyCNN()
    with pytest.raises(InputError, match="unknown saliency method"):
        saliency_map("cam", model, images, 0)
    with pytest.raises(InputError, match=r"\(N, 3, H, W\)"):
        gradient_saliency(model, images[0], 0)
    with pytest.raises(InputError, match="2 images but 3 classes"):
        gradient_saliency(model, images, torch.tensor([0, 1, 2]))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        gradient_saliency(model, images * 3, 0)
    with pytest.raises(InputError, match="integer"):
        gradient_saliency(model, images, torch.tensor([0.0, 1.0]))


# ---------------------------------------------------------------- maps -> boxes
def test_threshold_box_relative_to_max():
    m = torch.zeros(2, 1, 8, 10)
    m[0, 0, 2, 3] = 4.0
    m[0, 0, 5, 7] = 2.0  # exactly 0.5 of max: excluded (strict)
    m[0, 0, 6, 1] = 2.1
    boxes, empty = threshold_box(m, 0.5, return_empty=True)
    assert boxes[0].tolist() == [1, 2, 3, 6]
    assert empty.tolist() == [False, True] and boxes[1].tolist() == [0, 0, 9, 7]  # zero map -> whole image
    assert torch.equal(saliency_to_box(m), boxes)
    with pytest.raises(InputError, match="alpha"):
        threshold_box(m, 1.0)


def test_energy_box():
    m = torch.zeros(1, 8, 10)
    m[0, 1, 1] = 6.0  # 60% of the energy
    m[0, 4, 8] = 3.0
    m[0, 7, 0] = 1.0
    assert energy_box(m, 0.5).tolist() == [[1, 1, 1, 1]]
    assert energy_box(m, 0.6).tolist() == [[1, 1, 1, 1]]
    assert energy_box(m, 0.85).tolist() == [[1, 1, 8, 4]]
    assert energy_box(m, 1.0).tolist() == [[0, 1, 8, 7]]
    assert saliency_to_box(m, rule="energy", fraction=0.85).tolist() == [[1, 1, 8, 4]]
    assert normalise_maps(m).max() == 1.0


def test_best_alpha_picks_lowest_error():
    # core (value 1) on rows 2..5 cols 2..5, halo (0.3) on the surrounding ring
    m = torch.zeros(3, 1, 10, 10)
    m[:, 0, 1:7, 1:7] = 0.3
    m[:, 0, 2:6, 2:6] = 1.0
    gt = torch.tensor([[2.0, 2.0, 5.0, 5.0]]).repeat(3, 1)
    alpha, errors = best_alpha(m, gt, alphas=[0.1, 0.5, 0.9])
    assert errors[0.1] == 100.0 and errors[0.5] == 0.0 and errors[0.9] == 0.0
    assert alpha == 0.5  # first of the ties
    # gt given at 2x the map resolution: boxes are rescaled
    gt2 = torch.tensor([[4.0, 4.0, 11.0, 11.0]]).repeat(3, 1)
    alpha2, errors2 = best_alpha(m, gt2, alphas=[0.1, 0.5], image_sizes=(20, 20))
    assert alpha2 == 0.5 and errors2[0.5] == 0.0


class _ReLU6Net(torch.nn.Module):
    """logit 0 = -3 * relu6(red at pixel (0, 0)) + sum of relu6(green); logit 1 = 0."""

    def __init__(self):
        super().__init__()
        self.act = torch.nn.ReLU6()

    def forward(self, x):
        z = -3 * self.act(x[:, 0, 0, 0]) + self.act(x[:, 1]).sum((1, 2))
        return torch.stack([z, torch.zeros_like(z)], 1)


def test_guided_backprop_guides_relu6_modules_and_restores_them():
    from paperlib.experiments.baselines import gradient_saliency, guided_backprop_saliency

    x = torch.full((1, 3, 2, 2), 0.5)
    net = _ReLU6Net()
    grad = gradient_saliency(net, x, [0])
    guided = guided_backprop_saliency(net, x, [0])
    # Grad: |-3| at pixel (0, 0), 1 elsewhere (normalised 1/3); guided: the negative path is cut at the ReLU6
    assert torch.allclose(grad[0, 0], torch.tensor([[1.0, 1 / 3], [1 / 3, 1 / 3]]))
    assert torch.allclose(guided[0, 0], torch.ones(2, 2))
    assert "forward" not in vars(net.act)  # the module's own forward is back


def test_occlusion_sees_only_the_patch_that_drives_the_logit(images):
    """Occlusion (Captum): windows that cover the patch lower logit 0, the others change nothing."""
    from paperlib.experiments.baselines import occlusion_saliency

    torch.manual_seed(0)
    model = PatchModel()
    bright = images.clone()
    bright[:, :, PATCH[0], PATCH[1]] = 1.0  # above the grey fill: hiding the patch lowers the logit
    maps = occlusion_saliency(model, bright, torch.tensor([0, 0]), window=4, stride=2)
    assert maps.shape == (2, 1, H, W) and maps.max() == pytest.approx(1.0)
    assert maps[:, 0, 4:8, 9:13].min() > 0  # every patch pixel is covered by a window that hides part of it
    covered = torch.zeros(H, W, dtype=torch.bool)  # pixels of windows (4 px, stride 2) that overlap the patch
    covered[2:10, 6:16] = True
    assert (maps[:, 0][:, ~covered] == 0).all()
    assert saliency_map("occlusion", model, bright, 0).shape == (2, 1, H, W)

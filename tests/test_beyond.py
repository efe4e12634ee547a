"""Tests of the metric-bias readings and maps of paperlib.experiments.beyond (no data needed)."""

from __future__ import annotations

import math

import pytest
import torch

from paperlib.core.errors import InputError
from paperlib.experiments.beyond import _centre_map, _read_box, method_maps


def test_three_readings_agree_on_the_whole_image_and_differ_on_a_wide_box():
    torch.manual_seed(0)
    img = torch.rand(3, 20, 40)
    whole = torch.tensor([0.0, 0.0, 39.0, 19.0])
    outs = {r: _read_box(img, whole, r, 16) for r in ("squash", "pad", "blur")}
    assert all(a == pytest.approx(1.0) for _, a in outs.values())
    assert torch.allclose(outs["squash"][0], outs["blur"][0], atol=1e-6)  # nothing outside the box to blur
    # a 40x20 image padded to a square: grey bands above and below, squash has none
    assert torch.allclose(outs["pad"][0][:, 0, :], torch.full((3, 16), 0.5), atol=1e-6)
    box = torch.tensor([0.0, 0.0, 9.0, 9.0])  # the top-left quarter of the height, an eighth of the area
    x, a = _read_box(img, box, "blur", 16)
    assert a == pytest.approx(100 / 800)
    with pytest.raises(InputError):
        _read_box(img, box, "stretch", 16)


def test_centre_and_random_maps():
    c = _centre_map(2, 9)
    assert c.shape == (2, 1, 9, 9) and c[0, 0].argmax().item() == 4 * 9 + 4
    r1 = method_maps("random", torch.zeros(2, 3, 8, 8), torch.tensor([1, 2]), None, None, seed=0)
    r2 = method_maps("random", torch.zeros(2, 3, 8, 8), torch.tensor([1, 2]), None, None, seed=0)
    assert torch.equal(r1, r2) and r1.shape == (2, 1, 8, 8)
    with pytest.raises(InputError):
        method_maps("lime", torch.zeros(1, 3, 8, 8), torch.tensor([0]), None, None)


def _occlusion_by_hand(bb, x, y, window, stride, fill=0.5):
    """Occlusion written out: a ``fill`` square slid with ``stride`` (the last one clipped at the border, as
    Captum does), each pixel the mean logit drop of the squares covering it, the positive part over its max."""
    n, _, h, w = x.shape
    rows = range(len(x))
    with torch.no_grad():
        base = bb(x)[rows, y]
        total, count = torch.zeros(n, h, w), torch.zeros(h, w)
        starts_h = [k * stride for k in range(math.ceil((h - window) / stride) + 1)]
        starts_w = [k * stride for k in range(math.ceil((w - window) / stride) + 1)]
        for r in starts_h:
            for c in starts_w:
                xo = x.clone()
                xo[:, :, r : r + window, c : c + window] = fill
                total[:, r : r + window, c : c + window] += (base - bb(xo)[rows, y])[:, None, None]
                count[r : r + window, c : c + window] += 1
    att = (total / count).clamp(min=0)[:, None]
    return att / att.flatten(1).amax(1).clamp(min=1e-30)[:, None, None, None]


def test_iterative_mask_and_occlusion_maps_on_a_tiny_black_box():
    """The two added methods through method_maps: occlusion against the method written out, the mask against
    Fong & Vedaldi's game (1 - M after the Adam steps asked for), by hand where the black box is blind."""
    from torch import nn

    from paperlib.experiments import iterative

    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([0, 2])
    occ = method_maps("occlusion", x, y, bb, None)
    assert occ.shape == (2, 1, 32, 32)
    want = _occlusion_by_hand(bb, x, y, window=5, stride=2)  # H / 7 = 4.6 -> a 5 px square, half of it the stride
    assert float(want.flatten(1).amax(1).min()) == 1.0 and float((want == 0).float().mean()) > 0.05
    assert torch.allclose(occ, want, atol=1e-5), float((occ - want).abs().max())

    sal = method_maps("mask", x, y, bb, None, mask_iterations=3, seed=4)
    ref = iterative.optimise_masks(bb, x, y, mode="fong", iterations=3, generator=torch.Generator().manual_seed(4))
    assert sal.shape == (2, 1, 32, 32) and torch.equal(sal, ref)
    # a black box blind to its input (last layer zero): the class probability has no gradient, the mask's TV
    # is flat at the uniform start, so only fv_l1 * mean|1 - M| moves the 28 x 28 logits theta, all alike:
    # 3 Adam steps (lr 0.1, betas 0.9 / 0.999, eps 1e-8) from theta = 0, saliency 1 - sigmoid(theta)
    blind = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 3))
    nn.init.zeros_(blind[1].weight)
    theta, m1, m2 = 0.0, 0.0, 0.0
    for t in range(1, 4):
        s = 1 / (1 + math.exp(-theta))
        g = -0.05 / (28 * 28) * s * (1 - s)  # d/dtheta of 0.05 * mean(1 - sigmoid(theta))
        m1, m2 = 0.9 * m1 + 0.1 * g, 0.999 * m2 + 0.001 * g * g
        theta -= 0.1 / (1 - 0.9**t) * m1 / (math.sqrt(m2 / (1 - 0.999**t)) + 1e-8)
    uniform = method_maps("mask", x, y, blind, None, mask_iterations=3)
    assert torch.allclose(uniform, torch.full_like(uniform, 1 - 1 / (1 + math.exp(-theta))), atol=1e-5)
    assert 0.4 < 1 - 1 / (1 + math.exp(-theta)) < 0.45  # about 0.5 - 3 * 0.1 / 4: the saliency went down

"""Tests of the metric-bias readings and maps of paperlib.experiments.beyond (no data needed)."""

from __future__ import annotations

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


def test_iterative_mask_and_occlusion_maps_on_a_tiny_black_box():
    """The two added methods give (N, 1, H, W) maps in [0, 1] through method_maps."""
    from torch import nn

    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([0, 2])
    for m in ("mask", "occlusion"):
        sal = method_maps(m, x, y, bb, None, mask_iterations=3)
        assert sal.shape == (2, 1, 32, 32) and torch.isfinite(sal).all(), m
        assert 0 <= sal.min() and sal.max() <= 1, m

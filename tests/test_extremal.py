"""Tests of paperlib.experiments.extremal with tiny hand-made black boxes (CPU, no data, about a second of CPU)."""

from __future__ import annotations

import math

import pytest
import test_iterative
import torch
from scipy import ndimage
from test_iterative import TinyCNN, one_thread  # noqa: F401 (one_thread: the autouse fixture, one torch thread)

from paperlib.core.classifiers import BlackBox
from paperlib.core.errors import InputError
from paperlib.core.objective import apply_mask, gaussian_blur
from paperlib.experiments.extremal import (
    ExtremalConfig,
    MaskGenerator,
    _choose,
    area_penalty,
    extremal_masks,
    smallest_regions,
)

H = W = 32
# The evidence square, rows 8..15 and cols 12..19: centred horizontally, so that the flip of the
# perturbed image every other iteration (``jitter``, on by default) leaves it in place.
SQ = (slice(8, 16), slice(12, 20))
SQ_AREA = 64 / (H * W)  # 0.0625
AREAS = (SQ_AREA, 0.15)
# 4 px cells and a kernel of half a cell: the smallest blob is about one cell, finer than the square.
# blur sigma 70 at 224 px = 10 px at 32 px: a blur that removes the square's evidence.
TOY = dict(grid=8, smooth=0.5, iterations=150, config=ExtremalConfig(blur_sigma=70.0))


def evidence_box() -> BlackBox:
    """The planted-square black box of the iterative tests, with this module's square."""
    return test_iterative.evidence_box(SQ)


def images_with_evidence(n: int = 2, seed: int = 0) -> torch.Tensor:
    return test_iterative.images_with_evidence(n, seed, SQ)


def square() -> torch.Tensor:
    sq = torch.zeros(H, W, dtype=torch.bool)
    sq[SQ] = True
    return sq


@pytest.fixture(scope="module")
def toy_masks() -> dict[str, torch.Tensor]:
    """The masks of every mode on the planted-square black box, (2, len(AREAS), 1, H, W) each."""
    bb, x = evidence_box(), images_with_evidence()
    return {
        mode: extremal_masks(bb, x, 0, mode=mode, areas=AREAS, generator=torch.Generator().manual_seed(1), **TOY)
        for mode in ("ssr", "sdr", "both")
    }


def iou(binary: torch.Tensor, target: torch.Tensor) -> float:
    return float((binary & target).sum() / (binary | target).sum())


@pytest.mark.parametrize("mode", ["ssr", "sdr", "both"])
def test_area_constraint_is_met(toy_masks, mode):
    masks = toy_masks[mode]
    assert masks.shape == (2, len(AREAS), 1, H, W)
    for j, a in enumerate(AREAS):
        mean = masks[:, j].flatten(1).mean(1)
        assert torch.allclose(mean, torch.full_like(mean, a), atol=0.02), (a, mean)
        binary = (masks[:, j] > 0.5).flatten(1).float().mean(1)
        assert torch.allclose(binary, torch.full_like(binary, a), atol=0.03), (a, binary)


@pytest.mark.parametrize("mode", ["ssr", "sdr", "both"])
def test_mask_covers_the_square(toy_masks, mode):
    # ssr: keeping the square keeps the class; sdr: blurring the square kills it; both: the two at once.
    for i in range(2):
        assert iou(toy_masks[mode][i, 0, 0] > 0.5, square()) > 0.5


@pytest.mark.parametrize("mode", ["ssr", "sdr", "both"])
def test_masks_are_smooth_and_compact(toy_masks, mode):
    # At the square's area the region is the evidence. At a larger area the toy black box gives no
    # signal outside the square, so where the surplus goes is arbitrary (it may be split): not tested.
    for mask in toy_masks[mode][:, 0]:
        _, islands = ndimage.label((mask[0] > 0.5).numpy())
        assert 1 <= islands <= 2
    masks = toy_masks[mode]
    assert float(masks.min()) >= 0.0 and float(masks.max()) <= 1.0


def test_deterministic_with_a_generator():
    bb, x = evidence_box(), images_with_evidence(1)
    kw = dict(TOY, iterations=5)
    a = extremal_masks(bb, x, 0, generator=torch.Generator().manual_seed(3), **kw)
    b = extremal_masks(bb, x, 0, generator=torch.Generator().manual_seed(3), **kw)
    c = extremal_masks(bb, x, 0, generator=torch.Generator().manual_seed(4), **kw)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("mode", ["ssr", "sdr", "both"])
def test_shapes_ranges_and_black_box_untouched(mode):
    torch.manual_seed(0)
    net = TinyCNN()  # a plain module with trainable parameters, in train mode: both must survive
    before = [p.detach().clone() for p in net.parameters()]
    x = torch.rand(3, 3, 24, 20)
    masks = extremal_masks(net, x, torch.tensor([0, 1, 2]), mode=mode, areas=(0.05, 0.2), iterations=3, grid=5, smooth=1.0)
    assert masks.shape == (3, 2, 1, 24, 20) and not masks.requires_grad
    assert masks.min() >= 0 and masks.max() <= 1
    assert all(p.grad is None and p.requires_grad for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert net.training


def test_runs_under_no_grad_with_one_image_and_fade():
    bb = evidence_box()
    with torch.no_grad():
        masks = extremal_masks(bb, images_with_evidence(1), 0, areas=0.1, alternative="fade", iterations=2, grid=8, smooth=1.0)
    assert masks.shape == (1, 1, 1, H, W)
    assert all(not p.requires_grad and p.grad is None for p in bb.parameters())


def test_mask_generator_is_smooth_and_border_free():
    # 2 samples per cell (the default) lie symmetrically about the cell centres: a constant p gives a
    # constant m, borders included (replicate padding)
    gen = MaskGenerator(grid=6, smooth=1.5, samples_per_cell=2)
    constant = gen(torch.full((1, 1, 6, 6), 0.7))
    assert constant.shape == (1, 1, 12, 12)
    assert torch.allclose(constant, torch.full_like(constant, float(constant[0, 0, 5, 5])), atol=1e-6)
    gen = MaskGenerator(grid=6, smooth=1.5, samples_per_cell=3)
    one = torch.zeros(1, 1, 6, 6)
    one[0, 0, 2, 3] = 1.0
    blob = gen(one)[0, 0]
    assert float(blob.max()) > 0.99 and float(blob.min()) >= 0.0
    _, islands = ndimage.label((blob > 0.5).numpy())
    assert islands == 1
    # the 0.5 level of a single bump lies ~ 1.09 sigma from its centre: area ~ pi (1.09 * 1.5 * 3)^2 samples
    expected = math.pi * (1.09 * 1.5 * 3) ** 2 / 18**2
    assert abs(float((blob > 0.5).float().mean()) - expected) < 0.05


def test_area_penalty_zero_for_a_binary_mask_of_the_area():
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, :2, :2] = 1.0  # area 0.25
    reference = torch.zeros(1, 16)
    reference[0, -4:] = 1.0
    assert float(area_penalty(mask, reference)) == 0.0
    assert float(area_penalty(torch.full_like(mask, 0.5), reference)) == pytest.approx(0.25)


@pytest.mark.parametrize(
    "images, classes, kw",
    [
        (torch.rand(3, 32, 32), 0, {}),  # no batch dimension
        (torch.rand(1, 1, 32, 32), 0, {}),  # grayscale
        (torch.rand(1, 3, 32, 32) * 255, 0, {}),  # not in [0, 1]
        (torch.rand(0, 3, 32, 32), 0, {}),  # empty batch
        (torch.rand(2, 3, 32, 32), torch.tensor([0, 1, 0]), {}),  # wrong count
        (torch.rand(1, 3, 32, 32), 5, {}),  # beyond the black box's 2 classes
        (torch.rand(1, 3, 32, 32), 0, {"mode": "fong"}),
        (torch.rand(1, 3, 32, 32), 0, {"areas": ()}),
        (torch.rand(1, 3, 32, 32), 0, {"areas": (0.0,)}),
        (torch.rand(1, 3, 32, 32), 0, {"areas": (0.1, 1.0)}),
        (torch.rand(1, 3, 32, 32), 0, {"areas": "0.1"}),
        (torch.rand(1, 3, 32, 32), 0, {"areas": (True,)}),
        (torch.rand(1, 3, 32, 32), 0, {"iterations": 0}),
        (torch.rand(1, 3, 32, 32), 0, {"iterations": 2.0}),
        (torch.rand(1, 3, 32, 32), 0, {"grid": 1}),
        (torch.rand(1, 3, 32, 32), 0, {"grid": 33}),  # finer than the image
        (torch.rand(1, 3, 32, 32), 0, {"smooth": 0.0}),
        (torch.rand(1, 3, 32, 32), 0, {"smooth": float("nan")}),
        (torch.rand(1, 3, 32, 32), 0, {"lr": -0.1}),
        (torch.rand(1, 3, 32, 32), 0, {"alternative": "noise"}),
        (torch.rand(1, 3, 32, 32), 0, {"generator": 3}),
        (torch.rand(1, 3, 32, 32), 0, {"config": {"area_weight": 1.0}}),
    ],
)
def test_invalid_arguments_raise(images, classes, kw):
    with pytest.raises(InputError):
        extremal_masks(evidence_box(), images, classes, **{"iterations": 1, "grid": 8, **kw})


@pytest.mark.parametrize(
    "kw",
    [
        {"reward": "margin"},
        {"betas": (0.9, 1.0)},
        {"param": "tanh"},
        {"area_growth": 0.0},
        {"area_weight": -1.0},
        {"init": 1.5},
        {"samples_per_cell": 0},
    ],
)
def test_invalid_config_raises(kw):
    with pytest.raises(InputError):
        ExtremalConfig(**kw)


def test_not_a_module_raises():
    with pytest.raises(InputError):
        extremal_masks(lambda t: t, torch.rand(1, 3, 32, 32), 0, iterations=1, grid=8)


# --- smallest_regions: Fig. 2's sweep over areas -----------------------------------------------------


def test_choose_takes_the_smallest_area_that_meets_the_criterion_else_the_best():
    kept, removed = [0.5, 0.95, 0.99], [0.4, 0.05, 0.2]
    assert _choose("ssr", kept, removed, keep=0.9, destroy=0.1) == (1, True)
    assert _choose("sdr", kept, removed, keep=0.9, destroy=0.1) == (1, True)
    assert _choose("both", kept, removed, keep=0.9, destroy=0.1) == (1, True)
    assert _choose("ssr", kept, removed, keep=0.999, destroy=0.1) == (2, False)  # best kept
    assert _choose("sdr", kept, removed, keep=0.9, destroy=0.01) == (1, False)  # lowest removed
    assert _choose("both", [0.5, 0.8], [0.1, 0.2], keep=0.9, destroy=0.1) == (1, False)  # kept - removed 0.6 > 0.4


def test_smallest_regions_on_the_planted_square():
    """The SSR keeps the square's class with a small area; removing the SDR destroys it; scores are checked by hand."""
    bb, x = evidence_box(), images_with_evidence(1)
    toy = {k: v for k, v in TOY.items() if k != "iterations"}
    out = smallest_regions(
        bb, x, 0, modes=("ssr", "sdr"), areas=(0.15, SQ_AREA), iterations=150, generator=torch.Generator().manual_seed(0), **toy
    )
    ssr, sdr = out["ssr"], out["sdr"]
    assert ssr.areas == (SQ_AREA, 0.15)  # sorted ascending
    assert ssr.masks.shape == (2, 1, H, W)
    p0 = float(bb(x).softmax(-1)[0, 0])
    assert ssr.p_original == pytest.approx(p0)
    # the scores are the class probability with the mask kept / removed over the blurred alternative, relative to p0
    alt = gaussian_blur(x, 70.0 * H / 224.0)
    for r in (ssr, sdr):
        for i in range(2):
            m = r.masks[i : i + 1]
            assert r.kept[i] == pytest.approx(float(bb(apply_mask(x, m, alt)).softmax(-1)[0, 0]) / p0, rel=1e-5)
            assert r.removed[i] == pytest.approx(float(bb(apply_mask(x, 1 - m, alt)).softmax(-1)[0, 0]) / p0, rel=1e-5)
    assert ssr.met and ssr.kept[ssr.chosen] >= 0.9 and ssr.chosen == 0, ssr.kept  # the square's own area suffices
    assert sdr.met and sdr.removed[sdr.chosen] <= 0.1, sdr.removed
    inside = float(ssr.mask[0][square()].mean())
    assert inside > 0.7 and ssr.islands[ssr.chosen] == 1, (inside, ssr.islands)
    assert ssr.mask.shape == (1, H, W)


def test_smallest_regions_rejects_a_batch():
    with pytest.raises(InputError, match="one image"):
        smallest_regions(evidence_box(), images_with_evidence(2), 0, iterations=1, grid=8)

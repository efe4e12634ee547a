"""Tests of the tuning-split mask statistics (paperlib.experiments.ablation) on hand-made masks."""

from __future__ import annotations

import pytest
import torch

from paperlib.core.errors import InputError
from paperlib.experiments.ablation import mask_statistics, speckle


def test_speckle_clean_square_has_no_islands_or_holes():
    m = torch.zeros(1, 1, 12, 12)
    m[..., 2:9, 3:10] = 0.9
    assert speckle(m) == {"islands": torch.tensor([0.0]), "holes": torch.tensor([0.0])}


def test_speckle_counts_islands_holes_and_ignores_background_touching_the_border():
    m = torch.zeros(2, 1, 12, 12)
    m[0, 0, 1:8, 1:8] = 1.0
    m[0, 0, 3, 3] = 0.0  # hole 1
    m[0, 0, 5, 5] = 0.2  # hole 2 (below the threshold)
    m[0, 0, 10, 10] = 1.0  # island 1
    m[0, 0, 10, 1] = 1.0  # island 2
    m[1, 0, 0:6, 0:6] = 1.0
    m[1, 0, 0, 0] = 0.0  # a corner cut touches the border: not a hole
    out = speckle(m)
    assert out["islands"].tolist() == [2.0, 0.0]
    assert out["holes"].tolist() == [2.0, 0.0]


def test_speckle_threshold_is_strict_and_shapes_are_checked():
    m = torch.full((1, 6, 6), 0.5)
    assert speckle(m)["islands"].tolist() == [0.0]  # no pixel above 0.5: no component at all
    with pytest.raises(InputError):
        speckle(torch.zeros(1, 2, 6, 6))
    with pytest.raises(InputError):
        speckle(torch.zeros(6, 6))


class _BoxMasker(torch.nn.Module):
    """Keeps a fixed centred square whatever the class."""

    def forward(self, images, classes):
        m = torch.zeros(len(images), 1, *images.shape[-2:])
        h, w = images.shape[-2:]
        m[..., h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1.0
        return m


class _ColourBox(torch.nn.Module):
    """Class 0 score = mean red, class 1 score = mean blue: a tiny differentiable black box."""

    input_size = 16

    def forward(self, x):
        return torch.stack([x[:, 0].mean((1, 2)), x[:, 2].mean((1, 2))], 1) * 10


def test_mask_statistics_of_a_fixed_square_on_constant_images():
    """Constant images (red 0.6, blue 0.4): the blurred alternative is the image itself, so Phi(X, M) = Phi(X, 1 - M)
    = X and every probability is softmax([6, 4]): p(class 0) = 1 / (1 + e^-2) = 0.880797, p(class 1) = 0.119203."""
    x = torch.zeros(4, 3, 16, 16)
    x[:, 0], x[:, 2] = 0.6, 0.4
    stats = mask_statistics(_BoxMasker(), _ColourBox(), x, torch.tensor([0, 0, 0, 1]), batch_size=3)
    assert stats["area"] == pytest.approx(0.25) and stats["area_05"] == pytest.approx(0.25)
    assert stats["box_area"] == pytest.approx(0.25)  # the 8 x 8 box of the mask in 16 x 16
    assert stats["islands"] == 0 and stats["holes"] == 0 and stats["empty"] == 0
    # means over the 4 images (not over the batches of 3 and 1): (3 * 0.880797 + 0.119203) / 4 = 0.690399
    for key in ("p_kept", "p_removed", "box_prob"):
        assert stats[key] == pytest.approx(0.6904, abs=1e-4), key
    # s = log(0.25) - log p per image, averaged: -1.386294 - (3 * log 0.880797 + log 0.119203) / 4 = -0.759366
    assert stats["saliency"] == pytest.approx(-0.7594, abs=1e-4)


def test_mask_statistics_of_a_fixed_square():
    from paperlib.core.objective import gaussian_blur

    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    y = torch.tensor([0, 1, 0, 1])
    stats = mask_statistics(_BoxMasker(), _ColourBox(), x, y, batch_size=3)
    assert stats["area"] == pytest.approx(0.25)
    assert stats["area_05"] == pytest.approx(0.25)
    assert stats["box_area"] == pytest.approx(0.25)
    assert stats["islands"] == 0 and stats["holes"] == 0 and stats["empty"] == 0
    # p_kept: the class's probability for X M + B (1 - M), p_removed for X (1 - M) + B M, B = X blurred (sigma 10 px at 224)
    m = _BoxMasker()(x, y)
    b = gaussian_blur(x, 10.0 * 16 / 224)
    p_kept = _ColourBox()(x * m + b * (1 - m)).softmax(1)[torch.arange(4), y].mean().item()
    p_removed = _ColourBox()(x * (1 - m) + b * m).softmax(1)[torch.arange(4), y].mean().item()
    assert abs(p_kept - p_removed) > 1e-3  # the two differ here, so a swap would show
    assert stats["p_kept"] == pytest.approx(p_kept, abs=1e-4)
    assert stats["p_removed"] == pytest.approx(p_removed, abs=1e-4)
    # s(a, p) = log(max(a, 0.05)) - log(p) with a = 0.25 and p = box_prob on average (Jensen aside)
    assert stats["saliency"] >= torch.log(torch.tensor(0.25)).item() - torch.log(torch.tensor(stats["box_prob"])).item() - 1e-3


def test_error_of_slices_and_the_choice_prefers_the_box_tuning_split():
    from paperlib.experiments.ablation import ablation_table, error_of

    correct = {0.5: torch.tensor([True, False, True, True]), 0.7: torch.tensor([False, False, True, True])}
    assert error_of(correct) == {"0.5": 25.0, "0.7": 50.0}
    assert error_of(correct, slice(2, 4)) == {"0.5": 0.0, "0.7": 0.0}
    rows = {
        "a": {"tuning": {"saliency": 0.1}, "tune_error": {"0.5": 40.0}},
        "b": {"tuning": {"saliency": 0.3}, "tune_error": {"0.5": 35.0}},
        "c": {"tuning": {"saliency": 0.0}},  # no box tuning error: ranks behind every row that has one
    }
    assert ablation_table(rows)["chosen"] == "b"
    rows["b"]["tune_error"]["0.5"] = 40.0  # a tie on the boxes: the saliency metric decides
    assert ablation_table(rows)["chosen"] == "a"


def test_paired_rows_compare_the_same_images_on_each_split():
    from paperlib.experiments.ablation import decode_correct, encode_correct, paired_rows

    old = torch.zeros(500, dtype=torch.bool)
    old[:250] = True  # 50 % error
    new = old.clone()
    new[400:410] = True  # ten more images right, all in the tuning split 401-500
    assert decode_correct(encode_correct(new)).equal(new)
    p = paired_rows({"val_correct": {"0.5": encode_correct(new)}}, {"val_correct": {"0.5": encode_correct(old)}})
    # d = new - old is 1 on ten images, 0 elsewhere; se = std(d, unbiased) / sqrt(n), in points:
    # tuning split (n = 100): mean 0.1, var (10 - 100 * 0.01) / 99 = 0.0909, std 0.3015: se 3.0
    # all 500: mean 0.02, var (10 - 500 * 0.0004) / 499 = 0.019639, std 0.14014, / sqrt(500): se 0.63 -> 0.6
    assert p["tune_401_500"] == {"gain_points": 10.0, "se_points": 3.0, "n": 100, "err_new": 90.0, "err_old": 100.0}
    assert p["report_1_400"] == {"gain_points": 0.0, "se_points": 0.0, "n": 400, "err_new": 37.5, "err_old": 37.5}
    assert p["val_1_500"] == {"gain_points": 2.0, "se_points": 0.6, "n": 500, "err_new": 48.0, "err_old": 50.0}
    assert paired_rows({"val_error": {}}, {"val_correct": {"0.5": "1"}}) is None  # an older row without per-image results
    with pytest.raises(InputError, match="different numbers of images"):
        paired_rows({"val_correct": {"0.5": "10"}}, {"val_correct": {"0.5": "1"}})
    with pytest.raises(InputError, match="string of 0 and 1"):
        decode_correct("1x0")

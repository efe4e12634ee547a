"""Tests of the tuning-split mask statistics (paperlib.experiments.ablation) on hand-made masks."""

from __future__ import annotations

import pytest
import torch

from paperlib.errors import InputError
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


def test_mask_statistics_of_a_fixed_square():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    stats = mask_statistics(_BoxMasker(), _ColourBox(), x, torch.tensor([0, 1, 0, 1]), batch_size=3)
    assert stats["area"] == pytest.approx(0.25)
    assert stats["area_05"] == pytest.approx(0.25)
    assert stats["box_area"] == pytest.approx(0.25)
    assert stats["islands"] == 0 and stats["holes"] == 0 and stats["empty"] == 0
    assert 0 < stats["p_kept"] < 1 and 0 < stats["p_removed"] < 1
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
    assert p["tune_401_500"]["gain_points"] == 10.0 and p["tune_401_500"]["se_points"] > 0
    assert p["report_1_400"]["gain_points"] == 0.0 and p["report_1_400"]["se_points"] == 0.0
    assert p["val_1_500"] == {
        "gain_points": 2.0,
        "se_points": p["val_1_500"]["se_points"],
        "n": 500,
        "err_new": 48.0,
        "err_old": 50.0,
    }
    assert paired_rows({"val_error": {}}, {"val_correct": {"0.5": "1"}}) is None  # an older row without per-image results
    with pytest.raises(InputError, match="different numbers of images"):
        paired_rows({"val_correct": {"0.5": "10"}}, {"val_correct": {"0.5": "1"}})
    with pytest.raises(InputError, match="string of 0 and 1"):
        decode_correct("1x0")

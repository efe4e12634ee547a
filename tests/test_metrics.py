"""Tests of paperlib.metrics on hand-made cases."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from paperlib.core.errors import InputError
from paperlib.core.metrics import (
    LocalisationError,
    box_area,
    box_iou,
    box_saliency_scores,
    center_box,
    ground_truth_box,
    localisation_correct,
    localisation_error,
    mask_to_box,
    max_box,
    mean_saliency_metric,
    saliency_metric,
    scale_boxes,
)


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


# ---------------------------------------------------------------- boxes / IoU
def test_box_area_inclusive():
    assert box_area(t([0, 0, 9, 9]))[0] == 100
    assert box_area(t([3, 2, 3, 2]))[0] == 1  # single pixel
    assert box_area(t([5, 5, 2, 2]))[0] == 0  # degenerate


def test_box_iou_known_values():
    a, b = t([0, 0, 9, 9]), t([5, 5, 14, 14])
    assert box_iou(a, b).item() == pytest.approx(25 / 175)
    assert box_iou(a, a).item() == pytest.approx(1.0)
    assert box_iou(a, t([10, 10, 20, 20])).item() == 0.0  # disjoint (adjacent pixels)
    iou = box_iou(t([0, 0, 9, 9], [5, 5, 14, 14]), t([0, 0, 9, 9], [5, 5, 14, 14], [100, 100, 110, 110]))
    assert iou.shape == (2, 3)
    assert torch.allclose(iou, torch.tensor([[1, 25 / 175, 0], [25 / 175, 1, 0]]))


def test_box_iou_bad_shape():
    with pytest.raises(InputError, match=r"\(\.\.\., 4\)"):
        box_iou(torch.zeros(2, 3), torch.zeros(2, 4))


def test_localisation_correct_any_gt_box():
    pred = t([0, 0, 9, 9], [50, 50, 59, 59])
    gts = [
        t([30, 30, 40, 40], [1, 1, 9, 9]),  # only the second gt box matches
        t([0, 0, 99, 99]),
    ]  # IoU 0.01: wrong
    correct = localisation_correct(pred, gts)
    assert correct.tolist() == [True, False]
    assert localisation_error(pred, gts) == pytest.approx(50.0)


def test_localisation_strict_half():
    # IoU exactly 0.5 is not correct: [0,0,9,9] vs [0,0,19,9] -> 100/200
    pred, gt = t([0, 0, 9, 9]), t([0, 0, 19, 9])
    assert box_iou(pred, gt).item() == pytest.approx(0.5)
    assert localisation_correct(pred, gt).tolist() == [False]


def test_localisation_batch_mismatch():
    with pytest.raises(InputError, match="ground-truth boxes for 1 images"):
        localisation_correct(t([0, 0, 1, 1], [0, 0, 1, 1]), [t([0, 0, 1, 1])])


def test_localisation_error_accumulator():
    m = LocalisationError()
    m.update(t([0, 0, 9, 9]), [t([0, 0, 9, 9])])
    m.update(t([0, 0, 9, 9], [0, 0, 9, 9], [0, 0, 9, 9]), t([0, 0, 9, 9], [50, 50, 60, 60], [0, 0, 9, 9]))
    assert m.total == 4 and m.correct == 3
    assert m.compute() == pytest.approx(25.0)
    m.reset()
    with pytest.raises(InputError):
        m.compute()


# ---------------------------------------------------------------- mask_to_box
def test_mask_to_box_single_pixel_and_shapes():
    m = torch.zeros(2, 1, 10, 12)
    m[0, 0, 3, 7] = 1.0
    m[1, 0, 2:5, 1] = 0.9
    m[1, 0, 8, 10] = 0.6
    boxes = mask_to_box(m)
    assert boxes.tolist() == [[7, 3, 7, 3], [1, 2, 10, 8]]
    assert torch.equal(mask_to_box(m[:, 0]), boxes)  # (N, H, W) accepted


def test_mask_to_box_threshold_strict_and_empty_fallback():
    m = torch.full((2, 1, 6, 8), 0.5)  # exactly at threshold: not salient
    m[1, 0, 1, 2] = 0.51
    boxes, empty = mask_to_box(m, return_empty=True)
    assert empty.tolist() == [True, False]
    assert boxes[0].tolist() == [0, 0, 7, 5]  # whole-image fallback
    assert boxes[1].tolist() == [2, 1, 2, 1]


@pytest.mark.parametrize(
    "bad, msg",
    [(torch.zeros(2, 3, 4, 4), "channels"), (torch.zeros(4, 4), "2-D"), (torch.full((1, 4, 4), 1.5), r"\[0, 1\]")],
)
def test_mask_to_box_validation(bad, msg):
    with pytest.raises(InputError, match=msg):
        mask_to_box(bad)


# ---------------------------------------------------------------- scale_boxes
def test_scale_boxes_full_image_and_round_trip():
    full = scale_boxes(t([0, 0, 55, 55]), (56, 56), (500, 375))
    assert torch.allclose(full, t([0, 0, 499, 374]))
    b = t([3, 7, 20, 41], [0, 0, 0, 0])
    there = scale_boxes(b, (56, 56), (500, 375))
    back = scale_boxes(there, (500, 375), (56, 56))
    assert torch.allclose(back, b, atol=1e-4)
    # per-box sizes
    per = scale_boxes(t([0, 0, 9, 9], [0, 0, 9, 9]), (10, 10), torch.tensor([[20, 20], [30, 40]]))
    assert torch.allclose(per, t([0, 0, 19, 19], [0, 0, 29, 39]))


# ---------------------------------------------------------------- box baselines
def test_max_and_center_box():
    assert max_box((500, 375)).tolist() == [0, 0, 499, 374]
    W, H = 500, 375
    c = center_box((W, H))
    area = box_area(c).item()
    assert area == pytest.approx(W * H / 2, rel=0.01)
    w, h = c[2] - c[0] + 1, c[3] - c[1] + 1
    assert (w / h).item() == pytest.approx(W / H, rel=0.01)
    # centred within a pixel
    assert abs((c[0] + c[2]) / 2 - (W - 1) / 2) <= 1 and abs((c[1] + c[3]) / 2 - (H - 1) / 2) <= 1
    batched = center_box(torch.tensor([[W, H], [224, 224]]))
    assert batched.shape == (2, 4) and torch.equal(batched[0], c)
    assert batched[1].tolist() == [33, 33, 190, 190]  # side round(224/sqrt2)=158


def test_ground_truth_box_tightest_enclosing():
    gts = [t([10, 10, 20, 20], [30, 5, 40, 15]), t([0, 0, 5, 5])]
    assert ground_truth_box(gts).tolist() == [[10, 5, 40, 20], [0, 0, 5, 5]]
    labels = [torch.tensor([1, 2]), torch.tensor([1])]
    assert ground_truth_box(gts, labels, torch.tensor([2, 1])).tolist() == [[30, 5, 40, 15], [0, 0, 5, 5]]
    with pytest.raises(InputError, match="no ground-truth box"):
        ground_truth_box(gts, labels, torch.tensor([3, 1]))


# ---------------------------------------------------------------- saliency metric
def test_saliency_metric_area_clamp():
    p = torch.tensor(0.3)
    assert saliency_metric(0.01, p).item() == pytest.approx(math.log(0.05) - math.log(0.3))
    assert saliency_metric(0.5, 0.3).item() == pytest.approx(math.log(0.5) - math.log(0.3))
    assert torch.isfinite(saliency_metric(1.0, 0.0))  # p clamped at 1e-12
    with pytest.raises(InputError):
        saliency_metric(1.2, 0.3)


class RedClassifier(nn.Module):
    """Logit of class 0 = 10 * mean red, class 1 = 5 (constant)."""

    input_size = 16

    def forward(self, x):
        assert x.shape[-2:] == (16, 16)
        r = x[:, 0].mean(dim=(1, 2)) * 10
        return torch.stack([r, torch.full_like(r, 5.0)], dim=1)


def test_box_saliency_scores_crop_beats_whole_image():
    img = torch.zeros(1, 3, 40, 60)
    img[0, 0, 10:20, 30:50] = 1.0  # red inside rows 10..19, cols 30..49
    img = img.repeat(2, 1, 1, 1)
    boxes = torch.stack([t([30, 10, 49, 19])[0], max_box((60, 40))])
    out = box_saliency_scores(RedClassifier(), img, boxes, torch.tensor([0, 0]), batch_size=1)
    assert set(out) == {"area", "prob", "score"}
    assert out["area"].tolist() == pytest.approx([200 / 2400, 1.0])
    assert out["prob"][0] > out["prob"][1]
    assert out["prob"][0].item() == pytest.approx(torch.sigmoid(torch.tensor(5.0)).item(), abs=1e-5)
    assert out["score"][0] < out["score"][1]
    expected = saliency_metric(out["area"].double(), out["prob"].double())
    assert torch.allclose(out["score"].double(), expected, atol=1e-5)
    mean = mean_saliency_metric(RedClassifier(), list(img), boxes, [0, 0])
    assert mean == pytest.approx(out["score"].mean().item(), abs=1e-5)


def test_box_saliency_scores_validation():
    with pytest.raises(InputError, match="2 images but 1 boxes"):
        box_saliency_scores(RedClassifier(), torch.zeros(2, 3, 8, 8), t([0, 0, 3, 3]), [0, 0])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        box_saliency_scores(RedClassifier(), torch.full((1, 3, 8, 8), 2.0), t([0, 0, 3, 3]), [0])


def test_ground_truth_box_largest_mode():
    import paperlib.core.metrics as M

    gt = [torch.tensor([[0.0, 0.0, 9.0, 9.0], [20.0, 20.0, 49.0, 49.0]])]
    assert M.ground_truth_box(gt, mode="largest").tolist() == [[20.0, 20.0, 49.0, 49.0]]
    assert M.ground_truth_box(gt).tolist() == [[0.0, 0.0, 49.0, 49.0]]


class _LeftHalfBrightness(torch.nn.Module):
    """Logits (N, 2): class 0 grows with the brightness of the left half of the image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = x[..., : x.shape[-1] // 2].mean(dim=(1, 2, 3))
        return torch.stack([10 * (left - 0.5), torch.zeros_like(left)], dim=1)


def test_evidence_probabilities_keep_and_remove():
    from paperlib.core.metrics import evidence_probabilities

    clf = _LeftHalfBrightness()
    x = torch.zeros(2, 3, 8, 8)
    x[..., :4] = 1.0  # bright left half: class 0 is likely
    ones, zeros = torch.ones(2, 1, 8, 8), torch.zeros(2, 1, 8, 8)
    full = evidence_probabilities(clf, x, ones, 0)
    assert torch.allclose(full["kept"], full["image"]) and torch.allclose(full["area"], torch.ones(2))
    assert torch.allclose(full["removed"], torch.full((2,), 0.5))  # grey everywhere: logit 0 vs 0
    left = zeros.clone()
    left[..., :4] = 1.0
    res = evidence_probabilities(clf, x, left, torch.tensor([0, 0]))
    assert torch.allclose(res["kept"], res["image"])  # the evidence is all in the left half
    assert (res["removed"] < res["kept"]).all() and torch.allclose(res["area"], torch.full((2,), 0.5))
    with pytest.raises(InputError):
        evidence_probabilities(clf, x, torch.ones(2, 1, 4, 4), 0)

"""Known-answer tests of the deletion / insertion curves and the pointing game (paperlib.core.faithfulness)."""

from __future__ import annotations

import pytest
import torch

from paperlib.core.errors import InputError
from paperlib.core.faithfulness import curve_auc, deletion_curve, insertion_curve, pixel_order, pointing_hits


class _RedCounter(torch.nn.Module):
    """Two classes: logit of class 0 = 8 * (sum of red over pixels) / (H * W) - 4, class 1 fixed at 0."""

    def forward(self, x):
        z = 8 * x[:, 0].mean((1, 2)) - 4
        return torch.stack([z, torch.zeros_like(z)], 1)


def _image():
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # the two top pixels are red
    return x


def test_deletion_of_the_right_pixels_drops_the_probability_at_once():
    x, grey = _image(), torch.zeros(1, 3, 2, 2)  # alternative: black, no red
    good = torch.tensor([[[[0.9, 0.8], [0.1, 0.0]]]])
    bad = 1 - good
    p = lambda red: torch.sigmoid(torch.tensor(8 * red / 4 - 4))  # noqa: E731
    dg = deletion_curve(_RedCounter(), x, good, [0], steps=4, alternative=grey)
    db = deletion_curve(_RedCounter(), x, bad, [0], steps=4, alternative=grey)
    # good order removes red, red, then nothing of value; bad order removes the black pixels first
    assert torch.allclose(dg[0], torch.stack([p(2), p(1), p(0), p(0), p(0)]), atol=1e-6)
    assert torch.allclose(db[0], torch.stack([p(2), p(2), p(2), p(1), p(0)]), atol=1e-6)
    assert curve_auc(dg) < curve_auc(db)
    ig = insertion_curve(_RedCounter(), x, good, [0], steps=4, alternative=grey)
    assert torch.allclose(ig[0], torch.stack([p(0), p(1), p(2), p(2), p(2)]), atol=1e-6)
    assert curve_auc(ig) > curve_auc(insertion_curve(_RedCounter(), x, bad, [0], steps=4, alternative=grey))


def test_auc_trapezoid_and_ties_are_broken_by_a_fixed_permutation():
    assert curve_auc(torch.tensor([[0.0, 1.0]])).item() == pytest.approx(0.5)
    flat = torch.zeros(2, 1, 4, 4)
    o1, o2 = pixel_order(flat, seed=3), pixel_order(flat, seed=3)
    assert torch.equal(o1, o2) and sorted(o1[0].tolist()) == list(range(16))
    assert o1[0].tolist() != list(range(16))  # not a raster scan
    with pytest.raises(InputError):
        curve_auc(torch.ones(3))


def test_curves_check_their_inputs():
    x = _image()
    with pytest.raises(InputError):
        deletion_curve(_RedCounter(), x, torch.zeros(1, 1, 3, 3), [0])
    with pytest.raises(InputError):
        deletion_curve(_RedCounter(), x, torch.zeros(1, 1, 2, 2), [0, 1])
    with pytest.raises(InputError):
        deletion_curve(_RedCounter(), x, torch.zeros(1, 1, 2, 2), [0], alternative="noise")


def test_pointing_game_counts_the_tolerance_and_any_box():
    m = torch.zeros(2, 1, 50, 50)
    m[0, 0, 10, 40] = 1.0  # x = 40, y = 10
    m[1, 0, 45, 45] = 1.0
    boxes = [torch.tensor([[0.0, 0.0, 20.0, 20.0], [38.0, 8.0, 49.0, 12.0]]), torch.tensor([[0.0, 0.0, 20.0, 20.0]])]
    assert pointing_hits(m, boxes, tolerance=0).tolist() == [True, False]
    assert pointing_hits(m, [boxes[0][:1], boxes[1]], tolerance=15).tolist() == [False, False]
    assert pointing_hits(m, [boxes[0][:1], boxes[1]], tolerance=20).tolist() == [True, False]

"""The authors' objective (``ObjectiveConfig.authors``) against a transcription of their code.

Their ``calc_smoothness_loss`` and ``cw_loss`` (github PiotrDabkowski/pytorch-saliency,
``sal/utils/mask.py`` and ``sal/utils/pytorch_fixes.py``) are re-typed here in current PyTorch and
compared with this project's terms; the fake-label rule of their ``saliency_train.py`` (the true
class as target, roles reversed) is checked on a black box whose logits are known.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from paperlib.core.errors import InputError
from paperlib.core.objective import ObjectiveConfig, alternative_images, saliency_objective, smoothness_sum


def their_smoothness(mask, power=2, border_penalty=0.3):
    x_loss = torch.sum((torch.abs(mask[:, :, 1:, :] - mask[:, :, :-1, :])) ** power)
    y_loss = torch.sum((torch.abs(mask[:, :, :, 1:] - mask[:, :, :, :-1])) ** power)
    border = float(border_penalty) * torch.sum(
        mask[:, :, -1, :] ** power + mask[:, :, 0, :] ** power + mask[:, :, :, -1] ** power + mask[:, :, :, 0] ** power
    )
    return (x_loss + y_loss + border) / float(power * mask.size(0))


def their_cw_loss(logits, one_hot_labels, targeted, t_conf, nt_conf):
    this = torch.sum(logits * one_hot_labels, 1)
    other_best, _ = torch.max(logits * (1.0 - one_hot_labels) - 12111 * one_hot_labels, 1)
    t = F.relu(other_best - this + t_conf)
    nt = F.relu(this - other_best + nt_conf)
    return t * targeted.float() + nt * (~targeted).float()  # per sample (they take the batch mean)


class FixedLogits(nn.Module):
    """Logits that depend only on whether the image is mostly kept: X -> a, A -> b (per class)."""

    def __init__(self, kept, removed):
        super().__init__()
        self.kept, self.removed = torch.tensor(kept), torch.tensor(removed)

    def forward(self, x):
        w = (x.mean((1, 2, 3)) > 0.5).float()[:, None]  # images are ones, alternatives are near 0
        return w * self.kept + (1 - w) * self.removed


def test_smoothness_equals_their_calc_smoothness_loss():
    # their border sum adds the four edges elementwise, so it runs on square masks only
    m = torch.rand(4, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    assert smoothness_sum(m, 0.3).mean().item() == pytest.approx(their_smoothness(m).item(), rel=1e-6)
    assert smoothness_sum(m, 0.0).mean().item() == pytest.approx(their_smoothness(m, border_penalty=0).item(), rel=1e-6)


def test_authors_preset_values():
    c = ObjectiveConfig.authors()
    assert (c.l0, c.l1, c.l2, c.l3) == (0.3, 0.005, 8.0, 1.0)
    assert (c.area_power, c.area_eps, c.classification) == (0.3, 5e-4, "hinge")
    assert (c.preserve_confidence, c.destroy_confidence, c.tv_form, c.tv_border) == (1.0, 5.0, "sum", 0.3)
    assert (c.blur_sigma, c.p_blur, c.noise_std, c.colour_range, c.image_noise_std) == (11.0, 0.5, 0.055, 0.33, 0.015)
    assert c.fake_targets == "reversed" and c.separate_alternatives
    assert ObjectiveConfig.preset("authors") == c


def test_colour_range_is_centred_on_grey():
    x = torch.rand(256, 3, 4, 4)
    a = alternative_images(x, p_blur=0.0, noise_std=0.0, colour_range=0.33, generator=torch.Generator().manual_seed(1))
    assert a.min() >= 0.5 - 0.165 - 1e-6 and a.max() <= 0.5 + 0.165 + 1e-6
    assert a.max() - a.min() > 0.3  # the whole range is used
    full = alternative_images(x, p_blur=0.0, noise_std=0.0, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(a, 0.5 + (full - 0.5) * 0.33)


def test_real_and_fake_targets_match_their_cw_losses():
    kept = [[4.0, 1.0, 0.0], [4.0, 1.0, 0.0]][0]
    removed = [0.5, 2.0, 0.0]
    bb = FixedLogits(kept, removed)
    images = torch.ones(4, 3, 8, 8)
    masks = torch.ones(4, 1, 8, 8)  # kept image = X, removed image = A
    labels = torch.tensor([0, 0, 1, 0])
    classes = torch.tensor([0, 2, 1, 1])  # samples 1 and 3 carry fake labels
    is_real = classes == labels
    cfg = ObjectiveConfig.authors(image_noise_std=0.0, noise_std=0.0, p_blur=0.0, colour_range=0.0)  # A = grey 0.5 -> "removed"
    alt = torch.full_like(images, 0.2)
    t = saliency_objective(bb, images, masks, classes, is_real=is_real, labels=labels, config=cfg, alternative=alt)
    onehot = F.one_hot(labels, 3).float()  # their loss is given the true labels as targets
    keep_logits = bb(images)
    drop_logits = bb(alt)
    want_pres = their_cw_loss(keep_logits, onehot, targeted=is_real, t_conf=1.0, nt_conf=1.0)
    want_dest = their_cw_loss(drop_logits, onehot, targeted=~is_real, t_conf=1.0, nt_conf=5.0)
    assert torch.allclose(t["preserve"], want_pres)
    assert torch.allclose(t["destroy"], want_dest)
    # every term applies to fake labels too (their total has no real/fake switch)
    want_total = want_dest + 8 * t["area"] + 0.005 * smoothness_sum(masks, 0.3) + 0.3 * want_pres
    assert torch.allclose(t["total"], want_total)
    assert t["preserve"][1] > 0 and t["destroy"][1] > 0  # class 0 kept (margin 3): the fake sample is penalised


def test_reversed_fakes_need_labels_and_hinge():
    bb = FixedLogits([1.0, 0.0], [0.0, 1.0])
    x, m = torch.ones(2, 3, 8, 8), torch.ones(2, 1, 8, 8)
    with pytest.raises(InputError, match="labels"):
        saliency_objective(bb, x, m, torch.tensor([0, 1]), is_real=torch.tensor([True, False]), config=ObjectiveConfig.authors())
    with pytest.raises(InputError, match="hinge"):
        ObjectiveConfig.authors(classification="log")


def test_image_noise_and_separate_alternatives_are_seeded_per_sample():
    bb = FixedLogits([1.0, 0.0], [0.0, 1.0])
    x, m = torch.rand(3, 3, 16, 16), torch.rand(3, 1, 16, 16)
    cls = torch.tensor([0, 1, 0])

    def gens():
        return [torch.Generator().manual_seed(s) for s in (5, 6, 7)]

    a = saliency_objective(bb, x, m, cls, labels=cls, config=ObjectiveConfig.authors(), generator=gens())
    b = saliency_objective(bb, x, m, cls, labels=cls, config=ObjectiveConfig.authors(), generator=gens())
    assert torch.equal(a["total"], b["total"])


def test_frozen_class_embedding_and_constant_schedule():
    from paperlib.core.masker import FeatureFilter
    from paperlib.experiments._loop import masker_optimiser

    f = FeatureFilter(10, 4, frozen=True)
    trainable = {n for n, p in f.named_parameters() if p.requires_grad}
    assert trainable == {"scale", "offset"}  # class rows and per-class biases stay as they start
    before = f.embedding.weight.clone()
    opt, sched = masker_optimiser(f, 1e-2, 30.0, steps=5, schedule="constant", weight_decay=1e-4)
    assert opt.param_groups[0]["weight_decay"] == 1e-4
    x = torch.randn(3, 4, 2, 2)
    for _ in range(8):  # past ``steps``: a constant rate does not fall to 0
        y, gate = f(x, torch.tensor([0, 1, 2]))
        opt.zero_grad()
        gate.sum().backward()
        opt.step()
        sched.step()
    assert torch.equal(f.embedding.weight, before)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 0.3]
    with pytest.raises(InputError, match="schedule"):
        masker_optimiser(f, 1e-2, 30.0, steps=5, schedule="linear")

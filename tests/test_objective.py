"""Hand-made cases for every term of the objective (eq. 4)."""

import math

import pytest
import torch
from torch import nn

from paperlib.core.errors import InputError
from paperlib.core.objective import (
    ObjectiveConfig,
    SaliencyLoss,
    alternative_images,
    apply_mask,
    area,
    destroy_term,
    gaussian_blur,
    preserve_term,
    saliency_objective,
    selector_loss,
    total_variation,
)


class RedInBox(nn.Module):
    """Logit of class 0 = 10 * mean red inside rows/cols 8..15; class 1 = 2.5."""

    def forward(self, x):
        r = x[:, 0, 8:16, 8:16].mean((1, 2)) * 10
        return torch.stack([r, torch.full_like(r, 2.5)], 1)


def test_tv_of_constant_mask_is_zero():
    assert torch.allclose(total_variation(torch.full((2, 1, 8, 8), 0.7)), torch.zeros(2))


def test_tv_of_half_mask_is_one_over_edges():
    m = torch.zeros(1, 1, 4, 5)
    m[..., 3:] = 1  # one vertical edge: 4 of the 4*4 horizontal pairs differ
    assert total_variation(m).item() == pytest.approx(4 / 16)


def test_tv_squares_the_differences_of_a_non_binary_mask():
    # [[0.2, 0.5, 0.9],
    #  [0.9, 0.2, 0.5]]
    # horizontal differences 0.3, 0.4, -0.7, 0.3: squares 0.09 + 0.16 + 0.49 + 0.09 = 0.83, mean over 4 pairs = 0.2075
    # vertical differences 0.7, -0.3, -0.4: squares 0.49 + 0.09 + 0.16 = 0.74, mean over 3 pairs = 0.246667
    # TV = 0.454167 (the absolute differences would give 0.425 + 0.466667 = 0.891667)
    m = torch.tensor([[[[0.2, 0.5, 0.9], [0.9, 0.2, 0.5]]]])
    assert total_variation(m).item() == pytest.approx(0.4541667, abs=1e-6)
    # per image: the mask and its left-right mirror give the same value, a constant mask 0
    batch = torch.cat([m, m.flip(-1), torch.full_like(m, 0.5)])
    assert total_variation(batch).tolist() == pytest.approx([0.4541667, 0.4541667, 0.0], abs=1e-6)


def test_area_mean_and_power():
    m = torch.zeros(1, 1, 4, 4)
    m[..., :2, :] = 1
    assert area(m).item() == pytest.approx(0.5)
    assert area(m, power=0.3, eps=5e-4).item() == pytest.approx(0.5 * (1 + 5e-4) ** 0.3 + 0.5 * (5e-4) ** 0.3)


def test_area_power_on_a_non_binary_mask():
    # (0.2005)^0.3 = 0.6174962, (0.5005)^0.3 = 0.8124960, (0.9005)^0.3 = 0.9690476, each twice: mean 0.7996799
    m = torch.tensor([[[[0.2, 0.5, 0.9], [0.9, 0.2, 0.5]]]])
    assert area(m, power=0.3, eps=5e-4).item() == pytest.approx(0.7996799, abs=1e-6)
    assert area(m).item() == pytest.approx(0.5333333, abs=1e-6)  # the paper's mean(M)
    assert area(m, power=1.0, eps=5e-4).item() == pytest.approx(0.5338333, abs=1e-6)  # eps alone shifts the mean


def test_phi_with_full_mask_returns_x_and_empty_returns_a():
    x, a = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    assert torch.equal(apply_mask(x, torch.ones(2, 1, 8, 8), a), x)
    assert torch.equal(apply_mask(x, torch.zeros(2, 1, 8, 8), a), a)


def test_alternative_is_blur_or_noisy_colour_and_drawn_anew():
    x = torch.rand(64, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    blur_only = alternative_images(x, p_blur=1.0, generator=g)
    assert torch.allclose(blur_only, gaussian_blur(x, 10 * 32 / 224))
    colour_only = alternative_images(x, p_blur=0.0, noise_std=0.0, generator=g)
    assert torch.allclose(colour_only, colour_only.mean((2, 3), keepdim=True).expand_as(colour_only))
    a1, a2 = alternative_images(x, generator=g), alternative_images(x, generator=g)
    assert not torch.equal(a1, a2)
    assert 0.0 <= float(a1.min()) and float(a1.max()) <= 1.0


def test_gaussian_blur_preserves_constants_and_smooths():
    c = torch.full((1, 3, 40, 40), 0.3)
    assert torch.allclose(gaussian_blur(c, 10.0), c, atol=1e-5)
    x = torch.rand(1, 3, 64, 64)
    assert gaussian_blur(x, 10.0).std() < 0.2 * x.std()


def test_objective_terms_on_a_known_case():
    bb = RedInBox()
    x = torch.zeros(1, 3, 32, 32)
    x[:, 0, 8:16, 8:16] = 1.0
    a = torch.zeros_like(x)
    m = torch.zeros(1, 1, 32, 32)
    m[..., 8:16, 8:16] = 1.0
    cfg = ObjectiveConfig.paper()
    t = saliency_objective(bb, x, m, torch.tensor([0]), config=cfg, alternative=a)
    # preserved image = x: logit 10 vs 2.5; destroyed image = 0: logits 0 vs 2.5
    logp_keep = torch.tensor([10.0, 2.5]).log_softmax(0)[0]
    p_drop = torch.tensor([0.0, 2.5]).softmax(0)[0]
    assert t["preserve"].item() == pytest.approx(-logp_keep.item(), rel=1e-5)
    assert t["destroy"].item() == pytest.approx(p_drop.item() ** 0.3, rel=1e-5)
    assert t["area"].item() == pytest.approx(64 / 1024)
    # an 8 x 8 square in 32 x 32: 16 of the 32 * 31 = 992 horizontal pairs differ, and 16 of the 992 vertical ones
    assert t["tv"].item() == pytest.approx(32 / 992, rel=1e-6)
    # 10 * 0.0322581 + 1e-3 * 0.0625 - log softmax([10, 2.5])_0 + 5 * softmax([0, 2.5])_0 ^ 0.3
    # = 0.3225806 + 0.0000625 + 0.0005529 + 5 * 0.0758582 ^ 0.3 (= 5 * 0.4613183) = 2.6297878
    assert -logp_keep.item() == pytest.approx(5.5293e-4, rel=1e-3)
    assert p_drop.item() == pytest.approx(0.0758582, rel=1e-5)
    assert t["total"].item() == pytest.approx(2.6297878, rel=1e-5)


def test_fake_labels_get_the_area_term_only():
    bb = RedInBox()
    x = torch.rand(2, 3, 32, 32)
    m = torch.rand(2, 1, 32, 32)
    cfg = ObjectiveConfig()
    t = saliency_objective(bb, x, m, torch.tensor([0, 0]), is_real=torch.tensor([True, False]), config=cfg)
    assert t["preserve"][1] == 0 and t["destroy"][1] == 0
    assert t["total"][1].item() == pytest.approx(cfg.l2 * t["area"][1].item(), rel=1e-6)


def test_hinge_variant_and_selector_loss():
    bb = RedInBox()
    x = torch.rand(2, 3, 32, 32)
    m = torch.rand(2, 1, 32, 32)
    t = saliency_objective(bb, x, m, torch.tensor([0, 1]), config=ObjectiveConfig(classification="hinge"))
    assert torch.isfinite(t["total"]).all()
    gate = torch.tensor([[[0.9, 0.1]], [[0.2, 0.1]]])
    loss = selector_loss(gate, torch.tensor([True, False]))
    assert loss[0].item() == pytest.approx(-math.log(0.9), rel=1e-5)
    assert loss[1].item() == pytest.approx(-math.log(0.8), rel=1e-5)


#: Logits of three samples and their classes c; margin z_c - max_{k != c} z_k:
#: 2.0 - 0.5 = 1.5, 0.8 - 1.1 = -0.3, 0.0 - 7.0 = -7.0.
HINGE_LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.3, 1.1, 0.8], [0.0, 7.0, 1.0]])
HINGE_CLASSES = torch.tensor([0, 2, 0])


def test_hinge_terms_by_hand_with_confidence_one():
    cfg = ObjectiveConfig(classification="hinge")  # kappa = 1 for both terms
    pres, p_keep = preserve_term(HINGE_LOGITS, HINGE_CLASSES, cfg)
    dest, p_drop = destroy_term(HINGE_LOGITS, HINGE_CLASSES, cfg)
    # preserve = relu(1 - margin): relu(-0.5), relu(1.3), relu(8.0)
    assert pres.tolist() == pytest.approx([0.0, 1.3, 8.0], abs=1e-6)
    # destroy = relu(1 + margin): relu(2.5), relu(0.7), relu(-6.0)
    assert dest.tolist() == pytest.approx([2.5, 0.7, 0.0], abs=1e-6)
    # the monitored f_c is the softmax probability of c: e^2 / (e^2 + e^0.5 + e^-1) = 0.7855970 for the first
    assert p_keep[0].item() == pytest.approx(0.7855970, abs=1e-6) and p_drop[0].item() == pytest.approx(0.7855970, abs=1e-6)


def test_hinge_terms_by_hand_with_the_authors_confidences():
    cfg = ObjectiveConfig.authors()  # preserver kappa 1, destroyer kappa 5
    assert (cfg.preserve_confidence, cfg.destroy_confidence, cfg.classification) == (1.0, 5.0, "hinge")
    pres, _ = preserve_term(HINGE_LOGITS, HINGE_CLASSES, cfg)
    dest, _ = destroy_term(HINGE_LOGITS, HINGE_CLASSES, cfg)
    assert pres.tolist() == pytest.approx([0.0, 1.3, 8.0], abs=1e-6)  # relu(1 - margin)
    assert dest.tolist() == pytest.approx([6.5, 4.7, 0.0], abs=1e-6)  # relu(5 + margin): relu(6.5), relu(4.7), relu(-2.0)


def test_hinge_objective_on_a_known_case():
    """Class 1 of RedInBox: kept image logits [10, 2.5] (margin -7.5), removed image [0, 2.5] (margin 2.5)."""
    x = torch.zeros(1, 3, 32, 32)
    x[:, 0, 8:16, 8:16] = 1.0
    m = torch.zeros(1, 1, 32, 32)
    m[..., 8:16, 8:16] = 1.0
    cfg = ObjectiveConfig(classification="hinge")
    t = saliency_objective(RedInBox(), x, m, torch.tensor([1]), config=cfg, alternative=torch.zeros_like(x))
    assert t["preserve"].item() == pytest.approx(8.5, abs=1e-5)  # relu(1 + 7.5)
    assert t["destroy"].item() == pytest.approx(3.5, abs=1e-5)  # relu(1 + 2.5)
    # 10 * 32 / 992 + 1e-3 * 64 / 1024 + 8.5 + 5 * 3.5
    assert t["total"].item() == pytest.approx(26.3226431, abs=1e-5)


def test_loss_module_gradients_reach_the_mask_only():
    bb = RedInBox()
    x = torch.rand(2, 3, 32, 32)
    logit = torch.zeros(2, 1, 32, 32, requires_grad=True)
    loss = SaliencyLoss(bb)(x, torch.sigmoid(logit), torch.tensor([0, 1]))
    loss.backward()
    assert logit.grad is not None and logit.grad.abs().sum() > 0
    assert loss.ndim == 0 and loss.requires_grad and loss.grad_fn is not None  # a differentiable scalar


def test_bad_config_and_mask_shapes():
    with pytest.raises(InputError):
        ObjectiveConfig(classification="softmax")
    with pytest.raises(InputError):
        total_variation(torch.rand(2, 8, 8))


def test_default_objective_is_the_papers_eq4():
    cfg = ObjectiveConfig()
    assert (cfg.l0, cfg.l1, cfg.l2, cfg.l3, cfg.l4) == (1.0, 10.0, 1e-3, 5.0, 0.3)
    assert (cfg.area_power, cfg.area_eps, cfg.classification, cfg.selector_weight) == (1.0, 0.0, "log", 0.0)
    assert cfg == ObjectiveConfig.paper() == ObjectiveConfig.preset("paper")
    m = torch.rand(3, 1, 8, 8)
    assert torch.allclose(area(m, cfg.area_power, cfg.area_eps), m.flatten(1).mean(1))  # AV = mean(M)
    with pytest.raises(InputError, match="Unknown objective preset"):
        ObjectiveConfig.preset("nope")


SHIPPED_RECIPE = ObjectiveConfig(
    l0=1.0,
    l1=10.0,
    l2=2.0,
    l3=5.0,
    l4=0.3,
    area_power=1.0,
    area_eps=0.0,
    classification="log",
    blur_sigma=10.0,
    p_blur=0.5,
    noise_std=0.2,
    selector_weight=1.0,
)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "cifar10"])
def test_shipped_commands_give_the_objective_they_were_trained_with(name):
    """The recorded `python -m paperlib.train ...` commands pass every weight that differs between the old
    and the new default, so they still give the objective the shipped maskers were trained with (the
    project recipe, or the authors' for the Lite0 masker shipped from the long run)."""
    import json
    import shlex

    from paperlib.core.paths import CHECKPOINT_DIR
    from paperlib.experiments.train import _parse, saved_objective

    info = json.loads((CHECKPOINT_DIR / f"{name}.json").read_text())
    argv = shlex.split(info["command"])
    assert argv[:3] == ["python", "-m", "paperlib.train"]
    cfg = _parse(argv[3:])
    if info["train_config"].get("objective_preset") == "authors":  # the Lite0 masker since session 12 (issue 25)
        want = ObjectiveConfig.authors()
        assert cfg.objective_config() == want and _parse(info["train_args"]).objective_config() == want
        assert saved_objective(info["train_config"]) == want
        return
    assert cfg.objective_config() == SHIPPED_RECIPE == ObjectiveConfig.project()
    assert _parse(info["train_args"]).objective_config() == SHIPPED_RECIPE
    # the configuration saved then (only the flags, over the old defaults) reads back the same
    assert saved_objective(info["train_config"]) == SHIPPED_RECIPE
    assert cfg.objective_preset == "paper" and cfg.objective == SHIPPED_RECIPE.to_dict()  # every weight recorded


def test_training_cli_objective_presets():
    from paperlib.experiments.train import _parse

    assert _parse([]).objective_config() == ObjectiveConfig.paper()
    assert _parse(["--preset-objective", "project"]).objective_config() == ObjectiveConfig.project()
    assert _parse(["--preset-objective", "official", "--l1", "2"]).objective_config() == ObjectiveConfig.official(l1=2.0)
    # before 0.2 "default" meant ObjectiveConfig() of that time
    assert _parse(["--preset-objective", "default"]).objective_config() == ObjectiveConfig.legacy()

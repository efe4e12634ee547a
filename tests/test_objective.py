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
    gaussian_blur,
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


def test_area_mean_and_power():
    m = torch.zeros(1, 1, 4, 4)
    m[..., :2, :] = 1
    assert area(m).item() == pytest.approx(0.5)
    assert area(m, power=0.3, eps=5e-4).item() == pytest.approx(0.5 * (1 + 5e-4) ** 0.3 + 0.5 * (5e-4) ** 0.3)


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
    expected = 10 * t["tv"] + 1e-3 * (64 / 1024) - logp_keep + 5 * p_drop**0.3
    assert t["total"].item() == pytest.approx(expected.item(), rel=1e-5)


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
    and the new default, so they still give the objective the shipped maskers were trained with."""
    import json
    import shlex

    from paperlib.core.paths import CHECKPOINT_DIR
    from paperlib.experiments.train import _parse, saved_objective

    info = json.loads((CHECKPOINT_DIR / f"{name}.json").read_text())
    argv = shlex.split(info["command"])
    assert argv[:3] == ["python", "-m", "paperlib.train"]
    cfg = _parse(argv[3:])
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

"""One backbone pass for classification and explanation: the same logits and masks as two passes."""

import pytest
import torch

from paperlib.core.classifiers import load_classifier
from paperlib.core.errors import InputError
from paperlib.core.explainer import Explainer, load_explainer, shares_backbone
from paperlib.core.masker import build_masker


@pytest.fixture(scope="module")
def explainer():
    return load_explainer("efficientnet_lite0")


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def test_one_pass_equals_two_passes_top1(explainer, images):
    assert explainer.one_pass
    logits, masks, classes = explainer(images)
    want_logits = explainer.black_box(images)
    assert torch.allclose(logits, want_logits, atol=1e-4)
    assert torch.equal(classes, want_logits.argmax(-1))
    want = explainer.masker(images, classes)
    assert masks.shape == (3, 1, 224, 224) and torch.allclose(masks, want, atol=1e-5)
    assert not masks.requires_grad


def test_top_k_and_given_classes(explainer, images):
    _, masks, classes = explainer(images, top_k=3)
    assert masks.shape == (3, 3, 224, 224) and classes.shape == (3, 3)
    for j in range(3):
        assert torch.allclose(masks[:, j : j + 1], explainer.masker(images, classes[:, j]), atol=1e-5)
    _, m, c = explainer(images, classes=[1, 2, 3])
    assert c.tolist() == [1, 2, 3] and torch.allclose(m, explainer.masker(images, [1, 2, 3]), atol=1e-5)
    with pytest.raises(InputError):
        explainer(images, classes=[1, 2, 3], top_k=2)


def test_other_sizes_are_resized_like_the_black_box(explainer):
    x = torch.rand(2, 3, 300, 260, generator=torch.Generator().manual_seed(1))
    logits, masks, classes = explainer(x)
    assert torch.allclose(logits, explainer.black_box(x), atol=1e-4) and masks.shape == (2, 1, 300, 260)


def test_another_backbone_falls_back_to_two_passes_with_a_note():
    lite2 = load_classifier("efficientnet_lite2")
    masker = build_masker("efficientnet_lite2", encoder="efficientnet_lite0", widths=[16, 8, 8], blocks=1).eval()
    ok, why = shares_backbone(masker, lite2)
    assert not ok and "efficientnet_lite0" in why
    with pytest.warns(UserWarning, match="two passes"):
        ex = Explainer(masker, lite2)
    x = torch.rand(1, 3, 260, 260)
    logits, masks, classes = ex(x)
    assert torch.equal(logits, lite2(x)) and torch.equal(masks, masker(x, classes))

"""Black boxes: the real Lite classifiers, input checks, registry errors."""

import pytest
import torch

from paperlib import InputError, UnknownModelError, WeightsNotFoundError, available_classifiers, load_classifier
from paperlib.core.classes import imagenet_classes


@pytest.fixture(scope="module")
def lite0():
    return load_classifier("efficientnet_lite0")


@pytest.fixture(scope="module")
def chelsea():
    from skimage import data

    return torch.from_numpy(data.chelsea()).permute(2, 0, 1).float().div(255)[None]


def test_lite0_puts_a_cat_first_on_chelsea(lite0, chelsea):
    probs, idx = lite0.predict(chelsea, k=3)
    top = imagenet_classes().name(int(idx[0, 0]))
    assert "cat" in top.lower(), top
    assert int(idx[0, 0]) in (281, 282, 283, 284, 285)  # tabby, tiger, Persian, Siamese, Egyptian cat


def test_black_box_is_frozen_and_eval(lite0):
    assert not lite0.training
    lite0.train()
    assert not lite0.training
    assert all(not p.requires_grad for p in lite0.parameters())


def test_any_input_size_and_gradients_reach_the_input(lite0):
    x = torch.rand(2, 3, 100, 150, requires_grad=True)
    logits = lite0(x)
    assert logits.shape == (2, 1000)
    logits[:, 0].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(3, 224, 224), "batch dimension"),
        (torch.rand(1, 1, 224, 224), "Grayscale"),
        (torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8), "uint8"),
        (torch.rand(1, 3, 32, 32) * 255, r"\[0, 1\]"),
    ],
)
def test_bad_inputs_say_what_to_do(lite0, bad, match):
    with pytest.raises(InputError, match=match):
        lite0.predict(bad)


def test_unknown_classifier_suggests_names():
    with pytest.raises(UnknownModelError, match="efficientnet_lite0"):
        load_classifier("efficientnet-lite")


def test_torchvision_offline_error_names_the_cache_path(monkeypatch, tmp_path):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models, "resnet50", offline)
    with pytest.raises(WeightsNotFoundError, match=str(tmp_path)):
        load_classifier("resnet50", cache=False)


def test_registry_lists_the_paper_and_offline_black_boxes():
    names = available_classifiers()
    for n in ("alexnet", "googlenet", "resnet50", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "cifar10"):
        assert n in names


@pytest.mark.slow
def test_lite0_top1_on_shared_validation_images(lite0, shared_data):
    from torch.utils.data import DataLoader
    from torchvision import transforms as T

    from paperlib.core.data import ImageNetVal

    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])
    ds = ImageNetVal(transform=tf)
    assert len(ds) == 500
    correct = 0
    with torch.inference_mode():
        for batch in DataLoader(
            ds, batch_size=50, collate_fn=lambda b: (torch.stack([s.image for s in b]), torch.tensor([s.label for s in b]))
        ):
            images, labels = batch
            correct += int((lite0(images).argmax(1) == labels).sum())
    top1 = correct / len(ds)
    print(f"efficientnet_lite0 top-1 on shared val 1-500: {top1:.3f}")
    assert top1 >= 0.70

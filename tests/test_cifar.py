"""The CIFAR-10 black box: network shapes, augmentation, a tiny train/resume/export/load cycle, errors."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from conftest import require_shared
from paperlib.core.classifiers import BlackBox
from paperlib.core.errors import WeightsNotFoundError
from paperlib.experiments.cifar import (
    CifarNet,
    ClassifierTrainConfig,
    augment_batch,
    cifar_normalize,
    evaluate_classifier,
    export_classifier,
    load_cifar10_classifier,
    train_classifier,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tests share the machine with long jobs: one torch thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cifarnet_shapes_and_cam_layer():
    net = CifarNet(width=8).eval()
    feats = {}
    net.cam_layer.register_forward_hook(lambda m, i, o: feats.setdefault("cam", o))
    x = cifar_normalize(torch.rand(3, 3, 32, 32))
    with torch.no_grad():
        out = net(x)
    assert out.shape == (3, 10)
    assert feats["cam"].shape == (3, 64, 4, 4)
    assert isinstance(net.fc, torch.nn.Linear) and net.fc.in_features == 64


def test_augmentation_keeps_shape_and_flips_when_forced():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    y = augment_batch(x, padding=4, cutout=8, generator=g)
    assert y.shape == x.shape and y.dtype == torch.uint8
    assert not torch.equal(y, x)
    assert torch.equal(augment_batch(x, padding=0, flip_prob=1.0), x.flip(3))
    assert torch.equal(augment_batch(x, padding=0, flip_prob=0.0), x)
    # the crop equals a window of the reflection-padded image
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    crop = augment_batch(x, padding=4, flip_prob=0.0, generator=g1)
    dy, dx = torch.randint(0, 9, (5,), generator=g2), torch.randint(0, 9, (5,), generator=g2)
    padded = torch.nn.functional.pad(x.float(), (4, 4, 4, 4), mode="reflect")
    ref = torch.stack([padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32] for i in range(5)]).to(torch.uint8)
    assert torch.equal(crop, ref)


def _epochs(run):
    return [json.loads(ln)["epoch"] for ln in (run / "log.jsonl").read_text().splitlines() if ln.strip()]


@pytest.mark.slow
def test_tiny_train_resume_export_load(tmp_path):
    require_shared("cifar10")  # skips with the reason every real-data test gives
    run = tmp_path / "run"
    cfg = ClassifierTrainConfig(
        out=str(run), epochs=2, batch_size=64, width=8, limit=256, test_limit=256, device="cpu", threads=1
    )
    net = train_classifier(cfg, progress=False)
    assert isinstance(net, CifarNet) and not net.training
    assert _epochs(run) == [1, 2]
    assert (run / "last.pt").is_file() and (run / "classifier.pt").is_file()
    rec = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert rec["test_images"] == 256 and 0.0 <= rec["test_acc"] <= 1.0 and rec["seconds"] > 0
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert state["epoch"] == 2 and {"model", "optimizer", "scheduler", "rng"} <= set(state)

    # Resuming with more epochs continues at epoch 3; another configuration is refused.
    with pytest.raises(ValueError, match="another configuration"):
        train_classifier(replace(cfg, epochs=3, width=16), progress=False)
    train_classifier(replace(cfg, epochs=3), progress=False)
    assert _epochs(run) == [1, 2, 3]

    dest = tmp_path / "ckpt" / "cifar10_classifier.pt"
    export_classifier(run, dest, command="python -m paperlib.cifar train --epochs 3", test_limit=256)
    info = json.loads(dest.with_suffix(".json").read_text())
    assert info["width"] == 8 and info["epochs"] == 3 and info["test_images"] == 256
    assert info["command"] == "python -m paperlib.cifar train --epochs 3"
    assert "JPEG" in info["data_note"] or info["data_source"] == "official"
    assert {"hardware", "train_seconds", "test_accuracy"} <= set(info)
    assert (tmp_path / "ckpt" / "cifar10_classifier.log.jsonl").is_file()
    saved = torch.load(dest, map_location="cpu", weights_only=False)
    assert all(v.dtype == torch.float16 for v in saved["state_dict"].values() if v.is_floating_point())

    bb = load_cifar10_classifier(dest)
    assert isinstance(bb, BlackBox) and bb.name == "cifar10" and bb.dataset == "cifar10"
    assert bb.cam_layer is bb.net.cam_layer and bb.classifier_layer is bb.net.fc
    with torch.no_grad():
        logits = bb(torch.rand(4, 3, 32, 32))
    assert logits.shape == (4, 10) and torch.isfinite(logits).all()
    from paperlib.experiments.baselines import gradcam_saliency

    cam = gradcam_saliency(bb, torch.rand(2, 3, 32, 32), torch.tensor([1, 7]))
    assert cam.shape == (2, 1, 32, 32)
    # the recorded accuracy is that of the shipped (fp16-rounded) weights, through the black box
    assert abs(info["test_accuracy"] - evaluate_classifier(bb, "test", limit=256)) < 1e-9


def test_missing_checkpoint_says_how_to_train(tmp_path):
    with pytest.raises(WeightsNotFoundError) as exc:
        load_cifar10_classifier(tmp_path / "nope.pt")
    msg = str(exc.value)
    assert "python -m paperlib.cifar train" in msg and "python -m paperlib.cifar export" in msg
    assert str(tmp_path / "nope.pt") in msg

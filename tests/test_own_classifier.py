"""Explain your own classifier (issue 16): the public API, its checks, the command line, and a known answer.

The known answer: a synthetic black box says "red square" when a red 8 x 8 square is in a
48 x 48 image and ignores a green square of the same size. A masker trained through
``paperlib.train_masker`` must cover the red square and leave the green one alone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

import paperlib
from paperlib.core.errors import CheckpointMismatchError, InputError, UnknownClassError
from paperlib.core.objective import ObjectiveConfig, destroy_term, preserve_term
from paperlib.experiments import own

SIZE, SQUARE = 48, 8
RED, GREEN = (0.9, 0.1, 0.1), (0.1, 0.85, 0.1)


class RedSquareDetector(nn.Module):
    """Logit of "red square" = 8 (max over positions of centre-minus-surround redness - 0.35).

    Redness is relu(R - max(G, B)): a green square or a grey background gives none; a uniform red
    image gives none either (centre = surround), only a red square does.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = F.relu(x[:, 0] - torch.maximum(x[:, 1], x[:, 2]))[:, None]
        inner = F.avg_pool2d(red, SQUARE, 1, SQUARE // 2)
        outer = F.avg_pool2d(red, 3 * SQUARE, 1, 3 * SQUARE // 2)
        n = min(inner.shape[-1], outer.shape[-1])
        z = 8.0 * ((inner[..., :n, :n] - outer[..., :n, :n]).flatten(1).amax(1) - 0.35)
        return torch.stack([torch.zeros_like(z), z], 1)


def planted(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (n, 3, 48, 48) of a smooth grey background with a green square and, for half, a red one.

    Returns:
        (images, labels (1 = red square present), corners (n, 2, 2): red then green (y, x)).
    """
    g = torch.Generator().manual_seed(seed)
    bg = F.interpolate(0.3 + 0.4 * torch.rand(n, 1, SIZE // 4, SIZE // 4, generator=g), size=(SIZE, SIZE), mode="bilinear")
    images = bg.expand(-1, 3, -1, -1) + 0.05 * torch.randn(n, 3, SIZE, SIZE, generator=g)
    corners = torch.zeros(n, 2, 2, dtype=torch.long)
    present = torch.rand(n, generator=g) < 0.5
    for i in range(n):
        while True:  # red and green squares apart
            p = torch.randint(0, SIZE - SQUARE, (2, 2), generator=g)
            if int((p[0] - p[1]).abs().max()) > SQUARE + 2:
                break
        corners[i] = p
        squares = [(p[1], GREEN)] + ([(p[0], RED)] if present[i] else [])
        for (y, x), colour in squares:
            images[i, :, y : y + SQUARE, x : x + SQUARE] = torch.tensor(colour)[:, None, None]
    return images.clamp(0, 1), present.long(), corners


def square_mask(corner: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    y, x = corner.tolist()
    m[y : y + SQUARE, x : x + SQUARE] = True
    return m


@pytest.fixture(scope="module")
def black_box():
    return paperlib.wrap_classifier(RedSquareDetector(), input_size=SIZE, class_names=["no red square", "red square"])


@pytest.fixture(scope="module")
def tiny_masker(black_box):
    images, labels, _ = planted(32, 0)
    return paperlib.train_masker(
        black_box,
        TensorDataset(images, labels),
        steps=2,
        batch_size=4,
        encoder="scratch",
        encoder_widths=(4, 8, 8),
        progress=False,
    )


def test_the_synthetic_black_box_decides_by_the_red_square(black_box):
    images, labels, _ = planted(64, 5)
    with torch.no_grad():
        assert torch.equal(black_box(images).argmax(1), labels)


@pytest.mark.slow
def test_masker_covers_the_planted_square_and_not_the_distractor(black_box):
    """Known answer, end to end through the public API: IoU(mask > 0.5, red square) > 0.5 on average.

    Measured on the 2-core CPU of this project under load: mean IoU 0.69, 40 s for 200 steps.
    """
    images, labels, _ = planted(512, 0)
    t0 = time.time()
    masker = paperlib.train_masker(
        black_box,
        TensorDataset(images, labels),
        steps=200,
        batch_size=16,
        lr=2e-3,
        encoder="scratch",
        encoder_widths=(8, 16, 32),
        objective_weights={"l2": 16.0},
        progress=False,
    )
    seconds = time.time() - t0
    test, test_labels, corners = planted(128, 1)
    present = test_labels == 1
    with torch.no_grad():
        masks = masker(test[present], "red square")[:, 0] > 0.5
        absent = masker(test[~present], "red square")
    ious, green = [], []
    for m, c in zip(masks, corners[present]):
        red_sq, green_sq = square_mask(c[0]), square_mask(c[1])
        ious.append(float((m & red_sq).sum()) / max(float((m | red_sq).sum()), 1.0))
        green.append(float(m[green_sq].float().mean()))
    iou, green_cover = sum(ious) / len(ious), sum(green) / len(green)
    print(f"planted square: mean IoU {iou:.3f}, green covered {green_cover:.3f}, {seconds:.1f} s for 200 steps")
    assert iou > 0.5, f"mean IoU {iou:.3f}"
    assert green_cover < 0.05, f"the distractor is {green_cover:.1%} covered"
    assert float(absent.mean()) < 0.02, "images without a red square should get (nearly) empty masks"


# --------------------------------------------------------------------------- public API


def test_masker_takes_names_and_indices_and_round_trips(tiny_masker, black_box, tmp_path):
    images, _, _ = planted(4, 2)
    with torch.no_grad():
        by_name, by_index = tiny_masker(images, "Red Square"), tiny_masker(images, 1)
    assert by_name.shape == (4, 1, SIZE, SIZE) and torch.equal(by_name, by_index)
    with pytest.raises(UnknownClassError, match="red square"):
        tiny_masker(images, "blue square")
    path = paperlib.save_masker(tiny_masker, tmp_path / "mine.pt")
    loaded = paperlib.load_masker(path, black_box=black_box)
    assert loaded.config["black_box_sha256"] == paperlib.core.classifiers.black_box_checksum(black_box)
    assert loaded.class_names == ["no red square", "red square"]
    with torch.no_grad():
        assert torch.allclose(loaded(images, "red square"), by_name, atol=1e-6)
    assert torch.allclose(paperlib.load_masker(path)(images, 1), by_name, atol=1e-6)
    paperlib.load_masker(path, black_box=black_box.net)  # the bare model has the same weights


def test_loading_against_another_model_is_a_clear_mismatch(tiny_masker, tmp_path):
    path = paperlib.save_masker(tiny_masker, tmp_path / "mine.pt")
    other = RedSquareDetector()
    other.register_buffer("threshold", torch.tensor(0.5))  # other weights, same behaviour
    other_bb = paperlib.wrap_classifier(other, input_size=SIZE, class_names=["no red square", "red square"])
    with pytest.raises(CheckpointMismatchError, match="sha256"):
        paperlib.load_masker(path, black_box=other_bb)
    with pytest.raises(CheckpointMismatchError, match="efficientnet_lite0"):
        paperlib.load_masker(path, black_box="efficientnet_lite0")


def test_unlabelled_images_take_the_black_box_top1(black_box):
    images, labels, _ = planted(16, 3)
    ds = own.user_dataset(images, black_box, SIZE)
    assert torch.equal(ds.labels, labels)


def test_image_folder_with_class_name_folders(black_box, tmp_path):
    images, labels, _ = planted(6, 4)
    for i, (img, y) in enumerate(zip(images, labels)):
        folder = tmp_path / ("red square" if y else "no red square")
        folder.mkdir(exist_ok=True)
        Image.fromarray((img.permute(1, 2, 0) * 255).round().byte().numpy()).save(folder / f"{i}.png")
    ds = own.user_dataset(tmp_path, black_box, 32)
    got = sorted(int(ds[i][1]) for i in range(len(ds)))
    assert got == sorted(labels.tolist()) and ds[0][0].shape == (3, 32, 32)
    (tmp_path / "blue square").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "blue square" / "x.png")
    with pytest.raises(InputError, match="blue square"):
        own.user_dataset(tmp_path, black_box, 32)


def test_multi_label_black_box_uses_sigmoid():
    logits = torch.tensor([[2.0, 2.0, -1.0]])
    cls = torch.tensor([0])
    cfg = ObjectiveConfig()
    soft, p_soft = preserve_term(logits, cls, cfg)
    sig, p_sig = preserve_term(logits, cls, cfg, multi_label=True)
    assert p_sig.item() == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())
    assert p_soft.item() < 0.5 < p_sig.item() and sig.item() < soft.item()
    _, p_drop = destroy_term(logits, cls, cfg, multi_label=True)
    assert p_drop.item() == pytest.approx(p_sig.item())
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    bb = paperlib.wrap_classifier(net, input_size=8, class_names="abc", multi_label=True)
    probs, _ = bb.predict(torch.rand(2, 3, 8, 8), k=3)
    assert bb.multi_label and not torch.allclose(probs.sum(1), torch.ones(2))  # sigmoids, not a softmax
    with pytest.raises(InputError, match="logits"):  # a conv map is not (N, K)
        paperlib.wrap_classifier(nn.Conv2d(3, 3, 1), input_size=8, class_names="abc")


# --------------------------------------------------------------------------- bad input, before training


class _NoGrad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        with torch.no_grad():
            return self.fc(x.mean((2, 3)))


class _Flat(nn.Module):
    def forward(self, x):
        return x.mean((1, 2, 3))  # (N,), not (N, K)


def test_wrong_output_shape_is_refused():
    with pytest.raises(InputError, match=r"logits \(N, num_classes\).*\(2,\)"):
        paperlib.wrap_classifier(_Flat(), input_size=16, class_names=["a"])


def test_class_names_must_match_the_outputs():
    with pytest.raises(InputError, match="returns 2 logits per image but 3 class names"):
        paperlib.wrap_classifier(RedSquareDetector(), input_size=SIZE, class_names=["a", "b", "c"])


def test_a_black_box_without_gradients_is_refused():
    with pytest.raises(InputError, match="no gradient"):
        paperlib.wrap_classifier(_NoGrad(), input_size=16, class_names=["a", "b"])


def test_images_outside_0_1_are_refused_before_training(black_box, tmp_path):
    images, labels, _ = planted(8, 0)
    normalised = (images - 0.5) / 0.25
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        paperlib.train_masker(black_box, TensorDataset(normalised, labels), steps=1, out=tmp_path / "run", encoder="scratch")
    assert not (tmp_path / "run").exists()


def test_labels_beyond_the_classes_are_refused_before_training(black_box, tmp_path):
    images, labels, _ = planted(8, 0)
    with pytest.raises(InputError, match="label 5.*2 classes"):
        paperlib.train_masker(black_box, TensorDataset(images, labels + 5), steps=1, out=tmp_path / "run", encoder="scratch")
    assert not (tmp_path / "run").exists()


def test_a_bare_model_or_unknown_encoder_is_refused(black_box):
    images, labels, _ = planted(4, 0)
    with pytest.raises(InputError, match="wrap_classifier"):
        paperlib.train_masker(RedSquareDetector(), TensorDataset(images, labels))
    with pytest.raises(InputError, match="Unknown encoder"):
        paperlib.train_masker(black_box, TensorDataset(images, labels), encoder="vgg")


# --------------------------------------------------------------------------- command line

_MODULE = """
import torch
from torch import nn


def build_model():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
"""


def test_command_line_trains_a_masker_for_module_function(tmp_path, monkeypatch):
    (tmp_path / "my_lab_model.py").write_text(_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_lab_model", None)
    import my_lab_model

    torch.manual_seed(0)
    model = my_lab_model.build_model()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    images, _, _ = planted(8, 0)
    (tmp_path / "imgs").mkdir()
    for i, img in enumerate(images):  # unlabelled: the model's top-1 is the label
        Image.fromarray((img.permute(1, 2, 0) * 255).round().byte().numpy()).save(tmp_path / "imgs" / f"{i}.png")
    out = tmp_path / "run"
    argv = ["--black-box", "my_lab_model:build_model", "--weights", str(tmp_path / "model.pt"), "--class-names", "cat", "dog"]
    argv += ["--input-size", "32", "--data", str(tmp_path / "imgs"), "--out", str(out), "--steps", "2", "--batch-size", "4"]
    own.main([*argv, "--masker-encoder", "scratch", "--workers", "0"])
    masker = paperlib.load_masker(out / "masker.pt")
    assert masker.class_names == ["cat", "dog"] and masker.black_box == "build_model"
    bb = own.black_box_from_spec(
        "my_lab_model:build_model", weights=tmp_path / "model.pt", class_names=["cat", "dog"], input_size=32
    )
    paperlib.load_masker(out / "masker.pt", black_box=bb)  # same weights: accepted
    with pytest.raises(CheckpointMismatchError):
        paperlib.load_masker(
            out / "masker.pt",
            black_box=own.black_box_from_spec(
                "my_lab_model:build_model", weights=None, class_names=["cat", "dog"], input_size=32
            ),
        )


def test_torchvision_model_by_name_with_a_local_weight_file(tmp_path):
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.squeezenet1_1(num_classes=3).state_dict(), tmp_path / "w.pth")
    bb = own.black_box_from_spec(
        "torchvision:squeezenet1_1", weights=tmp_path / "w.pth", class_names=["a", "b", "c"], input_size=64
    )
    assert bb.num_classes == 3 and bb.name == "squeezenet1_1"
    with pytest.raises(InputError, match="does not fit"):
        own.black_box_from_spec("torchvision:squeezenet1_1", weights=tmp_path / "w.pth", class_names=["a", "b"], input_size=64)
    with pytest.raises(InputError, match="no model"):
        own.black_box_from_spec("torchvision:not_a_net", weights=None, class_names=None)


def test_readme_example_runs_verbatim(tmp_path, monkeypatch):
    """The code of the README's "Explain your own classifier" section, as it stands there."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Explain your own classifier", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "paperlib.train_masker" in code and len(code.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["masks"].shape == (4, 1, 32, 32) and (tmp_path / "fox_masker.pt").is_file()


def test_pasted_scenes_mark_the_pasted_photograph():
    from paperlib.experiments.own import pasted_scenes

    photos = torch.full((3, 3, 8, 8), 255, dtype=torch.uint8)  # white photographs
    scenes, where = pasted_scenes(photos, size=20, photo=8, seed=4)
    assert scenes.shape == (3, 3, 20, 20) and where.shape == (3, 1, 20, 20)
    assert (where.sum((1, 2, 3)) == 64).all()
    assert torch.equal(scenes.permute(1, 0, 2, 3)[:, where[:, 0]], torch.ones(3, 3 * 64))  # the photograph where marked
    assert torch.equal(pasted_scenes(photos, 20, 8, seed=4)[0], scenes)  # the seed fixes the scenes
    assert not torch.equal(pasted_scenes(photos, 20, 8, seed=5)[0], scenes)
    with pytest.raises(InputError, match="photo"):
        pasted_scenes(photos, size=8, photo=9)

"""The model-randomisation sanity check: rank correlation and cascading randomisation (known answers)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from paperlib.core.classifiers import BlackBox
from paperlib.core.errors import InputError
from paperlib.experiments.sanity import LEVELS, randomise_top, rank_correlation


def _tiny_box() -> BlackBox:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 8, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    return BlackBox(net.eval(), name="tiny", num_classes=5, input_size=16, normalize=lambda x: x, classifier_layer=net[6])


def test_rank_correlation_known_answers():
    x = torch.rand(3, 1, 8, 8)
    assert torch.allclose(rank_correlation(x, x.exp(), pool=0), torch.ones(3))  # monotone: same ranks
    assert torch.allclose(rank_correlation(x, -x, pool=0), -torch.ones(3))
    const = torch.ones(3, 1, 8, 8)
    assert torch.equal(rank_correlation(x, const, pool=0), torch.zeros(3))  # no ranking to compare
    # ties get their average rank, as scipy's Spearman: [0, 0, 1, 1] vs [0, 0, 1, 2] -> 2 * sqrt(2) / 3
    a, b = torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]]]), torch.tensor([[[[0.0, 0.0], [1.0, 2.0]]]])
    assert rank_correlation(a, b, pool=0).item() == pytest.approx(2 * 2**0.5 / 3, abs=1e-6)
    u, v = torch.randint(0, 4, (2, 1, 6, 6)).float(), torch.randint(0, 4, (2, 1, 6, 6)).float()
    ref = [spearmanr(u[i].flatten(), v[i].flatten()).statistic for i in range(2)]
    assert rank_correlation(u, v, pool=0).tolist() == pytest.approx(ref, abs=1e-5)
    g = torch.Generator().manual_seed(0)
    r = rank_correlation(torch.rand(64, 1, 16, 16, generator=g), torch.rand(64, 1, 16, 16, generator=g), pool=0)
    assert abs(float(r.mean())) < 0.05  # independent maps: near 0
    with pytest.raises(InputError):
        rank_correlation(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 5, 5))


def test_randomise_top_changes_only_the_top_modules_of_a_copy():
    box = _tiny_box()
    before = {k: v.clone() for k, v in box.state_dict().items()}
    rnd = randomise_top(box, "classifier", seed=1)
    assert rnd.randomised == ["net.6"] and rnd.name == "tiny-random-classifier"
    assert all(torch.equal(v, box.state_dict()[k]) for k, v in before.items())  # the original is untouched
    after = rnd.state_dict()
    assert not torch.equal(after["net.6.weight"], before["net.6.weight"])
    assert torch.equal(after["net.0.weight"], before["net.0.weight"]) and torch.equal(
        after["net.3.weight"], before["net.3.weight"]
    )
    head = randomise_top(box, "head", seed=1)  # the last three parameter holders: BN, 1x1 conv, linear
    assert head.randomised == ["net.1", "net.3", "net.6"]
    assert not torch.equal(head.state_dict()["net.3.weight"], before["net.3.weight"])
    assert torch.equal(head.state_dict()["net.0.weight"], before["net.0.weight"])
    assert rnd.classifier_layer is rnd.net[6] and not any(p.requires_grad for p in rnd.parameters())
    assert set(LEVELS) == {"classifier", "head", "top_block"}
    with pytest.raises(InputError, match="level must be one of"):
        randomise_top(box, "everything")


@pytest.mark.slow
def test_train_against_a_randomised_box_and_compare_from_scratch(tiny_root, datagen, one_thread):
    """--randomise-top trains against a re-initialised copy (embedding from its final layer); from_scratch compares."""
    from paperlib.core.classifiers import load_classifier
    from paperlib.experiments.sanity import from_scratch
    from paperlib.experiments.train import TrainConfig, _parse, build_for_training, train

    val = datagen.make_imagenet_val(tiny_root, xml=None)
    # image 1's object made small (a 10 x 8 corner of its 40 x 30 pixels), so that the localisation errors
    # below are not 0 % for any box that merely covers most of the image
    csv_path = tiny_root / "imagenet" / "LOC_val_solution.csv"
    assert csv_path.read_text().count(" 3 4 30 25 ") == 1
    csv_path.write_text(csv_path.read_text().replace(" 3 4 30 25 ", " 0 0 9 7 "))
    val["expected"]["ILSVRC2012_val_00000001"] = (285, [[0, 0, 9, 7]], (40, 30))
    datagen.make_imagenet_folder(tiny_root / "imagenet" / "train-sample", val["wnids"][:2], per_class=2)
    common = "--black-box efficientnet_lite0 --steps 1 --batch-size 2 --image-size 64 --widths 32 16 8 --blocks 1 --output-gate --workers 0"
    runs = {}
    for name, extra in (("ref", "--seed 0"), ("rand", "--seed 0 --randomise-top classifier"), ("ctl", "--seed 1")):
        cfg = _parse([*common.split(), *extra.split(), "--out", str(tiny_root.parent / name)])
        train(cfg)
        runs[name] = tiny_root.parent / name / "masker.pt"
    cfg = TrainConfig(out=str(tiny_root.parent / "x"), widths=[32, 16, 8], blocks=1, randomise_top="classifier")
    masker, box = build_for_training(cfg)
    real = load_classifier("efficientnet_lite0")
    assert box.name == "efficientnet_lite0-random-classifier"
    assert not torch.equal(box.classifier_layer.weight, real.classifier_layer.weight)
    res = from_scratch(runs["ref"], runs["rand"], runs["ctl"], limit=2)
    assert res["level"] == "classifier" and res["n"] == 2
    assert set(res["error"]) == {"reference", "randomised", "control"}
    # the same numbers recomputed here: the two validation images read with PIL, scipy's Spearman on the maps
    # average-pooled to 56 x 56, the paper's box rule and IoU > 0.5 in the images' own pixels
    from PIL import Image

    from paperlib.core.storage import load_masker

    images, labels, gts, sizes = [], [], [], []
    for image_id, (label, boxes, size) in val["expected"].items():
        pil = Image.open(tiny_root / "imagenet" / "val" / f"{image_id}.JPEG").convert("RGB")
        x = torch.from_numpy(np.array(pil)).permute(2, 0, 1).float().div(255)[None]
        images.append(F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1))
        labels.append(label)
        gts.append(torch.tensor(boxes, dtype=torch.float32))
        sizes.append(size)
    x, y = torch.stack(images), torch.tensor(labels)
    with torch.inference_mode():
        maps = {k: load_masker(runs[r])(x, y) for k, r in (("reference", "ref"), ("randomised", "rand"), ("control", "ctl"))}

    def spearman(a, b):
        a, b = F.adaptive_avg_pool2d(a, 56), F.adaptive_avg_pool2d(b, 56)
        r = np.array([spearmanr(a[i].flatten(), b[i].flatten()).statistic for i in range(len(a))])
        return {"mean": round(float(r.mean()), 4), "se": round(float(r.std(ddof=1) / np.sqrt(len(r))), 4), "n": len(r)}

    for key, other in (("reference_vs_randomised", "randomised"), ("reference_vs_control", "control")):
        want = spearman(maps["reference"], maps[other])
        assert res[key]["n"] == 2
        assert res[key]["mean"] == pytest.approx(want["mean"], abs=2e-4), key
        assert res[key]["se"] == pytest.approx(want["se"], abs=2e-4), key
    for k, m in maps.items():
        assert res["area"][k] == pytest.approx(round(float(m.mean()), 4), abs=2e-4), k
        correct = 0
        for i, ((w, h), g) in enumerate(zip(sizes, gts)):
            fg = (m[i, 0] > 0.5).nonzero()
            if len(fg):
                ys, xs = fg[:, 0].float(), fg[:, 1].float()
                box = torch.stack([xs.min(), ys.min(), xs.max(), ys.max()])
            else:
                box = torch.tensor([0.0, 0.0, 223.0, 223.0])
            # inclusive pixels: [xmin, xmax] covers [xmin, xmax + 1), scaled by W / 224
            sx, sy = w / 224, h / 224
            b = torch.stack([box[0] * sx, box[1] * sy, (box[2] + 1) * sx - 1, (box[3] + 1) * sy - 1])
            ious = []
            for gb in g:
                iw = (torch.minimum(b[2], gb[2]) - torch.maximum(b[0], gb[0]) + 1).clamp(min=0)
                ih = (torch.minimum(b[3], gb[3]) - torch.maximum(b[1], gb[1]) + 1).clamp(min=0)
                area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
                area_g = (gb[2] - gb[0] + 1) * (gb[3] - gb[1] + 1)
                ious.append(float(iw * ih / (area_b + area_g - iw * ih)))
            correct += max(ious) > 0.5
        assert res["error"][k] == pytest.approx(round(100.0 * (1 - correct / 2), 1)), k
    with pytest.raises(InputError, match="randomised masker second"):
        from_scratch(runs["ref"], runs["ctl"], runs["rand"], limit=2)

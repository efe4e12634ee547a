"""``paperlib explain``: files, folders, classes, top-k, and clear errors; works with no data folder."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from paperlib.cli import main as cli
from paperlib.core.explainer import load_explainer
from paperlib.tools.explain import explain_files, find_images


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from paperlib.tools.sample_images import sample_image

    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i, (name, path) in enumerate([("rocket", root / "rocket.jpg"), ("coffee", root / "sub" / "coffee.png")]):
        arr = (sample_image(name).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(path)
    (root / "notes.txt").write_text("not an image")
    return root


def test_find_images_recurses_and_refuses_missing(photos, tmp_path):
    assert [p.name for p in find_images([photos])] == ["rocket.jpg", "coffee.png"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_images([tmp_path / "nope.jpg"])
    with pytest.raises(FileNotFoundError, match="No images"):
        find_images([tmp_path])


def test_top1_files_and_records_match_the_explainer(photos, tmp_path, one_thread):
    explainer = load_explainer("efficientnet_lite0")
    recs = explain_files(explainer, find_images([photos]), tmp_path / "out", progress=False)
    assert len(recs) == 2 and json.loads((tmp_path / "out" / "explanations.json").read_text()) == recs
    r = recs[0]
    from paperlib.core.data import load_image, to_tensor

    x = to_tensor(load_image(r["image"]))[None]
    logits, masks, classes = explainer(x)
    assert r["class_index"] == int(classes[0]) and abs(r["probability"] - float(logits.softmax(-1)[0, classes[0]])) < 1e-3
    saved = np.load(tmp_path / "out" / r["files"][2])
    assert saved.shape == tuple(x.shape[-2:]) and np.allclose(saved, masks[0, 0].numpy())
    assert abs(r["mask_area"] - float(saved.mean())) < 1e-3 and r["threshold"] == 0.5
    with Image.open(tmp_path / "out" / r["files"][0]) as im:
        assert im.size == (x.shape[-1], x.shape[-2])


def test_command_line_class_and_top_k(photos, tmp_path, capsys, one_thread):
    recs = cli(["explain", str(photos / "rocket.jpg"), "--class", "tabby cat", "--out", str(tmp_path / "a"), "--no-progress"])
    from paperlib.core.classes import imagenet_classes

    assert [r["class_index"] for r in recs] == [imagenet_classes().index("tabby cat")]
    assert recs[0]["mask_area"] < 0.05 and recs[0]["box"] is None  # no tabby in a rocket photo: an empty mask
    recs = cli(["explain", str(photos / "rocket.jpg"), "--top-k", "3", "--out", str(tmp_path / "b"), "--no-progress"])
    assert len(recs) == 3 and len({r["class"] for r in recs}) == 3
    assert recs[0]["probability"] >= recs[1]["probability"] >= recs[2]["probability"]
    with pytest.raises(SystemExit) as e:
        cli(["explain", str(photos / "rocket.jpg"), "--class", "no such class xyz", "--out", str(tmp_path / "c")])
    assert e.value.code == 2 and "paperlib explain: error" in capsys.readouterr().err
    assert torch.get_num_threads() == 1

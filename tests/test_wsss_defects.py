"""Regression tests of the WSSS study's defects: selectable methods (no crops), scoring at a fixed t, truthful
data and training-image records, one default DR threshold, no image labels taken silently from the masks, and
``cam_maps`` without classes for all 20 maps."""

from __future__ import annotations

import csv
import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from test_wsss import _stub_black_box  # the tiny VOC black box of the WSSS tests

from paperlib.core import data as D
from paperlib.core import segmentation as S
from paperlib.core.errors import DataNotFoundError, InputError
from paperlib.experiments import wsss as W
from paperlib.experiments.wsss import maps as M


@pytest.fixture(autouse=True)
def _one_torch_thread(one_thread):
    yield


def _voc(root, datagen, ids=("v1", "v2", "v3")):
    """Images of 40 x 36 px (the Lite0 minimum is 32) with one object each, all listed in image_labels.csv."""
    gen = datagen.make_voc(root, ids=ids)
    voc = root / "voc2012"
    for k, name in enumerate(ids):
        datagen.write_image(voc / "JPEGImages" / f"{name}.jpg", (40, 36), seed=k)
        m = np.zeros((36, 40), np.uint8)
        m[0] = 255
        m[8:28, 10:30] = k + 1
        im = Image.fromarray(m, "P")
        im.putpalette([0, 0, 0] * 256)
        im.save(voc / "SegmentationClassAug" / f"{name}.png")
    return gen


def _small(**kw):
    base = dict(preset="edge", crop_size=32, masker_size=32, t_grid=(0.1, 0.3, 0.5))
    return W.WSSSConfig(**{**base, **kw})


# =========================================================================== 1. selectable methods
def test_methods_are_validated_with_the_valid_names():
    with pytest.raises(InputError) as e:
        W.WSSSConfig(methods=("cam", "crop"))
    assert "crop" in str(e.value) and all(k in str(e.value) for k in W.METHODS)
    with pytest.raises(InputError):
        W.WSSSConfig(methods=())
    with pytest.raises(InputError):  # n_crops = 0 only without a crop method
        W.WSSSConfig(methods=("cam", "crops_u"), n_crops=0)
    cfg = W.WSSSConfig(methods=["grad", "cam"], n_crops=0)
    assert cfg.methods == ("grad", "cam") and cfg.selected == ("cam", "grad") and not cfg.uses_crops
    assert W.WSSSConfig().selected == tuple(W.METHODS) and W.WSSSConfig().methods is None


def test_compute_maps_without_crop_methods_draws_no_crop(monkeypatch):
    bb = _stub_black_box()
    image = torch.rand(3, 24, 28)

    def no_crops(*a, **k):
        raise AssertionError("crop_saliency ran although no crop method is selected")

    monkeypatch.setattr(M, "crop_saliency", no_crops)
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    timings: dict[str, float] = {}
    cfg = W.WSSSConfig(methods=("cam", "grad"), n_crops=0)
    out = W.compute_maps(image, [2, 5], bb=bb, cfg=cfg, generator=gen, timings=timings)
    assert set(out) == {"cam_all", "cam", "grad"} and out["grad"].shape == (2, 24, 28)
    assert torch.equal(gen.get_state(), state) and "crops" not in timings
    only_grad = W.compute_maps(image, [2], bb=bb, cfg=W.WSSSConfig(methods=("grad",), n_crops=0))
    assert set(only_grad) == {"cam_all", "grad"}  # the 20 CAMs are always there, for the DR regions


def test_run_scores_only_the_selected_methods(tiny_root, datagen, monkeypatch):
    _voc(tiny_root, datagen)
    monkeypatch.setattr(M, "crop_saliency", lambda *a, **k: pytest.fail("crops computed"))
    res = W.run(_small(methods=("cam", "cam_ref", "masker"), n_crops=0))
    assert [r["key"] for r in res["rows"]] == ["cam", "cam_ref", "masker"] and res["crop_sweep"] == []
    assert set(res["methods"]) == {"cam", "cam_ref", "masker"} and res["claim"] is None
    assert set(res["seconds_per_map"]) == {"cam", "cam_ref", "masker"}
    no_masker = W.run(_small(methods=("grad",), n_crops=0))  # the masker is neither loaded nor run
    assert [r["key"] for r in no_masker["rows"]] == ["grad"] and no_masker["masker"] is None
    with pytest.raises(InputError, match="masker"):
        W.run(_small(methods=("masker",), n_crops=0), masker=None)


# =========================================================================== 2. scoring at a fixed t
def test_fixed_t_scores_every_row_at_that_threshold(tiny_root, datagen):
    _voc(tiny_root, datagen)
    with pytest.raises(InputError, match="t_grid"):
        _small(fixed_t=0.2)
    best = W.run(_small(methods=("cam", "grad"), n_crops=0), masker=None)
    fixed = W.run(_small(methods=("cam", "grad"), n_crops=0, fixed_t=0.5), masker=None)
    assert best["t_choice"]["mode"] == "best" and best["t_choice"]["t"] is None
    assert fixed["t_choice"]["mode"] == "fixed" and fixed["t_choice"]["t"] == 0.5
    for r in fixed["rows"]:
        m = fixed["methods"][r["key"]]
        assert r["t"] == 0.5 and r["mIoU"] == m["fixed_t"]["mIoU"] == round(m["curves"]["mIoU"][2], 2)
        assert m["best"] == best["methods"][r["key"]]["best"]  # the best t is kept beside
    assert [r["t"] for r in best["rows"]] == [best["methods"][k]["best"]["t"] for k in ("cam", "grad")]


# =========================================================================== 3. truthful data and training records
def _copy_checkpoint(src, dst, record):
    shutil.copyfile(src, dst)
    dst.with_suffix(".json").write_text(json.dumps(record))
    return dst


def test_data_and_training_overlap_come_from_the_ids_used(tiny_root, datagen, tmp_path):
    _voc(tiny_root, datagen)
    voc = tiny_root / "voc2012"
    head = _copy_checkpoint(W.HEAD_PATH, tmp_path / "head.pt", {"train_ids": ["v2", "other"]})
    masker = _copy_checkpoint(
        W.MASKER_PATH, tmp_path / "masker.pt", {"data": f"PASCAL VOC 2012: the first 1 ids of {voc / 'val.txt'} (a copy)"}
    )
    res = W.run(_small(methods=("cam", "masker"), n_crops=0, limit=2), head=head, masker=masker)
    assert "shared offline copy" not in res["data"]
    assert f"the first 2 ids of split file {voc / 'val.txt'}" in res["data"] and str(voc) in res["data"]
    assert "image_labels.csv" in res["data"]
    bbm, mkm = res["black_box"], res["masker"]
    assert bbm["scored_on_training_images"] is True and bbm["scored_training_images"] == 1  # v2 of v1, v2
    assert mkm["scored_on_training_images"] is True and mkm["scored_training_images"] == 1  # v1
    assert "first 1 ids" in mkm["training_ids_from"]
    # trained elsewhere: False; no record of the training ids: null and why, never a hard-coded True
    (tmp_path / "head.json").write_text(json.dumps({"train_ids": ["x1", "x2"]}))
    (tmp_path / "masker.json").write_text(json.dumps({"steps": 3}))
    W.head._BB_CACHE.clear()
    res = W.run(_small(methods=("cam", "masker"), n_crops=0), head=head, masker=masker)
    assert res["black_box"]["scored_on_training_images"] is False and res["black_box"]["scored_training_images"] == 0
    assert res["masker"]["scored_on_training_images"] is None
    assert "train_ids" in res["masker"]["scored_on_training_images_unknown_because"]
    assert "all 3 ids of split file" in res["data"]


def test_shipped_records_give_the_training_ids(tiny_root, datagen):
    """The shipped head and masker records say 'the first 500 ids of <val.txt>': these tiny ids are not among them."""
    _voc(tiny_root, datagen)
    res = W.run(_small(methods=("cam", "masker"), n_crops=0))
    for part in (res["black_box"], res["masker"]):
        if part["scored_on_training_images"] is None:  # the shared split file is not on this machine
            assert "cannot be read" in part["scored_on_training_images_unknown_because"]
        else:
            assert part["scored_on_training_images"] is False and part["training_images"] == 500


# =========================================================================== 4. one default tau
def test_scores_default_tau_is_the_configured_one_for_curves_and_confusions():
    assert W.WSSSConfig().tau == S.DEFAULT_TAU == 0.3
    s = W.SegmentationScores((0.1, 0.5), taus=(0.2, 0.3, 0.4))
    assert s.tau == 0.3
    gt = torch.tensor([[1, 1, 1, 0]])
    cam = torch.zeros(20, 1, 4)
    cam[0] = torch.tensor([[1.0, 0.25, 0.1, 0.0]])  # levels 3, 1, 0: DR at tau 0.2 and 0.3 differ
    s.update(torch.tensor([[[0.9, 0.2, 0.9, 0.0]]]), [0], gt, W.dr_levels(gt, cam, s.taus))
    np.testing.assert_array_equal(s.confusions("DR"), s.confusions("DR", 0.3))
    np.testing.assert_array_equal(s.confusions("NDR"), s.confusions("NDR", 0.3))
    assert not np.array_equal(s.confusions("DR", 0.2), s.confusions("DR", 0.3))
    for k, v in s.curves().items():
        np.testing.assert_array_equal(v, s.curves(0.3)[k])
    assert not np.array_equal(s.curves()["DR recall"], s.curves(0.2)["DR recall"])
    assert W.SegmentationScores((0.1,), taus=(0.2, 0.5), tau=0.5).tau == 0.5
    with pytest.raises(InputError):
        W.SegmentationScores((0.1,), taus=(0.2, 0.5))  # 0.3 is not kept: say which tau is the default
    with pytest.raises(InputError):
        s.confusions("DR", 0.25)


# =========================================================================== 5. no labels from the masks behind the file's back
def test_voc_id_missing_from_the_labels_file_is_an_error(tiny_root, datagen):
    gen = datagen.make_voc(tiny_root, ids=("a", "b", "c"))
    labels = tiny_root / "voc2012" / "image_labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "labels"])
        w.writerow(["a", "aeroplane"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file exists: no warning
        ds = D.VOCSegmentation()
    assert ds.labels_file == labels and ds[0].labels.tolist()[0] == 1
    with pytest.raises(DataNotFoundError) as e:
        ds[2]
    msg = str(e.value)
    assert "'c'" in msg and str(labels) in msg and "2 of the 3" in msg and "b" in msg
    assert gen["classes"]["c"] == 3


def test_voc_without_labels_file_reads_the_masks_with_a_warning(tiny_root, datagen):
    datagen.make_voc(tiny_root, ids=("a", "b"), labels_csv=False)
    with pytest.warns(UserWarning, match="read from the ground-truth segmentation masks"):
        ds = D.VOCSegmentation()
    assert ds.labels_file is None and ds[1].labels.tolist() == [int(j == 1) for j in range(20)]
    assert "with a warning" in D.__doc__ and "UserWarning" in D.VOCSegmentation.__doc__


# =========================================================================== cam_maps without classes
def test_cam_maps_all_classes_needs_no_classes():
    bb = _stub_black_box()
    img = torch.rand(3, 21, 30)
    every = W.cam_maps(bb, img, all_classes=True)
    assert every.shape == (20, 21, 30)
    torch.testing.assert_close(every[[2, 5]], W.cam_maps(bb, img, [2, 5]))
    with pytest.raises(InputError, match="all_classes"):
        W.cam_maps(bb, img)
    assert "all_classes" in W.cam_maps.__doc__ and "may" in W.cam_maps.__doc__


def test_report_without_cam_or_crops_says_the_claim_was_not_tested():
    from paperlib.experiments.wsss import report

    result = {
        "images_scored": 3,
        "preset": "smoke",
        "claim": None,
        "rows": [{"key": "grad"}, {"key": "masker", "mIoU": 30.0, "t": 0.3, "NDR recall": 40.0}],
    }
    text = report.claim_sentence(result)
    assert "not tested" in text and "grad, masker" in text


def test_report_states_the_recorded_training_overlap():
    from paperlib.experiments.wsss.report import _overlap_words

    assert "own training images" in _overlap_words(
        {"scored_on_training_images": True, "scored_training_images": 5, "training_images": 500}
    )
    assert "none of the scored images" in _overlap_words({"scored_on_training_images": False, "training_images": 500})
    assert "not known (no record)" in _overlap_words(
        {"scored_on_training_images": None, "scored_on_training_images_unknown_because": "no record"}
    )


def test_cli_parses_methods_and_fixed_t():
    import argparse

    from paperlib.experiments.wsss.cli import _add_dataclass_args, _overrides
    from paperlib.experiments.wsss.config import WSSSConfig

    p = argparse.ArgumentParser()
    _add_dataclass_args(p, WSSSConfig)
    got = _overrides(p.parse_args(["--methods", "cam", "grad", "--fixed-t", "0.3"]), WSSSConfig)
    assert got["methods"] == ("cam", "grad") and got["fixed_t"] == 0.3

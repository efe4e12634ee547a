"""Tests of paperlib.experiments.wsss: metrics on hand-made arrays, pseudo-masks, crop aggregation against autograd,
the VOC head and masking model, bad VOC input, and a short end-to-end run on the real data."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from paperlib.core.errors import DataNotFoundError, InputError
from paperlib.experiments import wsss as W


@pytest.fixture(autouse=True)
def _one_torch_thread(one_thread):
    """One torch thread: on a shared 2-core machine, two threads of tiny convolutions can be ten times slower."""
    yield


# =========================================================================== metrics (known answers)
def test_confusion_matrix_and_miou_by_hand():
    gt = np.array([[0, 0, 1, 1], [0, 2, 2, 255]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 0, 2]])
    C = W.confusion_matrix(pred, gt, n=3)
    # gt 0 -> predicted 0, 1, 0; gt 1 -> 1, 1; gt 2 -> 2, 0; the ignore pixel is skipped
    assert C.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 1]]
    iou = W.iou_per_class(C)
    np.testing.assert_allclose(iou, [2 / 4, 2 / 3, 1 / 2])
    assert W.mean_iou(C) == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    # FG precision: object classes only; class 1 predicted 3 times (2 right), class 2 once (right)
    assert W.fg_precision(C) == pytest.approx((2 / 3 + 1) / 2)


def test_metrics_skip_absent_and_never_predicted_classes():
    C = np.array([[5, 0, 0], [0, 2, 0], [1, 0, 0]])  # class 2 present, never predicted
    assert W.fg_precision(C) == pytest.approx(1.0)  # class 2 has no predicted pixel: skipped
    assert W.mean_iou(C) == pytest.approx((5 / 6 + 1 + 0) / 3)
    C2 = np.array([[4, 0, 0], [0, 1, 0], [0, 0, 0]])  # class 2 neither present nor predicted
    assert W.mean_iou(C2) == pytest.approx((1 + 1) / 2)
    assert math.isnan(W.fg_precision(np.zeros((3, 3))))


def test_region_recall_and_region_miou_by_hand():
    # a confusion restricted to a region: only object rows; 1 of 4 class-1 pixels predicted background
    R = np.array([[0, 0, 0], [1, 3, 0], [0, 0, 0]])
    assert W.region_recall(R) == pytest.approx(3 / 4)  # class 2 has no region pixel: skipped
    # the older formula: mIoU over all classes of R: background IoU 0/(0+1-0) = 0, class 1 3/(4+3-3)
    assert W.region_miou(R) == pytest.approx((0 + 3 / 4) / 2)
    R2 = np.array([[0, 0, 0], [0, 3, 1], [0, 0, 2]])  # nothing predicted background: its IoU is skipped
    assert W.region_recall(R2) == pytest.approx((3 / 4 + 1) / 2)
    assert W.region_miou(R2) == pytest.approx((3 / 4 + 2 / 3) / 2)


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(InputError):
        W.confusion_matrix(np.array([0, 3]), np.array([0, 1]), n=3)
    with pytest.raises(InputError):
        W.confusion_matrix(np.array([0, 1, 1]), np.array([0, 1]), n=3)


# =========================================================================== pseudo-masks
def test_subtraction_by_hand():
    s = torch.tensor([[[1.0, 0.2]], [[0.4, 0.8]]])
    out = W.subtract_classes(s, 0.5)
    torch.testing.assert_close(out, torch.tensor([[[0.8, 0.0]], [[0.0, 0.7]]]))
    one = torch.rand(1, 3, 4)
    assert torch.equal(W.subtract_classes(one), one)  # identity for one class


def test_normalisation_quantile_max_and_constant():
    torch.manual_seed(0)
    m = torch.rand(2, 13, 17) * 5
    out = W.normalise_class_maps(m, 99.5)
    flat = m.flatten(1)
    q = torch.quantile(flat, 0.995, dim=1, interpolation="nearest")
    lo = flat.min(1).values
    expected = ((m - lo[:, None, None]) / (q - lo)[:, None, None]).clamp(0, 1)
    torch.testing.assert_close(out, expected)
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    assert int((out == 1).sum()) >= 2  # values above the percentile are clamped
    const = torch.full((1, 4, 4), 3.0)
    assert torch.equal(W.normalise_class_maps(const), torch.zeros(1, 4, 4))  # constant map -> zeros, no NaN
    mx = W.normalise_class_maps(torch.tensor([[[0.0, 2.0, 4.0]]]), mode="max")
    torch.testing.assert_close(mx, torch.tensor([[[0.0, 0.5, 1.0]]]))
    assert torch.equal(W.normalise_class_maps(torch.zeros(1, 2, 2), mode="max"), torch.zeros(1, 2, 2))


def test_pseudo_mask_thresholds_ties_and_classes():
    maps = torch.tensor([[[0.2, 0.5, 0.9, 0.9]], [[0.1, 0.6, 0.3, 0.9]]])
    # prepared maps: t compares with the normalised score; ties between classes go to the lower class
    pm = W.pseudo_mask(maps, [3, 7], 0.4, prepared=True)
    assert pm.tolist() == [[0, 8, 4, 4]]
    assert W.pseudo_mask(maps, [3, 7], 0.5, prepared=True).tolist() == [[0, 8, 4, 4]]
    assert W.pseudo_mask(maps, [3, 7], 0.6, prepared=True).tolist() == [[0, 0, 4, 4]]  # 0.6 == t -> background
    # no class: all background
    assert W.pseudo_mask(torch.zeros(0, 2, 3), [], 0.1).tolist() == [[0, 0, 0], [0, 0, 0]]
    # single class: no subtraction; the (unprepared) map is normalised to [0, 1]
    single = W.pseudo_mask(torch.tensor([[[0.0, 1.0, 2.0, 4.0]]]), [14], 0.3)
    assert single.tolist() == [[0, 0, 15, 15]]
    with pytest.raises(InputError):
        W.pseudo_mask(maps, [3], 0.1)
    with pytest.raises(InputError):
        W.pseudo_mask(maps, [3, 20], 0.1)


# =========================================================================== DR / NDR
def test_dr_regions_by_hand():
    gt = torch.tensor([[0, 1, 1, 1], [255, 2, 2, 0]])
    cam = torch.zeros(20, 2, 4)
    cam[0] = torch.tensor([[9.0, 10.0, 4.0, 1.0], [0, 0, 0, 0]])  # class 1, max 10 -> 1.0, 0.4, 0.1
    # class 2: CAM zero everywhere -> its whole region is NDR
    region = W.dr_region(gt, cam, tau=0.3)
    assert region.tolist() == [[0, 1, 1, 2], [0, 2, 2, 0]]
    lev = W.dr_levels(gt, cam, [0.2, 0.3, 0.5])
    assert lev.tolist() == [[0, 3, 2, 0], [0, 0, 0, 0]]
    with pytest.raises(InputError):
        W.dr_levels(gt, cam[:3], [0.3])


def test_segmentation_scores_equal_direct_confusions():
    """The streaming histogram gives, at every t, the confusion matrix of the pseudo-masks computed directly."""
    g = torch.Generator().manual_seed(1)
    t_grid = (0.05, 0.2, 0.35, 0.5, 0.8)
    taus = (0.2, 0.3, 0.5)
    scores = W.SegmentationScores(t_grid, taus)
    images = []
    for n_cls in (2, 1, 0, 3):
        classes = sorted(torch.randperm(20, generator=g)[:n_cls].tolist())
        gt = torch.randint(0, 4, (9, 11), generator=g)
        gt = torch.where(gt == 0, torch.tensor(0), torch.tensor(classes[0] + 1 if classes else 5))
        gt[0, :3] = 255
        gt[1, :2] = 19  # a class that has no map (absent from the labels)
        maps = torch.rand(n_cls, 9, 11, generator=g)
        cam = torch.rand(20, 9, 11, generator=g)
        prepared = W.prepare_maps(maps)
        scores.update(prepared, classes, gt, W.dr_levels(gt, cam, taus))
        images.append((prepared, classes, gt, cam))
    for i, t in enumerate(t_grid):
        direct = sum(W.confusion_matrix(W.pseudo_mask(p, c, t, prepared=True), gt) for p, c, gt, _ in images)
        np.testing.assert_array_equal(scores.confusions()[i], direct)
        for tau in taus:
            for code, name in ((1, "DR"), (2, "NDR")):
                restricted = sum(
                    W.confusion_matrix(
                        W.pseudo_mask(p, c, t, prepared=True),
                        torch.where(W.dr_region(gt, cam, tau) == code, gt, torch.tensor(255)),
                    )
                    for p, c, gt, cam in images
                )
                np.testing.assert_array_equal(scores.confusions(name, tau)[i], restricted)
    cur = scores.curves(0.3)
    assert cur["mIoU"].shape == (len(t_grid),)
    assert cur["mIoU"][0] == pytest.approx(100 * W.mean_iou(scores.confusions()[0]))


def test_scores_skip_all_ignore_images():
    s = W.SegmentationScores((0.1, 0.2))
    gt = torch.full((4, 4), 255)
    s.update(torch.rand(1, 4, 4), [0], gt, torch.zeros(4, 4, dtype=torch.long))
    assert s.images == 0 and s.hist.sum() == 0


# =========================================================================== average precision / head
def test_average_precision_by_hand():
    assert W.average_precision([0.9, 0.8, 0.7], [1, 0, 1]) == pytest.approx((1 + 2 / 3) / 2)
    assert W.average_precision([0.5, 0.5], [1, 0]) == pytest.approx(0.5)  # ties: negatives first
    assert math.isnan(W.average_precision([0.1, 0.2], [0, 0]))
    m, aps = W.mean_average_precision(np.array([[0.9, 0.1], [0.1, 0.2]]), np.array([[1, 0], [0, 0]]))
    assert m == pytest.approx(1.0) and math.isnan(aps[1])


def test_head_fits_and_cross_fits_separable_features():
    g = torch.Generator().manual_seed(0)
    n, c = 200, 32
    Y = (torch.rand(n, 20, generator=g) < 0.15).float()
    Y[torch.arange(n), torch.arange(n) % 20] = 1
    proto = torch.randn(20, c, generator=g)
    X = (Y @ proto + 0.1 * torch.randn(n, c, generator=g)).relu()
    log = []
    Wt = W.fit_head(X, Y, steps=150, lr=0.05, log=log)
    assert Wt.shape == (20, c) and log[-1]["loss"] < log[0]["loss"]
    cv = W.cross_fit_map({"X": torch.stack([X, X]), "Y": Y}, steps=150, lr=0.05)
    assert cv["mAP"] > 80 and cv["folds"] == 2
    with pytest.raises(InputError):
        W.fit_head(X, Y[:, :5])


class _StubEncoder(nn.Module):
    """A tiny stand-in for the Lite0 encoder: one 8-channel map at stride 4."""

    channels = (8,)
    strides = (4,)
    trainable = False

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, x):
        return [self.conv(x).relu()]


def _stub_black_box():
    torch.manual_seed(1)
    return W.VOCBlackBox(torch.randn(20, 8), encoder=_StubEncoder())


def test_black_box_logits_are_pooled_cams_and_maps_have_image_size():
    bb = _stub_black_box()
    x = torch.rand(2, 3, 20, 28)
    torch.testing.assert_close(bb(x), bb.cam_raw(x).mean((2, 3)))
    img = torch.rand(3, 21, 30)
    cam = W.cam_maps(bb, img, [2, 5])
    assert cam.shape == (2, 21, 30) and float(cam.min()) >= 0
    assert W.cam_maps(bb, img, [], all_classes=True).shape == (20, 21, 30)
    grad = W.gradient_maps(bb, img, [2, 5])
    x1 = img[None].clone().requires_grad_(True)
    (g5,) = torch.autograd.grad(bb(x1)[0, 5], x1)
    torch.testing.assert_close(grad[1], g5[0].abs().amax(0))
    assert W.gradient_maps(bb, img, []).shape == (0, 21, 30)
    with pytest.raises(InputError):
        W.cam_maps(bb, img, [20])
    with pytest.raises(InputError):
        W.gradient_maps(bb, img[None], [1])


# =========================================================================== stochastic crops
def test_resize_matrix_is_bilinear_interpolation():
    x = torch.rand(3, 13, 29)
    ours = W.resize_matrix(13, 24) @ x @ W.resize_matrix(29, 24).T
    ref = F.interpolate(x[None], size=(24, 24), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(ours, ref)


def test_sample_crops_inside_the_image_and_seeded():
    boxes = W.sample_crops(60, 80, 50, (0.05, 0.3), (0.85, 1.25), torch.Generator().manual_seed(3))
    again = W.sample_crops(60, 80, 50, (0.05, 0.3), (0.85, 1.25), torch.Generator().manual_seed(3))
    assert boxes == again and len(boxes) == 50
    for y0, x0, h, w in boxes:
        assert 0 <= y0 and y0 + h <= 60 and 0 <= x0 and x0 + w <= 80
        assert 0.04 <= h * w / (60 * 80) <= 0.32 and 0.7 <= w / h <= 1.45


def _autograd_crop_maps(bb, img, boxes, size, c, weighted):
    """Reference implementation through autograd: crops cut from the full image with F.interpolate."""
    x = img.clone().requires_grad_(True)
    crops = torch.stack(
        [
            F.interpolate(x[None, :, y0 : y0 + h, x0 : x0 + w], size=(size, size), mode="bilinear", align_corners=False)[0]
            for y0, x0, h, w in boxes
        ]
    )
    z = bb(crops)[:, c]
    wts = torch.sigmoid(z).detach() if weighted else torch.ones_like(z)
    (signed,) = torch.autograd.grad((wts * z).sum(), x, retain_graph=True)
    per = torch.zeros(img.shape[-2:])
    for k in range(len(boxes)):
        (gk,) = torch.autograd.grad(z[k], x, retain_graph=True)
        per += wts[k] * gk.abs().amax(0)
    return signed.abs().amax(0), per


def test_crop_saliency_matches_autograd_in_both_orders():
    bb = _stub_black_box()
    img = torch.rand(3, 40, 52)
    out = W.crop_saliency(
        bb, img, [4, 11], n_crops=6, size=24, batch=4, abs_every=100, counts=(3, 6), generator=torch.Generator().manual_seed(0)
    )
    boxes = out["boxes"]
    for j, c in enumerate((4, 11)):
        for weighted, key in ((True, "w"), (False, "u")):
            ref_order, per_crop = _autograd_crop_maps(bb, img, boxes, 24, c, weighted)
            torch.testing.assert_close(out[f"crops_{key}"][j], ref_order, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(out[f"crops_{key}_abs"][j], per_crop, rtol=1e-4, atol=1e-6)
    # the sweep's map after 3 crops is the map of the first 3 boxes; after all of them, the full map
    first3 = W.crop_saliency(bb, img, [4, 11], size=24, boxes=boxes[:3])
    torch.testing.assert_close(out["sweep"][3], first3["crops_w"])
    torch.testing.assert_close(out["sweep"][6], out["crops_w"])
    # abs after every crop is the per-crop order; weights are sigmoid(logit) of each crop
    every = W.crop_saliency(bb, img, [4, 11], size=24, boxes=boxes, abs_every=1)
    torch.testing.assert_close(every["crops_w"], out["crops_w_abs"], rtol=1e-4, atol=1e-6)
    assert bool(((out["weights"] > 0) & (out["weights"] < 1)).all())
    # batches of 2 and of 4 crops give the same maps (batching is memory only)
    other = W.crop_saliency(bb, img, [4, 11], size=24, boxes=boxes, batch=2)
    torch.testing.assert_close(other["crops_w"], out["crops_w"], rtol=1e-4, atol=1e-6)
    # abs over blocks of 3 crops: the sum of the two blocks' maps
    blocks = W.crop_saliency(bb, img, [4, 11], size=24, boxes=boxes, abs_every=3)
    b1 = W.crop_saliency(bb, img, [4, 11], size=24, boxes=boxes[:3])["crops_w"]
    b2 = W.crop_saliency(bb, img, [4, 11], size=24, boxes=boxes[3:])["crops_w"]
    torch.testing.assert_close(blocks["crops_w"], b1 + b2, rtol=1e-4, atol=1e-6)
    empty = W.crop_saliency(bb, img, [], size=24, n_crops=2)
    assert empty["crops_w"].shape == (0, 40, 52)


# =========================================================================== masking model on VOC
def test_fake_labels_come_from_absent_classes():
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(400, 20)
    labels[:, 3] = 1
    labels[::2, 9] = 1
    labels[-1] = 0  # an image without any class: always a fake label
    labels[-2] = 1  # an image with all 20 classes: always a real one
    cls, real = W.draw_voc_classes(labels, 0.3, g)
    assert bool((labels[torch.arange(400), cls][real] == 1).all())
    assert bool((labels[torch.arange(400), cls][~real] == 0).all())
    assert not bool(real[-1]) and bool(real[-2])
    assert 0.2 < float((~real[:-2]).float().mean()) < 0.4


def test_masker_objective_uses_sigmoid_and_fake_labels_keep_only_the_area():
    bb = _stub_black_box()
    cfg = W.MaskerConfig(selector_weight=0.0)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 16, 16)
    masks = torch.rand(3, 1, 16, 16)
    classes = torch.tensor([1, 2, 3])
    real = torch.tensor([True, False, True])
    terms = W.masker_objective(bb, images, masks, classes, real, masks_low=masks, gate=None, cfg=cfg, generator=g)
    assert terms["total"][1] == pytest.approx(float(cfg.l2 * masks[1].mean()))
    assert terms["preserve"][1] == 0 and terms["destroy"][1] == 0
    torch.testing.assert_close(terms["preserve"][real], -torch.log(terms["p_preserve"][real]), rtol=1e-4, atol=1e-5)
    assert bool((terms["p_preserve"][real] > 0).all()) and bool((terms["p_preserve"][real] < 1).all())


def test_build_voc_masker_starts_from_the_head():
    w = torch.randn(20, 1280)
    m = W.build_voc_masker(w, widths=(16, 8, 8), init_from=None)
    assert m.num_classes == 20 and m.config["black_box"] == W.BLACK_BOX
    torch.testing.assert_close(m.filter.embedding.weight, w)
    out = W.masker_maps(m.eval(), torch.rand(3, 40, 50), [0, 19], size=64)
    assert out.shape == (2, 40, 50) and 0 <= float(out.min()) and float(out.max()) <= 1


def test_missing_checkpoints_say_how_to_train(tmp_path):
    with pytest.raises(DataNotFoundError, match="train-head"):
        W.load_voc_black_box(tmp_path / "nope.pt")
    with pytest.raises(DataNotFoundError, match="train-masker"):
        W.load_voc_masker(tmp_path / "nope.pt")


# =========================================================================== bad VOC input
def test_missing_voc_names_the_folder_and_how_to_get_it(tiny_root):
    with pytest.raises(DataNotFoundError) as e:
        W.open_voc()
    msg = str(e.value)
    assert str(tiny_root / "voc2012" / "JPEGImages") in msg
    assert "VOCSegmentation" in msg and "SegmentationClassAug" in msg and "PAPERLIB_DATA" in msg


def test_missing_masks_folder(tiny_root):
    (tiny_root / "voc2012" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(DataNotFoundError) as e:
        W.open_voc()
    assert "SegmentationClass" in str(e.value) and "download=True" in str(e.value)


def test_partial_voc_lists_the_missing_files(tiny_root, datagen):
    gen = datagen.make_voc(tiny_root, ids=("a1", "a2", "a3"))
    (tiny_root / "voc2012" / "JPEGImages" / "a2.jpg").unlink()
    (tiny_root / "voc2012" / "SegmentationClassAug" / "a3.png").unlink()
    with pytest.raises(DataNotFoundError) as e:
        W.open_voc()
    msg = str(e.value)
    assert "a2.jpg" in msg and "a3.png" in msg and "1 image(s) missing" in msg and "1 mask(s) missing" in msg
    assert "val.txt" in msg and "VOCSegmentation" in msg
    assert len(W.open_voc(limit=1)) == 1  # the complete part can still be used
    assert gen["ids"][0] == "a1"


def _edge_voc(root, datagen):
    """Four images: single class (aeroplane), two classes, a mask of ignore pixels only, no class at all."""
    ids = ("e_single", "e_two", "e_ignore", "e_empty")
    datagen.make_voc(root, ids=ids)
    voc = root / "voc2012"
    masks = voc / "SegmentationClassAug"
    palette = [0, 0, 0] * 256
    for k, name in enumerate(ids):  # 40 x 36 px: the Lite0 backbone needs at least 32 px a side
        datagen.write_image(voc / "JPEGImages" / f"{name}.jpg", (40, 36), seed=k)

    def put(name, arr):
        im = Image.fromarray(arr.astype(np.uint8), "P")
        im.putpalette(palette)
        im.save(masks / f"{name}.png")

    single = np.zeros((36, 40))
    single[0] = 255
    single[8:28, 10:30] = 1
    put("e_single", single)
    two = np.zeros((36, 40))
    two[3:20, 2:18], two[15:34, 20:38] = 2, 15
    put("e_two", two)
    put("e_ignore", np.full((36, 40), 255))
    put("e_empty", np.zeros((36, 40)))
    with open(voc / "image_labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "labels"])
        w.writerows([["e_single", "aeroplane"], ["e_two", "bicycle person"], ["e_ignore", "cat"], ["e_empty", ""]])
    return ids


def _best_miou_by_hand(kept: dict, key: str, cfg) -> tuple[float, float]:
    """(best mIoU in percent, its t) of method ``key`` over the kept images, recomputed pixel by pixel:
    prepared maps, best class per pixel, background unless its score is > t, one confusion matrix per t,
    IoU = TP / (TP + FP + FN) over the classes present or predicted. The first t wins a tie, as in run."""
    conf = torch.zeros(len(cfg.t_grid), 21 * 21, dtype=torch.long)
    t32 = torch.tensor(cfg.t_grid, dtype=torch.float32)
    for item in kept.values():
        gt, classes = item["gt"].long(), list(item["classes"])
        valid = gt != 255
        g = gt[valid]
        if classes:
            raw = item["cam" if key == "cam_ref" else key]
            if key == "cam_ref":
                prep = W.prepare_maps(raw, subtract=0.0, mode="max")
            else:
                prep = W.prepare_maps(raw, subtract=cfg.subtract, quantile=cfg.quantile)
            v, k = prep.max(0)
            lab = (torch.tensor(classes) + 1)[k][valid]
            v = v[valid]
        else:  # no class label: every pixel is background at every t
            lab, v = torch.zeros_like(g), torch.full(g.shape, -1.0)
        for j, t in enumerate(t32):
            pred = torch.where(v > t, lab, torch.zeros_like(lab))
            conf[j] += torch.bincount(g * 21 + pred, minlength=21 * 21)
    c = conf.view(-1, 21, 21).double().numpy()
    tp = np.diagonal(c, axis1=1, axis2=2)
    denom = c.sum(2) + c.sum(1) - tp
    with np.errstate(invalid="ignore"):
        miou = 100 * np.nanmean(np.where(denom > 0, tp / np.where(denom > 0, denom, 1), np.nan), axis=1)
    j = int(np.argmax(miou))
    return float(miou[j]), float(cfg.t_grid[j])


def test_run_handles_ignore_only_masks_unlabelled_and_single_class_images(tiny_root, datagen, tmp_path):
    _edge_voc(tiny_root, datagen)
    cfg = W.WSSSConfig(preset="edge", n_crops=2, crop_size=32, crop_counts=(1, 2), t_grid=(0.1, 0.3, 0.5), masker_size=32)
    res = W.run(cfg, masker=None, keep_maps=(0, 1, 3))
    assert res["skipped_all_ignore"] == ["e_ignore"] and res["no_class_label"] == ["e_empty"]
    assert res["images_scored"] == 3 and res["maps_per_method"] == 3
    assert {r["key"] for r in res["rows"]} == {k for k in W.METHODS if k != "masker"}
    kept = res["maps"]
    assert set(kept) == {"e_single", "e_two", "e_empty"}  # the three scored images
    for r in res["rows"]:  # the table's mIoU and t against a pixel-by-pixel recomputation on the same maps
        miou, t = _best_miou_by_hand(kept, r["key"], cfg)
        assert r["mIoU"] == pytest.approx(round(miou, 2), abs=1e-9) and r["t"] == pytest.approx(t), r["key"]
    assert kept["e_single"]["cam"].shape == (1, 36, 40) and kept["e_two"]["crops_w"].shape == (2, 36, 40)
    assert kept["e_empty"]["grad"].shape == (0, 36, 40)
    path = W.write_results(res, tmp_path)[1]
    data = json.loads((tmp_path / "wsss_edge.json").read_text())
    assert data["skipped_all_ignore"] == ["e_ignore"] and "maps" not in data
    assert "43.7" in path.read_text()  # the reference numbers sit beside ours


def test_killed_run_resumes_with_the_same_result(tiny_root, datagen, tmp_path, monkeypatch):
    _edge_voc(tiny_root, datagen)
    cfg = W.WSSSConfig(preset="edge", n_crops=2, crop_size=32, crop_counts=(1, 2), t_grid=(0.1, 0.3), masker_size=32)
    whole = W.run(cfg, masker=None)
    state = tmp_path / "state.pt"
    real = W.compute_maps
    calls = {"n": 0}

    def dies_on_the_second_image(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(W.study, "compute_maps", dies_on_the_second_image)
    with pytest.raises(KeyboardInterrupt):
        W.run(cfg, masker=None, resume=state, resume_every=1)
    assert state.is_file()
    monkeypatch.setattr(W.study, "compute_maps", real)
    again = W.run(cfg, masker=None, resume=state, resume_every=1)
    assert again["resumed_at_image"] == 1 and not state.exists()
    assert again["rows"] == [{**r, "s/map": a["s/map"]} for r, a in zip(whole["rows"], again["rows"])]
    assert again["skipped_all_ignore"] == whole["skipped_all_ignore"]


def test_run_with_only_ignore_masks_is_an_error(tiny_root, datagen):
    gen = datagen.make_voc(tiny_root, ids=("z1",))
    im = Image.fromarray(np.full((20, 30), 255, np.uint8), "P")
    im.putpalette([0, 0, 0] * 256)
    im.save(tiny_root / "voc2012" / "SegmentationClassAug" / "z1.png")
    with pytest.raises(InputError, match="ignore"):
        W.run(W.WSSSConfig(preset="edge", n_crops=1, crop_size=32, crop_counts=(1,)), masker=None)
    assert gen["ids"] == ["z1"]


def test_config_validation():
    with pytest.raises(InputError):
        W.WSSSConfig(t_grid=(0.3, 0.1))
    with pytest.raises(InputError):
        W.WSSSConfig(tau=0.25)
    with pytest.raises(InputError):
        W.WSSSConfig(n_crops=4, crop_counts=(8,))
    with pytest.raises(InputError):
        W.WSSSConfig(crop_size=16)


def test_images_smaller_than_the_backbone_minimum_are_a_clear_error():
    bb = W.VOCBlackBox()
    with pytest.raises(InputError, match="at least 32 px"):
        W.cam_maps(bb, torch.rand(3, 20, 30), [0])


# =========================================================================== shipped models, real data
def test_shipped_head_record_and_cross_fitted_map():
    info = json.loads(W.HEAD_PATH.with_suffix(".json").read_text())
    assert info["cross_fitted_mAP"] > 50 and info["train_mAP"] >= info["cross_fitted_mAP"]
    assert info["command"].startswith("python -m paperlib.experiments.wsss train-head")
    log = [json.loads(l) for l in W.HEAD_PATH.with_suffix(".log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    bb = W.load_voc_black_box()
    assert bb.weight.shape == (20, 1280) and bb.meta["cross_fitted_mAP"] == info["cross_fitted_mAP"]


def test_shipped_masker_follows_the_requested_class(require_data):
    require_data("voc2012")  # skips, with the reason of every real-data test, when the VOC images are absent
    m = W.load_voc_masker()
    info = json.loads(W.MASKER_PATH.with_suffix(".json").read_text())
    assert m.num_classes == 20 and info["train_seconds"] > 0 and "own training images" in info["data"]
    # an absent class closes the gate: its mask is much smaller than that of a present class, on average
    ds = W.open_voc(limit=6)
    present, absent = [], []
    for i in range(len(ds)):
        image, _, classes, _ = W._sample(ds, i)
        other = [c for c in range(20) if c not in classes][:2]
        maps = W.masker_maps(m, image, classes + other)
        present.append(float(maps[: len(classes)].mean()))
        absent.append(float(maps[len(classes) :].mean()))
    assert np.mean(present) > 2 * np.mean(absent)


def test_end_to_end_on_two_real_images_and_cli(require_data, tmp_path):
    require_data("voc2012")
    cfg = W.WSSSConfig(preset="tiny", limit=2, n_crops=3, crop_counts=(1, 3), crop_size=96)
    res = W.run(cfg, keep_maps=(0, 1))
    keys = {r["key"] for r in res["rows"]}
    assert keys == set(W.METHODS)
    by = {r["key"]: r for r in res["rows"]}
    assert by["cam"]["DR recall"] > by["cam"]["NDR recall"]  # DR is where the CAM is strong
    assert len(res["maps"]) == 2
    for r in res["rows"]:  # every method's mIoU and t, recomputed pixel by pixel from the kept maps
        miou, t = _best_miou_by_hand(res["maps"], r["key"], cfg)
        assert r["mIoU"] == pytest.approx(round(miou, 2), abs=1e-9) and r["t"] == pytest.approx(t), r["key"]
    # seconds per map: the clock of the method that made the map (CAM's for its reference recipe, the one
    # crop loop for the four crop maps), divided by the number of maps
    total, n = res["seconds_total"], res["maps_per_method"]
    assert n == sum(len(m["classes"]) for m in res["maps"].values())
    clock = {k: "cam" if k == "cam_ref" else "crops" if k.startswith("crops") else k for k in W.METHODS}
    for r in res["rows"]:
        assert r["s/map"] > 0 and r["s/map"] == res["seconds_per_map"][r["key"]], r["key"]
        assert r["s/map"] * n == pytest.approx(total[clock[r["key"]]], abs=0.05 + 1e-4 * n), r["key"]
    assert by["cam_ref"]["s/map"] == by["cam"]["s/map"]
    assert by["crops_w"]["s/map"] == by["crops_u"]["s/map"] == by["crops_w_abs"]["s/map"] == by["crops_u_abs"]["s/map"]
    assert len(res["crop_sweep"]) == 2 and res["black_box"]["cross_fitted_mAP"] > 50
    sample = next(iter(res["maps"].values()))
    h, w = sample["gt"].shape
    for k in ("cam", "grad", "crops_w", "crops_u_abs", "masker"):
        assert sample[k].shape == (len(sample["classes"]), h, w)
    assert "holds" in res["claim"] and W.claim_sentence(res).startswith("On 2 VOC images")
    W.main(
        [
            "--preset",
            "quick",
            "--limit",
            "1",
            "--n-crops",
            "1",
            "--crop-counts",
            "1",
            "--crop-size",
            "64",
            "--out-dir",
            str(tmp_path),
            "--masker",
            "none",
        ]
    )
    data = json.loads((tmp_path / "wsss_quick.json").read_text())
    assert data["images"] == 1 and data["preset"] == "quick" and "cpu" in data["hardware"]
    md = (tmp_path / "wsss_quick.md").read_text()
    assert "ref. mIoU" in md and "Preset `quick`" in md


# =========================================================================== integration with the rest of paperlib
def test_voc_models_are_not_listed_as_imagenet_maskers_and_retrain_through_wsss(tmp_path, monkeypatch):
    from paperlib.core.storage import shipped_maskers
    from paperlib.tools import retrain

    assert W.MASKER_PATH.is_file() and W.MASKER_PATH.stem not in shipped_maskers()
    ship = tmp_path / "ckpt"
    ship.mkdir()
    for name, args in ((f"{W.BLACK_BOX}_classifier", ["train-head"]), (W.BLACK_BOX, ["train-masker", "--steps", "3"])):
        (ship / f"{name}.json").write_text(json.dumps({"train_args": args}))
    calls = []
    monkeypatch.setattr(retrain, "CHECKPOINT_DIR", ship)
    monkeypatch.setattr(W, "main", lambda argv: calls.append(list(argv)))
    times = retrain.retrain(out=tmp_path / "re")
    assert list(times) == [f"{W.BLACK_BOX}_classifier", W.BLACK_BOX]  # the head before the masker that needs it
    assert calls == [
        ["train-head", "--out", str(tmp_path / "re" / f"{W.BLACK_BOX}_classifier")],
        ["train-masker", "--steps", "3", "--out", str(tmp_path / "re" / W.BLACK_BOX)],
    ]


def test_report_includes_the_wsss_table(tmp_path):
    from paperlib.tools import report

    (tmp_path / "wsss.md").write_text("### WSSS table here\n")
    (tmp_path / "wsss.json").write_text(json.dumps({"seconds": 12.5}))
    text = report.build_report(tmp_path).read_text()
    assert "### WSSS table here" in text and "(computed in 12.5 s)" in text

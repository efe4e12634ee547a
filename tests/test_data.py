"""Tests of paperlib.data: loaders on the real offline data (skipped when absent) and on tiny generated sets."""

from __future__ import annotations

import os
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from paperlib.core import data as D
from paperlib.core.classes import imagenet_classes
from paperlib.core.datafiles import _cifar_source
from paperlib.core.errors import CorruptImageError, DataNotFoundError, UnknownClassError


def _resize(size):
    def tf(img):
        return D.to_tensor(img.resize(size))

    return tf


# =========================================================================== load_image
def test_load_image_modes(tmp_path, datagen):
    for mode in ("L", "RGBA", "CMYK", "P", "LA", "I;16"):
        p = tmp_path / f"x_{mode.replace(';', '')}.png" if mode != "CMYK" else tmp_path / "x.jpg"
        if mode == "I;16":
            Image.fromarray(np.full((5, 7), 40000, np.uint16)).save(p)
        else:
            datagen.write_image(p, (7, 5), mode)
        img = D.load_image(p)
        assert img.mode == "RGB" and img.size == (7, 5), mode
    t = D.to_tensor(D.load_image(tmp_path / "x_L.png"))
    assert t.shape == (3, 5, 7) and t.dtype == torch.float32
    assert torch.equal(t[0], t[1]) and 0 <= t.min() and t.max() <= 1


def test_corrupt_image_names_file(tmp_path):
    bad = tmp_path / "x.JPEG"
    bad.write_bytes(b"this is not a jpeg at all" * 10)
    with pytest.raises(CorruptImageError) as e:
        D.load_image(bad)
    assert str(bad) in str(e.value)
    assert isinstance(e.value, OSError)


def test_truncated_image(tmp_path, datagen):
    p = datagen.write_image(tmp_path / "t.JPEG", (64, 64))
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(CorruptImageError, match="t.JPEG"):
        D.load_image(p)


def test_missing_image_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="nope.jpg"):
        D.load_image(tmp_path / "nope.jpg")


# =========================================================================== ImageNet val
def test_imagenet_val_shared(shared_data):
    ds = D.ImageNetVal()
    assert len(ds) == 500 and ds.annotation_source == "csv"
    s = ds[0]
    assert s.id == "ILSVRC2012_val_00000001"
    assert s.label == imagenet_classes().index("n01751748") and ds.wnids[0] == "n01751748"
    assert s.boxes.tolist() == [[111.0, 108.0, 441.0, 193.0]] and s.boxes.dtype == torch.float32
    assert s.size == (500, 375)
    assert s.image.shape == (3, 375, 500) and s.image.dtype == torch.float32
    assert 0.0 <= float(s.image.min()) and float(s.image.max()) <= 1.0
    assert ds[1].boxes.shape == (2, 4)
    assert ds.ids == sorted(ds.ids)


def test_imagenet_val_shared_loader(shared_data):
    ds = D.ImageNetVal(limit=4, transform=_resize((64, 48)))
    assert len(ds) == 4
    batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=D.collate_samples)))
    assert batch.image.shape == (4, 3, 48, 64)
    assert batch.label.dtype == torch.long and batch.label.shape == (4,)
    assert [b.shape[1] for b in batch.boxes] == [4] * 4 and batch.boxes[1].shape[0] == 2
    assert batch.size[0] == (500, 375) and batch.id[0] == "ILSVRC2012_val_00000001"


def _check_tiny_val(ds, gen):
    assert ds.ids == ["ILSVRC2012_val_00000001", "ILSVRC2012_val_00000002"]  # 3 unannotated, 9 missing
    for s in ds:
        label, boxes, size = gen["expected"][s.id]
        assert s.label == label and s.boxes.tolist() == boxes and s.size == size
        assert s.image.shape == (3, size[1], size[0])  # grayscale image 2 -> 3 channels


@pytest.mark.parametrize("layout", ["csv", "xml-val", "xml-flat"])
def test_imagenet_val_fixture(tiny_root, datagen, layout):
    gen = datagen.make_imagenet_val(tiny_root, csv_file=layout == "csv", xml=None if layout == "csv" else layout.split("-")[1])
    ds = D.ImageNetVal(tiny_root)
    assert ds.annotation_source == layout.split("-")[0]
    _check_tiny_val(ds, gen)


def test_imagenet_val_csv_and_xml_agree(tiny_root, datagen):
    gen = datagen.make_imagenet_val(tiny_root, csv_file=True, xml="val")
    auto, c, x = (D.ImageNetVal(tiny_root, annotations=a) for a in ("auto", "csv", "xml"))
    assert auto.annotation_source == "csv" and x.annotation_source == "xml"
    assert c.ids == x.ids and c.labels == x.labels and c.wnids == x.wnids
    assert all(torch.equal(a, b) for a, b in zip(c.boxes, x.boxes))
    _check_tiny_val(x, gen)
    # explicit paths work too, and the root may be the imagenet folder itself
    inet = tiny_root / "imagenet"
    assert D.ImageNetVal(inet, annotations=inet / "ILSVRC2012_bbox_val_v3" / "val").ids == c.ids
    assert D.ImageNetVal(inet, limit=1).ids == c.ids[:1]


def test_imagenet_val_errors(tiny_root, datagen):
    with pytest.raises(DataNotFoundError) as e:
        D.ImageNetVal(tiny_root)
    assert str(tiny_root / "imagenet" / "val") in str(e.value)
    assert "PAPERLIB_DATA" in str(e.value) and "LOC_val_solution.csv" in str(e.value)

    datagen.make_imagenet_val(tiny_root, csv_file=False, xml=None)
    with pytest.raises(DataNotFoundError) as e:
        D.ImageNetVal(tiny_root)
    assert str(tiny_root / "imagenet" / "LOC_val_solution.csv") in str(e.value)
    assert "ILSVRC2012_bbox_val_v3" in str(e.value)
    with pytest.raises(DataNotFoundError, match="LOC_val_solution.csv"):
        D.ImageNetVal(tiny_root, annotations="csv")


def test_imagenet_val_corrupt_and_unknown(tiny_root, datagen):
    gen = datagen.make_imagenet_val(tiny_root, csv_file=True, xml=None)
    bad = tiny_root / "imagenet" / "val" / "ILSVRC2012_val_00000002.JPEG"
    bad.write_bytes(b"garbage")
    ds = D.ImageNetVal(tiny_root)
    ds[0]
    with pytest.raises(CorruptImageError, match="ILSVRC2012_val_00000002.JPEG"):
        ds[1]
    csv_path = tiny_root / "imagenet" / "LOC_val_solution.csv"
    csv_path.write_text(csv_path.read_text().replace(gen["wnids"][285], "n99999999"))
    with pytest.raises(UnknownClassError, match="n99999999"):
        D.ImageNetVal(tiny_root)


def test_collate_unequal_sizes(tiny_root, datagen):
    datagen.make_imagenet_val(tiny_root)
    ds = D.ImageNetVal(tiny_root)
    b = D.collate_samples([ds[0], ds[1]])
    assert isinstance(b.image, list) and b.label.tolist() == [285, 1]


# =========================================================================== ImageNet folders
def test_imagenet_folder_shared(shared_data, require_data):
    require_data("imagenet/train-sample")
    ds = D.imagenet_folder()
    assert len(ds) == 3035 and len(set(ds.targets)) == 1000
    c = imagenet_classes()
    for i in (0, 1234, 3034):
        path, target = ds.samples[i]
        assert target == c.index(os.path.basename(os.path.dirname(path)))
    img, label = ds[0]
    assert img.shape[0] == 3 and img.dtype == torch.float32 and label == ds.targets[0]


def test_imagenet_folder_standard_labels(tiny_root, datagen):
    wnids = datagen.write_synsets(tiny_root / "imagenet")
    picks = [285, 1, 999]
    datagen.make_imagenet_folder(tiny_root / "imagenet" / "train-sample", [wnids[i] for i in picks])
    for arg in (None, tiny_root, "train-sample", tiny_root / "imagenet" / "train-sample"):
        ds = D.imagenet_folder(arg)
        assert sorted(set(ds.targets)) == sorted(picks)  # true indices, not 0, 1, 2
        assert ds.class_to_idx == {wnids[i]: i for i in picks}
    img, label = ds[0]
    assert img.shape == (3, 18, 20) and label == 1  # sorted wnids: class 1 comes first
    assert D.imagenet_folder(transform=lambda im: im.size)[0][0] == (20, 18)


def test_imagenet_folder_errors(tiny_root, datagen):
    with pytest.raises(DataNotFoundError) as e:
        D.imagenet_folder()
    assert str(tiny_root / "imagenet" / "train-sample") in str(e.value)
    with pytest.raises(DataNotFoundError, match="nowhere"):
        D.imagenet_folder(tiny_root / "nowhere")
    wnids = datagen.write_synsets(tiny_root / "imagenet")
    folder = datagen.make_imagenet_folder(tiny_root / "f", [wnids[3], "n99999999"])
    with pytest.raises(UnknownClassError, match="n99999999"):
        D.imagenet_folder(folder)


# =========================================================================== CIFAR-10
def test_cifar10_shared(require_data):
    """The shared tarball; extracted once into the (default or $PAPERLIB_CACHE) cache, then reused."""
    require_data("cifar10")
    test = D.cifar10("test")
    assert len(test) == 10000 and test.source in ("official", "jpeg-tar", "folder")
    img, label = test[0]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32 and 0 <= label < 10
    assert len(D.cifar10("train")) == 50000


@pytest.mark.slow
def test_cifar10_tensors_shared(require_data):
    require_data("cifar10")
    x, y = D.cifar10_tensors("test")
    assert x.shape == (10000, 3, 32, 32) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == [1000] * 10
    img, label = D.cifar10("test")[123]
    assert torch.equal((img * 255).round().to(torch.uint8), x[123]) and label == y[123]


def test_cifar10_tar_fixture(tiny_root, datagen, isolated_cache):
    tar = datagen.make_cifar_tar(
        tiny_root / "cifar10" / "cifar10-jpeg.tar.gz",
        {"train": {"cat": 2, "airplane": 1}, "test": {"truck": 1, "dog": 2}},
    )
    before = sorted(p.name for p in (tiny_root / "cifar10").iterdir())
    train = D.cifar10("train")
    assert train.source == "jpeg-tar" and len(train) == 3
    assert sorted(train.targets) == [0, 3, 3]
    img, label = train[0]
    assert img.shape == (3, 32, 32) and label == 0
    test = D.cifar10("test", root=tiny_root)
    assert sorted(test.targets) == [5, 5, 9]
    extracted = isolated_cache / "cifar10-jpeg"
    assert (extracted / "train" / "cat" / "0001.jpg").is_file()
    assert (extracted / ".paperlib-extracted").is_file() and not (extracted / "README.md").exists()
    assert sorted(p.name for p in (tiny_root / "cifar10").iterdir()) == before  # source tree untouched
    assert not [p for p in isolated_cache.iterdir() if p.name.startswith(".cifar10-jpeg-tmp")]

    # extracted once: a second call does not open the tarball
    def boom(*a, **k):
        raise AssertionError("re-extracted")

    orig = tarfile.open
    tarfile.open = boom
    try:
        assert len(D.cifar10("train")) == 3
    finally:
        tarfile.open = orig

    # a changed tarball is extracted anew
    datagen.make_cifar_tar(tar, {"train": {"ship": 1}, "test": {"ship": 1}})
    os.utime(tar, ns=(1, 1))
    assert D.cifar10("train").targets == [8]


def test_cifar10_tensors_fixture(tiny_root, datagen, isolated_cache):
    datagen.make_cifar_tar(tiny_root / "cifar10" / "cifar10-jpeg.tar.gz", {"train": {"frog": 2, "bird": 1}, "test": {"cat": 1}})
    x, y = D.cifar10_tensors("train")
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.uint8 and y.tolist() == [2, 6, 6]
    cached = list(isolated_cache.glob("cifar10-train-*.pt"))
    assert len(cached) == 1
    x2, y2 = D.cifar10_tensors("train")
    assert torch.equal(x, x2) and torch.equal(y, y2)
    img, _ = D.cifar10("train")[0]
    assert torch.equal((img * 255).round().to(torch.uint8), x[0])


def test_cifar10_folder_preferred_over_tar(tiny_root, datagen, isolated_cache):
    datagen.make_cifar_tar(tiny_root / "cifar10" / "cifar10-jpeg.tar.gz", {"train": {"cat": 1}})
    datagen.write_image(tiny_root / "cifar10" / "train" / "horse" / "a.png", (32, 32))
    ds = D.cifar10("train", transform=lambda im: im.mode)
    assert ds.source == "folder" and ds.targets == [7] and ds[0][0] == "RGB"
    assert not (isolated_cache / "cifar10-jpeg").exists()
    (tiny_root / "cifar10" / "cifar-10-batches-py").mkdir()
    assert _cifar_source("train", tiny_root, False)[0] == "official"


def test_cifar10_errors(tiny_root, datagen, isolated_cache):
    with pytest.raises(DataNotFoundError) as e:
        D.cifar10("train")
    msg = str(e.value)
    base = tiny_root / "cifar10"
    for p in (base / "cifar-10-batches-py", base / "train", base / "cifar10-jpeg.tar.gz"):
        assert str(p) in msg
    assert "download=True" in msg
    with pytest.raises(ValueError):
        D.cifar10("val")
    datagen.write_image(base / "train" / "kitten" / "a.png", (32, 32))
    with pytest.raises(UnknownClassError, match="kitten"):
        D.cifar10("train")
    bad = base / "cifar10-jpeg.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(CorruptImageError, match="cifar10-jpeg.tar.gz"):
        D.cifar10("test")


# =========================================================================== VOC
def test_voc_shared(require_data):
    require_data("voc2012")
    ds = D.VOCSegmentation()
    assert len(ds) == 500
    s = ds[0]
    assert s.id == "2007_000033"
    assert s.image.shape[1:] == s.mask.shape and s.mask.dtype == torch.long
    assert set(s.mask.unique().tolist()) <= set(range(21)) | {255}
    assert s.labels.shape == (20,) and s.labels.tolist()[D.VOC_CLASSES.index("aeroplane")] == 1


def test_voc_fixture(tiny_root, datagen):
    gen = datagen.make_voc(tiny_root)
    ds = D.VOCSegmentation()
    assert ds.ids == gen["ids"] and ds.mask_dir.name == "SegmentationClassAug"
    for s in ds:  # labels from image_labels.csv
        k = gen["classes"][s.id]
        assert s.labels.tolist() == [int(j == k - 1) for j in range(20)]
        assert s.mask.shape == (20, 30) and s.image.shape == (3, 20, 30)
        assert set(s.mask.unique().tolist()) == {0, k, 255}


def test_voc_fallbacks(tiny_root, datagen):
    datagen.make_voc(tiny_root, ids=("b", "a", "c"), aug=False, val_txt=False, labels_csv=False)
    ds = D.VOCSegmentation(tiny_root / "voc2012", transform=lambda im: im.size)
    assert ds.ids == ["a", "b", "c"] and ds.mask_dir.name == "SegmentationClass"
    assert ds[0].image == (30, 20) and ds[0].labels[1] == 1  # "a" has class 2 (bicycle)
    split = tiny_root / "ids.txt"
    split.write_text("c\n")
    assert D.VOCSegmentation(split_file=split).ids == ["c"]


def test_voc_errors(tiny_root, datagen):
    with pytest.raises(DataNotFoundError) as e:
        D.VOCSegmentation()
    assert str(tiny_root / "voc2012" / "JPEGImages") in str(e.value)
    (tiny_root / "voc2012" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(DataNotFoundError) as e:
        D.VOCSegmentation()
    assert "SegmentationClassAug" in str(e.value) and "SegmentationClass\n" in str(e.value)
    gen = datagen.make_voc(tiny_root)
    (tiny_root / "voc2012" / "SegmentationClassAug" / f"{gen['ids'][0]}.png").write_bytes(b"junk")
    with pytest.raises(CorruptImageError, match=gen["ids"][0]):
        D.VOCSegmentation()[0]


# =========================================================================== inventory
def test_available_data_empty(tiny_root):
    info = D.available_data()
    assert set(info) >= {
        "imagenet_val",
        "imagenet_annotations",
        "imagenet_synsets",
        "imagenet_train_sample",
        "cifar10",
        "voc2012",
    }
    assert not any(v["found"] for v in info.values())
    assert all(v["count"] is None for v in info.values())
    assert info["imagenet_val"]["path"] == tiny_root / "imagenet" / "val"


def test_available_data_shared(shared_data):
    info = D.available_data()
    assert info["imagenet_val"] == {**info["imagenet_val"], "found": True, "count": 500}
    assert info["imagenet_annotations"]["count"] == 500 and info["imagenet_synsets"]["count"] == 1000
    if info["imagenet_train_sample"]["found"]:
        assert info["imagenet_train_sample"]["count"] == 3035
    if info["voc2012"]["found"]:
        assert info["voc2012"]["count"] == 500

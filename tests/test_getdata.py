"""make data (paperlib.tools.getdata): the check-and-convert steps on local copies (downloads cannot run here)."""

import csv
import io
import shutil
import tarfile
from pathlib import Path

import pytest

from conftest import require_shared
from paperlib.core import data
from paperlib.core.paths import data_root
from paperlib.tools import getdata
from paperlib.tools.getdata import DataError

SHARED = data_root()
N = 4


def _need(path: Path):
    """Skip with the reason every real-data test gives (``conftest.require_shared``) when ``path`` is absent."""
    if not path.exists():
        require_shared(str(path.relative_to(SHARED)) if path.is_relative_to(SHARED) else str(path))


def _val_rows(n=N):
    with open(SHARED / "imagenet" / "LOC_val_solution.csv", newline="") as f:
        rows = sorted(list(csv.reader(f))[1:], key=lambda r: r[0])
    return rows[:n]


def _xml(image_id, fields):
    objs = "".join(
        f"<object><name>{fields[j]}</name><bndbox><xmin>{fields[j + 1]}</xmin><ymin>{fields[j + 2]}</ymin>"
        f"<xmax>{fields[j + 3]}</xmax><ymax>{fields[j + 4]}</ymax></bndbox></object>"
        for j in range(0, len(fields), 5)
    )
    return f"<annotation><filename>{image_id}</filename>{objs}</annotation>".encode()


def _official_files(folder: Path, n=N):
    """A small ILSVRC2012_img_val.tar and ILSVRC2012_bbox_val_v3.tgz with the official layout."""
    rows = _val_rows(n)
    tar = folder / getdata.IMAGENET_VAL_TAR
    with tarfile.open(tar, "w") as tf:
        for image_id, _ in rows:
            tf.add(SHARED / "imagenet" / "val" / f"{image_id}.JPEG", arcname=f"{image_id}.JPEG")
    tgz = folder / getdata.IMAGENET_BBOX_TGZ
    with tarfile.open(tgz, "w:gz") as tf:
        for image_id, pred in rows:
            blob = _xml(image_id, pred.split())
            info = tarfile.TarInfo(f"val/{image_id}.xml")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    shutil.copyfile(SHARED / "imagenet" / "LOC_synset_mapping.txt", folder / "LOC_synset_mapping.txt")
    return [tar, tgz, folder / "LOC_synset_mapping.txt"]


def _leftovers(root: Path):
    return [p.name for p in root.iterdir() if ".partial-" in p.name]


def test_imagenet_official_tar_and_xml(tmp_path):
    _need(SHARED / "imagenet" / "val")
    dl = tmp_path / "dl"
    dl.mkdir()
    root = tmp_path / "root"
    out = getdata.import_imagenet(_official_files(dl), root, expected_images=N, val_md5=None)
    ds = data.ImageNetVal(root=root)
    assert out == root / "imagenet" and len(ds) == N and ds.annotation_source == "xml"
    ref = data.ImageNetVal(limit=N)
    assert ds.labels == ref.labels and [b.tolist() for b in ds.boxes] == [b.tolist() for b in ref.boxes]
    assert _leftovers(root) == []


def test_imagenet_truncated_tar_leaves_nothing(tmp_path):
    _need(SHARED / "imagenet" / "val")
    dl = tmp_path / "dl"
    dl.mkdir()
    files = _official_files(dl)
    blob = files[0].read_bytes()
    files[0].write_bytes(blob[: len(blob) // 2])
    root = tmp_path / "root"
    with pytest.raises(DataError, match="truncated|partial"):
        getdata.import_imagenet(files, root, expected_images=N, val_md5=None)
    assert _leftovers(root) == [] and not (root / "imagenet" / "val").exists()
    with pytest.raises(DataError, match="checksum mismatch"):  # the official checksum catches it first
        getdata.import_imagenet(files, root, expected_images=N)
    with pytest.raises(DataError, match="holds 4 images, expected 50000"):  # a short but intact tar
        getdata.import_imagenet(_official_files(dl), root, val_md5=None)
    assert _leftovers(root) == []


def test_imagenet_missing_files_print_what_to_get(tmp_path):
    with pytest.raises(DataError) as e:
        getdata.import_imagenet([], tmp_path)
    assert getdata.IMAGENET_VAL_TAR in str(e.value) and "kaggle" in str(e.value).lower()


def test_imagenet_kaggle_layout(tmp_path):
    _need(SHARED / "imagenet" / "val")
    k = tmp_path / "imagenet-object-localization-challenge"
    val = k / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    val.mkdir(parents=True)
    rows = _val_rows()
    with open(k / "LOC_val_solution.csv", "w", newline="") as f:
        csv.writer(f).writerows([["ImageId", "PredictionString"]] + rows)
    shutil.copyfile(SHARED / "imagenet" / "LOC_synset_mapping.txt", k / "LOC_synset_mapping.txt")
    for image_id, _ in rows[:-1]:
        shutil.copyfile(SHARED / "imagenet" / "val" / f"{image_id}.JPEG", val / f"{image_id}.JPEG")
    root = tmp_path / "root"
    with pytest.raises(DataError, match="incomplete"):  # one boxed image missing
        getdata.import_imagenet([k], root, expected_images=None)
    shutil.copyfile(SHARED / "imagenet" / "val" / f"{rows[-1][0]}.JPEG", val / f"{rows[-1][0]}.JPEG")
    getdata.import_imagenet([k], root, expected_images=None)
    assert len(data.ImageNetVal(root=root)) == N and _leftovers(root) == []


def test_cifar10_verify_names_the_bad_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta"):
        (folder / name).write_bytes(b"x")
    with pytest.raises(DataError, match="data_batch_1.*partial or corrupt"):
        getdata.verify_cifar10(folder)
    (folder / "data_batch_1").unlink()
    with pytest.raises(DataError, match="data_batch_1 not found"):
        getdata.verify_cifar10(folder)


def test_failed_download_leaves_nothing(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    def broken(url, root, filename=None, md5=None):
        (Path(root) / filename).write_bytes(b"partial")
        raise OSError("connection reset")

    monkeypatch.setattr(tvu, "download_url", broken)
    with pytest.raises(DataError, match="download of .* failed"):
        getdata.download_cifar10(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_voc_devkit_converted_and_checked(tmp_path):
    _need(SHARED / "voc2012" / "JPEGImages")
    ids = (SHARED / "voc2012" / "val.txt").read_text().split()[:3]
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    for i in ids:
        shutil.copyfile(SHARED / "voc2012" / "JPEGImages" / f"{i}.jpg", voc / "JPEGImages" / f"{i}.jpg")
        mask = SHARED / "voc2012" / "SegmentationClassAug" / f"{i}.png"
        shutil.copyfile(mask, voc / "SegmentationClass" / f"{i}.png")
    (voc / "SegmentationClass" / f"{ids[-1]}.png").rename(tmp_path / "aside.png")
    with pytest.raises(DataError, match="1 of 3 validation ids"):
        getdata.convert_voc(voc, tmp_path / "root" / "voc2012")
    (tmp_path / "aside.png").rename(voc / "SegmentationClass" / f"{ids[-1]}.png")
    dest = getdata.convert_voc(voc, tmp_path / "root" / "voc2012")
    ds = data.VOCSegmentation(root=tmp_path / "root")
    assert dest.name == "voc2012" and len(ds) == 3 and ds[0].mask.ndim == 2
    assert _leftovers(tmp_path / "root") == []

"""Unreadable training images: skipped with a warning and counted; too many stop the run with one line."""

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from paperlib.core.data import SkipUnreadable
from paperlib.core.errors import CorruptImageError
from paperlib.experiments.train import TrainConfig, train

WNID = "n01440764"  # tench: any ImageNet class folder name


class _Flaky(Dataset):
    def __init__(self, bad):
        self.bad = set(bad)

    def __len__(self):
        return 5

    def __getitem__(self, i):
        if i in self.bad:
            raise CorruptImageError(f"image {i} is truncated")
        return torch.full((1,), float(i)), i


def test_skip_unreadable_replaces_with_the_next_readable_item_and_counts():
    ds = SkipUnreadable(_Flaky(bad={1, 2, 4}))
    with pytest.warns(RuntimeWarning, match="image 1 is truncated"):
        assert ds[1][1:] == (3, 2)  # items 1 and 2 passed over
    assert ds[0][1:] == (0, 0)
    with pytest.warns(RuntimeWarning, match="image 4"):
        assert ds[4][1:] == (0, 1)  # wraps around
    with pytest.raises(CorruptImageError, match="None of the 5 training images"), pytest.warns(RuntimeWarning):
        SkipUnreadable(_Flaky(bad=range(5)))[0]


def _folder(root, n_good, n_bad):
    folder = root / "imgs" / WNID
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for i in range(n_good):
        arr = (torch.rand(40, 48, 3, generator=g) * 255).byte().numpy()
        Image.fromarray(arr).save(folder / f"good{i}.JPEG", quality=90)
    for i in range(n_bad):
        data = (folder / "good0.JPEG").read_bytes()
        (folder / f"bad{i}.JPEG").write_bytes(data[: len(data) // 3])  # a truncated JPEG
    return root / "imgs"


def _cfg(tmp_path, data, **kw):
    base = dict(
        black_box="efficientnet_lite0", out=str(tmp_path / "run"), data=[str(data)], steps=3, batch_size=4, image_size=32,
        widths=[16, 8, 8], blocks=1, checkpoint_every=3, workers=0, seed=0,
    )  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_a_truncated_jpeg_is_skipped_and_counted_in_the_log(tmp_path):
    data = _folder(tmp_path, n_good=7, n_bad=1)
    with pytest.warns(RuntimeWarning, match="unreadable training image"):
        train(_cfg(tmp_path, data, max_bad_fraction=0.5), progress=False)
    recs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3]
    assert recs[-1]["skipped_images"] >= 1  # 12 draws over 8 files: the bad one comes up at least once
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["skipped"] == recs[-1]["skipped_images"]


def test_too_many_unreadable_images_stop_the_command_with_one_line(tmp_path):
    data = _folder(tmp_path, n_good=3, n_bad=5)
    cmd = [sys.executable, "-m", "paperlib.train", "--black-box", "efficientnet_lite0", "--out", str(tmp_path / "run"),
           "--data", str(data), "--steps", "3", "--batch-size", "4", "--image-size", "32", "--widths", "16", "8", "8",
           "--blocks", "1", "--workers", "0"]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "could not be read" in errors[0] and "--max-bad-fraction 0.1" in errors[0]

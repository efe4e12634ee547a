"""Fig. 2's photographs (paperlib.tools.sample_images.scene_photos): the scenes from the data root, else the samples."""

from __future__ import annotations

import pytest
import torch

from conftest import require_shared
from paperlib.core.errors import DataNotFoundError
from paperlib.tools.sample_images import SCENES, scene_photos


def test_without_the_scenes_the_three_samples_stand_in_and_say_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    monkeypatch.delenv("PAPERLIB_STRICT", raising=False)
    photos, source = scene_photos(32)
    assert [p.name for p in photos] == ["chelsea", "coffee", "rocket"]
    assert "scikit-image samples" in source and "using the scikit-image samples" in capsys.readouterr().out
    assert all(p.image.shape == (1, 3, 32, 32) for p in photos)
    monkeypatch.setenv("PAPERLIB_STRICT", "1")
    with pytest.raises(DataNotFoundError, match="nips17"):
        scene_photos(32)


def test_the_scenes_come_with_their_labels_and_credits():
    folder = require_shared("imagenet/train-extra/nips17")
    photos, source = scene_photos(64)
    assert [p.name for p in photos] == ["chelsea", *SCENES]
    assert "NIPS 2017" in source
    for p in photos[1:]:
        assert p.image.shape == (1, 3, 64, 64) and 0 <= float(p.image.min()) and float(p.image.max()) <= 1
        assert "creativecommons.org" in p.credit, p.credit  # author and licence from images.csv
    labels = {p.name: p.label for p in photos}
    wnids = [line.split()[0] for line in (folder.parent.parent / "LOC_synset_mapping.txt").read_text().splitlines()]
    for name, (file, _) in SCENES.items():
        assert wnids[labels[name]] == file.split("/")[0]  # the class is the folder's wnid
    assert not torch.equal(photos[1].image, photos[2].image)

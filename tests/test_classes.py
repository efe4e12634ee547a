"""Tests of paperlib.classes: names without data, wnids from the synset file, lookups, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlib.core.classes import (
    CIFAR10_NAMES,
    ClassIndex,
    cifar10_classes,
    class_index,
    imagenet_classes,
    synset_file,
)
from paperlib.core.errors import DataNotFoundError, InputError, UnknownClassError


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """A data root without any file: names must still work."""
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path / "empty"))
    return tmp_path / "empty"


@pytest.fixture
def real_synsets(require_data):
    return require_data("imagenet/LOC_synset_mapping.txt")


# --------------------------------------------------------------------------- names, no data
def test_names_without_data(no_data):
    c = imagenet_classes()
    assert c.num_classes == len(c) == len(c.names) == 1000
    assert c.name(285) == "Egyptian cat"
    assert c.index("egyptian cat") == 285
    assert c.index("  EGYPTIAN   Cat ") == 285
    assert c.names[0] == "tench"
    assert "Egyptian cat" in c and "no such thing" not in c


def test_every_name_round_trips(no_data):
    c = imagenet_classes()
    assert len(set(c.names)) == 1000
    assert all(c.index(n) == i for i, n in enumerate(c.names))
    # the only names that differ by case alone: the exact case decides
    assert c.index("Cardigan") == 264 and c.index("cardigan") == 474
    with pytest.raises(UnknownClassError, match="Ambiguous"):
        c.index("CARDIGAN")


def test_without_data_the_packaged_synset_list_gives_wnids_and_synonyms(no_data):
    from paperlib.core.classes import PACKAGED_SYNSET_FILE, synset_file

    assert synset_file() == PACKAGED_SYNSET_FILE  # nothing under the data root: the copy in the package
    c = imagenet_classes()
    assert c.wnid(285) == "n02124075" and c.index("n02124075") == 285
    assert c.index("tabby cat") == c.index("tabby") == 281  # the README's example works without data
    local = no_data / "imagenet" / "LOC_synset_mapping.txt"
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text("not a synset file\n")
    assert synset_file() == local  # a file under the data root takes precedence, and is checked
    with pytest.raises(DataNotFoundError, match="Malformed"):
        imagenet_classes().wnid(285)


def test_unknown_name_suggests_closest(no_data):
    with pytest.raises(UnknownClassError) as e:
        imagenet_classes().index("egyptain cat")
    msg = str(e.value)
    assert "'Egyptian cat'" in msg and "search(" in msg
    assert isinstance(e.value, KeyError)  # also a KeyError, with a readable str()
    assert imagenet_classes().suggestions("egyptain cat")[0] == "Egyptian cat"


@pytest.mark.parametrize("bad", [-1, 1000, True, 3.0, "285", None, np.int64(1000)])
def test_bad_index_raises(no_data, bad):
    with pytest.raises(UnknownClassError):
        imagenet_classes().index(bad)


def test_numpy_and_tensor_scalars(no_data):
    c = imagenet_classes()
    assert c.index(np.int64(7)) == 7 and c.index(torch.tensor(7)) == 7
    assert c.name(torch.tensor([285])) == "Egyptian cat"


def test_search(no_data):
    c = imagenet_classes()
    assert c.search("egyptian")[0] == (285, "Egyptian cat")
    assert c.search("egyptain cat")[0] == (285, "Egyptian cat")  # fuzzy
    cats = [i for i, _ in c.search("cat", k=10)]
    assert {282, 283, 284, 285} <= set(cats) and len(cats) == 10
    assert len(c.search("e", k=3)) == 3
    assert c.search("", k=2) == [(0, "tench"), (1, "goldfish")]
    assert c.search("xqzzv") == []


# --------------------------------------------------------------------------- resolve
def test_resolve(no_data):
    c = imagenet_classes()
    assert c.resolve(285, 3).tolist() == [285] * 3
    assert c.resolve("Egyptian cat", 2).tolist() == [285, 285]
    assert c.resolve([1, "goldfish", "tench"], 3).tolist() == [1, 1, 0]
    assert c.resolve(["tench"], 2).tolist() == [0, 0]
    t = c.resolve(torch.tensor([3, 4]), 2)
    assert t.dtype == torch.long and t.tolist() == [3, 4]
    assert c.resolve(torch.tensor(5, dtype=torch.int32), 3).tolist() == [5, 5, 5]
    assert c.resolve(np.array([1, 2]), 2).tolist() == [1, 2]
    assert c.resolve(7, 0).shape == (0,)
    with pytest.raises(InputError):
        c.resolve([1, 2], 3)
    with pytest.raises(InputError):
        c.resolve(torch.tensor([1.0, 2.0]), 2)
    with pytest.raises(InputError):
        c.resolve(torch.zeros(2, 2, dtype=torch.long), 4)
    with pytest.raises(UnknownClassError):
        c.resolve(torch.tensor([1, 1000]), 2)
    with pytest.raises(UnknownClassError):
        c.resolve([0, -1], 2)
    with pytest.raises(UnknownClassError) as e:
        c.resolve("egyptain cat", 1)
    assert "Egyptian cat" in str(e.value)


# --------------------------------------------------------------------------- CIFAR-10, dispatch
def test_cifar10_classes():
    c = cifar10_classes()
    assert c.names == list(CIFAR10_NAMES) and c.num_classes == 10
    assert c.index("CAT ") == 3 and c.name(9) == "truck"
    assert not c.has_wnids
    with pytest.raises(UnknownClassError):
        c.wnid(3)
    with pytest.raises(UnknownClassError) as e:
        c.index("cta")
    assert "'cat'" in str(e.value)
    assert c.resolve("dog", 2).tolist() == [5, 5]


def test_class_index_by_name():
    assert class_index("imagenet") is imagenet_classes()
    assert class_index("CIFAR-10") is cifar10_classes() is class_index("cifar10")
    with pytest.raises(InputError):
        class_index("mnist")


# --------------------------------------------------------------------------- synset file
def test_wnid_round_trip_real(real_synsets):
    c = imagenet_classes()
    assert c.wnid(285) == "n02124075"
    assert c.index("n02124075") == 285 and c.index(" N02124075 ") == 285
    assert c.name("n02124075") == "Egyptian cat"
    wnids = c.wnids
    assert len(wnids) == 1000 and wnids == sorted(wnids)
    assert all(c.index(w) == i for i, w in enumerate(wnids))
    assert c.wnid(0) == "n01440764"


def test_synonyms_real(real_synsets):
    c = imagenet_classes()
    assert c.index("tabby cat") == c.index("tabby") == c.index("tabby, tabby cat") == 281
    assert c.index("Carcharodon carcharias") == 2
    assert "great white shark" in c.synonyms(2) and "man-eater" in c.synonyms(2)
    with pytest.raises(UnknownClassError) as e:  # a synonym of two classes
        c.index("grass snake")
    assert "Ambiguous" in str(e.value) and "55" in str(e.value) and "57" in str(e.value)
    with pytest.raises(UnknownClassError):
        c.index("n99999999")
    assert c.search("man-eater")[0][0] == 2


def test_synset_file_follows_data_root(tmp_path, monkeypatch):
    """A synthetic file: the class list reads the file of the current data root."""
    names = imagenet_classes().names
    inet = tmp_path / "imagenet"
    inet.mkdir()
    lines = [f"n{i:08d} {n}, alias number {i}" for i, n in enumerate(names)]
    (inet / "LOC_synset_mapping.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    c = imagenet_classes()
    assert synset_file() == inet / "LOC_synset_mapping.txt"
    assert c.wnid(285) == "n00000285" and c.index("alias number 42") == 42


@pytest.mark.parametrize(
    "content, what",
    [
        ("n00000001 a\n", "1 classes"),
        ("garbage line\n" * 1000, "wnid"),
        ("".join(f"n{999 - i:08d} x{i}\n" for i in range(1000)), "sorted"),
    ],
)
def test_malformed_synset_file(tmp_path, monkeypatch, content, what):
    (tmp_path / "imagenet").mkdir()
    (tmp_path / "imagenet" / "LOC_synset_mapping.txt").write_text(content)
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError) as e:
        imagenet_classes().wnid(0)
    assert what in str(e.value) and "LOC_synset_mapping.txt" in str(e.value)
    # names keep working: a broken file is ignored for name lookups
    assert imagenet_classes().index("tench") == 0


def test_custom_class_index():
    c = ClassIndex(["a b", "c"], dataset="toy")
    assert c.index("A  B") == 0 and repr(c) == "ClassIndex(dataset='toy', num_classes=2)"
    with pytest.raises(UnknownClassError) as e:
        c.index("d")
    assert "toy" in str(e.value)

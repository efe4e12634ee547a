"""Loading a file never runs code from it (issue: masker files that are safe to share).

A crafted pickle whose unpickling would write a file is given to every public loader: each must
refuse it with :class:`UnsafeCheckpointError` and the file must not be written. Truncated files give
:class:`CorruptCheckpointError` naming the file; ``convert-checkpoint --trust`` is the one way in.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlib.core.errors import CorruptCheckpointError, InputError, UnsafeCheckpointError
from paperlib.core.masker import build_masker
from paperlib.core.paths import CHECKPOINT_DIR
from paperlib.core.serialization import safe_load
from paperlib.core.storage import FORMAT, load_masker, save_masker
from paperlib.tools.convert import convert_checkpoint

PACKAGE = Path(__file__).resolve().parents[1] / "paperlib"


class WritesAFile:
    """Unpickling this calls ``Path.write_text(target, "pwned")``: code from the file would run."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (self.target, "pwned"))


def _evil(tmp_path: Path, content_key: str = "meta", base: dict | None = None) -> tuple[Path, Path]:
    target = tmp_path / "pwned.txt"
    payload = dict(base or {"format": FORMAT, "config": {}, "state_dict": {}})
    payload[content_key] = {"x": WritesAFile(target)}
    path = tmp_path / "evil.pt"
    torch.save(payload, path)
    return path, target


def test_the_crafted_pickle_does_run_code_when_unpickled(tmp_path):
    """The test's premise: plain unpickling of the file writes the file."""
    path, target = _evil(tmp_path)
    torch.load(path, weights_only=False)
    assert target.read_text() == "pwned"


def _loaders(tmp_path: Path, path: Path):
    from paperlib.core.cifarnet import net_from_file
    from paperlib.experiments import _loop, wsss
    from paperlib.experiments.own import black_box_from_spec

    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "last.pt").write_bytes(path.read_bytes())
    return {
        "load_masker": lambda: load_masker(path),
        "training resume (last.pt)": lambda: _loop.load_last(run),
        "CIFAR-10 classifier": lambda: net_from_file(path),
        "own classifier weights": lambda: black_box_from_spec("torchvision:resnet18", weights=path, class_names=["a", "b"]),
        "VOC black box": lambda: wsss.load_voc_black_box(path, cache=False),
        "VOC masker": lambda: wsss.load_voc_masker(path),
        "safe_load": lambda: safe_load(path),
    }


@pytest.mark.parametrize(
    "loader",
    [
        "load_masker",
        "training resume (last.pt)",
        "CIFAR-10 classifier",
        "own classifier weights",
        "VOC black box",
        "VOC masker",
        "safe_load",
    ],
)
def test_every_public_loader_refuses_a_malicious_file(tmp_path, loader):
    path, target = _evil(tmp_path)
    with pytest.raises(UnsafeCheckpointError) as info:
        _loaders(tmp_path, path)[loader]()
    assert not target.exists(), "code from the file ran"
    msg = str(info.value)
    assert "convert-checkpoint" in msg and "--trust" in msg and ("evil.pt" in msg or "last.pt" in msg)


def test_a_pickled_model_as_own_weights_is_refused_with_advice(tmp_path):
    from paperlib.experiments.own import black_box_from_spec

    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(UnsafeCheckpointError, match=r"state_dict\(\)"):
        black_box_from_spec("torchvision:resnet18", weights=path, class_names=["a", "b"])


@pytest.fixture
def saved_masker(tmp_path):
    torch.manual_seed(0)
    m = build_masker("efficientnet_lite0", widths=[16, 8, 8], blocks=1).eval()
    return m, save_masker(m, tmp_path / "m.pt", meta={"step": np.int64(3), "where": tmp_path, "loss": np.float32(0.5)})


def test_truncated_and_corrupted_files_name_the_file(tmp_path, saved_masker):
    _, path = saved_masker
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match=re.escape(str(cut))):
        load_masker(cut)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CorruptCheckpointError, match=re.escape(str(junk))):
        load_masker(junk)


def test_saved_meta_is_plain_and_loads_safely(saved_masker):
    masker, path = saved_masker
    raw = torch.load(path, weights_only=True)  # would raise on NumPy scalars or Path objects
    assert raw["meta"]["step"] == 3 and isinstance(raw["meta"]["step"], int) and isinstance(raw["meta"]["where"], str)
    back = load_masker(path)
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(back(x, [1, 2]), masker(x, [1, 2]))


def test_convert_needs_trust_and_gives_the_same_masks(tmp_path, saved_masker):
    masker, path = saved_masker
    raw = torch.load(path, weights_only=True)
    raw["meta"]["array"] = np.arange(3)  # an old file with a NumPy object: not loadable safely
    old = tmp_path / "old.pt"
    torch.save(raw, old)
    with pytest.raises(UnsafeCheckpointError):
        load_masker(old)
    with pytest.raises(UnsafeCheckpointError, match="--trust"):
        convert_checkpoint(old, tmp_path / "new.pt")
    with pytest.raises(InputError):
        convert_checkpoint(old, old, trust=True)
    new = convert_checkpoint(old, tmp_path / "new.pt", trust=True)
    back = load_masker(new)
    assert torch.equal(back.meta["array"], torch.arange(3))
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert torch.equal(back(x, [3, 4]), masker(x, [3, 4]))


def test_convert_command_line(tmp_path, saved_masker, capsys):
    from paperlib.cli import main

    _, path = saved_masker
    with pytest.raises(SystemExit) as info:
        main(["convert-checkpoint", str(path), str(tmp_path / "c.pt")])
    assert info.value.code == 2 and "--trust" in capsys.readouterr().err
    main(["convert-checkpoint", str(path), str(tmp_path / "c.pt"), "--trust"])
    assert (tmp_path / "c.pt").is_file()


def test_another_architecture_still_gives_the_mismatch_error(tmp_path, saved_masker):
    from paperlib.core.errors import CheckpointMismatchError

    _, path = saved_masker
    raw = torch.load(path, weights_only=True)
    raw["config"]["widths"] = [32, 16, 8]
    other = tmp_path / "other.pt"
    torch.save(raw, other)
    with pytest.raises(CheckpointMismatchError):
        load_masker(other)
    with pytest.raises(CheckpointMismatchError):
        load_masker(path, black_box="efficientnet_lite2")


@pytest.mark.parametrize("path", sorted(CHECKPOINT_DIR.glob("*.pt")), ids=lambda p: p.name)
def test_every_shipped_file_loads_without_unpickling_objects(path):
    assert isinstance(safe_load(path), dict)


def test_no_unsafe_torch_load_left_in_the_package():
    offenders = [
        f"{p.relative_to(PACKAGE)}:{i}"
        for p in PACKAGE.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "weights_only=False" in line and p.name != "convert.py" and not line.lstrip().startswith(("#", '"', "``"))
    ]
    assert offenders == []

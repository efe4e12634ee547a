"""Compact resume state (fp16 weights, bf16 Adam moments): export, restore, resume close to the uninterrupted run."""

import pytest
import torch

from paperlib.core.errors import CheckpointMismatchError
from paperlib.core.serialization import safe_load
from paperlib.experiments.resume import export_state, restore_state
from paperlib.experiments.train import _parse, train


def _data(root, datagen):
    return datagen.make_imagenet_folder(root / "imgs", ("n01440764", "n01443537"), per_class=4)


def _cfg(data, out, steps):
    return _parse(["--black-box", "efficientnet_lite0", "--out", str(out), "--data", str(data), "--steps", str(steps),
                   "--batch-size", "4", "--image-size", "32", "--widths", "16", "8", "8", "--blocks", "1", "--workers", "0",
                   "--checkpoint-every", "2", "--threads", "1", "--output-gate", "--preset-objective", "authors",
                   "--class-embedding", "frozen", "--schedule", "constant", "--weight-decay", "1e-4"])  # fmt: skip


def test_export_restore_resume(tmp_path, one_thread, datagen):
    data = _data(tmp_path, datagen)
    full = train(_cfg(data, tmp_path / "a", 4), progress=False)  # the uninterrupted run, 4 steps
    train(_cfg(data, tmp_path / "b", 2), progress=False)  # the same run stopped at step 2
    state = export_state(tmp_path / "b", tmp_path / "state.pt")
    c = safe_load(state)
    assert c["step"] == 2 and not any(k.startswith("encoder.") or k == "filter.embedding.weight" for k in c["weights"])
    assert {v.dtype for v in c["weights"].values() if v.is_floating_point()} == {torch.float16}
    moments = next(iter(c["optimizer"]["state"].values()))
    assert moments["exp_avg"].dtype == moments["exp_avg_sq"].dtype == torch.bfloat16
    assert state.stat().st_size < 0.5 * (tmp_path / "b" / "last.pt").stat().st_size

    restore_state(state, tmp_path / "c")
    with pytest.raises(CheckpointMismatchError, match="already"):
        restore_state(state, tmp_path / "c")  # never overwrites a run that is as far along
    resumed = train(_cfg(data, tmp_path / "c", 4), progress=False)  # resumes at step 2 from the compact state
    a, b = full.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("encoder.") or k == "filter.embedding.weight")
    diffs = [(a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point()]
    assert 0 < max(diffs) < 5e-2  # not bit-exact (fp16/bf16 rounding), but the same run
    steps = [ln for ln in (tmp_path / "c" / "log.jsonl").read_text().splitlines()]
    assert len(steps) == 2  # only steps 3 and 4 were trained again

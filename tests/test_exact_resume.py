"""A training run killed with SIGKILL and started again ends with the uninterrupted run's weights (issue 15).

The run trains on real JPEG files with the default augmentation (random resized crops and flips),
through the command line, for ``--workers 0`` and ``--workers 1``.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from paperlib.core.storage import load_masker
from paperlib.experiments.train import TrainConfig, train

STEPS, EVERY = 8, 2


def _folder(root):
    g = torch.Generator().manual_seed(0)
    for wnid in ("n01440764", "n01443537"):
        folder = root / "imgs" / wnid
        folder.mkdir(parents=True)
        for i in range(5):
            arr = (torch.rand(48, 56, 3, generator=g) * 255).byte().numpy()
            Image.fromarray(arr).save(folder / f"{i}.JPEG", quality=90)
    return root / "imgs"


def _args(data, out, workers):
    return ["--black-box", "efficientnet_lite0", "--out", str(out), "--data", str(data), "--steps", str(STEPS),
            "--batch-size", "4", "--image-size", "32", "--widths", "16", "8", "8", "--blocks", "1", "--workers",
            str(workers), "--checkpoint-every", str(EVERY), "--threads", "1"]  # fmt: skip


def _kill_after_step(cmd, log, step, timeout=120):
    """Start ``cmd``, SIGKILL it once ``log`` records ``step``; returns the last step logged."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    try:
        while time.time() - t0 < timeout and p.poll() is None:
            if log.exists() and len(log.read_text().splitlines()) >= step:
                break
            time.sleep(0.02)
    finally:
        os.killpg(p.pid, signal.SIGKILL)  # the loader worker too
        p.wait()
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.parametrize("workers", [0, 1])
def test_a_killed_run_resumes_to_the_uninterrupted_weights(tmp_path, workers):
    from paperlib.experiments.train import _parse

    data = _folder(tmp_path)
    ref_cfg = _parse(_args(data, tmp_path / "ref", workers))
    ref = train(ref_cfg, progress=False)

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "paperlib.train", *_args(data, out, workers)]
    logged = _kill_after_step(cmd, out / "log.jsonl", 5)
    assert 1 <= logged < STEPS, f"the run should have been killed mid-way (logged {logged} steps)"
    assert (out / "last.pt").exists(), "no checkpoint was written before the kill"
    resumed_from = torch.load(out / "last.pt", weights_only=False)["step"]
    assert resumed_from < STEPS
    resumed = train(TrainConfig(**{**ref_cfg.__dict__, "out": str(out)}), progress=False)
    diff = max(
        (a.float() - b.float()).abs().max().item() for a, b in zip(ref.state_dict().values(), resumed.state_dict().values())
    )
    assert diff <= 1e-5, f"resumed at step {resumed_from}: weights differ by {diff}"
    assert load_masker(out / "masker.pt") is not None

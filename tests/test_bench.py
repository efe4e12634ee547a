"""Tests of paperlib.bench: the timing helper, a tiny end-to-end run, the outputs. No speed is asserted."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from paperlib.core.classifiers import BlackBox
from paperlib.core.errors import InputError
from paperlib.tools import bench

pytestmark = pytest.mark.usefixtures("one_thread")


class _TinyNet(nn.Module):
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def tiny_black_box() -> BlackBox:
    torch.manual_seed(0)
    net = _TinyNet()
    return BlackBox(
        net,
        name="tiny",
        num_classes=5,
        input_size=32,
        normalize=lambda t: t,
        cam_layer=net.features,
        classifier_layer=net.fc,
        resize=False,
    )


def test_time_callable_counts_calls_and_orders_stats():
    calls = []
    res = bench.time_callable(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6
    assert res["repeats"] == 4 and res["warmup"] == 2 and len(res["times"]) == 4
    assert res["min"] <= res["median"] <= res["max"]
    synced = []
    bench.time_callable(lambda: None, repeats=2, warmup=0, sync=lambda: synced.append(1))
    assert len(synced) == 4  # before and after every timed call
    with pytest.raises(InputError):
        bench.time_callable(lambda: None, repeats=0)


def test_bench_masker_and_baseline_structure(tiny_masker):
    x = torch.rand(3, 3, 64, 64)
    c = torch.tensor([1, 2, 3])
    res = bench.bench_masker(tiny_masker, x, c, batch_sizes=(4, 1), repeats=1, warmup=0)
    assert set(res["batches"]) == {"4", "1"}  # batch 4 > 3 images: cycles through them
    b4 = res["batches"]["4"]
    assert b4["masks_per_s"]["min"] <= b4["masks_per_s"]["median"] <= b4["masks_per_s"]["max"]
    bb = tiny_black_box()
    m = bench.bench_baseline(
        "mask", bb, x[:, :, :32, :32], c, batch_sizes=(2,), repeats=1, warmup=0, iterations=20, timed_iterations=3
    )
    assert m["extrapolated"] and m["iterations"] == 20 and m["timed_iterations"] == 3
    assert m["batches"]["2"]["seconds"]["median"] > 0


def test_run_writes_table_json_and_figure(tmp_path, tiny_masker):
    x = torch.rand(2, 3, 64, 64)
    res = bench.run(
        "quick",
        "cpu",
        maskers={"tiny masker": tiny_masker},
        baselines=["grad", "gradcam", "mask"],
        black_box=tiny_black_box(),
        images=x,
        classes=torch.tensor([0, 3]),
        repeats=1,
        warmup=0,
        mask_iterations=2,
        optimised=True,
        memory="inprocess",
        out=tmp_path,
        progress=False,
    )
    names = [r["method"] for r in res["rows"]]
    assert names[:2] == ["tiny masker", "tiny masker, optimised"]
    assert len(names) == 5 and res["reference"] in names[:2]
    mask_row = res["rows"][-1]
    assert "measured at 2 iterations" in mask_row["note"] and "scaled to 300" in mask_row["note"]
    for r in res["rows"]:
        assert r["speedup"] is not None and r["speedup"] > 0
        assert set(r["batches"]) >= {"16", "1"}
    md = (tmp_path / "bench.md").read_text()
    assert res["hardware_line"] in md
    assert bench.PAPER_CLAIM in md
    assert "| tiny masker |" in md and "Mask (iterative" in md
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["preset"] == "quick" and data["device"] == "cpu" and len(data["rows"]) == 5
    assert (tmp_path / "speed.png").stat().st_size > 0
    assert bench.to_markdown(res) == md


def test_optimise_for_cpu_matches_original(tiny_masker):
    opt = bench.optimise_for_cpu(tiny_masker)
    assert opt is not tiny_masker and opt.optimised["fused_conv_bn"] > 0
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        a = tiny_masker(x, torch.tensor([1, 2]))
        b = opt(x.contiguous(memory_format=torch.channels_last), torch.tensor([1, 2]))
    assert torch.allclose(a, b, atol=1e-4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in tiny_masker.modules())  # original untouched


def test_measure_memory_inprocess():
    res = bench.measure_memory(lambda: torch.ones(4 * 2**20).sum(), "cpu", weights_bytes=2**20)
    assert res["weights_mb"] == pytest.approx(1.0)
    if res["peak_mb"] is not None:  # Linux with /proc
        assert res["peak_mb"] >= 1.0

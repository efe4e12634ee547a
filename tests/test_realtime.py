"""Tests of paperlib.realtime: every optimised back end gives the masker's masks; the benchmark's outputs.

No speed is asserted (speed is a measurement, reported by ``python -m paperlib.realtime``).
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import paperlib
from paperlib.core.errors import InputError
from paperlib.tools import realtime

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n: int = 2, size: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "backend", ["eager", "inference_mode", "channels_last", "fused_bn", "fused_bn+channels_last", "int8_dynamic", "onnxruntime"]
)
def test_backends_reproduce_the_masker(tiny_masker, backend):
    x, c = _images(), torch.tensor([3, 281])
    with torch.no_grad():
        ref = tiny_masker(x, c)
    fast = realtime.fast_masker(tiny_masker, backend)
    out = fast(x, c)
    assert isinstance(fast, paperlib.FastMasker) and fast.name == backend
    assert out.shape == ref.shape == (2, 1, 64, 64)
    assert torch.allclose(out, ref, atol=1e-3), float((out - ref).abs().max())
    # the original masker is left as it was (still has its batch norms, still fp32 contiguous)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in tiny_masker.modules())


def test_lower_input_resolution_returns_full_size_masks(tiny_masker):
    fast = realtime.fast_masker(tiny_masker, "onnxruntime@160")
    assert fast.input_size == 160 and fast.run_size(224, 224) == (160, 160)
    x = _images(2, 224)
    out = fast(x, "Egyptian cat")  # class names work as with the masker
    assert out.shape == (2, 1, 224, 224)
    # the reference path in eager PyTorch: the images squashed to 160 px (bilinear, antialiased), the masker's
    # mask there, resized back to 224 px (bilinear); same weights, so the same masks up to onnxruntime's float
    # noise (1e-3, as for the full-resolution back ends above)
    x160 = F.interpolate(x, size=(160, 160), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    with torch.no_grad():
        low = tiny_masker(x160, torch.tensor([285, 285]))
        full = tiny_masker(x, torch.tensor([285, 285]))
    ref = F.interpolate(low, size=(224, 224), mode="bilinear", align_corners=False).clamp(0, 1)
    assert torch.allclose(out, ref, atol=1e-3), float((out - ref).abs().max())
    assert float((out - full).abs().max()) > 1e-2  # and it is not the mask of the 224 px images


def test_bad_inputs_get_clear_errors(tiny_masker):
    with pytest.raises(InputError, match="backend"):
        realtime.fast_masker(tiny_masker, "tensorrt")
    fast = realtime.fast_masker(tiny_masker, "fused_bn")
    with pytest.raises(InputError):
        fast(torch.rand(1, 1, 64, 64), 0)  # grayscale: 1 channel
    with pytest.raises(paperlib.UnknownClassError):
        fast(_images(1), "not a class at all")


@pytest.mark.slow
def test_run_writes_table_with_goal_and_provenance(tmp_path):
    res = realtime.run("quick", candidates=["eager", "onnxruntime"], eval_images=0, out=tmp_path, progress=False)
    names = [r["candidate"] for r in res["rows"]]
    assert names == ["eager", "onnxruntime"]
    for r in res["rows"]:
        assert r["masks_per_s_16"]["median"] > 0 and r["latency_ms_1"]["median"] > 0
        assert r["max_mask_diff"] < 1e-2  # same weights, same masks
        assert isinstance(r["meets_goal"], bool)
    saved = json.loads((tmp_path / "realtime_cpu.json").read_text())
    assert saved["rows"][0]["candidate"] == "eager"
    md = (tmp_path / "realtime_cpu.md").read_text()
    assert "Goal (issue 6)" in md and "torch" in md and "| `onnxruntime` |" in md


def test_unknown_candidate_is_rejected():
    with pytest.raises(InputError, match="candidate"):
        realtime.run("quick", candidates=["eager", "warp-drive"], eval_images=0)


def test_summary_states_the_numbers_of_the_result():
    from paperlib.tools.realtime import summary

    def row(name, rate, ms, err, meets):
        return {
            "candidate": name,
            "masks_per_s_16": {"median": rate},
            "latency_ms_1": {"median": ms},
            "error_increase": err,
            "meets_goal": meets,
        }

    result = {
        "hardware_line": "CPU X",
        "preset": "quick",
        "eval_data": "val 1-100",
        "black_box": "efficientnet_lite0",
        "goal": {"masks_per_s_16": 30.0, "latency_ms_1": 33.0, "max_error_increase": 1.0},
        "rows": [
            row("eager", 20.0, 50.0, 0.0, False),
            row("onnxruntime", 70.0, 30.0, 0.0, True),
            row("onnxruntime@160", 120.0, 20.0, 13.0, False),
        ],
    }
    text = summary(result)
    assert "CPU X" in text and "20 masks/s" in text and "50 ms" in text
    assert "fastest back end with the same localisation, `onnxruntime`, at 70 masks/s" in text  # not the low-res one
    assert "goal" in text and "`onnxruntime`" in text and "+13.0 points for `onnxruntime@160`" in text

"""Learning-curve points on the box tuning split (validation images 401-500 only)."""

import json

import pytest
import torch
from torch import nn

from paperlib.core.data import ImageNetVal
from paperlib.experiments import curve


class KeepsEverything(nn.Module):
    """A stand-in masker whose mask is 1 everywhere (its box is the whole image)."""

    num_classes = 1000

    def forward(self, images, classes):
        return torch.ones(len(images), 1, *images.shape[-2:])


def _iou_with_whole_image(box, w, h):
    x0, y0, x1, y1 = box.tolist()
    inter = max(0.0, min(x1, w) - max(x0, 0)) * max(0.0, min(y1, h) - max(y0, 0))
    return inter / (w * h + (x1 - x0) * (y1 - y0) - inter)


def test_scores_images_401_to_500_with_the_papers_protocol(shared_data):
    row = curve.score_masker(KeepsEverything(), _Size(224))
    ds = ImageNetVal()
    # the whole-image box is correct when its IoU with any ground-truth box of the image exceeds 0.5
    wrong = sum(
        not any(_iou_with_whole_image(b, *ds[i].size) > 0.5 for b in ds[i].boxes) for i in range(400, 500)
    )  # fmt: skip
    assert row["n"] == 100 and row["tune_error"]["0.5"] == round(100.0 * wrong / 100, 1)
    assert row["area_true"] == row["area_wrong"] == 1.0


class _Size(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.input_size = size


def test_update_curve_scores_new_snapshots_only(tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"batch_size": 16, "snapshot_every": 5}))
    for step in (5, 10):
        (run / "snapshots" / f"step{step}.pt").write_bytes(b"")
    scored = []

    def fake(path, batch_size):
        step = int(path.stem[4:])
        scored.append(step)
        return {"step": step, "passes": step * batch_size, "tune_error": {"0.5": 50.0 - step}}

    monkeypatch.setattr(curve, "score_snapshot", fake)
    out = tmp_path / "curve.json"
    c = curve.update_curve(run, out)
    assert [p["passes"] for p in c["points"]] == [80, 160]
    (run / "snapshots" / "step15.pt").write_bytes(b"")
    curve.update_curve(run, out)
    assert scored == [5, 10, 15] and [p["step"] for p in json.loads(out.read_text())["points"]] == [5, 10, 15]


def test_tune_inference_picks_the_lowest_error_with_ties_to_the_paper(monkeypatch):
    errors = {0.0: {"0.4": 40.0, "0.5": 38.0}, 2.0: {"0.4": 38.0, "0.5": 39.0}, 4.0: {"0.4": 45.0, "0.5": 44.0}}

    class Stub:
        gate_offset = 1.5

    def fake(masker, black_box, thresholds, wrong_class=True):
        return {"tune_error": errors[masker.gate_offset], "area_true": 0.5 - masker.gate_offset / 10}

    monkeypatch.setattr(curve, "score_masker", fake)
    m = Stub()
    r = curve.tune_inference(m, None, offsets=(0.0, 2.0, 4.0), thresholds=(0.4, 0.5))
    assert (r["gate_offset"], r["threshold"], r["tune_error"]) == (0.0, 0.5, 38.0)  # tie at 38: smaller offset
    assert m.gate_offset == 1.5 and r["area"]["4.0"] == pytest.approx(0.1)


def test_progress_rows_from_a_resumed_log(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"batch_size": 16}))
    # killed after step 3 with its last checkpoint at step 2: the resumed process trains step 3 again
    recs = [{"step": s, "time": t} for s, t in [(1, 10.0), (2, 20.0), (3, 30.0), (3, 12.0), (4, 24.0)]]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert curve.log_segments(run / "log.jsonl") == [
        {"first": 1, "last": 3, "seconds": 30.0},
        {"first": 3, "last": 4, "seconds": 24.0},
    ]
    out = tmp_path / "progress.json"
    row = curve.record_session(run, out, session="s1", first_step=1)
    assert row["steps"] == [1, 4] and row["passes_total"] == 64 and row["hours"] == round(54 / 3600, 2)
    again = curve.record_session(run, out, session="s1", first_step=3, note="only the resumed part")
    assert again["s_per_step"] == round((10.0 + 24.0) / 2, 2)  # a third of the first stretch and all the second
    assert [r["session"] for r in json.loads(out.read_text())["sessions"]] == ["s1"]


def test_report_heldout_splits_and_pairs():
    c = torch.zeros(500, dtype=torch.bool)
    c[:300] = True  # right on 300 of images 1-400, wrong on 401-500
    r = torch.zeros(500, dtype=torch.bool)
    r[:200] = True
    rep = curve.report_heldout({"t=0.5": c}, {"ref": r})
    assert rep["t=0.5"]["error_1_400"] == 25.0 and rep["t=0.5"]["error_1_500"] == 40.0
    assert rep["t=0.5"]["paired_1_400"]["ref"]["gain_points"] == 25.0 and rep["references"]["ref"]["error_1_400"] == 50.0


def test_per_image_correct_of_the_whole_image_box(shared_data):
    c = curve.per_image_correct("masker", _Size(224), masker=KeepsEverything(), limit=500)
    row = curve.score_masker(KeepsEverything(), _Size(224), thresholds=(0.5,), wrong_class=False)
    assert len(c) == 500 and row["tune_error"]["0.5"] == round(100 * (1 - float(c[400:].float().mean())), 1)

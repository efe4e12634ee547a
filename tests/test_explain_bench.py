"""The classify-and-explain benchmark: its rows, ratios and files (no timing is asserted)."""

import json

import pytest

from paperlib.core.errors import InputError
from paperlib.tools import explain_bench


def test_rows_ratios_and_files(tmp_path, one_thread):
    r = explain_bench.run("efficientnet_lite0", batches=(1, 2), repeats=1, warmup=0)
    assert r["one_pass"] and list(r["rows"]) == list(explain_bench.ROWS)
    for b in ("1", "2"):
        assert r["rows"]["classify"][b]["ratio"] == 1.0
        for name in explain_bench.ROWS:
            row = r["rows"][name][b]
            assert row["seconds"] > 0 and row["ratio"] == round(row["seconds"] / r["rows"]["classify"][b]["seconds"], 3)
            assert abs(row["per_image_ms"] - 1e3 * row["seconds"] / int(b)) < 1e-9
    j, m = explain_bench.write_results(r, tmp_path)
    assert json.loads(j.read_text())["rows"] == r["rows"]
    assert "| one pass |" in m.read_text() and "x classify @2" in m.read_text()


def test_the_optimised_back_end_keeps_one_pass_and_the_same_masks(tmp_path, one_thread):
    r = explain_bench.run("efficientnet_lite0", batches=(1,), repeats=1, warmup=0, backends=explain_bench.BACKENDS)
    b = r["backends"]["fused_bn+channels_last"]
    assert b["one_pass"], "folding batch norm on both sides must keep the backbone shared"
    assert b["max_abs_diff"]["logits"] < 1e-3 and b["max_abs_diff"]["masks"] < 1e-3, b["max_abs_diff"]
    assert list(b["rows"]) == ["classify", "one pass", "two passes"] and b["rows"]["classify"]["1"]["ratio"] == 1.0
    md = explain_bench.to_markdown(r)
    assert "**Back end `fused_bn+channels_last`**" in md
    assert "with `fused_bn+channels_last` on both sides, one pass" in explain_bench.summary(r)


def test_an_unknown_back_end_is_refused():
    with pytest.raises(InputError, match="Unknown back end"):
        explain_bench.optimised_explainer(None, "tensorrt")

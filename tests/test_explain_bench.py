"""The classify-and-explain benchmark: its rows, ratios and files (no timing is asserted)."""

import json

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

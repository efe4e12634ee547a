"""``write_result``: the one writer of a study's ``<stem>.json`` + ``<stem>.md``, and the study writers built on it."""

import json
from pathlib import Path

import pytest

from paperlib.core._common import write_result
from paperlib.core.paths import REPO_ROOT


def test_write_result_writes_both_files_and_returns_their_paths(tmp_path):
    result = {"table": "demo", "rows": [{"x": 1.5}]}
    j, m = write_result(result, "| a |\n", tmp_path / "new" / "folder", "demo")
    assert (j, m) == (tmp_path / "new/folder/demo.json", tmp_path / "new/folder/demo.md")
    assert j.read_text() == json.dumps(result, indent=2)  # no trailing newline unless asked
    assert m.read_text() == "| a |\n"
    assert sorted(p.name for p in j.parent.iterdir()) == ["demo.json", "demo.md"]  # no temporary files left


def test_write_result_serialisation_options(tmp_path):
    result = {"path": Path("a/b"), "n": 3}
    j, _ = write_result(result, "", tmp_path, "r", indent=1, default=str, newline=True)
    assert j.read_text() == json.dumps(result, indent=1, default=str) + "\n"
    with pytest.raises(TypeError):
        write_result(result, "", tmp_path, "s")  # a Path is not JSON without ``default``


def _study_writers():
    from paperlib.experiments import beyond, evaluate, sanity
    from paperlib.experiments.wsss import report
    from paperlib.tools import bench, explain_bench, realtime

    return {
        "table2": lambda r, t: evaluate.write_results(r, t),
        "sanity_quick": lambda r, t: sanity.write_results(r, t),
        "beyond_quick": lambda r, t: beyond.write_results(r, t),
        "wsss_quick": lambda r, t: report.write_results(r, t),
        "bench": lambda r, t: bench.write_results(r, t),
        "explain_bench": lambda r, t: explain_bench.write_results(r, t),
        "realtime_cpu": lambda r, t: realtime.write_results(r, t),
    }


@pytest.mark.parametrize("stem", list(_study_writers()))
def test_study_writers_reproduce_the_committed_json(stem, tmp_path):
    committed = REPO_ROOT / "figures" / f"{stem}.json"
    if not committed.is_file():
        pytest.skip(f"{committed} is not in this checkout")
    written = _study_writers()[stem](json.loads(committed.read_text()), tmp_path)
    assert written == (tmp_path / f"{stem}.json", tmp_path / f"{stem}.md")  # every writer: (json, md)
    assert (tmp_path / f"{stem}.json").read_bytes() == committed.read_bytes()
    assert (tmp_path / f"{stem}.md").is_file()

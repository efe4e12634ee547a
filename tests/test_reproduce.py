"""make reproduce's runner: notebooks that lack data are skipped with one line, STRICT turns that into failure,
and the report marks the figures of skipped notebooks."""

import json

import nbformat
import pytest

from paperlib.core.errors import DataNotFoundError
from paperlib.tools import report, reproduce
from paperlib.tools.reproduce import NotebookSkipped, requires


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PAPERLIB_DATA", str(empty))
    return empty


def test_requires_skips_with_one_line(no_data, monkeypatch):
    monkeypatch.delenv("PAPERLIB_STRICT", raising=False)
    for name in ("imagenet", "voc2012", "cifar10"):
        with pytest.raises(NotebookSkipped) as e:
            requires(name)
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(f"needs {name}:") and "make data" in msg and str(no_data) in msg


def test_requires_under_strict_raises_the_data_error(no_data, monkeypatch):
    monkeypatch.setenv("PAPERLIB_STRICT", "1")
    with pytest.raises(DataNotFoundError) as e:
        requires("imagenet")
    assert not isinstance(e.value, NotebookSkipped)


def test_cifar10_download_failure_skips_with_the_reason(no_data, monkeypatch):
    from paperlib.tools import getdata

    def offline(root):
        raise OSError("network is unreachable")

    monkeypatch.setattr(getdata, "download_cifar10", offline)
    with pytest.raises(NotebookSkipped, match="download failed .*network is unreachable"):
        requires("cifar10", download=True)


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('preset = "quick"\ninteractive = True', metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_runner_classifies_ran_skipped_failed(tmp_path, no_data, monkeypatch):
    figures = tmp_path / "figures"
    figures.mkdir()
    nbs = [
        _notebook(tmp_path / "01_ok.ipynb", f"open({str(figures / 'fig.png')!r}, 'w').write('x')\nassert interactive is False"),
        _notebook(tmp_path / "02_declared.ipynb", "from paperlib.tools.reproduce import requires\nrequires('voc2012')"),
        _notebook(
            tmp_path / "03_undeclared.ipynb",
            "from paperlib.core.errors import DataNotFoundError\nraise DataNotFoundError('VOC masks not found')",
        ),
        _notebook(tmp_path / "04_bug.ipynb", "1 / 0"),
    ]
    recs = reproduce.run_notebooks(nbs, "quick", figures=figures, out_dir=tmp_path / "out", log_output=False)
    status = {r["notebook"]: (r["status"], r["reason"], r["written"]) for r in recs}
    assert status["01_ok"] == ("ran", "", ["fig.png"])
    assert status["02_declared"][0] == "skipped" and status["02_declared"][1].startswith(
        "needs voc2012: PASCAL VOC 2012 images not found"
    )
    assert status["03_undeclared"][:2] == ("skipped", "VOC masks not found")
    assert status["04_bug"][0] == "failed" and status["04_bug"][1].startswith("ZeroDivisionError")
    text = reproduce.summary_text(recs, "quick", 1.0)
    assert "1 ran, 2 skipped, 1 failed" in text


def test_report_marks_skipped_figures(tmp_path):
    (tmp_path / "fig2_ssr_sdr.png").write_bytes(b"png")
    (tmp_path / "fig3_adversarial.png").write_bytes(b"png")
    summary = {
        "preset": "quick",
        "seconds": 5,
        "notebooks": [
            {
                "notebook": "01_fig2_ssr_sdr",
                "status": "skipped",
                "reason": "needs imagenet: not found",
                "seconds": 1,
                "written": [],
            },
            {"notebook": "02_fig3_adversarial", "status": "ran", "reason": "", "seconds": 1, "written": ["fig3_adversarial.png"]},
            {
                "notebook": "04_tables1_2_localisation",
                "status": "skipped",
                "reason": "needs imagenet: not found",
                "seconds": 1,
                "written": [],
            },
        ],
    }
    (tmp_path / "reproduce_summary.json").write_text(json.dumps(summary))
    text = report.build_report(tmp_path).read_text()
    assert "1 ran, 2 skipped, 0 failed" in text
    fig2 = text[text.index("## Figure 2") : text.index("## Figure 3")]
    assert "Skipped in the last run" in fig2 and "from an earlier run" in fig2
    assert "Skipped in the last run" not in text[text.index("## Figure 3") : text.index("## Figure 3") + 300]
    t1 = text[text.index("## table1") :]
    assert "not produced" in t1.split("##")[1]

"""The ledger of claims is written by code from the result JSONs: README and figures must agree with it."""

import json
import shutil

import pytest

from paperlib.core.paths import FIGURES_DIR, REPO_ROOT
from paperlib.tools import claims


def test_committed_ledger_readme_and_markdown_are_what_the_jsons_give():
    result = claims.ledger(REPO_ROOT)
    assert json.loads((FIGURES_DIR / "claims.json").read_text()) == json.loads(json.dumps(result))
    table = claims.to_markdown(result)
    assert (FIGURES_DIR / "claims.md").read_text().endswith(table)
    readme = (REPO_ROOT / "README.md").read_text()
    assert claims.update_readme(readme, table) == readme, "README's ledger is stale: run python -m paperlib.tools.claims"


def test_a_changed_number_flips_its_claim(tmp_path):
    for sub in ("results/full", "results/quick", "figures"):
        shutil.copytree(
            REPO_ROOT / sub, tmp_path / sub, ignore=shutil.ignore_patterns("runs", "notebooks", "*.png", "*.pdf", "*.gif")
        )
    before = {r["id"]: r for r in claims.ledger(tmp_path)["rows"]}
    t1 = json.loads((tmp_path / "results/full/table1.json").read_text())
    key = f"table1_{t1['rows'][0]['black box']}"
    # move Lite0's error just across the paper's number, whichever side it is on now
    t1["rows"][0]["ours"] = t1["rows"][0]["paper"] + (0.1 if before[key]["holds"] else -0.1)
    (tmp_path / "results/full/table1.json").write_text(json.dumps(t1))
    after = {r["id"]: r for r in claims.ledger(tmp_path)["rows"]}
    assert after[key]["holds"] is not before[key]["holds"]
    assert {k for k in before if before[k] != after[k]} == {key, key + "_centre"}  # the only rows reading that number


def test_every_row_names_its_source_preset_and_file():
    for r in claims.ledger(REPO_ROOT)["rows"]:
        assert r["source"] and r["claim"] and r["preset"] in ("full", "quick", "smoke") and (REPO_ROOT / r["file"]).is_file(), r


def test_readme_without_markers_is_a_clear_error():
    with pytest.raises(claims.DataNotFoundError, match="markers"):
        claims.update_readme("no markers here", "table")


def test_check_fails_when_a_fresh_result_flips_a_claim_at_the_ledgers_preset(tmp_path):
    figs = tmp_path / "figures"
    figs.mkdir()
    t2 = json.loads((REPO_ROOT / "results/quick/table2.json").read_text())
    (figs / "table2.json").write_text(json.dumps(t2))
    (figs / "claims.json").write_text((FIGURES_DIR / "claims.json").read_text())
    assert claims.check(["table2_grad"], figs) == {"table2_grad": "holds"}
    grad = next(r for r in t2["rows"] if r["method"] == "Grad")
    masker = next(r for r in t2["rows"] if r["method"] == "Masking model")
    grad["ours"] = masker["ours"] - 1.0  # Grad now localises better: the claim flips
    (figs / "table2.json").write_text(json.dumps(t2))
    with pytest.raises(AssertionError, match="no longer holds"):
        claims.check(["table2_grad"], figs)
    t2["preset"] = "smoke"  # another preset than the ledger's: not compared
    (figs / "table2.json").write_text(json.dumps(t2))
    assert claims.check(["table2_grad", "table1_efficientnet_lite0"], figs)["table2_grad"].startswith("not compared")


def test_report_shows_the_current_ledger():
    report = (FIGURES_DIR / "report.md").read_text()
    assert claims.to_markdown(claims.ledger(REPO_ROOT)) in report, "figures/report.md is stale: python -m paperlib.tools.report"

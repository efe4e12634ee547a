"""The CIFAR-10 table: class-balanced subset, numbers beside the paper's (needs the shipped models and the data)."""

import pytest

from paperlib.experiments import evaluate


@pytest.mark.slow
def test_cifar10_table_uses_every_class(require_data):
    require_data("cifar10")
    t = evaluate.cifar10_table("quick")
    rows = {r["quantity"]: r for r in t["rows"]}
    assert t["n"] == 1000 and "100+ per class" in t["data"]
    assert rows["black box test accuracy (%)"]["paper"] == 92.0
    assert 50 < rows["black box test accuracy (%)"]["ours"] <= 100
    kept, removed = rows["p(true class), only the mask kept"]["ours"], rows["p(true class), mask removed"]["ours"]
    assert 0 <= removed < kept <= 1
    assert "|" not in "".join(rows)  # labels must not break the Markdown table

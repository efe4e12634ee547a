"""The CIFAR-10 table: class-balanced subset, numbers beside the paper's (needs the shipped models and the data)."""

import json

import pytest

from paperlib.experiments import evaluate
from paperlib.tools.reproduce import RESULTS_DIR


@pytest.mark.slow
def test_cifar10_table_uses_every_class(require_data):
    require_data("cifar10")
    t = evaluate.cifar10_table("quick")
    rows = {r["quantity"]: r for r in t["rows"]}
    assert t["n"] == 1000 and "100+ per class" in t["data"]
    assert rows["black box test accuracy (%)"]["paper"] == 92.0
    # the committed quick-preset table (results/quick/cifar10.json, the README's numbers): 84.6 % accuracy,
    # p(true class) 0.721 on the image, 0.647 with only the mask kept, 0.237 with it removed, mask area 0.61
    committed = {r["quantity"]: r["ours"] for r in json.loads((RESULTS_DIR / "quick" / "cifar10.json").read_text())["rows"]}
    assert committed["black box test accuracy (%)"] == 84.6
    assert set(rows) == set(committed)
    # 1000 images: accuracy moves in steps of 0.1 point, so it must be the committed value exactly
    assert rows["black box test accuracy (%)"]["ours"] == pytest.approx(committed["black box test accuracy (%)"], abs=0.01)
    for quantity, value in committed.items():  # probabilities and area, rounded to 3 decimals
        assert rows[quantity]["ours"] == pytest.approx(value, abs=2e-3), quantity
    kept, removed = rows["p(true class), only the mask kept"]["ours"], rows["p(true class), mask removed"]["ours"]
    assert 0 <= removed < kept <= 1
    assert "|" not in "".join(rows)  # labels must not break the Markdown table

"""The training-speed tool: the variant table and its argument checks (no training run here)."""

import json

import pytest

from paperlib.core.paths import FIGURES_DIR
from paperlib.tools import trainspeed


def _record(measured):
    rec = json.loads((FIGURES_DIR / "train_speed_cpu.json").read_text())
    return {**rec, "measured": measured}


def test_variant_rows_are_compared_with_the_first():
    rows = [
        {"variant": "as is", "processes": 1, "threads_each": 2, "batch": 16, "s_per_step": 2.0, "images_per_s": 8.0},
        {"variant": "batch 32", "processes": 1, "threads_each": 2, "batch": 32, "s_per_step": 3.2, "images_per_s": 10.0},
    ]
    md = trainspeed.to_markdown(_record(rows))
    assert "| as is | 1 | 2 | 16 | 2.00 | 8.0 | 1.00x |" in md
    assert "| batch 32 | 1 | 2 | 32 | 3.20 | 10.0 | 1.25x |" in md


def test_process_rows_keep_their_table():
    rows = [{"processes": 2, "threads_each": 1, "s_per_step": 1.34, "images_per_s": 11.9}]
    assert "| 2 | 1 | 1.34 | 11.9 |" in trainspeed.to_markdown(_record(rows))


def test_unknown_recipe_or_variant_is_refused_before_any_work():
    with pytest.raises(SystemExit, match="choose one of"):
        trainspeed.run(recipe="nope")
    with pytest.raises(SystemExit, match="unknown variants"):
        trainspeed.run(variants=["faster"])


def test_variants_override_the_recipe_flags():
    assert trainspeed.VARIANTS["batch 32"]["flags"] == ["--batch-size", "32"]
    assert "authors" in trainspeed.AUTHORS_RECIPE and trainspeed.RECIPES["project"] is trainspeed.RECIPE

"""Table 2's Mask row with extremal perturbations (paperlib.experiments.extremal_loc), at the smoke preset on real images."""

from __future__ import annotations

import json

import pytest

from conftest import require_shared
from paperlib.core.errors import InputError
from paperlib.experiments import extremal_loc


def test_tuned_on_held_out_images_reported_on_others_and_resumed_from_the_cache(tmp_path, one_thread):
    require_shared("imagenet/val")
    cache = tmp_path / "cache"
    r = extremal_loc.run("efficientnet_lite0", "smoke", cache=cache, progress=False)
    cfg = extremal_loc.PRESETS["smoke"]
    assert r["tuning_images"] == "ILSVRC2012 val 401-404" and r["reported_images"] == "ILSVRC2012 val 1-4"
    assert sorted(p.name for p in cache.iterdir()) == [f"val_{i:05d}.pt" for i in (1, 2, 3, 4, 401, 402, 403, 404)]
    assert set(r["tuning"]) == {str(a) for a in cfg.areas} and r["chosen"]["area"] in cfg.areas
    best = min(t["tuning_error"] for t in r["tuning"].values())
    assert r["tuning"][str(r["chosen"]["area"])]["tuning_error"] == best  # the pair with the lowest tuning error
    assert r["n"] == 4 and r["error"] == pytest.approx(100 * (1 - sum(r["correct"]) / 4), abs=0.05)
    assert r["error"] == r["error_per_area"][str(r["chosen"]["area"])]
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    again = extremal_loc.run("efficientnet_lite0", "smoke", cache=cache, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps  # nothing recomputed
    assert again["correct"] == r["correct"] and again["tuning"] == r["tuning"]
    j, m = extremal_loc.write_results(r, tmp_path)
    assert json.loads(j.read_text())["error"] == r["error"]
    assert "| Mask, extremal SSR (a = " in m.read_text() and "43.1 %" in m.read_text()


def test_overlapping_splits_and_unknown_presets_are_refused():
    with pytest.raises(InputError, match="overlap"):
        extremal_loc.ExtremalLocConfig(tune=(0, 10), report=(5, 10))
    with pytest.raises(InputError, match="Unknown preset"):
        extremal_loc.run(preset="huge")

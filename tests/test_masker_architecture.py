"""paperlib.experiments.architecture: parameter counts, the speed probe and the table (no data needed)."""

from __future__ import annotations

import pytest

from paperlib.core.errors import InputError
from paperlib.experiments import architecture


def test_parameter_counts_split_the_masker_into_encoder_and_the_rest(tiny_masker):
    counts = architecture.parameter_counts(tiny_masker)
    assert counts["encoder"] == sum(p.numel() for p in tiny_masker.encoder.parameters())
    assert counts["encoder"] + counts["decoder"] == sum(p.numel() for p in tiny_masker.parameters())
    assert counts["decoder"] > 0


def test_masks_per_second_is_the_batch_over_the_time_of_one_call(one_thread):
    """A stand-in masker whose call takes a known time (it sleeps 50 ms): 2 masks per call make 40 masks/s.

    Sleeping never returns early, and the timer's own overhead only lowers the rate, so the rate lies just
    below 40 (a busy machine wakes the sleeper a little late: 15 % is allowed for it).
    """
    import time

    import torch

    calls = []

    class Sleeper(torch.nn.Module):
        def forward(self, x, y):
            calls.append((tuple(x.shape), x.dtype, tuple(y.shape), y.dtype))
            time.sleep(0.05)
            return x[:, :1]

    rate = architecture.masks_per_second(Sleeper(), 32, batch_size=2)
    assert 0.85 * 40 < rate <= 40.0
    assert set(calls) == {((2, 3, 32, 32), torch.float32, (2,), torch.int64)}  # random images of the size asked
    assert len(calls) >= 2.0 / 0.05  # the median of at least 2 s of calls (after one warm-up)


def _row(widths, blocks, err):
    return {
        "architecture": {
            "black_box": "efficientnet_lite0",
            "encoder": "efficientnet_lite0",
            "widths": widths,
            "blocks": blocks,
            "mask_stride": 4,
        },
        "tuning": {"saliency": 0.3, "area": 0.5, "islands": 0.1},
        "val_error": {"0.5": err},
        "tune_error": {"0.5": err + 1},
        "n_val": 500,
        "n_tune": 300,
        "steps": 200,
        "parameters": {"encoder": 3_000_000, "decoder": 1_500_000},
        "speed": {"size": 224, "masks_per_s_batch1": 40.0, "masks_per_s_batch16": 60.0},
    }


def test_table_shows_every_row_beside_the_paper():
    rows = {"shipped": _row([256, 128, 64], 1, 45.0), "paper": {**_row([768, 384, 192], 3, 44.0), "about": "paper widths"}}
    md = architecture.to_markdown(architecture.architecture_table(rows))
    assert "| shipped | efficientnet_lite0 | efficientnet_lite0 | 256/128/64 x 1, 4 | 200 | 45.0 | 46.0 |" in md
    assert "768/384/192 x 3" in md and "36.9 %" in md and "- paper: paper widths" in md


def test_about_must_name_a_row(tmp_path):
    with pytest.raises(InputError, match="--about names row"):
        architecture.main(["--out", str(tmp_path / "a"), "--about", "nope", "text"])


def test_pairs_must_name_rows():
    rows = {"shipped": _row([256, 128, 64], 1, 45.0)}
    assert architecture.architecture_table(rows, pairs=[])["pairs"] == []
    with pytest.raises(InputError, match="--pair names"):
        architecture.architecture_table(rows, pairs=[("shipped", "paper")])


def test_a_row_copied_from_another_table_keeps_its_numbers_and_says_where_from(tmp_path):
    import json

    src = tmp_path / "architecture.json"
    src.write_text(json.dumps(architecture.architecture_table({"base": _row([256, 128, 64], 1, 43.8)})))
    out = tmp_path / "recipe"
    architecture.main([f"base={src}#base", "--out", str(out), "--title", "Recipe at 200 steps", "--about", "base", "the base"])
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["title"] == "Recipe at 200 steps" and res["rows"]["base"]["val_error"] == {"0.5": 43.8}
    assert "(row evaluated in architecture.json#base)" in out.with_suffix(".md").read_text()
    with pytest.raises(InputError, match="has no row 'nope'"):
        architecture.main([f"x={src}#nope", "--out", str(out)])


def test_pairs_with_per_image_results_get_a_paired_gain_in_json_and_markdown():
    base, variant = _row([256, 128, 64], 1, 50.0), _row([256, 128], 1, 48.0)
    base["val_correct"] = {"0.5": "1" * 250 + "0" * 250}
    variant["val_correct"] = {"0.5": "1" * 250 + "0" * 150 + "1" * 10 + "0" * 90}
    res = architecture.architecture_table(
        {"base": base, "variant": variant, "old": _row([64], 1, 40.0)}, pairs=[("base", "variant"), ("base", "old")]
    )
    assert res["paired"]["base vs variant"]["tune_401_500"]["gain_points"] == 10.0
    assert "base vs old" not in res["paired"]  # the old row has no per-image results: no paired comparison, no guess
    assert "- base vs variant: images 1-500: +2.0 +- " in architecture.to_markdown(res)

"""The helpers that notebooks 11, 12 and 14 call: figures of paperlib.tools.viz and the studies' text and tables.

Every test builds its input by hand (no data, no trained model, no committed result), so they run in
seconds on any machine. Figures are checked for their axes, titles and labels, the text helpers for the
numbers they must state.
"""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from paperlib.experiments import ablation, beyond, extremal
from paperlib.experiments.wsss import report as wsss_report
from paperlib.tools import viz


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


# --------------------------------------------------------------------------- palette and grids
def test_voc_palette_gives_the_standard_pascal_colours():
    pal = viz.voc_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert pal[0].tolist() == [0, 0, 0]  # background
    assert pal[1].tolist() == [128, 0, 0]  # aeroplane
    assert pal[2].tolist() == [0, 128, 0]  # bicycle
    assert pal[15].tolist() == [192, 128, 128]  # person
    assert pal[255].tolist() == [224, 224, 192]  # the devkit's border colour
    assert len({tuple(c) for c in pal[:21]}) == 21  # the 21 labels have distinct colours


def test_voc_colours_paints_a_label_map_with_a_white_border():
    labels = torch.tensor([[0, 1], [15, 255]])
    out = viz.voc_colours(labels)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[0, 1].tolist() == [128, 0, 0] and out[1, 1].tolist() == [255, 255, 255]
    assert viz.voc_colours(labels.numpy(), ignore=None)[1, 1].tolist() == [224, 224, 192]


def test_image_grid_has_one_axis_per_panel_and_its_titles():
    rows = [[np.zeros((4, 5, 3)), np.full((4, 5), 0.5), np.ones((4, 5), np.float32)] for _ in range(2)]
    fig = viz.image_grid(rows, titles=["image", "a", "b"], row_labels=["first", "second"], size=(1.0, 1.5))
    assert len(fig.axes) == 6
    assert _titles(fig)[:3] == ["image", "a", "b"] and _titles(fig)[3:] == ["", "", ""]
    assert [fig.axes[i].get_ylabel() for i in (0, 3)] == ["first", "second"]
    assert tuple(fig.get_size_inches()) == pytest.approx((3.0, 3.0))
    assert all(len(ax.get_xticks()) == 0 for ax in fig.axes)
    assert fig.axes[1].images[0].get_clim() == (0, 1)  # maps are drawn from 0 to 1


def test_mask_grid_is_an_image_grid_of_overlays():
    images, masks = torch.rand(3, 3, 8, 8), torch.rand(3, 1, 8, 8)
    fig = viz.mask_grid(images, {"masker": masks, "grad": masks}, ["a", "b", "c"])
    assert len(fig.axes) == 9 and _titles(fig)[:3] == ["image", "masker", "grad"]
    assert fig.axes[6].get_ylabel() == "c"
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), viz.overlay(images[0], masks[0]))


def test_bar_panels_plain_and_grouped():
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0], "z": [5.0, 6.0]}, index=["r1", "r2"])
    fig = viz.bar_panels(frame, [("x", "plain"), (["y", "z"], "grouped")], index_name="row", figsize=(6, 3))
    assert len(fig.axes) == 2 and _titles(fig) == ["plain", "grouped"]
    assert fig.axes[0].get_legend() is None and fig.axes[1].get_legend() is not None
    assert len(fig.axes[1].patches) >= 4  # two rows x two columns of bars


# --------------------------------------------------------------------------- WSSS (notebook 11)
def _wsss_maps(n: int = 2, h: int = 12, w: int = 16) -> dict:
    g = torch.Generator().manual_seed(0)
    maps = {}
    for i in range(n):
        gt = torch.zeros(h, w, dtype=torch.long)
        gt[2:8, 3:10] = 1 + i  # class i (0-based) as label i + 1
        gt[0, :] = 255
        m = {"image": torch.rand(3, h, w, generator=g), "gt": gt, "classes": [i], "id": f"img{i}"}
        m.update({k: torch.rand(1, h, w, generator=g) for k in wsss_report.SHORT_METHODS})
        maps[f"img{i}"] = m
    maps["empty"] = {**maps["img0"], "classes": []}  # an image without a class is not drawn
    return maps


def test_wsss_maps_and_pseudo_masks_figures():
    maps, keys = _wsss_maps(), ["cam", "grad", "masker"]
    fig = viz.wsss_maps_figure(maps, keys)
    assert len(fig.axes) == 2 * 5 and _titles(fig)[:5] == ["image", "ground truth", "CAM", "gradient", "masking model"]
    assert fig.axes[0].get_ylabel() == "img0\naeroplane" and fig.axes[5].get_ylabel() == "img1\nbicycle"
    best_t = {"cam": 0.1, "grad": 0.25, "masker": 0.5}
    fig = viz.wsss_pseudo_masks_figure(maps, keys, best_t, subtract=0.5, quantile=99.5)
    assert len(fig.axes) == 2 * 5 and _titles(fig)[2:5] == ["CAM\nt = 0.10", "gradient\nt = 0.25", "masking model\nt = 0.50"]
    gt_panel = fig.axes[1].images[0].get_array()
    assert gt_panel[0, 0].tolist() == [255, 255, 255] and gt_panel[3, 4].tolist() == [128, 0, 0]


def test_wsss_selection_figure_and_class_selector():
    maps = _wsss_maps()
    fig = viz.wsss_selection_figure(maps["img1"], 1, ["cam", "crops_w"])
    assert len(fig.axes) == 3 and _titles(fig) == ["img1: bicycle", "CAM", "crops, weighted"]

    pytest.importorskip("ipywidgets")
    items = [SimpleNamespace(labels=torch.nn.functional.one_hot(torch.tensor(i), 20)) for i in range(2)]
    ds = type("DS", (), {"ids": ["img0", "img1"], "__len__": lambda self: 2, "__getitem__": lambda self, i: items[i]})()
    calls: list[int] = []

    def maps_for(i: int) -> dict:
        calls.append(i)
        return maps[f"img{i}"]

    panel = viz.wsss_class_selector(ds, ["cam"], maps_for)
    assert panel.redraw() and panel.image.value[:4] == b"\x89PNG"
    assert panel.controls["c"].value == 0
    panel.controls["image"].value = 1  # picking another image offers its classes and redraws
    assert panel.controls["c"].value == 1 and calls == [0, 1]
    panel.redraw()
    assert calls == [0, 1]  # cached


def _wsss_result() -> dict:
    keys = ["cam", "grad", "crops_w", "crops_u", "masker"]
    ts = [0.1, 0.2, 0.3]
    rows = [
        {"key": k, "method": k, "t": 0.2, "mIoU": m, "FG precision": 50.0, "DR recall": 80.0, "NDR recall": n}
        for k, m, n in zip(keys, [40.0, 30.0, 39.0, 37.0, 35.0], [40.0, 30.0, 50.0, 45.0, 42.0])
    ]
    curves = {"t": ts, "mIoU": [30.0, 40.0, 35.0], "FG precision": [50.0] * 3, "NDR recall": [40.0, 41.0, 42.0]}
    return {
        "preset": "quick",
        "images_scored": 10,
        "rows": rows,
        "methods": {**{k: {"curves": curves} for k in keys}, "cam@0.04": {"curves": curves}},
        "config": {"tau": 0.3, "n_crops": 8},
        "claim": {
            "holds": True,
            "mIoU crops_w - cam": -1.0,
            "NDR recall crops_w - cam": 10.0,
            "margin": 2.0,
            "matches_on_mIoU": True,
            "higher_NDR_recall": True,
        },
        "crop_sweep": [
            {"n_crops": 2, "mIoU (best t)": 30.0, "mIoU (t = 0.1)": 28.0},
            {"n_crops": 8, "mIoU (best t)": 39.0, "mIoU (t = 0.1)": 36.0},
        ],
        "seconds_per_map": {"cam": 0.02, "grad": 0.05, "crops_w": 1.5, "crops_u": None, "masker": 0.015},
    }


def test_wsss_curve_crop_and_time_figures():
    res = _wsss_result()
    fig = viz.wsss_curves_figure(res)
    assert len(fig.axes) == 3 and sorted(_titles(fig)) == ["FG precision (%)", "NDR recall (%)", "mIoU (%)"]
    assert "quick preset, 10 VOC images, tau = 0.3" in fig.texts[0].get_text()
    fig = viz.wsss_crops_figure(res)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["2", "8"]
    assert "CAM, best t (40.0)" in [t.get_text() for t in ax.get_legend().get_texts()]
    times = pd.DataFrame({"method": ["CAM", "masking model"], "seconds per map": [0.02, 0.015]})
    fig = viz.wsss_time_figure(times, title="this run")
    assert fig.axes[0].get_title() == "this run" and fig.axes[0].get_xscale() == "log"


def test_wsss_outcome_states_the_claim_weighting_crops_and_speed():
    text = wsss_report.outcome(_wsss_result())
    assert text.startswith(wsss_report.claim_sentence(_wsss_result()))
    assert "weighting the crops by sigmoid(logit) helps (39.0 vs 37.0 unweighted" in text
    assert "crop aggregation improves on the single full-image gradient (30.0)" in text
    assert "mIoU rises with the number of crops (2: 30.0, 8: 39.0)" in text
    assert "masking model 0.015 s (100 times faster than the crops)" in text
    res = _wsss_result()
    res["seconds_per_map"]["masker"] = None
    assert "Per map" not in wsss_report.outcome(res)


def test_wsss_sample_maps_is_what_the_run_keeps(monkeypatch):
    seen = {}

    def fake_compute_maps(image, classes, *, bb, masker, cfg, generator):
        seen.update(classes=classes, seed=generator.initial_seed())
        return {"cam": torch.zeros(len(classes), *image.shape[-2:])}

    monkeypatch.setattr(wsss_report, "compute_maps", fake_compute_maps)
    labels = torch.zeros(20)
    labels[[2, 5]] = 1
    s = SimpleNamespace(image=torch.rand(3, 6, 7), mask=torch.zeros(6, 7, dtype=torch.long), labels=labels, id="2007_000001")
    out = wsss_report.sample_maps([s], 0, bb=None, masker=None, cfg=SimpleNamespace(seed=3))
    assert out["id"] == "2007_000001" and out["classes"] == [2, 5] and out["cam"].shape == (2, 6, 7)
    assert seen == {"classes": [2, 5], "seed": 3}


# --------------------------------------------------------------------------- recipe ablation (notebook 12)
def _tuning(s: float) -> dict:
    return {"saliency": s, "box_area": 0.5, "area": 0.4, "islands": 1.0, "holes": 2.0, "p_kept": 0.8, "p_removed": 0.1}


def _ablation() -> dict:
    def row(steps, change, s, tune, val):
        return {
            "steps": steps,
            "change": change,
            "tuning": _tuning(s),
            "tune_error": {"0.5": tune},
            "report_error": {"0.5": tune + 1},
            "val_error": {"0.3": val - 2, "0.5": val},
            "n_tune": 300,
            "n_val": 500,
        }

    rows = {"shipped": row(700, "-", -1.0, 40.0, 41.0), "control": row(850, "more steps", -1.1, 39.0, 40.5)}
    rows["balanced"] = row(850, "l2 = 4", -1.3, 37.0, 39.0)
    return {"rows": rows, "chosen": "balanced", "notes": ""}


def test_ablation_table_rows_summary_and_figures():
    res = _ablation()
    rows = ablation.table_rows(res)
    assert list(rows) == ["shipped", "control", "balanced"]
    assert rows["balanced"]["tune err @0.5"] == 37.0 and rows["balanced"]["val err @0.3"] == 37.0
    lines = ablation.summary_lines(res)
    assert len(lines) == 4 and "`balanced` localises with 37.0 % error against 40.0 %" in lines[0]
    assert lines[3] == "- Rows behind it on the tuning split's saliency metric: `control` -1.100, `shipped` -1.000."
    table = pd.DataFrame(rows).T
    assert len(viz.ablation_rows_figure(table).axes) == 4
    fig = viz.ablation_thresholds_figure(table)
    assert len(fig.axes[0].get_legend().get_texts()) == 3
    assert viz.ablation_steps_figure(table).axes[0].get_xlabel() == "steps"


def _recipe() -> dict:
    def row(val, tune, s):
        return {"val_error": {"0.5": val}, "tune_error": {"0.5": tune}, "tuning": {**_tuning(s), "islands": 0.5}}

    rows = {"images_500": row(45.0, 44.0, -0.9), "base": row(40.0, 39.0, -1.0), "base_seed1": row(41.0, 40.0, -1.0)}
    rows["stride8"] = row(35.0, 36.0, -1.2)

    def gain(g, se):
        return {"val_1_500": {"gain_points": g, "se_points": se}}

    paired = {"base vs base_seed1": gain(-1.0, 0.8), "base vs images_500": gain(-5.0, 1.0), "base vs stride8": gain(5.0, 3.0)}
    return {"rows": rows, "paired": paired, "notes": ""}


def test_recipe_rows_curve_and_lines():
    recipe = _recipe()
    changes = {"images_500": {"max_images": (None, 500)}, "base": {}, "base_seed1": {"seed": (0, 1)}}
    changes["stride8"] = {"mask_stride": (4, 8), "widths": ([1], [2])}
    rows = ablation.recipe_rows(recipe, changes)
    assert list(rows) == ["base", "base_seed1", "images_500", "stride8"]  # the base rows first
    assert rows["base"]["changes (from the configs)"] == "-" and rows["base"]["gain vs base 1-500 (pts)"] == ""
    assert rows["stride8"]["changes (from the configs)"] == "mask_stride: 4 -> 8; widths: [1] -> [2]"
    assert rows["stride8"]["gain vs base 1-500 (pts)"] == "+5.0 ± 3.0" and rows["stride8"]["islands"] == 0.5
    curve = ablation.image_curve(changes)
    assert curve == {500: "images_500", ablation.TRAIN_SAMPLE_IMAGES: "base"}
    lines = ablation.recipe_lines(recipe)
    assert len(lines) == 3 and "paired difference of -1.0 ± 0.8 points" in lines[0]
    assert "(paired gain -5.0 ± 1.0: counts)" in lines[1] and "(paired gain +5.0 ± 3.0: within the noise)" in lines[2]
    table = pd.DataFrame(rows).T
    fig = viz.recipe_rows_figure(table, spread=1.0)
    assert len(fig.axes) == 3 and fig.axes[0].get_ylim() == (30, 48.0)
    fig = viz.recipe_images_figure(recipe["rows"], curve)
    assert list(fig.axes[0].lines[0].get_xdata()) == [500, ablation.TRAIN_SAMPLE_IMAGES]


def test_lite1_rows_and_sentence():
    def row(tune, gain=None):
        r = {"steps": 850, "tuning": _tuning(-1.0), "tune_error": {"0.5": tune}, "report_error": {"0.5": 40.0}}
        r["val_error"] = {"0.5": 41.0}
        if gain is not None:
            r["paired_vs_shipped_closed"] = {
                "tune_401_500": {"gain_points": gain, "se_points": 2.0},
                "report_1_400": {"gain_points": 1.0, "se_points": 1.5},
            }
        return r

    res = {"rows": {"shipped_closed": row(40.0), "balanced": row(38.0, 3.0)}}
    assert ablation.lite1_rows(res)["balanced"]["tune err 401-500"] == 38.0
    text = ablation.lite1_sentence(res)
    assert "`balanced`" in text and "+3.0 ± 2.0 points (does not pass the rule)" in text and "+1.0 ± 1.5." in text
    res["rows"]["balanced"]["paired_vs_shipped_closed"]["tune_401_500"]["gain_points"] = 4.5
    assert "(passes the rule)" in ablation.lite1_sentence(res)


def test_mask_columns_names():
    assert ablation.mask_columns({"tuning": _tuning(-1.0)}) == {
        "saliency (Flickr)": -1.0,
        "area": 0.4,
        "islands": 1.0,
        "holes": 2.0,
        "p removed": 0.1,
    }


def test_learning_curve_figure():
    pts = [
        {"passes": 8000, "tune_error": {"0.5": 38.0, "0.6": 36.0}},
        {"passes": 16000, "tune_error": {"0.5": 36.0, "0.6": 37.0}},
    ]
    earlier = [
        {"passes": 3200, "tune_error": 40.0, "recipe": "project"},
        {"passes": 4000, "tune_error": 41.0, "recipe": "authors"},
    ]
    fig = viz.learning_curve_figure(pts, earlier)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"earlier rows (authors objective)", "earlier rows (project objective)", "authors' budget (192k)"} <= set(labels)
    assert list(ax.lines[1].get_ydata()) == [36.0, 36.0]  # the best threshold of each snapshot


# --------------------------------------------------------------------------- beyond the paper (notebook 14)
def _beyond() -> dict:
    def m(d, i, p):
        return {"deletion_blur": d, "deletion_grey": d, "insertion_blur": i, "insertion_grey": i, "pointing": p}

    maps = {"masker": m(0.1, 0.6, 0.8), "grad": m(0.2, 0.5, 0.9), "random": m(0.3, 0.3, 0.2)}
    boxes = {"ground_truth": {"error": 0.0, "squash": -1.0, "pad": -1.2, "blur": -0.5}}
    boxes["centre"] = {"error": 50.0, "squash": -0.5, "pad": -1.5, "blur": -0.2}
    rankings = {"squash": ["ground_truth", "centre"], "pad": ["centre", "ground_truth"], "blur": ["ground_truth", "centre"]}
    return {"preset": "quick", "n": 6, "data": "ImageNet val 1-6", "maps": maps, "boxes": boxes, "rankings": rankings}


def test_beyond_committed_and_differences(tmp_path):
    assert beyond.committed("nothing.json", folder=tmp_path) is None
    (tmp_path / "beyond_quick.json").write_text(json.dumps(_beyond()))
    before = beyond.committed("beyond_quick.json", folder=tmp_path)
    assert before == _beyond() and beyond.differences(_beyond(), before) == []
    res = _beyond()
    res["maps"]["grad"]["pointing"] = 0.95
    assert beyond.differences(res, before) == ["grad pointing: 0.9500 here, 0.9000 committed"]


def test_beyond_text_helpers():
    res = _beyond()
    assert beyond.ranked_labels(res)["pad"] == ["Centre", "Ground truth boxes"]
    text = beyond.ranking_sentence(res)
    assert "insertion AUC (blur), best first: Masking model 0.600, Grad 0.500, Random map 0.300" in text
    lines = beyond.summary_lines(res)
    assert "pointing game 80.0 % (random 20.0 %)" in lines[0]
    assert lines[1] == "- Best deletion AUC (blur): masker; best insertion AUC (blur): masker; best pointing: grad."
    assert lines[2].startswith("- The saliency metric ranks the boxes differently under the three readings: squash:")
    assert lines[3].startswith("- Preset `quick` on 6 images")
    res["rankings"]["pad"] = res["rankings"]["squash"]
    res["preset"] = "full"
    lines = beyond.summary_lines(res)
    assert len(lines) == 3 and lines[2].endswith("the same way under all three readings.")


def test_beyond_figures():
    res = _beyond()
    fig = viz.beyond_faithfulness_figure(res)
    assert len(fig.axes) == 3 and all(ax.get_legend() is not None for ax in fig.axes)
    assert fig.texts[0].get_text() == "ImageNet val 1-6, preset quick"
    fig = viz.beyond_readings_figure(res)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["squash", "pad", "blur"]


def test_beyond_one_image_figure():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 5)).eval()
    batch = SimpleNamespace(images=torch.rand(2, 3, 16, 16), labels=torch.tensor([1, 3]))
    fig = viz.beyond_one_image_figure(batch, 1, black_box=bb, masker=None, methods=["centre", "random"], steps=2)
    assert len(fig.axes) == 4 and _titles(fig)[:2] == ["Centre", "Random map"]
    assert len(fig.axes[2].lines) == 2 and len(fig.axes[2].lines[0].get_xdata()) == 3  # deletion and insertion, steps + 1


# --------------------------------------------------------------------------- Fig. 2 (notebook 01)
def _sweep(mode: str, value: float) -> extremal.RegionSweep:
    masks = torch.full((2, 1, 8, 8), value)
    return extremal.RegionSweep(
        mode=mode,
        areas=(0.1, 0.4),
        masks=masks,
        kept=(0.5, 0.95),
        removed=(0.3, 0.05),
        mean_area=(0.12, 0.41),
        islands=(1, 2),
        chosen=1,
        met=True,
        p_original=0.8,
    )


def test_fig2_regions_figure_titles_each_image_with_its_probability():
    photos = [SimpleNamespace(name=f"photo{i}", image=torch.rand(1, 3, 8, 8), label=i) for i in range(2)]
    sweeps = {p.name: {m: _sweep(m, 0.5) for m in ("ssr", "sdr", "both")} for p in photos}
    fig = viz.fig2_regions_figure(photos, sweeps)
    titles = _titles(fig)
    assert len(fig.axes) == 2 * 8
    row = titles[:8]
    assert row[0] == "photo0: p = 0.80"
    assert row[1] == "SSR: a = 40.0%, mean 0.41" and row[2] == "SSR kept: p = 0.76"  # 0.8 x 0.95, the chosen area
    assert row[3] == "SDR: a = 40.0%, mean 0.41" and row[4] == "SDR removed: p = 0.04"  # 0.8 x 0.05
    assert row[5:] == ["eq. 4: a = 40.0%, mean 0.41", "eq. 4 kept: p = 0.76", "eq. 4 removed: p = 0.04"]


def test_regions_result_and_markdown_report_the_chosen_area():
    sweeps = {"cat": {"ssr": _sweep("ssr", 1.0), "sdr": _sweep("sdr", 0.0)}}
    result = extremal.regions_result(sweeps, {"cat": "tabby"}, preset="smoke", iterations=3)
    row = result["photos"][0]
    assert result["figure"] == "fig2" and result["preset"] == "smoke"
    assert row["p_original"] == 0.8 and row["modes"]["ssr"]["chosen"] == 1
    assert row["iou_ssr_sdr"] == 0.0  # a full mask against an empty one
    md = extremal.regions_markdown(result)
    assert "| cat | tabby | 0.800 | SSR | 0.4 | 0.410 | 0.950 | 0.050 | 2 | yes |" in md
    assert "IoU of the binarised SSR and SDR masks: cat 0.00." in md


def test_regions_summary_says_when_no_area_meets_the_criterion():
    sweeps = {"cat": {"ssr": _sweep("ssr", 1.0), "sdr": replace(_sweep("sdr", 0.0), met=False, chosen=0)}}
    result = extremal.regions_result(sweeps, {"cat": "tabby"}, preset="quick", iterations=100, areas=[0.1, 0.4])
    assert extremal.regions_summary(result) == (
        "Fig. 2 (quick preset, 100 iterations per mask, areas up to 40%): cat (tabby): keeping the SSR leaves 95% of p at "
        "a = 40.0% (2 islands), no swept area leaves at most 10% when removed (best: removing the SDR leaves 30% of p "
        "at a = 10.0% (1 island)), IoU 0.00."
    )

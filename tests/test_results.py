"""The README's numbers are the reference results' (results/<preset>/*.json), and a quick run cannot overwrite the full ones."""

import json

from paperlib.core.paths import REPO_ROOT
from paperlib.tools.reproduce import RESULTS_DIR, archive_results

README = (REPO_ROOT / "README.md").read_text()


def _load(preset, name):
    return json.loads((RESULTS_DIR / preset / f"{name}.json").read_text())


def test_reference_results_carry_their_preset():
    for preset in ("full", "quick"):
        for p in (RESULTS_DIR / preset).glob("*.json"):
            assert json.loads(p.read_text())["preset"] == preset, p
            assert p.with_suffix(".md").is_file(), p


def test_readme_table1_is_the_full_preset_reference():
    t1 = {r["black box"]: r for r in _load("full", "table1")["rows"]}
    for bb, label in (
        ("efficientnet_lite0", "Lite0 masker"),
        ("efficientnet_lite1", "Lite1 masker"),
        ("efficientnet_lite2", "Lite2 masker"),
    ):
        assert t1[bb]["n"] == 500
        assert f"{label} | **{t1[bb]['ours']:.1f} %** (`full`)" in README, bb
        r = t1[bb]  # the tuned-threshold reading beside Grad-CAM, on 1-500 and on 1-400 (never used to choose)
        assert (
            f"at its tuned t = {r['tuned t']:g}: {r['ours (tuned t)']:.1f} % (1-400: {r['1-400: ours (tuned t)']:.1f} %); "
            f"Grad-CAM at its tuned alpha {r['Grad-CAM (tuned alpha)']:.1f} % (1-400: {r['1-400: Grad-CAM']:.1f} %; "
            f"masker's paired gain {r['1-400: gain over Grad-CAM']})"
        ) in README, bb
    assert f"centre box on the same images: {t1['efficientnet_lite0']['center box (ours)']:.1f} %" in README


def test_readme_quick_numbers_match_results():
    t2 = {r["method"]: r["ours"] for r in _load("quick", "table2")["rows"]}
    assert (
        f"masker {t2['Masking model']:.1f}, centre {t2['Center box']:.1f}, Grad {t2['Grad']:.1f}, "
        f"Grad-CAM **{t2['CAM']:.1f}**, Mask {t2['Mask (iterative)']:.1f}"
    ) in README
    t3 = {r["method"]: r["saliency (ours)"] for r in _load("quick", "table3")["rows"]}
    assert f"masker {t3['Masking model']:.3f}, centre box {t3['Center box']:.3f}, Grad {t3['Grad']:.3f}" in README
    rt = {r["candidate"]: r for r in _load("quick", "realtime_cpu")["rows"]}
    ort = rt["onnxruntime"]
    assert f"**{ort['masks_per_s_16']['median']:.1f} masks/s, {ort['latency_ms_1']['median']:.0f} ms per image**" in README
    fused = rt["fused_bn+channels_last"]
    assert (
        f"| {fused['masks_per_s_16']['median']:.1f} | {fused['latency_ms_1']['median']:.0f} ms | {fused['error']:.1f} % |"
        in README
    )


def test_archive_copies_only_tables_of_the_run_preset(tmp_path):
    figures, results = tmp_path / "figures", tmp_path / "results"
    figures.mkdir()
    (figures / "table1.json").write_text(json.dumps({"table": "table1", "preset": "quick"}))
    (figures / "table1.md").write_text("quick table")
    (results / "full").mkdir(parents=True)
    (results / "full" / "table1.json").write_text(json.dumps({"table": "table1", "preset": "full"}))
    copied = archive_results(["table1.json", "fig.png"], "quick", figures=figures, results=results)
    assert sorted(p.name for p in copied) == ["table1.json", "table1.md"]
    assert json.loads((results / "full" / "table1.json").read_text())["preset"] == "full"
    assert (results / "quick" / "table1.md").read_text() == "quick table"
    # a table whose JSON says another preset is not filed under this one
    assert archive_results(["table1.json"], "full", figures=figures, results=results) == []


def test_readme_beyond_and_sanity_numbers_are_the_committed_json():
    from paperlib.core.paths import FIGURES_DIR

    text = " ".join(README.split())  # the prose, line breaks ignored
    b = json.loads((FIGURES_DIR / "beyond.json").read_text())
    mk, gc = b["maps"]["masker"], b["maps"]["gradcam"]
    assert f"insertion AUC (blur) {mk['insertion_blur']:.3f} and {gc['insertion_blur']:.3f}" in text
    assert f"ground truth {b['boxes']['ground_truth']['squash']:.3f} < centre box {b['boxes']['centre']['squash']:.3f}" in text
    few = json.loads((FIGURES_DIR / "beyond_20.json").read_text())["maps"]
    assert f"(blur) {few['mask']['deletion_blur']:.3f} (masker {few['masker']['deletion_blur']:.3f}, occlusion" in text
    assert f"AUC (blur) {few['masker']['insertion_blur']:.3f} (Grad-CAM {few['gradcam']['insertion_blur']:.3f}, Mask" in text
    fs = json.loads((FIGURES_DIR / "sanity.json").read_text())["from_scratch"]
    rr, rc = fs["reference_vs_randomised"], fs["reference_vs_control"]
    assert f"({rr['mean']:.3f} ± {rr['se']:.3f})" in text and f"{rc['mean']:.3f} ± {rc['se']:.3f}" in text
    assert f"mean area of {fs['area']['randomised']:.3f} ({fs['area']['reference']:.3f} against the real box)" in text


def test_readme_architecture_numbers_are_the_committed_json():
    from paperlib.core.paths import FIGURES_DIR

    text = " ".join(README.split())
    rows = json.loads((FIGURES_DIR / "architecture.json").read_text())["rows"]
    ship, paper = rows["lite0_shipped_decoder"], rows["lite0_paper_decoder"]
    assert f"{paper['val_error']['0.5']:.1f} % against {ship['val_error']['0.5']:.1f} % on validation images 1-500" in text
    assert f"(a second seed of the shipped decoder: {rows['lite0_shipped_decoder_seed1']['val_error']['0.5']:.1f} %)" in text
    assert f"3 bottleneck blocks, {paper['parameters']['decoder'] / 1e6:.2f} M parameters" in text
    speed = f"({paper['speed']['masks_per_s_batch1']:.1f} against {ship['speed']['masks_per_s_batch1']:.1f} masks/s"
    assert speed in text
    own, foreign = rows["lite2_own_encoder"], rows["lite2_lite0_encoder"]
    assert f"reaches {foreign['val_error']['0.5']:.1f} % against {own['val_error']['0.5']:.1f} %" in text
    assert f"also ends at {rows['lite0_no_embedding_start']['val_error']['0.5']:.1f} %" in text
    max_box = json.loads((FIGURES_DIR / "beyond.json").read_text())["boxes"]["max"]["error"]
    assert foreign["val_error"]["0.5"] == max_box  # "the error of a box around the whole image"


def _last_steps(run, key, n=50):
    rows = [json.loads(line) for line in (REPO_ROOT / "results" / "full" / "runs" / run / "log.jsonl").read_text().splitlines()]
    return sum(r[key] for r in rows[-n:]) / n


def test_the_rerun_base_recipe_repeats_the_original_log_step_by_step():
    runs = REPO_ROOT / "results" / "full" / "runs"
    old, new = ((runs / r / "log.jsonl").read_text().splitlines() for r in ("a_lite0_s200", "a2_lite0_s200_rerun"))
    keys = ("step", "loss", "area_real", "area_fake", "p_preserve")
    assert len(old) == len(new) == 200
    assert all({k: json.loads(a)[k] for k in keys} == {k: json.loads(b)[k] for k in keys} for a, b in zip(old, new))


def test_readme_recipe_numbers_are_the_committed_json():
    from paperlib.core.paths import FIGURES_DIR

    text = " ".join(README.split())
    res = json.loads((FIGURES_DIR / "recipe_200.json").read_text())
    r, p = res["rows"], res["paired"]

    def gain(n):
        g = p[f"base vs {n}"]["val_1_500"]
        return f"{g['gain_points']:+.1f} ± {g['se_points']:.1f}"

    base, off = r["base"], r["official_objective"]
    assert f"its {base['val_error']['0.5']:.1f} % on validation images 1-500" in text
    assert (
        f"a second seed gives {r['base_seed1']['val_error']['0.5']:.1f} % (paired difference {gain('base_seed1')} points)" in text
    )
    assert f"localises best, {off['val_error']['0.5']:.1f} % ({gain('official_objective')}, not beyond" in text
    assert f"({off['tuning']['area']:.2f} against {base['tuning']['area']:.2f})" in text
    assert f"({off['tuning']['saliency']:.3f} against {base['tuning']['saliency']:.3f})" in text
    assert f"({off['tuning']['islands']:.2f} islands per mask against {base['tuning']['islands']:.2f})" in text
    assert f"Mask stride 8 ({r['stride8']['val_error']['0.5']:.1f} %, {gain('stride8')})" in text
    assert f"({r['projected_embedding']['val_error']['0.5']:.1f} %, {gain('projected_embedding')})" in text
    assert f"give {r['images_500']['val_error']['0.5']:.1f} and {r['images_1500']['val_error']['0.5']:.1f} %" in text
    assert f"Without the output gate the masker localises with {r['no_output_gate']['val_error']['0.5']:.1f} %" in text
    fake = (_last_steps("m_lite0_nogate_s200", "area_fake"), _last_steps("a2_lite0_s200_rerun", "area_fake"))
    assert f"cover {fake[0]:.2f} of the image for a wrong class during training ({fake[1]:.2f} with the gate;" in text
    abl = json.loads((FIGURES_DIR / "ablation.json").read_text())["rows"]
    ow, sh = abl["official_warm300_closed"], abl["shipped_closed"]
    assert f"(area {ow['tuning']['area']:.2f} against {sh['tuning']['area']:.2f})" in text
    assert f"localise {ow['val_error']['0.5']:.1f} % of images 1-500 wrongly against {sh['val_error']['0.5']:.1f} %" in text
    l1 = json.loads((FIGURES_DIR / "ablation_lite1.json").read_text())["rows"]["l2_4_tv50_closed"]["paired_vs_shipped_closed"]
    t, rep = l1["tune_401_500"], l1["report_1_400"]
    assert f"give {t['gain_points']:+.1f} ± {t['se_points']:.1f} points on the tuning images" in text
    assert f"and {rep['gain_points']:+.1f} ± {rep['se_points']:.1f} on images 1-400" in text


def test_readme_sentence_on_the_long_run_is_its_jsons():
    from paperlib.experiments import curve

    run = REPO_ROOT / "results" / "full" / "runs" / "q_lite0_authors_192k"
    decision = json.loads((run / "ship.json").read_text())
    points = json.loads((run / "curve.json").read_text())
    assert curve.summary_sentence(decision, points) in " ".join(README.split())


def test_readme_sentence_on_explaining_in_one_pass_is_its_json():
    from paperlib.tools import explain_bench

    result = json.loads((REPO_ROOT / "figures" / "explain_bench.json").read_text())
    assert explain_bench.summary(result) in " ".join(README.split())


def test_readme_sentence_on_fig2_is_its_json():
    from paperlib.experiments import extremal

    result = json.loads((REPO_ROOT / "results" / "quick" / "fig2.json").read_text())
    assert result["preset"] == "quick"
    assert extremal.regions_summary(result) in " ".join(README.split())

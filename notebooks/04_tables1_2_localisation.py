# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Tables 1 and 2: weakly supervised localisation
#
# **Paper's claim (sec. 5.1).** Given the ground-truth class, threshold the mask at 0.5 and take
# the tightest box around it; the masking model localises better than every other weakly
# supervised method: 36.7-39.8 % error across black boxes (Table 1), against 46.3 % for the
# centre box and 41.7-48.1 % for gradient methods and CAM (Table 2).
#
# Ours: EfficientNet-Lite0/1/2 black boxes (offline stand-ins for AlexNet, GoogLeNet and
# ResNet-50) on the shared ImageNet validation images 1-500 (the quick preset uses 1-100), with
# the maskers shipped in `paperlib/checkpoints`. All computation is in `paperlib.evaluate`.

# %% tags=["parameters"]
preset = "quick"

# %%
from paperlib.tools.reproduce import requires

requires("imagenet")  # without the validation images and boxes, make reproduce skips this notebook (one line)

# %%
from IPython.display import Markdown, display

import paperlib
from paperlib.experiments import evaluate

black_boxes = [n for n in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2") if n in paperlib.shipped_maskers()]
t1 = evaluate.table1(black_boxes, preset=preset, progress=False)
evaluate.write_results(t1)
display(Markdown(evaluate.to_markdown(t1)))

# %%
t2 = evaluate.table2("efficientnet_lite0", preset=preset, progress=False)
evaluate.write_results(t2)
display(Markdown(evaluate.to_markdown(t2)))

# %% [markdown]
# ## Checks

# %%
rows = {r["method"]: r["ours"] for r in t2["rows"]}
for r in t1["rows"]:
    print(
        f"{r['black box']}: masker {r['ours']} % at t = 0.5, {r['ours (tuned t)']} % at its tuned t = {r['tuned t']:g}; "
        f"Grad-CAM {r['Grad-CAM (tuned alpha)']} %; centre box {r['center box (ours)']} % (paper {r['paper']} %)"
    )
print("Table 2:", rows)
best_paper = min(evaluate.PAPER["table1"].values())
matches = all(r["ours"] <= best_paper for r in t1["rows"])
print("masker at or below the paper's best (36.7 %) for every black box:", matches)
assert all(0 <= v <= 100 for v in rows.values())
if preset != "smoke":  # make test's smoke preset scores 20 images: too few for the paper's claims
    for r in t1["rows"]:  # the paper's first claim: the masker localises better than the centre box
        assert r["ours"] < r["center box (ours)"], f"{r['black box']}: masker {r['ours']} % not below the centre box"
    assert rows["Masking model"] < rows["Grad"], "the masker should localise better than Grad (tuned threshold)"
# The paper's claims against the ledger (figures/claims.json); "does not hold" is said plainly, not hidden.
from paperlib.tools import claims

for claim_id, verdict in claims.check(
    [f"table1_{r['black box']}" for r in t1["rows"]] + ["table2_best", "table2_grad"]
).items():  # fails if a claim flipped against the committed ledger
    print(f"{claim_id}: {verdict}")

# %% [markdown]
# ## Result
#
# The prose below is generated from this run's tables and from the committed full-preset Table 1
# (`results/full/table1.json`), so that it cannot go stale.

# %%
import json

from paperlib.core import paths

full_path = paths.REPO_ROOT / "results" / "full" / "table1.json"
full = json.loads(full_path.read_text()) if full_path.exists() else t1
paper_t1 = ", ".join(
    f"{r['ours']} % ({r['black box'].replace('efficientnet_', '')}, paper {r['paper']} % for {r['paper black box']})"
    for r in full["rows"]
)
m, c, g, gb, cam, mask = (rows[k] for k in ("Masking model", "Center box", "Grad", "Guided backprop", "CAM", "Mask (iterative)"))
better = [k for k, v in rows.items() if k != "Masking model" and v < m]
n_mask = next(r["n"] for r in t2["rows"] if r["method"] == "Mask (iterative)")
display(
    Markdown(
        f"**Table 1** (preset `{full['preset']}`, {full['data']}): the maskers give {paper_t1}; the centre box "
        f"{full['rows'][0]['center box (ours)']} %. Every masker is below the centre box (asserted above), as in the "
        "paper, but none reaches the paper's error. The shipped maskers saw a few thousand training images on a CPU; "
        "the paper's saw the whole ImageNet training set. "
        + (
            "At each masker's own threshold (chosen on images 401-500): "
            + ", ".join(f"{r['ours (tuned t)']} % (t = {r['tuned t']:g})" for r in full["rows"])
            + "; Grad-CAM at its threshold tuned on the same images: "
            + ", ".join(f"{r['Grad-CAM (tuned alpha)']} % (alpha {r['Grad-CAM alpha']:g})" for r in full["rows"])
            + ".\n\n"
            if all("ours (tuned t)" in r for r in full["rows"])
            else "\n\n"
        )
        + f"**Table 2** (preset `{t2['preset']}`, {t2['data']}, Lite0): masker {m} %, centre box {c} %, Grad {g} %, "
        f"guided backprop {gb} %, CAM (Grad-CAM) {cam} %, iterative Mask {mask} % (on {n_mask} images). "
        + (
            f"Better than the masker: {', '.join(f'{k} ({rows[k]} %)' for k in better)}, so the paper's ordering is "
            "**not** fully reproduced."
            if better
            else "The masker is the best method, as in the paper."
        )
    )
)

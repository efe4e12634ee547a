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
evaluate.write_table(t1)
display(Markdown(evaluate.to_markdown(t1)))

# %%
t2 = evaluate.table2("efficientnet_lite0", preset=preset, progress=False)
evaluate.write_table(t2)
display(Markdown(evaluate.to_markdown(t2)))

# %% [markdown]
# ## Checks

# %%
rows = {r["method"]: r["ours"] for r in t2["rows"]}
for r in t1["rows"]:
    print(f"{r['black box']}: masker {r['ours']} % vs centre box {r['center box (ours)']} % (paper {r['paper']} %)")
print("Table 2:", rows)
best_paper = min(evaluate.PAPER["table1"].values())
matches = all(r["ours"] <= best_paper for r in t1["rows"])
print("masker at or below the paper's best (36.7 %) for every black box:", matches)
assert all(0 <= v <= 100 for v in rows.values())
for r in t1["rows"]:  # the paper's first claim: the masker localises better than the centre box
    assert r["ours"] < r["center box (ours)"], f"{r['black box']}: masker {r['ours']} % not below the centre box"
assert rows["Masking model"] < rows["Grad"], "the masker should localise better than Grad (tuned threshold)"

# %% [markdown]
# **Result.** Every shipped masker localises better than the centre box (asserted above), as in
# the paper, but none reaches the paper's errors: with the `full` preset on images 1-500 the
# maskers give 41.4 % (Lite0), 39.6 % (Lite1) and 39.2 % (Lite2) against the paper's 39.8 %
# (AlexNet), 36.9 % (GoogLeNet) and 36.7 % (ResNet-50), and the centre box 43.2 %
# (`figures/table1.md`). The shipped maskers saw 4,800 to 11,200 training images (3,035 distinct)
# on a CPU; the paper's saw the whole ImageNet training set.
#
# Table 2 (quick preset, images 1-100, Lite0) does **not** fully reproduce the paper's ordering:
# the masker (38.0 %) beats the centre box (40.0 %), Grad and guided backprop (49.0 %, thresholds
# tuned on held-out images 401-500) and the iterative Mask (62.5 % on 8 images at 100 iterations),
# but Grad-CAM with a tuned threshold is better still (35.0 %; the paper's CAM row is 48.1 %).
# Guided backprop equals Grad here because EfficientNet-Lite uses ReLU6, which Captum's guided
# backprop does not modify (a warning says so).

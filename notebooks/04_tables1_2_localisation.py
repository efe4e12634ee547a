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
from IPython.display import Markdown, display

import paperlib
from paperlib import evaluate

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
best_paper = min(PAPER for PAPER in evaluate.PAPER["table1"].values())
matches = all(r["ours"] <= best_paper for r in t1["rows"])
print("masker at or below the paper's best (36.7 %) for every black box:", matches)
assert all(0 <= v <= 100 for v in rows.values())

# %% [markdown]
# **Result.** The tables above print our numbers beside the paper's. Whether the shipped maskers
# beat the centre box and reach the paper's 36.7 % is stated by the line printed above and, with
# the training that produced them, in `paperlib/checkpoints/*.json`; see the README for the
# current status.

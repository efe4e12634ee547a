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
# # 07 · Speed: masks per second
#
# **Paper's claim (abstract, sec. 6).** The masking model needs one forward pass per mask and
# produces "more than 100 masks per second" of 224 x 224 images on a 2017 GPU, orders of magnitude
# faster than iterative optimisation (hundreds of forward and backward passes per mask).
#
# This notebook runs `paperlib.bench` (the same code as `make bench`) on the machine at hand:
# masks per second at batch 16, latency at batch 1 and peak memory for the paper's ResNet-50
# design (untrained weights: speed does not depend on them), the shipped maskers, Grad, Grad-CAM
# and the iterative Mask. Speed is reported, never asserted: it depends on the hardware, which
# the table names.

# %% tags=["parameters"]
preset = "quick"

# %%
from IPython.display import Image, Markdown, display

from paperlib import bench, paths

result = bench.run(preset=preset, memory="none" if preset == "quick" else "auto", out=paths.FIGURES_DIR, progress=False)
display(Markdown(bench.to_markdown(result)))
display(Image(filename=str(paths.FIGURES_DIR / "speed.png")))

# %%
methods = [r["method"] for r in result["rows"]]
print("measured:", methods)
assert any(r["kind"] == "masker" for r in result["rows"]) and any(r["kind"] == "baseline" for r in result["rows"])
best = max((r for r in result["rows"] if r["kind"] == "masker" and r.get("shipped")), default=None,
           key=lambda r: r["batches"]["16"]["masks_per_s"]["median"])
if best:
    rate = best["batches"]["16"]["masks_per_s"]["median"]
    print(f"fastest shipped masker: {rate:.1f} masks/s at batch 16 on {result['device_name']} "
          f"(paper: > 100 masks/s on a 2017 GPU)")

# %% [markdown]
# **Result.** The table gives the measured rates and the speedup of the shipped masker over each
# baseline on this hardware. On a 2-core CPU the absolute rates are far below a GPU's; the ratio
# to the iterative Mask is the hardware-independent part of the paper's claim.

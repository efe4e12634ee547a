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
# # 02 · Figure 3: an adversarial mask
#
# **Paper's claim (sec. 3, Fig. 3).** Without regularisation (no total variation, no area term, no
# resizing, plain `X * M`), optimising a mask to remove a class finds a tiny, almost invisible
# change that destroys the classification: an adversarial artifact, not an explanation. This is
# why the objective needs its regularisers and the random alternative image.

# %% tags=["parameters"]
preset = "quick"
black_box = "efficientnet_lite0"

# %%
import torch
from skimage import data as skdata

import paperlib
from paperlib.experiments import iterative, presets
from paperlib.tools import viz
from paperlib.core.classes import imagenet_classes

settings = presets.notebook("fig3_adversarial", preset)
bb = paperlib.load_classifier(black_box)
image = torch.from_numpy(skdata.chelsea()).permute(2, 0, 1).float().div(255)[None]
image = torch.nn.functional.interpolate(image, size=(224, 224), mode="bilinear", antialias=True).clamp(0, 1)
cls = int(bb.predict(image, k=1)[1][0, 0])
res = iterative.adversarial_mask(bb, image, torch.tensor([cls]), iterations=settings.iterations)
print(
    f"class {imagenet_classes().name(cls)!r}: p {float(res.prob_before[0]):.3f} -> {float(res.prob_after[0]):.4f}, "
    f"mean |1 - M| = {float(res.mean_change[0]):.4f}"
)

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 4, figsize=(11, 3))
m = res.masks[0]
axes[0].imshow(viz.to_numpy_image(image[0]))
axes[0].set_title(f"original, p = {float(res.prob_before[0]):.2f}", fontsize=9)
axes[1].imshow(viz.to_numpy_image(image[0] * m))
axes[1].set_title(f"image x M, p = {float(res.prob_after[0]):.3f}", fontsize=9)
axes[2].imshow((1 - m)[0].detach().numpy(), cmap="magma")
axes[2].set_title("1 - M (what was removed)", fontsize=9)
axes[3].imshow(((1 - m)[0].detach() / (1 - m).max().clamp_min(1e-6)).numpy(), cmap="magma")
axes[3].set_title("1 - M, rescaled", fontsize=9)
for ax in axes:
    ax.axis("off")
viz.save_figure(fig, "fig3_adversarial")

# %%
assert float(res.prob_after[0]) < 0.1 * float(res.prob_before[0]), "the unregularised mask should destroy the class"
assert float(res.mean_change[0]) < 0.1, "...while changing the image very little"

# %% [markdown]
# **Result.** As in the paper, the unregularised mask removes the class while changing the image by
# a few percent on average (numbers above): an adversarial artifact.

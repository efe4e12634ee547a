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
# # 06 · Figure 6: CIFAR-10 masks from a masker trained from scratch
#
# **Paper's claim (sec. 5.4, Fig. 6).** The masking model also works when its encoder is trained
# from scratch: on CIFAR-10 (32 x 32 images), against a FitNet black box at 92 % accuracy, a
# masker with 3 downsampling blocks of 5 convolutions trained for 20 epochs gives masks that pick
# out the object, at the cost of some sharpness (the images are tiny).
#
# Here: the shipped CIFAR-10 black box (`paperlib.core.cifarnet.CifarNet`, a ResNet-9 trained with
# paperlib's own code; its test accuracy and training time are in its checkpoint record) and the
# shipped from-scratch masker, on the test split of the shared JPEG copy of CIFAR-10. We show
# one test image per class with its mask for the true class, and measure on test images how much
# of the black box's probability stays when only the masked region is kept (SSR) or removed (SDR).

# %% tags=["parameters"]
preset = "quick"
interactive = True  # widgets in JupyterLab; make reproduce / make test run headless (False)

# %%
from paperlib.tools.reproduce import requires

requires("cifar10", download=True)  # downloads the official files (torchvision) when missing; skips if offline

# %%
import json

import matplotlib.pyplot as plt
import torch

import paperlib
from paperlib.experiments import cifar
from paperlib.tools import viz
from paperlib.core.classes import cifar10_classes
from paperlib.core.data import cifar10_tensors
from paperlib.core import paths

bb = paperlib.load_classifier("cifar10")
masker = paperlib.load_masker("cifar10")
record = json.loads(cifar.DEFAULT_CHECKPOINT.with_suffix(".json").read_text())
masker_record = json.loads((paths.CHECKPOINT_DIR / "cifar10.json").read_text())
print("black box:", record.get("architecture", "CifarNet"), "| exported from:", record.get("command", "?"))
print(
    f"black box test accuracy (recorded at export): {100 * record['test_accuracy']:.2f} % "
    f"on {record.get('test_images', 10000)} test images (paper's FitNet: 92 %)"
)
print("masker trained with:", masker_record["command"])

# %%
images_u8, labels = cifar10_tensors("test")
images = images_u8.float() / 255

# %% [markdown]
# ## Fig. 6: one test image per class, mask for the true class

# %%
first = [int((labels == c).nonzero()[0]) for c in range(10)]
x, y = images[first], labels[first]
with torch.inference_mode():
    m = masker(x, y)
fig, axes = plt.subplots(3, 10, figsize=(15, 4.8))
for j in range(10):
    img = viz.to_numpy_image(x[j])
    axes[0, j].imshow(img)
    axes[0, j].set_title(cifar10_classes().name(int(y[j])), fontsize=9)
    axes[1, j].imshow(m[j, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    axes[2, j].imshow(img * m[j, 0, ..., None].numpy())
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
for i, t in enumerate(["image", "mask", "image x mask"]):
    axes[i, 0].set_ylabel(t, fontsize=9)
fig.tight_layout()
viz.save_figure(fig, "fig6_cifar10")

# %% [markdown]
# ## Do the masks hold the evidence?
# On the test images the black box classifies correctly: its probability of the true class on the
# image, on the image with only the mask kept (the rest grey), and with the mask removed
# (`paperlib.experiments.evaluate.cifar10_table`, also `python -m paperlib.evaluate cifar10`).
#
# **Asserted, at every preset** (smoke evaluates the same 1000 test images as quick, full all 10000):
# p(kept) exceeds p(removed) by more than 0.3 (quick: 0.647 against 0.237, a gap of 0.41; an untrained
# masker of the same architecture gives 0.635 against 0.453, a gap of 0.18, and fails it), and the mean
# mask area is below 0.7 (quick: 0.61; an untrained masker's is 0.60 too, so this bound only catches masks
# that grow towards the whole image). The claims `cifar10_black_box` and `cifar10_masks` are compared with
# the committed ledger (`figures/claims.json`) when the run's preset is the ledger's (quick).

# %%
from IPython.display import Markdown, display

from paperlib.experiments.evaluate import cifar10_table, to_markdown, write_results

table = cifar10_table(preset)
write_results(table)
display(Markdown(to_markdown(table)))
ours = {r["quantity"]: r["ours"] for r in table["rows"]}
kept, removed, area = ours["p(true class), only the mask kept"], ours["p(true class), mask removed"], ours["mean mask area"]
# Bounds from the committed quick result (results/quick/cifar10.json, 1000 test images): kept 0.647,
# removed 0.237 (a gap of 0.41), area 0.61. The shipped masker is fixed, so these move only if the masker,
# the black box or the evaluation changes. An untrained masker of the same architecture measured kept
# 0.635, removed 0.453 (a gap of 0.18), area 0.60: the 0.3 gap fails it, while the area bound (0.09 above
# 0.61) only fails masks that grow towards the whole image. The smoke preset evaluates the same 1000
# images (cifar10_table falls back to quick's), full all 10000 (not run yet; the margins should cover it).
assert kept > removed + 0.3, "keeping the masked region should keep far more evidence than removing it (quick: 0.41 more)"
assert area < 0.7, "the masks should cover well under the whole image (quick: 0.61)"
from paperlib.tools import claims

for claim_id, verdict in claims.check(
    ["cifar10_black_box", "cifar10_masks"]
).items():  # fails if a claim flipped against the committed ledger
    print(f"{claim_id}: {verdict}")

# %% [markdown]
# ## Try it: any test image, any class
# Headless runs skip this cell.

# %%
from paperlib.tools import widgets

if widgets.enabled(interactive):
    import ipywidgets as W

    cnames = cifar10_classes()

    def draw_one(index, class_name):
        x, c = images[index][None], cnames.index(class_name)
        with torch.inference_mode():
            mk = masker(x, torch.tensor([c]))
            p = bb(x).softmax(-1)[0]
        f, ax = plt.subplots(1, 4, figsize=(9, 2.6))
        viz.show_row(
            ax,
            x[0],
            mk[0],
            [
                f"true: {cnames.name(int(labels[index]))}, p({class_name}) = {float(p[c]):.2f}",
                f"mask: {class_name}",
                "image x mask",
                "image x (1 - mask)",
            ],
        )
        return f

    widgets.Panel(
        draw_one,
        {
            "index": W.BoundedIntText(value=first[3], min=0, max=len(images) - 1, description="test image"),
            "class_name": widgets.choice(cnames.names, cnames.name(int(labels[first[3]])), "class"),
        },
    ).show()

# %% [markdown]
# **Result.** The CIFAR-10 masker, trained from scratch with the same objective, keeps most of the
# black box's evidence in a fraction of the image (numbers above), which is the paper's claim for
# Fig. 6. Our black box is weaker than the paper's FitNet (see the accuracy above: trained on a
# 2-core CPU within a session, not to the 92 % goal), and the masker was trained for fewer than
# the paper's 20 epochs (its command is printed above); the masks are visibly blobby at 32 x 32,
# as the paper's are.

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
# # 03 · Figures 1 and 5: masks per black box, beside Grad and a per-image optimised mask
#
# **Paper's claim (Figs. 1, 5).** One forward pass of the masking model gives a sharp mask of the
# requested class, cleaner than gradient maps and comparable to iterative optimisation; and the
# mask follows the *requested* class: for the same image, "Egyptian cat" and "beagle" give
# different masks (Fig. 1).
#
# Here: the shipped maskers (one per offline black box), Grad (Simonyan et al., through Captum)
# and a per-image optimised mask (extremal perturbations, the successor of Fong & Vedaldi's iterative
# Mask), on ImageNet validation images, for the ground-truth class.
# Without ImageNet the same figures are drawn on the sample photographs that come with
# scikit-image (a cat, an espresso, a rocket; public domain / CC0).

# %% tags=["parameters"]
preset = "quick"
interactive = True  # widgets in JupyterLab; make reproduce / make test run headless (False)

# %%
import torch

import paperlib
from paperlib.core.classes import imagenet_classes
from paperlib.experiments import baselines, extremal, presets
from paperlib.tools import viz
from paperlib.tools.sample_images import sample_image, val_or_samples

settings = presets.notebook("fig1_fig5_masks_per_black_box", preset)
names = imagenet_classes()
maskers = {n: paperlib.load_masker(n) for n in paperlib.shipped_maskers() if n.startswith("efficientnet_lite")}
print("maskers:", list(maskers))

# %%
bb = paperlib.load_classifier("efficientnet_lite0")
images, labels, source = val_or_samples(224, settings.n)
print("images:", source)
columns = {}
with torch.inference_mode():
    for name, masker in maskers.items():
        columns[f"masker ({name.replace('efficientnet_', '')})"] = masker(images, labels)
columns["Grad (lite0)"] = baselines.gradient_saliency(bb, images, labels)
# The per-image column: extremal perturbations (Fong, Patrick & Vedaldi 2019, `paperlib.experiments.extremal`), the
# smallest sufficient region at a fixed target area of 20 % (a smooth, blob-like mask; the pixel-wise Mask of
# Fong & Vedaldi 2017, `iterative.optimise_masks(mode="fong")`, gave grey masks near 0.5 over the whole image).
columns["Mask, extremal (lite0, a = 20 %)"] = extremal.extremal_masks(
    bb, images, labels, mode="ssr", areas=(0.2,), iterations=settings.iterations, generator=torch.Generator().manual_seed(0)
)[:, 0]
fig = viz.mask_grid(images, columns, [names.name(int(c))[:18] for c in labels])
viz.save_figure(fig, "fig5_masks_per_black_box")

# %% [markdown]
# ## Fig. 1: the mask follows the requested class
# The paper shows one image with a cat and a dog. We build such an image from two real
# photographs side by side (a cat from scikit-image's `chelsea`, a dog from the validation set;
# without ImageNet, scikit-image's espresso photograph stands in for the dog) and ask the masker
# for each class.

# %%
from torch.nn.functional import interpolate

from paperlib.core.data import ImageNetVal
from paperlib.core.errors import DataNotFoundError
from paperlib.tools.sample_images import strict

try:
    val = ImageNetVal()
    beagle = names.index("beagle")
    dog_idx = (
        next(i for i, l in enumerate(val.labels) if l == beagle)
        if beagle in val.labels
        else next(i for i, l in enumerate(val.labels) if 151 <= l <= 268)
    )
    dog = interpolate(val[dog_idx].image[None], size=(224, 224), mode="bilinear", antialias=True)
    dog_class = val.labels[dog_idx]
except DataNotFoundError:
    if strict():
        raise
    dog, dog_class = sample_image("coffee", 224)[None], names.index("espresso")  # no ImageNet: the second photograph
cat = sample_image("chelsea", 224)[None]
pair = torch.cat([cat, dog], dim=3).clamp(0, 1)  # (1, 3, 224, 448)
masker = maskers["efficientnet_lite0"]
with torch.inference_mode():
    m_cat = masker(pair, "Egyptian cat")
    m_dog = masker(pair, torch.tensor([dog_class]))

import matplotlib.pyplot as plt

fig, axes = plt.subplots(2, 4, figsize=(14, 4.2))
viz.show_row(axes[0], pair[0], m_cat[0], ["Egyptian cat: image", "mask", "image x mask", "image x (1 - mask)"])
viz.show_row(axes[1], pair[0], m_dog[0], [f"{names.name(dog_class)}: image", "mask", "image x mask", "image x (1 - mask)"])
viz.save_figure(fig, "fig1_two_classes")

# %%
left_cat, right_cat = float(m_cat[..., :224].mean()), float(m_cat[..., 224:].mean())
left_dog, right_dog = float(m_dog[..., :224].mean()), float(m_dog[..., 224:].mean())
print(f"cat mask: left (cat) {left_cat:.2f}, right (dog) {right_cat:.2f}")
print(f"dog mask: left (cat) {left_dog:.2f}, right (dog) {right_dog:.2f}")
# committed quick run (the Lite0 masker shipped in session 12): cat mask 0.40 on the cat half vs 0.00 on the dog half,
# dog mask 0.30 vs 0.00 (the earlier masker: 0.66 vs 0.03 and 0.45 vs 0.03); the 0.2 margin holds for both
assert left_cat > right_cat + 0.2, "the cat mask should cover the cat half far more than the dog half"
assert right_dog > left_dog + 0.2, "the dog mask should cover the dog half far more than the cat half"

# %% [markdown]
# ## Try it: image, class, black box
# Pick an image (the figure's, or upload your own), type a class or pick the black box whose masker
# explains it. One masker forward pass per change. Headless runs skip this cell.

# %%
from paperlib.tools import widgets

if widgets.enabled(interactive):
    choices = {f"{i + 1}: {names.name(int(l))[:24]}": images[i] for i, l in enumerate(labels)}
    choices["cat and dog (Fig. 1)"] = pair[0]
    picker = widgets.ImagePicker(choices)

    def draw_one(image, class_name, black_box):
        x = picker.get(image)[None]
        x = interpolate(x, size=(224, 224), mode="bilinear", antialias=True).clamp(0, 1) if x.shape[-2] != 224 else x
        with torch.inference_mode():
            m = maskers[black_box](x, class_name)
        f, ax = plt.subplots(1, 4, figsize=(12, 3) if x.shape[-1] == 224 else (14, 2.4))
        viz.show_row(
            ax,
            x[0],
            m[0],
            [f"{black_box.replace('efficientnet_', '')}: {class_name[:20]}", "mask", "image x mask", "image x (1 - mask)"],
        )
        return f

    widgets.Panel(
        draw_one,
        {
            "image": picker,
            "class_name": widgets.class_box(names, names.name(int(labels[0]))),
            "black_box": widgets.choice(list(maskers), description="black box"),
        },
    ).show()

# %% [markdown]
# **Result.** The masks follow the requested class (checked above on the two halves). How sharp
# they are compared with the paper's Fig. 5 is for the eye; the numbers are in notebook 04.

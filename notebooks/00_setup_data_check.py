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
# # 00 · Setup and data check
#
# What this notebook does: lists the data sets and black boxes that `paperlib` finds on this
# machine, shows a few ImageNet validation images with their ground-truth boxes, and checks that
# the default black box (EfficientNet-Lite0) recognises them. Every later notebook relies on this.
#
# Data are found through one setting: the data root `$PAPERLIB_DATA` (the Makefile's `DATA=`),
# `data/` by default. Without ImageNet (a fresh clone), the notebook checks the black box on the
# sample photographs that come with scikit-image instead and says how to get the data (`make data`).

# %% tags=["parameters"]
preset = "quick"  # "quick" (CPU, CI) or "full" (paper scale)

# %%

import paperlib
from paperlib.core import data, paths
from paperlib.tools import viz
from paperlib.experiments import presets
from paperlib.core.classes import imagenet_classes

settings = presets.notebook("setup_data_check", preset)
print("data root:", paths.data_root())
found = data.available_data()
for name, info in found.items():
    print(f"{name:28s} {'found' if info['found'] else 'MISSING':8s} {info.get('count')!s:>6} {info['path']}")

# %%
print("black boxes:", paperlib.available_classifiers())
print("shipped maskers:", paperlib.shipped_maskers())

# %% [markdown]
# ## A few validation images with their ground-truth boxes
# (or, without ImageNet, the sample photographs with the black box's top class)

# %%
import matplotlib.pyplot as plt
from torch.nn.functional import interpolate

from paperlib.core.errors import DataNotFoundError
from paperlib.tools.sample_images import sample_batch, strict

names = imagenet_classes()
bb = paperlib.load_classifier("efficientnet_lite0")
try:
    val = data.ImageNetVal(limit=settings.n_check)
except DataNotFoundError as exc:
    if strict():
        raise
    val = None
    print("ImageNet validation images not found:", str(exc).splitlines()[0])
    print("`make data` says which files to get; the checks below use the sample photographs instead.")

# %%
if val is not None:
    fig, axes = plt.subplots(1, settings.n_show, figsize=(2.6 * settings.n_show, 2.6))
    for ax, i in zip(axes, range(settings.n_show)):
        s = val[i]
        ax.imshow(viz.to_numpy_image(s.image))
        for b in s.boxes:
            viz.draw_box(ax, b)
        ax.set_title(names.name(s.label)[:22], fontsize=8)
        ax.axis("off")
else:
    images, labels, sample_names = sample_batch(224)
    top = bb.predict(images, k=5)[1]
    fig, axes = plt.subplots(1, len(images), figsize=(2.6 * len(images), 2.6))
    for ax, img, t, n in zip(axes, images, top, sample_names):
        ax.imshow(viz.to_numpy_image(img))
        ax.set_title(f"{n}: {names.name(int(t[0]))[:18]}", fontsize=8)
        ax.axis("off")
viz.save_figure(fig, "00_data_check", pdf=False)

# %% [markdown]
# ## The default black box recognises them

# %%
if val is not None:
    correct = 0
    for i in range(len(val)):
        s = val[i]
        x = interpolate(s.image[None], size=(224, 224), mode="bilinear", antialias=True).clamp(0, 1)
        correct += int(bb.predict(x, k=1)[1][0, 0] == s.label)
    top1 = correct / len(val)
    print(f"EfficientNet-Lite0 top-1 on validation images 1-{len(val)} (squashed to 224 px): {100 * top1:.1f} %")
    assert len(val) == settings.n_check
    assert top1 > 0.6, "the black box should recognise most images; check the data root"
else:
    in_top5 = {n: int(lab) in t.tolist() for n, lab, t in zip(sample_names, labels, top)}
    print("label in the black box's top-5:", in_top5)
    assert sum(in_top5.values()) >= 2, "the black box should recognise the sample photographs"

# %% [markdown]
# **Result.** The data and the offline black boxes are in place; the top-1 accuracy above is the
# black box's own, measured here on the images every later table uses. Without ImageNet, the check
# runs on the sample photographs, and the notebooks that need ImageNet are skipped by `make reproduce`.

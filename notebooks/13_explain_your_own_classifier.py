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
# # 13 · Explain your own classifier
#
# The paper's method needs nothing from the classifier but its gradients: any differentiable model that
# maps images to logits can be explained in real time. This notebook takes the whole path a user takes
# with a model of their own:
#
# 1. **a classifier of our own**: a linear head for the 10 CIFAR-10 classes, fitted in seconds on the
#    pooled features of a frozen EfficientNet-Lite0 (ImageNet weights, offline). Its images are 64 x 64
#    scenes: a CIFAR-10 photograph (enlarged to 48 x 48) pasted at a random place on a smooth background, so
#    that the evidence has a known place and the masks can be checked against it (`paperlib.experiments.own.pasted_scenes`);
# 2. **wrap it** once with `paperlib.wrap_classifier` (input size, normalisation, class names): one probe
#    batch checks the output shape, the class names and that gradients flow;
# 3. **train a masker** for it with `paperlib.train_masker` on unlabelled images (the black box's own
#    top-1 is the label), save it and load it back (the file records the sha256 of the black box's
#    weights, so loading it against another model fails with a clear message);
# 4. **check** that the masks find the evidence on held-out scenes: the black box's probability of the
#    class with the masked region kept must exceed the one with it removed, and the masks must lie on the
#    pasted photograph rather than on the background (asserted at `quick` and `full`; `smoke` asserts
#    only what a few steps guarantee: finite losses, masks of the right shape in [0, 1]);
# 5. the **explorer** widgets on it (headless runs draw one view instead).
#
# Data: the CIFAR-10 images under `$PAPERLIB_DATA/cifar10` (`make data`); without them the notebook is
# skipped with one line. Headless (`PAPERLIB_HEADLESS=1`, papermill, nbval) the widgets are not built.

# %% tags=["parameters"]
preset = "quick"
interactive = True
threads = 1  # torch threads: this CPU is shared

# %%
import json
import math
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import display
from torch import nn
from torch.nn.functional import interpolate

import paperlib
from paperlib.core import data, metrics, objective
from paperlib.core.classes import CIFAR10_NAMES
from paperlib.core.classifiers import build_efficientnet_lite
from paperlib.experiments import presets
from paperlib.experiments.own import pasted_scenes
from paperlib.tools import viz, widgets
from paperlib.tools.reproduce import requires

requires("cifar10")
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = presets.notebook("explain_your_own_classifier", preset)
SIZE, PHOTO = 64, 48  # the side of our classifier's images, and of the CIFAR-10 photograph pasted in each
train_x, train_y = data.cifar10_tensors("train")
test_x, test_y = data.cifar10_tensors("test")
pick = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))
fit_idx, mask_idx = pick[: cfg.fit_images], pick[cfg.fit_images : cfg.fit_images + cfg.masker_images]
test_idx = torch.arange(0, len(test_x), len(test_x) // cfg.test_images)[: cfg.test_images]
print(cfg)

# %% [markdown]
# ## 1. A classifier of our own
# A frozen EfficientNet-Lite0 backbone and a new linear layer on its pooled 1280 features, fitted with
# Adam on the features of the first images (the backbone runs once per image).


# %%
class MyClassifier(nn.Module):
    """Frozen EfficientNet-Lite0 features -> mean pool -> Linear(1280, 10); input normalised as Lite0 wants."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = build_efficientnet_lite(0)
        self.head = nn.Linear(1280, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.extract_features(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


lite_mean, lite_std = (127 / 255,) * 3, (128 / 255,) * 3  # EfficientNet-Lite expects (x * 255 - 127) / 128
model = MyClassifier().eval()
t0 = time.time()
with torch.no_grad():
    norm = lambda x: (x - lite_mean[0]) / lite_std[0]  # noqa: E731
    fit_scenes, _ = pasted_scenes(train_x[fit_idx], SIZE, PHOTO, seed=1)
    feats = torch.cat([model.features(norm(fit_scenes[i : i + 100])) for i in range(0, len(fit_idx), 100)])
opt = torch.optim.Adam(model.head.parameters(), lr=1e-2, weight_decay=1e-3)
for _ in range(cfg.head_epochs):
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model.head(feats), train_y[fit_idx])
    loss.backward()
    opt.step()
print(f"head fitted on {len(fit_idx)} images in {time.time() - t0:.0f} s (training loss {loss.item():.2f})")

# %% [markdown]
# ## 2. Wrap it: input size, normalisation and class names, declared once

# %%
black_box = paperlib.wrap_classifier(
    model, input_size=SIZE, mean=lite_mean, std=lite_std, class_names=CIFAR10_NAMES, name="cifar10_lite0_head"
)
with torch.no_grad():
    test_images, test_where = pasted_scenes(test_x[test_idx], SIZE, PHOTO, seed=3)
    accuracy = (black_box(test_images).argmax(1) == test_y[test_idx]).float().mean().item()
print(f"BlackBox({black_box.extra_repr()})")
print(f"test accuracy on {len(test_idx)} CIFAR-10 test images: {accuracy:.1%} (chance: 10 %)")
assert accuracy > 0.3, "the linear head should classify well above chance"

# %% [markdown]
# ## 3. Train a masker for it
# Unlabelled images (a tensor): the black box's own top-1 class is the label of each. The masker's encoder
# is the frozen EfficientNet-Lite0 (the default); the objective is eq. 4 with the shipped maskers' recipe
# (`objective="project"`) and three weights changed for these small images, each needed in our runs
# (200 steps of 16 on this 2-core CPU, 100 held-out scenes):
#
# - `p_blur=1`: the alternative image is always the blurred one, never a random colour with noise. The
#   noise puts texture on the smooth background, which the black box reacts to, so the masks had to keep
#   the background too: with the default 0.5 the masks stayed even (0.24 on the photograph, 0.21 on the
#   background) and keeping the masked region kept less of the class than removing it (p 0.33 against 0.66);
# - `l1=0.5` (TV, default 10): at 64 px the mask is 16 x 16, where the outline of the photograph costs more
#   TV at weight 10 than the area it saves; with `p_blur=1` alone the masks stayed nearly even (0.56 / 0.49);
# - `l2=3` (area) and `lr=1e-2`: with `lr=5e-3` and `l2` from 1 to 4 the masks lay more on the photograph,
#   but less than twice as much as on the background (ratios 1.1 to 1.95).

# %%
t0 = time.time()
run_dir = Path(tempfile.mkdtemp()) / "run"  # log.jsonl, last.pt and masker.pt of the run
masker = paperlib.train_masker(
    black_box,
    pasted_scenes(train_x[mask_idx], SIZE, PHOTO, seed=2)[0],
    steps=cfg.steps,
    batch_size=cfg.batch_size,
    lr=1e-2,
    objective_weights={"p_blur": 1.0, "l1": 0.5, "l2": 3.0},
    out=run_dir,
    progress=False,
)
train_seconds = time.time() - t0
losses = [json.loads(line)["loss"] for line in (run_dir / "log.jsonl").read_text().splitlines()]
print(f"masker trained: {cfg.steps} steps of {cfg.batch_size} images in {train_seconds:.0f} s")
print(f"loss: first step {losses[0]:.3f}, last step {losses[-1]:.3f}")
assert len(losses) == cfg.steps and all(map(math.isfinite, losses)), "every step should log a finite loss"
path = paperlib.save_masker(masker, Path(tempfile.mkdtemp()) / "my_masker.pt")
masker = paperlib.load_masker(path, black_box=black_box)  # checks the sha256 of the black box's weights
other = paperlib.wrap_classifier(MyClassifier(), input_size=SIZE, mean=lite_mean, std=lite_std, class_names=CIFAR10_NAMES)
try:
    paperlib.load_masker(path, black_box=other)
    raise AssertionError("a masker must not load against another model")
except paperlib.CheckpointMismatchError as exc:
    print("another model (a fresh head):", str(exc)[:150], "...")

# %% [markdown]
# ## 4. Do the masks keep the evidence?
# On held-out test images, for the black box's top-1 class: its probability with the masked region kept
# (the rest blurred) and with it removed (Phi of eq. 4 with a blurred alternative image), and the mean
# mask on the pasted photograph and on the background.
#
# **What is asserted at which preset.**
#
# - `smoke` (4 steps): only what a few steps guarantee: every step logged a finite loss (above), the masks
#   of the user's scenes are (N, 1, 64, 64), finite and in [0, 1], and the masker takes a class name as well
#   as an index. No claim about the masks' quality.
# - `quick` (300 steps of 16: 81 s of training, 110 s for the whole notebook on a 2-core CPU shared with
#   another run) and `full` (1000 steps of 32; not run yet): keeping the masked region keeps more of the class than removing it, by more than 0.1 (mean over
#   the 100 test scenes), and the masks lie on the photograph: their mean there is more than twice their mean
#   on the background. With three training seeds the quick recipe measured p(kept) 0.55 / 0.535 / 0.567
#   against p(removed) 0.378 / 0.39 / 0.399 (gaps 0.145 to 0.172) and mean masks 0.544 to 0.553 on the
#   photograph against 0.202 to 0.212 on the background (ratios 2.60 to 2.73). An untrained masker of the
#   same architecture gives p 0.291 against 0.653 and an even mask (0.224 / 0.220), and fails both; a mask of
#   ones passes the first (0.72 against 0.18) and fails the second. At 200 steps one seed of three fell short
#   of the factor 2 (1.67), hence 300.
#
# That the method itself works through this API is also checked with a known answer in
# `tests/test_own_classifier.py` (a planted red square found with mean IoU 0.69 after 200 steps).

# %%
with torch.no_grad():
    top1 = black_box(test_images).argmax(1)
    masks = masker(test_images, top1)
    by_name = masker(test_images[:1], CIFAR10_NAMES[int(top1[0])])
    blurred = objective.gaussian_blur(test_images, 10.0 * SIZE / 224)
    probs = metrics.evidence_probabilities(black_box, test_images, masks, top1, alternative=blurred)
    grey = metrics.evidence_probabilities(black_box, test_images, masks, top1)
assert masks.shape == (len(test_images), 1, SIZE, SIZE), masks.shape
assert torch.isfinite(masks).all() and 0 <= float(masks.min()) and float(masks.max()) <= 1, "masks must lie in [0, 1]"
assert torch.allclose(by_name, masks[:1], atol=1e-5), "a class name must give the mask of its index"
summary = {k: round(float(v.mean()), 3) for k, v in probs.items()}
print("mean over test scenes, rest blurred:", summary)
print("mean over test scenes, rest grey:", {k: round(float(v.mean()), 3) for k, v in grey.items()})
inside = float((masks * test_where).sum() / test_where.sum())
outside = float((masks * ~test_where).sum() / (~test_where).sum())
print(f"mean mask on the pasted photograph {inside:.3f}, on the background {outside:.3f} (ratio {inside / outside:.2f})")
if preset in ("quick", "full"):
    # quick, seeds 0 / 1 / 2: kept - removed 0.172 / 0.145 / 0.168, inside / outside 2.73 / 2.60 / 2.61;
    # an untrained masker (same architecture): kept - removed -0.36, inside / outside 1.02.
    assert summary["kept"] > summary["removed"] + 0.1, "keeping the masked region should keep more of the class than removing it"
    assert inside > 2 * outside, "the masks should lie on the photograph, where the evidence is"
else:  # smoke: 4 steps run every code path; they do not train a useful masker, so nothing is claimed about it
    print(f"smoke preset ({cfg.steps} steps): the checks of quality are not asserted")

n_show = 6
fig, axes = plt.subplots(3, n_show, figsize=(1.9 * n_show, 6))
for j in range(n_show):
    c = int(top1[j])
    axes[0, j].imshow(viz.to_numpy_image(test_images[j]))
    axes[0, j].set_title(f"{CIFAR10_NAMES[c]} {float(probs['image'][j]):.2f}", fontsize=8)
    axes[1, j].imshow(masks[j, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    axes[1, j].set_title(f"mask, area {float(probs['area'][j]):.2f}", fontsize=8)
    axes[2, j].imshow(viz.to_numpy_image(objective.apply_mask(test_images[j : j + 1], masks[j : j + 1], blurred[j : j + 1])[0]))
    axes[2, j].set_title(f"kept {float(probs['kept'][j]):.2f} / removed {float(probs['removed'][j]):.2f}", fontsize=7)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()
viz.save_figure(fig, "own_classifier_masks", pdf=False)

# %% [markdown]
# ## 5. The explorer on it
# Pick a test image, type a class name (completion over our 10 names) or click one of the black box's
# top-3; the view shows the mask and the probabilities with the region kept and removed. Headless runs
# skip this cell.

# %%
if widgets.enabled(interactive):
    import ipywidgets as W

    names = masker.class_index()
    gallery = {f"test scene {j}: {CIFAR10_NAMES[int(test_y[i])]}": test_images[j] for j, i in enumerate(test_idx[:20])}
    picker = widgets.ImagePicker(gallery)
    search = widgets.class_box(names, CIFAR10_NAMES[int(top1[0])])
    top3 = widgets.topk_buttons(search, description="top-3")
    thr = W.FloatSlider(value=0.5, min=0.05, max=0.95, step=0.05, description="threshold")

    def prepare(image: torch.Tensor) -> torch.Tensor:
        return interpolate(image[None], size=(SIZE, SIZE), mode="bilinear", antialias=True).clamp(0, 1)

    def refresh_top3(changed=None, panel=None):
        if changed in (None, "image"):
            p, i = black_box.predict(prepare(picker.get(picker.dropdown.value)), k=3)
            top3.options = [(f"{names.name(int(c))} {float(q):.2f}", names.name(int(c))) for q, c in zip(p[0], i[0])]
            top3.value = None

    def draw_panel(image, class_name, threshold):
        x, c = prepare(picker.get(image)), names.index(class_name)
        with torch.inference_mode():
            m = masker(x, c)
            a = objective.gaussian_blur(x, 10.0 * SIZE / 224)
            p = metrics.evidence_probabilities(black_box, x, m, c, alternative=a)
        fig, axes = plt.subplots(1, 4, figsize=(11, 3))
        viz.show_row(
            axes,
            x[0],
            m[0],
            [
                f"image, p = {float(p['image']):.2f}",
                f"mask ({names.name(c)})",
                f"kept, p = {float(p['kept']):.2f}",
                f"removed, p = {float(p['removed']):.2f}",
            ],
        )
        viz.draw_box(axes[0], metrics.mask_to_box(m, threshold)[0])
        fig.tight_layout()
        return fig

    refresh_top3()
    explorer = widgets.Panel(
        draw_panel, {"image": picker, "class_name": search, "threshold": thr}, on_change=refresh_top3, extra=[top3]
    ).show()
else:
    display(f"headless: the explorer is not built; the masks above are its views ({train_seconds:.0f} s of masker training)")

# %% [markdown]
# **Result.** A classifier the notebook made itself goes through the whole path of the public API (wrap,
# train a masker on unlabelled images, save, load with the weight check, masks, explorer) in a few minutes
# on a CPU, and loading the masker against another model is refused. At `quick` and `full` the notebook
# asserts that the masks keep the evidence (p kept > p removed + 0.1) and lie on the photograph (more than
# twice their mean on the background); at `smoke` it asserts only finite losses and well-formed masks.

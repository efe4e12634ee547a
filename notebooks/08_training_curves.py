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
# # 08 · Training curves of the shipped maskers
#
# Every shipped masker comes with the log its training wrote (`paperlib/checkpoints/<name>.log.jsonl`,
# one line per step) and the exact command (`<name>.json`). This notebook plots each term of the
# objective, the mask area for real and fake labels, and the feature-filter gate, so that anyone
# can see how far training went and whether it had converged.

# %% tags=["parameters"]
preset = "quick"

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd

from paperlib.core import paths
from paperlib.tools import viz

logs = {
    p.name.split(".")[0]: pd.read_json(p, lines=True)
    for p in sorted(paths.CHECKPOINT_DIR.glob("*.log.jsonl"))
    if not p.name.split(".")[0].endswith("_classifier") and not p.name.startswith("voc_")
}  # the maskers' per-step logs
clf_log = paths.CHECKPOINT_DIR / "cifar10_classifier.log.jsonl"
infos = {p.stem: json.loads(p.read_text()) for p in sorted(paths.CHECKPOINT_DIR.glob("*.json"))}
for name, info in infos.items():
    print(f"{name}: {info.get('command', '')}")
assert logs, "no training logs found in paperlib/checkpoints"

# %%
terms = [
    ("loss", "total objective"),
    ("preserve", "preserver term"),
    ("destroy", "destroyer term"),
    ("tv", "TV"),
    ("area_real", "mask area, real labels"),
    ("area_fake", "mask area, fake labels"),
    ("gate_real", "gate max, real"),
    ("gate_fake", "gate max, fake"),
]
fig, axes = plt.subplots(2, 4, figsize=(15, 6))
for ax, (key, title) in zip(axes.flat, terms):
    for name, df in logs.items():
        if key in df:
            ax.plot(df["step"], df[key].rolling(20, min_periods=1).mean(), label=name)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step", fontsize=8)
axes[0, 0].legend(fontsize=7)
fig.tight_layout()
viz.save_figure(fig, "training_curves")

# %%
for name, df in logs.items():
    head, tail = df.head(50), df.tail(50)
    print(
        f"{name}: loss {head['loss'].mean():.3f} -> {tail['loss'].mean():.3f}; area real {tail['area_real'].mean():.2f}, "
        f"fake {tail['area_fake'].mean():.2f} (last 50 steps)"
    )
    assert tail["loss"].mean() < head["loss"].mean(), f"{name}: the objective should have decreased"
    if "area_fake" in tail:  # the paper's fake-label training: an absent class should get a (nearly) empty mask
        real, fake = tail["area_real"].mean(), tail["area_fake"].mean()
        assert fake < 0.6 * real, f"{name}: fake-label masks ({fake:.2f}) are not much smaller than real ones ({real:.2f})"
        print(f"  fake-label masks {'nearly empty' if fake < 0.1 else 'NOT empty'}: {fake:.2f} of the image vs {real:.2f}")

# %% [markdown]
# ## The CIFAR-10 black box
# paperlib trains its own CIFAR-10 classifier (`python -m paperlib.cifar train`); its per-epoch log
# is shipped beside it.

# %%
if clf_log.exists():
    clf = pd.read_json(clf_log, lines=True)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    axes[0].plot(clf["epoch"], clf["train_loss"], marker="o")
    axes[0].set(title="training loss", xlabel="epoch")
    axes[1].plot(clf["epoch"], 100 * clf["train_acc"], marker="o", label="train")
    axes[1].plot(clf["epoch"], 100 * clf["test_acc"], marker="o", label="test")
    axes[1].axhline(92, color="tab:red", ls="--", lw=1, label="paper's FitNet (92 %)")
    axes[1].set(title="accuracy (%)", xlabel="epoch")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    viz.save_figure(fig, "training_curves_cifar10_classifier")
    print(
        f"CIFAR-10 black box: {len(clf)} epochs, test accuracy {100 * clf['test_acc'].iloc[-1]:.2f} %, "
        f"{clf['train_seconds'].iloc[-1] / 60:.0f} min of training"
    )
    assert clf["test_acc"].iloc[-1] > clf["test_acc"].iloc[0], "test accuracy should rise during training"
else:
    print("no CIFAR-10 black box shipped")

# %% [markdown]
# **Result.** The objective decreased for every shipped masker (checked above); the gap between the
# mask area for real and for fake labels shows how well each masker learned to return an empty
# mask for absent classes (the paper's fake-label training).

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
# # 10 · Video saliency (the paper's future work)
#
# **Paper (sec. 6).** Because a mask costs one forward pass, the model "could be used on video
# saliency"; the paper leaves it as future work. Here the shipped Lite0 masker explains every
# frame of a clip. With no camera on this machine, the clip is a slow pan and zoom across a real
# ImageNet validation image (`paperlib.tools.video.pan_zoom_frames`; without ImageNet, a sample photograph); `python -m paperlib.video IN OUT`
# does the same for your own video or folder of frames.

# %% tags=["parameters"]
preset = "quick"
image_index = 5

# %%
from IPython.display import Image as IPImage, display

import paperlib
from paperlib.core import paths
from paperlib.core.data import ImageNetVal
from paperlib.core.errors import DataNotFoundError
from paperlib.experiments import presets
from paperlib.tools import video
from paperlib.tools.sample_images import sample_image, strict

settings = presets.notebook("video_saliency", preset)
masker = paperlib.load_masker("efficientnet_lite0")
try:
    still = ImageNetVal(limit=image_index + 1)[image_index].image
except DataNotFoundError:
    if strict():
        raise
    print("ImageNet validation images not found: the clip pans across scikit-image's cat photograph instead.")
    still = sample_image("chelsea")
clip = video.pan_zoom_frames(still, n_frames=settings.frames, out_size=224)
out = paths.FIGURES_DIR / "video_saliency.gif"
info = video.run_video(masker, list(clip), out, class_name=None, fps=8, progress=False)
print({k: v for k, v in info.items() if k != "path"})
display(IPImage(filename=str(out)))

# %%
from PIL import Image

with Image.open(out) as gif:
    assert gif.n_frames == settings.frames
assert info["frames"] == settings.frames

# %% [markdown]
# **Result.** The annotated clip (mask overlay, class, masks per second measured on this machine)
# is `figures/video_saliency.gif`; the rate it reports is the masker's own, on this hardware.

"""Plotting helpers shared by the notebooks (matplotlib; headless runs use Agg via MPLBACKEND).

The notebooks only call these and :mod:`paperlib`'s computations, so every figure is drawn
the same way and a notebook stays a short list of calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..core.paths import FIGURES_DIR

__all__ = ["to_numpy_image", "overlay", "show_row", "mask_grid", "save_figure", "draw_box"]


def to_numpy_image(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) tensor in [0, 1] -> (H, W, 3) float array."""
    if image.ndim == 4:
        image = image[0]
    return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def overlay(image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.6, cmap: str = "jet") -> np.ndarray:
    """Blend a mask (H, W) or (1, H, W) in [0, 1] over an image as a heat map."""
    img = to_numpy_image(image)
    m = mask.detach().float().squeeze().cpu().numpy()
    heat = plt.get_cmap(cmap)(m)[..., :3]
    return (1 - alpha * m[..., None]) * img + alpha * m[..., None] * heat


def draw_box(ax, box: Sequence[float], color: str = "lime", lw: float = 2.0, label: str | None = None) -> None:
    """Draw an inclusive-pixel (xmin, ymin, xmax, ymax) box on an axis."""
    x0, y0, x1, y1 = [float(v) for v in box]
    ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, ec=color, lw=lw, label=label))


def show_row(axes, image: torch.Tensor, mask: torch.Tensor, titles: Sequence[str] | None = None) -> None:
    """Fill four axes with: image, mask, image x mask, image x (1 - mask)."""
    img = to_numpy_image(image)
    m = mask.detach().float().squeeze().cpu().numpy()[..., None]
    panels = [img, m[..., 0], img * m, img * (1 - m)]
    titles = titles or ["image", "mask", "image x mask", "image x (1 - mask)"]
    for ax, p, t in zip(axes, panels, titles):
        ax.imshow(p, cmap="gray" if p.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(t, fontsize=9)
        ax.axis("off")


def mask_grid(images: torch.Tensor, columns: dict[str, torch.Tensor], row_titles: Sequence[str] | None = None, size: float = 2.0):
    """A grid: one row per image, first column the image, then one overlay per method.

    Args:
        images: (N, 3, H, W).
        columns: method name -> masks (N, 1, H, W) in [0, 1].
        row_titles: One label per row (e.g. the class name).
    """
    n, k = len(images), len(columns) + 1
    fig, axes = plt.subplots(n, k, figsize=(size * k, size * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(to_numpy_image(images[i]))
        if row_titles:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=8)
        for j, (name, masks) in enumerate(columns.items(), start=1):
            axes[i, j].imshow(overlay(images[i], masks[i]))
            if i == 0:
                axes[i, j].set_title(name, fontsize=9)
        if i == 0:
            axes[i, 0].set_title("image", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def save_figure(fig, name: str, folder: Path = FIGURES_DIR, pdf: bool = True) -> Path:
    """Save ``<folder>/<name>.png`` (and ``.pdf``); returns the PNG path."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    if pdf:
        fig.savefig(folder / f"{name}.pdf", bbox_inches="tight")
    return png

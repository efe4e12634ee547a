"""Plotting helpers shared by the notebooks (matplotlib; headless runs use Agg via MPLBACKEND).

The notebooks only call these and :mod:`paperlib`'s computations, so every figure is drawn
the same way and a notebook stays a short list of calls.

* images and grids: :func:`to_numpy_image`, :func:`overlay`, :func:`draw_box`, :func:`show_row`,
  :func:`image_grid` (any panels, one row per image) and :func:`mask_grid` (overlays, built on it),
  :func:`bar_panels` (one bar chart per column group), :func:`save_figure`;
* the PASCAL VOC palette: :func:`voc_palette`, :func:`voc_colours`;
* the figures of the studies, one function per figure: WSSS (notebook 11: ``wsss_*``), the
  recipe ablation (notebook 12: ``ablation_*``, ``recipe_*``, :func:`learning_curve_figure`) and
  the metrics beyond the paper (notebook 14: ``beyond_*``). They import their study lazily, so
  importing this module stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..core.paths import FIGURES_DIR

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .widgets import Panel

__all__ = [
    "to_numpy_image",
    "overlay",
    "show_row",
    "image_grid",
    "mask_grid",
    "bar_panels",
    "save_figure",
    "draw_box",
    "voc_palette",
    "voc_colours",
    "wsss_maps_figure",
    "wsss_pseudo_masks_figure",
    "wsss_selection_figure",
    "wsss_class_selector",
    "wsss_curves_figure",
    "wsss_crops_figure",
    "wsss_time_figure",
    "ablation_rows_figure",
    "ablation_thresholds_figure",
    "ablation_steps_figure",
    "recipe_rows_figure",
    "recipe_images_figure",
    "learning_curve_figure",
    "beyond_faithfulness_figure",
    "beyond_readings_figure",
    "beyond_one_image_figure",
]


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


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    size: tuple[float, float] = (2.0, 2.0),
    cmap: str = "gray",
    title_size: float = 9,
    label_size: float = 8,
) -> Figure:
    """A grid of image panels without ticks: ``rows[i][j]`` is drawn in row ``i``, column ``j``.

    Args:
        rows: One list of panels per row: (H, W, 3) images (float in [0, 1] or uint8) or (H, W)
            maps in [0, 1], drawn with ``cmap`` from 0 to 1.
        titles: Column titles, written above the first row.
        row_labels: One label per row, written left of the first column.
        size: Width and height of one panel in inches.
        cmap: Colour map of the (H, W) panels.
        title_size: Font size of the column titles.
        label_size: Font size of the row labels.

    Returns:
        The figure (``len(rows)`` x longest row axes, laid out tightly).

    Example:
        >>> fig = image_grid([[np.zeros((4, 4)), np.ones((4, 4, 3))]] * 3, titles=["map", "image"])
        >>> len(fig.axes)
        6
    """
    n, k = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n, k, figsize=(size[0] * k, size[1] * n), squeeze=False)
    for i, row in enumerate(rows):
        for j, panel in enumerate(row):
            panel = np.asarray(panel)
            if panel.ndim == 2:
                axes[i, j].imshow(panel, cmap=cmap, vmin=0, vmax=1)
            else:
                axes[i, j].imshow(panel)
        if row_labels:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=label_size)
    for j, title in enumerate(titles or []):
        axes[0, j].set_title(title, fontsize=title_size)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def mask_grid(images: torch.Tensor, columns: dict[str, torch.Tensor], row_titles: Sequence[str] | None = None, size: float = 2.0):
    """A grid: one row per image, first column the image, then one overlay per method.

    Args:
        images: (N, 3, H, W).
        columns: method name -> masks (N, 1, H, W) in [0, 1].
        row_titles: One label per row (e.g. the class name).
    """
    rows = [
        [to_numpy_image(images[i])] + [overlay(images[i], masks[i]) for masks in columns.values()] for i in range(len(images))
    ]
    return image_grid(rows, ["image", *columns], row_titles, size=(size, size))


def bar_panels(
    frame: "pd.DataFrame",
    panels: Sequence[tuple[str | Sequence[str], str]],
    index_name: str = "row",
    figsize: tuple[float, float] = (16, 3.6),
    rotation: float = 45,
) -> Figure:
    """One bar chart per panel, side by side, with the frame's index along x.

    Args:
        frame: One row per bar group (index: the names along x), one column per value.
        panels: ``(column, title)``: plain bars of one column; ``([columns], title)``: one bar per
            column side by side (hue ``metric``, with a legend).
        index_name: Name of the x axis' column once the index is reset.
        figsize: Size of the whole figure in inches.
        rotation: Rotation of the x tick labels.

    Returns:
        The figure, one axis per panel.
    """
    import seaborn as sns

    fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    for ax, (cols, title) in zip(axes[0], panels):
        if isinstance(cols, str):
            sns.barplot(data=frame.reset_index(names=index_name), x=index_name, y=cols, ax=ax, color="C0")
        else:
            long = frame[list(cols)].reset_index(names=index_name).melt(id_vars=index_name, var_name="metric", value_name="value")
            sns.barplot(data=long, x=index_name, y="value", hue="metric", ax=ax)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("")
        ax.tick_params(axis="x", rotation=rotation, labelsize=7)
        if not isinstance(cols, str):
            ax.legend(fontsize=7)
    return fig


def save_figure(fig, name: str, folder: Path = FIGURES_DIR, pdf: bool = True) -> Path:
    """Save ``<folder>/<name>.png`` (and ``.pdf``); returns the PNG path."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    if pdf:
        fig.savefig(folder / f"{name}.pdf", bbox_inches="tight")
    return png


# --------------------------------------------------------------------------- PASCAL VOC palette
def voc_palette() -> np.ndarray:
    """The PASCAL VOC colour palette: (256, 3) uint8, row ``i`` the colour of label ``i``.

    The VOC development kit's ``labelcolormap``: the bits of ``i`` are spread over the high bits of
    red, green and blue (0 background black, 1 aeroplane (128, 0, 0), ..., 255 border (224, 224, 192)).

    Example:
        >>> voc_palette()[[0, 1, 15, 255]].tolist()
        [[0, 0, 0], [128, 0, 0], [192, 128, 128], [224, 224, 192]]
    """
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def voc_colours(labels: torch.Tensor | np.ndarray, ignore: tuple[int, int, int] | None = (255, 255, 255)) -> np.ndarray:
    """A label map (H, W) as (H, W, 3) uint8 VOC palette colours.

    Args:
        labels: Label indices (0 background, 1-20 the classes, 255 the ignored border).
        ignore: Colour of label 255 (default white); None keeps the palette's (224, 224, 192).

    Example:
        >>> voc_colours(torch.tensor([[0, 1, 255]]))[0].tolist()
        [[0, 0, 0], [128, 0, 0], [255, 255, 255]]
    """
    pal = voc_palette()
    if ignore is not None:
        pal[255] = ignore
    arr = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return pal[arr.astype(np.uint8)]


# --------------------------------------------------------------------------- WSSS study (notebook 11)
def _short_methods(titles: Mapping[str, str] | None) -> Mapping[str, str]:
    if titles is not None:
        return titles
    from ..experiments.wsss.report import SHORT_METHODS

    return SHORT_METHODS


def _with_classes(maps: Mapping[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, v) for k, v in maps.items() if v["classes"]]


def _gt_overlay(m: Mapping[str, Any], c: int) -> np.ndarray:
    return np.clip(overlay(m["image"], (m["gt"] == c + 1).float(), alpha=0.5), 0, 1)


def wsss_maps_figure(maps: Mapping[str, dict[str, Any]], keys: Sequence[str], titles: Mapping[str, str] | None = None) -> Figure:
    """The WSSS study's maps side by side, one row per image that has a class (its first class).

    Columns: the image, the ground-truth region of the class, then each method's map after the
    per-class 99.5th-percentile normalisation (magma, black 0, white 1).

    Args:
        maps: ``result["maps"]`` of :func:`paperlib.experiments.wsss.run`: image id -> ``{"image",
            "gt", "classes", <method>: (C, H, W) maps}``.
        keys: The methods shown, in order.
        titles: Method -> column title (default :data:`paperlib.experiments.wsss.report.SHORT_METHODS`).
    """
    from ..core.data import VOC_CLASSES
    from ..experiments.wsss.pseudo_masks import normalise_class_maps

    titles = _short_methods(titles)
    rows, labels = [], []
    for image_id, m in _with_classes(maps):
        c = m["classes"][0]
        rows.append([to_numpy_image(m["image"]), _gt_overlay(m, c)] + [normalise_class_maps(m[k][:1])[0].numpy() for k in keys])
        labels.append(f"{image_id}\n{VOC_CLASSES[c]}")
    columns = ["image", "ground truth"] + [titles[k] for k in keys]
    return image_grid(rows, columns, labels, size=(1.8, 1.6), cmap="magma", title_size=8, label_size=7)


def wsss_pseudo_masks_figure(
    maps: Mapping[str, dict[str, Any]],
    keys: Sequence[str],
    best_t: Mapping[str, float],
    subtract: float,
    quantile: float,
    titles: Mapping[str, str] | None = None,
) -> Figure:
    """Each method's pseudo-mask at its threshold beside the ground truth (VOC palette), one row per image.

    Args:
        maps: ``result["maps"]`` of :func:`paperlib.experiments.wsss.run`.
        keys: The methods shown, in order.
        best_t: Method -> background threshold ``t`` of its pseudo-mask.
        subtract: Weight of the multi-class subtraction (the run's ``cfg.subtract``).
        quantile: Per-class normalisation percentile (the run's ``cfg.quantile``).
        titles: Method -> column title (default ``SHORT_METHODS``).
    """
    from ..core.data import VOC_CLASSES
    from ..experiments.wsss.pseudo_masks import pseudo_mask

    titles = _short_methods(titles)
    rows, labels = [], []
    for _, m in _with_classes(maps):
        pms = [pseudo_mask(m[k], m["classes"], best_t[k], subtract=subtract, quantile=quantile) for k in keys]
        rows.append([to_numpy_image(m["image"]), voc_colours(m["gt"])] + [voc_colours(pm) for pm in pms])
        labels.append(", ".join(VOC_CLASSES[c] for c in m["classes"]))
    columns = ["image", "ground truth"] + [f"{titles[k]}\nt = {best_t[k]:.2f}" for k in keys]
    return image_grid(rows, columns, labels, size=(1.8, 1.6), title_size=8, label_size=7)


def wsss_selection_figure(m: Mapping[str, Any], c: int, keys: Sequence[str], titles: Mapping[str, str] | None = None) -> Figure:
    """One image and class of the WSSS study: the ground-truth region, then every method's normalised map.

    Args:
        m: ``{"image", "gt", "classes", "id", <method>: (C, H, W) maps}`` (one entry of the run's maps).
        c: The class (0-based VOC index, one of ``m["classes"]``).
        keys: The methods shown, in order.
        titles: Method -> panel title (default ``SHORT_METHODS``).
    """
    from ..core.data import VOC_CLASSES
    from ..experiments.wsss.pseudo_masks import normalise_class_maps

    titles = _short_methods(titles)
    j = m["classes"].index(c)
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(2.2 * (len(keys) + 1), 2.3))
    axes[0].imshow(_gt_overlay(m, c))
    axes[0].set_title(f"{m['id']}: {VOC_CLASSES[c]}", fontsize=8)
    for ax, key in zip(axes[1:], keys):
        ax.imshow(normalise_class_maps(m[key][j : j + 1])[0].numpy(), cmap="magma", vmin=0, vmax=1)
        ax.set_title(titles[key], fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def wsss_class_selector(
    ds: Any,
    keys: Sequence[str],
    maps_for: Callable[[int], Mapping[str, Any]],
    titles: Mapping[str, str] | None = None,
) -> "Panel":
    """A panel to pick a VOC image and one of its classes; draws :func:`wsss_selection_figure`.

    Maps are computed on demand by ``maps_for`` and cached. Call ``.show()`` on the result.

    Args:
        ds: The VOC images (``ids``, ``len``, ``ds[i].labels`` a 20-vector of present classes).
        keys: The methods shown, in order.
        maps_for: Index into ``ds`` -> ``{"image", "gt", "classes", "id", <method>: maps}``, e.g.
            :func:`paperlib.experiments.wsss.report.sample_maps` with the models bound.
        titles: Method -> panel title (default ``SHORT_METHODS``).
    """
    import ipywidgets as W

    from ..core.data import VOC_CLASSES
    from .widgets import Panel

    cache: dict[int, Mapping[str, Any]] = {}

    def maps_of(i: int) -> Mapping[str, Any]:
        if i not in cache:
            cache[i] = maps_for(i)
        return cache[i]

    labelled = [i for i in range(len(ds)) if ds[i].labels.sum() > 0]
    pick = W.Dropdown(options=[(ds.ids[i], i) for i in labelled], value=labelled[0], description="image")
    cls = W.Dropdown(description="class")

    def set_classes(*_: Any) -> None:
        present = [int(c) for c in torch.nonzero(ds[pick.value].labels).flatten()]
        cls.options = [(VOC_CLASSES[c], c) for c in present]
        cls.value = present[0]

    set_classes()
    return Panel(
        lambda image, c: wsss_selection_figure(maps_of(image), c, keys, titles),
        {"image": pick, "c": cls},
        on_change=lambda name, _: set_classes() if name == "image" else None,
    )


def wsss_curves_figure(result: Mapping[str, Any]) -> Figure:
    """mIoU, FG precision and NDR recall of every method against the background threshold ``t``."""
    import pandas as pd
    import seaborn as sns

    from ..experiments.wsss.config import METHODS

    long = []
    for key, s in result["methods"].items():
        if "@" in key:
            continue
        cur = s["curves"]
        for i, t in enumerate(cur["t"]):
            for metric in ("mIoU", "FG precision", "NDR recall"):
                long.append({"method": METHODS[key], "t": t, "metric": metric, "value": cur[metric][i]})
    g = sns.relplot(
        data=pd.DataFrame(long),
        x="t",
        y="value",
        hue="method",
        col="metric",
        kind="line",
        height=3.2,
        aspect=1.05,
        facet_kws={"sharey": False},
    )
    g.set_titles("{col_name} (%)")
    title = f"{result['preset']} preset, {result['images_scored']} VOC images, tau = {result['config']['tau']}"
    g.figure.suptitle(title, y=1.03, fontsize=10)
    return g.figure


def wsss_crops_figure(result: Mapping[str, Any]) -> Figure:
    """mIoU of the weighted crop map against the number of crops (best ``t`` and ``t = 0.1``), CAM's as a line."""
    import pandas as pd
    import seaborn as sns

    sweep = pd.DataFrame(result["crop_sweep"])
    sw = sweep.melt(id_vars="n_crops", value_vars=["mIoU (best t)", "mIoU (t = 0.1)"], var_name="threshold", value_name="mIoU")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sns.lineplot(data=sw, x="n_crops", y="mIoU", hue="threshold", marker="o", ax=ax)
    cam_best = {r["key"]: r for r in result["rows"]}["cam"]["mIoU"]
    ax.axhline(cam_best, color="grey", ls="--", lw=1, label=f"CAM, best t ({cam_best:.1f})")
    ax.set(xscale="log", xlabel="crops per (image, class)", ylabel="mIoU (%)", title=f"{result['preset']} preset")
    ax.set_xticks(sweep["n_crops"].tolist(), [str(n) for n in sweep["n_crops"]])
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def wsss_time_figure(times: "pd.DataFrame", title: str) -> Figure:
    """Seconds per map of each method (horizontal bars, log scale).

    Args:
        times: Columns ``method`` and ``seconds per map``.
        title: Axis title (what was run, on how many threads).
    """
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(5, 2.6))
    sns.barplot(data=times, y="method", x="seconds per map", ax=ax, color="tab:blue")
    ax.set(xscale="log", title=title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- recipe ablation (notebook 12)
def ablation_rows_figure(table: "pd.DataFrame") -> Figure:
    """The ablation's tuning criteria and reported error, one bar per row (``ablation.table_rows``)."""
    panels = [
        ("saliency", "tuning: saliency metric (lower = better)"),
        ("area", "tuning: mean mask area"),
        ("holes", "tuning: holes per mask (speckle)"),
        ("val err @0.5", "reported: val loc. error % (t = 0.5)"),
    ]
    return bar_panels(table, panels, index_name="row", figsize=(16, 3.6), rotation=45)


def ablation_thresholds_figure(table: "pd.DataFrame", prefix: str = "val err @") -> Figure:
    """Localisation error of each row against the mask threshold (the columns ``<prefix><t>``)."""
    import seaborn as sns

    long = table.reset_index(names="row")
    calib = long.melt(id_vars="row", value_vars=[c for c in table if c.startswith(prefix)], var_name="t", value_name="error")
    calib["t"] = calib["t"].str.replace(prefix, "").astype(float)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    sns.lineplot(data=calib, x="t", y="error", hue="row", marker="o", ax=ax)
    ax.set_title("reported: val localisation error vs mask threshold", fontsize=9)
    ax.set_xlabel("threshold t (paper: 0.5)")
    return fig


def ablation_steps_figure(table: "pd.DataFrame") -> Figure:
    """Localisation error at 0.5 of each row against its total training steps."""
    import seaborn as sns

    steps = table.reset_index(names="row").sort_values("steps")
    fig, ax = plt.subplots(figsize=(5, 3.4))
    sns.scatterplot(data=steps, x="steps", y="val err @0.5", hue="row", s=60, ax=ax)
    ax.set_title("reported: val localisation error % vs total training steps", fontsize=9)
    return fig


def recipe_rows_figure(table: "pd.DataFrame", spread: float, base: str = "base") -> Figure:
    """The from-scratch recipe rows (``ablation.recipe_rows``): error, saliency metric and islands per row.

    Args:
        table: One row per recipe, with columns ``val err 1-500``, ``saliency (Flickr)``, ``islands``.
        spread: How far a second seed of the base recipe moved the error: a grey band around the base.
        base: The reference row (a dashed line in every panel); rows named ``base*`` are grey.
    """
    panels = [
        ("val err 1-500", "val localisation error % (t = 0.5)"),
        ("saliency (Flickr)", "saliency metric, Flickr tuning split"),
        ("islands", "islands per mask (speckle)"),
    ]
    order = list(table.index)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    for ax, (col, title) in zip(axes, panels):
        vals = table[col].astype(float)
        ax.bar(order, vals, color=["C7" if n.startswith("base") else "C0" for n in order])
        ax.axhline(vals[base], color="k", lw=0.8, ls="--")
        if col == "val err 1-500":
            ax.axhspan(vals[base] - spread, vals[base] + spread, color="0.85", zorder=0, label="base ± seed spread")
            ax.legend(fontsize=7)
            ax.set_ylim(30, vals.max() + 3)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    return fig


def recipe_images_figure(rows: Mapping[str, dict[str, Any]], curve: Mapping[int, str]) -> Figure:
    """Localisation error against the number of distinct training images.

    Args:
        rows: Recipe rows (``recipe_200.json``'s ``rows``) with ``val_error`` and ``tune_error``.
        curve: Distinct training images -> row name (``ablation.image_curve``).
    """
    xs = sorted(curve)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(xs, [rows[curve[x]]["val_error"]["0.5"] for x in xs], "o-", label="val 1-500")
    ax.plot(xs, [rows[curve[x]]["tune_error"]["0.5"] for x in xs], "s--", label="tune 401-500")
    ax.set_xlabel("distinct training images (200 steps of 16 each)")
    ax.set_ylabel("localisation error %")
    ax.set_title("learning curve over distinct images (Lite0)", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def learning_curve_figure(
    points: Sequence[Mapping[str, Any]], earlier: Sequence[Mapping[str, Any]], budget: int = 192_000
) -> Figure:
    """Tuning error of the long run's snapshots against image passes, beside the earlier rows.

    Args:
        points: The long run's ``curve.json`` points: ``passes`` and ``tune_error`` (threshold -> %).
        earlier: :func:`paperlib.experiments.curve.earlier_points`: ``passes``, ``tune_error``, ``recipe``.
        budget: The authors' number of image passes (a dotted line).
    """
    import pandas as pd

    fig, ax = plt.subplots(figsize=(7, 4))
    for recipe, grp in pd.DataFrame(list(earlier)).groupby("recipe"):
        ax.scatter(grp["passes"], grp["tune_error"], label=f"earlier rows ({recipe} objective)", alpha=0.6)
    passes = [p["passes"] for p in points]
    ax.plot(passes, [p["tune_error"]["0.5"] for p in points], "o-", color="C3", label="authors' recipe, t = 0.5")
    ax.plot(passes, [min(p["tune_error"].values()) for p in points], "x--", color="C3", alpha=0.6, label="same, best threshold")
    ax.axvline(budget, color="grey", ls=":", label=f"authors' budget ({budget // 1000}k)")
    ax.set(xscale="log", xlabel="image passes (steps x batch)", ylabel="loc. error % on val 401-500 (tuning)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- beyond the paper (notebook 14)
def beyond_faithfulness_figure(result: Mapping[str, Any]) -> Figure:
    """Deletion AUC, insertion AUC (blur and grey) and pointing accuracy of each method of a beyond run."""
    import pandas as pd

    from ..experiments.beyond import LABELS

    maps = pd.DataFrame(result["maps"]).T.rename(index=LABELS)
    panels = [
        (["deletion_blur", "deletion_grey"], "deletion AUC (lower = more faithful)"),
        (["insertion_blur", "insertion_grey"], "insertion AUC (higher = more faithful)"),
        (["pointing"], "pointing game accuracy"),
    ]
    fig = bar_panels(maps, panels, index_name="method", figsize=(14, 3.4), rotation=40)
    fig.suptitle(f"{result['data']}, preset {result['preset']}", fontsize=9)
    return fig


def beyond_readings_figure(result: Mapping[str, Any]) -> Figure:
    """The saliency metric of each box under the three readings (squash, pad, blur) of a beyond run."""
    import pandas as pd
    import seaborn as sns

    from ..experiments.beyond import LABELS, READINGS

    boxes = pd.DataFrame(result["boxes"]).T.rename(index=LABELS)
    long = boxes[list(READINGS)].reset_index(names="box").melt(id_vars="box", var_name="reading", value_name="s(a, p)")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.pointplot(data=long, x="reading", y="s(a, p)", hue="box", ax=ax)
    ax.set_title("saliency metric of each box, read three ways (lower = better)", fontsize=9)
    return fig


def beyond_one_image_figure(
    batch: Any,
    i: int = 0,
    *,
    black_box: torch.nn.Module,
    masker: torch.nn.Module | None,
    methods: Sequence[str],
    steps: int,
    mask_iterations: int = 300,
    occlusion_window: int | None = None,
) -> Figure:
    """Each method's map of one image (top) and its deletion (-) and insertion (--) curves (bottom).

    Args:
        batch: Validation images: ``batch.images`` (N, 3, H, W) and ``batch.labels`` (N,).
        i: The image.
        black_box: The classifier whose probability the curves follow.
        masker: The masking model (needed when ``"masker"`` is a method).
        methods: Methods of :func:`paperlib.experiments.beyond.method_maps`, one column each.
        steps: Points per curve minus one.
        mask_iterations: Steps of the iterative Mask (``"mask"``).
        occlusion_window: Side of the occlusion square (``None``: H / 7).
    """
    from ..core import faithfulness as fa
    from ..experiments.beyond import LABELS, method_maps

    x, y = batch.images[i : i + 1], batch.labels[i : i + 1]
    fig, ax = plt.subplots(2, len(methods), figsize=(2.2 * len(methods), 4.6), squeeze=False)
    for j, m in enumerate(methods):
        sal = method_maps(m, x, y, black_box, masker, mask_iterations=mask_iterations, occlusion_window=occlusion_window)
        ax[0, j].imshow(sal[0, 0], cmap="magma")
        ax[0, j].set_title(LABELS[m], fontsize=8)
        ax[0, j].axis("off")
        for fn, style in ((fa.deletion_curve, "-"), (fa.insertion_curve, "--")):
            c = fn(black_box, x, sal, y, steps=steps)[0]
            ax[1, j].plot(torch.linspace(0, 1, steps + 1), c, style)
        ax[1, j].set_ylim(0, 1)
        ax[1, j].set_xlabel("share of pixels", fontsize=7)
    ax[1, 0].set_ylabel("p(class): deletion -, insertion --", fontsize=7)
    return fig


def fig2_regions_figure(photos: Sequence[Any], sweeps: Mapping[str, Mapping[str, Any]], blur_sigma: float = 10.0) -> Figure:
    """Fig. 2: per photograph, the SSR, SDR and eq. 4 masks with the images the black box sees.

    One row per photograph: the image with f_c(X); the SSR mask (its target area a and its mean) and the image with only it
    kept; the SDR mask and the image with it removed; the eq. 4 ("both") mask with the kept and the
    removed image. The rest of each perturbed image is the blurred photograph (sigma = ``blur_sigma``
    px at 224 px), as in the optimisation, and every perturbed image is titled with f_c of it.

    Args:
        photos: :class:`paperlib.tools.sample_images.Photo` items (name, image (1, 3, H, W), label).
        sweeps: ``{photo name: {mode: RegionSweep}}`` from
            :func:`paperlib.experiments.extremal.smallest_regions` (modes ssr, sdr, both).
        blur_sigma: Sigma of the alternative image, in px at 224 px.
    """
    from ..core.objective import apply_mask, gaussian_blur

    fig, axes = plt.subplots(len(photos), 8, figsize=(16, 2.15 * len(photos)), squeeze=False)
    for row, photo in zip(axes, photos):
        x = photo.image
        alt = gaussian_blur(x, blur_sigma * x.shape[-2] / 224.0)
        sw = sweeps[photo.name]
        p0 = next(iter(sw.values())).p_original
        panels = [(to_numpy_image(x), f"{photo.name}: p = {p0:.2f}", None)]
        for mode, label in (("ssr", "SSR"), ("sdr", "SDR"), ("both", "eq. 4")):
            r = sw[mode]
            m = r.mask[None]
            i = r.chosen
            panels.append((m[0, 0].numpy(), f"{label}: a = {r.areas[i]:.1%}, mean {r.mean_area[i]:.2f}", "gray"))
            if mode in ("ssr", "both"):
                panels.append((to_numpy_image(apply_mask(x, m, alt)), f"{label} kept: p = {p0 * r.kept[i]:.2f}", None))
            if mode in ("sdr", "both"):
                panels.append((to_numpy_image(apply_mask(x, 1 - m, alt)), f"{label} removed: p = {p0 * r.removed[i]:.2f}", None))
        for ax, (img, title, cmap) in zip(row, panels):
            ax.imshow(img, cmap=cmap, vmin=0, vmax=1)
            ax.set_title(title, fontsize=8.5)
            ax.axis("off")
    fig.tight_layout()
    return fig

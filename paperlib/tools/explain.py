"""``paperlib explain``: masks for your photographs from the command line, with overlays to look at.

``paperlib explain cat.jpg photos/ --out out/`` classifies every image with the masker's black box and
explains its top-1 class from one backbone pass (:class:`~paperlib.core.explainer.Explainer`);
``--class "tabby cat"`` explains a given class instead, ``--top-k 3`` the three most probable. For every
(image, class) it writes ``<image>_<class>_overlay.png`` (the mask as a heat map over the image, the
class and its probability), ``<image>_<class>_mask.png`` (8-bit grey) and ``<image>_<class>_mask.npy``
(float32, the image's size), and ``explanations.json`` with the class, probability, mask area and the
box at the masker's threshold (its tuned ``masker.threshold``, else the paper's 0.5; ``null`` when no
pixel is above it: the masker finds no evidence of the class). Folders are
searched recursively for images; a progress bar follows them. Videos: ``paperlib video``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..core import metrics
from ..core._common import atomic_write_text
from ..core.data import IMAGE_EXTENSIONS, load_image, to_tensor
from ..core.errors import DataNotFoundError, InputError, one_line_errors
from ..core.explainer import Explainer, load_explainer
from .video import annotate

__all__ = ["find_images", "explain_files", "main"]


def find_images(paths: Sequence[str | Path]) -> list[Path]:
    """Image files among ``paths`` (files as given; folders searched recursively, sorted)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.is_file():
            found.append(p)
        else:
            raise DataNotFoundError(f"{p} does not exist: give image files or folders of images.")
    if not found:
        raise DataNotFoundError(f"No images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {', '.join(map(str, paths))}.")
    return found


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:40] or "class"


def explain_files(
    explainer: Explainer,
    images: Sequence[Path],
    out: str | Path,
    *,
    class_name: str | int | None = None,
    top_k: int | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Explain each image and write its overlays, masks and ``explanations.json`` into ``out``.

    Returns:
        One record per (image, class): ``image``, ``class``, ``class_index``, ``probability``,
        ``mask_area``, ``box`` (x0, y0, x1, y1 in the image's pixels), ``threshold`` and the files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    masker, bb = explainer.masker, explainer.black_box
    names = masker.class_index().names
    t = masker.threshold if getattr(masker, "threshold", None) is not None else 0.5
    records: list[dict[str, Any]] = []
    for path in tqdm(images, desc="explain", unit="image", disable=not progress or len(images) < 2):
        x = to_tensor(load_image(path))[None]
        logits, masks, classes = explainer(x, classes=class_name, top_k=top_k)
        probs = bb.probabilities(logits)[0]
        cls_list = classes.reshape(-1).tolist()
        for j, c in enumerate(cls_list):
            m = masks[0, j]
            label = names[c]
            stem = f"{path.stem}_{_slug(label)}"
            box_t, empty = metrics.mask_to_box(m[None, None], t, return_empty=True)
            box = None if bool(empty[0]) else [round(v, 1) for v in box_t[0].tolist()]  # None: nothing above t
            annotate(x[0], m, f"{label} (p={float(probs[c]):.2f})").save(out / f"{stem}_overlay.png")
            Image.fromarray((m.clamp(0, 1).numpy() * 255).round().astype(np.uint8), "L").save(out / f"{stem}_mask.png")
            np.save(out / f"{stem}_mask.npy", m.numpy().astype(np.float32))
            records.append(
                {
                    "image": str(path),
                    "class": label,
                    "class_index": int(c),
                    "probability": round(float(probs[c]), 4),
                    "mask_area": round(float(m.mean()), 4),
                    "box": box,
                    "threshold": t,
                    "files": [f"{stem}_overlay.png", f"{stem}_mask.png", f"{stem}_mask.npy"],
                }
            )
    atomic_write_text(json.dumps(records, indent=1) + "\n", out / "explanations.json")
    return records


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """``paperlib explain IMAGE_OR_FOLDER ... [--masker NAME|PATH] [--class NAME | --top-k K] [--out DIR]``."""
    ap = argparse.ArgumentParser(prog="paperlib explain", description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="image files or folders of images")
    ap.add_argument("--masker", default="efficientnet_lite0", help="a shipped masker's name or a masker file")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--class", dest="class_name", default=None, help="class to explain (name or index); default: top-1")
    group.add_argument("--top-k", type=int, default=None, help="explain the k most probable classes of each image")
    ap.add_argument("--out", default="explanations", help="output folder (default: ./explanations)")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    with one_line_errors("paperlib explain"):
        if a.top_k is not None and a.top_k < 1:
            raise InputError(f"--top-k must be at least 1, got {a.top_k}.")
        cls: Any = int(a.class_name) if a.class_name is not None and a.class_name.isdigit() else a.class_name
        explainer = load_explainer(a.masker)
        with torch.inference_mode():
            records = explain_files(
                explainer, find_images(a.inputs), a.out, class_name=cls, top_k=a.top_k, progress=not a.no_progress
            )
    for r in records:
        print(f"{r['image']}: {r['class']} (p={r['probability']:.2f}), mask area {r['mask_area']:.2f}, box {r['box']}")
    print(f"wrote {len(records)} explanations to {a.out}/ (explanations.json, *_overlay.png, *_mask.png, *_mask.npy)")
    return records


if __name__ == "__main__":
    main()

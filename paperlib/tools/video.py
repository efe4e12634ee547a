"""Video saliency: the masking model on every frame of a clip (the paper's "future work", section 6).

The paper notes that a model that runs in real time "can be used for video saliency detection to
instantly explain decisions made by black-box classifiers". This module does that, frame by frame
and batched: read a clip, explain every frame for one class, draw the mask as a heat overlay with
the class name and the measured masks per second, and write an animated GIF (or an MP4 when a
video encoder is available).

There is no camera here, so :func:`pan_zoom_frames` makes a synthetic clip from one real image
(a slow pan and zoom). Command line::

    python -m paperlib.video INPUT OUTPUT [--black-box efficientnet_lite0] [--class NAME] [--fps 12]
    python -m paperlib.video --demo IMAGE OUTPUT          # synthetic pan-and-zoom clip of IMAGE

INPUT is a folder of frames (sorted by name), a GIF, a single image, or a video file (the latter
needs PyAV: ``pip install av``). The masker is the shipped one of ``--black-box`` (or ``--masker
PATH``); ``--class`` defaults to the black box's top-1 class on the first frame.

Frames are explained independently (no temporal smoothing): flicker between frames shows how
stable the masker is under small changes of view.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont, ImageSequence
from tqdm.auto import tqdm

from ..core._common import module_device
from ..core.classes import class_index
from ..core.classifiers import load_classifier
from ..core.data import IMAGE_EXTENSIONS, load_image, to_tensor
from ..core.errors import DataNotFoundError, InputError, UnknownModelError
from ..core.explainer import Explainer
from ..core.storage import load_masker, shipped_maskers
from .realtime import CANDIDATES, fast_masker

__all__ = [
    "explain_frames",
    "explain_frames_top1",
    "annotate",
    "write_gif",
    "write_video",
    "read_frames",
    "pan_zoom_frames",
    "run_video",
    "main",
]

PathLike = str | os.PathLike


# --------------------------------------------------------------------------- explaining


def _check_frame(frame: Any, i: int) -> torch.Tensor:
    if not isinstance(frame, torch.Tensor) or frame.ndim != 3 or frame.shape[0] != 3 or not frame.is_floating_point():
        shape = tuple(frame.shape) if isinstance(frame, torch.Tensor) else type(frame).__name__
        raise InputError(f"Frame {i} must be a float tensor (3, H, W) in [0, 1], got {shape}.")
    return frame


def _frame_classes(classes: Any, start: int, n: int) -> Any:
    """The classes of frames ``start .. start + n``: one class for all, or a per-frame sequence."""
    if isinstance(classes, bool):
        raise InputError("classes must be a class index or name, not a bool.")
    if isinstance(classes, int) or (isinstance(classes, torch.Tensor) and classes.ndim == 0):
        return torch.full((n,), int(classes), dtype=torch.long)
    if isinstance(classes, str):
        return classes
    return classes[start : start + n]


def explain_frames(
    masker: torch.nn.Module,
    frames: Iterable[torch.Tensor],
    classes: Any,
    *,
    batch_size: int = 8,
    size: int | tuple[int, int] | None = None,
    progress: bool = True,
    stats: dict[str, float] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Explain a stream of frames with a masker, ``batch_size`` frames per forward pass.

    Args:
        masker: ``masker(images, classes) -> masks`` (a :class:`~paperlib.masker.Masker`), in eval mode.
        frames: Tensors (3, H, W) in [0, 1]; consecutive frames of the same size are batched.
        classes: One class for every frame (index or name), or one per frame (a sequence or tensor).
        batch_size: Frames per forward pass.
        size: Resize frames to this (int: square) for the masker; masks are resized back to the
            frame size. ``None`` feeds the frames as they are.
        progress: Show a tqdm progress bar.
        stats: If given, updated in place with ``frames`` and ``seconds`` (masker time only,
            synchronised on CUDA), so a caller can show the running masks per second.

    Yields:
        ``(frame, mask)``: the frame as given and its mask (1, H, W) in [0, 1], on the CPU.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}.")
    device = module_device(masker)
    if stats is not None:
        stats.setdefault("frames", 0)
        stats.setdefault("seconds", 0.0)
    total = len(frames) if hasattr(frames, "__len__") else None  # type: ignore[arg-type]
    bar = tqdm(total=total, desc="explain frames", unit="frame", disable=not progress)
    target = (size, size) if isinstance(size, int) else (tuple(size) if size is not None else None)

    def run(buf: list[torch.Tensor], start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batch = torch.stack(buf).to(device, torch.float32)
        x = batch
        if target is not None and tuple(x.shape[-2:]) != target:
            shrink = min(x.shape[-2:]) > min(target)
            x = F.interpolate(x, size=target, mode="bilinear", align_corners=False, antialias=shrink).clamp(0, 1)
        t0 = time.perf_counter()
        with torch.inference_mode():
            masks = masker(x, _frame_classes(classes, start, len(buf)))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        if tuple(masks.shape[-2:]) != tuple(batch.shape[-2:]):
            masks = F.interpolate(masks, size=batch.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
        masks = masks.float().cpu()
        if stats is not None:
            stats["frames"] += len(buf)
            stats["seconds"] += dt
        bar.update(len(buf))
        for frame, mask in zip(buf, masks):
            yield frame, mask

    buf: list[torch.Tensor] = []
    start = 0
    try:
        for i, frame in enumerate(frames):
            frame = _check_frame(frame, i)
            if buf and (len(buf) == batch_size or frame.shape != buf[0].shape):
                yield from run(buf, start)
                start, buf = start + len(buf), []
            buf.append(frame)
        if buf:
            yield from run(buf, start)
    finally:
        bar.close()


def explain_frames_top1(
    explainer: Explainer,
    frames: Iterable[torch.Tensor],
    *,
    batch_size: int = 8,
    progress: bool = True,
    stats: dict[str, float] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, int, float]]:
    """Classify every frame and explain its top-1 class, from one backbone pass per batch of frames.

    Args:
        explainer: A :class:`~paperlib.core.explainer.Explainer` (one pass when the masker's encoder is
            the black box's backbone).
        frames: Tensors (3, H, W) in [0, 1]; consecutive frames of the same size are batched.
        batch_size, progress, stats: As for :func:`explain_frames` (``stats`` times the explainer:
            classification and mask together).

    Yields:
        ``(frame, mask (1, H, W), class index, its probability)``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}.")
    device = module_device(explainer.masker)
    if stats is not None:
        stats.setdefault("frames", 0)
        stats.setdefault("seconds", 0.0)
    total = len(frames) if hasattr(frames, "__len__") else None  # type: ignore[arg-type]
    bar = tqdm(total=total, desc="classify and explain frames", unit="frame", disable=not progress)

    def run(buf: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor, int, float]]:
        x = torch.stack(buf).to(device, torch.float32)
        t0 = time.perf_counter()
        logits, masks, classes = explainer(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if stats is not None:
            stats["frames"] += len(buf)
            stats["seconds"] += time.perf_counter() - t0
        probs = explainer.black_box.probabilities(logits).gather(1, classes[:, None])[:, 0]
        bar.update(len(buf))
        for frame, mask, c, p in zip(buf, masks.float().cpu(), classes.tolist(), probs.tolist()):
            yield frame, mask, int(c), float(p)

    buf: list[torch.Tensor] = []
    try:
        for i, frame in enumerate(frames):
            frame = _check_frame(frame, i)
            if buf and (len(buf) == batch_size or frame.shape != buf[0].shape):
                yield from run(buf)
                buf = []
            buf.append(frame)
        if buf:
            yield from run(buf)
    finally:
        bar.close()


# --------------------------------------------------------------------------- drawing
def _font(height: int) -> ImageFont.ImageFont:
    size = max(10, height // 18)
    try:
        return ImageFont.load_default(size=size)  # scalable when Pillow has FreeType (>= 10.1)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def _label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font: ImageFont.ImageFont, *, anchor: str) -> None:
    box = draw.textbbox(xy, text, font=font, anchor=anchor)
    draw.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill=(0, 0, 0))
    draw.text(xy, text, font=font, fill=(255, 255, 255), anchor=anchor)


def annotate(frame: torch.Tensor, mask: torch.Tensor, label: str, fps: float | None = None, *, alpha: float = 0.5) -> Image.Image:
    """The frame with the mask as a semi-transparent heat overlay, the class name and the masks/s.

    Args:
        frame: (3, H, W) in [0, 1].
        mask: (H, W), (1, H, W) or (1, 1, H, W) in [0, 1]; resized to the frame if needed.
        label: Text drawn at the top left (e.g. the explained class).
        fps: Masks per second drawn at the bottom left; ``None`` draws nothing there.
        alpha: Opacity of the heat map where the mask is 1 (it fades to 0 where the mask is 0).

    Returns:
        An RGB PIL image of the frame's size.
    """
    frame = _check_frame(frame, 0).detach().float().clamp(0, 1).cpu()
    h, w = frame.shape[-2:]
    m = mask.detach().float().cpu()
    while m.ndim < 4:
        m = m[None]
    if m.shape[0] != 1 or m.shape[1] != 1:
        raise InputError(f"mask must be (H, W), (1, H, W) or (1, 1, H, W), got {tuple(mask.shape)}.")
    if tuple(m.shape[-2:]) != (h, w):
        m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
    m = m[0, 0].clamp(0, 1).numpy()
    img = frame.permute(1, 2, 0).numpy()
    heat = colormaps["jet"](m)[..., :3]
    a = alpha * m[..., None]
    out = Image.fromarray(np.round(255 * ((1 - a) * img + a * heat)).clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(out)
    font = _font(h)
    if label:
        _label(draw, (4, 3), label, font, anchor="la")
    if fps is not None:
        _label(draw, (4, h - 3), f"{fps:.1f} masks/s", font, anchor="ld")
    return out


# --------------------------------------------------------------------------- writing
def write_gif(images: Sequence[Image.Image], path: PathLike, fps: float = 12.0) -> Path:
    """Write images as a looping animated GIF (atomically) at ``fps`` frames per second.

    GIF stores frame durations in hundredths of a second, so the rate is rounded (12 fps -> 80 ms).
    """
    if not images:
        raise InputError("write_gif needs at least one image.")
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps!r}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [im.convert("RGB") for im in images]
    duration = max(20, int(round(100.0 / fps)) * 10)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_with_pyav(images: Sequence[Image.Image], path: Path, fps: float) -> None:
    """Encode RGB images as H.264 (or MPEG-4 part 2) with PyAV; even sizes are required by yuv420p."""
    from fractions import Fraction

    import av  # type: ignore[import-not-found]  # optional (not in the lock file): imported only to write video

    w, h = images[0].size
    w2, h2 = w - w % 2, h - h % 2
    with av.open(str(path), mode="w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
        for im in images:
            arr = np.asarray(im.convert("RGB"))[:h2, :w2]
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_video(images: Sequence[Image.Image], path: PathLike, fps: float = 12.0) -> Path:
    """Write images as a video; returns the path actually written.

    A ``.gif`` path is written with PIL. Other suffixes (``.mp4``, ...) use
    ``torchvision.io.write_video`` when this torchvision has it, else PyAV directly; both need
    PyAV (``pip install av``). If neither works, a GIF is written next to ``path`` (same name,
    ``.gif`` suffix) with a warning that says why.
    """
    if not images:
        raise InputError("write_video needs at least one image.")
    path = Path(path)
    if path.suffix.lower() == ".gif":
        return write_gif(images, path, fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    reasons = []
    try:
        from torchvision.io import write_video as tv_write_video  # removed from recent torchvision
    except ImportError:
        import torchvision

        tv_write_video = None
        reasons.append(f"torchvision {torchvision.__version__} has no torchvision.io.write_video")
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        if tv_write_video is not None:
            try:
                arr = torch.from_numpy(np.stack([np.asarray(im.convert("RGB")) for im in images]))
                tv_write_video(str(tmp), arr, fps=fps)
                os.replace(tmp, path)
                return path
            except Exception as exc:  # noqa: BLE001 - any backend failure falls back to GIF
                reasons.append(f"torchvision.io.write_video failed ({type(exc).__name__}: {exc})")
        try:
            _write_with_pyav(images, tmp, fps)
            os.replace(tmp, path)
            return path
        except ImportError:
            reasons.append("PyAV is not installed (pip install av)")
        except Exception as exc:  # noqa: BLE001
            reasons.append(f"PyAV failed ({type(exc).__name__}: {exc})")
    finally:
        tmp.unlink(missing_ok=True)
    gif = path.with_suffix(".gif")
    warnings.warn(f"Cannot write {path.name}: {'; '.join(reasons)}. Writing a GIF instead: {gif}.", stacklevel=2)
    return write_gif(images, gif, fps)


# --------------------------------------------------------------------------- reading
def _read_video_file(path: Path) -> list[torch.Tensor]:
    reasons = []
    try:
        from torchvision.io import read_video  # removed from recent torchvision

        video, _, _ = read_video(str(path), pts_unit="sec", output_format="TCHW")
        if len(video):
            return [f.float().div(255.0) for f in video]
        reasons.append("torchvision.io.read_video returned no frames")
    except ImportError:
        reasons.append("this torchvision has no torchvision.io.read_video")
    except Exception as exc:  # noqa: BLE001
        reasons.append(f"torchvision.io.read_video failed ({type(exc).__name__}: {exc})")
    try:
        import av  # type: ignore[import-not-found]

        with av.open(str(path)) as container:
            frames = [
                torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1).float().div(255.0)
                for f in container.decode(video=0)
            ]
        if frames:
            return frames
        reasons.append("PyAV decoded no frames")
    except ImportError:
        reasons.append("PyAV is not installed")
    except Exception as exc:  # noqa: BLE001
        reasons.append(f"PyAV failed ({type(exc).__name__}: {exc})")
    raise InputError(
        f"Cannot read the video {path}: {'; '.join(reasons)}. Install PyAV (pip install av), or pass a folder "
        f"of frames (e.g. from `ffmpeg -i {path.name} frames/%05d.png`) or a GIF."
    )


def read_frames(path_or_folder: PathLike) -> list[torch.Tensor]:
    """Read a clip as a list of (3, H, W) float tensors in [0, 1].

    Args:
        path_or_folder: A folder of images (read in name order with
            :func:`paperlib.data.load_image`), an animated GIF (or any multi-frame image PIL reads),
            a single image (one frame), or a video file (needs PyAV).

    Raises:
        DataNotFoundError: The path does not exist, or the folder holds no image.
        InputError: A video file that cannot be decoded here (the message says what to install).
    """
    path = Path(path_or_folder)
    if not path.exists():
        raise DataNotFoundError(f"No such file or folder: {path}.")
    if path.is_dir():
        exts = {e.lower() for e in IMAGE_EXTENSIONS} | {".gif"}
        files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in exts), key=lambda p: p.name)
        if not files:
            raise DataNotFoundError(f"The folder {path} holds no image ({', '.join(sorted(exts))}).")
        return [to_tensor(load_image(p)) for p in files]
    if path.suffix.lower() == ".gif" or path.suffix.lower() in IMAGE_EXTENSIONS:
        with Image.open(path) as im:
            frames = [to_tensor(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
        return frames
    return _read_video_file(path)


# --------------------------------------------------------------------------- synthetic clip
def pan_zoom_frames(
    image: torch.Tensor, n_frames: int = 48, out_size: int = 224, zoom: tuple[float, float] = (1.0, 1.6)
) -> torch.Tensor:
    """A synthetic clip from one image: a slow, eased pan across it while zooming in.

    Frame t shows a square window of side ``min(H, W) / z_t`` with ``z_t`` going from ``zoom[0]``
    to ``zoom[1]``; its centre moves from 20% to 80% of the free range along x (40% to 60% along y),
    with cosine easing so the motion starts and ends slowly. Sampling is bilinear and sub-pixel
    (``grid_sample``), after one antialiased downscale of the image, so the motion is smooth.

    Args:
        image: (3, H, W) in [0, 1].
        n_frames: Number of frames.
        out_size: Side of the square output frames.
        zoom: Start and end zoom factors (>= 1: the window never leaves the image).

    Returns:
        (n_frames, 3, out_size, out_size) in [0, 1].
    """
    _check_frame(image, 0)
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise InputError(f"n_frames must be a positive int, got {n_frames!r}.")
    z0, z1 = float(zoom[0]), float(zoom[1])
    if min(z0, z1) < 1.0:
        raise InputError(f"zoom factors must be >= 1 (the window must stay inside the image), got {zoom!r}.")
    img = image.detach().float().cpu()[None]
    h, w = img.shape[-2:]
    scale = out_size * max(z0, z1) / min(h, w)
    if scale < 1.0:  # antialiased downscale once, so that grid_sample never shrinks much
        img = F.interpolate(
            img, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="bilinear", antialias=True, align_corners=False
        )
        h, w = img.shape[-2:]
    thetas = []
    for t in range(n_frames):
        s = t / (n_frames - 1) if n_frames > 1 else 0.0
        e = 0.5 - 0.5 * math.cos(math.pi * s)
        z = z0 + (z1 - z0) * e
        side = min(h, w) / z
        cx = side / 2 + (w - side) * (0.2 + 0.6 * e)
        cy = side / 2 + (h - side) * (0.4 + 0.2 * e)
        # affine_grid works in [-1, 1] coordinates of the input (align_corners=False)
        thetas.append([[side / w, 0.0, 2 * cx / w - 1], [0.0, side / h, 2 * cy / h - 1]])
    theta = torch.tensor(thetas, dtype=img.dtype)
    grid = F.affine_grid(theta, [n_frames, 3, out_size, out_size], align_corners=False)
    frames = F.grid_sample(img.expand(n_frames, -1, -1, -1), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return frames.clamp(0, 1)


# --------------------------------------------------------------------------- the pipeline
def run_video(
    masker: torch.nn.Module,
    source: PathLike | torch.Tensor | Sequence[torch.Tensor],
    out_path: PathLike,
    class_name: str | int | None = None,
    fps: float = 12.0,
    *,
    batch_size: int = 8,
    size: int | None = None,
    progress: bool = True,
    per_frame: bool = False,
) -> dict[str, Any]:
    """Read a clip, explain every frame, annotate it, and write the result.

    Args:
        masker: A :class:`~paperlib.masker.Masker` in eval mode.
        source: A path for :func:`read_frames`, a tensor (T, 3, H, W), or a list of (3, H, W) frames.
        out_path: ``.gif`` (always works) or ``.mp4`` (needs PyAV; falls back to GIF with a warning).
        class_name: Class to explain in every frame (name or index). ``None``: the top-1 class of the
            masker's black box (``load_classifier(masker.black_box)``) on the first frame, computed once.
        fps: Frame rate of the written clip.
        batch_size, size, progress: See :func:`explain_frames`.
        per_frame: Classify every frame and explain its own top-1 class, both from one backbone pass
            (:func:`explain_frames_top1`; needs the eager masker, not a ``--backend``); ``class_name``
            must then be None.

    Returns:
        ``{"path", "frames", "seconds" (whole pipeline), "masks_per_s" (masker forward passes only,
        after one warm-up pass), "end_to_end_fps", "class", "class_index", "top1_probability"}``.
    """
    t_start = time.perf_counter()
    if per_frame:
        return _run_per_frame(
            masker, source, out_path, class_name, fps, batch_size=batch_size, progress=progress, t_start=t_start
        )
    if isinstance(source, (str, os.PathLike)):
        frames = read_frames(source)
    else:
        frames = list(source)
    if not frames:
        raise InputError("The clip has no frames.")
    first = _check_frame(frames[0], 0)
    device = module_device(masker)
    prob = None
    if class_name is None:
        bb = load_classifier(getattr(masker, "black_box", "efficientnet_lite0"))
        with torch.inference_mode():
            p, idx = bb.predict(first[None].to(module_device(bb)), k=1)
        cls, prob = int(idx[0, 0]), float(p[0, 0])
    elif isinstance(class_name, int):
        cls = class_name
    else:
        cls = int(masker.resolve_classes(class_name, 1, torch.device("cpu"))[0])
    dataset = getattr(masker, "dataset", "imagenet")
    name = class_index(dataset).names[cls]
    label = name if prob is None else f"{name} (top-1, p={prob:.2f})"
    with torch.inference_mode():  # warm-up pass, not timed: one-time kernel set-up
        x = first[None].to(device)
        if size is not None:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
        masker(x, torch.tensor([cls], device=device))
    stats: dict[str, float] = {}
    annotated = []
    for frame, mask in explain_frames(masker, frames, cls, batch_size=batch_size, size=size, progress=progress, stats=stats):
        rate = stats["frames"] / stats["seconds"] if stats["seconds"] > 0 else None
        annotated.append(annotate(frame, mask, label, rate))
    return _written(annotated, out_path, fps, stats, t_start) | {
        "class": name,
        "class_index": cls,
        "top1_probability": prob,
        "masker_input": _masker_input(masker, first, size),
    }


def _written(
    annotated: list[Image.Image], out_path: PathLike, fps: float, stats: dict[str, float], t_start: float
) -> dict[str, Any]:
    """Write the annotated clip; the common part of :func:`run_video`'s result."""
    written = write_video(annotated, out_path, fps)
    seconds = time.perf_counter() - t_start
    return {
        "path": str(written),
        "frames": len(annotated),
        "seconds": seconds,
        "masks_per_s": stats["frames"] / stats["seconds"] if stats["seconds"] > 0 else None,
        "end_to_end_fps": len(annotated) / seconds,
    }


def _run_per_frame(
    masker: Any, source: Any, out_path: PathLike, class_name: Any, fps: float, *, batch_size: int, progress: bool, t_start: float
) -> dict[str, Any]:
    """:func:`run_video` with ``per_frame=True``: each frame's own top-1 class and its mask, one pass per batch."""
    if class_name is not None:
        raise InputError("per_frame explains each frame's own top-1 class: give no class_name.")
    if not hasattr(masker, "decode"):
        raise InputError("per_frame needs the masker itself (paperlib.load_masker), not a CPU back end (--backend).")
    frames = read_frames(source) if isinstance(source, (str, os.PathLike)) else list(source)
    if not frames:
        raise InputError("The clip has no frames.")
    bb = load_classifier(masker.black_box).to(module_device(masker))
    explainer = Explainer(masker, bb)
    names = class_index(getattr(masker, "dataset", "imagenet")).names
    stats: dict[str, float] = {}
    annotated, seen = [], []
    for frame, mask, c, p in explain_frames_top1(explainer, frames, batch_size=batch_size, progress=progress, stats=stats):
        rate = stats["frames"] / stats["seconds"] if stats["seconds"] > 0 else None
        annotated.append(annotate(frame, mask, f"{names[c]} (top-1, p={p:.2f})", rate))
        seen.append(names[c])
    return _written(annotated, out_path, fps, stats, t_start) | {
        "class": "top-1 of each frame",
        "classes_per_frame": seen,
        "one_pass": explainer.one_pass,
        "masker_input": f"{bb.input_size}x{bb.input_size} (the black box's size; masks mapped back to the frames)",
    }


def _masker_input(masker: Any, frame: torch.Tensor, size: int | None) -> str:
    """Which size the masker ran at, e.g. ``"416x288 (frames 400x300 resized; masks mapped back)"``."""
    h, w = frame.shape[-2:]
    run = (size, size) if size is not None else (masker.run_size(h, w) if hasattr(masker, "run_size") else (h, w))
    if tuple(run) == (h, w):
        return f"{w}x{h} (the frames' own size)"
    return f"{run[1]}x{run[0]} (frames {w}x{h} resized for the back end; masks mapped back to {w}x{h})"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m paperlib.video INPUT OUTPUT`` or ``python -m paperlib.video --demo IMAGE OUTPUT``."""
    ap = argparse.ArgumentParser(prog="paperlib video", description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", metavar="INPUT OUTPUT", help="INPUT OUTPUT, or only OUTPUT with --demo IMAGE")
    ap.add_argument("--demo", metavar="IMAGE", help="make a synthetic pan-and-zoom clip of this image as the input")
    ap.add_argument("--black-box", default="efficientnet_lite0", help="black box whose shipped masker explains the clip")
    ap.add_argument("--masker", default=None, help="a masker checkpoint to use instead of the shipped one")
    ap.add_argument("--class", dest="class_name", default=None, help="class to explain (default: top-1 on the first frame)")
    ap.add_argument(
        "--per-frame",
        action="store_true",
        help="classify every frame and explain its own top-1 class, both from one backbone pass (no --backend, no --class)",
    )
    ap.add_argument("--fps", type=float, default=12.0, help="frame rate of the output")
    ap.add_argument("--frames", type=int, default=48, help="frames of the --demo clip")
    ap.add_argument("--size", type=int, default=None, help="resize frames to SIZE x SIZE for the masker")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument(
        "--backend",
        default=None,
        help="CPU inference back end of paperlib.realtime (e.g. onnxruntime; default: the masker as loaded)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    if a.demo is not None and len(a.paths) != 1:
        ap.error("with --demo IMAGE give only OUTPUT")
    if a.demo is None and len(a.paths) != 2:
        ap.error("give INPUT OUTPUT (or --demo IMAGE OUTPUT)")
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    try:
        masker = load_masker(a.masker or a.black_box, black_box=a.black_box)
    except UnknownModelError:
        raise SystemExit(
            f"No shipped masker for the black box {a.black_box!r} (shipped: {', '.join(shipped_maskers()) or 'none'}). "
            f"Train one with `python -m paperlib.train --black-box {a.black_box}` and pass its checkpoint with "
            f"--masker runs/<name>/last.pt."
        ) from None
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    masker = masker.to(device).eval()
    if a.backend is not None:
        if a.backend not in CANDIDATES:
            ap.error(f"--backend must be one of: {', '.join(CANDIDATES)}")
        if device.type != "cpu":
            ap.error("--backend is for the CPU; use --device cpu")
        masker = fast_masker(masker, a.backend)
    if a.demo is not None:
        source: Any = pan_zoom_frames(to_tensor(load_image(a.demo)), n_frames=a.frames, out_size=a.size or 224)
        out = a.paths[0]
    else:
        source, out = a.paths
    cls: Any = a.class_name
    if cls is not None and cls.isdigit():
        cls = int(cls)
    res = run_video(
        masker, source, out, cls, a.fps, batch_size=a.batch_size, size=a.size, progress=not a.no_progress, per_frame=a.per_frame
    )
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()

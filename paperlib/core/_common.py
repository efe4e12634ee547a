"""Helpers shared by every layer: input checks, device and eval-mode handling, class
probabilities, atomic writes and a description of the hardware.

Each lives here once; the modules that used to carry their own copy import it from here.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import torch
from torch import nn

from .errors import InputError
from .serialization import to_plain

__all__ = [
    "check_images",
    "check_maps",
    "check_classes",
    "module_device",
    "resolve_device",
    "eval_mode",
    "frozen",
    "class_log_probability",
    "class_probability_from_logits",
    "atomic_save",
    "atomic_write_text",
    "write_result",
    "hardware",
    "hardware_line",
    "rng_state",
    "set_rng_state",
]


# --------------------------------------------------------------------------- checks
def check_maps(maps: torch.Tensor, name: str = "maps") -> torch.Tensor:
    """One-channel maps (N, 1, H, W) or (N, H, W) of any values as a detached float (N, H, W) tensor.

    Example:
        >>> tuple(check_maps(torch.zeros(2, 1, 4, 5)).shape)
        (2, 4, 5)
    """
    m = maps.detach().float()
    if m.ndim == 4:
        if m.shape[1] != 1:
            raise InputError(f"{name} must have one channel, got shape {tuple(maps.shape)}.")
        m = m[:, 0]
    if m.ndim != 3:
        raise InputError(f"{name} must have shape (N, 1, H, W) or (N, H, W), got {tuple(maps.shape)}.")
    return m


def check_images(images: torch.Tensor, name: str = "images", *, check_range: bool = True, atol: float = 1e-3) -> torch.Tensor:
    """Validate a batch of RGB images in [0, 1].

    Args:
        images: Tensor of shape (N, 3, H, W), floating point, values in [0, 1].
        name: How to call the tensor in the error message.
        check_range: Also check the value range (costs one pass over the data).
        atol: How far outside [0, 1] a value may lie (rounding of resized images).

    Returns:
        ``images`` itself, so that the call can stand in an expression.

    Raises:
        InputError: Wrong type, rank, channel count, dtype or range, with what to do about it.
    """
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor of shape (N, 3, H, W), got {type(images).__name__}.")
    if images.ndim == 3:
        raise InputError(
            f"{name} has shape {tuple(images.shape)}: a single image, where (N, 3, H, W) is expected; add a "
            f"batch dimension with images.unsqueeze(0) to get (1, 3, H, W)."
        )
    if images.ndim != 4:
        raise InputError(f"{name} must have shape (N, 3, H, W), got {tuple(images.shape)}.")
    if images.shape[1] != 3:
        hint = " Grayscale images: repeat the channel with images.expand(-1, 3, -1, -1)." if images.shape[1] == 1 else ""
        hint += " Channels-last arrays: permute with images.permute(0, 3, 1, 2)." if images.shape[-1] == 3 else ""
        raise InputError(f"{name} must have 3 (RGB) channels in dim 1, got shape {tuple(images.shape)}.{hint}")
    if not images.is_floating_point():
        raise InputError(
            f"{name} has dtype {images.dtype}; expected floating point in [0, 1]. For uint8 images use images.float() / 255."
        )
    if check_range and images.numel():
        lo, hi = float(images.detach().min()), float(images.detach().max())
        if lo < -atol or hi > 1 + atol:
            raise InputError(
                f"{name} must hold values in [0, 1], got [{lo:.3g}, {hi:.3g}]. paperlib's black boxes "
                f"normalise on their own: pass unnormalised RGB (e.g. torchvision's ToTensor output)."
            )
    return images


def check_classes(classes, n: int, device: torch.device | str = "cpu", num_classes: int | None = None) -> torch.Tensor:
    """Return class indices as a LongTensor (n,) on ``device``; one int (or one class) applies to all.

    Args:
        classes: An int, a sequence of ints, or an integer tensor of shape (n,) or (1,).
        n: Number of images.
        device: Where the result goes.
        num_classes: If given, every index must lie in [0, num_classes).

    Raises:
        InputError: Floats, bools, wrong count or rank, negative or too large indices.
    """
    if isinstance(classes, bool):
        raise InputError("classes must be integer class indices, got a bool.")
    if isinstance(classes, int):
        cls = torch.tensor([classes])
    else:
        try:
            cls = torch.as_tensor(classes)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"classes must be integer class indices, got {type(classes).__name__}.") from exc
    if cls.is_floating_point() or cls.is_complex() or cls.dtype == torch.bool:
        raise InputError(f"classes must be integer class indices (a LongTensor), got dtype {cls.dtype}.")
    if cls.ndim > 1:
        raise InputError(f"classes must have shape (N,), got {tuple(cls.shape)}.")
    cls = cls.reshape(-1)
    if cls.numel() == 1 and n != 1:
        cls = cls.expand(n)
    if cls.numel() != n:
        raise InputError(f"Got {n} images but {cls.numel()} classes; pass one class per image or a single int.")
    if n and bool((cls < 0).any()):
        raise InputError(f"classes must be non-negative, got {cls.tolist()[:8]}.")
    if num_classes is not None and n and int(cls.max()) >= num_classes:
        raise InputError(f"Class indices must lie in [0, {num_classes}), got {cls.tolist()[:8]}.")
    return cls.to(device=device, dtype=torch.long)


def module_device(module: nn.Module, default: torch.device | str = "cpu") -> torch.device:
    """The device of a module's first parameter (or buffer), else ``default``."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device(default)


# --------------------------------------------------------------------------- devices and modes
def resolve_device(name: str) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:k]"`` as a :class:`torch.device`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available; use --device cpu.")
    return torch.device(name)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the duration of the block; its previous mode is restored."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def frozen(black_box: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and requires_grad False on every parameter for the duration; restored after.

    Gradients flow *through* the black box to the mask but never accumulate in its parameters.
    """
    flags = [(p, p.requires_grad) for p in black_box.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        with eval_mode(black_box):
            yield black_box
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


# --------------------------------------------------------------------------- class probability
def class_log_probability(logits: torch.Tensor, classes: torch.Tensor, multi_label: bool = False) -> torch.Tensor:
    """log softmax(logits)[c] per row (log sigmoid(logits[c]) when ``multi_label``): (N, K), (N,) -> (N,)."""
    if multi_label:
        return torch.nn.functional.logsigmoid(logits.gather(1, classes[:, None]).squeeze(1))
    return logits.log_softmax(-1).gather(1, classes[:, None]).squeeze(1)


def class_probability_from_logits(logits: torch.Tensor, classes: torch.Tensor, multi_label: bool = False) -> torch.Tensor:
    """softmax(logits)[c] per row, f_c of the paper (sigmoid(logits[c]) when ``multi_label``): (N, K), (N,) -> (N,)."""
    if multi_label:
        return logits.gather(1, classes[:, None]).squeeze(1).sigmoid()
    return logits.softmax(-1).gather(1, classes[:, None]).squeeze(1)


# --------------------------------------------------------------------------- random state
def rng_state() -> dict[str, Any]:
    """torch's and Python's global random states (and CUDA's when there is a GPU), for a checkpoint."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only when the GPU count matches)."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except (RuntimeError, ValueError):  # other GPU count
            pass


# --------------------------------------------------------------------------- atomic writes
def _public(path: str) -> None:
    """Give a file written through mkstemp (mode 0600) the usual permissions (0666 minus umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def _atomic_file(path: Path, mode: str) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A crash or kill during the write leaves the previous file intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _public(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` of ``obj`` as tensors and plain data to a temporary file in the same folder, then
    rename over ``path``; the file loads with ``weights_only=True`` (:mod:`paperlib.core.serialization`).

    Raises:
        TypeError: ``obj`` holds an object with no plain form (nothing is written).
    """
    path = Path(path)
    plain = to_plain(obj)
    with _atomic_file(path, "wb") as fh:
        torch.save(plain, fh)
    return path


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write text atomically (temporary file + rename)."""
    path = Path(path)
    with _atomic_file(path, "w") as fh:
        fh.write(text)
    return path


def write_result(
    result: dict[str, Any],
    markdown: str,
    folder: str | os.PathLike,
    stem: str,
    *,
    indent: int = 2,
    default: Callable[[Any], Any] | None = None,
    newline: bool = False,
) -> tuple[Path, Path]:
    r"""Write a study's result as ``<folder>/<stem>.json`` and its table as ``<folder>/<stem>.md``.

    The one writer behind every study's ``write_results``. Both
    files are written atomically (:func:`atomic_write_text`), the JSON first; ``folder`` is created
    when missing. The keyword options reproduce each study's committed files byte for byte.

    Args:
        result: The study's result, JSON-serialisable (through ``default`` where given).
        markdown: The Markdown text, written as it is (usually the study's ``to_markdown(result)``).
        folder: The folder of both files.
        stem: The file name without suffix.
        indent: ``json.dumps`` indentation.
        default: ``json.dumps`` fallback for objects JSON does not know (e.g. ``str`` or ``float``).
        newline: End the JSON file with a newline.

    Returns:
        The paths of the JSON and of the Markdown file.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     j, m = write_result({"table": "demo", "rows": [1]}, "| a |\n", tmp, "demo", newline=True)
        ...     (j.name, m.name, j.read_text(), m.read_text())
        ('demo.json', 'demo.md', '{\n  "table": "demo",\n  "rows": [\n    1\n  ]\n}\n', '| a |\n')
    """
    folder = Path(folder)
    text = json.dumps(result, indent=indent, default=default) + ("\n" if newline else "")
    json_path = atomic_write_text(text, folder / f"{stem}.json")
    return json_path, atomic_write_text(markdown, folder / f"{stem}.md")


# --------------------------------------------------------------------------- hardware
def hardware() -> dict[str, Any]:
    """CPU model, cores, threads, torch version, and the GPU when there is one."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def hardware_line(info: dict[str, Any] | None = None) -> str:
    """One line describing ``info`` (default: :func:`hardware` of this machine)."""
    info = info or hardware()
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ", no GPU"
    return f"{info['cpu']}, {info['cores']} cores, {info['threads']} torch threads, torch {info['torch']}{gpu}"

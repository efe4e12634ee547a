"""Real-time masks on a CPU: optimised inference back ends for a trained masker, and their benchmark.

The paper's masker is real time on a 2017 GPU (> 100 masks/s). This module asks the question for
where most users are, a laptop-class CPU: how fast can the *shipped* masker run, and at what cost
in localisation accuracy? Every candidate is an inference path for the same trained weights:

==========================  ====================================================================
candidate                   what it does
==========================  ====================================================================
``eager``                   the masker as loaded, under ``torch.no_grad()`` (the reference)
``inference_mode``          ``torch.inference_mode()`` instead (no version counters)
``channels_last``           weights and images in channels-last memory format
``fused_bn``                batch norm folded into the preceding convolutions
``fused_bn+channels_last``  both (:func:`optimise_for_cpu`)
``bf16``                    the fused copy under ``torch.autocast("cpu", torch.bfloat16)``
``int8_dynamic``            ``torch.ao.quantization.quantize_dynamic`` (Linear layers only;
                            the convolutions, nearly all of the work, stay fp32)
``torch.compile``           ``torch.compile`` (inductor) of the fused channels-last copy
``onnxruntime``             the fused copy exported to ONNX, run by onnxruntime (all graph
                            optimisations, as many intra-op threads as torch uses)
``onnxruntime@192``         the same at a lower input resolution (images resized to 192 x 192,
``onnxruntime@160``         the mask resized back); a cheaper encoder pass and a coarser mask
==========================  ====================================================================

:func:`run` (``python -m paperlib.realtime``, part of ``make bench``) times every candidate on
the same images (masks/s at batch 16, latency at batch 1, medians of repeats), measures its
localisation error on the shared validation images with the same protocol as Table 1 and its
largest mask difference from ``eager``, and checks the goal of issue 6: 30 masks/s or more at
batch 16, 33 ms or less at batch 1, localisation error within 1 point of ``eager``.

For users, :func:`fast_masker` returns the chosen back end as a callable with the masker's
interface (images in [0, 1], classes as indices or names)::

    fast = paperlib.fast_masker(paperlib.load_masker("efficientnet_lite0"), backend="onnxruntime")
    masks = fast(images, "Egyptian cat")          # (N, 1, H, W)
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from tqdm.auto import tqdm

from ..core._common import check_images, hardware, hardware_line, write_result
from ..core.classifiers import load_classifier
from ..core.errors import InputError, PaperlibError
from ..core.paths import FIGURES_DIR
from ..core.storage import load_masker
from ..experiments import presets
from ..experiments.evaluate import localisation
from .timing import fmt_range, fmt_rate, load_bench_images, rates, time_callable

__all__ = [
    "CANDIDATES",
    "GOAL",
    "PRESETS",
    "FastMasker",
    "fast_masker",
    "optimise_for_cpu",
    "run",
    "to_markdown",
    "summary",
    "write_results",
    "main",
]

#: Candidate names with a one-line description (the order of the table).
CANDIDATES: dict[str, str] = {
    "eager": "as loaded, torch.no_grad() (reference)",
    "inference_mode": "torch.inference_mode()",
    "channels_last": "channels-last weights and images",
    "fused_bn": "batch norm folded into the convolutions",
    "fused_bn+channels_last": "fused + channels-last (realtime.optimise_for_cpu)",
    "bf16": "fused + channels-last under bf16 autocast",
    "int8_dynamic": "dynamic int8 quantisation of the Linear layers (convs stay fp32)",
    "torch.compile": "torch.compile (inductor) of the fused channels-last copy",
    "onnxruntime": "fused copy exported to ONNX, onnxruntime CPU",
    "onnxruntime@192": "onnxruntime, images resized to 192x192, mask resized back",
    "onnxruntime@160": "onnxruntime, images resized to 160x160, mask resized back",
}

#: Issue 6's goal on the 2-core CPU.
GOAL: dict[str, float] = {"masks_per_s_16": 30.0, "latency_ms_1": 33.0, "max_error_increase": 1.0}

#: Timing and evaluation sizes per preset (:data:`paperlib.experiments.presets.REALTIME`).
PRESETS: dict[str, presets.RealtimeSizes] = presets.REALTIME


class FastMasker:
    """A masker behind an optimised inference back end, callable like the masker.

    Args:
        masker: The original masker (used for class resolution, its config and ``dataset``).
        fn: ``fn(images, classes) -> masks`` on prepared inputs (images at ``input_size``).
        name: The back end's name (a key of :data:`CANDIDATES` or a custom one).
        input_size: Run the back end on images resized to this square side; the mask is resized
            back to the input's size. ``None``: the images' own size.
        setup_seconds: Time the back end took to build (export, compilation).
        size_multiple: The back end only runs at heights and widths that are multiples of this
            (the ONNX graph: 32); other sizes are resized to the nearest multiple and the mask is
            resized back (:meth:`run_size` says which size runs).

    Shape:
        - images: (N, 3, H, W) in [0, 1]; classes: an int, a class name, or N of them.
        - returns: (N, 1, H, W) masks in [0, 1].
    """

    def __init__(
        self,
        masker: nn.Module,
        fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        name: str,
        *,
        input_size: int | None = None,
        setup_seconds: float = 0.0,
        size_multiple: int | None = None,
    ) -> None:
        self.masker, self.fn, self.name = masker, fn, name
        self.input_size, self.setup_seconds, self.size_multiple = input_size, setup_seconds, size_multiple
        self.config = getattr(masker, "config", None)
        self.dataset = getattr(masker, "dataset", "imagenet")

    def __call__(self, images: torch.Tensor, classes: Any) -> torch.Tensor:
        check_images(images)
        n, _, h, w = images.shape
        cls = self.masker.resolve_classes(classes, n, images.device)
        x = images
        if self.run_size(h, w) != (h, w):
            x = F.interpolate(x, size=self.run_size(h, w), mode="bilinear", antialias=True, align_corners=False)
            x = x.clamp(0, 1)
        with torch.inference_mode():
            mask = self.fn(x, cls)
            if mask.shape[-2:] != (h, w):
                mask = F.interpolate(mask, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
        return mask

    def run_size(self, h: int, w: int) -> tuple[int, int]:
        """The (height, width) the back end runs at for an input of ``h`` x ``w``."""
        if self.input_size is not None:
            return (self.input_size, self.input_size)
        m = self.size_multiple
        if m:
            return (max(m, round(h / m) * m), max(m, round(w / m) * m))
        return (h, w)

    def __getattr__(self, name: str) -> Any:
        # Everything else (black_box, num_classes, resolve_classes, parameters, ...) is the masker's.
        if name == "masker":  # not yet set (e.g. during unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.masker, name)

    def __repr__(self) -> str:
        size = "" if self.input_size is None else f", input_size={self.input_size}"
        return f"FastMasker({self.name!r}{size})"


class _Forward(nn.Module):
    """``forward(images, classes)`` with class indices only (for tracing and ONNX export)."""

    def __init__(self, masker: nn.Module) -> None:
        super().__init__()
        self.masker = masker

    def forward(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        return self.masker(images, classes)


def _onnx_session(model: nn.Module, threads: int | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    try:  # optional back end, imported on first use: onnxruntime takes a second to import
        import onnx  # noqa: F401  (torch.onnx.export writes the model through it)
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - both are in the lock file
        raise PaperlibError(
            f"The onnxruntime back end needs the packages onnx and onnxruntime ({exc}); install them with "
            f"`pip install onnx onnxruntime`, or choose backend='fused_bn+channels_last' (torch only)."
        ) from exc
    x = torch.rand(2, 3, 64, 64)
    c = torch.zeros(2, dtype=torch.long)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "masker.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Forward(model).eval(),
                (x, c),
                path,
                input_names=["images", "classes"],
                output_names=["mask"],
                dynamic_axes={"images": {0: "n", 2: "h", 3: "w"}, "classes": {0: "n"}, "mask": {0: "n", 2: "h", 3: "w"}},
                opset_version=17,
                dynamo=False,
            )
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    def fn(images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        out = sess.run(None, {"images": images.contiguous().cpu().numpy(), "classes": classes.cpu().numpy()})[0]
        return torch.from_numpy(out)

    return fn


# --------------------------------------------------------------------------- optimised copies
def _fuse_conv_bn(model: nn.Module) -> int:
    """Fold eval-mode BatchNorm2d into the preceding convolution where the order is certain.

    Pairs fused: consecutive ``(Conv2d | ConvTranspose2d, BatchNorm2d)`` children of an
    ``nn.Sequential``; ``convK/bnK`` of torchvision's ResNet blocks; the conv/BN attribute pairs of
    EfficientNet-Lite (stem, head, MBConv blocks), whose ``forward`` applies them back to back.
    The BatchNorm is replaced by ``nn.Identity``. Returns the number of pairs fused.
    """

    def fusable(conv: Any, bn: Any) -> bool:
        return (
            isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d))
            and type(bn) is nn.BatchNorm2d
            and bn.running_mean is not None
            and bn.num_features == conv.out_channels
        )

    def attr_pairs(mod: nn.Module) -> list[tuple[str, str]]:
        cls, where = type(mod).__name__, type(mod).__module__
        if where.startswith("torchvision.models.resnet") and cls in ("Bottleneck", "BasicBlock"):
            return [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")]
        if where.startswith("efficientnet_lite_pytorch"):
            if cls == "MBConvBlock":
                return [("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")]
            if cls == "EfficientNet":
                return [("_conv_stem", "_bn0"), ("_conv_head", "_bn1")]
        return []

    count = 0
    for parent in list(model.modules()):
        pairs: list[tuple[str, str]] = []
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            pairs = list(zip(names, names[1:]))
        pairs += attr_pairs(parent)
        for a, b in pairs:
            conv, bn = parent._modules.get(a), parent._modules.get(b)
            if fusable(conv, bn):
                parent._modules[a] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                parent._modules[b] = nn.Identity()
                count += 1
    return count


def optimise_for_cpu(masker: nn.Module, *, fuse: bool = True, channels_last: bool = True, check: bool = True) -> nn.Module:
    """An inference-optimised copy of a masker (the original is left untouched).

    The copy is in eval mode with gradients off, has BatchNorm folded into the preceding
    convolutions where the order of the two is certain (see ``_fuse_conv_bn``), and holds its
    weights in channels-last memory format (feed it channels-last images for the full effect).
    With ``check``, its masks are compared with the original's on a random 64x64 input; if they
    differ by more than 1e-3 the fusion is dropped with a warning (only channels-last remains).
    Call it under ``torch.inference_mode()``.

    Args:
        masker: A :class:`~paperlib.masker.Masker` (or any ``masker(images, classes)`` module).
        fuse: Fold BatchNorm into convolutions.
        channels_last: Convert weights to channels-last.
        check: Verify the copy against the original.

    Returns:
        The copy, with an ``optimised`` attribute describing what was done.
    """
    masker = masker.eval()
    opt = copy.deepcopy(masker).eval().requires_grad_(False)
    fused = _fuse_conv_bn(opt) if fuse else 0
    if channels_last:
        opt = opt.to(memory_format=torch.channels_last)
    if check and fused:
        device = next(iter(masker.parameters())).device
        x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(device)
        c = torch.zeros(2, dtype=torch.long, device=device)
        with torch.inference_mode():
            diff = float((masker(x, c) - opt(x, c)).abs().max())
        if not diff <= 1e-3:
            warnings.warn(f"optimise_for_cpu: fused masker differs by {diff:.2g}; keeping the unfused weights.", stacklevel=2)
            return optimise_for_cpu(masker, fuse=False, channels_last=channels_last, check=False)
    opt.optimised = {"fused_conv_bn": fused, "channels_last": channels_last}
    return opt


def fast_masker(masker: nn.Module, backend: str = "fused_bn+channels_last", *, threads: int | None = None) -> FastMasker:
    """An optimised inference path for a masker (CPU), callable like the masker.

    Args:
        masker: A trained :class:`~paperlib.masker.Masker` (e.g. :func:`paperlib.load_masker`).
        backend: A key of :data:`CANDIDATES` (``"onnxruntime"`` is the fastest on the 2-core CPU
            measured in ``figures/realtime_cpu.md``; ``"fused_bn+channels_last"`` needs nothing
            beyond torch).
        threads: Intra-op threads of onnxruntime (default: ``torch.get_num_threads()``).

    Returns:
        A :class:`FastMasker`. The original masker is not modified.

    Raises:
        InputError: Unknown ``backend``.
    """
    if backend not in CANDIDATES:
        raise InputError(f"Unknown backend {backend!r}; choose one of: {', '.join(CANDIDATES)}.")
    masker = masker.eval()
    t0 = time.perf_counter()
    size, multiple = None, None
    if backend == "eager":

        def fn(x, c):
            with torch.no_grad():
                return masker(x, c)
    elif backend == "inference_mode":
        fn = masker
    elif backend == "fused_bn":
        fn = optimise_for_cpu(masker, channels_last=False)
    elif backend in ("channels_last", "fused_bn+channels_last", "bf16", "torch.compile"):
        m = optimise_for_cpu(masker, fuse=backend != "channels_last")
        if backend == "torch.compile":
            m = torch.compile(m, dynamic=False)

        def fn(x, c, m=m):
            x = x.contiguous(memory_format=torch.channels_last)
            if backend == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return m(x, c).float()
            return m(x, c)
    elif backend == "int8_dynamic":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn = torch.ao.quantization.quantize_dynamic(
                optimise_for_cpu(masker, channels_last=False), {nn.Linear}, dtype=torch.qint8
            )
    else:  # onnxruntime, onnxruntime@S
        if "@" in backend:
            size = int(backend.split("@")[1])
        fn = _onnx_session(optimise_for_cpu(masker, channels_last=False), threads)
        multiple = 32  # the exported graph's skip connections only line up at multiples of 32
    return FastMasker(masker, fn, backend, input_size=size, setup_seconds=time.perf_counter() - t0, size_multiple=multiple)


# --------------------------------------------------------------------------- benchmark
def run(
    preset: str = "quick",
    *,
    black_box: str = "efficientnet_lite0",
    candidates: Sequence[str] | None = None,
    threads: int | None = None,
    eval_images: int | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Time every candidate back end of the shipped masker and measure its localisation error.

    Args:
        preset: ``"quick"`` (localisation on val 1-100) or ``"full"`` (val 1-500), see :data:`PRESETS`.
        black_box: Whose shipped masker (``paperlib.load_masker(black_box)``).
        candidates: Keys of :data:`CANDIDATES` (default: all; ``eager`` is always included first).
        threads: ``torch.set_num_threads`` for the run (restored afterwards).
        eval_images: Override the preset's number of validation images (0: skip localisation).
        out: Folder for ``realtime_cpu.json`` / ``.md``; None writes nothing.
        progress: tqdm bar over the candidates.

    Returns:
        A JSON-serialisable dict with one row per candidate: ``masks_per_s_16``, ``latency_ms_1``
        (median, min, max), ``setup_s``, ``max_mask_diff`` (vs ``eager``), ``error`` (%),
        ``error_increase``, ``meets_goal``; or ``error_message`` when the candidate failed.
    """
    p = presets.check_preset(preset, PRESETS)
    names = list(candidates or CANDIDATES)
    unknown = [c for c in names if c not in CANDIDATES]
    if unknown:
        raise InputError(f"Unknown candidate(s) {unknown}; choose from: {', '.join(CANDIDATES)}.")
    names = ["eager"] + [c for c in names if c != "eager"]
    n_eval = p.eval_images if eval_images is None else eval_images
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    t_start = time.perf_counter()
    try:
        masker = load_masker(black_box).eval()
        bb = load_classifier(black_box) if n_eval else None
        size = getattr(bb, "input_size", 224) if bb is not None else 224
        images, classes, images_note = load_bench_images(size, 16)
        rows: list[dict[str, Any]] = []
        for name in tqdm(names, desc="realtime candidates", disable=not progress):
            rows.append(_candidate_row(name, masker, bb, images, classes, p, n_eval, rows[0] if rows else None))
        info = hardware()
    finally:
        torch.set_num_threads(old_threads)
    result = {
        "title": f"Real-time masks on the CPU: back ends of the shipped `{black_box}` masker",
        "black_box": black_box,
        "preset": preset,
        "protocol": asdict(p) | {"eval_images": n_eval},
        "images": images_note,
        "eval_data": f"ImageNet val images 1-{n_eval} (shared copy), masker box at threshold 0.5, as Table 1"
        if n_eval
        else "not measured",
        "hardware": info,
        "hardware_line": hardware_line(info),
        "goal": GOAL,
        "rows": [{k: v for k, v in r.items() if k != "_masks"} for r in rows],
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    if out is not None:
        write_results(result, out)
    return result


def _candidate_row(
    name: str,
    masker: nn.Module,
    bb: nn.Module | None,
    images: torch.Tensor,
    classes: torch.Tensor,
    p: presets.RealtimeSizes,
    n_eval: int,
    ref: dict[str, Any] | None,
) -> dict[str, Any]:
    """Time one back end and measure its localisation error; ``ref`` is the ``eager`` row (None for eager itself)."""
    row: dict[str, Any] = {"candidate": name, "description": CANDIDATES[name]}
    try:
        fast = fast_masker(masker, name)
        row["setup_s"] = round(fast.setup_seconds, 2)
        t0 = time.perf_counter()
        masks = fast(images, classes)  # first call: compilation for torch.compile
        row["first_call_s"] = round(time.perf_counter() - t0, 2)
        t16 = time_callable(lambda: fast(images, classes), p.repeats, p.warmup)
        t1 = time_callable(lambda: fast(images[:1], classes[:1]), p.repeats_1, p.warmup_1)
        row["masks_per_s_16"] = rates(t16, 16)["masks_per_s"]
        row["latency_ms_1"] = rates(t1, 1)["latency_ms"]
        row["_masks"] = masks
        row["max_mask_diff"] = float((masks.float() - (masks if ref is None else ref["_masks"])).abs().max())
        if n_eval:
            res = localisation(["masker"], bb, masker=fast, limit=n_eval, progress=False)["masker"]
            row["error"], row["eval_images"] = res["error"], res["n"]
            row["error_increase"] = res["error"] - (res["error"] if ref is None else ref["error"])
        row["meets_goal"] = bool(
            row["masks_per_s_16"]["median"] >= GOAL["masks_per_s_16"]
            and row["latency_ms_1"]["median"] <= GOAL["latency_ms_1"]
            and (not n_eval or row["error_increase"] <= GOAL["max_error_increase"])
        )
    except Exception as exc:  # a back end that cannot run here is a result, not a crash
        if name == "eager":
            raise
        row["error_message"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    return row


def summary(result: dict[str, Any]) -> str:
    """One paragraph of prose stating a :func:`run` result's numbers (for notebooks and the README).

    Names the hardware, the eager rate, the fastest back end, the back ends that meet :data:`GOAL`
    and the localisation cost of the lower input resolutions, all read from ``result``.
    """
    rows = {r["candidate"]: r for r in result["rows"]}
    if not rows:
        return "No back end was measured."
    goal = result["goal"]

    def rate(name: str) -> str:
        r = rows[name]
        return f"{r['masks_per_s_16']['median']:.0f} masks/s at batch 16 and {r['latency_ms_1']['median']:.0f} ms for one image"

    first = "eager" if "eager" in rows else next(iter(rows))
    same = [n for n, r in rows.items() if abs(r.get("error_increase") or 0.0) <= goal["max_error_increase"]] or list(rows)
    fastest = max(same, key=lambda n: rows[n]["masks_per_s_16"]["median"])
    meets = [f"`{n}`" for n, r in rows.items() if r.get("meets_goal")]
    text = (
        f"On {result['hardware_line']} (preset `{result['preset']}`; localisation on {result['eval_data']}) the "
        f"`{result['black_box']}` masker runs at {rate(first)} (`{first}`); the fastest back end with the same localisation, `{fastest}`, at "
        f"{rate(fastest)}. Back ends that meet the goal ({goal['masks_per_s_16']:.0f} masks/s at batch 16 and "
        f"{goal['latency_ms_1']:.0f} ms for one image, localisation within {goal['max_error_increase']:.0f} point): "
        f"{', '.join(meets) or 'none'}."
    )
    lowres = [n for n in rows if "@" in n and rows[n].get("error_increase") is not None]
    if lowres:
        costs = ", ".join(f"{rows[n]['error_increase']:+.1f} points for `{n}`" for n in lowres)
        text += f" Lower input resolutions change the localisation error by {costs}."
    return text


def to_markdown(result: dict[str, Any]) -> str:
    """The candidates table with provenance, the goal and whether each candidate meets it."""
    g = result["goal"]
    p = result["protocol"]
    lines = [
        f"### {result['title']}",
        "",
        f"Hardware: {result['hardware_line']}. Preset `{result['preset']}`: batch 16 timed {p['repeats']}x after "
        f"{p['warmup']} warm-up call(s), batch 1 timed {p['repeats_1']}x after {p['warmup_1']}; cells give the median "
        f"(min–max). Timing images: {result['images']}. Localisation: {result['eval_data']}.",
        "",
        f"**Goal (issue 6):** ≥ {g['masks_per_s_16']:.0f} masks/s at batch 16, ≤ {g['latency_ms_1']:.0f} ms at batch 1, "
        f"localisation error within {g['max_error_increase']:.0f} point of `eager`. **Paper:** > 100 masks/s on a 2017 GPU.",
        "",
        "| candidate | masks/s @16 | latency @1 (ms) | loc. error (%) | Δ error | max mask diff | setup (s) | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        if "error_message" in r:
            lines.append(f"| `{r['candidate']}` | — | — | — | — | — | — | not run: {r['error_message'].replace('|', '/')} |")
            continue
        err = "—" if r.get("error") is None else f"{r['error']:.1f}"
        de = "—" if r.get("error_increase") is None else f"{r['error_increase']:+.1f}"
        lines.append(
            f"| `{r['candidate']}` | {fmt_range(r['masks_per_s_16'], fmt_rate)} | {fmt_range(r['latency_ms_1'], fmt_rate)} | {err} | {de} | "
            f"{r['max_mask_diff']:.1e} | {r['setup_s'] + r['first_call_s']:.1f} | {'yes' if r['meets_goal'] else 'no'} |"
        )
    lines += [
        "",
        "Candidates: " + "; ".join(f"`{k}`: {v}" for k, v in CANDIDATES.items()) + ". "
        "Setup: building the back end plus the first call (export, compilation). "
        "Max mask diff: largest absolute difference from `eager`'s masks on the timing images.",
    ]
    return "\n".join(lines) + "\n"


def write_results(result: dict[str, Any], out: str | os.PathLike = FIGURES_DIR) -> tuple[Path, Path]:
    """Write ``realtime_cpu.json`` and ``realtime_cpu.md`` into ``out`` atomically; returns both paths."""
    return write_result(result, to_markdown(result), out, "realtime_cpu", default=str)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m paperlib.realtime [--preset quick|full] [--candidates ...] [--threads N] [--out DIR]``."""
    ap = argparse.ArgumentParser(prog="paperlib realtime", description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="quick")
    ap.add_argument("--black-box", default="efficientnet_lite0")
    ap.add_argument("--candidates", nargs="*", default=None, choices=list(CANDIDATES))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--eval-images", type=int, default=None, help="validation images for the localisation check (0: skip)")
    ap.add_argument("--out", type=Path, default=FIGURES_DIR)
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    result = run(
        a.preset,
        black_box=a.black_box,
        candidates=a.candidates,
        threads=a.threads,
        eval_images=a.eval_images,
        out=a.out,
        progress=not a.no_progress,
    )
    print(to_markdown(result))
    return result


if __name__ == "__main__":
    main()

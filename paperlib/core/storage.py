"""Saving and loading maskers: atomic writes, shipped checkpoints, clear mismatch errors.

A *masker checkpoint* is a ``torch.save`` dict of tensors and plain data, read back with
``weights_only=True`` so that loading a file from anywhere runs no code (:mod:`.serialization`)::

    {"format": "paperlib-masker/1", "config": Masker.config, "state_dict": trainable weights,
     "meta": {...}}

Only the trained parts travel (decoder and class embedding; the encoder too when it is
trained from scratch, as for CIFAR-10): the frozen encoder comes from its own weights.
Shipped checkpoints live in ``paperlib/checkpoints/<name>.pt`` beside ``<name>.json`` (the
command, configuration and final numbers) and ``<name>.log.jsonl`` (the training log).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._common import atomic_save, atomic_write_text
from .classifiers import black_box_checksum
from .encoders import build_encoder
from .errors import CheckpointMismatchError, DataNotFoundError, UnknownModelError
from .masker import Masker, build_masker
from .paths import CHECKPOINT_DIR
from .serialization import safe_load, to_plain

__all__ = [
    "FORMAT",
    "atomic_save",
    "atomic_write_text",
    "save_masker",
    "load_masker",
    "masker_from_checkpoint",
    "shipped_maskers",
]

FORMAT = "paperlib-masker/1"


def save_masker(masker, path: str | os.PathLike, *, half: bool = False, meta: dict | None = None) -> Path:
    """Save a masker's trainable weights and configuration atomically.

    Args:
        masker: A :class:`~paperlib.masker.Masker`.
        path: Target ``.pt`` file.
        half: Store floating-point weights as fp16 (halves the size; they are cast back on load).
        meta: Extra information (training command, steps, metrics): plain data (NumPy values and
            paths are converted), so that the file loads without running code (:mod:`.serialization`).
    """
    state = masker.trainable_state_dict()
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    payload = {"format": FORMAT, "config": to_plain(dict(masker.config)), "state_dict": state, "meta": to_plain(meta or {})}
    return atomic_save(payload, path)


def _check_black_box(cfg: dict, black_box) -> None:
    """The checkpoint's configuration must name ``black_box`` (a name, or the model itself)."""
    if black_box is None:
        return
    if not isinstance(black_box, str):
        _check_weights(cfg, black_box)
        black_box = getattr(black_box, "name", type(black_box).__name__)
        if cfg.get("black_box_sha256") is not None:
            return  # the weights match: the name the user gave the same model does not matter
    if black_box != cfg["black_box"]:
        raise CheckpointMismatchError(
            f"This checkpoint was trained against the black box {cfg['black_box']!r}, not {black_box!r}: its masks "
            f"explain {cfg['black_box']!r}'s decisions. Load the masker made for {black_box!r} "
            f"(paperlib.load_masker({black_box!r})) or train one with `python -m paperlib.train --black-box {black_box}`."
        )


def _check_weights(cfg: dict, model) -> None:
    """A masker of a user's own classifier must meet the very weights it was trained against."""
    expected = cfg.get("black_box_sha256")
    if expected is None:
        return
    got = black_box_checksum(model)
    if got != expected:
        raise CheckpointMismatchError(
            f"This masker explains the classifier {cfg['black_box']!r} with weights sha256 {expected[:12]}..., but the "
            f"model given has sha256 {got[:12]}... (other weights or architecture): its masks would not explain this "
            f"model. Load the model it was trained against, or train a masker for this one with paperlib.train_masker."
        )


def _build_from_config(cfg: dict) -> Masker:
    """An untrained masker of the architecture a checkpoint's configuration describes."""
    kwargs = {k: cfg[k] for k in ("widths", "blocks", "mask_stride")}
    kwargs["output_gate"] = cfg.get("output_gate", False)
    kwargs["filter_affine"] = cfg.get("filter_affine", True)
    kwargs["class_embedding"] = cfg.get("class_embedding", "learned")
    kwargs["close_holes"] = cfg.get("close_holes", False)
    kwargs["gate_offset"] = cfg.get("gate_offset", 0.0)
    kwargs["threshold"] = cfg.get("threshold")
    if cfg.get("dataset") != "custom":
        if "encoder_widths" in cfg:
            kwargs["encoder_widths"] = cfg["encoder_widths"]
        return build_masker(cfg["black_box"], encoder=cfg["encoder"], **kwargs)
    # A user's own classifier: everything is in the configuration, nothing in the registry.
    enc_kw = {"widths": tuple(cfg["encoder_widths"])} if "encoder_widths" in cfg else {}
    masker = Masker(
        build_encoder(cfg["encoder"], **enc_kw),
        cfg["num_classes"],
        black_box=cfg["black_box"],
        dataset="custom",
        class_names=cfg.get("class_names"),
        black_box_sha256=cfg.get("black_box_sha256"),
        **kwargs,
    )
    if enc_kw:
        masker.config["encoder_widths"] = list(enc_kw["widths"])
    return masker


def masker_from_checkpoint(ckpt: dict, *, black_box=None):
    """Build a masker from a loaded checkpoint dict (see :func:`load_masker`)."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointMismatchError(
            f"Not a paperlib masker checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt)!r}, "
            f"expected {FORMAT!r}). Training checkpoints ('last.pt' of a run) hold it under 'masker'."
        )
    cfg = dict(ckpt["config"])
    _check_black_box(cfg, black_box)
    masker = _build_from_config(cfg)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    try:
        missing, unexpected = masker.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # weights of other shapes than the configuration says
        lines = [ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln]
        raise CheckpointMismatchError(
            f"Checkpoint weights do not fit the architecture its configuration describes ({cfg.get('widths')} widths, "
            f"{cfg.get('blocks')} blocks): {lines[0] if lines else str(exc).splitlines()[0]} (and {max(len(lines) - 1, 0)} more). "
            "The file was edited or written by other code: save the masker again with paperlib.save_masker."
        ) from None
    missing = [k for k in missing if not (k.startswith("encoder.") and not masker.encoder.trainable)]
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"Checkpoint does not fit the architecture {cfg}: missing {missing[:5]}, unexpected {unexpected[:5]}."
        )
    masker.meta = ckpt.get("meta", {})
    return masker.eval()


def shipped_maskers() -> list[str]:
    """Names of the maskers shipped in ``paperlib/checkpoints`` (black-box weights such as
    ``cifar10_classifier.pt`` live there too and are not listed, nor are the ``voc_*`` models of the
    WSSS study, which load with ``paperlib.experiments.wsss``)."""
    return sorted(
        p.stem for p in CHECKPOINT_DIR.glob("*.pt") if not p.stem.endswith("_classifier") and not p.stem.startswith("voc_")
    )


def load_masker(name_or_path: str | os.PathLike, *, black_box=None, map_location: str = "cpu"):
    """Load a trained masker, in eval mode.

    Args:
        name_or_path: A shipped masker's name (the black box it explains, e.g.
            ``"efficientnet_lite0"`` or ``"cifar10"``) or the path of a checkpoint file
            (a masker checkpoint, or a training run's ``last.pt``).
        black_box: If given, the checkpoint must have been trained against this black box: a
            registered name, or the model itself (for a masker of your own classifier the
            checksum of its weights must match the one recorded at training).

    Raises:
        UnknownModelError: No shipped masker of that name.
        CheckpointMismatchError: The checkpoint is for another black box (other weights) or architecture.
        UnsafeCheckpointError: The file pickles Python objects (loading it could run code): refused.
        CorruptCheckpointError: The file is truncated or corrupted.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = CHECKPOINT_DIR / f"{name_or_path}.pt"
        if not path.exists():
            raise UnknownModelError(
                f"No shipped masker named {str(name_or_path)!r} (looked for {path}). Shipped: "
                f"{', '.join(shipped_maskers()) or 'none'}. Train one with `python -m paperlib.train` "
                f"and pass the path of its checkpoint."
            )
    if not path.exists():
        raise DataNotFoundError(f"Masker checkpoint {path} does not exist.")
    ckpt = safe_load(path, what="masker checkpoint", map_location=map_location)
    if isinstance(ckpt, dict) and "masker" in ckpt and ckpt.get("format") != FORMAT:
        ckpt = ckpt["masker"]  # a training run's resumable checkpoint
    masker = masker_from_checkpoint(ckpt, black_box=black_box)
    info = path.with_suffix(".json")
    if info.exists():
        masker.meta = {**json.loads(info.read_text()), **masker.meta}
    return masker

"""Compact resume state: a training run that outlives a session travels through git.

A run's ``last.pt`` (about 40 MB for a Lite0 masker: the frozen encoder, fp32 weights and Adam's two
moments) is too large to commit at every session. :func:`export_state` keeps only what cannot be
rebuilt and stores it small:

* the decoder's trained weights in fp16 and its batch-norm buffers (the frozen encoder, and class
  rows frozen at the black box's final layer, are rebuilt exactly by
  :func:`~paperlib.experiments.train.build_for_training` from the run's configuration);
* Adam's first and second moments in bf16 (fp16 would flush second moments below 6e-8 to zero,
  and the next step would then divide by almost nothing);
* the step, images seen, the scheduler, the random states and the configuration, exactly.

:func:`restore_state` writes a full ``last.pt`` from it, so that the run's own command resumes.
The resumed run is **not bit-exact**: its weights and moments differ from the uninterrupted run's by
the rounding of fp16 (relative 5e-4) and bf16 (relative 4e-3); the data order, augmentations, fake
labels and alternative images are the same draws (they come from the saved seeds and position).

``python -m paperlib.experiments.resume export RUN DEST`` and ``... restore DEST RUN``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

import torch

from ..core._common import atomic_save
from ..core.errors import CheckpointMismatchError, DataNotFoundError, one_line_errors
from ..core.serialization import safe_load
from ..core.storage import FORMAT
from .train import TrainConfig, _optimiser, build_for_training

__all__ = ["STATE_FORMAT", "export_state", "restore_state", "main"]

STATE_FORMAT = "paperlib-resume-state/1"


def _rebuilt(train_config: dict[str, Any]) -> tuple[Any, dict[str, torch.Tensor], set[str]]:
    """The masker of the run's configuration as a fresh run builds it, its state and the names to store."""
    fields = set(TrainConfig.__dataclass_fields__)
    cfg = TrainConfig(**{k: v for k, v in train_config.items() if k in fields})
    cfg.init_from = None  # the stored weights replace the warm start
    masker, _ = build_for_training(cfg)
    params = dict(masker.named_parameters())
    keep = {
        k
        for k in masker.state_dict()
        if not k.startswith("encoder.") or masker.encoder.trainable
        if k not in params or params[k].requires_grad
    }
    return masker, masker.state_dict(), keep


def export_state(run: str | Path, dest: str | Path) -> Path:
    """Write the compact resume state of the run folder ``run`` (its ``last.pt``) to ``dest``.

    Returns:
        ``dest``.
    """
    last = Path(run) / "last.pt"
    if not last.is_file():
        raise DataNotFoundError(f"{last} does not exist: a run writes it every --checkpoint-every steps.")
    st = safe_load(last, what="training run state")
    _, _, keep = _rebuilt(st["train_config"])
    weights = {k: (v.half() if v.is_floating_point() else v) for k, v in st["masker_state"].items() if k in keep}
    opt = st["optimizer"]
    moments = {
        i: {k: (v.to(torch.bfloat16) if k in ("exp_avg", "exp_avg_sq") else v) for k, v in s.items()}
        for i, s in opt["state"].items()
    }
    compact = {
        "format": STATE_FORMAT,
        "weights": weights,
        "optimizer": {"state": moments, "param_groups": opt["param_groups"]},
        **{k: st[k] for k in ("scheduler", "scaler", "step", "seen", "skipped", "generator", "rng", "train_config")},
    }
    return atomic_save(compact, dest)


def restore_state(src: str | Path, run: str | Path) -> Path:
    """Write ``<run>/last.pt`` from a compact state, so that the run's command resumes from it.

    Refuses to overwrite a ``last.pt`` that is further along than the compact state.
    """
    c = safe_load(src, what="compact resume state")
    if not isinstance(c, dict) or c.get("format") != STATE_FORMAT:
        raise CheckpointMismatchError(f"{src} is not a compact resume state ({STATE_FORMAT!r}).")
    run = Path(run)
    last = run / "last.pt"
    if last.is_file() and safe_load(last, what="training run state")["step"] >= c["step"]:
        raise CheckpointMismatchError(f"{last} is already at or past step {c['step']}: nothing to restore.")
    masker, state, keep = _rebuilt(c["train_config"])
    missing = keep - set(c["weights"])
    if missing:
        raise CheckpointMismatchError(f"{src} lacks weights the run's masker has: {sorted(missing)[:5]}.")
    for k, v in c["weights"].items():
        state[k] = v.to(state[k].dtype)
    masker.load_state_dict(state)
    opt_state = {
        int(i): {k: (v.float() if k in ("exp_avg", "exp_avg_sq") else v) for k, v in s.items()}
        for i, s in c["optimizer"]["state"].items()
    }
    trainable = {k: v for k, v in masker.state_dict().items() if not k.startswith("encoder.") or masker.encoder.trainable}
    full = {
        "masker": {"format": FORMAT, "config": masker.config, "state_dict": trainable, "meta": {"step": c["step"]}},
        "masker_state": masker.state_dict(),
        "optimizer": {"state": opt_state, "param_groups": c["optimizer"]["param_groups"]},
        **{k: c[k] for k in ("scheduler", "scaler", "step", "seen", "skipped", "generator", "rng", "train_config")},
    }
    run.mkdir(parents=True, exist_ok=True)
    _check_optimiser(masker, c["train_config"], full["optimizer"])
    return atomic_save(full, last)


def _check_optimiser(masker: Any, train_config: dict[str, Any], state: dict[str, Any]) -> None:
    """The stored optimiser state must fit the optimiser the run builds (same parameter groups and sizes)."""
    fields = set(TrainConfig.__dataclass_fields__)
    opt, _ = _optimiser(masker, TrainConfig(**{k: v for k, v in train_config.items() if k in fields}))
    try:
        opt.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointMismatchError(f"The stored optimiser state does not fit the run's masker: {exc}") from None


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m paperlib.experiments.resume export RUN DEST`` / ``restore SRC RUN``."""
    ap = argparse.ArgumentParser(prog="paperlib resume", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    e = sub.add_parser("export", help="write the compact state of a run folder's last.pt")
    e.add_argument("run")
    e.add_argument("dest")
    r = sub.add_parser("restore", help="write <run>/last.pt from a compact state")
    r.add_argument("src")
    r.add_argument("run")
    args = ap.parse_args(argv)
    with one_line_errors("resume"):
        if args.what == "export":
            path = export_state(args.run, args.dest)
        else:
            path = restore_state(args.src, args.run)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

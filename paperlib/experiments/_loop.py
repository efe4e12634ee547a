"""The skeleton shared by the two training loops (the masker, :mod:`paperlib.experiments.train`, and the
CIFAR-10 black box, :mod:`paperlib.experiments.cifar`): a run folder with ``config.json``, a
``log.jsonl`` of one record per step or epoch, and a resumable ``last.pt``.

What both need, once: the resume check (the saved configuration must match the requested one apart
from the fields that may change), the random states in a checkpoint, dropping log records written
after the last checkpoint, opening a run, and a command line built from the fields of a dataclass.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import MISSING, Field, asdict, fields
from pathlib import Path
from typing import Any, Iterable

import torch

from ..core._common import atomic_write_text, rng_state, set_rng_state
from ..core.errors import CheckpointMismatchError, InputError
from ..core.serialization import safe_load

__all__ = [
    "ConfigMismatchError",
    "config_diff",
    "check_resume",
    "truncate_log",
    "rng_state",
    "set_rng_state",
    "load_last",
    "resumed",
    "write_config",
    "masker_optimiser",
    "add_dataclass_args",
    "dataclass_kwargs",
]


class ConfigMismatchError(CheckpointMismatchError):
    """A run folder's ``last.pt`` belongs to a run with another configuration (a ``ValueError``)."""


def config_diff(
    saved: dict[str, Any], mine: dict[str, Any], allowed: Iterable[str], *, defaults: dict[str, Any] | None = None
) -> dict[str, tuple[Any, Any]]:
    """Fields of ``mine`` that differ from ``saved`` (as ``{name: (saved, mine)}``), except ``allowed``.

    A field that ``saved`` lacks (a configuration written before the field existed) matches when
    ``mine`` holds its default (``defaults``).

    >>> config_diff({"lr": 0.1, "steps": 5}, {"lr": 0.2, "steps": 9, "new": 0}, ["steps"], defaults={"new": 0})
    {'lr': (0.1, 0.2)}
    """
    allowed, defaults = set(allowed), defaults or {}

    def same(k: str, v: Any) -> bool:
        if k not in saved and k in defaults:
            return v == defaults[k]
        return saved.get(k) == v

    return {k: (saved.get(k), v) for k, v in mine.items() if k not in allowed and not same(k, v)}


def check_resume(
    last: Path,
    saved: dict[str, Any],
    mine: dict[str, Any],
    allowed: Iterable[str],
    *,
    defaults: dict[str, Any] | None = None,
) -> None:
    """Raise :class:`ConfigMismatchError` when ``last.pt``'s configuration differs from the requested one."""
    diff = config_diff(saved, mine, allowed, defaults=defaults)
    if diff:
        raise ConfigMismatchError(
            f"{last} belongs to a run with another configuration {diff} (saved, requested): use another "
            f"--out, or delete it to start over."
        )


def truncate_log(path: Path, last: int, key: str = "step") -> None:
    """Drop the records of ``log.jsonl`` whose ``key`` lies after ``last`` (work a killed run had not
    checkpointed, which the resumed run does again)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)[key] <= last]
    atomic_write_text("".join(ln + "\n" for ln in keep), path)


def load_last(out: Path) -> dict[str, Any] | None:
    """The run's resumable checkpoint ``<out>/last.pt``, or None when there is none."""
    last = out / "last.pt"
    return safe_load(last, what="training run state") if last.exists() else None


def write_config(cfg: Any, out: Path) -> None:
    """Write the run's configuration (a dataclass) to ``<out>/config.json``."""
    atomic_write_text(json.dumps(asdict(cfg), indent=2) + "\n", out / "config.json")


def resumed(out: Path, what: str) -> None:
    """Say on stderr that a run resumes."""
    print(f"Resuming {out} {what}.", file=sys.stderr)


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def add_dataclass_args(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    skip: Iterable[str] = (),
    special: dict[str, dict[str, Any]] | None = None,
    types: dict[str, type] | None = None,
) -> None:
    """One ``--flag`` per field of the dataclass ``cls`` (``snake_case`` -> ``--kebab-case``).

    Booleans get ``--flag/--no-flag``; ``special`` gives the ``add_argument`` keywords of a field
    outright; ``types`` the type of a field whose default is None (default ``str``).
    """
    skip, special, types = set(skip), special or {}, types or {}
    for f in fields(cls):
        if f.name in skip:
            continue
        name = "--" + f.name.replace("_", "-")
        default = _default(f)
        if f.name in special:
            parser.add_argument(name, **{"default": default, **special[f.name]})
        elif isinstance(default, bool):
            parser.add_argument(name, action=argparse.BooleanOptionalAction, default=default)
        else:
            typ = types.get(f.name) or (type(default) if default is not None else str)
            parser.add_argument(name, type=typ, default=default)


def dataclass_kwargs(cls: type, args: dict[str, Any] | argparse.Namespace) -> dict[str, Any]:
    """The parsed values of the fields of ``cls`` (the inverse of :func:`add_dataclass_args`)."""
    values = vars(args) if isinstance(args, argparse.Namespace) else args
    return {f.name: values[f.name] for f in fields(cls) if f.name in values}


def _constant(step: int) -> float:
    return 1.0


def masker_optimiser(
    masker: torch.nn.Module, lr: float, gate_lr_mult: float, steps: int, *, schedule: str = "cosine", weight_decay: float = 0.0
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Adam with a cosine schedule over ``steps`` (or a constant rate), for a masker (the ImageNet and the VOC one).

    The feature filter's shared scale and offset are two scalars that set the gate's threshold for
    every class: they get a larger step (``gate_lr_mult`` x ``lr``) so that absent classes learn to
    close the gate within a short run.
    """
    gate_names = {"filter.scale", "filter.offset"}
    named = [(n, p) for n, p in masker.named_parameters() if p.requires_grad]
    if schedule not in ("cosine", "constant"):
        raise InputError(f"schedule must be 'cosine' or 'constant', not {schedule!r}.")
    opt = torch.optim.Adam(
        [
            {"params": [p for n, p in named if n not in gate_names], "lr": lr},
            {"params": [p for n, p in named if n in gate_names], "lr": lr * gate_lr_mult},
        ],
        weight_decay=weight_decay,
    )
    if schedule == "constant":
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, _constant)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / max(steps, 1), 1.0))))
    return opt, sched

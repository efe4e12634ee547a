"""The command line: ``python -m paperlib.experiments.wsss [--preset quick|full] [options]``,
``... train-head`` and ``... train-masker``."""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import torch

from ...core.paths import FIGURES_DIR, cache_dir
from .config import HEAD_PATH, MASKER_PATH, PRESETS, HeadConfig, MaskerConfig, WSSSConfig
from .head import train_head
from .masker import train_voc_masker
from .report import write_results
from .study import run

__all__ = ["main"]

#: The description of ``--help`` (the first line of the package's docstring).
_DESCRIPTION = "Saliency maps vs CAMs as seeds for weakly supervised semantic segmentation (issue 11)."


def _add_dataclass_args(p: argparse.ArgumentParser, cls: type, skip: Iterable[str] = ()) -> None:
    """One ``--flag`` per field of ``cls``, every default None so that only the flags given override the
    preset (:func:`_overrides`); tuples take ``nargs="+"``.

    Not :func:`paperlib.experiments._loop.add_dataclass_args`: its defaults are the dataclass's own (they
    would overwrite the quick preset's values) and a tuple field would be parsed with ``type=tuple``.
    """
    defaults = cls()
    for f in fields(cls):
        if f.name in skip:
            continue
        d = getattr(defaults, f.name)
        name = "--" + f.name.replace("_", "-")
        if isinstance(d, bool):
            p.add_argument(name, action=argparse.BooleanOptionalAction, default=None)
        elif isinstance(d, tuple):
            p.add_argument(name, type=type(d[0]) if d else float, nargs="+", default=None)
        elif f.name in ("limit", "init_from"):
            p.add_argument(name, type=int if f.name == "limit" else str, default=None)
        elif f.name == "methods":  # None (all) by default: the type comes from the field, not the default
            p.add_argument(name, nargs="+", default=None, metavar="METHOD")
        elif f.name == "fixed_t":
            p.add_argument(name, type=float, default=None, metavar="T")
        else:
            p.add_argument(name, type=type(d), default=None)


def _overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (lists back to tuples)."""
    names = {f.name for f in fields(cls)}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items() if k in names and v is not None}


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m paperlib.experiments.wsss [--preset quick|full] [options]``, ``... train-head``, ``... train-masker``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "python -m paperlib.experiments.wsss " + " ".join(shlex.quote(a) for a in argv)
    sub = argv[0] if argv and argv[0] in ("train-head", "train-masker", "evaluate") else "evaluate"
    rest = argv[1:] if argv and argv[0] == sub else argv
    prog = f"paperlib wsss {sub}"
    if sub == "train-head":
        p = argparse.ArgumentParser(prog=prog, description="Train the VOC head (cached features, cross-fitted mAP).")
        _add_dataclass_args(p, HeadConfig)
        a = p.parse_args(rest)
        path = train_head(HeadConfig(**_overrides(a, HeadConfig)), command=command)
        print(
            json.dumps(
                {
                    k: v
                    for k, v in json.loads(path.with_suffix(".json").read_text()).items()
                    if k in ("cross_fitted_mAP", "train_mAP", "feature_seconds", "fit_seconds")
                },
                indent=2,
            )
        )
        return
    if sub == "train-masker":
        p = argparse.ArgumentParser(prog=prog, description="Train the VOC masking model against the VOC black box.")
        _add_dataclass_args(p, MaskerConfig)
        a = p.parse_args(rest)
        kw = _overrides(a, MaskerConfig)
        if kw.get("init_from") == "none":
            kw["init_from"] = None
        path = train_voc_masker(MaskerConfig(**kw), command=command)
        print(path.with_suffix(".json").read_text())
        return
    p = argparse.ArgumentParser(prog=prog, description=_DESCRIPTION)
    p.add_argument("--preset", choices=list(PRESETS), default="quick")
    _add_dataclass_args(p, WSSSConfig, skip=("preset",))
    p.add_argument("--out-dir", type=Path, default=FIGURES_DIR)
    p.add_argument("--head", default=str(HEAD_PATH))
    p.add_argument("--masker", default=str(MASKER_PATH), help="VOC masking model checkpoint, or 'none'")
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="do not keep or use a state file in the cache folder (by default a killed run resumes)",
    )
    a = p.parse_args(rest)
    cfg = replace(PRESETS[a.preset], **_overrides(a, WSSSConfig))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    key = hashlib.sha1(json.dumps([asdict(cfg), a.head, a.masker], sort_keys=True).encode()).hexdigest()[:12]
    state = None if a.no_resume else cache_dir() / f"wsss-{cfg.preset}-{key}.state.pt"
    res = run(cfg, head=a.head, masker=None if a.masker == "none" else a.masker, progress=True, resume=state)
    md = write_results(res, a.out_dir)[1]
    print(md.read_text())

"""Ship trained maskers, and retrain every shipped model from scratch (``make train``).

Each shipped masker ``paperlib/checkpoints/<name>.pt`` has beside it ``<name>.json`` with the exact
training arguments, the command line, the training time and hardware, and ``<name>.log.jsonl``
with every step's terms. ``python -m paperlib.retrain`` runs those commands again (into
``runs/retrain/<name>``), reports how long each took, and with ``--ship`` replaces the shipped
files with the new ones.

``python -m paperlib.retrain --export runs/efficientnet_lite0 --name efficientnet_lite0`` turns
a finished training run into shipped files (fp16 weights).
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path
from typing import Sequence

from ..core._common import atomic_write_text, hardware
from ..core.paths import CHECKPOINT_DIR, REPO_ROOT
from ..core.storage import load_masker, save_masker
from ..experiments import cifar, wsss
from ..experiments import train as masker_training

__all__ = ["export_run", "command_for", "recorded_args", "retrain", "main"]


def command_for(train_args: Sequence[str]) -> str:
    """The shell command that trains with these arguments."""
    return "python -m paperlib.train " + " ".join(shlex.quote(a) for a in train_args)


def _train_seconds(log: Sequence[dict]) -> float:
    """Wall time of a run from its log; the clock restarts at 0 whenever a run resumes."""
    total, prev = 0.0, 0.0
    for r in log:
        total += r["time"] - prev if r["time"] >= prev else r["time"]
        prev = r["time"]
    return total


def export_run(
    run: Path, name: str, train_args: Sequence[str], *, dest: Path = CHECKPOINT_DIR, half: bool = True, notes: str = ""
) -> Path:
    """Copy a finished run into shipped files: ``<name>.pt`` (fp16), ``.json``, ``.log.jsonl``.

    Args:
        run: The run folder (holds ``masker.pt``, ``log.jsonl``, ``config.json``).
        name: Shipped name (the black box's name, as ``load_masker`` expects).
        train_args: The ``paperlib.train`` arguments that made it (recorded verbatim).
        notes: Anything else a reader must know about how the run went (restarts, changes).
    """
    run = Path(run)
    masker = load_masker(run / "masker.pt")
    log_lines = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if l.strip()]
    by_step = {r["step"]: r for r in log_lines}  # a resumed run may repeat steps after a kill: keep the last
    log_lines = [by_step[s] for s in sorted(by_step)]
    tail = log_lines[-50:]
    mean = lambda k: sum(r[k] for r in tail if r.get(k) == r.get(k)) / max(1, sum(1 for r in tail if r.get(k) == r.get(k)))
    info = {
        "name": name,
        "black_box": masker.config["black_box"],
        "command": command_for(train_args),
        "train_args": list(train_args),
        "train_config": json.loads((run / "config.json").read_text()),
        "masker_config": masker.config,
        "steps": log_lines[-1]["step"] if log_lines else 0,
        "train_seconds": round(_train_seconds(log_lines), 1),
        "last50": {
            k: round(mean(k), 4)
            for k in ("loss", "preserve", "destroy", "tv", "p_preserve", "p_destroy", "area_real", "area_fake")
        },
        "hardware": hardware(),
        "weights": "fp16" if half else "fp32",
        "notes": notes,
        "data": (
            "CIFAR-10 training split (50000 images; the shared JPEG copy under $PAPERLIB_DATA/cifar10)"
            if masker.config["black_box"] == "cifar10"
            else "ImageNet train sample (3035 labelled images, all 1000 classes), ImageFolder under $PAPERLIB_DATA/imagenet/train-sample"
        ),
    }
    dest.mkdir(parents=True, exist_ok=True)
    save_masker(masker, dest / f"{name}.pt", half=half, meta={"steps": info["steps"]})
    atomic_write_text("".join(json.dumps(r) + "\n" for r in log_lines), dest / f"{name}.log.jsonl")
    atomic_write_text(json.dumps(info, indent=2) + "\n", dest / f"{name}.json")
    return dest / f"{name}.pt"


def recorded_args(info: dict) -> list[str]:
    """A shipped masker's recorded ``paperlib.train`` arguments, with what its version of the code did by default.

    Runs recorded before the objective presets existed used the objective defaults of that time
    (``--preset-objective default``); runs recorded before per-sample draws drew fake labels and
    alternative images batch by batch (``--draws per-batch``).

    >>> recorded_args({"train_args": ["--steps", "5"], "train_config": {"steps": 5}})
    ['--steps', '5', '--preset-objective', 'default', '--draws', 'per-batch']
    """
    args, cfg = list(info["train_args"]), info.get("train_config", {})
    if "objective_preset" not in cfg and "--preset-objective" not in args:
        args += ["--preset-objective", "default"]
    if "draws" not in cfg and "--draws" not in args:
        args += ["--draws", "per-batch"]
    return args


def _with_out(args: Sequence[str], out: Path) -> list[str]:
    args = list(args)
    if "--out" in args:
        args[args.index("--out") + 1] = str(out)
    else:
        args += ["--out", str(out)]
    return args


def retrain(
    names: Sequence[str] | None = None, *, ship: bool = False, out: Path = REPO_ROOT / "runs" / "retrain"
) -> dict[str, float]:
    """Retrain shipped models with their recorded commands; returns seconds per model.

    Trained black boxes (``*_classifier``, i.e. CIFAR-10's) come first, with their recorded
    ``python -m paperlib.cifar train`` command; the maskers follow. Without ``ship`` the maskers
    are trained against the *shipped* black boxes, as the shipped maskers were.
    """
    infos = {p.stem: json.loads(p.read_text()) for p in sorted(CHECKPOINT_DIR.glob("*.json"))}
    names = sorted(names or infos, key=lambda n: (not n.endswith("_classifier"), n))
    times = {}
    for name in names:
        if name not in infos:
            raise SystemExit(f"No shipped model {name!r}; shipped: {', '.join(infos)}")
        if name.startswith("voc_"):  # the WSSS study's VOC head and masker (paperlib.experiments.wsss)
            args = [*infos[name]["train_args"], "--out", str(CHECKPOINT_DIR if ship else out / name)]
            print(f">>> {name}: python -m paperlib.experiments.wsss {' '.join(shlex.quote(a) for a in args)}", flush=True)
            t0 = time.time()
            wsss.main(args)
            times[name] = time.time() - t0
            continue
        if name.endswith("_classifier"):
            cmd = shlex.split(infos[name]["command"])
            args = _with_out(cmd[cmd.index("train") + 1 :], out / name)
            print(f">>> {name}: python -m paperlib.cifar train {' '.join(shlex.quote(a) for a in args)}", flush=True)
            t0 = time.time()
            cifar.main(["train", *args])
            times[name] = time.time() - t0
            print(f"<<< {name}: {times[name] / 60:.1f} min", flush=True)
            if ship:
                cifar.main(["export", str(out / name), "--command", infos[name]["command"]])
            continue
        args = _with_out(recorded_args(infos[name]), out / name)
        print(f">>> {name}: {command_for(args)}", flush=True)
        t0 = time.time()
        masker_training.train(masker_training._parse(args))
        times[name] = time.time() - t0
        print(f"<<< {name}: {times[name] / 60:.1f} min", flush=True)
        if ship:
            export_run(out / name, name, infos[name]["train_args"])
    for name, secs in times.items():
        print(f"{name}: {secs / 60:.1f} min on {hardware()['cpu']}")
    return times


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="paperlib retrain", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="shipped maskers to retrain (default: all)")
    ap.add_argument("--ship", action="store_true", help="replace the shipped files with the retrained ones")
    ap.add_argument("--export", type=Path, help="a finished run folder to ship")
    ap.add_argument("--name", help="shipped name for --export")
    ap.add_argument("--args", help="the paperlib.train arguments that made the --export run (one string)")
    ap.add_argument("--notes", default="", help="free text recorded with the export")
    a = ap.parse_args(argv)
    if a.export:
        if not a.name or a.args is None:
            ap.error("--export needs --name and --args")
        print(export_run(a.export, a.name, shlex.split(a.args), notes=a.notes))
        return
    retrain(a.names, ship=a.ship)


if __name__ == "__main__":
    main()

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
import tempfile
import time
from pathlib import Path
from typing import Sequence

from ..core._common import atomic_write_text, hardware
from ..core.paths import CHECKPOINT_DIR, REPO_ROOT
from ..core.storage import load_masker, save_masker
from ..experiments import cifar, wsss
from ..experiments import train as masker_training

__all__ = ["export_run", "export_snapshot", "ship_best", "command_for", "recorded_args", "retrain", "main"]


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


_DATA_WORDS = {
    "train-sample": "the ImageNet train sample (3,035 labelled images, all 1000 classes; $PAPERLIB_DATA/imagenet/train-sample)",
    "train-extra/imagenette": "the 600 Imagenette photographs ($PAPERLIB_DATA/imagenet/train-extra/imagenette)",
}


def _data_description(black_box: str, data: Sequence[str] | str | None) -> str:
    """Words for a run's ``--data`` (``None``: the default train sample).

    >>> _data_description("efficientnet_lite0", ["train-sample", "train-extra/imagenette"]).count("+")
    1
    """
    if black_box == "cifar10":
        return "CIFAR-10 training split (50000 images; the shared JPEG copy under $PAPERLIB_DATA/cifar10)"
    parts = [data] if isinstance(data, str) else list(data or ["train-sample"])
    return " + ".join(_DATA_WORDS.get(p, p) for p in parts)


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
        "data": _data_description(masker.config["black_box"], json.loads((run / "config.json").read_text()).get("data")),
    }
    dest.mkdir(parents=True, exist_ok=True)
    save_masker(masker, dest / f"{name}.pt", half=half, meta={"steps": info["steps"]})
    atomic_write_text("".join(json.dumps(r) + "\n" for r in log_lines), dest / f"{name}.log.jsonl")
    atomic_write_text(json.dumps(info, indent=2) + "\n", dest / f"{name}.json")
    return dest / f"{name}.pt"


def export_snapshot(
    run: Path,
    step: int,
    name: str,
    train_args: Sequence[str],
    *,
    gate_offset: float = 0.0,
    threshold: float | None = None,
    close_holes: bool = False,
    dest: Path = CHECKPOINT_DIR,
    notes: str = "",
) -> Path:
    """Ship the snapshot of ``run`` at ``step`` (``snapshots/step<step>.pt``, ``--snapshot-every``) with :func:`export_run`.

    The shipped log stops at ``step`` and the recorded command trains exactly ``step`` steps: with a
    constant learning rate and the run's seed, ``--steps <step>`` replays the run up to that snapshot
    (the first steps agree bit for bit; thread counts changed between stretches may move the last digits).

    Args:
        run: The run folder (``config.json``, ``log.jsonl``, ``snapshots/``).
        step: The chosen snapshot (chosen on the tuning split, never on reported images).
        train_args: The run's ``paperlib.train`` arguments; ``--steps`` is set to ``step`` and ``--out``
            to ``runs/<name>``.
        gate_offset, threshold, close_holes: Inference settings chosen on the tuning split, stored in the file.
    """
    run = Path(run)
    snap = run / "snapshots" / f"step{step:06d}.pt"
    if not snap.is_file():
        raise SystemExit(
            f"{snap} does not exist: the run has snapshots {sorted(p.name for p in (run / 'snapshots').glob('*.pt'))}."
        )
    cfg = json.loads((run / "config.json").read_text())
    if cfg.get("schedule", "constant") != "constant":
        raise SystemExit(
            f"{run} used the {cfg['schedule']!r} schedule: --steps {step} would not replay it; export a finished run."
        )
    args = list(train_args)
    args[args.index("--steps") + 1] = str(step)
    args = _with_out(args, Path("runs") / name)
    cfg.update(steps=step, out=f"runs/{name}")
    masker = load_masker(snap)
    masker.gate_offset, masker.threshold, masker.close_holes = gate_offset, threshold, close_holes
    log = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if l.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_masker(masker, tmp / "masker.pt")
        atomic_write_text("".join(json.dumps(r) + "\n" for r in log if r["step"] <= step), tmp / "log.jsonl")
        atomic_write_text(json.dumps(cfg, indent=2) + "\n", tmp / "config.json")
        return export_run(tmp, name, args, dest=dest, notes=notes)


def ship_best(
    run: Path,
    curve_json: Path,
    name: str,
    *,
    against: Path | None = None,
    out: Path | None = None,
    dest: Path = CHECKPOINT_DIR,
    ship: bool = True,
) -> dict:
    """Choose a run's snapshot on the tuning split, apply the shipping rule, report on held-out images, ship if it passes.

    1. The snapshot with the lowest tuning error at the paper's t = 0.5 in ``curve_json`` (validation
       images 401-500; ties go to the later step).
    2. Its gate offset and threshold: :func:`~paperlib.experiments.curve.tune_inference` (same images), with the
       mask's holes closed (``close_holes``) and open; the lower tuning error wins, a tie goes to closing (far fewer
       holes: :func:`~paperlib.experiments.ablation.speckle` on the same images is recorded).
    3. :func:`~paperlib.experiments.curve.shipping_rule` against the shipped masker ``name`` (or the masker file
       ``against``, e.g. the one shipped before a re-decision) on 401-500.
    4. Errors on images 1-400 (never used to choose) and 1-500 against the shipped masker and Grad-CAM
       at its tuned alpha (``figures/gradcam_localisation.json``): :func:`~paperlib.experiments.curve.report_heldout`.
    5. With ``ship`` and a passing rule: :func:`export_snapshot` replaces the shipped files.

    The decision is written to ``out`` (default: ``ship.json`` beside ``curve_json``) and returned.
    """
    from ..core.classifiers import load_classifier
    from ..core.paths import FIGURES_DIR
    from ..experiments import curve

    run, curve_json = Path(run), Path(curve_json)
    points = json.loads(curve_json.read_text())["points"]
    best = min(points, key=lambda p: (p["tune_error"]["0.5"], -p["step"]))
    snap = run / "snapshots" / f"step{best['step']:06d}.pt"
    black_box = load_classifier(load_masker(snap).black_box)
    candidate = load_masker(snap)
    inference = _tune_with_closing(candidate, black_box)
    shipped = load_masker(against if against else name)
    alpha = json.loads((FIGURES_DIR / "gradcam_localisation.json").read_text())["rows"][black_box.name]["alpha"]
    t_ship = shipped.threshold or 0.5
    readings = {"t=0.5": curve.per_image_correct("masker", black_box, masker=candidate, threshold=0.5)}
    if inference["threshold"] != 0.5:
        readings[f"t={inference['threshold']:g}"] = curve.per_image_correct(
            "masker", black_box, masker=candidate, threshold=inference["threshold"]
        )
    shipped_correct = curve.per_image_correct("masker", black_box, masker=shipped, threshold=t_ship)
    refs = {
        f"shipped {name} masker (t={t_ship:g})": shipped_correct,
        f"Grad-CAM (alpha {alpha:g}, tuned on 401-500)": curve.per_image_correct("gradcam", black_box, alpha=alpha),
    }
    chosen_reading = readings[f"t={inference['threshold']:g}"]
    rule = curve.shipping_rule(chosen_reading, shipped_correct)
    decision = {
        "run": run.name,
        "snapshot": best["step"],
        "passes": best["passes"],
        "chosen_on": "ILSVRC2012 val 401-500 at t = 0.5 (lowest error, ties to the later step)",
        "inference": {k: v for k, v in inference.items() if k != "grid"},
        "shipping_rule": rule,
        "heldout": curve.report_heldout(readings, refs),
        "shipped": bool(ship and rule["passes"]),
        "hardware": hardware(),
    }
    if decision["shipped"]:
        _ship_decision(run, best["step"], name, inference, rule, against=against, dest=dest)
    target = Path(out) if out else curve_json.with_name("ship.json")
    atomic_write_text(json.dumps(decision, indent=1) + "\n", target)
    return decision


def _tune_with_closing(candidate, black_box) -> dict:
    """Gate offset and threshold chosen on val 401-500 with the holes closed and open (the lower tuning error wins, a
    tie goes to closing); the candidate is left set to the choice. Returns the chosen settings with the other's."""
    from ..experiments import curve

    tuned = {}
    for close in (True, False):
        candidate.close_holes = close
        tuned[close] = curve.tune_inference(candidate, black_box)
        tuned[close]["speckle"] = _tuning_speckle(candidate, black_box)
    close = tuned[True]["tune_error"] <= tuned[False]["tune_error"]
    candidate.close_holes = close
    candidate.gate_offset, candidate.threshold = tuned[close]["gate_offset"], tuned[close]["threshold"]
    return {**tuned[close], "close_holes": close, "other": {k: v for k, v in tuned[not close].items() if k != "grid"}}


def _ship_decision(run: Path, step: int, name: str, inference: dict, rule: dict, *, against: Path | None, dest: Path) -> Path:
    """Export the chosen snapshot with its inference settings and a note naming the masker it replaces."""
    info_file = Path(against).with_suffix(".json") if against else CHECKPOINT_DIR / f"{name}.json"
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    train_args = _args_from_config(json.loads((run / "config.json").read_text()))
    return export_snapshot(
        run,
        step,
        name,
        train_args,
        gate_offset=inference["gate_offset"],
        threshold=inference["threshold"],
        close_holes=inference["close_holes"],
        dest=dest,
        notes=(
            f"Snapshot of step {step} of the run {run.name} (chosen on ILSVRC2012 val 401-500 at t = 0.5); "
            f"replaces the masker trained with `{info.get('command', '?')}` under the shipping rule "
            f"(tuning-split gain {rule['gain_points']:+.1f} +- {rule['se_points']:.1f} points)."
        ),
    )


def _tuning_speckle(masker, black_box) -> dict[str, float]:
    """Mean islands and holes per mask (:func:`~paperlib.experiments.ablation.speckle`) on validation images 401-500."""
    import torch

    from ..experiments.ablation import speckle
    from ..experiments.evaluate import TUNE_SUBSET, val_batches

    counts: dict[str, list] = {"islands": [], "holes": []}
    for b in val_batches(black_box.input_size, limit=TUNE_SUBSET[1], batch_size=50, start=TUNE_SUBSET[0]):
        with torch.no_grad():
            low = masker(b.images, b.labels, return_aux=True).mask_low
        for k, v in speckle(low).items():
            counts[k].append(v.float())
    return {k: round(float(torch.cat(v).mean()), 2) for k, v in counts.items()}


def _args_from_config(cfg: dict) -> list[str]:
    """The ``paperlib.train`` arguments of a run, rebuilt from its ``config.json`` (the flags that differ from defaults
    are not known here, so every recorded setting that has a flag is written out)."""
    args = ["--black-box", cfg["black_box"], "--widths", *map(str, cfg["widths"]), "--blocks", str(cfg["blocks"])]
    if cfg.get("output_gate"):
        args.append("--output-gate")
    if cfg.get("objective_preset"):
        args += ["--preset-objective", cfg["objective_preset"]]
    args += ["--class-embedding", cfg.get("class_embedding", "learned"), "--schedule", cfg.get("schedule", "constant")]
    args += [
        "--weight-decay",
        f"{cfg.get('weight_decay', 0.0):g}",
        "--lr",
        f"{cfg['lr']:g}",
        "--batch-size",
        str(cfg["batch_size"]),
    ]
    args += ["--steps", str(cfg["steps"]), "--seed", str(cfg.get("seed", 0))]
    data = cfg.get("data")
    if data:
        args += ["--data", *([data] if isinstance(data, str) else data)]
    return args


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
    ap.add_argument(
        "--ship-best", type=Path, metavar="RUN", help="choose RUN's snapshot on val 401-500 (--curve), ship it if the rule passes"
    )
    ap.add_argument("--curve", type=Path, help="the curve.json of --ship-best (python -m paperlib.experiments.curve)")
    ap.add_argument("--dry-run", action="store_true", help="with --ship-best: decide and report, do not ship")
    ap.add_argument("--against", type=Path, help="with --ship-best: the masker file to compare with (default: the shipped one)")
    a = ap.parse_args(argv)
    if a.ship_best:
        if not a.name or not a.curve:
            ap.error("--ship-best needs --name (the shipped masker to compare with) and --curve")
        d = ship_best(a.ship_best, a.curve, a.name, against=a.against, ship=not a.dry_run)
        print(json.dumps({k: d[k] for k in ("snapshot", "inference", "shipping_rule", "shipped")}, indent=1))
        return
    if a.export:
        if not a.name or a.args is None:
            ap.error("--export needs --name and --args")
        print(export_run(a.export, a.name, shlex.split(a.args), notes=a.notes))
        return
    retrain(a.names, ship=a.ship)


if __name__ == "__main__":
    main()

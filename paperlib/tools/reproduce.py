"""``make reproduce``: run every notebook, skip cleanly what needs missing data, and summarise.

A notebook says what data it needs with :func:`requires` (first code cell after the
parameters)::

    from paperlib.tools.reproduce import requires
    requires("imagenet")          # or "cifar10" (download=True tries torchvision), "voc2012"

When the data are missing, :func:`requires` raises :class:`NotebookSkipped` with one line saying
what is missing and how to get it; the runner (``python -m paperlib.tools.reproduce``) records the
notebook as *skipped* instead of failed and goes on. A notebook that declares nothing but stops on
an uncaught :class:`paperlib.errors.DataNotFoundError` is treated the same way, so any notebook,
present or future, takes part. With ``--strict`` (``make reproduce STRICT=1``; environment
``PAPERLIB_STRICT=1``, which ``make test`` sets for the notebooks) a skip is a failure, and
:func:`requires` raises the full ``DataNotFoundError`` instead.

At the end the runner prints a summary (ran / skipped and why / failed / figures written), writes it
to ``figures/reproduce_summary.json``, copies the tables written by this run into
``results/<preset>/`` (so a quick run never overwrites the full-preset reference results), builds
``figures/report.md`` (which marks the figures of skipped notebooks) and exits 0 when nothing failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

from ..core.errors import DataNotFoundError, InputError, PaperlibError
from ..core.paths import FIGURES_DIR, REPO_ROOT
from .sample_images import strict

__all__ = ["NotebookSkipped", "requires", "run_notebooks", "archive_results", "RESULTS_DIR", "main"]

RESULTS_DIR: Path = REPO_ROOT / "results"
SUMMARY_NAME = "reproduce_summary.json"
#: exception names (as the kernel reports them) that mean "skipped for missing data"
SKIP_ERRORS = ("NotebookSkipped", "DataNotFoundError")

_HOW = {
    "imagenet": "ImageNet is licence-gated: `make data` says which files to download and then checks and converts them",
    "cifar10": "`make data` downloads it (torchvision), or put a copy under the data root",
    "voc2012": "`make data` downloads it (torchvision), or put a copy under the data root",
}


class NotebookSkipped(PaperlibError):
    """Raised by a notebook that cannot run for missing data; the message is one line."""


def _one_line(text: str, limit: int = 160) -> str:
    """The message on one line (a list of paths looked in is kept, joined), cut at ``limit`` characters."""
    lines = str(text).split("\n")
    keep = [lines[0]] + [ln.strip() for ln in lines[1:] if ln.strip().startswith("- ")]
    line = " ".join(" ".join(keep).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _check(name: str, download: bool) -> None:
    from ..core import data, paths
    from ..core.datafiles import _cifar_source

    if name == "imagenet":
        data.ImageNetVal(limit=1)
    elif name == "cifar10":
        try:
            _cifar_source("test", None, download=False)
        except DataNotFoundError:
            if not download:
                raise
            from .getdata import download_cifar10

            try:
                download_cifar10(paths.data_root())
            except Exception as exc:  # offline, proxy, disk full: say so in the skip line
                raise DataNotFoundError(
                    f"CIFAR-10 not found under {paths.data_root() / 'cifar10'} and the download failed "
                    f"({type(exc).__name__}: {_one_line(exc, 80)})"
                ) from exc
    elif name == "voc2012":
        data.VOCSegmentation()
    else:
        raise InputError(f"unknown data set {name!r}; known: imagenet, cifar10, voc2012")


def requires(*names: str, download: bool = False) -> None:
    """Skip the notebook (raise :class:`NotebookSkipped`, one line) unless the named data sets are found.

    Args:
        names: ``"imagenet"`` (validation images with boxes), ``"cifar10"``, ``"voc2012"``.
        download: Try a download (CIFAR-10 through torchvision) before giving up.

    Under ``PAPERLIB_STRICT=1`` the underlying :class:`DataNotFoundError` is raised unchanged.
    """
    for name in names:
        try:
            _check(name, download)
        except DataNotFoundError as exc:
            if strict():
                raise
            raise NotebookSkipped(f"needs {name}: {_one_line(exc, 200)} -- {_HOW.get(name, '')}") from None


# --------------------------------------------------------------------------- runner
def _snapshot(folder: Path) -> dict[str, int]:
    if not folder.is_dir():
        return {}
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()}


def _written(before: dict[str, int], after: dict[str, int]) -> list[str]:
    skip = {"report.md", SUMMARY_NAME}
    return sorted(n for n, t in after.items() if before.get(n) != t and n not in skip)


def run_notebooks(
    notebooks: Sequence[Path],
    preset: str = "quick",
    *,
    strict_mode: bool = False,
    out_dir: Path | None = None,
    figures: Path = FIGURES_DIR,
    log_output: bool = True,
) -> list[dict]:
    """Execute notebooks with papermill (``preset``, ``interactive=False``); one record per notebook.

    Records: ``{"notebook", "status": "ran" | "skipped" | "failed", "seconds", "reason", "written"}``.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    out_dir = out_dir or figures / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PAPERLIB_HEADLESS"] = "1"
    os.environ["PAPERLIB_STRICT"] = "1" if strict_mode else "0"
    os.environ.setdefault("MPLBACKEND", "Agg")
    records = []
    for nb in map(Path, notebooks):
        name = nb.stem
        print(f">>> {name} ({preset})", flush=True)
        before, t0 = _snapshot(figures), time.time()
        status, reason = "ran", ""
        try:
            pm.execute_notebook(
                str(nb),
                str(out_dir / nb.name),
                parameters={"preset": preset, "interactive": False},
                cwd=str(nb.parent),
                log_output=log_output,
                progress_bar=False,
                start_timeout=600,
            )
        except PapermillExecutionError as exc:
            if exc.ename in SKIP_ERRORS:
                status, reason = "skipped", _one_line(exc.evalue, 400)
            else:
                status, reason = "failed", f"{exc.ename}: {_one_line(exc.evalue)}"
        except Exception as exc:  # kernel died, bad notebook file
            status, reason = "failed", f"{type(exc).__name__}: {_one_line(exc)}"
        rec = {
            "notebook": name,
            "status": status,
            "seconds": round(time.time() - t0, 1),
            "reason": reason,
            "written": _written(before, _snapshot(figures)),
        }
        records.append(rec)
        print(f"<<< {name}: {status}{' -- ' + reason if reason else ''} ({rec['seconds']} s)", flush=True)
    return records


def archive_results(names: Sequence[str], preset: str, figures: Path = FIGURES_DIR, results: Path = RESULTS_DIR) -> list[Path]:
    """Copy the tables (``<stem>.json`` + ``.md``) among ``names`` whose JSON says ``preset`` into ``results/<preset>/``."""
    copied = []
    for n in names:
        src = figures / n
        if src.suffix != ".json" or not src.is_file():
            continue
        try:
            meta = json.loads(src.read_text())
        except ValueError:
            continue
        if not isinstance(meta, dict) or meta.get("preset") != preset:
            continue
        dest = results / preset
        dest.mkdir(parents=True, exist_ok=True)
        for f in (src, src.with_suffix(".md")):
            if f.is_file():
                tmp = dest / f".{f.name}.tmp"
                shutil.copyfile(f, tmp)
                os.replace(tmp, dest / f.name)
                copied.append(dest / f.name)
    return copied


def summary_text(records: Sequence[dict], preset: str, seconds: float) -> str:
    count = {s: sum(r["status"] == s for r in records) for s in ("ran", "skipped", "failed")}
    lines = [
        f"==== reproduce (preset {preset}): {count['ran']} ran, {count['skipped']} skipped, "
        f"{count['failed']} failed, {seconds:.0f} s"
    ]
    width = max((len(r["notebook"]) for r in records), default=10)
    for r in records:
        tail = (
            r["reason"]
            if r["status"] != "ran"
            else ("figures: " + ", ".join(r["written"]) if r["written"] else "no files written")
        )
        lines.append(f"{r['status']:8s} {r['notebook']:{width}s} {r['seconds']:6.0f} s  {tail}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="paperlib reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+", type=Path, help="notebooks (.ipynb) in order")
    ap.add_argument("--preset", default="quick", choices=["quick", "full"])
    ap.add_argument(
        "--strict", action="store_true", default=strict(), help="any skipped notebook is a failure (default from PAPERLIB_STRICT)"
    )
    ap.add_argument("--no-report", action="store_true", help="do not rebuild figures/report.md")
    args = ap.parse_args(argv)
    t0 = time.time()
    records = run_notebooks(args.notebooks, args.preset, strict_mode=args.strict)
    written = sorted({n for r in records for n in r["written"]})
    archived = archive_results(written, args.preset)
    seconds = time.time() - t0
    summary = {
        "preset": args.preset,
        "strict": args.strict,
        "seconds": round(seconds, 1),
        "notebooks": records,
        "results": [str(p.relative_to(REPO_ROOT)) for p in archived],
    }
    from ..core._common import atomic_write_text

    atomic_write_text(json.dumps(summary, indent=2), FIGURES_DIR / SUMMARY_NAME)
    if not args.no_report:
        from .claims import write as write_claims
        from .report import build_report

        try:
            write_claims()  # figures/claims.{json,md} and the README's ledger, from the result JSONs
        except PaperlibError as exc:
            print(f"claims ledger not rebuilt: {exc}", file=sys.stderr)
        build_report()
    print(summary_text(records, args.preset, seconds))
    if archived:
        print(f"tables of this run also in results/{args.preset}/: " + ", ".join(p.name for p in archived))
    failed = [r for r in records if r["status"] == "failed"]
    skipped = [r for r in records if r["status"] == "skipped"]
    if failed:
        print(f"FAILED: {', '.join(r['notebook'] for r in failed)} (executed copies with the traceback in figures/notebooks/)")
        return 1
    if skipped and args.strict:
        print(f"STRICT: {len(skipped)} notebook(s) skipped for missing data; that is a failure under STRICT=1")
        return 1
    if skipped:
        print("Skipped notebooks need data: `make data` downloads what can be downloaded and says how to get the rest.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

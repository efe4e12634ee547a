"""The ledger of claims: every claim of the two papers, with our measured numbers and whether it holds.

``python -m paperlib.tools.claims`` (``paperlib claims``; ``make reproduce`` runs it after the notebooks)
reads the committed result JSONs (``results/full/`` first, then ``results/quick/``, then ``figures/``:
the largest preset that has a number) and writes ``figures/claims.json`` and ``figures/claims.md``,
and the same table into ``README.md`` between the markers ``<!-- claims:start -->`` and
``<!-- claims:end -->``. Nothing in the ledger is typed by hand: each row is a function of the JSONs,
and ``tests/test_claims.py`` fails when README, ``figures/claims.md`` or ``figures/claims.json`` differ
from what the JSONs give.

Each row: ``id``, ``source`` (the paper and where), ``claim`` (in words), ``paper`` (the paper's
number), ``ours`` (the measured number(s)), ``holds`` (true/false: our measurement supports the claim
or not), ``preset`` and ``file`` (where the numbers come from) and ``note``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Callable, Sequence

from ..core._common import atomic_write_text, write_result
from ..core.errors import DataNotFoundError, one_line_errors
from ..core.paths import FIGURES_DIR, REPO_ROOT

__all__ = ["CLAIMS", "ledger", "check", "to_markdown", "update_readme", "write", "main"]

PAPER = "Dabkowski & Gal 2017"
WSSS = "Maruf et al. (saliency vs CAMs for WSSS)"
START, END = "<!-- claims:start -->", "<!-- claims:end -->"


Loader = Callable[[str], tuple[dict[str, Any], str]]


def _loader(root: Path, folders: Sequence[Path]) -> Loader:
    """``load(name)``: the JSON ``name`` from the first of ``folders`` that has it, and its path (relative to ``root`` when inside)."""

    def load(name: str) -> tuple[dict[str, Any], str]:
        for folder in folders:
            f = Path(folder) / f"{name}.json"
            if f.is_file():
                try:
                    where = str(f.resolve().relative_to(Path(root).resolve()))
                except ValueError:
                    where = str(f)
                return json.loads(f.read_text()), where
        raise DataNotFoundError(f"No {name}.json under {', '.join(map(str, folders))}: run `make reproduce` first.")

    return load


def _row(id: str, source: str, claim: str, paper: Any, ours: Any, holds: bool, d: dict, file: str, note: str = "") -> dict:
    return {
        "id": id,
        "source": source,
        "claim": claim,
        "paper": paper,
        "ours": ours,
        "holds": bool(holds),
        "preset": d.get("preset", "?"),
        "file": file,
        "note": note,
    }


def _table1(load: Loader) -> list[dict]:
    d, f = load("table1")
    out = []
    for r in d["rows"]:
        bb = r["black box"]
        out.append(
            _row(
                f"table1_{bb}",
                f"{PAPER}, Table 1",
                f"masker localisation error on {bb} at most the paper's ({r['paper black box']})",
                r["paper"],
                r["ours"],
                r["ours"] <= r["paper"],
                d,
                f,
                f"val 1-{r['n']}; {bb} stands in for {r['paper black box']}",
            )
        )
        out.append(
            _row(
                f"table1_{bb}_centre",
                f"{PAPER}, Table 1 vs Table 2",
                f"the {bb} masker localises better than the centre box",
                None,
                {"masker": r["ours"], "centre box": r["center box (ours)"]},
                r["ours"] < r["center box (ours)"],
                d,
                f,
            )
        )
    return out


def _by_method(rows: list[dict], key: str = "method") -> dict[str, dict]:
    return {r[key]: r for r in rows}


def _table2(load: Loader) -> list[dict]:
    d, f = load("table2")
    m = _by_method(d["rows"])
    mk = m["Masking model"]
    others = {k: r["ours"] for k, r in m.items() if k != "Masking model"}
    best_other = min(others, key=others.get)
    return [
        _row(
            "table2_best",
            f"{PAPER}, Table 2",
            "the masker localises best of all methods",
            mk["paper"],
            {"masker": mk["ours"], **others},
            mk["ours"] < others[best_other],
            d,
            f,
            f"best other: {best_other} {others[best_other]}; {d.get('black_box', '')}, the Mask row on {m.get('Mask (iterative)', {}).get('n', '?')} images",
        ),
        _row(
            "table2_grad",
            f"{PAPER}, Table 2",
            "the masker localises better than Grad",
            [mk["paper"], m["Grad"]["paper"]],
            {"masker": mk["ours"], "Grad": m["Grad"]["ours"]},
            mk["ours"] < m["Grad"]["ours"],
            d,
            f,
        ),
    ]


def _table3(load: Loader) -> list[dict]:
    d, f = load("table3")
    m = _by_method(d["rows"])
    s = {k: r["saliency (ours)"] for k, r in m.items()}
    p = {k: r["saliency (paper)"] for k, r in m.items()}
    order = s["Masking model"] < s["Grad"] < s["Center box"]
    return [
        _row(
            "table3_order",
            f"{PAPER}, Table 3",
            "saliency metric: masker < Grad < centre box (lower is better)",
            {k: p[k] for k in ("Masking model", "Grad", "Center box")},
            {k: s[k] for k in ("Masking model", "Grad", "Center box")},
            order,
            d,
            f,
        )
    ]


def _speed(load: Loader) -> list[dict]:
    d, f = load("bench")
    ref = next(r for r in d["rows"] if r["method"].startswith("Masking model, shipped `efficientnet_lite0`"))
    rate = ref["batches"]["16"]["masks_per_s"]["median"]
    mask = next((r for r in d["rows"] if r["method"].startswith("Mask (iterative")), None)
    out = [
        _row(
            "speed_masks_per_s",
            f"{PAPER}, sec. 5",
            "more than 100 masks/s (224 px; the paper: a 2017 GPU)",
            100.0,
            round(rate, 1),
            rate > 100.0,
            d,
            f,
            f"ours on {d.get('hardware_line', 'this machine')}, eager PyTorch, batch 16: not the paper's hardware",
        )
    ]
    try:
        rt, rf = load("realtime_cpu")
        at_224 = [r for r in rt["rows"] if r.get("masks_per_s_16") and "@" not in r["candidate"]]  # @160: smaller inputs
        best = max(at_224, key=lambda r: r["masks_per_s_16"]["median"])
        out.append(
            _row(
                "speed_best_cpu_backend",
                f"{PAPER}, sec. 5",
                "more than 100 masks/s at 224 px, with the best CPU back end",
                100.0,
                round(best["masks_per_s_16"]["median"], 1),
                best["masks_per_s_16"]["median"] > 100.0,
                rt,
                rf,
                f"{best['candidate']}, batch 16, {rt.get('hardware_line', '')}; not the paper's GPU",
            )
        )
    except DataNotFoundError:
        pass
    if mask is not None and mask.get("speedup"):
        out.append(
            _row(
                "speed_vs_iterative",
                f"{PAPER}, sec. 5",
                "the masker is orders of magnitude faster than the iterative Mask",
                None,
                round(mask["speedup"], 1),
                mask["speedup"] >= 100.0,
                d,
                f,
                "speed-up at batch 16 on the same machine (a ratio, hardware-independent)",
            )
        )
    return out


def _cifar(load: Loader) -> list[dict]:
    d, f = load("cifar10")
    m = {r["quantity"]: r for r in d["rows"]}
    acc = m["black box test accuracy (%)"]
    kept = m.get("p(true class), only the mask kept", {}).get("ours")
    removed = m.get("p(true class), mask removed", {}).get("ours")
    return [
        _row(
            "cifar10_black_box",
            f"{PAPER}, sec. 5 (CIFAR-10)",
            "the CIFAR-10 black box reaches 92 % test accuracy",
            acc["paper"],
            acc["ours"],
            acc["ours"] >= acc["paper"],
            d,
            f,
            "test split of the JPEG copy (slightly below the official files)",
        ),
        _row(
            "cifar10_masks",
            f"{PAPER}, Fig. 6",
            "CIFAR-10 masks keep the class and removing them removes it",
            None,
            {"p kept": kept, "p removed": removed, "area": m.get("mean mask area", {}).get("ours")},
            kept is not None and removed is not None and kept > 2 * removed,
            d,
            f,
            "holds = p(kept) more than twice p(removed)",
        ),
    ]


def _fig2(load: Loader) -> list[dict]:
    d, f = load("fig2")
    ours, differ = {}, False
    for row in d["photos"]:
        ssr, sdr = row["modes"]["ssr"], row["modes"]["sdr"]
        ours[row["photo"]] = {
            "SSR a": ssr["areas"][ssr["chosen"]] if ssr["met"] else None,
            "SDR a": sdr["areas"][sdr["chosen"]] if sdr["met"] else None,
            "IoU": row["iou_ssr_sdr"],
        }
        differ |= ssr["met"] and sdr["met"] and row["iou_ssr_sdr"] < 0.5
    return [
        _row(
            "fig2_ssr_sdr_differ",
            f"{PAPER}, sec. 3, Fig. 2",
            "the smallest sufficient and the smallest destroying region of an image are different regions",
            None,
            ours,
            differ,
            d,
            f,
            "holds = on some photograph both regions meet their criteria (SSR keeps >= 90 % of p, SDR removal leaves "
            "<= 10 %) and their binarised masks overlap with IoU < 0.5; a = None: no swept area up to "
            f"{max(d['areas']):.0%} met the criterion",
        )
    ]


def _wsss(load: Loader) -> list[dict]:
    d, f = load("wsss")
    c = d["claim"]
    rows = {r["key"]: r for r in d["rows"]}
    return [
        _row(
            "wsss_crops_vs_cam",
            f"{WSSS}",
            f"saliency with stochastic crops matches CAM on mIoU (within {c['margin']} points) and recovers more NDR",
            {"crops mIoU": 43.0, "CAM mIoU": 43.7, "crops NDR": 55.7, "CAM NDR": 50.8},
            {
                "crops mIoU": rows["crops_w"]["mIoU"],
                "CAM mIoU": rows["cam"]["mIoU"],
                "crops NDR": rows["crops_w"]["NDR recall"],
                "CAM NDR": rows["cam"]["NDR recall"],
            },
            c["holds"],
            d,
            f,
            "VOC images; the reference numbers are the authors' code's (ResNet-50, VOC train)",
        ),
        _row(
            "wsss_masker_vs_cam",
            "this project (the masker in the WSSS study)",
            "the masker's pseudo-masks match CAM on mIoU with higher NDR recall",
            None,
            {
                "masker mIoU": rows["masker"]["mIoU"],
                "CAM mIoU": rows["cam"]["mIoU"],
                "masker NDR": rows["masker"]["NDR recall"],
                "CAM NDR": rows["cam"]["NDR recall"],
            },
            c["mIoU masker - cam"] >= -c["margin"] and c["NDR recall masker - cam"] > 0,
            d,
            f,
        ),
    ]


#: The ledger's sections, in order.
CLAIMS: list[Callable[[Path], list[dict]]] = [_fig2, _table1, _table2, _table3, _speed, _cifar, _wsss]


def ledger(root: str | Path = REPO_ROOT, folders: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """Every claim's row, from the result JSONs under ``root`` (``results/full``, then ``results/quick``, then
    ``figures``: the largest preset that has a number), or from ``folders`` in that order."""
    root = Path(root)
    folders = (
        [Path(f) for f in folders]
        if folders is not None
        else [root / "results" / "full", root / "results" / "quick", root / "figures"]
    )
    load = _loader(root, folders)
    rows = [r for section in CLAIMS for r in section(load)]
    return {
        "title": "Claims of both papers, measured",
        "rows": rows,
        "holding": sum(r["holds"] for r in rows),
        "total": len(rows),
    }


def check(ids: Sequence[str], figures: str | Path = FIGURES_DIR) -> dict[str, str]:
    """Compare claims computed from a fresh run's JSONs in ``figures`` with the committed ledger there.

    For each claim id whose committed row (``figures/claims.json``) has the same preset as the fresh
    result, the two must agree on whether the claim holds: a regression, or an improvement that flips a
    claim, raises until the ledger is regenerated (``python -m paperlib.tools.claims``) and the prose that
    cites it is revised. Rows of another preset are not compared (a smoke run's few images say nothing).

    Returns:
        ``{id: "holds" | "does not hold" | "not compared (...)"}``, for the notebook to print.

    Raises:
        AssertionError: A claim flipped at the committed row's preset.
    """
    figures = Path(figures)
    committed = {r["id"]: r for r in json.loads((figures / "claims.json").read_text())["rows"]}
    load = _loader(REPO_ROOT, [figures])
    fresh = {}
    for section in CLAIMS:
        try:
            fresh.update({r["id"]: r for r in section(load)})
        except (DataNotFoundError, KeyError, StopIteration):
            continue  # that section's JSON is not in this run
    out = {}
    for i in ids:
        if i not in fresh:
            out[i] = "not compared (no fresh result)"
            continue
        new, old = fresh[i], committed.get(i)
        if old is None or old["preset"] != new["preset"]:
            out[i] = f"not compared (fresh {new['preset']}, ledger {old['preset'] if old else 'none'})"
            continue
        if new["holds"] != old["holds"]:
            raise AssertionError(
                f"claim {i!r} ({new['claim']}) {'now holds' if new['holds'] else 'no longer holds'} at preset "
                f"{new['preset']}: ours {new['ours']} (ledger: {old['ours']}). Regenerate the ledger "
                "(python -m paperlib.tools.claims) and revise the sentences that cite it."
            )
        out[i] = "holds" if new["holds"] else "does not hold"
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return " / ".join(_fmt(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def to_markdown(result: dict[str, Any]) -> str:
    """The ledger as a Markdown table."""
    lines = [
        f"{result['holding']} of {result['total']} claims hold in our measurements "
        "(`python -m paperlib.tools.claims`, from the committed result JSONs).",
        "",
        "| claim | source | paper | ours | holds | preset | from |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(
            f"| {r['claim']}{note} | {r['source']} | {_fmt(r['paper'])} | {_fmt(r['ours'])} | {'**yes**' if r['holds'] else 'no'} "
            f"| `{r['preset']}` | `{r['file']}` |"
        )
    return "\n".join(lines) + "\n"


def update_readme(text: str, table: str) -> str:
    """``text`` with the part between the ledger markers replaced by ``table``."""
    if START not in text or END not in text:
        raise DataNotFoundError(f"README.md lacks the markers {START} and {END} around the ledger.")
    return re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{table}{END}", text, flags=re.S)


def write(root: str | Path = REPO_ROOT, figures: str | Path = FIGURES_DIR) -> dict[str, Any]:
    """Write ``figures/claims.{json,md}`` and the README's ledger; returns the ledger."""
    result = ledger(root)
    table = to_markdown(result)
    write_result(result, f"# {result['title']}\n\n{table}", figures, "claims", indent=1, newline=True)
    readme = Path(root) / "README.md"
    if readme.is_file():
        atomic_write_text(update_readme(readme.read_text(), table), readme)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m paperlib.tools.claims``."""
    ap = argparse.ArgumentParser(prog="paperlib claims", description=__doc__.split("\n\n")[0])
    ap.parse_args(argv)
    with one_line_errors("paperlib claims"):
        result = write()
    print(to_markdown(result))


if __name__ == "__main__":
    main()

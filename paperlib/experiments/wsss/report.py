"""The study's report: the claim in words, the markdown tables beside the reference, the written files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ...core._common import write_result
from ...core.paths import FIGURES_DIR
from .config import METHODS, REFERENCE, WSSSConfig, hardware_line
from .data import _sample
from .maps import compute_maps

__all__ = ["SHORT_METHODS", "claim_sentence", "outcome", "sample_maps", "to_markdown", "write_results"]

#: Short names of the methods for figure titles (:data:`~paperlib.experiments.wsss.config.METHODS` has the long ones).
SHORT_METHODS: dict[str, str] = {
    "cam": "CAM",
    "grad": "gradient",
    "crops_w": "crops, weighted",
    "crops_u": "crops, unweighted",
    "crops_w_abs": "crops, per-crop abs",
    "masker": "masking model",
}


def claim_sentence(result: dict[str, Any]) -> str:
    """One paragraph stating the outcome of the claim, from the computed numbers."""
    c = result.get("claim")
    by = {r["key"]: r for r in result["rows"]}
    if c is None or "cam" not in by or "crops_w" not in by:
        parts = [
            f"On {result['images_scored']} VOC images ({result['preset']} preset) the claim was not tested: it needs both "
            "CAM and the weighted crops, and this run scored only " + ", ".join(sorted(by)) + "."
        ]
    else:
        cam, cw = by["cam"], by["crops_w"]
        verdict = "holds" if c["holds"] else "does not hold"
        parts = [
            f"On {result['images_scored']} VOC images ({result['preset']} preset, {result['config']['n_crops']} crops), "
            f"the claim {verdict}: weighted crops reach mIoU {cw['mIoU']:.1f} at t = {cw['t']:.2f} against CAM's "
            f"{cam['mIoU']:.1f} at t = {cam['t']:.2f} (difference {c['mIoU crops_w - cam']:+.1f} points, "
            f"{'within' if c['matches_on_mIoU'] else 'outside'} the {c['margin']:.0f}-point margin), and NDR recall "
            f"{cw['NDR recall']:.1f} against {cam['NDR recall']:.1f} ({c['NDR recall crops_w - cam']:+.1f}; "
            f"{'higher' if c['higher_NDR_recall'] else 'not higher'})."
        ]
    if "masker" in by:
        m = by["masker"]
        parts.append(
            f" The masking model gives mIoU {m['mIoU']:.1f} (t = {m['t']:.2f}) and NDR recall {m['NDR recall']:.1f} "
            f"in one forward pass per image."
        )
    return "".join(parts)


def outcome(result: dict[str, Any]) -> str:
    """The outcome of a run in words: the claim, the reference, weighting, crop count and speed.

    :func:`claim_sentence`, then how the weighted crops compare with the unweighted ones and with the
    single full-image gradient (beside the reference's numbers), whether mIoU rises with the number of
    crops, and (when the masking model was timed) the seconds per map of each method.

    Args:
        result: A result of :func:`paperlib.experiments.wsss.run` (or its JSON) that scored
            ``crops_w``, ``crops_u`` and ``grad``.
    """
    by = {r["key"]: r for r in result["rows"]}
    cw, cu, grad = by["crops_w"], by["crops_u"], by["grad"]
    ref = REFERENCE["rows"]
    text = [claim_sentence(result)]
    text.append(
        f" The reference (ResNet-50 on VOC train) reports CAM {ref['cam']['mIoU']} mIoU and weighted crops "
        f"{ref['crops_w']['mIoU']} with {ref['crops_w']['n_crops']} crops; here weighting the crops by sigmoid(logit) "
        f"{'helps' if cw['mIoU'] > cu['mIoU'] else 'does not help'} ({cw['mIoU']:.1f} vs {cu['mIoU']:.1f} unweighted; "
        f"reference {ref['crops_w']['mIoU']} vs {ref['crops_u']['mIoU']}), and crop aggregation "
        f"{'improves on' if cw['mIoU'] > grad['mIoU'] else 'does not improve on'} the single full-image gradient "
        f"({grad['mIoU']:.1f})."
    )
    sp = result["crop_sweep"]
    trend = "rises" if sp[-1]["mIoU (best t)"] > sp[0]["mIoU (best t)"] else "does not rise"
    text.append(
        f" mIoU {trend} with the number of crops ({sp[0]['n_crops']}: {sp[0]['mIoU (best t)']:.1f}, "
        f"{sp[-1]['n_crops']}: {sp[-1]['mIoU (best t)']:.1f})."
    )
    spm = result["seconds_per_map"]
    if spm.get("masker"):
        text.append(
            f" Per map on this CPU: CAM {spm['cam']:.2f} s, gradient {spm['grad']:.2f} s, "
            f"{result['config']['n_crops']} crops {spm['crops_w']:.2f} s, masking model {spm['masker']:.3f} s "
            f"({spm['crops_w'] / spm['masker']:.0f} times faster than the crops)."
        )
    return "".join(text)


def sample_maps(ds: Any, i: int, *, bb: Any, masker: Any, cfg: WSSSConfig) -> dict[str, Any]:
    """The maps of one VOC image, as :func:`~paperlib.experiments.wsss.run` keeps them (``keep_maps``).

    For pictures of images the run did not keep (the notebook's class selector); the crops are drawn
    with a generator seeded by ``cfg.seed``.

    Args:
        ds: The VOC images (:func:`~paperlib.experiments.wsss.open_voc`).
        i: Index into ``ds``.
        bb: The VOC black box (:func:`~paperlib.experiments.wsss.load_voc_black_box`).
        masker: The VOC masking model or None.
        cfg: The study's configuration (methods, crops, seed).

    Returns:
        ``{"image": (3, H, W), "gt": (H, W), "classes": [0-based], "id": str, <method>: (K, H, W), ...}``.
    """
    image, gt, classes, image_id = _sample(ds, i)
    gen = torch.Generator().manual_seed(cfg.seed)
    maps = compute_maps(image, classes, bb=bb, masker=masker, cfg=cfg, generator=gen)
    return {"image": image, "gt": gt, "classes": classes, "id": image_id, **maps}


def _overlap_words(model: dict[str, Any]) -> str:
    """What the result records about the scored images and the model's training images, in words."""
    known = model.get("scored_on_training_images")
    if known is None:
        why = model.get("scored_on_training_images_unknown_because")
        return "whether it was trained on the scored images is not known" + (f" ({why})" if why else "")
    if known and model.get("scored_training_images") is None:  # results written before the counts were recorded
        return "scored on its own training images"
    if known:
        return (
            f"trained on {model.get('scored_training_images')} of the scored images (of its "
            f"{model.get('training_images')} training images): scored on its own training images"
        )
    return f"trained on none of the scored images ({model.get('training_images')} other training images)"


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def to_markdown(result: dict[str, Any]) -> str:
    """The table (ours beside the reference), the crop sweep, the claim, preset, data and hardware."""
    return "\n".join(_md_main_table(result) + _md_reference_thresholds(result) + _md_notes(result)) + "\n"


def _md_main_table(result: dict[str, Any]) -> list[str]:
    """The main table: every method, ours beside the reference."""
    ref = REFERENCE["rows"]
    lines = [f"### {result['title']}", ""]
    lines += [
        "| method | best t | mIoU | FG prec. | DR recall | NDR recall | DR mIoU* | NDR mIoU* | s / map "
        "| ref. t | ref. mIoU | ref. FG prec. | ref. DR* | ref. NDR* |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        rr = ref.get(r["key"], {})
        lines.append(
            f"| {r['method']} | {r['t']:.2f} | {_fmt(r['mIoU'])} | {_fmt(r['FG precision'])} | {_fmt(r['DR recall'])} "
            f"| {_fmt(r['NDR recall'])} | {_fmt(r['DR mIoU*'])} | {_fmt(r['NDR mIoU*'])} | {_fmt(r['s/map'], 3)} "
            f"| {_fmt(rr.get('t'), 2)} | {_fmt(rr.get('mIoU'))} | {_fmt(rr.get('FG precision'))} | {_fmt(rr.get('DR'))} "
            f"| {_fmt(rr.get('NDR'))} |"
        )
    return lines


def _md_reference_thresholds(result: dict[str, Any]) -> list[str]:
    """Our numbers at the reference's own thresholds, and the crop-count sweep."""
    ref = REFERENCE["rows"]
    lines: list[str] = []
    m = result["methods"]
    lines += ["", "At the reference's thresholds (ours vs reference, mIoU / NDR mIoU*):", ""]
    lines += [
        "| method | t | mIoU (ours) | NDR mIoU* (ours) | NDR recall (ours) | mIoU (ref.) | NDR* (ref.) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, rk in (("cam", "cam"), ("cam", "cam@0.04"), ("crops_w", "crops_w"), ("crops_u", "crops_u")):
        if key not in m:  # not selected in this run
            continue
        rr = ref[rk]
        ours = m[key]["at_t"].get(str(rr["t"]))
        if ours:
            lines.append(
                f"| {METHODS[key]} | {rr['t']:.2f} | {_fmt(ours['mIoU'])} | {_fmt(ours['NDR mIoU*'])} "
                f"| {_fmt(ours['NDR recall'])} | {_fmt(rr['mIoU'])} | {_fmt(rr['NDR'])} |"
            )
    lines += [
        "",
        "Crop count (weighted, reference order):",
        "",
        "| crops | best t | mIoU (best t) | mIoU (t = 0.1) | NDR recall (best t) |",
        "|---|---|---|---|---|",
    ]
    for s in result["crop_sweep"]:
        lines.append(
            f"| {s['n_crops']} | {s['best t']:.2f} | {_fmt(s['mIoU (best t)'])} | {_fmt(s['mIoU (t = 0.1)'])} "
            f"| {_fmt(s['NDR recall (best t)'])} |"
        )
    return lines


def _md_notes(result: dict[str, Any]) -> list[str]:
    """The claim, the provenance and how each number is made."""
    lines: list[str] = []
    ref_sweep = ", ".join(f"{n}: {a}-{b}" for n, (a, b) in REFERENCE["crop_sweep_t0.1"].items())
    cfg = result["config"]
    bbm = result["black_box"]
    lines += [
        "",
        f"**Claim** (crops match CAM on mIoU within {cfg['claim_margin']} points and recover more NDR): {claim_sentence(result)}",
        "",
        f"Preset `{result['preset']}`; data: {result['data']}; {result['images_scored']} images scored, "
        f"{result['maps_per_method']} maps per method"
        + (f", {len(result['skipped_all_ignore'])} skipped (mask all ignore)" if result["skipped_all_ignore"] else "")
        + f"; hardware: {hardware_line(result['hardware'])}. Run time {result['seconds']} s.",
        "",
        f"Black box: frozen EfficientNet-Lite0 + 1x1 conv (20 classes, no bias) + GAP, cross-fitted mAP "
        f"{_fmt(bbm.get('cross_fitted_mAP'))} % (2 folds; {_fmt(bbm.get('train_mAP'))} % on its training images). "
        + (
            f"Masking model: {_overlap_words(result['masker'])}"
            + (
                f", {result['masker']['steps']} steps, {_fmt(result['masker']['train_seconds'], 0)} s of training. "
                if result["masker"] and result["masker"].get("steps")
                else ". "
            )
            if result["masker"]
            else ""
        ),
        "",
        f"Pseudo-masks: the same function for every method (multi-class subtraction {cfg['subtract']}, per-class "
        f"{cfg['quantile']}th-percentile normalisation, background threshold t over {cfg['t_grid'][0]}-{cfg['t_grid'][-1]}, "
        "argmax), except the row 'CAM, reference recipe' (CAM / max, no subtraction, as the reference scores CAMs). "
        f"Crops: {cfg['n_crops']} per image, resized to {cfg['crop_size']} px, area {cfg['crop_scale'][0]}-{cfg['crop_scale'][1]}, "
        f"ratio {cfg['crop_ratio'][0]}-{cfg['crop_ratio'][1]}; reference order = signed gradients of up to "
        f"{cfg['abs_every']} crops summed before abs (the default), per-crop abs beside. DR = ground-truth pixels of a "
        f"class whose max-normalised CAM >= tau = {cfg['tau']} (so CAM's DR recall is high by construction), NDR = the "
        "rest of the object. DR / NDR recall: mean over classes of correct / true pixels in the region; DR mIoU* / "
        "NDR mIoU*: the region-restricted mIoU over 21 classes that the reference code reported as 'recall' before its "
        "2023 fix, which is what the reference's DR / NDR columns are. s / map: CPU seconds of the process per (image, "
        "class) map on this CPU (1 torch thread unless stated; CAM and gradient include their forward pass, crops all "
        "crops); wall-clock times, longer on this shared machine, are in the JSON.",
        "",
        f"Reference: {REFERENCE['setting']}; crop sweep at t = 0.1 (mIoU over crop scales): {ref_sweep}. "
        "The reference numbers come from another classifier (ResNet-50) and other images (VOC train): compare the "
        "ordering of the methods more than the values.",
    ]
    return lines


def write_results(result: dict[str, Any], out: str | Path = FIGURES_DIR) -> tuple[Path, Path]:
    """Write ``<out>/<table>.json`` and ``.md`` (``wsss`` for the full preset, ``wsss_<preset>`` otherwise); returns both paths."""
    data = {k: v for k, v in result.items() if k != "maps"}
    return write_result(data, to_markdown(result), out, result["table"], default=float, newline=True)

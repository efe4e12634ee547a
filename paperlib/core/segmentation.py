"""Metrics of semantic segmentation and of multi-label classification, for the WSSS study.

Pure functions on NumPy arrays (and tensors where noted), plus one accumulator,
:class:`SegmentationScores`, for evaluation loops. Labels follow PASCAL VOC: 0 is the background,
1..20 the object classes and 255 (:data:`IGNORE`) a pixel that is not scored; :data:`N_LABELS`
(21) is the size of a confusion matrix.

* **Confusion matrix** (:func:`confusion_matrix`): ``C[i, j]`` = pixels of true label ``i``
  predicted ``j``. Every metric below takes one ``(n, n)`` matrix or a stack ``(..., n, n)`` of them
  (one per background threshold) and returns a float or an array of the leading shape.
* **mIoU** (:func:`iou_per_class`, :func:`mean_iou`): ``IoU_c = C_cc / (row_c + col_c - C_cc)``,
  averaged over the labels that are present or predicted.
* **FG precision** (:func:`fg_precision`): mean over the object labels of ``C_cc / col_c``.
* **Region recall** (:func:`region_recall`, :func:`region_miou`): for a matrix restricted to a
  region of the objects (the discriminative region DR, or the rest NDR), the mean over object labels
  of ``C_cc / row_c``; and the region-restricted mIoU that the reference code reported as "recall"
  before its 2023 fix.
* **mAP** (:func:`average_precision`, :func:`mean_average_precision`): non-interpolated average
  precision of multi-label scores, negatives first within ties.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .errors import InputError

__all__ = [
    "N_LABELS",
    "IGNORE",
    "DEFAULT_TAU",
    "confusion_matrix",
    "iou_per_class",
    "mean_iou",
    "fg_precision",
    "region_recall",
    "region_miou",
    "argmax_labels",
    "SegmentationScores",
    "average_precision",
    "mean_average_precision",
]

#: Labels of a PASCAL VOC mask: background + 20 classes.
N_LABELS = 21
#: The label of a pixel that is not scored (object borders in VOC masks).
IGNORE = 255
#: The default DR threshold on the max-normalised CAM (the WSSS study's ``WSSSConfig.tau``).
DEFAULT_TAU = 0.3


# --------------------------------------------------------------------------- confusion matrices
def confusion_matrix(
    pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray, n: int = N_LABELS, ignore: int = IGNORE
) -> np.ndarray:
    """Pixel confusion matrix of one prediction against its ground truth.

    Args:
        pred: Predicted labels in ``[0, n)``, any shape (e.g. (H, W)).
        gt: True labels in ``[0, n)`` or ``ignore``, the shape of ``pred``.
        n: Number of labels.
        ignore: Label of the ``gt`` pixels to skip.

    Returns:
        (n, n) int64: ``C[i, j]`` = pixels of true label i predicted j.

    Raises:
        InputError: ``pred`` and ``gt`` differ in size, or a label lies outside ``[0, n)``.

    Example:
        >>> confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 255]), n=3)
        array([[1, 0, 0],
               [0, 1, 0],
               [0, 1, 0]])
    """
    p = np.asarray(pred).reshape(-1).astype(np.int64)
    g = np.asarray(gt).reshape(-1).astype(np.int64)
    if p.shape != g.shape:
        raise InputError(f"pred and gt differ in size: {p.shape} vs {g.shape}.")
    keep = g != ignore
    p, g = p[keep], g[keep]
    if len(g) and (g.min() < 0 or g.max() >= n or p.min() < 0 or p.max() >= n):
        raise InputError(f"labels must lie in [0, {n}) (or be {ignore} in gt).")
    return np.bincount(g * n + p, minlength=n * n).reshape(n, n)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` elementwise, NaN where ``b <= 0`` (no warning)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _nanmean(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over ``axis`` of the non-NaN entries; NaN (no warning) where all are NaN."""
    a = np.asarray(a, dtype=np.float64)
    cnt = (~np.isnan(a)).sum(axis)
    s = np.nansum(a, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)


# --------------------------------------------------------------------------- metrics of a confusion matrix
def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """Intersection over union of every label.

    Args:
        conf: (..., n, n) confusion matrices.

    Returns:
        (..., n) float64: ``IoU_c = C_cc / (row_c + col_c - C_cc)``; NaN for a label that is neither
        present nor predicted.

    Example:
        >>> iou_per_class(np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0]])).tolist()
        [1.0, 0.5, 0.0]
    """
    conf = np.asarray(conf, dtype=np.float64)
    d = np.diagonal(conf, axis1=-2, axis2=-1)
    return _div(d, conf.sum(-1) + conf.sum(-2) - d)


def mean_iou(conf: np.ndarray) -> float | np.ndarray:
    """Mean IoU over the labels of the matrix (21 for VOC) that are present or predicted.

    Args:
        conf: (..., n, n) confusion matrices.

    Returns:
        Fraction in [0, 1] (not percent), of shape (...); NaN for an empty matrix.

    Example:
        >>> float(mean_iou(np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0]])))
        0.5
    """
    return _nanmean(iou_per_class(conf))


def _object_mean(conf: np.ndarray, axis: int) -> float | np.ndarray:
    """Mean over object labels 1..n-1 of ``C_cc`` divided by the sum of ``C`` over ``axis`` (-2: the
    pixels predicted c, -1: the true pixels of c); labels whose sum is 0 are skipped."""
    conf = np.asarray(conf, dtype=np.float64)
    d = np.diagonal(conf, axis1=-2, axis2=-1)[..., 1:]
    return _nanmean(_div(d, conf.sum(axis)[..., 1:]))


def fg_precision(conf: np.ndarray) -> float | np.ndarray:
    """Foreground precision: mean over object labels 1..n-1 of ``C_cc / sum_i C_ic``.

    Args:
        conf: (..., n, n) confusion matrices; label 0 is the background.

    Returns:
        Fraction of shape (...); labels never predicted are skipped (NaN if none is predicted).

    Example:
        >>> float(fg_precision(np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0]])))
        0.5
    """
    return _object_mean(conf, axis=-2)  # columns: pixels predicted c


def region_recall(conf: np.ndarray) -> float | np.ndarray:
    """Recall inside a region: mean over object labels 1..n-1 of ``C_cc / sum_j C_cj``.

    For a confusion matrix restricted to a region of the objects (DR or NDR); labels without pixels in
    the region are skipped. (The reference code after its 2023 fix.)

    Args:
        conf: (..., n, n) region-restricted confusion matrices.

    Returns:
        Fraction of shape (...).

    Example:
        >>> float(region_recall(np.array([[0, 0, 0], [1, 3, 0], [0, 0, 0]])))
        0.75
    """
    return _object_mean(conf, axis=-1)  # rows: true pixels of c


def region_miou(conf: np.ndarray) -> float | np.ndarray:
    """The reference's older "recall": the mIoU over all labels of a region-restricted confusion matrix.

    Background has no true pixels in a region, so its IoU is 0 whenever some region pixel is predicted
    background, and it is skipped otherwise.

    Args:
        conf: (..., n, n) region-restricted confusion matrices.

    Returns:
        Fraction of shape (...).

    Example:
        >>> float(region_miou(np.array([[0, 0, 0], [1, 3, 0], [0, 0, 0]])))
        0.375
    """
    return mean_iou(conf)


# --------------------------------------------------------------------------- the accumulator
def argmax_labels(prepared: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best class score and its label per pixel; ties go to the first (lowest) class.

    Args:
        prepared: (K, H, W) normalised class scores.
        labels: (K,) the label of each of the K maps.

    Returns:
        (best value (H, W), its label (H, W)).

    Example:
        >>> v, lab = argmax_labels(torch.tensor([[[0.2, 0.7]], [[0.2, 0.9]]]), torch.tensor([4, 8]))
        >>> v.tolist(), lab.tolist()
        ([[0.20000000298023224, 0.8999999761581421]], [[4, 8]])
    """
    k = prepared.argmax(0)
    v = prepared.gather(0, k[None])[0]
    return v, labels[k]


class SegmentationScores:
    """Confusion matrices over a data set for every background threshold of a grid, and every DR threshold.

    ``update`` takes one image's *prepared* maps (normalised, one per present class); pixel counts go
    into a histogram over (DR level, true label, best class, threshold bin), from which the confusion
    matrix at every ``t`` follows exactly: a pixel is its best class at ``t`` iff its score is > t.

    Args:
        t_grid: (T,) ascending background thresholds.
        taus: Ascending DR thresholds (the levels given to :meth:`update` count how many a pixel reaches).
        tau: The DR threshold :meth:`confusions` and :meth:`curves` use when given none; one of ``taus``
            (default :data:`DEFAULT_TAU`, 0.3, the study's configured tau).

    Attributes:
        tau: The default DR threshold of :meth:`confusions` and :meth:`curves`.
        hist: (len(taus) + 1, 21, 21, T + 1) int64 pixel counts.
        images: Number of images added (images with only ignore pixels are not counted).

    Example:
        >>> s = SegmentationScores((0.1, 0.5))
        >>> gt = torch.tensor([[0, 1, 1]])
        >>> s.update(torch.tensor([[[0.0, 0.3, 0.9]]]), [0], gt, torch.zeros(1, 3, dtype=torch.long))
        >>> [float(x) for x in s.curves()["mIoU"]]  # at t = 0.5 the pixel scored 0.3 becomes background
        [100.0, 50.0]
    """

    def __init__(self, t_grid: Sequence[float], taus: Sequence[float] = (DEFAULT_TAU,), tau: Optional[float] = None) -> None:
        self.t = np.asarray(t_grid, dtype=np.float64)
        self.taus = tuple(taus)
        self.tau = DEFAULT_TAU if tau is None else tau
        if self.tau not in self.taus:
            raise InputError(f"tau={self.tau} must be one of taus {self.taus} (pass tau= to choose the default DR threshold).")
        self.shape = (len(self.taus) + 1, N_LABELS, N_LABELS, len(self.t) + 1)
        self.hist = np.zeros(self.shape, dtype=np.int64)
        self.images = 0
        self._t32 = torch.tensor(self.t, dtype=torch.float32)

    def update(self, prepared: torch.Tensor, classes: Sequence[int], gt: torch.Tensor, levels: torch.Tensor) -> None:
        """Add one image.

        Args:
            prepared: (K, H, W) normalised maps of ``classes``.
            classes: K 0-based class indices (label = index + 1).
            gt: (H, W) true labels (0, 1..20, or 255 ignore).
            levels: (H, W) long, the number of this object's ``taus`` each pixel reaches
                (:func:`paperlib.experiments.wsss.dr_levels`).
        """
        gt = gt.long()
        valid = gt != IGNORE
        if not bool(valid.any()):
            return
        if len(classes):
            v, lab = argmax_labels(prepared.float(), torch.tensor(list(classes)) + 1)
            b = torch.searchsorted(self._t32, v.contiguous(), right=False)  # number of thresholds t < v
        else:
            lab = torch.zeros_like(gt)
            b = torch.zeros_like(gt)
        L, n, _, nb = self.shape
        idx = ((levels[valid] * n + gt[valid]) * n + lab[valid]) * nb + b[valid]
        self.hist += torch.bincount(idx.flatten(), minlength=L * n * n * nb).view(self.shape).numpy()
        self.images += 1

    def confusions(self, region: Optional[str] = None, tau: Optional[float] = None) -> np.ndarray:
        """Confusion matrices, one per threshold.

        Args:
            region: None (all pixels), "DR" or "NDR" (the object pixels below ``tau``).
            tau: One of ``taus`` (default :attr:`tau`, as :meth:`curves`).

        Returns:
            (T, 21, 21) int64.
        """
        h = self.hist
        if region is not None:
            if region not in ("DR", "NDR"):
                raise InputError(f"region must be None, 'DR' or 'NDR', got {region!r}.")
            j = self._tau_index(tau)
            lev = np.arange(h.shape[0])
            sel = lev > j if region == "DR" else lev <= j
            h = h[sel]
            if region == "NDR":  # level 0 also holds background / ignore rows: keep object rows only
                h = h.copy()
                h[:, 0] = 0
        h = h.sum(0)  # (21, 21, T + 1)
        le = np.cumsum(h, axis=-1)[..., :-1]  # pixels with bin <= i, i.e. score <= t_i -> background
        total = h.sum(-1, keepdims=True)
        C = np.moveaxis(total - le, -1, 0).copy()  # (T, 21, 21): predicted as their best class
        C[:, :, 0] = np.moveaxis(le.sum(1), -1, 0) + np.moveaxis(total[:, 0] - le[:, 0], -1, 0)
        return C

    def _tau_index(self, tau: Optional[float]) -> int:
        """Index in ``taus`` of ``tau`` (None: :attr:`tau`)."""
        tau = self.tau if tau is None else tau
        if tau not in self.taus:
            raise InputError(f"tau={tau} is not one of the DR thresholds kept, {self.taus}.")
        return self.taus.index(tau)

    def curves(self, tau: Optional[float] = None) -> dict[str, np.ndarray]:
        """Metrics against t, in percent.

        Args:
            tau: DR threshold of the DR / NDR columns, one of ``taus`` (default :attr:`tau`, as :meth:`confusions`).

        Returns:
            ``{"t", "mIoU", "FG precision", "DR recall", "NDR recall", "DR mIoU*", "NDR mIoU*"}``, each (T,).
        """
        tau = self.tau if tau is None else tau
        C, D, N = self.confusions(), self.confusions("DR", tau), self.confusions("NDR", tau)
        return {
            "t": self.t.copy(),
            "mIoU": 100 * mean_iou(C),
            "FG precision": 100 * fg_precision(C),
            "DR recall": 100 * region_recall(D),
            "NDR recall": 100 * region_recall(N),
            "DR mIoU*": 100 * region_miou(D),
            "NDR mIoU*": 100 * region_miou(N),
        }


# --------------------------------------------------------------------------- mAP
def average_precision(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Non-interpolated average precision: the mean, over positives, of the precision at their rank.

    Ties in score are broken by putting negatives first (pessimistic).

    Args:
        scores: (M,) scores of one class.
        labels: (M,) 0 / 1 (or bool) ground truth.

    Returns:
        AP in [0, 1]; NaN if there is no positive.

    Example:
        >>> round(average_precision([0.9, 0.8, 0.7], [1, 0, 1]), 4)  # (1/1 + 2/3) / 2
        0.8333
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if y.sum() == 0:
        return float("nan")
    order = np.lexsort((y, -s))  # by score descending, negatives first within ties
    hits = y[order]
    ranks = np.nonzero(hits)[0] + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def mean_average_precision(scores: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> tuple[float, list[float]]:
    """mAP over the classes that have at least one positive.

    Args:
        scores: (M, C) scores. labels: (M, C) multi-hot ground truth.

    Returns:
        (mAP, per-class AP as a list of C floats with NaN for a class without positives).

    Example:
        >>> mean_average_precision(np.array([[0.9, 0.1], [0.1, 0.2]]), np.array([[1, 0], [0, 0]]))[0]
        1.0
    """
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    aps = [average_precision(s[:, c], y[:, c]) for c in range(s.shape[1])]
    return float(np.nanmean(aps)), aps

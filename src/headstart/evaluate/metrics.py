"""Classification metrics for a labelled test split.

Everything returned is plain Python (``float``/``int``/``str``/lists/dicts) so it
can go straight into ``json.dump`` and into the HTML report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

__all__ = ["classification_metrics", "expected_calibration_error"]


def _check_inputs(y_true, proba, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"proba must be a 2-D array (n, k), got shape {p.shape}")
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise ValueError(
            f"y_true must be a 1-D array with one label per proba row; "
            f"got y_true shape {y.shape} and proba shape {p.shape}"
        )
    if y.shape[0] == 0:
        raise ValueError("cannot compute metrics on zero samples")
    if n_classes is not None and p.shape[1] != n_classes:
        raise ValueError(f"proba has {p.shape[1]} columns but {n_classes} classes were given")
    if y.dtype.kind not in "iuf":
        raise ValueError(f"y_true must hold integer class indices, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("y_true must hold integer class indices")
        y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"y_true holds labels outside 0..{p.shape[1] - 1}")
    if not np.all(np.isfinite(p)):
        raise ValueError("proba contains NaN or infinite values")
    return y, p


def expected_calibration_error(y_true, proba, n_bins: int = 15) -> float:
    """Top-1 expected calibration error with ``n_bins`` equal-width confidence bins.

    ECE = sum over bins b of (|b| / n) * |accuracy(b) - mean confidence(b)|,
    where the confidence of a sample is its largest class probability and bin b
    holds the confidences in ``(lo_b, hi_b]`` (the first bin also takes 0).
    """
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    y, p = _check_inputs(y_true, proba)
    # Hand-written: neither scikit-learn nor anything else in our dependency set has a
    # maintained top-1 ECE (sklearn.calibration.calibration_curve is binary-only).
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # side="left" puts a confidence equal to an inner edge into the lower bin: (lo, hi].
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    n = len(y)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        count = int(mask.sum())
        if count:
            gap = abs(correct[mask].mean() - confidence[mask].mean())
            ece += count / n * gap
    return float(ece)


def classification_metrics(y_true, proba, classes: Sequence[str]) -> dict:
    """Standard metrics for predictions ``proba`` (n, k) against labels ``y_true`` (n,).

    Returns a JSON-serializable dict with ``accuracy``, ``macro_f1``, ``n``, ``ece``,
    ``per_class`` ({name: {precision, recall, f1, support}}), ``confusion_matrix``
    (rows = true class, columns = predicted class, both in ``classes`` order) and
    ``classes``.

    ``macro_f1`` is scikit-learn's ``f1_score(average="macro")``: the mean over the
    classes that occur in ``y_true`` or in the predictions. A class that is neither
    in the split nor ever predicted still gets a ``per_class`` row (all zeros) but
    does not pull the macro average down.
    """
    classes = [str(c) for c in classes]
    if len(set(classes)) != len(classes):
        raise ValueError(f"class names must be unique, got {classes}")
    k = len(classes)
    y, p = _check_inputs(y_true, proba, n_classes=k)
    pred = p.argmax(axis=1)
    labels = list(range(k))

    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=labels, average=None, zero_division=0
    )
    macro_f1 = f1_score(y, pred, average="macro", zero_division=0)
    cm = confusion_matrix(y, pred, labels=labels)

    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    }
    return {
        "accuracy": float(np.mean(pred == y)),
        "macro_f1": float(macro_f1),
        "n": int(len(y)),
        "ece": expected_calibration_error(y, p),
        "per_class": per_class,
        "confusion_matrix": [[int(v) for v in row] for row in cm],
        "classes": classes,
    }

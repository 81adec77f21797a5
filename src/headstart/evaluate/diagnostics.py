"""What a person looks at after a fit: the test split's mistakes, calibration and precision-recall.

The report (:mod:`headstart.evaluate.report`) draws these; the model folder also gets every test
prediction as ``test_predictions.csv`` (:func:`predictions_csv`).
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

from headstart.evaluate.calibration import reliability_bins
from headstart.output import figure_png, new_figure

__all__ = ["TestPredictions", "mistakes", "plot_reliability", "plot_precision_recall", "predictions_csv",
           "POOR_ECE"]

POOR_ECE = 0.1  # an ECE above this: confidences off by more than ten points on average
MAX_MISTAKES = 40  # rows in the report's table; the CSV holds them all
THUMBNAIL = 96  # pixels, the longer side of an image in the mistakes table
MAX_TEXT = 400  # characters of a text shown in the mistakes table


@dataclass
class TestPredictions:
    """The test split and what the model predicted for it.

    Attributes:
        items: texts, or image file paths.
        modality: ``"text"`` or ``"image"``.
        y: the true class ids (n,), in ``classes`` order.
        proba: the model's probabilities (n, k).
        classes: the class names.
    """

    __test__ = False  # a name pytest would otherwise take for a test class

    items: Sequence[str]
    modality: str
    y: np.ndarray
    proba: np.ndarray
    classes: Sequence[str]


def thumbnail(path: str) -> str | None:
    """A small PNG of the image at ``path`` as base64, or None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
    except (OSError, ValueError):
        return None
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def mistakes(test: TestPredictions, limit: int = MAX_MISTAKES) -> list[dict]:
    """The misclassified test items, most confident first: the item, true and predicted class, confidence.

    Each row has ``index`` (in the test split), ``text`` (the text, or the image's path), ``image``
    (a base64 PNG thumbnail, None for texts), ``true``, ``predicted``, ``confidence`` (of the
    prediction) and ``true_proba`` (what the model gave the true class).
    """
    y, proba = np.asarray(test.y), np.asarray(test.proba)
    predicted, confidence = proba.argmax(axis=1), proba.max(axis=1)
    wrong = np.flatnonzero(predicted != y)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    rows = []
    for i in order:
        item = str(test.items[i])
        rows.append({"index": int(i), "text": item if len(item) <= MAX_TEXT else item[: MAX_TEXT - 1] + "\u2026",
                     "image": thumbnail(item) if test.modality == "image" else None,
                     "true": str(test.classes[y[i]]), "predicted": str(test.classes[predicted[i]]),
                     "confidence": float(confidence[i]), "true_proba": float(proba[i, y[i]])})
    return rows


def plot_reliability(y, proba, n_bins: int = 15) -> bytes:
    """Reliability diagram: accuracy against confidence per bin, the diagonal being perfect calibration.

    Bars are the accuracy of each confidence bin that holds items; the shaded gap to the diagonal is
    what the ECE averages. A histogram of the confidences sits below.
    """
    confidence, accuracy, counts = reliability_bins(y, proba, n_bins)
    centers = (np.arange(n_bins) + 0.5) / n_bins
    filled = counts > 0
    fig = new_figure(5.2, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centers[filled], accuracy[filled], width=1 / n_bins, color="#4c72b0", edgecolor="white",
            label="accuracy of the bin")
    top.bar(centers[filled], confidence[filled] - accuracy[filled], bottom=accuracy[filled], width=1 / n_bins,
            color="#dd8452", alpha=0.45, edgecolor="none", label="gap to the confidence")
    top.plot([0, 1], [0, 1], linestyle="--", color="#555555", linewidth=1, label="perfect calibration")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title="Reliability on the test split")
    top.legend(loc="upper left", fontsize=8)
    top.grid(True, alpha=0.3)
    bottom.bar(centers, counts, width=1 / n_bins, color="#8c8c8c", edgecolor="white")
    bottom.set(xlabel="confidence of the prediction", ylabel="items")
    return figure_png(fig)


def plot_precision_recall(y, proba, classes: Sequence[str]) -> bytes:
    """One precision-recall curve a class (one class against the rest), average precision in the legend."""
    y, proba = np.asarray(y), np.asarray(proba)
    fig = new_figure(6.4 if len(classes) <= 10 else 8.4, 5.0)
    ax = fig.add_subplot()
    for k, name in enumerate(classes):
        positive = y == k
        if not positive.any():
            continue  # no test item of this class: no recall to draw
        precision, recall, _ = precision_recall_curve(positive, proba[:, k])
        ap = average_precision_score(positive, proba[:, k])
        label = str(name) if len(str(name)) <= 24 else str(name)[:23] + "\u2026"
        ax.step(recall, precision, where="post", linewidth=1.4, label=f"{label.replace('$', chr(92) + '$')} "
                f"(AP {ap:.2f})", color=f"C{k % 10}", linestyle="-" if k < 10 else "--")
    ax.set(xlim=(0, 1.01), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
           title="Precision-recall, each class against the rest")
    ax.grid(True, alpha=0.3)
    outside = len(classes) > 10
    ax.legend(fontsize=8, loc="upper left" if outside else "lower left",
              bbox_to_anchor=(1.01, 1.0) if outside else None, frameon=not outside)
    return figure_png(fig)


def predictions_csv(test: TestPredictions) -> str:
    """Every test item: the item, its true and predicted class, the confidence and each class's probability."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["item", "true", "predicted", "confidence", *(f"p_{c}" for c in test.classes)])
    proba = np.asarray(test.proba)
    for item, true, row in zip(test.items, test.y, proba):
        writer.writerow([item, test.classes[true], test.classes[int(row.argmax())], f"{row.max():.6g}",
                         *(f"{p:.6g}" for p in row)])
    return buffer.getvalue()

"""What a ranking's numbers mean: a one-line guide, and the accuracy the probe score predicts.

Of the ranking's scores only the cross-validated probe score is an accuracy, and only it is
calibrated: in the ranking benchmark, each pretrained candidate's fine-tuned test accuracy lay a
few points above its probe score, within the range :data:`FINETUNED_OVER_PROBE`. H-score, LogME,
NCE and LEEP are not mapped to accuracy: their scale changes with the number of classes and the
feature size, and three data sets are too few to fit a mapping (benchmarks/rank_calibration.py).
"""

from __future__ import annotations

# Fine-tuned test accuracy minus the CV probe score, the smallest and the largest over the 12
# pretrained candidates of the ranking benchmark (SST-2 and TREC with minilm-l6 and mpnet-base,
# Fashion-MNIST at 112 px with effnet-lite0/1/2), at 800 to 1,601 training items:
# benchmarks/results/rank_calibration-2026-12-03.json, written by benchmarks/rank_calibration.py
# from results/ranking-*.json (tests/transfer/test_rank_guide.py checks that they agree).
FINETUNED_OVER_PROBE = (0.0180, 0.0949)
CALIBRATED_ITEMS = (800, 1601)


def guide(score: str) -> str:
    """One line on how to read the ranking's scores, ranked by ``score``."""
    return (f"How to read it: higher is better in every score column; {score} orders the candidates and compares "
            "them on these data only (it is not an accuracy); probe is the cross-validated accuracy of a linear "
            "probe on the frozen features.")


def predicted_accuracy(probe: float) -> tuple[float, float]:
    """The fine-tuned test accuracy a probe score predicts: (low, high), at most 1."""
    low, high = FINETUNED_OVER_PROBE
    return min(1.0, probe + low), min(1.0, probe + high)


def accuracy_range_text(probe: float) -> str:
    """The predicted accuracy as a table cell: ``84-91%``, or ``100%`` where both ends are capped."""
    low, high = (f"{100 * end:.0f}" for end in predicted_accuracy(probe))
    return f"{low}%" if low == high else f"{low}-{high}%"


def prediction_note(n_items: int) -> str:
    """One line on where the predicted accuracy comes from, and how far to trust it with ``n_items`` scored."""
    low, high = FINETUNED_OVER_PROBE
    fewest, most = CALIBRATED_ITEMS
    text = (f"Predicted accuracy: probe {100 * low:+.1f} to {100 * high:+.1f} points, where fine-tuned test accuracy "
            f"fell for every pretrained candidate of the ranking benchmark (SST-2, TREC, Fashion-MNIST; "
            f"{fewest:,}-{most:,} training items); the other scores have no calibration to accuracy.")
    if n_items < fewest:
        text += f" With {n_items} items scored here the probe score is noisy: read the range as rough."
    return text

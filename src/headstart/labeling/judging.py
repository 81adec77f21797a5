"""Labels drawn at random, kept for judging the project's models (opt-in: ``--judging-share``).

The loop picks the items its probe is least sure of, so an accuracy measured on those labels errs
low, and most for the probe that chose them: on Fashion-MNIST at 200 labels a fine-tune scored
72.7% on its validation split (the loop's picks) against the probe's 50-55% out of fold, while on
the test split it was 80.0% against the probe's 82.6% (benchmarks/README.md). The pool then kept
the worse model's pre-labels.

With a judging share ``s``, a fixed random ``s`` of the pool is set apart (:func:`judging_mask`, a
hash of each item's position: nothing is stored, the same items every time). ``next`` serves
them uniformly at random, as many as keep them ``s`` of the labels (:func:`judging_picks`); the
strategies never pick them and auto-accept never labels them (it would take the easy ones). Once
:data:`MIN_JUDGING` of them are labeled, they are what the accuracy estimates are measured on (:func:`judged_accuracy`): the probe's out-of-fold accuracy,
and the fine-tune's validation split (:func:`judging_splits`). Both are then unbiased estimates of
the accuracy on the pool, and comparable. The labels still train the final models.

The price: ``s`` of the labels are random picks instead of the strategy's. A label placed on a
judging item some other way (an import, a search) counts as judging too.
"""

from __future__ import annotations

import math

import numpy as np

from headstart.errors import LabelingError

SETTING = "judging_share"
# Judged labels before the estimates use them. At 30 a 95% interval is still about +-15 points: enough
# to undo the loop's bias (16-20 points in the README's example), too few to rank close models.
MIN_JUDGING = 30
REASON = "random (kept for judging the model)"
ON_RANDOM_LABELS = "drawn at random"  # in an accuracy estimate's description: measured on judging labels

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def check_share(share: float) -> float:
    """``share`` when in [0, 0.5]; a clear error naming the option otherwise."""
    if not 0.0 <= share <= 0.5:
        raise LabelingError(f"the judging share must be in 0..0.5, not {share}", where="--judging-share",
                            fix="e.g. --judging-share 0.05 (one label in twenty drawn at random), 0 for none")
    return float(share)


def judging_mask(size: int, share: float) -> np.ndarray:
    """Which of ``size`` items (item order) are set apart for judging: about ``share`` of them.

    A splitmix64 hash of each position mapped to [0, 1): the same positions for the same share
    whatever the pool's size, so items appended later do not move earlier ones in or out.
    """
    if share <= 0.0:
        return np.zeros(size, dtype=bool)
    with np.errstate(over="ignore"):
        z = (np.arange(size, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53) < share


def judging_picks(mask: np.ndarray, labeled: np.ndarray, candidates: np.ndarray, n: int, share: float, *,
                  seed: int = 0) -> np.ndarray:
    """The judging items among ``candidates`` to serve in a batch of ``n``: drawn uniformly at random,
    as many as bring the labeled judging items to ``share`` of the labels once the batch is labeled.

    Args:
        mask: :func:`judging_mask` of the pool.
        labeled: which items have a settled label (n_items,).
        candidates: positions that may be served.
        n: the batch's size.
        share: the judging share.
        seed: with the number of labels, seeds the draw (the same state gives the same batch).
    """
    open_items = candidates[mask[candidates]]
    due = math.ceil(share * (int(labeled.sum()) + n) - 1e-9) - int((labeled & mask).sum())
    take = min(max(due, 0), n, len(open_items))
    if take == 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, int(labeled.sum())])
    return np.sort(rng.choice(open_items, size=take, replace=False)).astype(np.int64)


def set_apart(share: float, labeled: np.ndarray, candidates: np.ndarray, n: int, *,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """A batch of ``n`` split between judging and the strategy: (the judging items to serve, the
    candidates left to the strategy, how many it picks). ``labeled`` covers the whole pool."""
    mask = judging_mask(len(labeled), share)
    picks = judging_picks(mask, labeled, candidates, n, share, seed=seed)
    return picks, candidates[~mask[candidates]], n - len(picks)


def project_share(project) -> float:
    """The project's judging share (0: none)."""
    return float(project.settings.get(SETTING, 0.0))


def judged(project, positions: np.ndarray) -> np.ndarray | None:
    """Which of the labeled ``positions`` are judging items, where the project has a judging share and
    at least :data:`MIN_JUDGING` of them; else None (the estimates stay on every label)."""
    share = project_share(project)
    if share <= 0.0:
        return None
    chosen = judging_mask(project.size, share)[positions]
    return chosen if chosen.sum() >= MIN_JUDGING else None


def judged_accuracy(held_out: np.ndarray, y: np.ndarray, chosen: np.ndarray | None) -> tuple[float, str]:
    """(accuracy, what it was measured on) of out-of-fold probabilities ``held_out`` of the labels ``y``:
    on the judging labels ``chosen`` when given (:func:`judged`), else on every label."""
    if chosen is None:
        return float((held_out.argmax(axis=1) == y).mean()), "5-fold out-of-fold"
    correct = held_out[chosen].argmax(axis=1) == y[chosen]
    return float(correct.mean()), f"5-fold out-of-fold, on the {int(chosen.sum())} labels {ON_RANDOM_LABELS}"


def judging_splits(chosen: np.ndarray, labels: list[str]) -> list[str] | None:
    """Train/val of each settled label with the judging ones (``chosen``) as validation, or None where
    a class of theirs has no other label to train on (the random split is used then)."""
    trained = {label for label, is_judging in zip(labels, chosen) if not is_judging}
    if any(label not in trained for label, is_judging in zip(labels, chosen) if is_judging):
        return None
    return ["val" if is_judging else "train" for is_judging in chosen]

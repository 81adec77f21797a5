"""Pseudo-labels: a head learns from its own confident predictions on unlabeled items.

Pseudo-labeling (Lee 2013) with a curriculum (Cascante-Bravo et al. 2021): each round the head is
refitted on the labeled items plus the unlabeled items it is most confident about, a growing share
of them. The share is taken class by class (the most confident of the items predicted as each
class): a per-class confidence threshold, the share's quantile of that class's confidences, so a
class the model already favours cannot swallow the others one round after another (Zou et al.
2018, class-balanced self-training). Used by domain adaptation (:mod:`headstart.adapt`) and by
training on an unlabeled pool (:mod:`headstart.learn.pool_training`).
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from headstart.learn.head import LinearHead

ROUNDS = (0.3, 0.6, 0.8)  # the share of each predicted class's unlabeled items taken, round by round
FitHead = Callable[[np.ndarray, np.ndarray], LinearHead]


def confident_items(proba: np.ndarray, share: float, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(positions, pseudo-labels) of the most confident ``share`` of each predicted class's items, at most ``limit`` a class."""
    predicted, confidence = proba.argmax(axis=1), proba.max(axis=1)
    chosen = []
    for label in np.unique(predicted):
        members = np.flatnonzero(predicted == label)
        keep = min(max(1, int(round(share * len(members)))), len(members) if limit is None else limit)
        chosen.append(members[np.argsort(-confidence[members], kind="stable")[:keep]])
    positions = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)
    return positions, predicted[positions]


def class_thresholds(proba: np.ndarray, positions: np.ndarray, n_classes: int) -> list[float | None]:
    """Per class, the lowest confidence among the items :func:`confident_items` took for it (None: none taken)."""
    predicted, confidence = proba[positions].argmax(axis=1), proba[positions].max(axis=1)
    return [float(confidence[predicted == k].min()) if (predicted == k).any() else None for k in range(n_classes)]


def self_training_rounds(fit: FitHead, x: np.ndarray, y: np.ndarray, unlabeled_x: np.ndarray, *,
                         rounds: tuple[float, ...] = ROUNDS,
                         start: LinearHead | None = None) -> Iterator[tuple[float, LinearHead, np.ndarray]]:
    """Each round's (share, head, positions of the pseudo-labeled items it was fitted with).

    Args:
        fit: fits a head on (features, class ids), e.g. ``partial(fit_head, n_classes=k, c=C)``.
        x: labeled features (n, d).
        y: their class ids.
        unlabeled_x: unlabeled features (m, d).
        rounds: the share of each predicted class's unlabeled items taken in each round.
        start: the head that makes the first pseudo-labels (default: ``fit`` on the labeled items alone).
    """
    head = start if start is not None else fit(x, y)
    for share in rounds:
        positions, pseudo = confident_items(head.proba(unlabeled_x), share)
        head = fit(np.vstack([x, unlabeled_x[positions]]), np.concatenate([y, pseudo]))
        yield share, head, positions


def self_trained(fit: FitHead, x: np.ndarray, y: np.ndarray, unlabeled_x: np.ndarray, *,
                 rounds: tuple[float, ...] = ROUNDS, start: LinearHead | None = None) -> LinearHead:
    """The last round's head of :func:`self_training_rounds` (``start``, or ``fit(x, y)``, without rounds)."""
    head = start if start is not None else fit(x, y)
    for _, head, _ in self_training_rounds(fit, x, y, unlabeled_x, rounds=rounds, start=head):
        pass
    return head

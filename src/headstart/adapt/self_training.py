"""Self-training: the model learns from its own confident predictions on the target.

Pseudo-labeling (Lee 2013) with a curriculum (Cascante-Bravo et al. 2021): each round the head is
refitted on the labeled source items plus the target items it is most confident about, a growing
share of them. The share is taken class by class (the most confident of the items predicted as each
class), so a class the source model already favours cannot swallow the target one round after
another (Zou et al. 2018, class-balanced self-training).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from headstart.learn.head import LinearHead

ROUNDS = (0.3, 0.6, 0.8)  # the share of each predicted class's target items taken, round by round
FitHead = Callable[[np.ndarray, np.ndarray], LinearHead]


def confident_items(proba: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(positions, pseudo-labels) of the most confident ``share`` of each predicted class's items."""
    predicted, confidence = proba.argmax(axis=1), proba.max(axis=1)
    chosen = []
    for label in np.unique(predicted):
        members = np.flatnonzero(predicted == label)
        keep = max(1, int(round(share * len(members))))
        chosen.append(members[np.argsort(-confidence[members], kind="stable")[:keep]])
    positions = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)
    return positions, predicted[positions]


def self_trained(fit: FitHead, source_x: np.ndarray, source_y: np.ndarray, target_x: np.ndarray, *,
                 rounds: tuple[float, ...] = ROUNDS, start: LinearHead | None = None) -> LinearHead:
    """A head refitted round by round on the source items and confident pseudo-labeled target items.

    Args:
        fit: fits a head on (features, class ids), e.g. ``partial(fit_head, n_classes=k, c=C)``.
        source_x: labeled source features (n, d).
        source_y: their class ids.
        target_x: unlabeled target features (m, d).
        rounds: the share of each predicted class's target items taken in each round.
        start: the head that makes the first pseudo-labels (default: ``fit`` on the source alone).

    Returns:
        The last round's head.
    """
    head = start if start is not None else fit(source_x, source_y)
    for share in rounds:
        positions, pseudo = confident_items(head.proba(target_x), share)
        head = fit(np.vstack([source_x, target_x[positions]]), np.concatenate([source_y, pseudo]))
    return head

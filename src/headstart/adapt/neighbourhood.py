"""How well a labelling of the target follows the target's own neighbourhoods: ``auto``'s measure.

The cluster assumption behind every adaptation method: items close in feature space share a class.
A labelling of the target whose decision boundaries cross dense regions splits neighbours apart;
one that follows the target's structure keeps them together. This is the idea of Saito et al. 2021
("Tune it the right way: unsupervised validation of domain adaptation via soft neighborhood
structure"); headstart's version is the simplest one that cannot be gamed by predicting one class:
the share of each item's k nearest target neighbours (cosine) given the item's label, corrected for
the agreement the label proportions alone would give, as Cohen's kappa is:

    kappa = (agreement - expected) / (1 - expected),   expected = sum over classes of share**2

Every labelling is judged on the same neighbourhood graph, so methods that change the features
(AdaBN) and methods that change the head compete on equal terms.
"""

from __future__ import annotations

import numpy as np

from headstart.learn.label_spreading import NEIGHBOURS, neighbour_graph

__all__ = ["NEIGHBOURS", "neighbour_graph", "item_agreement", "kappa", "kappa_difference"]


def item_agreement(labels: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Per item, the share of its neighbours given its label."""
    return (labels[neighbours] == labels[:, None]).mean(axis=1)


def kappa(labels: np.ndarray, agreement: np.ndarray) -> float:
    """Neighbourhood agreement corrected for chance (0: no better than the label proportions; 1: perfect)."""
    shares = np.bincount(labels) / len(labels)
    expected = float((shares ** 2).sum())
    return 0.0 if expected >= 1 - 1e-9 else float((agreement.mean() - expected) / (1 - expected))


def kappa_difference(labels: np.ndarray, baseline: np.ndarray, neighbours: np.ndarray, *, resamples: int = 200,
                     seed: int = 0) -> tuple[float, float]:
    """(kappa of ``labels`` minus kappa of ``baseline``, its bootstrap standard error over target items)."""
    mine, theirs = item_agreement(labels, neighbours), item_agreement(baseline, neighbours)
    difference = kappa(labels, mine) - kappa(baseline, theirs)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        pick = rng.integers(0, len(labels), len(labels))
        draws.append(kappa(labels[pick], mine[pick]) - kappa(baseline[pick], theirs[pick]))
    return difference, float(np.std(draws, ddof=1))

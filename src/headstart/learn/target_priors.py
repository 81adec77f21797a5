"""A target's class priors as a class-balanced probe trained on the labeled source sees them.

``headstart shift`` and the labeling project's shift check both estimate them this way: the probe
is trained class-balanced, so its probabilities are those of a classifier under uniform priors,
and EM (:func:`headstart.evaluate.priors.prior_summary`) starts from those.
"""

from __future__ import annotations

import numpy as np

from headstart.evaluate.priors import prior_summary
from headstart.learn.probe import fit_probe


def balanced_probe_priors(source_x: np.ndarray, source_ids: np.ndarray, target_x: np.ndarray, classes: list[str],
                          *, target_ids: np.ndarray | None = None, seed: int = 0) -> dict:
    """:func:`~headstart.evaluate.priors.prior_summary` from headstart's probe trained on the source.

    Args:
        source_x: (n, d) features of the labeled source items.
        source_ids: (n,) their class ids, in ``classes`` order.
        target_x: (m, d) features of the target items.
        classes: the class names.
        target_ids: the target's own class ids where it has labels, shown beside the estimate.
        seed: seeds the probe.

    Returns:
        The prior summary, or ``{"priors": None, "prior_shift": None}`` without two source classes
        of two items each.
    """
    counts = np.bincount(source_ids, minlength=len(classes))
    if np.count_nonzero(counts >= 2) < 2:
        return {"priors": None, "prior_shift": None}
    empty_x, empty_y = np.zeros((0, source_x.shape[1]), source_x.dtype), np.zeros(0, np.int64)
    head, _ = fit_probe(source_x, source_ids, empty_x, empty_y, len(classes), seed=seed)
    uniform = np.full(len(classes), 1 / len(classes))
    return prior_summary(classes, source_ids, head.proba(target_x), trained_priors=uniform, target_labels=target_ids)

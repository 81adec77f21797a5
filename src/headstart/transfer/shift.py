"""Is a target data set different from the source, and how: a domain classifier on frozen features.

A classifier that tells source items from target items better than chance is the most direct
test of covariate shift (the "classifier two-sample test": Lopez-Paz & Oquab, "Revisiting
Classifier Two-Sample Tests", ICLR 2017; as a shift detector, Rabanser, Günnemann & Lipton,
"Failing Loudly: An Empirical Study of Methods for Detecting Dataset Shift", NeurIPS 2019).
Its out-of-fold probabilities also give importance weights for validation under shift
(Sugiyama, Krauledat & Müller, "Covariate Shift Adaptation by Importance Weighted Cross
Validation", JMLR 2007).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["domain_probabilities"]

# Inverse L2 strength of the domain classifier on standardized features: firm enough that a few
# hundred items in a few hundred dimensions give smooth probabilities (importance weights built
# from them do not explode), loose enough to see a real shift.
DOMAIN_C = 0.1


def _domain_classifier(seed: int):
    return make_pipeline(StandardScaler(), LogisticRegression(C=DOMAIN_C, max_iter=2000, random_state=seed))


def out_of_fold_target_probability(features: np.ndarray, is_target: np.ndarray, *, seed: int = 0,
                                   folds: int = 5) -> np.ndarray:
    """Cross-validated P(target | item) for pooled ``features`` (n, d) and 0/1 ``is_target`` (n,).

    Every item's probability comes from a classifier that did not see it (stratified folds, so
    each fold keeps both sides; fewer folds where a side has fewer items than ``folds``).
    """
    is_target = np.asarray(is_target).astype(np.int64)
    smallest = int(min(is_target.sum(), len(is_target) - is_target.sum()))
    if smallest < 2:
        raise ValueError(f"each side needs at least 2 items for a cross-validated domain classifier, "
                         f"the smaller has {smallest}")
    splits = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
    probability = np.empty(len(is_target), dtype=np.float64)
    for fit_rows, held_out in splits.split(features, is_target):
        classifier = _domain_classifier(seed).fit(features[fit_rows], is_target[fit_rows])
        probability[held_out] = classifier.predict_proba(features[held_out])[:, 1]
    return probability


def domain_probabilities(source_features: np.ndarray, target_features: np.ndarray, *, seed: int = 0,
                         folds: int = 5) -> np.ndarray:
    """The cross-validated probability that each item comes from the target, not the source.

    A logistic regression on standardized features tells the two sides apart; each item's
    probability is predicted by the fold that held it out. The classifier sees the sides as they
    are sized, so the importance weight of a source item (how target-like it is) is
    ``p / (1 - p) * n_source / n_target``.

    Args:
        source_features: (n_source, d) frozen features of the source items.
        target_features: (n_target, d) frozen features of the target items, same backbone.
        seed: seed of the folds and the classifier.
        folds: cross-validation folds (fewer where a side has fewer items).

    Returns:
        (n_source + n_target,) probabilities: the source rows first, then the target rows.

    Raises:
        ValueError: on features that are not 2-D, widths that differ, non-finite values, or a
            side with fewer than 2 items.
    """
    source = np.asarray(source_features, dtype=np.float64)
    target = np.asarray(target_features, dtype=np.float64)
    if source.ndim != 2 or target.ndim != 2:
        raise ValueError(f"features must be 2-D arrays (n, d), got shapes {source.shape} and {target.shape}")
    if source.shape[1] != target.shape[1]:
        raise ValueError(f"source and target features must have the same width, got {source.shape[1]} "
                         f"and {target.shape[1]} (the same backbone for both)")
    pooled = np.concatenate([source, target])
    if not np.all(np.isfinite(pooled)):
        raise ValueError("features contain NaN or infinite values")
    is_target = np.r_[np.zeros(len(source), np.int64), np.ones(len(target), np.int64)]
    return out_of_fold_target_probability(pooled, is_target, seed=seed, folds=folds)

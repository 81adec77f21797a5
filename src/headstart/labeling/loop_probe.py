"""The labeling loop's probes: linear heads (:func:`headstart.learn.head.fit_head`) set up for labels
that people chose.

The loop's probe has a fixed Gaussian prior on the weights (``LOOP_C``) over features standardized
with the whole pool's statistics, and no class re-weighting. Why not cross-validation, as ``headstart
fit`` does: active learning chooses the labels, so they crowd the class boundary, and a C chosen by
cross-validation on them is too weak a prior; a fixed prior does not depend on how the labels were
chosen. The pool's statistics (every item's features are cached) replace the labeled items': ten
labels give no usable per-feature scale, and labels chosen near the boundary a biased one.
"Balanced" class weights are left out because the labeled classes' proportions are the strategy's
doing, not the pool's. benchmarks/README.md (active learning) gives the measurements.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.model_selection import train_test_split

from headstart.errors import LabelingError
from headstart.learn.head import LinearHead, Scaling, feature_scaling, fit_head, out_of_fold_proba, require_classes
from headstart.learn.probe import SMALL_DATA, fit_probe, refit_on_all

LOOP_C = 0.01
SCALING_SAMPLE = 100_000  # a bigger pool's statistics come from this many evenly spaced items


def pool_scaling(features: np.ndarray) -> Scaling:
    """The pool's ``feature_scaling``; above SCALING_SAMPLE items, of an evenly spaced sample of them
    (a million items' mean and standard deviation otherwise take two passes and a 1.5 GB temporary)."""
    if len(features) > SCALING_SAMPLE:
        features = np.asarray(features[np.linspace(0, len(features) - 1, SCALING_SAMPLE).astype(np.int64)])
    return feature_scaling(features)


def fit_loop_probe(x: np.ndarray, y: np.ndarray, n_classes: int, scaling: Scaling, *, c: float = LOOP_C,
                   seed: int = 0) -> LinearHead:
    """The loop's probe on labeled features.

    Args:
        x: labeled features (n, d).
        y: their class ids (n,), of at least two classes.
        n_classes: the project's classes.
        scaling: ``feature_scaling`` of the whole pool's features.
        c: the prior's strength (default ``LOOP_C``).
        seed: the solver's random state.

    Returns:
        The head, the scaling folded in.
    """
    require_classes(y, what="the probe", where="labels", fix="label items of another class", error=LabelingError)
    return fit_head(x, y, n_classes, c=c, class_weighted=False, scaling=scaling, seed=seed)


def fit_labeled_probe(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int = 0) -> tuple[LinearHead, dict]:
    """headstart's probe for labels not chosen by active learning (label issues; a model on the
    whole labeled pool): C chosen by cross-validation below ``SMALL_DATA`` items, on a stratified 20%
    hold-out above, then refit on every label; a class with a single label gets a fixed C=1."""
    counts = np.bincount(y, minlength=n_classes)[np.unique(y)]
    if counts.min() < 2:
        return fit_head(x, y, n_classes, c=1.0, seed=seed), {"C": 1.0, "selection": "fixed (a class has one label)",
                                                             "val_accuracy": None, "val_loss": None}
    if len(y) < SMALL_DATA:
        return fit_probe(x, y, x[:0], y[:0], n_classes, seed=seed)
    train, val = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
    _, info = fit_probe(x[train], y[train], x[val], y[val], n_classes, seed=seed)
    return refit_on_all(x[train], y[train], x[val], y[val], n_classes, info["C"], seed=seed), info


def held_out_proba(x: np.ndarray, y: np.ndarray, n_classes: int, *, folds: int = 5, seed: int = 0,
                   c: float | None = None, scaling: Scaling | None = None) -> np.ndarray:
    """Class probabilities (n, n_classes) of each labeled item from a probe that did not see it.

    With the pool's ``scaling`` the probe is the loop's, of strength ``c`` (default ``LOOP_C``);
    without, headstart's class-weighted probe of strength ``c``, or of the strength cross-validation
    chooses on all of ``x``.
    """
    require_classes(y, what="held-out predictions", where="labels", fix="label more items", error=LabelingError)
    if scaling is not None:
        fit = partial(fit_loop_probe, n_classes=n_classes, scaling=scaling, c=c or LOOP_C, seed=seed)
    else:
        c = c if c is not None else fit_labeled_probe(x, y, n_classes, seed)[1].get("C") or 1.0
        fit = partial(fit_head, n_classes=n_classes, c=c, seed=seed)
    return out_of_fold_proba(x, y, n_classes, fit, folds=folds, seed=seed)

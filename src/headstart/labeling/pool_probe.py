"""The labeling loop's probe, trained on the unlabeled pool too where that beats the labels alone.

After the loop's probe is fitted on the settled labels, the pool methods of
:mod:`headstart.learn.pool_training` (class-balanced self-training, label spreading on the kNN
graph) are tried on the pool's cached features, with the loop's own head (a fixed prior over
pool-scaled features). The loop has no validation split: the methods are judged on the folds of
its out-of-fold accuracy (:func:`headstart.learn.head.stratified_folds`, the same seed), and the
pool-trained head is kept only when it beat the labeled-only probe there by more than the standard
error of the paired difference. Project setting ``pool_training``: ``auto`` (default), ``none``,
``self-train`` or ``propagation``.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from headstart.labeling.loop_probe import LOOP_C, fit_loop_probe, held_out_proba
from headstart.learn.head import LinearHead, Scaling, stratified_folds
from headstart.learn.pool_training import POOL_LIMIT, judge_pool, pool_head, pool_sample

SETTING = "pool_training"


def pool_trained_probe(features: np.ndarray, positions: np.ndarray, y: np.ndarray, n_classes: int,
                       scaling: Scaling, *, method: str = "auto",
                       seed: int = 0) -> tuple[LinearHead | None, dict, np.ndarray | None]:
    """(the pool-trained head, or None to keep the labeled-only probe; the record for the version's metrics;
    the kept head's out-of-fold probabilities of the labeled items, pool-trained or labeled-only, or None
    where nothing was judged).

    Args:
        features: every pool item's cached features (n, d), memory-mapped.
        positions: the labeled items' positions.
        y: their settled class ids.
        n_classes: the project's classes.
        scaling: the pool's feature scaling (the loop's probe's).
        method: ``auto``, ``none``, ``self-train`` or ``propagation``.
        seed: the folds' and the sample's seed (the loop's out-of-fold seed).
    """
    counts = np.bincount(y, minlength=n_classes)
    unlabeled = np.setdiff1d(np.arange(len(features)), positions)
    if method == "none" or len(unlabeled) == 0 or counts[counts > 0].min() < 2:
        reason = "not asked for" if method == "none" else "no unlabeled items" if len(unlabeled) == 0 else \
            "a class has a single label: no out-of-fold judgement yet"
        return None, {"method": "none", "requested": method,
                      "sentence": f"the unlabeled pool: not used ({reason})"}, None
    pool_x = np.asarray(features[unlabeled[pool_sample(len(unlabeled), seed, POOL_LIMIT)]], dtype=np.float32)
    x = np.asarray(features[positions], dtype=np.float32)
    fit = partial(fit_loop_probe, n_classes=n_classes, scaling=scaling, seed=seed)
    folds = stratified_folds(y, seed=seed)
    choice = judge_pool(fit, x, y, pool_x, n_classes, folds=folds, method=method,
                        judged_on=f"{len(folds)}-fold out of fold over {len(y)} labels")
    return pool_head(choice, fit, x, y, pool_x, n_classes), choice.record, choice.held_out_proba


def loop_head(features: np.ndarray, positions: np.ndarray, y: np.ndarray, n_classes: int, scaling: Scaling, *,
              method: str = "auto", seed: int = 0) -> tuple[LinearHead, np.ndarray, dict]:
    """A retrain's head before the zero-shot blend: the loop's probe, or the pool-trained one where it won.

    Returns:
        (the head, its out-of-fold probabilities of the labeled items, the pool's record). Judging the
        pool fits the labeled-only probe on the loop's folds already, so its out-of-fold probabilities
        are computed here only where nothing was judged.
    """
    from headstart.labeling import loop_probe  # its probe looked up when called, as the retrain always did

    head = loop_probe.fit_loop_probe(features[positions], y, n_classes, scaling, seed=seed)
    pooled, record, held_out = pool_trained_probe(features, positions, y, n_classes, scaling, method=method,
                                                  seed=seed)
    if held_out is None:
        held_out = held_out_proba(features[positions], y, n_classes, seed=seed, c=LOOP_C, scaling=scaling)
    return (head if pooled is None else pooled), held_out, record

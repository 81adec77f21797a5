"""Is a target data set different from the source: a domain classifier on frozen features.

A classifier that tells source items from target items better than chance is the most direct
test of covariate shift (the "classifier two-sample test": Lopez-Paz & Oquab, "Revisiting
Classifier Two-Sample Tests", ICLR 2017; as a shift detector, Rabanser, Günnemann & Lipton,
"Failing Loudly: An Empirical Study of Methods for Detecting Dataset Shift", NeurIPS 2019).
:func:`shift_test` gives its cross-validated AUC, a permutation p-value and the decision; its
out-of-fold probabilities also give importance weights for validation under shift
(:func:`domain_probabilities`; Sugiyama, Krauledat & Müller, "Covariate Shift Adaptation by
Importance Weighted Cross Validation", JMLR 2007).

It lives below ``learn``, ``labeling`` and ``transfer`` so that adaptation, the labeling project
and ``headstart shift`` all use the same test.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from headstart.progress import progress_bar

__all__ = ["domain_probabilities", "shift_test", "ShiftTest", "MIN_ITEMS"]

# The decision rule: shifted when the permutation p-value is at most ALPHA AND the AUC reaches
# AUC_FLOOR. The p-value alone bounds false alarms: two random halves of one data set are
# exchangeable, so P(p <= 0.01) <= 1% a run, and 19 of 20 runs clean is expected with room to spare
# (two false alarms in 20 runs at 1% each: 1.7%). The floor is the effect size: with hundreds of
# items a classifier finds differences that are real but too small to matter (at AUC 0.55 the two
# sides overlap almost wholly); at 0.6 a target item outranks a source item 3 times in 5. Real
# shifts (movie to product reviews, inverted or blurred images) give 0.75 and more.
ALPHA = 0.01
AUC_FLOOR = 0.6
# Fewest items a side: below this the cross-validated AUC of identical sides spreads by +-0.1 and
# more, and a permutation test has almost no power.
MIN_ITEMS = 20
MAX_ITEMS = 500        # items a side by default: a balanced subsample keeps the test to seconds
PERMUTATIONS = 99      # at most; p-values in steps of 0.01
EXCEEDANCES = 10       # stop permuting once this many permuted AUCs reach the observed one
TEST_DIMS = 64         # principal components the test's classifier reads
TYPICAL = 5            # items shown as most typical of each side
SHOWN_CHARS = 300      # characters of an item shown

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


@dataclass
class ShiftTest:
    """What :func:`shift_test` found, on the balanced subsample it tested.

    Attributes:
        auc: cross-validated AUC of the domain classifier (0.5: no better than chance).
        p_value: permutation p-value of the AUC (Besag & Clifford's sequential estimate).
        shifted: ``p_value <= ALPHA and auc >= AUC_FLOOR``.
        source_rows: positions, in the source features given, of the tested source items (m,).
        target_rows: positions, in the target features given, of the tested target items (m,).
        target_probability: out-of-fold P(target) of the tested items (2m,), source rows first.
        map: (2m, 2) first two principal components of the tested items, source rows first.
        explained: the share of variance each of the two components explains.
        permutations: how many permutations the p-value rests on.
    """

    auc: float
    p_value: float
    shifted: bool
    source_rows: np.ndarray
    target_rows: np.ndarray
    target_probability: np.ndarray
    map: np.ndarray
    explained: tuple[float, float]
    permutations: int

    def _typical_order(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices into each side's tested items: the most source-like source, most target-like target."""
        m = len(self.source_rows)
        return (np.argsort(self.target_probability[:m], kind="stable")[:k],
                np.argsort(-self.target_probability[m:], kind="stable")[:k])

    def typical(self, k: int = TYPICAL) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most source-like source items and ``k`` most target-like target items.

        Positions in the features given, most typical first.
        """
        source_order, target_order = self._typical_order(k)
        return self.source_rows[source_order], self.target_rows[target_order]

    def rule(self) -> str:
        """The decision rule, in words."""
        return f"shifted when p <= {ALPHA} and AUC >= {AUC_FLOOR}"

    def to_dict(self) -> dict:
        """The figures (no arrays): auc, p_value, shifted, items_per_side, permutations, rule."""
        return {"auc": self.auc, "p_value": self.p_value, "shifted": self.shifted,
                "items_per_side": int(len(self.source_rows)), "permutations": self.permutations,
                "rule": self.rule()}

    def summary(self, source_items: Sequence[str], source_origins: Sequence[str], target_items: Sequence[str],
                target_origins: Sequence[str], *, k: int = TYPICAL, chars: int = SHOWN_CHARS) -> dict:
        """:meth:`to_dict`, the ``k`` most ``typical`` items of each side and the 2-D ``map``, as JSON values.

        Args:
            source_items: the source's items (texts or image paths), indexed as the features given.
            source_origins: where each source item came from (file and row, or an id).
            target_items: the target's items, indexed as the features given.
            target_origins: where each target item came from.
            k: items shown a side.
            chars: the most characters of an item shown.

        Returns:
            ``to_dict()`` with ``typical`` (``source``, ``target``: ``item``, ``origin``,
            ``p_target``), ``map`` (``source``, ``target``: lists of [x, y]) and ``explained``.
        """
        m = len(self.source_rows)
        sides = {"source": (self.source_rows, self.target_probability[:m], source_items, source_origins),
                 "target": (self.target_rows, self.target_probability[m:], target_items, target_origins)}
        typical = {}
        for (side, (rows, probability, items, origins)), order in zip(sides.items(), self._typical_order(k)):
            typical[side] = [{"item": str(items[rows[i]])[:chars], "origin": str(origins[rows[i]]),
                              "p_target": float(probability[i])} for i in order]
        rounded = np.round(self.map, 4)
        return {**self.to_dict(), "typical": typical,
                "map": {"source": rounded[:m].tolist(), "target": rounded[m:].tolist()},
                "explained": list(self.explained)}


def check_sizes(n_source: int, n_target: int) -> None:
    """Raise ValueError naming the side with fewer than :data:`MIN_ITEMS` items and how many are needed."""
    for side, n in (("source", n_source), ("target", n_target)):
        if n < MIN_ITEMS:
            raise ValueError(f"the {side} has {n} item(s); telling two data sets apart needs at least "
                             f"{MIN_ITEMS} on each side")


def shift_test(source_features: np.ndarray, target_features: np.ndarray, *, seed: int = 0,
               max_items: int = MAX_ITEMS, permutations: int = PERMUTATIONS, folds: int = 5,
               progress: bool = True) -> ShiftTest:
    """Whether a domain classifier tells the target from the source, beyond chance and by enough.

    Both sides are subsampled to the same size (at most ``max_items``), so that chance is an AUC
    of 0.5 whatever their sizes. The pooled items are standardized and reduced to their first
    :data:`TEST_DIMS` principal components (fitted without the sides' names, so the permutations
    stay exchangeable); a logistic regression's out-of-fold probabilities give the AUC. The
    p-value compares it with the AUCs of the same procedure on shuffled side names, stopping
    early once :data:`EXCEEDANCES` of them reach it (Besag & Clifford, "Sequential Monte Carlo
    p-values", Biometrika 78(2), 1991): p = exceedances / permutations run, else
    (1 + exceedances) / (1 + permutations).

    Args:
        source_features: (n_source, d) frozen features of the source items.
        target_features: (n_target, d) frozen features of the target, same backbone.
        seed: seeds the subsample, the folds and the permutations.
        max_items: items a side at most.
        permutations: permutations at most.
        folds: cross-validation folds.
        progress: draw a progress bar over the permutations.

    Returns:
        A :class:`ShiftTest`.

    Raises:
        ValueError: widths that differ, non-finite values, or a side with fewer than
            :data:`MIN_ITEMS` items.
    """
    source = np.asarray(source_features, dtype=np.float64)
    target = np.asarray(target_features, dtype=np.float64)
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"source and target features must be 2-D with the same width, got shapes "
                         f"{source.shape} and {target.shape} (the same backbone for both)")
    check_sizes(len(source), len(target))
    rng = np.random.default_rng(seed)
    m = min(len(source), len(target), max(max_items, MIN_ITEMS))
    source_rows = np.sort(rng.choice(len(source), size=m, replace=False))
    target_rows = np.sort(rng.choice(len(target), size=m, replace=False))
    pooled = np.concatenate([source[source_rows], target[target_rows]])
    if not np.all(np.isfinite(pooled)):
        raise ValueError("features contain NaN or infinite values")
    standardized = StandardScaler().fit_transform(pooled)
    dims = min(TEST_DIMS, standardized.shape[1], len(pooled) - 1)
    reduced = PCA(n_components=dims, random_state=seed).fit_transform(standardized)
    is_target = np.r_[np.zeros(m, np.int64), np.ones(m, np.int64)]

    def auc_of(labels: np.ndarray, fold_seed: int) -> tuple[float, np.ndarray]:
        probability = out_of_fold_target_probability(reduced, labels, seed=fold_seed, folds=folds)
        return float(roc_auc_score(labels, probability)), probability

    auc, probability = auc_of(is_target, seed)
    exceed, done = 0, 0
    bar = progress_bar("shift: permutation test", permutations) if progress else nullcontext(lambda n=1: None)
    with bar as advance:
        for done in range(1, permutations + 1):
            shuffled = rng.permutation(is_target)
            exceed += auc_of(shuffled, seed + done)[0] >= auc
            advance(1)
            if exceed >= EXCEEDANCES:
                break
    p_value = exceed / done if exceed >= EXCEEDANCES else (1 + exceed) / (1 + done)
    map_2d = reduced[:, :2] if dims >= 2 else np.c_[reduced, np.zeros(len(reduced))]
    variance = standardized.var(axis=0).sum()
    explained = tuple(float(map_2d[:, i].var() / variance) if variance > 0 else 0.0 for i in range(2))
    return ShiftTest(auc=auc, p_value=float(p_value), shifted=bool(p_value <= ALPHA and auc >= AUC_FLOOR),
                     source_rows=source_rows, target_rows=target_rows, target_probability=probability,
                     map=map_2d, explained=explained, permutations=done)

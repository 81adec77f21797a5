"""Training a linear head with an unlabeled pool as well as the labels: self-training or label spreading.

Two ways to learn from unlabeled items of the task, both ending in the same linear head on the
backbone's features (so the model predicts and exports as a probe does):

- ``self-train``: class-balanced pseudo-labels, a few rounds (:mod:`headstart.learn.pseudo_labels`).
  Each round lowers every class's confidence threshold (the share of its predicted items taken
  grows); how many rounds, and so the thresholds, is chosen on held-out labels.
- ``propagation``: the labels spread along the k-nearest-neighbour graph of labeled and pool items
  (:mod:`headstart.learn.label_spreading`); the head is then fitted on the labels and the pool
  items the spreading is most sure of, class by class (the spreading distilled into the head, as
  Iscen et al. 2019 train on it).

``auto`` uses the pool only when it pays: every candidate (each self-training round, the
spreading) and the labeled-only head are judged on held-out labels: the validation split, or
out of fold (:func:`headstart.learn.head.stratified_folds`). The best candidate is kept only when it beat the
labeled-only head by more than the standard error of the paired difference, as ``fit``'s other
automatic choices keep the simpler model when scores cannot be told apart. Its held-out figures
go in the record (``model.metrics["unlabeled"]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from headstart.learn.head import LinearHead
from headstart.learn.label_spreading import affinity, nearest_neighbours, spread_labels
from headstart.learn.pseudo_labels import ROUNDS, FitHead, class_thresholds, confident_items, self_training_rounds

METHODS = ("auto", "none", "self-train", "propagation")
POOL_LIMIT = 5_000  # pool items used at most, a random sample of a bigger one: each round fits on them, on two cores
SPREAD_SHARE = 0.5  # of each class's pool items, the ones the spreading is surest of train the head
Folds = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class PoolChoice:
    """What :func:`judge_pool` chose.

    Attributes:
        method: ``none``, ``self-train`` or ``propagation``.
        candidate: the candidate kept (``self-train@0.6``: the rounds up to that share; ``propagation``).
        record: the choice and its held-out figures, for ``model.metrics["unlabeled"]``.
        held_out_proba: the kept candidate's (or labeled-only head's) probabilities of the held-out
            items (n, k), rows in ``x``'s order (NaN for items never held out).
    """

    method: str
    candidate: str
    record: dict = field(default_factory=dict)
    held_out_proba: np.ndarray | None = None

    @property
    def rounds(self) -> tuple[float, ...]:
        """The self-training rounds kept (none for other methods)."""
        if not self.candidate.startswith("self-train@"):
            return ()
        return tuple(r for r in ROUNDS if r <= float(self.candidate.split("@")[1]))


@dataclass
class PoolResult:
    """What :func:`train_with_pool` returns.

    Attributes:
        choice: the :class:`PoolChoice`.
        head: the chosen method's head on every label and the pool (None for ``none``: keep your own).
    """

    choice: PoolChoice
    head: LinearHead | None

    @property
    def method(self) -> str:
        """``none``, ``self-train`` or ``propagation``."""
        return self.choice.method

    @property
    def record(self) -> dict:
        """The choice's record, with the final head's pseudo-labels."""
        return self.choice.record


def check_method(method: str) -> None:
    """Raise ValueError unless ``method`` is one of :data:`METHODS`."""
    if method not in METHODS:
        raise ValueError(f"unknown pool method {method!r}: use one of {', '.join(METHODS)}")


def pool_sample(size: int, seed: int = 0, limit: int = POOL_LIMIT) -> np.ndarray:
    """Sorted positions of the pool items to use: all ``size`` of them, or a random ``limit``."""
    if size <= limit:
        return np.arange(size)
    return np.sort(np.random.default_rng(seed).choice(size, limit, replace=False))


class _Graph:
    """The neighbour graph of the labeled items (first) and the pool, built once for every fold."""

    def __init__(self, x: np.ndarray, pool_x: np.ndarray):
        positions, similarities = nearest_neighbours(np.vstack([x, pool_x]), centre=True)
        self.matrix, self.n_labeled = affinity(positions, similarities), len(x)

    def pool_proba(self, seeds: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
        return spread_labels(self.matrix, seeds, labels, n_classes)[self.n_labeled:]


def _candidates(fit: FitHead, x: np.ndarray, y: np.ndarray, seeds: np.ndarray, pool_x: np.ndarray,
                graph: _Graph, n_classes: int, start: LinearHead, want: set[str]) -> dict[str, tuple]:
    """Each wanted candidate's name -> (head, pseudo-labeled count, per-class thresholds)."""
    heads = {}
    if "self-train" in want:
        for share, head, positions in self_training_rounds(fit, x, y, pool_x, start=start):
            heads[f"self-train@{share}"] = (head, len(positions), None)
            start = head
    if "propagation" in want:
        spread = graph.pool_proba(seeds, y, n_classes)
        positions, labels = confident_items(spread, SPREAD_SHARE)
        head = fit(np.vstack([x, pool_x[positions]]), np.concatenate([y, labels]))
        heads["propagation"] = (head, len(positions), class_thresholds(spread, positions, n_classes))
    return heads


def _paired_gain(mine: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """(mean of mine - theirs, its standard error) over paired held-out hits.

    One win and one loss are added for the error, so a few wins out of a few items do not count as
    certain (in the spirit of Agresti and Caffo's added successes).
    """
    difference = mine.astype(float) - theirs.astype(float)
    padded = np.concatenate([difference, [1.0, -1.0]])
    return float(difference.mean()), float(padded.std(ddof=1) / math.sqrt(len(padded)))


def judge_pool(fit: FitHead, x: np.ndarray, y: np.ndarray, pool_x: np.ndarray, n_classes: int, *,
               folds: Folds, method: str = "auto", labeled_only: FitHead | None = None,
               judged_on: str = "held-out labels") -> PoolChoice:
    """Judge the pool's candidates and the labeled-only head on held-out labels; choose.

    Args:
        fit: fits a head on (features, class ids), e.g. ``partial(fit_head, n_classes=k, c=C)``.
        x: every labeled item's features (n, d).
        y: their class ids.
        pool_x: the unlabeled pool's features (m, d) (a big one sampled by :func:`pool_sample` first).
        n_classes: the head's output size.
        folds: (fit positions, held-out positions) into ``x``: one pair for a validation split.
        method: ``auto`` (the best candidate when it beats labeled-only beyond noise), ``none``,
            ``self-train`` or ``propagation`` (that method, its rounds still chosen on held-out labels).
        labeled_only: the head to compare with, fitted on a fold's labels (default ``fit``); it also
            makes the first pseudo-labels.
        judged_on: how ``folds`` were made, for the record.

    Returns:
        A :class:`PoolChoice`.
    """
    check_method(method)
    labeled_only = labeled_only or fit
    record = {"requested": method, "pool_items": int(len(pool_x)), "judged_on": judged_on}
    if method == "none" or len(pool_x) == 0:
        return PoolChoice("none", "none", {**record, "method": "none"})
    if any(len(np.unique(y[fit_at])) < 2 for fit_at, _ in folds):  # a class of one label, say: nothing to judge
        return PoolChoice("none", "none", {**record, "method": "none", "sentence": (
            "not used: the labels left to fit on beside some held-out ones are of a single class")})
    want = {"self-train", "propagation"} if method == "auto" else {method}
    graph = _Graph(x, pool_x) if "propagation" in want else None
    proba: dict[str, np.ndarray] = {}
    for fit_at, held in folds:
        base = labeled_only(x[fit_at], y[fit_at])
        heads = {"none": (base,), **_candidates(fit, x[fit_at], y[fit_at], fit_at, pool_x, graph, n_classes, base,
                                                want)}
        for name, (head, *_) in heads.items():
            proba.setdefault(name, np.full((len(y), n_classes), np.nan))[held] = head.proba(x[held])
    held_out = np.unique(np.concatenate([held for _, held in folds]))
    correct = {name: p[held_out].argmax(1) == y[held_out] for name, p in proba.items()}
    accuracy = {name: float(hits.mean()) for name, hits in correct.items()}
    # The best candidate; among ties the earlier one (fewer rounds, then self-training).
    best = max((name for name in correct if name != "none"), key=lambda name: accuracy[name])
    gain, error = _paired_gain(correct[best], correct["none"])
    record.update({"held_out": int(len(held_out)), "accuracy": accuracy, "best": best, "gain": gain,
                   "standard_error": error})
    if method == "auto" and not gain > error:
        record.update(method="none", sentence=(
            f"kept the labeled-only head: {best} reached {accuracy[best]:.1%} on {judged_on}, labeled-only "
            f"{accuracy['none']:.1%}; a gain of {gain:+.1%} is within its standard error {error:.1%}"))
        return PoolChoice("none", "none", record, proba["none"])
    chosen = "self-train" if best.startswith("self-train") else "propagation"
    record.update(method=chosen, sentence=(
        f"{chosen} on {len(pool_x)} unlabeled items: {accuracy[best]:.1%} on {judged_on} against "
        f"{accuracy['none']:.1%} with the labels alone ({gain:+.1%}, standard error {error:.1%})"))
    return PoolChoice(chosen, best, record, proba[best])


def pool_head(choice: PoolChoice, fit: FitHead, x: np.ndarray, y: np.ndarray, pool_x: np.ndarray, n_classes: int,
              *, labeled_only: FitHead | None = None) -> LinearHead | None:
    """The chosen candidate trained on labeled ``(x, y)`` and the pool (None for ``none``).

    Adds ``pseudo_labeled`` (pool items the head was fitted with) and ``class_thresholds`` (each
    class's lowest confidence taken) to ``choice.record``.
    """
    if choice.method == "none":
        return None
    start = (labeled_only or fit)(x, y)
    if choice.method == "propagation":
        head, pseudo, thresholds = _candidates(fit, x, y, np.arange(len(y)), pool_x, _Graph(x, pool_x), n_classes,
                                               start, {"propagation"})["propagation"]
    else:
        head, positions, proba = start, np.zeros(0, dtype=int), None
        for _, round_head, positions in self_training_rounds(fit, x, y, pool_x, rounds=choice.rounds, start=start):
            proba, head = head.proba(pool_x), round_head
        pseudo, thresholds = len(positions), class_thresholds(proba, positions, n_classes)
        choice.record["rounds"] = list(choice.rounds)
    choice.record.update(pseudo_labeled=int(pseudo), class_thresholds=thresholds)
    return head


def train_with_pool(fit: FitHead, x: np.ndarray, y: np.ndarray, pool_x: np.ndarray, n_classes: int, *,
                    folds: Folds, method: str = "auto", labeled_only: FitHead | None = None,
                    judged_on: str = "held-out labels") -> PoolResult:
    """:func:`judge_pool`, then :func:`pool_head` on every label (arguments as for :func:`judge_pool`)."""
    pool_x = np.asarray(pool_x, dtype=np.float32)
    choice = judge_pool(fit, x, y, pool_x, n_classes, folds=folds, method=method, labeled_only=labeled_only,
                        judged_on=judged_on)
    return PoolResult(choice, pool_head(choice, fit, x, y, pool_x, n_classes, labeled_only=labeled_only))

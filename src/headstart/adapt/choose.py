"""``--adapt auto``: choose an adaptation without a target label, or none when that cannot be told.

Three checks, all on what the user gave (source labels, target items) and never on target labels:

1. Is there a shift at all? A domain classifier's cross-validated AUC
   (:func:`headstart.evaluate.shift.domain_probabilities`). Below :data:`MIN_AUC` the target looks
   like the source, and there is nothing to adapt to.
2. Does the method's labelling of the target follow the target's own neighbourhoods better than no
   adaptation's (:mod:`headstart.adapt.neighbourhood`)? It must, by more than :data:`MARGIN`
   bootstrap standard errors.
3. Reverse validation as a veto (Zhong et al. 2010; Ganin et al. 2016 tune DANN with it): a
   reverse model of the same method, trained on the method's pseudo-labelled target and adapted
   back, is scored on the source's validation labels; a method whose reverse accuracy falls below no
   adaptation's by more than a standard error has labelled the target in a way that does not carry
   back, and is not chosen.

Why not reverse validation alone: every candidate's labelling is linear in the target's features,
so the reverse model of ``none`` learns back the very boundary the source model drew and scores
the source's own validation accuracy, however wrong that boundary is on the target; in the
benchmark it chose CORAL on a pair where CORAL lost 5 points, and none where CORAL gained 6.
Importance-weighted validation (Sugiyama et al. 2007) weights source items by p(target | x) /
p(source | x): under the strong shifts adaptation is for (a domain AUC near 1) nearly every weight
is zero and the estimate is noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score

from headstart.adapt.methods import FEATURE_METHODS, OWN_STATISTICS
from headstart.adapt.neighbourhood import kappa_difference, neighbour_graph
from headstart.adapt.self_training import FitHead
from headstart.evaluate.shift import domain_probabilities

MIN_AUC = 0.6  # domain AUC below this: source and target are not told apart
MARGIN = 2.0  # standard errors by which a method's neighbourhood agreement must beat no adaptation's


@dataclass
class DomainViews:
    """Features of both domains as the methods need them.

    Attributes:
        train_x: source training features (n, d) under the model's backbone as it is.
        train_y: their class ids.
        val_x: source validation features (m, d), likewise.
        val_y: their class ids.
        target_x: target features, likewise.
        own: the same items' features with each domain under its own batch-norm statistics
            (AdaBN's view; None where the backbone has no batch norm).
    """

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    target_x: np.ndarray
    own: "DomainViews | None" = None

    def for_method(self, method: str) -> "DomainViews":
        """The views ``method`` reads."""
        return self.own if method in OWN_STATISTICS else self


@dataclass
class Choice:
    """What ``auto`` chose and why.

    Attributes:
        method: the chosen method (``none`` when it could not tell).
        reason: one sentence for the report.
        domain_auc: the domain classifier's cross-validated AUC.
        scores: per method tried, its neighbourhood kappa gain over none (with its standard error)
            and its reverse-validation accuracy.
    """

    method: str
    reason: str
    domain_auc: float
    scores: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The choice as JSON-ready values."""
        return {"method": self.method, "reason": self.reason, "domain_auc": self.domain_auc,
                "scores": self.scores}


def domain_auc(source_x: np.ndarray, target_x: np.ndarray, *, seed: int = 0) -> float:
    """Cross-validated AUC of a classifier telling target features from source ones (0.5: alike)."""
    p_target = domain_probabilities(source_x, target_x, seed=seed)
    truth = np.r_[np.zeros(len(source_x)), np.ones(len(target_x))]
    return float(roc_auc_score(truth, p_target))


def forward_labels(method: str, fit: FitHead, views: DomainViews) -> np.ndarray:
    """The target's labels under ``method`` trained on the source's training split."""
    views = views.for_method(method)
    return FEATURE_METHODS[method](fit, views.train_x, views.train_y, views.target_x).proba(views.target_x).argmax(1)


def reverse_correct(method: str, fit: FitHead, views: DomainViews, pseudo: np.ndarray) -> np.ndarray | None:
    """Per source validation item, whether ``method``'s reverse model gets it right (None: no reverse model).

    The reverse model learns ``pseudo`` (the forward model's labels of the target), adapted towards
    the source's features, and is scored on the source's validation split.
    """
    views = views.for_method(method)
    if len(np.unique(pseudo)) < 2:  # every target item in one class: nothing to learn back
        return None
    source = np.vstack([views.train_x, views.val_x])
    reverse = FEATURE_METHODS[method](fit, views.target_x, pseudo, source)
    return reverse.proba(views.val_x).argmax(axis=1) == views.val_y


def _standard_error(difference: np.ndarray) -> float:
    return float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else float("inf")


def choose(fit: FitHead, views: DomainViews, *, seed: int = 0) -> Choice:
    """Choose the adaptation method, or ``none`` (see the module's docstring).

    Args:
        fit: fits a plain head on (features, class ids).
        views: the features of both domains.
        seed: seeds the domain classifier's folds and the bootstrap.

    Returns:
        The :class:`Choice`; ``scores`` holds each method's neighbourhood kappa gain over none and
        its reverse-validation accuracy.
    """
    auc = domain_auc(np.vstack([views.train_x, views.val_x]), views.target_x, seed=seed)
    if auc < MIN_AUC:
        return Choice("none", f"no adaptation: a domain classifier barely tells the target from the source "
                              f"(AUC {auc:.2f} < {MIN_AUC})", auc)
    if len(views.val_y) < 2:
        return Choice("none", "no adaptation: there are too few source validation items to check on", auc)
    candidates = [m for m in FEATURE_METHODS if m not in OWN_STATISTICS or views.own is not None]
    labels = {m: forward_labels(m, fit, views) for m in candidates}
    graph = neighbour_graph(views.target_x)
    reverse = {m: reverse_correct(m, fit, views, labels[m]) for m in candidates}
    scores, passed = {}, []
    for m in candidates:
        gain, error = kappa_difference(labels[m], labels["none"], graph, seed=seed)
        rev = reverse[m]
        scores[m] = {"kappa_gain": gain, "kappa_error": error,
                     "reverse_accuracy": None if rev is None else float(rev.mean())}
        if m == "none" or rev is None or reverse["none"] is None:
            continue
        vetoed = rev.mean() < reverse["none"].mean() - _standard_error(rev.astype(float) - reverse["none"])
        if gain > MARGIN * error and not vetoed:
            passed.append(m)
    if not passed:
        return Choice("none", f"no adaptation: no method's target labels followed the target's neighbourhoods "
                              f"better beyond noise ({MARGIN:g} standard errors) without failing reverse "
                              f"validation (domain AUC {auc:.2f})", auc, scores)
    best = max(passed, key=lambda m: scores[m]["kappa_gain"])
    return Choice(best, f"{best}: its target labels follow the target's neighbourhoods better than without "
                        f"adaptation (kappa +{scores[best]['kappa_gain']:.3f}, standard error "
                        f"{scores[best]['kappa_error']:.3f}), and reverse validation does not object "
                        f"({scores[best]['reverse_accuracy']:.1%} against {scores['none']['reverse_accuracy']:.1%}; "
                        f"domain AUC {auc:.2f})", auc, scores)

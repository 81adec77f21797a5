"""``--adapt auto``: choose an adaptation without a target label, or none when that cannot be told.

Two checks, both on labels the user gave (the source's) and never on the target's:

1. Is there a shift at all? A domain classifier's cross-validated AUC
   (:func:`headstart.transfer.shift.domain_probabilities`). Below :data:`MIN_AUC` the target looks
   like the source, and there is nothing to adapt to.
2. Reverse validation (Zhong et al. 2010, "Cross validation framework to choose amongst models and
   datasets for transfer learning"; Ganin et al. 2016 use it to tune DANN): each method trains on the
   labeled source split and labels the target; a reverse model of the same method trains on those
   pseudo-labeled target items, adapted back to the source, and is scored on the source's validation
   labels. A method whose target labels are right transfers them back well; one that labels the
   target wrongly sends its errors back.

Importance-weighted validation (Sugiyama et al. 2007) was the other candidate; it weights source
items by p(target | x) / p(source | x), and under the strong shifts adaptation is for (a domain
AUC near 1) nearly every weight is zero and the estimate is noise: reverse validation is used instead.

A method is chosen only when its reverse accuracy beats no adaptation's by more than the standard
error of the paired difference on the validation items (the rule ``auto`` uses between probe and
fine-tune, :func:`headstart.learn.trainer.keeps_finetuned`); otherwise ``none``, saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score

from headstart.adapt.methods import FEATURE_METHODS, OWN_STATISTICS
from headstart.adapt.self_training import FitHead
from headstart.adapt.shared import domain_probabilities

MIN_AUC = 0.6  # domain AUC below this: source and target are not told apart


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
        scores: reverse-validation accuracy of each method tried.
    """

    method: str
    reason: str
    domain_auc: float
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The choice as JSON-ready values."""
        return {"method": self.method, "reason": self.reason, "domain_auc": self.domain_auc,
                "reverse_validation": self.scores}


def domain_auc(source_x: np.ndarray, target_x: np.ndarray, *, seed: int = 0) -> float:
    """Cross-validated AUC of a classifier telling target features from source ones (0.5: alike)."""
    p_target = domain_probabilities(source_x, target_x, seed=seed)
    truth = np.r_[np.zeros(len(source_x)), np.ones(len(target_x))]
    return float(roc_auc_score(truth, p_target))


def reverse_correct(method: str, fit: FitHead, views: DomainViews) -> np.ndarray | None:
    """Per source validation item, whether ``method``'s reverse model gets it right (None: no reverse model).

    The forward model learns the source's training split and labels the target; the reverse model
    learns those pseudo-labels, adapted towards the source's features, and is scored on the
    source's validation split.
    """
    adapt = FEATURE_METHODS[method]
    views = views.for_method(method)
    target = views.target_x
    pseudo = adapt(fit, views.train_x, views.train_y, target).proba(target).argmax(axis=1)
    if len(np.unique(pseudo)) < 2:  # every target item in one class: nothing to learn back
        return None
    source = np.vstack([views.train_x, views.val_x])
    reverse = adapt(fit, target, pseudo, source)
    return reverse.proba(views.val_x).argmax(axis=1) == views.val_y


def choose(fit: FitHead, views: DomainViews, *, seed: int = 0) -> Choice:
    """Choose the adaptation method by reverse validation, or ``none`` (see the module's docstring).

    Args:
        fit: fits a plain head on (features, class ids).
        views: the features of both domains.
        seed: seeds the domain classifier's folds.

    Returns:
        The :class:`Choice`.
    """
    auc = domain_auc(np.vstack([views.train_x, views.val_x]), views.target_x, seed=seed)
    if auc < MIN_AUC:
        return Choice("none", f"no adaptation: a domain classifier barely tells the target from the source "
                              f"(AUC {auc:.2f} < {MIN_AUC})", auc)
    if len(views.val_y) == 0:
        return Choice("none", "no adaptation: there are no source validation items to choose on", auc)
    candidates = [m for m in FEATURE_METHODS if m not in OWN_STATISTICS or views.own is not None]
    correct = {m: reverse_correct(m, fit, views) for m in candidates}
    scores = {m: float(c.mean()) for m, c in correct.items() if c is not None}
    if correct.get("none") is None:
        return Choice("none", "no adaptation: the source model puts every target item in one class, so reverse "
                              "validation cannot judge", auc, scores)
    best = max(scores, key=scores.get)
    difference = correct[best].astype(float) - correct["none"]
    error = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else np.inf
    if best == "none" or difference.mean() <= max(error, 1 / len(difference)):
        return Choice("none", f"no adaptation: no method beat none beyond noise in reverse validation "
                              f"(best {best} {scores[best]:.1%}, none {scores['none']:.1%}; domain AUC {auc:.2f})",
                      auc, scores)
    return Choice(best, f"{best}: reverse validation {scores[best]:.1%} against {scores['none']:.1%} without "
                        f"adaptation (+{difference.mean():.1%}, standard error {error:.1%}; domain AUC {auc:.2f})",
                  auc, scores)

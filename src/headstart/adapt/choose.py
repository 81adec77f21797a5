"""``--adapt auto``: adapt by CORAL then self-training, unless there is no shift or a check objects.

All on what the user gave (source labels, target items), never on target labels:

1. Is there a shift at all? A domain classifier's cross-validated AUC
   (:func:`headstart.evaluate.shift.domain_probabilities`). Below :data:`MIN_AUC` the target looks
   like the source, and there is nothing to adapt to: ``none``.
2. The adaptation is :data:`ADAPTATION`: CORAL aligns the source features' mean and covariance with
   the target's (the shift a new camera, a new writing style or a new product line brings to the
   features), and self-training then moves the boundary into the target's own low-density regions
   (the cluster assumption). Each alone gained on some of the benchmark's pairs and lost on others;
   together they gained on 6 of 7 pairs and lost 0.1 point on the seventh
   (``benchmarks/results/shift-auto-2026-12-03.json``).
3. Two vetoes, each a sign that the adaptation harms, each at :data:`VETO` standard errors:

   - the target's neighbourhoods (:mod:`headstart.adapt.neighbourhood`; Saito et al. 2021): when
     the adapted labels of the target keep nearest neighbours together less often than the source
     model's labels do, the adaptation has drawn its boundary through the target's dense regions.
     This is what happens when the target's class mix differs from the source's (nine in ten items
     of one class, say): CORAL's mean alignment then moves the boundary the wrong way (on such a
     synthetic target it lost 30 points, and this veto kept ``none``);
   - reverse validation (Zhong et al. 2010; Ganin et al. 2016 tune DANN with it): a reverse model,
     trained by the same method on the adapted labels of the target and adapted back, is scored on
     the source's validation labels, item by item against no adaptation's reverse model.

   ``auto`` also keeps ``none`` when either model puts every target item in one class, and when the
   source has too few validation items to check on.

Why the checks veto and do not choose among methods: on the benchmark's 21 runs neither score tracks
the target's accuracy. How well a labelling of the target follows the target's nearest
neighbours (Saito et al. 2021) is what self-training maximises, so it picked self-training where CORAL
gained 5 to 30 points more; reverse accuracy differs between methods by about its own standard error
(2 points on 250 validation items) on the text pairs, in either direction of the target's accuracy.
Importance-weighted validation (Sugiyama et al. 2007) weights source items by p(target | x) /
p(source | x): under the strong shifts adaptation is for (a domain AUC near 1) nearly every weight is
zero and the estimate is noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score

from headstart.adapt.methods import FEATURE_METHODS
from headstart.adapt.neighbourhood import kappa_difference, neighbour_graph
from headstart.adapt.self_training import FitHead
from headstart.evaluate.shift import domain_probabilities

MIN_AUC = 0.6  # domain AUC below this: source and target are not told apart
ADAPTATION = "coral-self-train"  # what auto applies when there is a shift and reverse validation does not object
VETO = 2.0  # standard errors by which the adaptation may fall below no adaptation on either check


@dataclass
class DomainViews:
    """Features of both domains as the methods need them.

    Attributes:
        train_x: source training features (n, d) under the model's backbone as it is.
        train_y: their class ids.
        val_x: source validation features (m, d), likewise.
        val_y: their class ids.
        target_x: target features, likewise.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    target_x: np.ndarray


@dataclass
class Choice:
    """What ``auto`` chose and why.

    Attributes:
        method: the chosen method (``none`` when it could not tell).
        reason: one sentence for the report.
        domain_auc: the domain classifier's cross-validated AUC.
        scores: the checks' figures (neighbourhood kappa, reverse-validation accuracy) of the adaptation and of ``none``.
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
    return FEATURE_METHODS[method](fit, views.train_x, views.train_y, views.target_x).proba(views.target_x).argmax(1)


def reverse_correct(method: str, fit: FitHead, views: DomainViews, pseudo: np.ndarray) -> np.ndarray | None:
    """Per source validation item, whether ``method``'s reverse model gets it right (None: no reverse model).

    The reverse model learns ``pseudo`` (the forward model's labels of the target), adapted towards
    the source's features, and is scored on the source's validation split.
    """
    if len(np.unique(pseudo)) < 2:  # every target item in one class: nothing to learn back
        return None
    source = np.vstack([views.train_x, views.val_x])
    reverse = FEATURE_METHODS[method](fit, views.target_x, pseudo, source)
    return reverse.proba(views.val_x).argmax(axis=1) == views.val_y


def _standard_error(difference: np.ndarray) -> float:
    return float(difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else float("inf")


def choose(fit: FitHead, views: DomainViews, *, seed: int = 0) -> Choice:
    """:data:`ADAPTATION`, or ``none`` when there is no shift or a check objects (see the module's docstring).

    Args:
        fit: fits a plain head on (features, class ids).
        views: the features of both domains.
        seed: seeds the domain classifier's folds and the bootstrap.

    Returns:
        The :class:`Choice`; ``scores`` holds the adaptation's neighbourhood kappa gain over ``none``
        and both reverse-validation accuracies, with their standard errors.
    """
    auc = domain_auc(np.vstack([views.train_x, views.val_x]), views.target_x, seed=seed)
    if auc < MIN_AUC:
        return Choice("none", f"no adaptation: a domain classifier barely tells the target from the source "
                              f"(AUC {auc:.2f} < {MIN_AUC})", auc)
    if len(views.val_y) < 2:
        return Choice("none", "no adaptation: there are too few source validation items to check on", auc)
    labels = {m: forward_labels(m, fit, views) for m in ("none", ADAPTATION)}
    reverse = {m: reverse_correct(m, fit, views, labels[m]) for m in labels}
    if reverse[ADAPTATION] is None or reverse["none"] is None:
        return Choice("none", f"no adaptation: {ADAPTATION} or the source model puts every target item in one "
                              f"class, and that cannot be checked (domain AUC {auc:.2f})", auc)
    gain, gain_error = kappa_difference(labels[ADAPTATION], labels["none"], neighbour_graph(views.target_x),
                                        seed=seed)
    difference = reverse[ADAPTATION].astype(float) - reverse["none"]
    error = _standard_error(difference)
    adapted, plain = float(reverse[ADAPTATION].mean()), float(reverse["none"].mean())
    scores = {"none": {"reverse_accuracy": plain},
              ADAPTATION: {"kappa_gain": gain, "kappa_error": gain_error, "reverse_accuracy": adapted,
                           "reverse_difference_error": error}}
    if gain < -VETO * gain_error:
        return Choice("none", f"no adaptation: {ADAPTATION}'s labels of the target split the target's nearest "
                              f"neighbours more often than the source model's (kappa {gain:+.3f}, standard error "
                              f"{gain_error:.3f}; domain AUC {auc:.2f})", auc, scores)
    checked = f"reverse validation {adapted:.1%} against {plain:.1%} without adaptation"
    if difference.mean() < -VETO * error:
        return Choice("none", f"no adaptation: {ADAPTATION} was vetoed: {checked}, lower by more than {VETO:g} "
                              f"standard errors ({error:.1%}; domain AUC {auc:.2f})", auc, scores)
    return Choice(ADAPTATION, f"{ADAPTATION}: the target differs from the source (domain AUC {auc:.2f}); its "
                              f"labels of the target keep neighbours together (kappa {gain:+.3f} against the "
                              f"source model's) and {checked} does not object", auc, scores)

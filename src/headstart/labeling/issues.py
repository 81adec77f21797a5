"""Label issues: labels that look wrong, found by confident learning (cleanlab.find_label_issues).

Out-of-fold probabilities come from the linear probe on cached features: the probe's strength C
is chosen once on all labels (``loop_probe.fit_labeled_probe``), then each fold's items are predicted
by a probe fit on the other folds. That is k fits of a linear model (seconds), where cleanlab's
users complain of slow out-of-fold predictions with full models (cleanlab#555).

Flags wait until the out-of-fold model is clearly better than chance (:mod:`chance_check`): a model
at chance flags correct labels as often as wrong ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from headstart.labeling.chance_check import ChanceCheck, check_better_than_chance
from headstart.labeling.loop_probe import held_out_proba


def find_issues(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Positions of likely label errors, most likely first (cleanlab's confident learning, ranked by
    self-confidence). Classes nobody used are dropped first, as cleanlab needs every class labeled."""
    from cleanlab.filter import find_label_issues

    present = np.unique(labels)
    if len(present) < 2:
        return np.zeros(0, dtype=np.int64)
    remap = np.full(proba.shape[1], -1)
    remap[present] = np.arange(len(present))
    sub = proba[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # n_jobs=1: cleanlab's default forks a multiprocessing pool, and a fork of a threaded server
        # (the web page runs this) can deadlock, leaving workers that hold its socket and ignore SIGTERM
        found = find_label_issues(remap[labels], sub, return_indices_ranked_by="self_confidence", n_jobs=1)
    return np.asarray(found, dtype=np.int64)


@dataclass
class IssueScan:
    """What one look for label issues gave: the flags (none while ``held_back``) and the chance check."""

    found: list[dict] = field(default_factory=list)
    check: ChanceCheck | None = None

    @property
    def held_back(self) -> bool:
        return self.check is not None and not self.check.clear


def scan_issues(project, *, folds: int = 5, seed: int = 0, queue: bool = True,
                require_better_than_chance: bool = True) -> IssueScan:
    """Find likely wrong labels among the settled labels and (with ``queue``) put them in the
    review queue with the reason and the suggested label; nothing is flagged while the out-of-fold
    model is not clearly better than chance (``require_better_than_chance``)."""
    positions, y = project.resolved()
    features = project.features()[positions]
    proba = held_out_proba(features, y, len(project.classes), folds=folds, seed=seed)
    check = check_better_than_chance(y, proba, project.classes)
    if require_better_than_chance and not check.clear:
        return IssueScan(check=check)
    flagged = find_issues(y, proba)
    ids, classes = project.ids, project.classes
    found = []
    for i in flagged:
        suggested = int(proba[i].argmax())
        found.append({"id": ids[positions[i]], "given": classes[y[i]], "suggested": classes[suggested],
                      "p_given": float(proba[i, y[i]]), "p_suggested": float(proba[i, suggested])})
    if queue and found:
        project.add_review([
            (f["id"], "label_issue",
             f"given '{f['given']}' (held-out probability {f['p_given']:.2f}); the model says '{f['suggested']}' "
             f"({f['p_suggested']:.2f})", f["suggested"]) for f in found])
    return IssueScan(found=found, check=check)


def label_issues(project, *, folds: int = 5, seed: int = 0, queue: bool = True) -> list[dict]:
    """The flags of :func:`scan_issues`, one dict per flagged item (none while held back)."""
    return scan_issues(project, folds=folds, seed=seed, queue=queue).found

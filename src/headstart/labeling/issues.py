"""Label issues: labels that look wrong, found by confident learning (cleanlab.find_label_issues).

Out-of-fold probabilities come from the linear probe on cached features: the probe's strength C
is chosen once on all labels (``retrain.fit_labeled_probe``), then each fold's items are predicted
by a probe fit on the other folds. That is k fits of a linear model (seconds), where cleanlab's
users complain of slow out-of-fold predictions with full models (cleanlab#555).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import StratifiedKFold

from headstart.errors import LabelingError
from headstart.learn.probe import _fit
from headstart.labeling.retrain import LOOP_C, fit_labeled_probe, fit_loop_probe, softmax_proba


def out_of_fold_proba(x: np.ndarray, y: np.ndarray, n_classes: int, *, folds: int = 5, seed: int = 0,
                      c: float | None = None, scaling: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Class probabilities (n, n_classes) of each item from a probe that did not see it. With the
    pool's ``scaling`` (``retrain.pool_scaling``) the probe is the labeling loop's, of strength ``c``
    (default ``retrain.LOOP_C``); without, headstart's probe of strength ``c``, or plain
    cross-validation's choice on all of ``x``."""
    if len(np.unique(y)) < 2:
        raise LabelingError(f"held-out predictions need labels of two classes; there are {len(y)} labels of "
                            f"{len(np.unique(y))} class(es)", where="labels", fix="label more items")
    counts = np.bincount(y, minlength=n_classes)
    n_splits = int(max(2, min(folds, counts[counts > 0].max(), len(y) // 2)))
    if scaling is not None:
        c = c or LOOP_C
        fit = lambda xs, ys: fit_loop_probe(xs, ys, n_classes, scaling, c=c, seed=seed)  # noqa: E731
    else:
        if c is None:
            c = fit_labeled_probe(x, y, n_classes, seed)[1].get("C") or 1.0
        fit = lambda xs, ys: _fit(xs, ys, n_classes, c, seed)  # noqa: E731
    proba = np.zeros((len(y), n_classes), dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class rarer than the folds: its items still get predicted
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for train, test in splitter.split(x, y):
            if len(np.unique(y[train])) < 2:
                proba[test] = np.bincount(y[train], minlength=n_classes) / len(train)
                continue
            proba[test] = softmax_proba(fit(x[train], y[train]), x[test])
    return proba


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
        found = find_label_issues(remap[labels], sub, return_indices_ranked_by="self_confidence")
    return np.asarray(found, dtype=np.int64)


def label_issues(project, *, folds: int = 5, seed: int = 0, queue: bool = True) -> list[dict]:
    """Find likely wrong labels among the settled labels and (with ``queue``) put them in the
    review queue with the reason and the suggested label. Returns one dict per flagged item."""
    positions, y = project.resolved()
    features = project.features()[positions]
    proba = out_of_fold_proba(features, y, len(project.classes), folds=folds, seed=seed)
    flagged = find_issues(y, proba)
    ids, classes = project.ids, project.classes
    found = []
    for i in flagged:
        suggested = int(proba[i].argmax())
        found.append({"id": ids[positions[i]], "given": classes[y[i]], "suggested": classes[suggested],
                      "p_given": float(proba[i, y[i]]), "p_suggested": float(proba[i, suggested])})
    if queue and found:
        project.store.add_review([
            (f["id"], "label_issue",
             f"given '{f['given']}' (held-out probability {f['p_given']:.2f}); the model says '{f['suggested']}' "
             f"({f['p_suggested']:.2f})", f["suggested"]) for f in found])
    return found

"""A linear probe: a :class:`~headstart.learn.head.LinearHead` on frozen features, its strength chosen.

The regularization strength C is chosen by stratified cross-validation on the training split when
the data are small (a validation split of a few items would pick C by chance), on the validation
split otherwise. Either way the head is fitted on the training split only, so its validation
accuracy is a held-out figure that the trainer can compare fine-tuned models with;
:func:`final_probe` then fits on train+validation once every choice is made.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from headstart.learn.head import LinearHead, fit_head

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
SMALL_DATA = 1000  # below this many train+validation items, C is chosen by cross-validation


def score_head(head: LinearHead, features: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[float, float]:
    """(accuracy, log loss) of ``head`` on labeled features; (nan, nan) for no items."""
    if len(labels) == 0:
        return float("nan"), float("nan")
    proba = head.proba(features)
    accuracy = float((proba.argmax(1) == labels).mean())
    return accuracy, float(log_loss(labels, proba, labels=list(range(n_classes))))


def _cross_validated(x: np.ndarray, y: np.ndarray, n_classes: int, folds: int, seed: int) -> list[tuple]:
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    grid = []
    for c in C_GRID:
        scores = [score_head(fit_head(x[a], y[a], n_classes, c=c, seed=seed), x[b], y[b], n_classes)
                  for a, b in splitter.split(x, y)]
        grid.append((c, *np.mean(scores, axis=0)))
    return grid


def fit_probe(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, n_classes: int,
              *, seed: int = 0) -> tuple[LinearHead, dict]:
    """Choose C, fit the probe on the training split, score it on the validation split.

    Args:
        train_x: training features, shape (n, d).
        train_y: training labels (n,), integers in ``range(n_classes)``.
        val_x: validation features, shape (m, d); may be empty.
        val_y: validation labels (m,), integers in ``range(n_classes)``.
        n_classes: the head's output size.
        seed: seeds the folds and the solver.

    Returns:
        (head, info) with info ``{"C", "selection", "val_accuracy", "val_loss", "grid"}``: the
        validation figures are the head's on the validation split (the cross-validated means
        where there is none).
    """
    min_count = np.bincount(train_y, minlength=n_classes)[np.unique(train_y)].min()
    small = len(train_y) + len(val_y) < SMALL_DATA or len(val_y) == 0
    if small and min_count >= 2:
        folds = min(5, int(min_count))
        selection = f"{folds}-fold cross-validation on the training split"
        grid = _cross_validated(train_x, train_y, n_classes, folds, seed)
    elif len(val_y):
        selection = "validation split"
        grid = [(c, *score_head(fit_head(train_x, train_y, n_classes, c=c, seed=seed), val_x, val_y, n_classes))
                for c in C_GRID]
    else:  # a class with one training item and nothing to validate on
        selection, grid = "fixed (too few items to choose)", [(1.0, float("nan"), float("nan"))]
    # Best accuracy; among near-ties the lower loss (accuracy moves in steps of 1/m on small sets).
    best_accuracy = max(acc for _, acc, _ in grid)
    c, accuracy, loss = min((row for row in grid if not row[1] < best_accuracy - 1e-9), key=lambda row: row[2])
    head = fit_head(train_x, train_y, n_classes, c=c, seed=seed)
    if len(val_y):
        accuracy, loss = score_head(head, val_x, val_y, n_classes)
    info = {"C": c, "selection": selection, "val_accuracy": accuracy, "val_loss": loss,
            "grid": [{"C": g, "val_accuracy": a, "val_loss": loss} for g, a, loss in grid]}
    return head, info


def final_probe(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, n_classes: int,
                c: float, *, seed: int = 0) -> tuple[LinearHead, float]:
    """The probe fitted on train+validation once every choice is made, and its strength.

    Small data: the strength is chosen again by cross-validation over every label (the folds then
    hold more items than the training split alone gave); otherwise the strength ``c`` that the
    validation split chose is kept.

    Args:
        train_x: training features (n, d).
        train_y: their class ids in ``range(n_classes)``.
        val_x: validation features (m, d).
        val_y: their class ids.
        n_classes: the head's output size.
        c: the strength :func:`fit_probe` chose.
        seed: seeds the folds and the solver.

    Returns:
        (head, strength).
    """
    all_x, all_y = np.vstack([train_x, val_x]), np.concatenate([train_y, val_y])
    if len(all_y) < SMALL_DATA:
        head, info = fit_probe(all_x, all_y, all_x[:0], all_y[:0], n_classes, seed=seed)
        return head, info["C"]
    return fit_head(all_x, all_y, n_classes, c=c, seed=seed), c


def refit_on_all(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, n_classes: int,
                 c: float, *, seed: int = 0) -> LinearHead:
    """The probe of strength ``c`` (one :func:`fit_probe` chose) fitted on train+validation."""
    return fit_head(np.vstack([train_x, val_x]), np.concatenate([train_y, val_y]), n_classes, c=c, seed=seed)

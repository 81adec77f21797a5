"""The linear head: one layer over a backbone's features, fitted as regularized logistic regression.

Every linear model in headstart is a :class:`LinearHead` fitted by :func:`fit_head`: the probe of
``headstart fit`` (its strength chosen in :mod:`headstart.learn.probe`), the labeling loop's probe,
out-of-fold predictions for label issues, and the head a fine-tune starts from. Features are
standardized for the fit and the scaling is then folded into the weights, so the head is one
linear layer on raw features that exports and serializes as a weight and a bias.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from safetensors.numpy import load as load_tensors, save as save_tensors

from headstart.errors import HeadstartError

Scaling = tuple[np.ndarray, np.ndarray]
ABSENT_CLASS_BIAS = -1e4  # a class without training items is never predicted


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits`` (n, k), computed stably (the row maximum is subtracted first)."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@dataclass
class LinearHead:
    """Logits = features @ weight.T + bias.

    Attributes:
        weight: (k, d) float32.
        bias: (k,) float32.
    """

    weight: np.ndarray
    bias: np.ndarray

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Logits (n, k) of features (n, d)."""
        return features @ self.weight.T + self.bias

    def proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, k) of features (n, d)."""
        return softmax(self.logits(features))

    def to_bytes(self) -> bytes:
        """The head as safetensors bytes (tensors ``weight`` and ``bias``)."""
        return save_tensors({"weight": np.ascontiguousarray(self.weight), "bias": np.ascontiguousarray(self.bias)})

    @classmethod
    def from_bytes(cls, data: bytes) -> "LinearHead":
        """The head that :meth:`to_bytes` wrote."""
        tensors = load_tensors(data)
        return cls(tensors["weight"], tensors["bias"])


def require_classes(labels: np.ndarray, *, what: str, where: str, fix: str, at_least: int = 2,
                    error: type[HeadstartError] = HeadstartError) -> None:
    """Raise ``error`` unless ``labels`` hold at least ``at_least`` distinct classes.

    Args:
        labels: class ids (n,).
        what: what needs them, for the message (e.g. "the probe").
        where: as in every headstart error: the field or source at fault.
        fix: as in every headstart error: what to do.
        at_least: how many distinct classes are needed.
        error: the :class:`HeadstartError` subclass to raise.

    Raises:
        HeadstartError: ``error``, when there are fewer classes than ``at_least``.
    """
    found = len(np.unique(labels))
    if found < at_least:
        count = {2: "two", 3: "three"}.get(at_least, str(at_least))
        raise error(f"{what} needs labels of at least {count} classes; there are {len(labels)} labels "
                             f"of {found} class(es)", where=where, fix=fix)


def feature_scaling(features: np.ndarray) -> Scaling:
    """(mean, scale) of each feature, to standardize features with before fitting a head.

    The scale has a floor: a near-constant feature would otherwise get a huge weight once the
    scaling is folded into the head.
    """
    mean, scale = features.mean(axis=0), features.std(axis=0)
    return mean, np.maximum(scale, 1e-2 * np.median(scale) + 1e-12)


def fit_head(features: np.ndarray, labels: np.ndarray, n_classes: int, *, c: float, class_weighted: bool = True,
             scaling: Scaling | None = None, seed: int = 0) -> LinearHead:
    """L2-regularized logistic regression on standardized features, folded into a :class:`LinearHead`.

    Args:
        features: (n, d) training features.
        labels: (n,) class ids in ``range(n_classes)``; at least two distinct classes.
        n_classes: the head's output size; classes absent from ``labels`` are never predicted.
        c: inverse regularization strength (scikit-learn's ``C``).
        class_weighted: weight classes by inverse frequency (scikit-learn's "balanced").
        scaling: (mean, scale) to standardize with; default: ``feature_scaling(features)``.
        seed: the solver's random state.

    Returns:
        The fitted head, float32.
    """
    from sklearn.linear_model import LogisticRegression  # seconds to import: only where a head is fitted

    mean, scale = scaling if scaling is not None else feature_scaling(features)
    # newton-cg: Hessian-vector products converge in few iterations on wide features, far faster than
    # lbfgs (benchmarks/README.md).
    model = LogisticRegression(C=c, solver="newton-cg", max_iter=1000, random_state=seed,
                               class_weight="balanced" if class_weighted else None)
    model.fit((features - mean) / scale, labels)
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # scikit-learn keeps one row for two classes: logits [0, z] give the same softmax
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, intercept[0]])
    weight = coef / scale  # w·(x - mu)/sigma + b = (w/sigma)·x + (b - w·mu/sigma)
    full_weight = np.zeros((n_classes, features.shape[1]))
    full_bias = np.full(n_classes, ABSENT_CLASS_BIAS)
    full_weight[model.classes_], full_bias[model.classes_] = weight, intercept - weight @ mean
    return LinearHead(full_weight.astype(np.float32), full_bias.astype(np.float32))


def out_of_fold_proba(features: np.ndarray, labels: np.ndarray, n_classes: int,
                      fit: Callable[[np.ndarray, np.ndarray], LinearHead], *, folds: int = 5,
                      seed: int = 0) -> np.ndarray:
    """Class probabilities (n, n_classes) of each item from a head fitted without it.

    Args:
        features: (n, d) features.
        labels: (n,) class ids in ``range(n_classes)``, of at least two classes.
        n_classes: the probabilities' width.
        fit: fits a head on (features, labels) of the other folds, e.g. ``partial(fit_head, c=...)``
            with ``n_classes`` bound.
        folds: at most this many stratified folds (fewer where the data are small).
        seed: seeds the folds.

    Returns:
        (n, n_classes) probabilities; a fold whose other folds hold one class only gets that
        fold's class frequencies.
    """
    proba = np.zeros((len(labels), n_classes), dtype=np.float64)
    for train, held in stratified_folds(labels, folds, seed):
        if len(np.unique(labels[train])) < 2:
            proba[held] = np.bincount(labels[train], minlength=n_classes) / len(train)
            continue
        proba[held] = fit(features[train], labels[train]).proba(features[held])
    return proba


def stratified_folds(labels: np.ndarray, folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit positions, held-out positions) of at most ``folds`` stratified folds (fewer where the data are small).

    The folds of :func:`out_of_fold_proba`, so that what is judged on them (the labeling loop's use of
    its pool) is judged on the same held-out items as the loop's out-of-fold accuracy.
    """
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels)
    n_splits = int(max(2, min(folds, counts[counts > 0].max(), len(labels) // 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class rarer than the folds: its items still get held out
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(labels)), labels))

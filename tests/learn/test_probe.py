"""The linear probe: accuracy on separable features, agreement with scikit-learn, C selection."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.linear_model
from sklearn.linear_model import LogisticRegression

from headstart.learn.head import LinearHead
from headstart.learn.probe import C_GRID, SMALL_DATA, fit_probe, refit_on_all


def blobs(n_per_class: int, n_classes: int = 3, dim: int = 8, seed: int = 0, spread: float = 1.0):
    """Gaussian blobs around well separated centres: features (n, dim), labels (n,)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(100).normal(0, 4, size=(n_classes, dim))
    labels = np.repeat(np.arange(n_classes), n_per_class)
    features = centres[labels] + rng.normal(0, spread, size=(len(labels), dim))
    order = rng.permutation(len(labels))
    return features[order].astype(np.float32), labels[order]


def softmax(logits):
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def test_separable_features_are_learned():
    train_x, train_y = blobs(20, seed=0)
    val_x, val_y = blobs(6, seed=1)
    test_x, test_y = blobs(50, seed=2)
    head, info = fit_probe(train_x, train_y, val_x, val_y, 3)
    assert isinstance(head, LinearHead)
    assert head.weight.shape == (3, 8) and head.bias.shape == (3,)
    assert head.weight.dtype == np.float32
    assert (head.logits(test_x).argmax(1) == test_y).mean() >= 0.95
    assert info["C"] in C_GRID and info["val_accuracy"] >= 0.9
    assert [row["C"] for row in info["grid"]] == list(C_GRID)
    # The chosen C has the best accuracy, and the lowest loss among the ties.
    best = max(row["val_accuracy"] for row in info["grid"])
    ties = [row for row in info["grid"] if row["val_accuracy"] >= best - 1e-9]
    assert info["C"] == min(ties, key=lambda row: row["val_loss"])["C"]
    # The reported validation figure is the head's own, on validation items it was not fitted on.
    assert info["val_accuracy"] == float((head.logits(val_x).argmax(1) == val_y).mean())


def test_binary_head_has_two_rows_whose_softmax_is_the_logistic_regression(monkeypatch):
    fitted: list[LogisticRegression] = []

    class Recording(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            fitted.append(self)
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(sklearn.linear_model, "LogisticRegression", Recording)  # head.py imports it when fitting
    train_x, train_y = blobs(25, n_classes=2, dim=5, seed=3, spread=3.0)  # overlapping: C matters
    val_x, val_y = blobs(8, n_classes=2, dim=5, seed=4, spread=3.0)
    _, info = fit_probe(train_x, train_y, val_x, val_y, 2, seed=0)
    head = refit_on_all(train_x, train_y, val_x, val_y, 2, info["C"], seed=0)
    assert head.weight.shape == (2, 5) and head.bias.shape == (2,)

    # The last fit is the refit on train+validation with the chosen C: the head is that model, with
    # the standardization folded in and scikit-learn's single binary row made into two.
    final = fitted[-1]
    assert final.C == info["C"] and final.coef_.shape == (1, 5) and final.class_weight == "balanced"
    all_x = np.vstack([train_x, val_x])
    mean, std = all_x.mean(0), all_x.std(0)
    test_x, _ = blobs(40, n_classes=2, dim=5, seed=5, spread=3.0)
    expected = final.predict_proba((test_x - mean) / std)
    np.testing.assert_allclose(softmax(head.logits(test_x)), expected, atol=1e-5)
    assert 0.05 < expected[:, 1].mean() < 0.95  # not a comparison of saturated probabilities
    # And it is the logistic regression of scikit-learn, to the solver's tolerance.
    reference = LogisticRegression(C=info["C"], max_iter=2000, class_weight="balanced", random_state=0)
    reference.fit((all_x - mean) / std, np.concatenate([train_y, val_y]))
    np.testing.assert_allclose(softmax(head.logits(test_x)), reference.predict_proba((test_x - mean) / std),
                               atol=5e-3)  # newton-cg's default tolerance against lbfgs


def test_near_constant_feature_does_not_blow_up_the_weights():
    # Regression: with plain standardization, a feature that varies by 1e-5 was scaled by 1e5 and,
    # once the scaling was folded into the head, got a weight of ~1e5.
    train_x, train_y = blobs(20, seed=6)
    val_x, val_y = blobs(6, seed=7)
    rng = np.random.default_rng(8)
    train_x[:, 0] = 1.0 + 1e-5 * (train_y - 1) + 1e-6 * rng.normal(size=len(train_y))
    val_x[:, 0] = 1.0 + 1e-5 * (val_y - 1) + 1e-6 * rng.normal(size=len(val_y))
    head, _ = fit_probe(train_x, train_y, val_x, val_y, 3)
    assert np.isfinite(head.weight).all() and np.isfinite(head.bias).all()
    assert np.abs(head.weight).max() < 1e3
    assert np.abs(head.bias).max() < 1e3
    # A test item whose constant feature moves by a little (float noise, another machine) is unharmed.
    test_x, test_y = blobs(40, seed=9)
    test_x[:, 0] = 1.0 + rng.normal(0, 1e-3, size=len(test_y))
    assert (head.logits(test_x).argmax(1) == test_y).mean() >= 0.95


def test_small_data_selects_c_by_cross_validation():
    train_x, train_y = blobs(20, seed=10)
    val_x, val_y = blobs(4, seed=11)
    _, info = fit_probe(train_x, train_y, val_x, val_y, 3)
    assert info["selection"] == "5-fold cross-validation on the training split"
    # The smallest class sets the number of folds.
    keep = np.concatenate([np.flatnonzero(train_y != 2), np.flatnonzero(train_y == 2)[:2]])
    _, info = fit_probe(train_x[keep], train_y[keep], val_x[val_y != 2], val_y[val_y != 2], 3)
    assert info["selection"] == "2-fold cross-validation on the training split"
    # A class with one item cannot be cross-validated: the validation split decides.
    keep = np.concatenate([np.flatnonzero(train_y != 2), np.flatnonzero(train_y == 2)[:1]])
    _, info = fit_probe(train_x[keep], train_y[keep], val_x[val_y != 2], val_y[val_y != 2], 3)
    assert info["selection"] == "validation split"


def test_large_data_selects_c_on_the_validation_split():
    train_x, train_y = blobs(300, dim=4, seed=12, spread=3.0)
    val_x, val_y = blobs(100, dim=4, seed=13, spread=3.0)
    assert len(train_y) + len(val_y) >= SMALL_DATA
    head, info = fit_probe(train_x, train_y, val_x, val_y, 3)
    assert info["selection"] == "validation split"
    # Fit on train only, so the reported figure is this head's accuracy on the validation split.
    accuracy = float((head.logits(val_x).argmax(1) == val_y).mean())
    assert accuracy == pytest.approx(info["val_accuracy"], abs=1e-9)
    assert 0.5 < accuracy < 1.0


def test_class_absent_from_training_is_never_predicted():
    train_x, train_y = blobs(20, seed=14)
    val_x, val_y = blobs(5, seed=15)
    train_x, train_y = train_x[train_y != 1], train_y[train_y != 1]
    val_x, val_y = val_x[val_y != 1], val_y[val_y != 1]
    head, _ = fit_probe(train_x, train_y, val_x, val_y, 3)
    assert head.weight.shape == (3, 8)
    probe_x = np.random.default_rng(16).normal(0, 6, size=(500, 8)).astype(np.float32)
    probe_x = np.vstack([probe_x, blobs(30, seed=17)[0]])  # including the absent class's own region
    proba = softmax(head.logits(probe_x))
    assert (proba.argmax(1) != 1).all()
    assert proba[:, 1].max() < 1e-6
    # The two present classes are still told apart.
    test_x, test_y = blobs(30, seed=18)
    present = test_y != 1
    assert (head.logits(test_x[present]).argmax(1) == test_y[present]).mean() >= 0.95

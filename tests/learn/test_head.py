"""The one linear head: fitting with or without class weights and a given scaling, probabilities,
out-of-fold probabilities and serialization."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from headstart.errors import HeadstartError, LabelingError
from headstart.learn.head import (ABSENT_CLASS_BIAS, LinearHead, feature_scaling, fit_head, out_of_fold_proba,
                                  require_classes, softmax)


def _blobs(n_per_class=20, n_classes=3, dim=6, seed=0, spread=2.0, counts=None):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(7).normal(0, 3, size=(n_classes, dim))
    labels = np.concatenate([np.full(c, k) for k, c in enumerate(counts or [n_per_class] * n_classes)])
    return (centres[labels] + rng.normal(0, spread, size=(len(labels), dim))).astype(np.float32), labels


def test_softmax_rows_sum_to_one_and_survive_large_logits():
    logits = np.array([[1000.0, 1000.0, -1000.0], [0.0, np.log(3.0), -np.inf]])
    proba = softmax(logits)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(proba[1], [0.25, 0.75, 0.0])


@pytest.mark.parametrize("class_weighted", [True, False])
def test_fit_head_is_scikit_learns_logistic_regression_with_the_scaling_folded_in(class_weighted):
    x, y = _blobs(counts=[30, 10, 20])
    scaling = feature_scaling(x * 1.5 + 2.0)  # a pool's statistics, not the labeled items' own
    head = fit_head(x, y, 3, c=0.3, class_weighted=class_weighted, scaling=scaling, seed=0)
    mean, scale = scaling
    reference = LogisticRegression(C=0.3, solver="newton-cg", max_iter=1000,
                                   class_weight="balanced" if class_weighted else None).fit((x - mean) / scale, y)
    test_x, _ = _blobs(seed=1)
    np.testing.assert_allclose(head.proba(test_x), reference.predict_proba((test_x - mean) / scale), atol=1e-4)
    assert head.weight.dtype == np.float32 and head.weight.shape == (3, 6)


def test_class_weights_move_the_boundary_towards_the_rare_class():
    x, y = _blobs(n_classes=2, counts=[90, 10], spread=3.5)
    weighted = fit_head(x, y, 2, c=1.0, class_weighted=True).proba(x)[:, 1].mean()
    plain = fit_head(x, y, 2, c=1.0, class_weighted=False).proba(x)[:, 1].mean()
    assert weighted > plain


def test_a_class_without_items_is_never_predicted():
    x, y = _blobs()
    head = fit_head(x[y != 1], y[y != 1], 3, c=1.0)
    assert head.bias[1] == ABSENT_CLASS_BIAS and not head.weight[1].any()
    assert not (head.proba(_blobs(seed=3)[0]).argmax(axis=1) == 1).any()


def test_serialization_round_trips_exactly():
    head = fit_head(*_blobs(), 3, c=1.0)
    again = LinearHead.from_bytes(head.to_bytes())
    np.testing.assert_array_equal(again.weight, head.weight)
    np.testing.assert_array_equal(again.bias, head.bias)


def test_out_of_fold_probabilities_come_from_heads_that_never_saw_the_item():
    x, y = _blobs(n_per_class=10)
    fitted_on: list[set] = []
    rows = {tuple(row): i for i, row in enumerate(x)}

    def recording_fit(features, labels):
        fitted_on.append({rows[tuple(row)] for row in features})
        return fit_head(features, labels, 3, c=1.0)

    proba = out_of_fold_proba(x, y, 3, recording_fit, folds=5)
    assert proba.shape == (30, 3) and len(fitted_on) == 5
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    for i in range(len(y)):  # each item is left out of exactly one fit
        assert sum(i not in seen for seen in fitted_on) == 1
    # Predicting with a head fit on everything would be more confident than the held-out heads.
    full = fit_head(x, y, 3, c=1.0).proba(x)
    assert full[np.arange(30), y].mean() > proba[np.arange(30), y].mean()


def test_out_of_fold_with_few_items_takes_fewer_folds():
    x, y = _blobs(counts=[3, 2, 2])
    proba = out_of_fold_proba(x, y, 3, partial(fit_head, n_classes=3, c=1.0), folds=5)
    assert proba.shape == (7, 3) and np.isfinite(proba).all()


def test_require_classes_names_what_needs_them():
    require_classes(np.array([0, 1]), what="the probe", where="labels", fix="label more")
    with pytest.raises(LabelingError, match=r"labels: the probe needs labels of at least two classes.*\(label more\)"):
        require_classes(np.array([1, 1, 1]), what="the probe", where="labels", fix="label more", error=LabelingError)
    with pytest.raises(HeadstartError, match="three classes"):
        require_classes(np.array([0, 1]), what="x", where="y", fix="z", at_least=3)

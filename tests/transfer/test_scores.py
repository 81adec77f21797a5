"""Transferability scores against hand-computed values, closed forms and the ordering they exist for."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from headstart.transfer.scores import (hscore, leep, logme, logme_evidence, nce, nce_from_features,
                                       probe_accuracy)


def exact_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log N(y; 0, I/beta + F F^T/alpha): the marginal likelihood LogME maximizes, written directly."""
    cov = np.eye(len(y)) / beta + f @ f.T / alpha
    return float(multivariate_normal(mean=np.zeros(len(y)), cov=cov).logpdf(y))


def blobs(n_per_class=40, k=3, d=8, separation=3.0, seed=0):
    """Gaussian classes whose means differ: features that carry the label."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, separation, size=(k, d))
    labels = np.repeat(np.arange(k), n_per_class)
    return centers[labels] + rng.normal(size=(len(labels), d)), labels


# -- LogME ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, d", [(30, 5), (12, 20)])  # more items than features, and fewer
def test_logme_evidence_is_the_gaussian_marginal_likelihood(n, d):
    rng = np.random.default_rng(1)
    f = rng.normal(size=(n, d))
    y = f @ rng.normal(size=d) * 0.5 + rng.normal(0, 0.3, size=n)
    per_item, alpha, beta = logme_evidence(f, y)
    assert per_item * n == pytest.approx(exact_evidence(f, y, alpha, beta), rel=1e-8)


def test_logme_evidence_is_maximized_over_alpha_and_beta():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(40, 6))
    y = f @ rng.normal(size=6) + rng.normal(0, 0.5, size=40)
    _, alpha, beta = logme_evidence(f, y)
    best = exact_evidence(f, y, alpha, beta)
    for a, b in [(alpha * 1.2, beta), (alpha / 1.2, beta), (alpha, beta * 1.2), (alpha, beta / 1.2)]:
        assert exact_evidence(f, y, a, b) < best


def test_logme_recovers_the_noise_precision():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(2000, 4))
    y = f @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(0, 0.5, size=2000)  # noise variance 0.25
    _, _, beta = logme_evidence(f, y)
    assert beta == pytest.approx(4.0, rel=0.1)


def test_logme_ranks_informative_features_above_noise():
    features, labels = blobs()
    noise = np.random.default_rng(5).normal(size=features.shape)
    assert logme(features, labels) > logme(noise, labels) + 0.1


# -- H-score --------------------------------------------------------------------------------------

def test_hscore_hand_computed():
    # Centered features [-1.5, .5, -.5, 1.5]: variance 1.25; class means -0.5 and 0.5: between 0.25.
    assert hscore(np.array([[0.0], [2.0], [1.0], [3.0]]), np.array([0, 0, 1, 1]), shrinkage=False) \
        == pytest.approx(0.25 / 1.25)
    # Items equal to their class mean: between = total, the score is 1 per informative dimension.
    assert hscore(np.array([[0.0], [0.0], [2.0], [2.0]]), np.array([0, 0, 1, 1]), shrinkage=False) \
        == pytest.approx(1.0)


def test_hscore_ranks_informative_features_above_noise_with_and_without_shrinkage():
    features, labels = blobs(n_per_class=30, d=40)
    noise = np.random.default_rng(6).normal(size=features.shape)
    for shrinkage in (True, False):
        assert hscore(features, labels, shrinkage=shrinkage) > hscore(noise, labels, shrinkage=shrinkage) + 0.5


# -- NCE and LEEP ---------------------------------------------------------------------------------

def test_nce_hand_computed():
    # Z=0 holds one item of each class (entropy ln 2), Z=1 only class 1: H(Y|Z) = 0.5 ln 2.
    assert nce(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == pytest.approx(-0.5 * np.log(2))
    assert nce(np.array([3, 3, 1, 1]), np.array([0, 0, 1, 1])) == pytest.approx(0.0)  # Z determines Y
    # Z independent of Y: -H(Y) = -ln 2 for balanced binary labels.
    assert nce(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])) == pytest.approx(-np.log(2))


def test_leep_hand_computed_and_equal_to_nce_for_one_hot_sources():
    # P(y|z0) = (2/3, 1/3), P(y|z1) = (0, 1): both items get 2/3.
    theta = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert leep(theta, np.array([0, 1])) == pytest.approx(np.log(2 / 3))
    rng = np.random.default_rng(7)
    z, y = rng.integers(0, 4, size=50), rng.integers(0, 3, size=50)
    assert leep(np.eye(4)[z], y) == pytest.approx(nce(z, y))


def test_leep_and_nce_rank_informative_sources_above_uninformative_ones():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, size=300)
    logits_good = np.eye(5)[y] * 3 + rng.normal(size=(300, 5))
    logits_bad = rng.normal(size=(300, 5))
    proba = lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)  # noqa: E731
    assert leep(proba(logits_good), y) > leep(proba(logits_bad), y) + 0.2
    features, labels = blobs(seed=9)
    noise = rng.normal(size=features.shape)
    assert nce_from_features(features, labels) > nce_from_features(noise, labels) + 0.3


def test_leep_refuses_rows_that_are_not_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        leep(np.array([[2.0, -1.0], [0.5, 0.5]]), np.array([0, 1]))


# -- probe ----------------------------------------------------------------------------------------

def test_probe_accuracy_is_high_on_separable_features_and_near_chance_on_noise():
    features, labels = blobs()
    assert probe_accuracy(features, labels) > 0.95
    noise = np.random.default_rng(10).normal(size=features.shape)
    assert probe_accuracy(noise, labels) < 0.6  # chance is 1/3


@pytest.mark.parametrize("score", [logme, hscore, nce_from_features, probe_accuracy])
def test_scores_refuse_bad_shapes(score):
    with pytest.raises(ValueError, match="labels"):
        score(np.zeros((5, 3)), np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="NaN"):
        score(np.full((4, 2), np.nan), np.array([0, 1, 0, 1]))


@pytest.mark.parametrize("n, d", [(60, 10), (30, 80)])
def test_hscore_equals_the_direct_matrix_formula(n, d):
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(11)
    labels = rng.integers(0, 3, size=n)
    features = rng.normal(size=(n, d)) + labels[:, None] * rng.normal(size=d)
    f = features - features.mean(axis=0)
    means = np.stack([f[labels == c].mean(axis=0) for c in labels])
    between = means.T @ means / n
    plain = np.trace(np.linalg.pinv(f.T @ f / n, rcond=1e-10, hermitian=True) @ between)
    shrunk = np.trace(np.linalg.inv(LedoitWolf(assume_centered=True).fit(f).covariance_) @ between)
    assert hscore(features, labels, shrinkage=False) == pytest.approx(plain, rel=1e-6)
    assert hscore(features, labels) == pytest.approx(shrunk, rel=1e-6)


def test_row_space_projection_keeps_a_regularized_probes_predictions():
    from sklearn.linear_model import LogisticRegression

    from headstart.transfer.scores import row_space

    rng = np.random.default_rng(12)
    train, test = rng.normal(size=(20, 200)), rng.normal(size=(7, 200))
    y = rng.integers(0, 3, size=20)
    a, b = row_space(train, test)
    assert a.shape == (20, 20) and b.shape == (7, 20)
    full = LogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(train, y).decision_function(test)
    small = LogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(a, y).decision_function(b)
    np.testing.assert_allclose(small, full, atol=1e-4)

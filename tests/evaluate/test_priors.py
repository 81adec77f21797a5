"""EM re-estimation of class priors (Saerens et al. 2002) on probabilities whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from headstart.evaluate.priors import em_priors


def calibrated_posteriors(labels: np.ndarray, source_priors: np.ndarray, seed: int = 0,
                          separation: float = 1.5) -> np.ndarray:
    """Exact posteriors p_s(y|x) for 1-D Gaussian classes (means 0, sep, 2*sep, ..., unit variance),
    under ``source_priors``: a perfectly calibrated classifier trained on the source."""
    rng = np.random.default_rng(seed)
    k = len(source_priors)
    means = separation * np.arange(k)
    x = means[labels] + rng.normal(size=len(labels))
    log_lik = -0.5 * (x[:, None] - means[None, :]) ** 2
    joint = np.exp(log_lik - log_lik.max(axis=1, keepdims=True)) * source_priors
    return joint / joint.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("true_priors", [[0.8, 0.2], [0.1, 0.3, 0.6]])
def test_em_recovers_the_target_priors_of_calibrated_probabilities(true_priors):
    true_priors = np.array(true_priors)
    k = len(true_priors)
    source = np.full(k, 1 / k)
    rng = np.random.default_rng(1)
    labels = rng.choice(k, size=20_000, p=true_priors)
    proba = calibrated_posteriors(labels, source)

    naive = proba.mean(axis=0)  # the average prediction: pulled towards the source's priors
    priors, adjusted = em_priors(proba, source)

    assert priors.sum() == pytest.approx(1.0)
    assert np.abs(priors - true_priors).max() < 0.02
    assert np.abs(priors - true_priors).max() < np.abs(naive - true_priors).max() / 2
    assert adjusted.shape == proba.shape
    assert np.allclose(adjusted.sum(axis=1), 1.0)
    # the adjusted posteriors predict the labels better (log-loss) than the source's
    rows = np.arange(len(labels))
    assert -np.log(adjusted[rows, labels]).mean() < -np.log(proba[rows, labels]).mean()


def test_em_leaves_data_with_the_source_priors_alone():
    source = np.array([0.5, 0.5])
    labels = np.tile([0, 1], 5_000)
    proba = calibrated_posteriors(labels, source, seed=3)
    priors, adjusted = em_priors(proba, source)
    assert np.abs(priors - 0.5).max() < 0.02
    assert np.abs(adjusted - proba).max() < 0.05


def test_em_with_unequal_source_priors_finds_balanced_target():
    source = np.array([0.7, 0.3])
    labels = np.tile([0, 1], 10_000)  # balanced target
    proba = calibrated_posteriors(labels, source, seed=4)
    priors, _ = em_priors(proba, source)
    assert np.abs(priors - 0.5).max() < 0.02


def test_em_rejects_inputs_that_do_not_fit():
    with pytest.raises(ValueError, match="no rows"):
        em_priors(np.zeros((0, 2)), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="one value a class"):
        em_priors(np.full((3, 2), 0.5), np.array([1.0]))
    with pytest.raises(ValueError, match="non-negative"):
        em_priors(np.array([[1.5, -0.5]]), np.array([0.5, 0.5]))


def test_prior_summary_names_the_class_that_moves_most():
    from headstart.evaluate.priors import prior_summary

    labels = np.random.default_rng(5).choice(2, size=10_000, p=[0.25, 0.75])
    proba = calibrated_posteriors(labels, np.array([0.5, 0.5]), seed=5)
    result = prior_summary(["cat", "dog"], np.array([0, 1] * 50), proba, target_labels=labels)
    assert result["priors"]["cat"]["source"] == pytest.approx(0.5)
    assert result["priors"]["dog"]["target"] == pytest.approx(0.75, abs=0.02)
    assert result["priors"]["dog"]["labeled"] == pytest.approx(labels.mean())
    assert result["prior_shift"]["class"] in ("cat", "dog")
    assert result["prior_shift"]["size"] == pytest.approx(0.25, abs=0.02)

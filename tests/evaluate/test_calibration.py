"""Temperature scaling and the reliability diagram's bins, on synthetic probabilities."""

import numpy as np

from headstart.evaluate.calibration import (fit_temperature, negative_log_likelihood, reliability_bins, scaled,
                                            temperature_choice)
from headstart.evaluate.metrics import expected_calibration_error
from headstart.learn.head import softmax


def _overconfident(n=400, k=4, sharpen=6.0, seed=0):
    """Labels drawn from calibrated probabilities, then the logits multiplied by ``sharpen``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k))
    calibrated = softmax(logits)
    y = np.array([rng.choice(k, p=p) for p in calibrated])
    return y, softmax(sharpen * logits), calibrated


def test_the_fitted_temperature_undoes_a_sharpening_and_lowers_nll_and_ece():
    y, proba, _ = _overconfident()
    temperature = fit_temperature(y, proba)
    assert 4.0 < temperature < 9.0  # the logits were sharpened 6 times
    after = scaled(proba, temperature)
    assert negative_log_likelihood(y, after) < negative_log_likelihood(y, proba) - 0.5
    assert expected_calibration_error(y, after) < expected_calibration_error(y, proba) / 2
    np.testing.assert_array_equal(after.argmax(1), proba.argmax(1))  # no prediction changes


def test_a_calibrated_model_keeps_its_probabilities():
    y, _, calibrated = _overconfident(n=300, seed=1)
    choice = temperature_choice(y, calibrated)
    assert 0.7 < choice["fitted_temperature"] < 1.4
    if not choice["applied"]:
        assert choice["temperature"] == 1.0


def test_too_few_validation_items_fit_no_temperature():
    y, proba, _ = _overconfident(n=10)
    choice = temperature_choice(y, proba)
    assert choice == {"applied": False, "temperature": 1.0, "reason": "fewer than 20 validation items"}
    assert temperature_choice(np.array([], dtype=int), None)["applied"] is False


def test_reliability_bins_match_the_ece():
    y, proba, _ = _overconfident(n=200, seed=2)
    confidence, accuracy, counts = reliability_bins(y, proba)
    filled = counts > 0
    ece = float((counts[filled] / counts.sum() * np.abs(accuracy[filled] - confidence[filled])).sum())
    assert abs(ece - expected_calibration_error(y, proba)) < 1e-12
    assert np.isnan(confidence[~filled]).all()


def test_a_perfect_validation_split_fits_no_temperature():
    """Every item right: sharper is always likelier, so a fitted T would run to its bound (0.07 on a real fit)."""
    y = np.repeat(np.arange(3), 10)
    proba = np.full((30, 3), 0.2)
    proba[np.arange(30), y] = 0.6
    choice = temperature_choice(y, proba)
    assert choice["applied"] is False and choice["temperature"] == 1.0 and "no validation item" in choice["reason"]

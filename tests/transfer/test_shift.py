"""The domain classifier behind ``headstart shift``: its probabilities, AUC and the decision rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from headstart.transfer.shift import domain_probabilities


def test_domain_probabilities_tell_shifted_sides_apart_and_keep_the_order():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(150, 10))
    target = rng.normal(size=(100, 10)) + np.r_[1.5, np.zeros(9)]  # moved along one axis
    p = domain_probabilities(source, target, seed=1)
    assert p.shape == (250,)
    assert np.all((p >= 0) & (p <= 1))
    is_target = np.r_[np.zeros(150), np.ones(100)]
    assert roc_auc_score(is_target, p) > 0.8
    assert p[150:].mean() > p[:150].mean()
    # the same seed gives the same probabilities
    assert np.array_equal(p, domain_probabilities(source, target, seed=1))


def test_domain_probabilities_of_one_distribution_are_near_chance():
    rng = np.random.default_rng(2)
    both = rng.normal(size=(400, 10))
    p = domain_probabilities(both[:200], both[200:])
    is_target = np.r_[np.zeros(200), np.ones(200)]
    assert abs(roc_auc_score(is_target, p) - 0.5) < 0.1


def test_domain_probabilities_reject_what_cannot_be_compared():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="same width"):
        domain_probabilities(rng.normal(size=(10, 4)), rng.normal(size=(10, 5)))
    with pytest.raises(ValueError, match="at least 2 items"):
        domain_probabilities(rng.normal(size=(10, 4)), rng.normal(size=(1, 4)))

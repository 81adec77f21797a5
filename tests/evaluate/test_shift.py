"""The domain classifier behind ``headstart shift``: its probabilities, AUC and the decision rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from headstart.evaluate.shift import domain_probabilities


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


# -- the shift test and its decision rule ------------------------------------------------------------

def test_two_random_halves_of_one_data_set_are_not_flagged_in_19_of_20_seeds():
    """The rule must not cry wolf: halves of one sample are exchangeable."""
    from headstart.evaluate.shift import shift_test

    rng = np.random.default_rng(10)
    centers = rng.normal(0, 2, size=(4, 32))  # a data set with structure: four clusters
    data = centers[rng.integers(0, 4, size=600)] + rng.normal(size=(600, 32))
    flagged = []
    for seed in range(20):
        order = np.random.default_rng(seed).permutation(len(data))
        result = shift_test(data[order[:300]], data[order[300:]], seed=seed, max_items=150, progress=False)
        assert 0 < result.p_value <= 1
        flagged.append(result.shifted)
    assert sum(flagged) <= 1, f"flagged {sum(flagged)} of 20 random splits"


def test_a_real_shift_is_flagged_with_a_high_auc_and_typical_items_from_each_side():
    from headstart.evaluate.shift import shift_test

    rng = np.random.default_rng(11)
    source = rng.normal(size=(200, 16))
    target = rng.normal(size=(120, 16)) * 1.5 + 1.0  # moved and spread
    result = shift_test(source, target, seed=0, progress=False)
    assert result.shifted
    assert result.auc >= 0.75 and result.p_value <= 0.01
    assert len(result.source_rows) == len(result.target_rows) == 120  # balanced
    assert result.map.shape == (240, 2)
    source_typical, target_typical = result.typical(3)
    # the most target-like target items lie far out along the shift; the most source-like source items do not
    assert target[target_typical].sum(axis=1).mean() > source[source_typical].sum(axis=1).mean()
    assert result.to_dict()["items_per_side"] == 120


def test_a_small_but_detectable_difference_is_not_called_a_shift():
    """Thousands of items make a tiny difference significant; the AUC floor keeps it from being a 'shift'."""
    from headstart.evaluate.shift import AUC_FLOOR, shift_test

    rng = np.random.default_rng(12)
    source = rng.normal(size=(2000, 8))
    target = rng.normal(size=(2000, 8)) + np.r_[0.25, np.zeros(7)]
    result = shift_test(source, target, max_items=2000, permutations=19, progress=False)
    assert result.auc < AUC_FLOOR
    assert not result.shifted


def test_a_side_too_small_to_test_says_how_many_items_are_needed():
    from headstart.evaluate.shift import MIN_ITEMS, shift_test

    rng = np.random.default_rng(13)
    with pytest.raises(ValueError, match=f"the target has 5 item.*at least {MIN_ITEMS}"):
        shift_test(rng.normal(size=(50, 4)), rng.normal(size=(5, 4)), progress=False)

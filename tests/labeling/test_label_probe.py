"""The labeling loop's probe: a fixed prior over pool-scaled features, and what it does for active learning."""

from __future__ import annotations

import numpy as np
import pytest

from headstart.errors import LabelingError
from headstart.labeling.loop_probe import fit_loop_probe
from headstart.labeling.strategies import select
from headstart.learn.head import feature_scaling


def two_classes(n: int, dim: int = 10, seed: int = 0):
    """Two classes split by a line through a 2-d cloud, embedded in ``dim`` features with a little
    noise and very different scales (the probe must standardize); (features, labels)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(0, 1, (n, 2))
    y = (latent @ np.array([1.0, 0.6]) > 0.3).astype(np.int64)
    x = np.hstack([latent, rng.normal(0, 0.1, (n, dim - 2))])
    x *= np.random.default_rng(99).uniform(0.2, 5.0, dim)
    return x.astype(np.float32), y


def run_loop(strategy: str, x, y, x_test, y_test, seed: int, rounds: int = 6, batch: int = 10) -> list[float]:
    """Test accuracy after each round of a simulated annotator that answers from the ground truth."""
    rng = np.random.default_rng(seed)
    labeled = np.zeros(len(y), dtype=bool)
    labeled[rng.choice(len(y), 10, replace=False)] = True
    while len(np.unique(y[labeled])) < 2:
        labeled[rng.integers(len(y))] = True
    scaling, accuracy = feature_scaling(x), []
    for round_ in range(rounds + 1):
        head = fit_loop_probe(x[labeled], y[labeled], 2, scaling, seed=seed)
        accuracy.append(float((head.proba(x_test).argmax(1) == y_test).mean()))
        if round_ < rounds:
            picked = select(strategy, batch, proba=head.proba(x), features=x, labeled=labeled,
                            labels=np.where(labeled, y, -1), seed=seed * 100 + round_)
            labeled[picked] = True
    return accuracy


def test_margin_and_the_default_beat_random_with_the_loop_probe():
    x, y = two_classes(3000, seed=1)
    x_test, y_test = two_classes(2000, seed=2)
    curves = {s: np.mean([run_loop(s, x, y, x_test, y_test, seed) for seed in range(4)], axis=0)
              for s in ("random", "margin", "default")}
    # Over the last rounds (40 to 70 labels) uncertainty sampling is ahead of random sampling.
    for strategy in ("margin", "default"):
        assert curves[strategy][3:].mean() > curves["random"][3:].mean() + 0.01, curves


def test_the_loop_probe_is_standardized_by_the_pool_not_by_the_labels():
    x, y = two_classes(500, seed=3)
    scaling = feature_scaling(x)
    labeled = np.r_[np.flatnonzero(y == 0)[:5], np.flatnonzero(y == 1)[:5]]
    head = fit_loop_probe(x[labeled], y[labeled], 2, scaling)
    # The same labels with every feature rescaled give the same decisions: the head folds the
    # pool's scaling in, so that it reads raw features.
    factor = np.linspace(0.5, 3.0, x.shape[1]).astype(np.float32)
    rescaled = fit_loop_probe(x[labeled] * factor, y[labeled], 2, feature_scaling(x * factor))
    np.testing.assert_allclose(head.proba(x), rescaled.proba(x * factor), atol=1e-4)
    # A probe of ten labels is far from certain everywhere: the prior keeps it from overfitting them.
    assert head.proba(x).max(axis=1).mean() < 0.95


def test_a_class_without_labels_is_never_predicted_and_one_class_is_an_error():
    x, y = two_classes(200, seed=6)
    head = fit_loop_probe(x, y, 3, feature_scaling(x))
    assert head.proba(x).argmax(1).max() <= 1
    with pytest.raises(LabelingError, match="at least (two|2) classes"):
        fit_loop_probe(x[y == 0], y[y == 0], 2, feature_scaling(x))

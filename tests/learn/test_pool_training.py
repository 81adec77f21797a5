"""Training a head with an unlabeled pool: self-training and label spreading beat the labels alone
where the pool carries the task's structure, and ``auto`` keeps the labels alone where it does not."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from headstart.learn.head import fit_head, stratified_folds
from headstart.learn.label_spreading import affinity, nearest_neighbours, spread_labels
from headstart.learn.pool_training import check_method, train_with_pool
from headstart.learn.pseudo_labels import class_thresholds, confident_items

SEEDS = (0, 1, 2)


def _gaussians(n, rng, centres, spread):
    y = rng.integers(0, len(centres), n)
    return (centres[y] + rng.normal(0, spread, (n, centres.shape[1]))).astype(np.float32), y


def _task(kind: str, seed: int, per_class: int = 4):
    """(labeled x, y, pool x, test x, y, n_classes): ``per_class`` labels a class, the rest of 400 items the pool.

    ``overlap``: four overlapping Gaussian classes in 32 dimensions (a few labels give a poor head).
    ``stretched``: three classes apart along one axis, spread three times wider along 31 others:
    a few labels tilt a linear boundary, while each class is one cluster the neighbour graph follows.
    """
    rng = np.random.default_rng(seed)
    if kind == "overlap":
        centres, spread = np.random.default_rng(100).normal(0, 0.4, (4, 32)), 1.0
    else:
        centres, spread = np.zeros((3, 32)), np.r_[1.0, np.full(31, 3.0)]
        centres[:, 0] = [0, 6, 12]
    x, y = _gaussians(400, rng, centres, spread)
    labeled = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(len(centres))])
    test_x, test_y = _gaussians(2000, rng, centres, spread)
    return x[labeled], y[labeled], np.delete(x, labeled, axis=0), test_x, test_y, len(centres)


def _run(kind: str, seed: int, method: str = "auto", noise: bool = False):
    """(labeled-only test accuracy, the pool result's test accuracy, the result)."""
    x, y, pool, test_x, test_y, k = _task(kind, seed)
    if noise:  # as many items, of the same scale, that carry nothing of the classes
        pool = (np.random.default_rng(seed + 10).normal(0, 1, pool.shape) * pool.std(axis=0)).astype(np.float32)
    fit = partial(fit_head, n_classes=k, c=1.0)
    base = float((fit(x, y).proba(test_x).argmax(1) == test_y).mean())
    result = train_with_pool(fit, x, y, pool, k, folds=stratified_folds(y, seed=seed), method=method)
    head = result.head or fit(x, y)
    return base, float((head.proba(test_x).argmax(1) == test_y).mean()), result


def test_self_training_beats_the_labels_alone_and_auto_takes_it():
    runs = [_run("overlap", seed) for seed in SEEDS]
    assert sum(result.method == "self-train" for _, _, result in runs) >= 2
    assert np.mean([after - before for before, after, _ in runs]) > 0.04
    record = runs[0][2].record
    assert record["method"] == "self-train" and 0 < record["pseudo_labeled"] <= 384
    assert len(record["class_thresholds"]) == 4 and record["rounds"]
    assert record["gain"] > record["standard_error"]


def test_label_spreading_follows_clusters_a_linear_head_on_few_labels_misses():
    runs = [_run("stretched", seed, method="propagation") for seed in SEEDS]
    assert all(result.method == "propagation" for _, _, result in runs)
    assert np.mean([after - before for before, after, _ in runs]) > 0.10
    auto = [_run("stretched", seed)[2].method for seed in SEEDS]
    assert auto.count("none") < len(SEEDS)  # auto takes the pool at least once


@pytest.mark.parametrize("kind", ["overlap", "stretched"])
def test_auto_keeps_the_labels_alone_when_the_pool_is_noise(kind):
    for seed in SEEDS:
        before, after, result = _run(kind, seed, noise=True)
        assert result.method == "none" and result.head is None and after == before
        assert "kept the labeled-only head" in result.record["sentence"]


def test_none_and_an_empty_pool_train_nothing():
    x, y, pool, _, _, k = _task("overlap", 0)
    fit = partial(fit_head, n_classes=k, c=1.0)
    assert train_with_pool(fit, x, y, pool, k, folds=stratified_folds(y), method="none").head is None
    assert train_with_pool(fit, x, y, pool[:0], k, folds=stratified_folds(y)).method == "none"
    with pytest.raises(ValueError, match="unknown pool method"):
        check_method("fixmatch")


def test_class_thresholds_are_each_class_s_lowest_confidence_taken():
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.7, 0.3]])
    positions, labels = confident_items(proba, 0.5)
    assert positions.tolist() == [0, 2, 4] or positions.tolist() == [0, 2]
    thresholds = class_thresholds(proba, positions, 3)
    assert thresholds[0] == pytest.approx(proba[positions][labels == 0].max(axis=1).min())
    assert thresholds[1] == pytest.approx(0.8) and thresholds[2] is None


def test_labels_spread_along_two_chains_to_their_far_ends():
    t = np.linspace(0, 1, 30)
    chain_a = np.c_[t * 10, np.zeros(30)]
    chain_b = np.c_[t * 10, np.full(30, 3.0)]  # parallel: each item's nearest neighbours are on its own chain
    x = np.vstack([chain_a, chain_b]).astype(np.float32) + 100  # far from the origin: cosine needs the centring
    positions, similarities = nearest_neighbours(x, k=3, centre=True)
    spread = spread_labels(affinity(positions, similarities), np.array([0, 30]), np.array([0, 1]), 2)
    assert (spread[:30].argmax(1) == 0).all() and (spread[30:].argmax(1) == 1).all()
    assert np.allclose(spread.sum(axis=1), 1)


def test_folds_whose_labels_hold_one_class_leave_the_pool_alone():
    x, y, pool, _, _, k = _task("overlap", 0)
    two = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:1]]  # class 1 has a single label
    fit = partial(fit_head, n_classes=k, c=1.0)
    folds = [(np.flatnonzero(y[two] == 0), np.flatnonzero(y[two] == 1))]  # its only label held out
    result = train_with_pool(fit, x[two], y[two], pool, k, folds=folds)
    assert result.method == "none" and "single class" in result.record["sentence"]

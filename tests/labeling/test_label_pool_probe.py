"""The labeling loop's retrain uses the unlabeled pool only where that beats the labels alone out of fold."""

from __future__ import annotations

import numpy as np

from headstart.labeling.loop_probe import pool_scaling
from headstart.labeling.pool_probe import SETTING, pool_trained_probe
from headstart.labeling.retrain import retrain_probe


def _overlapping_pool(seed: int, n: int = 600, k: int = 4, dim: int = 32):
    """Overlapping Gaussian classes: a few labels give a poor probe, and the pool shows the classes' shape."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(100).normal(0, 0.4, (k, dim))
    y = rng.integers(0, k, n)
    return (centres[y] + rng.normal(0, 1, (n, dim))).astype(np.float32), y


def _labeled(y: np.ndarray, per_class: int) -> np.ndarray:
    return np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])


def test_the_loop_keeps_the_labeled_only_probe_when_the_pool_is_noise():
    for seed in (0, 1, 2):
        features, y = _overlapping_pool(seed)
        positions = _labeled(y, 4)
        noisy = np.random.default_rng(seed + 10).normal(0, 1, features.shape).astype(np.float32) * features.std(0)
        noisy[positions] = features[positions]  # the labeled items are real; the rest carries nothing
        head, record, _ = pool_trained_probe(noisy, positions, y[positions], 4, pool_scaling(noisy), seed=seed)
        assert head is None and record["method"] == "none", record
        assert record["judged_on"] == "4-fold out of fold over 16 labels"  # the loop's own folds


def test_the_loop_takes_the_pool_when_it_beats_the_labels_alone_out_of_fold():
    taken = 0
    for seed in (0, 1, 2, 3):
        features, y = _overlapping_pool(seed)
        positions = _labeled(y, 4)
        head, record, held_out = pool_trained_probe(features, positions, y[positions], 4, pool_scaling(features), seed=seed)
        if head is not None:
            taken += 1
            assert not np.isnan(held_out).any() and held_out.shape == (16, 4)
            assert record["gain"] > record["standard_error"] and record["method"] in ("self-train", "propagation")
            assert record["accuracy"][record["best"]] > record["accuracy"]["none"]
    assert taken >= 1


def test_a_class_with_one_label_or_the_setting_none_leaves_the_pool_alone():
    features, y = _overlapping_pool(0)
    positions = _labeled(y, 4)[:-3]  # class 3 keeps a single label
    head, record, _ = pool_trained_probe(features, positions, y[positions], 4, pool_scaling(features))
    assert head is None and "single label" in record["sentence"]
    head, record, _ = pool_trained_probe(features, _labeled(y, 4), y[_labeled(y, 4)], 4, pool_scaling(features),
                                      method="none")
    assert head is None and "not asked for" in record["sentence"]


def test_retrain_records_the_pool_s_use_in_the_version_metrics(blob_project):
    project, truth = blob_project(n_per_class=40)
    for i in range(24):
        project.add(project.ids[i], project.classes[truth[i]], annotator="ana")
    version = retrain_probe(project)
    metrics = next(v for v in project.store.model_versions() if v.id == version).metrics
    assert metrics["unlabeled"]["method"] in ("none", "self-train", "propagation")
    assert metrics["unlabeled"]["pool_items"] == len(truth) - 24
    project.update_settings(**{SETTING: "none"})
    version = retrain_probe(project)
    metrics = next(v for v in project.store.model_versions() if v.id == version).metrics
    assert metrics["unlabeled"]["method"] == "none" and "not asked for" in metrics["unlabeled"]["sentence"]

"""Active-learning strategies on arrays: what each one picks, and that it picks valid items."""

from __future__ import annotations

import numpy as np
import pytest

from headstart.errors import LabelingError
from headstart.labeling.strategies import STRATEGIES, select
from labeling_helpers import blobs


def proba_from(features, labels, labeled):
    from headstart.labeling.loop_probe import fit_labeled_probe

    head, _ = fit_labeled_probe(features[labeled], labels[labeled], labels.max() + 1)
    return head.proba(features)


@pytest.mark.parametrize("strategy", STRATEGIES + ("default",))
def test_every_strategy_picks_n_distinct_unlabeled_candidates(strategy):
    features, truth = blobs(30, 4, seed=2)
    labeled = np.zeros(len(truth), dtype=bool)
    labeled[np.flatnonzero(truth == 0)[:3]] = labeled[np.flatnonzero(truth == 1)[:3]] = True
    labels = np.where(labeled, truth, -1)
    proba = proba_from(features, truth, np.flatnonzero(labeled))
    picked = select(strategy, 10, proba=proba, features=features, labeled=labeled, labels=labels, seed=1)
    assert len(picked) == 10 and len(set(picked.tolist())) == 10
    assert not labeled[picked].any()
    few = np.flatnonzero(~labeled)[:4]
    assert sorted(select(strategy, 10, proba=proba, features=features, labeled=labeled, labels=labels,
                         candidates=few).tolist()) == sorted(few.tolist())


def test_uncertainty_scores_pick_the_most_uncertain():
    proba = np.array([[0.98, 0.01, 0.01], [0.5, 0.49, 0.01], [0.34, 0.33, 0.33], [0.6, 0.2, 0.2], [0.65, 0.35, 0.0]])
    assert select("margin", 2, proba=proba).tolist() == [1, 2]          # smallest gap between the top two
    assert select("least-confidence", 2, proba=proba).tolist() == [2, 1]
    assert select("entropy", 1, proba=proba).tolist() == [2]
    labeled = np.array([False, True, False, False, False])
    assert select("margin", 2, proba=proba, labeled=labeled).tolist() == [2, 4]


def test_kcenter_reaches_clusters_without_labels():
    features, truth = blobs(25, 5, spread=0.3, seed=3)
    labeled = truth <= 1  # clusters 0 and 1 are covered
    proba = np.full((len(truth), 5), 0.2)
    picked = select("kcenter", 3, proba=proba, features=features, labeled=labeled, labels=np.where(labeled, truth, -1))
    assert sorted(set(truth[picked].tolist())) == [2, 3, 4]


def test_badge_spreads_a_batch_over_uncertain_regions():
    features, truth = blobs(40, 4, spread=0.5, seed=4)
    labeled = np.zeros(len(truth), dtype=bool)
    for k in range(4):
        labeled[np.flatnonzero(truth == k)[:2]] = True
    proba = proba_from(features, truth, np.flatnonzero(labeled))
    picked = select("badge", 8, proba=proba, features=features, labeled=labeled,
                    labels=np.where(labeled, truth, -1), seed=0)
    assert len(set(truth[picked].tolist())) >= 3  # not all from one boundary


def test_class_balanced_finds_the_rare_class():
    rng = np.random.default_rng(5)
    features, truth = blobs(200, 2, spread=1.0, seed=5)
    rare = np.flatnonzero(truth == 1)[:10]  # keep 10 items of class 1 among 200 of class 0
    keep = np.r_[np.flatnonzero(truth == 0), rare]
    features, truth = features[keep], truth[keep]
    labeled = np.zeros(len(truth), dtype=bool)
    labeled[rng.choice(np.flatnonzero(truth == 0), 20, replace=False)] = True
    labeled[np.flatnonzero(truth == 1)[:1]] = True
    proba = proba_from(features, truth, np.flatnonzero(labeled))
    labels = np.where(labeled, truth, -1)
    balanced = select("class-balanced", 6, proba=proba, features=features, labeled=labeled, labels=labels)
    randomly = select("random", 6, proba=proba, labeled=labeled, seed=0)
    assert (truth[balanced] == 1).sum() >= 5
    assert (truth[balanced] == 1).sum() > (truth[randomly] == 1).sum()


def test_cold_start_takes_one_typical_item_per_cluster():
    features, truth = blobs(50, 6, spread=0.4, seed=6)
    picked = select("margin", 6, features=features)
    assert sorted(truth[picked].tolist()) == list(range(6))
    centres = np.stack([features[truth == k].mean(0) for k in range(6)])
    distance = np.linalg.norm(features[picked] - centres[truth[picked]], axis=1)
    spread = np.median(np.linalg.norm(features - centres[truth], axis=1))
    assert (distance <= 2 * spread).all()  # typical items, not outliers


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(LabelingError, match="unknown strategy 'smart'.*margin"):
        select("smart", 3, proba=np.full((4, 2), 0.5))


def test_entropy_ranks_float32_probabilities_of_two_classes_as_margin_does():
    # A weak model's probabilities all near 0.5, as float32 as the loop's softmax gives them: the
    # two scores order two classes the same way, so they must pick the same items.
    rng = np.random.default_rng(0)
    p1 = (0.5 + rng.uniform(-1e-3, 1e-3, 500)).astype(np.float32)
    proba = np.stack([1 - p1, p1], axis=1)
    assert select("entropy", 20, proba=proba).tolist() == select("margin", 20, proba=proba).tolist()


def test_margin_diverse_takes_uncertain_items_from_every_uncertain_region():
    # Four tight clusters; the items of clusters 0 and 1 are all uncertain, cluster 0's a little more
    # so. Plain margin fills a batch of 4 from cluster 0 alone; margin-diverse takes uncertain items
    # of both clusters and none of the confident ones.
    features, truth = blobs(30, 4, spread=0.2, seed=5)
    rng = np.random.default_rng(0)
    gap = np.where(truth == 0, 0.01, np.where(truth == 1, 0.05, 0.9)) + rng.uniform(0, 0.005, len(truth))
    proba = np.stack([(1 + gap) / 2, (1 - gap) / 2], axis=1)
    assert set(truth[select("margin", 4, proba=proba)].tolist()) == {0}
    picked = select("margin-diverse", 4, proba=proba, features=features, seed=0)
    assert set(truth[picked].tolist()) == {0, 1}
    assert gap[picked[0]] == gap[picked].min()  # most uncertain first

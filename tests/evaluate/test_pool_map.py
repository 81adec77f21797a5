"""Clusters of a pool (k by silhouette), candidate merges and splits of classes, and the summary, on
features planted with a known structure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from headstart.errors import DataError
from headstart.evaluate.class_structure import merge_candidates, split_candidates
from headstart.evaluate.clusters import WEAK_STRUCTURE, cluster_features, normalized
from headstart.evaluate.explore_plot import explore_png
from headstart.evaluate.pool_map import pool_map

DIM = 32


def blobs(k: int, per: int = 50, *, spread: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` Gaussian blobs of ``per`` points in DIM dimensions, centres ``spread`` apart (per axis)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, DIM)) * spread
    x = np.concatenate([c + rng.normal(size=(per, DIM)) for c in centres])
    return x, np.repeat(np.arange(k), per)


def agreement(found: np.ndarray, planted: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(planted, found)


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_planted_blobs_give_back_their_number_and_their_members(k):
    x, planted = blobs(k, seed=k)
    clustering = cluster_features(x, seed=1)
    assert clustering.k == k
    assert agreement(clustering.assignment, planted) > 0.95
    assert sorted(clustering.sizes) == [50] * k
    assert not clustering.weak and clustering.silhouette > WEAK_STRUCTURE


def test_one_gaussian_cloud_is_called_weak_structure():
    x = np.random.default_rng(0).normal(size=(300, DIM))
    clustering = cluster_features(x)
    assert clustering.weak and clustering.silhouette < WEAK_STRUCTURE


def test_typical_items_are_the_members_nearest_the_centre():
    x, _ = blobs(3, seed=2)
    clustering = cluster_features(x, typical=4)
    unit = normalized(x)
    for c, typical in enumerate(clustering.typical):
        assert len(typical) == 4 and set(clustering.assignment[typical]) == {c}
        members = np.flatnonzero(clustering.assignment == c)
        distance = np.linalg.norm(unit[members] - clustering.centres[c], axis=1)
        assert list(typical) == list(members[np.argsort(distance, kind="stable")[:4]])


def test_a_given_k_is_kept_and_identical_items_give_one_cluster():
    x, _ = blobs(4, seed=3)
    assert cluster_features(x, k=2).k == 2
    same = np.ones((10, DIM))
    clustering = cluster_features(same)
    assert clustering.k == 1 and clustering.sizes == [10] and clustering.silhouettes == {}


def test_two_classes_drawn_from_one_blob_are_a_merge_candidate_with_the_rate():
    rng = np.random.default_rng(4)
    x, blob = blobs(3, per=80, seed=4)
    labels = blob.copy()
    shared = np.flatnonzero(blob == 1)
    labels[rng.permutation(shared)[:40]] = 2                 # class 2: half of blob 1, class 1 the other half
    labels[np.flatnonzero(blob == 2)] = 3
    found = merge_candidates(x, labels, ["w", "x", "y", "z"])
    assert [pair["classes"] for pair in found] == [["x", "y"]]
    pair = found[0]
    assert pair["mixing"] > 0.8                              # about as mixed as one class would be
    assert 0.35 < pair["rate"] < 0.65                        # about half their neighbours are the other class
    assert pair["items"] == 80


def test_well_separated_classes_are_no_merge_candidates():
    x, blob = blobs(4, seed=5)
    assert merge_candidates(x, blob, list("abcd")) == []


def test_a_class_of_two_modes_is_a_split_candidate_and_one_blob_is_not():
    x, blob = blobs(4, per=60, seed=6)
    labels = np.array([0, 0, 1, 2])[blob]                    # class 0 holds blobs 0 and 1
    flagged, checked = split_candidates(x, labels, ["two-mode", "one", "other"], typical=3)
    assert [entry["class"] for entry in flagged] == ["two-mode"]
    entry = flagged[0]
    assert entry["sizes"] == [60, 60] and entry["silhouette"] > 0.5
    # each part's typical items come from one planted blob
    assert all(len(set(blob[part])) == 1 for part in entry["typical"])
    assert {blob[part[0]] for part in entry["typical"]} == {0, 1}
    assert set(checked) == {"two-mode", "one", "other"}
    assert checked["one"] < 0.25 and checked["other"] < 0.25


def test_pool_map_summary_is_json_with_clusters_items_and_class_structure():
    x, blob = blobs(3, per=20, seed=7)
    items = [f"item <{i}>" for i in range(len(x))]
    labels = [["p", "q", "q"][b] for b in blob]
    summary = pool_map(x, items, [f"row {i}" for i in range(len(x))], labels=labels)
    json.dumps(summary)                                      # every value is a JSON value
    assert summary["k"] == 3 and summary["items"] == 60
    assert sorted(c["size"] for c in summary["clusters"]) == [20, 20, 20]
    assert sum(c["share"] for c in summary["clusters"]) == pytest.approx(1.0)
    assert all(len(c["typical"]) == 5 and set(c["typical"][0]) == {"item", "origin", "label"}
               for c in summary["clusters"])
    assert summary["classes"] == ["p", "q"] and 0.4 < summary["label_agreement"] < 1.0
    assert [entry["class"] for entry in summary["splits"]] == ["q"]  # q holds two blobs
    assert len(summary["map"]["points"]) == 60 and set(summary["map"]["cluster"]) == {1, 2, 3}
    assert explore_png(summary)[:4] == b"\x89PNG"


def test_an_unlabeled_pool_has_no_class_structure_and_too_few_items_are_refused():
    x, _ = blobs(2, per=5)
    summary = pool_map(x, [str(i) for i in range(10)], [str(i) for i in range(10)])
    assert summary["merges"] is None and summary["splits"] is None and summary["classes"] is None
    assert "label" not in summary["clusters"][0]["typical"][0]
    with pytest.raises(DataError, match="the pool has 2 item"):
        pool_map(x[:2], ["a", "b"], ["1", "2"])

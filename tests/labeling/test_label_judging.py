"""Labels drawn at random and kept for judging: served at random, never by the strategy, and what the
probe's and the fine-tune's accuracy estimates are measured on once there are enough."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import headstart.labeling.judging as judging_module
from headstart.errors import LabelingError
from headstart.labeling import init_project
from headstart.labeling.judging import REASON, judging_mask, judging_picks, judging_splits
from headstart.labeling.project import LabelingProject
from headstart.labeling.retrain import queue_finetune, retrain_probe, run_jobs
from labeling_helpers import write_pool


def test_the_judging_items_are_a_fixed_share_of_the_pool_that_a_longer_pool_keeps():
    mask = judging_mask(100_000, 0.1)
    assert abs(mask.mean() - 0.1) < 0.005
    assert np.array_equal(judging_mask(1_000, 0.1), mask[:1_000])  # appended items move no earlier one
    assert not judging_mask(1_000, 0.0).any()
    assert np.all(judging_mask(1_000, 0.05) <= judging_mask(1_000, 0.1))  # a larger share adds items


def test_the_picks_keep_the_judging_labels_at_their_share_batch_after_batch():
    size, share, n = 5_000, 0.1, 10
    mask, labeled = judging_mask(size, share), np.zeros(size, dtype=bool)
    rng = np.random.default_rng(0)
    for _ in range(50):
        candidates = np.flatnonzero(~labeled)
        picks = judging_picks(mask, labeled, candidates, n, share, seed=3)
        assert mask[picks].all() and not labeled[picks].any()
        others = rng.choice(np.flatnonzero(~labeled & ~mask), size=n - len(picks), replace=False)
        labeled[picks] = labeled[others] = True
        assert (labeled & mask).sum() == np.ceil(share * labeled.sum())
    assert labeled.sum() == 500 and (labeled & mask).sum() == 50


def test_a_share_outside_0_to_half_is_refused_before_anything_is_written(tmp_path):
    pool = write_pool(tmp_path / "pool.csv", 20)
    with pytest.raises(LabelingError, match="judging share") as caught:
        init_project(pool, labels="a,b", db=tmp_path / "p.db", judging_share=0.8)
    assert caught.value.where == "--judging-share"
    assert not (tmp_path / "p.db").exists()


def overlapping_project(tmp_path, share: float, n: int = 1_500, seed: int = 0):
    """A project over two overlapping classes (about 84% separable), with the loop's picks near the boundary."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    features = rng.normal(0, 1, (n, 8)).astype(np.float32)
    features[:, 0] += np.where(truth == 1, 1.0, -1.0)
    pool = write_pool(tmp_path / "pool.csv", n)
    project = init_project(pool, labels="a,b", db=tmp_path / "p.db", backbone="minilm-l6", judging_share=share)
    return LabelingProject(project.store, features=features), truth


def label_with_the_loop(project, truth, n_labels: int, batch: int = 20) -> list[dict]:
    served = []
    while project.count_labels() < n_labels:
        entries = project.next(batch)
        served += entries
        for entry in entries:
            project.add(entry["id"], project.classes[truth[project.ids.index(entry["id"])]], annotator="ana")
        retrain_probe(project, refresh=False)
    return served


def test_next_serves_the_judging_items_at_random_and_the_strategy_never_picks_them(tmp_path):
    project, truth = overlapping_project(tmp_path, share=0.2)
    served = label_with_the_loop(project, truth, 200)
    mask = judging_mask(project.size, 0.2)
    positions = np.array([project.ids.index(entry["id"]) for entry in served])
    is_judging = np.array([entry["reason"] == REASON for entry in served])
    assert np.array_equal(is_judging, mask[positions])  # the strategy picked none of them
    assert is_judging.sum() == 40  # a fifth of 200 labels
    # Random picks sit anywhere; the strategy's (margin-diverse) crowd the boundary at feature 0.
    features = project.features()[positions, 0]
    assert np.abs(features[is_judging]).mean() > 2 * np.abs(features[~is_judging]).mean()


def test_the_probe_is_judged_on_the_random_labels_which_the_loop_s_hard_picks_would_underrate(tmp_path):
    project, truth = overlapping_project(tmp_path, share=0.2)
    label_with_the_loop(project, truth, 200)
    judged = project.store.model_versions("probe")[-1]
    assert "40 labels drawn at random" in judged.metrics["accuracy_estimate"]
    project.update_settings(judging_share=0.0)  # the same labels and probe, judged on all of them
    retrain_probe(project)
    everything = project.store.model_versions("probe")[-1]
    assert everything.metrics["accuracy_estimate"] == "5-fold out-of-fold"
    right = np.array([p[1] == project.classes[truth[i]] for i, p in enumerate(project.store.predictions())])
    unlabeled = np.ones(project.size, dtype=bool)
    unlabeled[project.resolved()[0]] = False
    on_the_rest = right[unlabeled].mean()  # what the pre-labels are worth where nobody has labeled yet
    assert everything.metrics["accuracy"] < on_the_rest - 0.1  # the hard picks: far below it
    assert abs(judged.metrics["accuracy"] - on_the_rest) < 0.08


def test_the_judging_labels_are_the_validation_split_unless_a_class_of_theirs_has_no_other_label():
    assert judging_splits(np.array([True, False, False, True]), ["a", "a", "b", "b"]) == ["val", "train", "train", "val"]
    assert judging_splits(np.array([True, False, False]), ["c", "a", "b"]) is None


def test_a_fine_tune_validates_on_the_judging_labels(tmp_path, text_csv, tiny_bert_name, monkeypatch):
    monkeypatch.setattr(judging_module, "MIN_JUDGING", 4)
    rows = list(csv.DictReader(open(text_csv("topics.csv", n_per_class=10))))
    pool = tmp_path / "pool.csv"
    with open(pool, "w", newline="") as handle:
        csv.writer(handle).writerows([["text"]] + [[row["text"]] for row in rows])
    project = init_project(pool, labels="food,sports,tech", db=tmp_path / "f.db", backbone=tiny_bert_name,
                           max_length=24, judging_share=0.3)
    for item, row in zip(project.ids, rows):
        project.add(item, row["label"], annotator="ana")
    chosen = judging_mask(project.size, 0.3)
    job = queue_finetune(project, epochs=1, strategy="staged")
    assert run_jobs(project, tmp_path / "models") == 1
    version = project.store.model_versions()[0]
    assert version.id == job and version.status == "done", version.error
    assert version.metrics["accuracy_estimate"].startswith(f"validation split ({chosen.sum()} labels drawn at random")


def test_the_overview_plot_marks_the_versions_judged_on_random_labels_apart():
    from headstart.labeling.web.overview import accuracy_svg

    versions = [{"id": i, "status": "done", "n_labels": 40 * i, "accuracy": 0.6 + 0.05 * i,
                 "accuracy_estimate": "5-fold out-of-fold" if i < 3 else "5-fold out-of-fold, on the 31 labels "
                                                                        "drawn at random"} for i in range(1, 5)]
    marked = accuracy_svg(versions)
    assert "labels drawn at random" in marked  # the legend, only when a version was judged so
    assert "labels drawn at random" not in accuracy_svg(versions[:2])


def test_auto_accept_leaves_the_judging_items_to_people(blob_project):
    from headstart.labeling.prelabel import prelabel

    project, truth = blob_project(n_per_class=60, n_classes=3, judging_share=0.3)
    for i in np.random.default_rng(0).choice(len(truth), 45, replace=False):
        project.add(project.ids[i], project.classes[truth[i]], annotator="ana")
    report = prelabel(project, target_precision=0.95, accept=True, min_support=10)
    accepted = {project.position()[r.item] for r in project.store.current_labels() if r.source == "model"}
    judging = judging_mask(project.size, 0.3)
    assert report["accepted"] == len(accepted) > 60  # the well-separated blobs: most items are sure
    assert not judging[sorted(accepted)].any() and judging.sum() > 30

"""Pre-labels with auto-accept at a target precision, label issues, and agreement between annotators."""

from __future__ import annotations

import numpy as np
import pytest

from headstart.errors import LabelingError
from headstart.labeling.agreement import agreement_report
from headstart.labeling.issues import find_issues, label_issues
from headstart.labeling.loop_probe import held_out_proba
from headstart.labeling.prelabel import choose_threshold, prelabel
from labeling_helpers import blobs


def label_some(project, truth, positions, annotator="ana"):
    for i in positions:
        project.add(project.ids[i], project.classes[truth[i]], annotator=annotator)


def test_choose_threshold_reaches_the_target_with_the_most_items():
    confidence = np.array([0.99, 0.97, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.55, 0.5])
    correct = np.array([1, 1, 1, 1, 1, 0, 1, 0, 1, 0], dtype=bool)
    chosen = choose_threshold(confidence, correct, 1.0, min_support=2)
    assert (chosen.threshold, chosen.precision, chosen.support) == (0.85, 1.0, 5)
    chosen = choose_threshold(confidence, correct, 0.8, min_support=2)
    assert (chosen.threshold, chosen.support) == (0.7, 7)  # 6 of 7 right; at 0.55 it would be 7 of 9
    assert chosen.precision == pytest.approx(6 / 7)
    assert choose_threshold(confidence, correct, 1.0, min_support=6).threshold is None
    with pytest.raises(LabelingError, match="target precision"):
        choose_threshold(confidence, correct, 1.5)


def test_ties_at_the_threshold_are_all_counted():
    chosen = choose_threshold(np.array([0.9, 0.8, 0.8, 0.7]), np.array([1, 1, 0, 1], dtype=bool), 1.0, min_support=1)
    assert chosen.threshold == 0.9 and chosen.support == 1


def test_prelabel_auto_accepts_at_the_target_precision(blob_project):
    project, truth = blob_project(n_per_class=60, n_classes=3)
    rng = np.random.default_rng(0)
    labeled = rng.choice(len(truth), 45, replace=False)
    label_some(project, truth, labeled)
    report = prelabel(project, target_precision=0.95, accept=True, min_support=10)
    assert report["predicted"] == len(truth)
    assert report["threshold"]["precision"] >= 0.95 and report["threshold"]["support"] >= 10
    assert report["accepted"] == report["eligible"] > 0
    accepted = [r for r in project.store.current_labels() if r.source == "model"]
    assert len(accepted) == report["accepted"]
    right = [project.classes[truth[project.position()[r.item]]] == r.label for r in accepted]
    assert np.mean(right) >= 0.95
    predictions = project.store.predictions()
    assert len(predictions) == len(truth) and all(len(p[3]) == 3 and p[4] == report["model_version"]
                                                  for p in predictions)
    detail = project.store.item(accepted[0].item)
    assert detail["labels"][0]["source"] == "model" and detail["prediction"]["label"] == accepted[0].label
    assert len(detail["prediction"]["proba"]) == 3 and detail["content"].startswith("item number")
    # a person's label supersedes an accepted one; the next run does not accept it again
    project.add(accepted[0].item, "c0", annotator="ana", replace=False)
    again = prelabel(project, target_precision=0.95, accept=True, min_support=10)
    assert accepted[0].item not in {r.item for r in project.store.current_labels() if r.source == "model"}
    assert again["eligible"] == 0


def test_prelabel_accepts_nothing_when_the_target_is_out_of_reach(blob_project):
    project, truth = blob_project(n_per_class=20, n_classes=2)
    noisy = truth.copy()
    noisy[::3] = 1 - noisy[::3]  # a third of the labels wrong: no threshold gets 99%
    label_some(project, noisy, range(30))
    report = prelabel(project, target_precision=0.99, accept=True, min_support=10)
    assert report["threshold"]["threshold"] is None and report["accepted"] == 0 and "nothing accepted" in report["note"]


def test_out_of_fold_and_find_issues_catch_flipped_labels():
    features, truth = blobs(60, 3, spread=0.8, seed=1)
    rng = np.random.default_rng(1)
    flipped = rng.choice(len(truth), 18, replace=False)
    given = truth.copy()
    given[flipped] = (given[flipped] + rng.integers(1, 3, len(flipped))) % 3
    proba = held_out_proba(features, given, 3)
    found = find_issues(given, proba)
    hits = np.intersect1d(found, flipped)
    assert len(hits) / len(flipped) >= 0.8          # recall
    assert len(hits) / max(1, len(found)) >= 0.8     # precision


def test_label_issues_go_to_the_review_queue_with_a_suggestion(blob_project):
    project, truth = blob_project(n_per_class=30, n_classes=3)
    given = truth.copy()
    given[[0, 1]] = (truth[[0, 1]] + 1) % 3
    label_some(project, given, range(len(truth)))
    found = label_issues(project)
    flagged = {f["id"]: f for f in found}
    for i in (0, 1):
        entry = flagged[project.ids[i]]
        assert entry["given"] == project.classes[given[i]] and entry["suggested"] == project.classes[truth[i]]
    queue = project.store.review_queue()
    assert {e["id"] for e in queue} == set(flagged)
    assert all(e["reason"] == "label_issue" and e["suggested_label"] for e in queue)
    label_issues(project)  # a second run updates, never duplicates
    assert len(project.store.review_queue()) == len(queue)


def test_agreement_figures_consensus_quality_and_disagreements(blob_project):
    project, truth = blob_project(n_per_class=20, n_classes=3, multi_share=1.0, annotators_per_item=3)
    rng = np.random.default_rng(2)
    noisy = truth.copy()
    wrong = rng.choice(len(truth), 24, replace=False)
    noisy[wrong] = (noisy[wrong] + 1) % 3
    label_some(project, truth, range(len(truth)), "ana")
    label_some(project, truth, range(len(truth)), "ben")
    label_some(project, noisy, range(len(truth)), "cy")
    report = agreement_report(project)
    pairs = {tuple(p["annotators"]): p for p in report["pairs"]}
    assert pairs[("ana", "ben")]["cohen_kappa"] == pytest.approx(1.0)
    assert pairs[("ana", "cy")]["cohen_kappa"] < 0.8
    assert 0 < report["fleiss_kappa"] < 1 and 0 < report["krippendorff_alpha"] < 1
    assert report["fleiss_items"] == len(truth)
    assert report["consensus"] == {project.ids[i]: project.classes[truth[i]] for i in range(len(truth))}
    quality = report["annotator_quality"]
    assert quality["cy"] < min(quality["ana"], quality["ben"])
    assert report["disagreements"] == 24
    queue = project.store.review_queue()
    assert len(queue) == 24 and all(e["reason"] == "disagreement" for e in queue)
    assert {e["id"] for e in queue} == {project.ids[i] for i in wrong}


def test_agreement_uses_cleanlab_once_a_model_exists(blob_project):
    from headstart.labeling.retrain import retrain_probe

    project, truth = blob_project(n_per_class=15, n_classes=2, multi_share=1.0, annotators_per_item=2)
    label_some(project, truth, range(len(truth)), "ana")
    other = truth.copy()
    other[:5] = 1 - other[:5]
    label_some(project, other, range(len(truth)), "ben")
    retrain_probe(project)
    report = agreement_report(project)
    assert report["consensus_method"] == "cleanlab CROWDLAB"
    assert report["annotator_quality"]["ben"] < report["annotator_quality"]["ana"]


def test_agreement_without_overlap_is_a_clear_error(blob_project):
    project, truth = blob_project(n_per_class=5, n_classes=2)
    label_some(project, truth, range(4))
    with pytest.raises(LabelingError, match="no item has labels from two annotators.*--multi-share"):
        agreement_report(project)

"""Label issues and low-confidence reviews wait until the out-of-fold model is clearly better than
chance: a model at chance gets no flags and one message with a label count; a learnable set with
flipped labels gets flags, most of them true flips."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from headstart.labeling.chance_check import check_better_than_chance, labels_to_clear, wilson_lower
from headstart.labeling.issues import scan_issues
from headstart.labeling.project import LabelingProject
from labeling_helpers import blobs


def random_feature_project(blob_project, n_labeled=60, seed=0):
    """A two-class project whose features carry no information about the labels (a model at chance)."""
    project, _ = blob_project(n_per_class=50, n_classes=2)
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(len(project.ids), 16)).astype(np.float32)
    project = LabelingProject(project.store, features=features)
    labels = rng.integers(0, 2, n_labeled)
    project.store.add_labels([(project.ids[i], project.classes[labels[i]], "ana") for i in range(n_labeled)])
    return project


def labels_named(message: str) -> tuple[int, int]:
    """(more, in all) from a held-back message."""
    found = re.search(r"about (\d+) more items \(about (\d+) labels in all", message)
    assert found, message
    return int(found.group(1)), int(found.group(2))


def test_wilson_lower_bound_matches_the_formula_and_the_label_count_is_the_first_to_pass():
    assert wilson_lower(0, 0) == 0.0 and wilson_lower(0, 10) == pytest.approx(0.0, abs=1e-12)
    assert wilson_lower(5, 10) == pytest.approx(0.2366, abs=1e-4)  # the textbook value
    assert wilson_lower(81, 100) == pytest.approx(0.7222, abs=1e-3)
    n = labels_to_clear(0.6, 0.5)
    assert wilson_lower(round(0.6 * n), n) > 0.5 >= wilson_lower(round(0.6 * (n - 1)), n - 1)
    assert 80 < n < 110  # about 96 labels show a 60% model against a coin
    assert labels_to_clear(0.5, 0.5) is None and labels_to_clear(0.4, 0.5) is None


def test_the_check_compares_with_the_majority_share_not_one_over_k():
    given = np.array([0] * 80 + [1] * 20)
    always_zero = np.tile([0.9, 0.1], (100, 1))
    check = check_better_than_chance(given, always_zero, ["a", "b"])
    assert check.accuracy == 0.8 and check.chance == 0.8 and not check.clear and check.majority == "a"
    perfect = np.eye(2)[given]
    assert check_better_than_chance(given, perfect, ["a", "b"]).clear


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_model_at_chance_flags_nothing_and_says_how_many_labels_it_needs(blob_project, seed):
    project = random_feature_project(blob_project, seed=seed)
    scanned = scan_issues(project)
    assert scanned.held_back and scanned.found == []
    assert project.store.review_queue() == []
    message = scanned.check.message()
    assert message.startswith("held back:") and "better than chance" in message
    more, total = labels_named(message)
    assert total > 60 and more == total - 60
    assert "Label about" in message and "then look again" in message  # what to do


def test_flipped_labels_in_a_learnable_set_are_flagged_and_most_flags_are_true_flips(blob_project):
    project, _ = blob_project(n_per_class=40, n_classes=3)
    features, truth = blobs(40, 3, spread=2.5, seed=3)  # overlapping clusters: the model is good, not perfect
    project = LabelingProject(project.store, features=features)
    rng = np.random.default_rng(3)
    flipped = rng.choice(len(truth), 12, replace=False)
    given = truth.copy()
    given[flipped] = (given[flipped] + rng.integers(1, 3, len(flipped))) % 3
    project.store.add_labels([(project.ids[i], project.classes[given[i]], "ana") for i in range(len(given))])
    scanned = scan_issues(project)
    assert not scanned.held_back and scanned.check.clear
    flagged = {project.ids.index(f["id"]) for f in scanned.found}
    true_flags = flagged & set(flipped.tolist())
    assert len(flagged) >= 6
    assert len(true_flags) / len(flagged) >= 0.75
    assert len(project.store.review_queue()) == len(flagged)


def test_the_command_line_prints_the_message_and_queues_nothing(blob_project, monkeypatch):
    from headstart.cli import app

    project = random_feature_project(blob_project)
    features = project.features()
    monkeypatch.setattr(LabelingProject, "features", lambda self: features)
    result = CliRunner().invoke(app, ["label", "issues", "--db", project.url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("held back:") and "likely label issue" not in result.output
    labels_named(result.output)
    assert project.store.review_queue() == []


def test_the_review_scan_holds_back_issues_and_low_confidence_reviews_with_one_note(blob_project):
    from headstart.labeling.web.review import scan

    project = random_feature_project(blob_project)
    result = scan(project)
    assert result["held_back"] and "label issues" not in result["found"]
    assert "low-confidence auto-accepts" not in result["found"]
    held = [note for note in result["notes"] if note.startswith("held back:")]
    assert len(held) == 1 and result["open"] == 0

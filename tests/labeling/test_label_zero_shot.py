"""A text project with a label set and no labels: the zero-shot start pre-labels and picks the first batch."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from headstart.cli import app
from headstart.errors import HeadstartError
from headstart.labeling import init_project
from headstart.labeling.loop_probe import fit_loop_probe, pool_scaling
from headstart.labeling.retrain import queue_finetune, retrain_probe, run_jobs
from headstart.labeling.zero_shot_prior import zero_shot_version
from headstart.learn.prior import blend_weight
from headstart.learn.head import LinearHead

runner = CliRunner()


@pytest.fixture
def unlabeled_pool(text_csv, tmp_path):
    """``unlabeled_pool(n_per_class)``: a CSV of learnable texts (sports, food, tech) without their labels."""
    def make(n_per_class: int):
        with open(text_csv("labeled.csv", n_per_class=n_per_class), newline="", encoding="utf-8") as handle:
            texts = [row["text"] for row in csv.DictReader(handle)]
        path = tmp_path / "pool.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([["text"]] + [[text] for text in texts])
        return path
    return make


def test_the_first_next_stores_a_zero_shot_version_prelabels_and_picks_class_balanced(unlabeled_pool, tiny_st_name,
                                                                                      tmp_path):
    pool = unlabeled_pool(10)
    project = init_project(pool, labels="sports,food,tech", db=tmp_path / "p.db", backbone=tiny_st_name,
                           zero_shot=True, describe="tech=a text about computers")
    batch = project.next(6)
    assert len(batch) == 6 and all(entry["reason"] == "zero-shot start (class-balanced)" for entry in batch)
    assert all(entry["prediction"] in project.classes and entry["confidence"] is not None for entry in batch)
    # class-balanced: each class's likeliest items in turn, so every class is predicted in the batch
    assert sorted({entry["prediction"] for entry in batch}) == ["food", "sports", "tech"]
    version = project.latest_model("probe")
    record = version.metrics["zero_shot"]
    assert version.n_labels == 0 and record["descriptions"]["tech"] == "a text about computers"
    assert record["calibrated_on"] == 30
    assert len(project.predictions()) == 30  # the pool is pre-labelled
    assert project.next(3)[0]["model_version"] == version.id  # no second zero-shot version
    assert len(project.model_versions()) == 1


def test_without_the_option_a_project_still_starts_cold(unlabeled_pool, tiny_st_name, tmp_path):
    project = init_project(unlabeled_pool(5), labels="sports,food,tech", db=tmp_path / "p.db",
                           backbone=tiny_st_name)
    assert project.next(3)[0]["reason"].startswith("cold start") and not project.model_versions()


@pytest.mark.parametrize("options, message", [
    ({"describe": "tech=computers"}, "--describe belongs to --zero-shot"),
    ({"zero_shot": True, "describe": "music=songs"}, "'music' is described but is not one of the classes"),
])
def test_bad_zero_shot_options_are_refused_before_anything_is_written(options, message, unlabeled_pool, tiny_st_name,
                                                                     tmp_path):
    with pytest.raises(HeadstartError, match=message):
        init_project(unlabeled_pool(3), labels="sports,food,tech", db=tmp_path / "p.db",
                     backbone=tiny_st_name, **options)
    assert not (tmp_path / "p.db").exists()


def test_an_image_pool_cannot_start_zero_shot(image_folder, tmp_path):
    result = runner.invoke(app, ["label", "init", str(image_folder), "--labels", "red,blue,dark", "--zero-shot",
                                 "--db", str(tmp_path / "p.db")])
    assert result.exit_code == 2 and "zero-shot start needs a text encoder" in result.output


def test_the_command_line_starts_zero_shot(unlabeled_pool, tiny_st_name, tmp_path):
    db = str(tmp_path / "p.db")
    result = runner.invoke(app, ["label", "init", str(unlabeled_pool(5)), "--labels",
                                 "sports,food,tech", "--zero-shot", "--backbone", tiny_st_name, "--db", db,
                                 "--no-shift-check"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["label", "next", "-n", "3", "--json", "--db", db])
    batch = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and batch[0]["reason"] == "zero-shot start (class-balanced)"


def test_the_blend_weight_follows_whichever_part_predicts_the_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    right = np.eye(2)[y] * 0.8 + 0.1  # 90% on the true class
    coin = np.full((60, 2), 0.5)
    # a zero-shot head that knows the labels and a probe that knows nothing: the blend is the zero-shot head
    weight, record = blend_weight(coin, np.log(right), y)
    assert weight == 0.0 and record["accuracy_blended"] == record["accuracy_zero_shot"] == 1.0
    # the reverse: all probe
    weight, record = blend_weight(right, np.log(coin), y)
    assert weight == 1.0 and record["log_loss_blended"] == pytest.approx(record["log_loss_probe"])
    # two halves of the truth: each knows half of the items; the blend beats both
    half = np.arange(60) < 30
    probe = np.where(half[:, None], right, coin)
    zero_shot = np.log(np.where(half[:, None], coin, right))
    weight, record = blend_weight(probe, zero_shot, y)
    assert 0.0 < weight < 1.0
    assert record["log_loss_blended"] < min(record["log_loss_probe"], record["log_loss_zero_shot"])


def _version(project, version_id: int):
    return next(version for version in project.model_versions() if version.id == version_id)


def _label_with_the_truth(project, batch, labeled_csv):
    with open(labeled_csv, newline="", encoding="utf-8") as handle:
        truth = {row["text"]: row["label"] for row in csv.DictReader(handle)}
    for entry in batch:
        project.add(entry["id"], truth[entry["content"]])


def test_retraining_a_zero_shot_project_keeps_the_zero_shot_head_as_a_prior(unlabeled_pool, tiny_st_name, tmp_path):
    project = init_project(unlabeled_pool(10), labels="sports,food,tech", db=tmp_path / "p.db",
                           backbone=tiny_st_name, zero_shot=True)
    _label_with_the_truth(project, project.next(9), tmp_path / "labeled.csv")
    version = _version(project, retrain_probe(project))
    record = version.metrics["zero_shot_prior"]
    first = zero_shot_version(project)
    assert record["zero_shot_version"] == first.id == project.model_versions()[0].id
    assert version.metrics["accuracy"] == record["accuracy_blended"]
    # the stored head is w * probe + (1 - w) * zero-shot, the probe being the loop's on the same labels
    positions, y = project.resolved()
    features = project.features()
    probe = fit_loop_probe(features[positions], y, 3, pool_scaling(features))
    zero_shot, w = LinearHead.from_bytes(first.weights), record["probe_weight"]
    stored = LinearHead.from_bytes(version.weights)
    np.testing.assert_allclose(stored.weight, w * probe.weight + (1 - w) * zero_shot.weight, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stored.bias, w * probe.bias + (1 - w) * zero_shot.bias, rtol=1e-5, atol=1e-6)
    assert project.probe()[1] == version.id  # next and pre-labels read the blend


def test_a_project_without_a_zero_shot_start_has_no_prior(unlabeled_pool, tiny_st_name, tmp_path):
    project = init_project(unlabeled_pool(5), labels="sports,food,tech", db=tmp_path / "p.db", backbone=tiny_st_name)
    _label_with_the_truth(project, project.next(6), tmp_path / "labeled.csv")
    version = _version(project, retrain_probe(project))
    assert "zero_shot_prior" not in version.metrics


def test_a_fine_tune_job_takes_the_projects_descriptions_for_its_prior(tmp_path, text_csv, tiny_st_name):
    rows = list(csv.DictReader(open(text_csv("topics.csv", n_per_class=8))))
    pool = tmp_path / "pool.csv"
    with open(pool, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["text"]] + [[row["text"]] for row in rows])
    project = init_project(pool, labels="food,sports,tech", db=tmp_path / "d.db", backbone=tiny_st_name,
                           zero_shot=True, describe="tech=a text about computers")
    for index, (item, row) in enumerate(zip(project.ids, rows)):
        if index % 6:
            project.add(item, row["label"], annotator="ana")
    job = queue_finetune(project, epochs=1, strategy="staged")
    assert run_jobs(project, tmp_path / "models") == 1
    config = json.loads((tmp_path / "models" / f"model-v{job}" / "config.json").read_text())
    assert config["probe"]["zero_shot_prior"]["descriptions"] == {
        "food": "food", "sports": "sports", "tech": "a text about computers"}

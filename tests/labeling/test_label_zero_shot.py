"""A text project with a label set and no labels: the zero-shot start pre-labels and picks the first batch."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from headstart.cli import app
from headstart.errors import HeadstartError
from headstart.labeling import init_project

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

"""The pool's shift check: labeled items against the unlabeled rest, stored in the project, warned at init."""

from __future__ import annotations

import csv

import numpy as np
from typer.testing import CliRunner

from headstart.cli import app
from labeling_helpers import write_pool


def project_with(tmp_path, features: np.ndarray, labeled: int, classes=("c0", "c1")):
    """A project over len(features) items whose first ``labeled`` items carry imported labels (alternating)."""
    from headstart.labeling import init_project
    from headstart.labeling.project import LabelingProject

    labels = {i: classes[i % len(classes)] for i in range(labeled)}
    pool = write_pool(tmp_path / "pool.csv", len(features), labels=labels)
    project = init_project(pool, labels=list(classes), db=str(tmp_path / "p.db"), backbone="minilm-l6")
    return LabelingProject(project.store, features=features)


def test_a_pool_unlike_its_labeled_items_is_flagged_and_stored(tmp_path):
    from headstart.labeling.shift_check import SETTING, check_pool_shift, shift_warning

    rng = np.random.default_rng(0)
    features = rng.normal(size=(120, 8))
    features[60:] += 2.0                                         # the unlabeled half lies elsewhere
    project = project_with(tmp_path, features, labeled=60)
    summary = check_pool_shift(project)
    assert summary["shifted"] and summary["auc"] >= 0.75
    assert summary["n_labeled"] == 60 and summary["n_unlabeled"] == 60
    assert set(summary["priors"]) == {"c0", "c1"}
    assert summary["typical"]["target"][0]["origin"].startswith("i")   # the item's id
    assert project.settings[SETTING]["auc"] == summary["auc"]    # kept for the web page
    warning = shift_warning(summary)
    assert warning.count("\n") == 0 and f"AUC {summary['auc']:.2f}" in warning


def test_a_pool_like_its_labeled_items_is_not_flagged(tmp_path):
    from headstart.labeling.shift_check import check_pool_shift, shift_warning

    features = np.random.default_rng(1).normal(size=(120, 8))
    summary = check_pool_shift(project_with(tmp_path, features, labeled=60))
    assert not summary["shifted"]
    assert shift_warning(summary) is None


def test_too_few_labeled_items_skip_the_check_and_say_why(tmp_path):
    from headstart.labeling.shift_check import check_pool_shift, shift_warning

    features = np.random.default_rng(2).normal(size=(60, 8))
    summary = check_pool_shift(project_with(tmp_path, features, labeled=5))
    assert "at least 20 labeled and 20 unlabeled" in summary["skipped"] and "has 5 and 55" in summary["skipped"]
    assert shift_warning(summary) is None


def test_label_init_warns_in_one_line_when_the_pool_is_shifted(tmp_path, tiny_bert_name, write_csv):
    labeled = list(csv.DictReader(open(write_csv(tmp_path / "a.csv", n_per_class=20, classes=("sports", "food")))))
    pool_rows = list(csv.DictReader(open(write_csv(tmp_path / "b.csv", n_per_class=40, classes=("tech",), seed=1))))
    path = tmp_path / "pool.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])   # 40 labeled sports/food items, then 40 unlabeled tech items
        writer.writerows([f"t{i}", row["text"], row["label"]] for i, row in enumerate(labeled))
        writer.writerows([f"u{i}", row["text"], ""] for i, row in enumerate(pool_rows))
    runner = CliRunner()
    result = runner.invoke(app, ["label", "init", str(path), "--labels", "food,sports,tech", "--db",
                                 str(tmp_path / "p.db"), "--backbone", tiny_bert_name, "--retrain-every", "0"])
    assert result.exit_code == 0, result.output
    assert "80 items" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "AUC" in warnings[0], result.stderr

    quiet = runner.invoke(app, ["label", "init", str(path), "--labels", "food,sports,tech", "--db",
                                str(tmp_path / "q.db"), "--backbone", tiny_bert_name, "--no-shift-check"])
    assert quiet.exit_code == 0 and "warning:" not in quiet.stderr


def test_an_image_pool_keeps_the_server_s_folders_out_of_the_summary(tmp_path, write_images):
    from headstart.labeling import init_project
    from headstart.labeling.project import LabelingProject
    from headstart.labeling.shift_check import check_pool_shift

    folder = write_images(tmp_path / "images", per_class=14)
    images = sorted(p for p in folder.rglob("*.png"))
    pool = tmp_path / "pool.csv"
    with open(pool, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path", "label"])
        writer.writerows([f"m{i}", path.relative_to(tmp_path).as_posix(), path.parent.name if i < 21 else ""]
                         for i, path in enumerate(images))
    project = init_project(pool, labels="red,blue,dark", db=str(tmp_path / "p.db"), backbone="effnet-lite0")
    features = np.random.default_rng(5).normal(size=(len(images), 8))
    features[21:] += 2.0
    summary = check_pool_shift(LabelingProject(project.store, features=features))
    shown = [entry["item"] for side in ("source", "target") for entry in summary["typical"][side]]
    assert shown and all("/" not in item and item.endswith(".png") for item in shown)

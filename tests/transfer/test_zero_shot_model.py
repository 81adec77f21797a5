"""``headstart fit --zero-shot`` / ``headstart.zero_shot``: a model folder from class names alone."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.exported import ExportedModel
from headstart.model import Model

runner = CliRunner()
CLASSES = "sports,food,tech"
DESCRIBE = "sports=a text about a match,tech=a text about computers"


@pytest.fixture(scope="module")
def zero_shot_folder(tiny_st_name, write_csv, tmp_path_factory):
    root = tmp_path_factory.mktemp("zero-shot")
    test = write_csv(root / "test.csv", n_per_class=8, seed=3)
    pool = write_csv(root / "pool.csv", n_per_class=10, seed=4)
    model = headstart.zero_shot(CLASSES, test=test, unlabeled=pool, describe=DESCRIBE, backbone=tiny_st_name,
                                out=root / "model")
    return model, root


def test_the_folder_is_an_ordinary_model_whose_head_rows_are_the_class_prototypes(zero_shot_folder):
    model, root = zero_shot_folder
    loaded = headstart.load(root / "model")
    assert isinstance(loaded, Model) and loaded.classes == ["sports", "food", "tech"]
    assert loaded.head.weight.shape == (3, model.backbone.feature_dim) and loaded.head.bias.shape == (3,)
    config = json.loads((root / "model" / "config.json").read_text())
    record = config["zero_shot"]
    assert config["mode"] == "zero-shot" and record["calibration"] == "standardize"
    assert record["calibrated_on"] == 30 and record["calibrated_on_source"] == "unlabeled pool"
    assert record["descriptions"] == {"sports": "a text about a match", "food": "food", "tech": "a text about computers"}
    # the calibration folds into the bias: -t * mean / std of each class's similarities over the pool
    expected_bias = -record["temperature"] * np.array(record["similarity_mean"]) / np.array(record["similarity_std"])
    np.testing.assert_allclose(loaded.head.bias, expected_bias, rtol=1e-4)
    metrics = json.loads((root / "model" / "metrics.json").read_text())
    assert metrics["n"] == 24 and 0.0 <= metrics["accuracy"] <= 1.0


def test_it_predicts_and_exports_with_the_same_probabilities(zero_shot_folder, tmp_path):
    model, root = zero_shot_folder
    texts = ["the team won the match", "fresh bread and soup", "a laptop with a new chip"]
    loaded = headstart.load(root / "model")
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)
    exported = headstart.load(headstart.export(root / "model", tmp_path / "onnx"))
    assert isinstance(exported, ExportedModel) and exported.classes == model.classes
    np.testing.assert_allclose(exported.predict_proba(texts), model.predict_proba(texts), atol=1e-4)


def test_the_report_says_zero_shot_and_shows_the_descriptions(zero_shot_folder):
    _, root = zero_shot_folder
    report = (root / "model" / "report.html").read_text()
    assert "Zero-shot: no labels were used" in report
    assert "a text about computers" in report and "Kept: the zero-shot model" in report
    assert (root / "model" / "test_predictions.csv").is_file()


def test_the_command_writes_the_folder_and_says_its_accuracy(tiny_st_name, write_csv, tmp_path):
    test = write_csv(tmp_path / "test.csv", n_per_class=5, seed=5)
    result = runner.invoke(app, ["fit", "--zero-shot", "--classes", CLASSES, "--test", str(test),
                                 "--backbone", tiny_st_name, "--out", str(tmp_path / "model")])
    assert result.exit_code == 0, result.output
    assert "zero-shot test accuracy" in result.output
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["zero_shot"]["calibrated_on_source"] == "test texts (not their labels)"


@pytest.mark.parametrize("options, message", [
    (["--zero-shot"], "zero-shot needs the class names"),
    (["--zero-shot", "--classes", "food,food,tech"], "class 'food' is given twice"),
    (["--zero-shot", "--classes", CLASSES, "--describe", "music=a song"], "'music' is described but is not one"),
    (["--zero-shot", "--classes", CLASSES, "--backbone", "effnet-lite0"], "zero-shot needs a text encoder"),
    (["--zero-shot", "--classes", "sports,food"], "labels that are not among the classes: tech"),
    (["--classes", CLASSES], "--classes and --describe belong to --zero-shot"),
])
def test_bad_input_is_one_line_and_exit_2(options, message, write_csv, tmp_path):
    test = write_csv(tmp_path / "test.csv", n_per_class=3, seed=6)
    result = runner.invoke(app, ["fit", *options, "--test", str(test), "--out", str(tmp_path / "model")])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "model").exists()


def test_an_image_pool_is_refused_in_one_line(image_folder, write_csv, tmp_path):
    test = write_csv(tmp_path / "test.csv", n_per_class=3, seed=7)
    result = runner.invoke(app, ["fit", "--zero-shot", "--classes", CLASSES, "--test", str(test),
                                 "--unlabeled", str(image_folder), "--out", str(tmp_path / "model")])
    assert result.exit_code == 2 and "zero-shot reads text; the unlabeled pool holds images" in result.output


@pytest.mark.requires_minilm
@pytest.mark.requires_shared_data
def test_minilm_tells_sst2_reviews_apart_from_their_descriptions_alone(shared_data, tmp_path):
    with open(shared_data / "text" / "sst2_test.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:120]
    test = tmp_path / "sst2.csv"
    with open(test, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    model = headstart.zero_shot("negative,positive", test=test, out=tmp_path / "model",
                                describe="negative=a negative movie review,positive=a positive movie review")
    # benchmarks/zero_shot.py: 73.9% on the whole test split, against a majority rate of 50%
    assert model.metrics["accuracy"] >= 0.65
    assert headstart.load(tmp_path / "model").predict(["a dull, lifeless and boring film"]) == ["negative"]


def test_without_a_test_file_the_folder_has_no_report_and_a_pool_still_calibrates(tiny_st_name, write_csv, tmp_path):
    pool = write_csv(tmp_path / "pool.csv", n_per_class=4, seed=8)
    model = headstart.zero_shot(CLASSES, unlabeled=pool, backbone=tiny_st_name, out=tmp_path / "pooled")
    assert model.metrics == {} and not (tmp_path / "pooled" / "report.html").exists()
    assert json.loads((tmp_path / "pooled" / "config.json").read_text())["zero_shot"]["calibration"] == "standardize"
    bare = headstart.zero_shot(CLASSES, backbone=tiny_st_name, out=tmp_path / "bare")
    assert bare.info["config"]["zero_shot"]["calibration"] == "none"  # nothing to calibrate on
    texts = ["the team won the match"]
    np.testing.assert_allclose(headstart.load(tmp_path / "bare").predict_proba(texts), bare.predict_proba(texts),
                               atol=1e-6)

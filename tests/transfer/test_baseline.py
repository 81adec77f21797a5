"""The scratch baseline, the paired bootstrap and the negative-transfer verdict, both ways."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.data import read_dataset
from headstart.transfer.baseline import image_scratch, paired_bootstrap, text_scratch, verdict

requires_minilm = pytest.mark.requires_minilm
requires_shared_data = pytest.mark.requires_shared_data
runner = CliRunner()


def case_marked_csv(path, source_csv):
    """The learnable topic sentences relabeled by case: every other one written in capitals ('shouted').

    An uncased tokenizer (the tiny BERT's, MiniLM's) lowercases before anything else, so the
    backbone's features of a sentence and of its capitalized twin are identical: the label is a
    property the backbone discards. Character n-grams that keep case see it at once.
    """
    with open(source_csv, newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    rows = [[text.upper(), "shouted"] if i % 2 else [text, "plain"] for i, text in enumerate(texts)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


# -- the statistics -------------------------------------------------------------------------------

def test_paired_bootstrap_of_identical_and_opposite_models():
    same = np.array([1, 0, 1, 1, 0, 1], dtype=bool)
    result = paired_bootstrap(same, same)
    assert result["difference"] == 0 and result["ci_low"] == 0 and result["ci_high"] == 0
    result = paired_bootstrap(np.ones(50, bool), np.zeros(50, bool))
    assert result["difference"] == 1 and result["ci_low"] == 1 and result["n"] == 50


def test_paired_bootstrap_interval_covers_the_difference_and_narrows_with_more_items():
    rng = np.random.default_rng(0)
    widths = []
    for n in (100, 1600):
        a, b = rng.random(n) < 0.8, rng.random(n) < 0.7
        result = paired_bootstrap(a, b, seed=1)
        assert result["ci_low"] < result["difference"] < result["ci_high"]
        widths.append(result["ci_high"] - result["ci_low"])
    assert widths[1] < widths[0] / 2.5  # about 1/sqrt(16) = 1/4


def test_verdict_sentences():
    helps, sentence = verdict({"difference": 0.12, "ci_low": 0.08, "ci_high": 0.16, "level": 0.95, "n": 300}, "X")
    assert helps and "transfer helps" in sentence
    assert "12.0 points more accurate than the from-scratch baseline, X" in sentence
    helps, sentence = verdict({"difference": 0.01, "ci_low": -0.03, "ci_high": 0.05, "level": 0.95, "n": 300}, "X")
    assert not helps and "transfer does not help here" in sentence and "not clearly better" in sentence
    helps, sentence = verdict({"difference": -0.2, "ci_low": -0.3, "ci_high": -0.1, "level": 0.95, "n": 300}, "X")
    assert not helps and "transfer does not help here" in sentence and "from scratch is clearly better" in sentence


# -- the baselines --------------------------------------------------------------------------------

def test_text_scratch_learns_words_and_case(learnable_csv, tmp_path):
    data = read_dataset(learnable_csv)
    classes = data.classes
    y = data.label_ids(classes)
    predict_proba, info = text_scratch(data.items[:60], y[:60], data.items[60:75], y[60:75], len(classes))
    proba = predict_proba(data.items[75:])
    assert proba.shape == (15, 3) and np.allclose(proba.sum(1), 1)
    assert (proba.argmax(1) == y[75:]).mean() >= 0.8
    marked = read_dataset(case_marked_csv(tmp_path / "case.csv", learnable_csv))
    y = marked.label_ids(marked.classes)
    predict_proba, _ = text_scratch(marked.items[:60], y[:60], marked.items[60:75], y[60:75], 2)
    assert (predict_proba(marked.items[75:]).argmax(1) == y[75:]).mean() >= 0.8


def test_image_scratch_cnn_learns_colours(image_folder):
    data = read_dataset(image_folder)
    y = data.label_ids(data.classes)
    order = np.random.default_rng(0).permutation(len(y))
    train, val, test = order[:24], order[24:30], order[30:]
    predict_proba, info = image_scratch([data.items[i] for i in train], y[train], [data.items[i] for i in val],
                                        y[val], 3, min_steps=60)
    assert info["image_size"] == 32 and info["epochs"] >= 5 and info["params"] < 200_000
    assert (predict_proba([data.items[i] for i in test]).argmax(1) == y[test]).mean() >= 0.8


# -- wired into fit -------------------------------------------------------------------------------

def test_fit_says_transfer_does_not_help_when_the_backbone_discards_the_label(learnable_csv, tiny_bert_name,
                                                                               tmp_path):
    data = case_marked_csv(tmp_path / "case.csv", learnable_csv)
    out = tmp_path / "case-run"
    result = runner.invoke(app, ["fit", str(data), "--backbone", tiny_bert_name, "--mode", "probe", "--out",
                                 str(out), "--split", "50/20/30"])
    assert result.exit_code == 0, result.output
    baseline = json.loads((out / "metrics.json").read_text())["baseline"]
    assert baseline["method"] == "TF-IDF + logistic regression"
    assert baseline["accuracy"] > baseline["transfer_accuracy"] and not baseline["helps"]
    assert baseline["ci_low"] <= baseline["difference"] <= baseline["ci_high"]
    assert "transfer does not help here" in baseline["verdict"]
    assert baseline["verdict"] in result.stdout
    assert "transfer does not help here" in (out / "report.html").read_text()


def test_no_baseline_turns_it_off(learnable_csv, tiny_bert_name, tmp_path):
    out = tmp_path / "plain"
    result = runner.invoke(app, ["fit", str(learnable_csv), "--backbone", tiny_bert_name, "--mode", "probe",
                                 "--out", str(out), "--no-baseline"])
    assert result.exit_code == 0, result.output
    assert "baseline" not in json.loads((out / "metrics.json").read_text())
    assert "Verdict" not in result.stdout


@requires_minilm
@requires_shared_data
def test_on_sst2_minilm_transfer_helps(shared_data, tmp_path):
    rows = list(csv.DictReader(open(shared_data / "text" / "sst2_train.csv", encoding="utf-8")))
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(rows))
    train = [rows[i] for i in pick[:160]]
    test = [rows[i] for i in pick[160:560]]
    for name, part in (("train.csv", train), ("test.csv", test)):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, ["text", "label"])
            writer.writeheader()
            writer.writerows(part)
    model = headstart.fit(tmp_path / "train.csv", test=tmp_path / "test.csv", backbone="minilm-l6", mode="probe")
    baseline = model.metrics["baseline"]
    assert baseline["helps"] and baseline["ci_low"] > 0, baseline["verdict"]
    assert "transfer helps" in baseline["verdict"]


@pytest.mark.requires_effnet
def test_image_fit_is_compared_with_the_best_scratch_candidate(image_folder):
    model = headstart.fit(image_folder, backbone="effnet-lite0", mode="probe", image_size=64, ratios=(0.5, 0.2, 0.3))
    baseline = model.metrics["baseline"]
    tried = {row["name"]: row for row in baseline["candidates"]}
    assert list(tried)[0] == "pixel-lr" and baseline["name"] in tried and baseline["info"]["image_size"] == 32
    ran = [row for row in tried.values() if "val_accuracy" in row]
    assert tried[baseline["name"]]["val_accuracy"] == max(row["val_accuracy"] for row in ran)
    assert baseline["budget_s"] > 0 and 0 < baseline["share_of_fit"] < 1
    assert baseline["n"] == model.metrics["n"] and baseline["transfer_accuracy"] == model.metrics["accuracy"]
    assert baseline["verdict"].startswith("Verdict: transfer")

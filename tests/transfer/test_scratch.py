"""The scratch candidates, their choice within a time budget, auto shipping the model from scratch,
and that model as a folder: loaded, predicting the same, exported."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.errors import ModelError
from headstart.exported import ExportedModel
from headstart.transfer.baseline import choose_scratch, compare_with_scratch, shipping
from headstart.transfer.scratch_model import ScratchModel, is_scratch
from headstart.transfer.scratch_models import (Fitted, SkipCandidate, Task, TextPredictor, cnn, mlp, pixel_lr,
                                               tfidf_words_chars)

from test_baseline import case_marked_csv  # tests/transfer is on the path (rootdir-less prepend import)

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "predict_onnx.py"


def splits(path):
    """(train, val, test) of a file split 50/20/30 as fit splits it."""
    dataset = headstart.prepare(path, ratios=(0.5, 0.2, 0.3))
    return tuple(dataset.split(name) for name in ("train", "val", "test"))


def fake(name: str, right: float):
    """A candidate whose validation answers are right on the first ``right`` share of the items."""
    def fit(task):
        proba = np.full((len(task.val_y), task.n_classes), 0.1)
        wrong = (task.val_y + 1) % task.n_classes
        cut = int(round(right * len(task.val_y)))
        proba[np.arange(len(task.val_y)), np.r_[task.val_y[:cut], wrong[cut:]]] = 0.9
        return Fitted(name, f"{name} model", proba, None, {})
    return name, fit, None


# -- choosing ---------------------------------------------------------------------------------------

def test_the_best_candidate_on_validation_is_chosen_and_ties_go_to_the_cheaper(learnable_csv):
    train, val, _ = splits(learnable_csv)
    selection = choose_scratch(train, val, train.classes, candidates=[fake("weak", 0.4), fake("strong", 1.0),
                                                                      fake("also-strong", 1.0), fake("mid", 0.7)])
    assert selection.best.name == "strong"
    assert [row["name"] for row in selection.rows] == ["weak", "strong", "also-strong", "mid"]
    assert [row["val_accuracy"] for row in selection.rows] == pytest.approx([0.4, 1.0, 1.0, 0.7], abs=0.05)


def test_the_candidates_show_progress_one_step_each_skipped_ones_too(learnable_csv, monkeypatch):
    from contextlib import contextmanager

    import headstart.transfer.baseline as baseline

    steps = []

    @contextmanager
    def recorded(description, total):
        steps.append((description, total))
        yield lambda n=1: steps.append(n)

    monkeypatch.setattr(baseline, "progress_bar", recorded)
    train, val, _ = splits(learnable_csv)
    selection = choose_scratch(train, val, train.classes, budget_s=0.0, candidates=[fake("first", 0.5),
                                                                                    fake("second", 0.9)])
    assert "skipped" in selection.rows[1]  # no time left after the first
    assert steps == [("from-scratch baselines", 2), 1, 1]


def test_real_image_candidates_are_all_tried_and_the_best_kept(image_folder):
    train, val, _ = splits(image_folder)
    selection = choose_scratch(train, val, train.classes, seed=0)
    names = [row["name"] for row in selection.rows]
    assert names == ["pixel-lr", "mlp", "cnn"] and not any("skipped" in row for row in selection.rows)
    best = max(row["val_accuracy"] for row in selection.rows)
    assert selection.best.name == next(row["name"] for row in selection.rows if row["val_accuracy"] == best)
    assert selection.best.info["gray"] is False


def test_the_budget_skips_candidates_but_the_cheapest_always_runs(learnable_csv):
    train, val, _ = splits(learnable_csv)
    selection = choose_scratch(train, val, train.classes, budget_s=0.0,
                               candidates=[fake("cheap", 0.5), fake("dear", 1.0)])
    assert selection.best.name == "cheap" and selection.budget_s == 0.0
    assert selection.rows[1] == {"name": "dear", "skipped": "no time left in the budget"}

    def too_slow(task):
        raise SkipCandidate("its 40 epochs would need about 90 s, 3 s were left")
    planned = ("planned", fake("x", 1.0)[1], 1e9)  # a linear candidate planned at 1e9 times the first's time
    selection = choose_scratch(train, val, train.classes, budget_s=60.0,
                               candidates=[fake("cheap", 0.5), ("slow", too_slow, None), planned])
    assert selection.best.name == "cheap"
    assert "90 s" in selection.rows[1]["skipped"] and selection.rows[2]["skipped"].startswith("it would need about")


def test_a_network_stops_at_the_deadline_with_its_best_weights_or_is_skipped_when_too_slow(image_folder):
    train, val, _ = splits(image_folder)
    classes = train.classes

    class Clock(Task):
        """A task whose budget lasts for ``calls`` questions, then is spent (no real timing)."""

        calls: int = 1

        def seconds_left(self):
            self.calls -= 1
            return 100.0 if self.calls >= 0 else -1.0

    task = Clock(train.items, train.label_ids(classes), val.items, val.label_ids(classes), len(classes))
    fitted = cnn(task, min_steps=60)
    assert fitted.info["epochs"] == 2 and fitted.info["cut_short"] == "stopped at the time budget"
    assert fitted.val_proba.shape == (len(val), len(classes))
    task = Clock(train.items, train.label_ids(classes), val.items, val.label_ids(classes), len(classes))
    task.calls = 0
    with pytest.raises(SkipCandidate, match="even its first 5 epochs would need about"):
        mlp(task)


def test_shipping_sentences():
    comparison = {"difference": -0.18, "ci_low": -0.25, "ci_high": -0.11, "level": 0.95, "n": 400}
    clear = {"difference": 0.2, "ci_low": 0.1, "ci_high": 0.3, "level": 0.95, "n": 100, "scratch": 0.9,
             "transfer": 0.7}
    shipped, sentence = shipping("auto", clear, comparison)
    assert shipped == "scratch" and "beat transfer on the validation split beyond noise" in sentence
    assert "90.0% from scratch against 70.0% with transfer" in sentence
    shipped, sentence = shipping("probe", clear, comparison)
    assert shipped == "transfer" and "as --mode probe asked" in sentence
    assert "18.0 points less accurate on test" in sentence and "-25.0 to -11.0 points on 400 test items" in sentence
    unclear = {**clear, "difference": 0.05, "ci_low": -0.05}
    assert shipping("auto", unclear, comparison)[0] == "transfer"
    assert shipping("auto", None, comparison)[0] == "transfer"


def test_compare_ships_scratch_only_in_auto_and_only_when_clearly_better_on_validation(image_folder):
    train, val, test = splits(image_folder)
    classes = train.classes
    uniform = np.full((len(test), len(classes)), 1 / len(classes))
    wrong_val = np.eye(len(classes))[(val.label_ids(classes) + 1) % len(classes)]  # transfer wrong on every item
    result, shipped = compare_with_scratch(train, val, test, classes, uniform, transfer_val_proba=wrong_val)
    assert result["shipped"] == "scratch" and shipped is not None and shipped.name == result["name"]
    assert result["validation"]["ci_low"] > 0 and "Shipped: the model trained from scratch" in result["verdict"]
    assert result["budget_s"] is None and [row["name"] for row in result["candidates"]] == ["pixel-lr", "mlp", "cnn"]
    result, shipped = compare_with_scratch(train, val, test, classes, uniform, transfer_val_proba=wrong_val,
                                           mode="finetune")
    assert shipped is None and "as --mode finetune asked" in result["verdict"]
    right_val = np.eye(len(classes))[val.label_ids(classes)]
    result, shipped = compare_with_scratch(train, val, test, classes, uniform, transfer_val_proba=right_val)
    assert shipped is None and result["shipped"] == "transfer"


# -- the model from scratch as a folder --------------------------------------------------------------

def gray_folder(root, per_class: int = 12, size: int = 12):
    """Gray images whose class is a bright pixel's corner: left-top or right-bottom."""
    rng = np.random.default_rng(0)
    for label, (row, col) in {"top": (1, 1), "bottom": (size - 2, size - 2)}.items():
        for i in range(per_class):
            pixels = rng.integers(0, 60, size=(size, size)).astype(np.uint8)
            pixels[row, col] = 255
            (root / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels, "L").save(root / label / f"{i}.png")
    return root


@pytest.mark.parametrize("kind", ["pixel-lr", "mlp", "cnn"])
def test_an_image_model_from_scratch_saves_loads_predicts_the_same_and_exports(kind, tmp_path):
    train, val, test = splits(gray_folder(tmp_path / "gray"))
    classes = train.classes
    task = Task(train.items, train.label_ids(classes), val.items, val.label_ids(classes), len(classes), mirror=False)
    fitted = {"pixel-lr": pixel_lr, "mlp": mlp, "cnn": cnn}[kind](task)
    assert fitted.info["gray"] is True and fitted.predictor.net.settings["gray"] is True
    model = ScratchModel(fitted.predictor, train.classes, name=fitted.name, method=fitted.method)
    expected = model.predict_proba(test)
    folder = model.save(tmp_path / "model")
    assert is_scratch(folder) and not (folder / "model.pkl").exists()
    loaded = headstart.load(folder)
    assert isinstance(loaded, ScratchModel) and loaded.classes == train.classes
    assert np.allclose(loaded.predict_proba(test), expected, atol=1e-6)
    assert loaded.predict(test.items[0]) == [train.classes[int(expected[0].argmax())]]
    exported = headstart.export(folder, tmp_path / "onnx")
    labels = json.loads((exported / "labels.json").read_text())
    assert labels["frame"] == "whole" and labels["image_size"] == fitted.predictor.net.settings["size"]
    onnx = headstart.load(exported)
    assert isinstance(onnx, ExportedModel) and np.allclose(onnx.predict_proba(test), expected, atol=1e-4)
    assert "trained from scratch" in (exported / "README.md").read_text()
    # examples/predict_onnx.py, which predicts without headstart, frames the images as the model saw them
    spec = importlib.util.spec_from_file_location("predict_onnx", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(exported, tmp_path / "gray", str(tmp_path / "predictions.csv"))
    with open(tmp_path / "predictions.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    files = [str(tmp_path / "gray" / row["path"]) for row in rows]
    got = np.array([[float(row[f"p_{name}"]) for name in classes] for row in rows])
    assert np.allclose(got, model.predict_proba(files), atol=1e-4)


def _example_probabilities(exported, source, output, classes):
    """examples/predict_onnx.py run in this Python on ``source``: its probabilities (n, k)."""
    spec = importlib.util.spec_from_file_location("predict_onnx", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(Path(exported), Path(source), str(output))
    with open(output, newline="", encoding="utf-8") as handle:
        return np.array([[float(row[f"p_{name}"]) for name in classes] for row in csv.DictReader(handle)])


def test_a_text_model_from_scratch_round_trips_and_exports_to_raw_text_onnx(learnable_csv, tmp_path):
    train, val, test = splits(learnable_csv)
    classes = train.classes
    fitted = tfidf_words_chars(Task(train.items, train.label_ids(classes), val.items, val.label_ids(classes),
                                    len(classes)))
    model = ScratchModel(fitted.predictor, classes, name=fitted.name, method=fitted.method)
    folder = model.save(tmp_path / "text-model")
    loaded = headstart.load(folder)
    assert isinstance(loaded.predictor, TextPredictor)
    assert np.allclose(loaded.predict_proba(test), model.predict_proba(test), atol=1e-6)
    exported = headstart.export(folder, tmp_path / "onnx")
    labels = json.loads((exported / "labels.json").read_text())
    assert labels["input"] == "text" and labels["text_input"] == "raw" and not (exported / "tokenizer.json").exists()
    assert "raw texts" in (exported / "README.md").read_text()
    assert np.allclose(headstart.load(exported).predict_proba(test), model.predict_proba(test), atol=1e-4)
    with pytest.raises(ModelError, match="small already") as caught:
        headstart.export(folder, tmp_path / "int8", quantize="int8")
    assert "\n" not in str(caught.value) and not (tmp_path / "int8").exists()
    with pytest.raises(ModelError, match="trained from scratch"):
        headstart.Model.load(folder)


# -- fit(mode="auto") --------------------------------------------------------------------------------

def test_auto_ships_scratch_when_the_backbone_cannot_see_the_label(learnable_csv, tiny_bert_name, tmp_path):
    # The uncased tokenizer lowercases: upper- and lower-case twins have the same features; character
    # n-grams that keep case see the label at once.
    data = case_marked_csv(tmp_path / "case.csv", learnable_csv)
    out = tmp_path / "case-run"
    result = runner.invoke(app, ["fit", str(data), "--backbone", tiny_bert_name, "--out", str(out),
                                 "--split", "50/20/30", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["baseline"]["shipped"] == "scratch" and metrics["baseline"]["validation"]["ci_low"] > 0
    assert metrics["accuracy"] == pytest.approx(metrics["baseline"]["accuracy"])
    assert json.loads((out / "config.json").read_text())["format"] == "headstart-scratch/1"
    report = (out / "report.html").read_text()
    assert "Shipped: the model trained from scratch" in report and "none: TF-IDF" in report
    assert "Scratch candidates on the validation split: tfidf-words-chars" in report
    assert "Kept: the model trained from scratch" in report and 'class="kept-row"><td>from scratch' in report
    assert "probe C" not in report  # no setting of the discarded transfer model
    assert "Training curves" not in report and "Per-epoch history" not in report  # nor its training curve
    rows = list(csv.DictReader(open(out / "test_predictions.csv", encoding="utf-8")))
    assert len(rows) == metrics["n"]
    assert np.mean([row["true"] == row["predicted"] for row in rows]) == pytest.approx(metrics["accuracy"])
    model = headstart.load(out)
    assert isinstance(model, ScratchModel)
    predicted = runner.invoke(app, ["predict", str(out), str(data)])
    assert predicted.exit_code == 0, predicted.output
    lines = predicted.stdout.strip().splitlines()
    assert lines[0].startswith("text,label,prediction") and len(lines) == 91
    exported = runner.invoke(app, ["export", str(out), "--out", str(tmp_path / "onnx")])
    assert exported.exit_code == 0, exported.output
    with open(data, newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    expected = model.predict_proba(texts)
    assert np.allclose(headstart.load(tmp_path / "onnx").predict_proba(texts), expected, atol=1e-4)
    got = _example_probabilities(tmp_path / "onnx", data, tmp_path / "example.csv", model.classes)
    assert np.allclose(got, expected, atol=1e-4)


def test_a_chosen_mode_keeps_transfer_and_says_what_it_loses(learnable_csv, tiny_bert_name, tmp_path):
    data = case_marked_csv(tmp_path / "case.csv", learnable_csv)
    model = headstart.fit(data, backbone=tiny_bert_name, mode="probe", ratios=(0.5, 0.2, 0.3))
    baseline = model.metrics["baseline"]
    assert isinstance(model, headstart.Model) and baseline["shipped"] == "transfer"
    assert "as --mode probe asked" in baseline["verdict"] and "less accurate on test" in baseline["verdict"]


def test_auto_keeps_transfer_when_scratch_is_not_clearly_better(learnable_csv, tiny_bert_name):
    model = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="auto", ratios=(0.5, 0.2, 0.3),
                          finetune_config=headstart.FinetuneConfig(epochs=1))
    baseline = model.metrics["baseline"]
    assert isinstance(model, headstart.Model) and baseline["shipped"] == "transfer", baseline["verdict"]
    assert baseline["validation"]["ci_low"] <= 0
    assert baseline["share_of_fit"] is not None and baseline["budget_s"] > 0


@pytest.mark.requires_minilm
@pytest.mark.requires_shared_data
def test_on_shouted_sst2_sentences_auto_ships_the_model_from_scratch(shared_data, tmp_path):
    # MiniLM's uncased tokenizer lowercases before the network: a sentence and its capitals have the
    # same features, so the label "shouted" is invisible to transfer and plain to character n-grams.
    with open(shared_data / "text" / "sst2_train.csv", newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(texts))[:280]
    shouted = rng.random(len(pick)) < 0.5
    path = tmp_path / "shouting.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "split"])
        for n, (i, loud) in enumerate(zip(pick, shouted)):
            writer.writerow([texts[i].upper() if loud else texts[i], "shouted" if loud else "plain",
                             "train" if n < 40 else "val" if n < 80 else "test"])
    model = headstart.fit(path, backbone="minilm-l6",
                          finetune_config=headstart.FinetuneConfig(epochs=1, strategy="staged"))
    baseline = model.metrics["baseline"]
    assert isinstance(model, ScratchModel) and baseline["shipped"] == "scratch", baseline["verdict"]
    assert model.metrics["accuracy"] >= 0.95 and baseline["transfer_accuracy"] < 0.75
    assert baseline["ci_high"] < 0 and "the model from scratch is clearly better" in baseline["verdict"]

"""``headstart fit TRAIN --unlabeled POOL``: the head learns from the pool where that pays; bad pools stop early."""

from __future__ import annotations

import json

import pytest

from cli_helpers import one_error_line
from typer.testing import CliRunner

from headstart.cli import app

runner = CliRunner()


def _unlabeled_csv(path, write_csv, seed: int):
    """Learnable texts without their labels: a pool of the same task."""
    labeled = write_csv(path.with_name("labeled-" + path.name), n_per_class=40, seed=seed)
    lines = labeled.read_text(encoding="utf-8").splitlines()
    path.write_text("text\n" + "\n".join(line.rsplit(",", 1)[0] for line in lines[1:]) + "\n", encoding="utf-8")
    return path


def _fit_text_with_pool(tmp_path, write_csv, backbone: str, mode: str, seed: int):
    """``headstart fit`` on 8 texts a class with a 120-text pool, as a user runs it: (CLI result, model folder)."""
    train = write_csv(tmp_path / "train.csv", n_per_class=8, seed=seed)
    pool = _unlabeled_csv(tmp_path / "pool.csv", write_csv, seed=seed + 1)
    out = tmp_path / "run"
    result = runner.invoke(app, ["fit", str(train), "--unlabeled", str(pool), "--backbone", backbone,
                                 "--mode", mode, "--no-baseline", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result, out


def test_fit_with_an_unlabeled_pool_records_the_choice_in_the_metrics(tmp_path, write_csv, tiny_bert_name):
    result, out = _fit_text_with_pool(tmp_path, write_csv, tiny_bert_name, "probe", seed=1)
    assert "unlabeled pool:" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    unlabeled = metrics["unlabeled"]
    assert unlabeled["method"] in ("none", "self-train", "propagation")
    assert unlabeled["pool_items"] == 120
    assert set(unlabeled["accuracy"]) >= {"none", "propagation", "self-train@0.3"}
    assert unlabeled["judged_on"].startswith("out of fold")


def test_fit_python_api_takes_the_pool_and_a_method(tmp_path, write_csv, tiny_bert_name):
    import headstart

    train = write_csv(tmp_path / "train.csv", n_per_class=8, seed=3)
    pool = _unlabeled_csv(tmp_path / "pool.csv", write_csv, seed=4)
    model = headstart.fit(train, backbone=tiny_bert_name, mode="probe", baseline=False, unlabeled=pool,
                          unlabeled_method="propagation")
    unlabeled = model.metrics["unlabeled"]
    assert unlabeled["method"] == "propagation"  # asked for: used whatever held-out labels say
    assert 0 < unlabeled["pseudo_labeled"] <= 120
    assert model.predict(["football goal"])  # still a backbone and a linear head


def test_an_image_pool_for_text_is_one_line_and_exit_2(tmp_path, write_csv, write_images, tiny_bert_name):
    train = write_csv(tmp_path / "train.csv", n_per_class=8, seed=1)
    images = write_images(tmp_path / "images")
    result = runner.invoke(app, ["fit", str(train), "--unlabeled", str(images), "--backbone", tiny_bert_name,
                                 "--out", str(tmp_path / "run")])
    one_error_line(result, "unlabeled pool holds image", "text")
    assert not (tmp_path / "run").exists()


def test_an_empty_pool_is_one_line_and_exit_2(tmp_path, write_csv, tiny_bert_name):
    train = write_csv(tmp_path / "train.csv", n_per_class=8, seed=1)
    empty = tmp_path / "empty.csv"
    empty.write_text("text\n", encoding="utf-8")
    result = runner.invoke(app, ["fit", str(train), "--unlabeled", str(empty), "--backbone", tiny_bert_name,
                                 "--out", str(tmp_path / "run")])
    one_error_line(result, "empty.csv")
    assert not (tmp_path / "run").exists()


def test_a_pool_of_the_labeled_items_only_is_one_line_and_exit_2(tmp_path, write_csv, tiny_bert_name):
    train = write_csv(tmp_path / "train.csv", n_per_class=8, seed=1)
    result = runner.invoke(app, ["fit", str(train), "--unlabeled", str(train), "--backbone", tiny_bert_name,
                                 "--out", str(tmp_path / "run")])
    one_error_line(result, "only items of the labeled data")


def test_after_a_staged_fine_tune_the_pool_is_judged_on_validation_with_tuned_features(tmp_path, write_csv,
                                                                                        tiny_bert_name):
    import headstart

    train = write_csv(tmp_path / "train.csv", n_per_class=10, seed=5)
    pool = _unlabeled_csv(tmp_path / "pool.csv", write_csv, seed=6)
    model = headstart.fit(train, backbone=tiny_bert_name, mode="finetune", baseline=False, unlabeled=pool,
                          unlabeled_method="self-train",
                          finetune_config=headstart.FinetuneConfig(epochs=1, strategy="staged"))
    unlabeled = model.metrics["unlabeled"]
    assert model.finetuned and unlabeled["judged_on"] == "the validation split"
    assert unlabeled["method"] == "self-train" and unlabeled["rounds"]


def test_after_a_contrastive_fine_tune_the_pool_is_embedded_by_the_tuned_encoder(tmp_path, write_csv, tiny_st_name):
    import headstart

    train = write_csv(tmp_path / "train.csv", n_per_class=10, seed=7)
    pool = _unlabeled_csv(tmp_path / "pool.csv", write_csv, seed=8)
    model = headstart.fit(train, backbone=tiny_st_name, mode="finetune", baseline=False, unlabeled=pool,
                          unlabeled_method="propagation",
                          finetune_config=headstart.FinetuneConfig(epochs=1, strategy="contrastive"))
    unlabeled = model.metrics["unlabeled"]
    assert model.finetuned and unlabeled["method"] == "propagation" and unlabeled["pseudo_labeled"] > 0
    assert model.info["config"]["refit"] == "train+validation"


def test_the_report_says_how_the_pool_was_used(tmp_path, write_csv, tiny_bert_name):
    import headstart

    train = write_csv(tmp_path / "train.csv", n_per_class=8, seed=9)
    pool = _unlabeled_csv(tmp_path / "pool.csv", write_csv, seed=10)
    headstart.fit(train, backbone=tiny_bert_name, mode="probe", baseline=False, unlabeled=pool, out=tmp_path / "run")
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "Unlabeled pool (120 items)" in report and "unlabeled pool" in report


@pytest.mark.requires_effnet
def test_an_image_fine_tune_with_a_pool_learns_pseudo_labels_and_the_report_says_so(tmp_path, write_images):
    """From the command line as a user runs it: few image labels, a folder of unlabeled images."""
    labeled = write_images(tmp_path / "labeled", per_class=6, seed=3)
    pool = write_images(tmp_path / "pool", per_class=8, seed=4)
    out = tmp_path / "run"
    result = runner.invoke(app, ["fit", str(labeled), "--unlabeled", str(pool), "--backbone", "effnet-lite0",
                                 "--mode", "finetune", "--no-baseline", "--image-size", "32", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    pseudo = config["pseudo_labels"]
    assert 0 < pseudo["items"] <= 24 and sum(pseudo["per_class"].values()) == pseudo["items"]
    assert config["mode"] == "finetune"
    report = (out / "report.html").read_text(encoding="utf-8")
    assert f"The fine-tune also learned {pseudo['items']} pool items labeled by the probe (" in report


def test_a_text_fine_tune_with_a_pool_learns_a_first_fine_tunes_pseudo_labels(tmp_path, write_csv, tiny_bert_name):
    """Few texts tuned on contrastive pairs: the teacher is a fine-tune on the labels alone, and the report says so."""
    _, out = _fit_text_with_pool(tmp_path, write_csv, tiny_bert_name, "finetune", seed=9)
    config = json.loads((out / "config.json").read_text())
    pseudo = config["pseudo_labels"]
    assert config["finetune"]["strategy"] == "contrastive" and pseudo["teacher"] == "fine-tune"
    assert 0 < pseudo["items"] <= 120 and sum(pseudo["per_class"].values()) == pseudo["items"]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert f"{pseudo['items']} pool items labeled by a first fine-tune on the labels alone (" in report


def test_the_report_says_when_the_labels_alone_fine_tune_beat_the_self_trained_one(tmp_path, write_csv,
                                                                                   tiny_bert_name, monkeypatch):
    from headstart.learn import trainer

    # the teacher (the only outcome holding its own encoder's weights) wins the validation comparison
    monkeypatch.setattr(trainer, "validation_accuracy", lambda outcome, val_y: 0.75 if outcome.weights else 0.5)
    _, out = _fit_text_with_pool(tmp_path, write_csv, tiny_bert_name, "finetune", seed=9)
    pseudo = json.loads((out / "config.json").read_text())["pseudo_labels"]
    assert pseudo["kept"] is False and pseudo["validation"] == {"student": 0.5, "teacher": 0.75}
    report = (out / "report.html").read_text(encoding="utf-8")
    assert (f"The fine-tune learned from the labels alone: one that also learned {pseudo['items']} pool items it "
            "labeled scored 50.0% on validation, against its 75.0%.") in report
    assert "labeled by a first fine-tune" not in report

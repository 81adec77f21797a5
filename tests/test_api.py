"""headstart.fit / load / predict end to end on the tiny BERT and the learnable CSV."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import headstart
from headstart import api
from headstart.errors import DataError, HeadstartError
from headstart.features import extract
from headstart.learn import trainer


def _listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_probe_end_to_end(probe_run, text_csv):
    model, _ = probe_run
    assert model.classes == ["food", "sports", "tech"]
    assert model.info["config"]["mode"] == "probe"
    assert model.info["config"]["counts"] == {"train": 63, "val": 18, "test": 9}
    assert model.metrics["n"] == 9
    assert model.metrics["accuracy"] >= 0.8  # chance is 1/3
    assert model.metrics["macro_f1"] >= 0.7
    fresh = headstart.data.read_dataset(text_csv("fresh.csv", n_per_class=10, seed=99))  # unseen sentences
    predictions = model.predict(fresh.items)
    assert np.mean([p == label for p, label in zip(predictions, fresh.labels)]) >= 0.8
    proba = model.predict_proba(fresh.items)
    assert proba.shape == (30, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    assert model.info["history"][0]["stage"] == "head (probe)"


def test_finetune_end_to_end(finetune_run):
    model, _ = finetune_run
    assert model.finetuned is True
    config = model.info["config"]
    assert config["mode"] == "finetune" and config["finetune"]["epochs"] == 2
    assert model.metrics["accuracy"] >= 0.6  # chance is 1/3
    history = model.info["history"]
    assert history[0]["stage"] == "head (probe)"
    assert [row["epoch"] for row in history[1:]] == [1, 2]
    assert all(0.0 <= row["val_accuracy"] <= 1.0 for row in history)


def test_contrastive_strategy_end_to_end(text_csv, tiny_bert_name):
    # The few-shot text strategy, with few pairs an item so that the test stays quick.
    path = text_csv(n_per_class=16, seed=4)
    model = headstart.fit(path, backbone=tiny_bert_name, mode="finetune", engine="torch",
                          finetune_config=headstart.FinetuneConfig(strategy="contrastive", pairs_per_item=2))
    assert model.finetuned is True and model.info["config"]["finetune"]["strategy"] == "contrastive"
    stages = [row["stage"] for row in model.info["history"]]
    assert stages[0] == "head (probe)" and stages[-1] == "head (probe on tuned features)"
    fresh = headstart.data.read_dataset(text_csv("fresh.csv", n_per_class=10, seed=98))
    assert np.mean([p == y for p, y in zip(model.predict(fresh.items, engine="torch"), fresh.labels)]) >= 0.6
    fresh = headstart.backbones.create_backbone(tiny_bert_name)
    assert model.backbone.fingerprint() != fresh.fingerprint()  # the encoder itself was tuned


def test_finetune_epochs_are_honoured_by_the_auto_strategy(text_csv, tiny_bert_name):
    model = headstart.fit(text_csv(n_per_class=8), backbone=tiny_bert_name, mode="finetune", engine="torch",
                          finetune_config=headstart.FinetuneConfig(epochs=2, pairs_per_item=2))
    tuning = [row for row in model.info["history"] if "probe" not in row["stage"]]
    finetune = model.info["config"]["finetune"]
    assert finetune["epochs"] == 2  # the final run's passes
    assert len(tuning) == finetune["held_out_epochs"] == 1  # the history is the judged run's: half of them


def test_split_column_is_respected(text_csv, tiny_bert_name, tmp_path):
    def split(label, index):
        return "train" if index < 20 else "validation" if index < 25 else "test"

    path = text_csv(n_per_class=30, split=split)
    before = _listing(tmp_path)
    # baseline=False here and below: the scratch baseline has its tests in tests/transfer/test_baseline.py
    model = headstart.fit(path, backbone=tiny_bert_name, mode="probe", seed=5, baseline=False)
    assert model.info["config"]["counts"] == {"train": 60, "val": 15, "test": 15}
    assert model.metrics["n"] == 15
    assert model.metrics["accuracy"] >= 0.7  # chance is 1/3
    assert _listing(tmp_path) == before  # out=None writes nothing


def test_separate_test_file_is_the_test_split(text_csv, tiny_bert_name):
    data = text_csv("data.csv", n_per_class=20, seed=1)
    test = text_csv("test.csv", n_per_class=4, seed=2)
    model = headstart.fit(data, test=test, backbone=tiny_bert_name, mode="probe", baseline=False)
    counts = model.info["config"]["counts"]
    assert counts["test"] == 12 and counts["train"] + counts["val"] == 60
    assert counts["val"] == 12  # val share 0.2 / (0.7 + 0.2) of each class of 20, rounded
    assert model.metrics["n"] == 12 and model.metrics["accuracy"] >= 0.75


def test_separate_validation_file_is_the_validation_split(text_csv, tiny_bert_name):
    data = text_csv("data.csv", n_per_class=20, seed=1)
    val = text_csv("val.csv", n_per_class=3, seed=3)
    test = text_csv("test.csv", n_per_class=4, seed=2)
    model = headstart.fit(data, val=val, test=test, backbone=tiny_bert_name, mode="probe", baseline=False)
    assert model.info["config"]["counts"] == {"train": 60, "val": 9, "test": 12}
    prepared = headstart.prepare(data, val=val, test=test)
    assert prepared.splits == ["train"] * 60 + ["val"] * 9 + ["test"] * 12


def test_modality_mismatch_is_an_error_before_anything_loads(image_folder, text_csv, tiny_bert_name, monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("a backbone was loaded")

    monkeypatch.setattr(api, "create_backbone", must_not_load)
    with pytest.raises(HeadstartError) as caught:
        headstart.fit(image_folder, backbone=tiny_bert_name)
    message = str(caught.value)
    assert "--backbone" in message and "text" in message and "image" in message
    with pytest.raises(HeadstartError, match="for image"):
        headstart.fit(text_csv(), backbone="timm:resnet18")


def test_unknown_mode_is_an_error_before_anything_is_read(tmp_path):
    # The file does not exist: the mode is checked first.
    with pytest.raises(HeadstartError, match="--mode"):
        headstart.fit(tmp_path / "missing.csv", mode="linear")


def test_second_fit_reads_the_feature_cache(learnable_csv, tiny_bert_name, tmp_path, monkeypatch):
    computed: list[str] = []
    real = extract.compute_features

    def counting(backbone, items, **options):
        computed.extend(items)
        return real(backbone, items, **options)

    monkeypatch.setattr(extract, "compute_features", counting)
    first = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="probe", seed=0, engine="torch",
                          cache_dir=tmp_path, baseline=False)
    assert len(computed) == 90 and len(set(computed)) == 90  # train, val and test, each once
    computed.clear()
    second = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="probe", seed=1, engine="torch",
                           cache_dir=tmp_path, baseline=False)
    assert computed == []  # another split of the same items: all read from the cache
    assert headstart.prepare(learnable_csv, seed=1).splits != headstart.prepare(learnable_csv, seed=0).splits
    assert second.metrics["accuracy"] >= 0.7 and first.metrics["accuracy"] >= 0.7


def test_predict_reads_unlabeled_data(probe_run, tmp_path):
    model, folder = probe_run
    path = tmp_path / "new.csv"
    path.write_text("id,text\n1,the coach and the team win the match\n2,spicy pasta with cheese\n", encoding="utf-8")
    dataset, proba = headstart.predict(folder, path)
    assert dataset.labels is None and len(dataset) == 2
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba, model.predict_proba(dataset.items), atol=1e-6)
    with pytest.raises(DataError, match="the model reads text"):
        images = tmp_path / "pool"
        images.mkdir()
        from PIL import Image
        Image.new("RGB", (8, 8)).save(images / "a.png")
        headstart.predict(model, images)


def test_auto_keeps_the_probe_when_fine_tuning_does_not_beat_it(learnable_csv, tiny_bert_name, monkeypatch):
    """A fine-tune that scrambles the encoder and never beats the probe on validation: ``auto``
    restores the pretrained weights and gives the same model as ``mode="probe"``."""
    real = trainer.finetune

    def failing_finetune(backbone, *args, **kwargs):
        classifier, history = real(backbone, *args, **kwargs)
        with torch.no_grad():
            for parameter in backbone.module.parameters():
                parameter.normal_()
        return classifier, [dict(row, val_accuracy=0.0) for row in history]

    monkeypatch.setattr(trainer, "finetune", failing_finetune)
    config = headstart.FinetuneConfig(epochs=1, strategy="staged")
    auto = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="auto", engine="torch", seed=0,
                         finetune_config=config, baseline=False)
    assert auto.finetuned is False and auto.info["config"]["mode"] == "probe"
    assert auto.info["config"]["auto"].startswith("kept the probe")
    probe = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="probe", engine="torch", seed=0,
                          baseline=False)
    assert auto.backbone.fingerprint() == probe.backbone.fingerprint()  # pretrained weights restored
    np.testing.assert_allclose(auto.predict_proba(["the team won"], engine="torch"),
                               probe.predict_proba(["the team won"], engine="torch"), atol=1e-5)
    # An explicit fine-tune is kept whatever validation says.
    tuned = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="finetune", engine="torch", seed=0,
                          finetune_config=config, baseline=False)
    assert tuned.finetuned is True and "auto" not in tuned.info["config"]

"""Self-training of a fine-tune: which pool items join the labels, with which labels, and when."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import headstart
from headstart.backbones import create_backbone
from headstart.data.dataset import Dataset
from headstart.learn import pseudo_label_tuning, trainer
from headstart.learn.config import FinetuneConfig

CLASSES = ["a", "b", "c"]


def _dataset(n: int, prefix: str, labels=None) -> Dataset:
    return Dataset("image", [f"{prefix}{i}.png" for i in range(n)], [f"{prefix}-hash-{i}" for i in range(n)],
                   labels=labels, source=prefix)


def test_the_surest_items_of_each_class_join_with_the_teachers_labels(monkeypatch):
    monkeypatch.setattr(pseudo_label_tuning, "PSEUDO_LABELS", 6)  # 2 a class
    train = _dataset(3, "labeled", labels=["a", "b", "c"])
    proba = np.array([
        [0.90, 0.05, 0.05], [0.80, 0.10, 0.10], [0.70, 0.20, 0.10], [0.60, 0.30, 0.10],  # class a: 4 items
        [0.10, 0.85, 0.05], [0.30, 0.40, 0.30],  # class b: 2 items, half is 1
        [0.05, 0.05, 0.90], [0.10, 0.10, 0.80], [0.20, 0.10, 0.70], [0.30, 0.10, 0.60],  # class c: 4 items
    ])
    pool = _dataset(len(proba), "pool")
    joined, record = pseudo_label_tuning.with_pseudo_labels(train, pool, proba, CLASSES)
    assert joined.items[:3] == train.items and joined.labels[:3] == train.labels
    pseudo = dict(zip(joined.items[3:], joined.labels[3:]))
    # 2 a class at most, and at most the confident half of the class: b gives 1
    assert pseudo == {"pool0.png": "a", "pool1.png": "a", "pool4.png": "b", "pool6.png": "c", "pool7.png": "c"}
    assert record["per_class"] == {"a": 2, "b": 1, "c": 2} and record["items"] == 5
    assert record["lowest_confidence"] == pytest.approx(0.8)
    assert joined.splits is None


def test_a_split_training_set_keeps_its_split_column():
    train = replace(_dataset(2, "labeled", labels=["a", "b"]), splits=["train", "train"])
    joined, _ = pseudo_label_tuning.with_pseudo_labels(train, _dataset(4, "pool"), np.eye(3)[[0, 1, 2, 0]], CLASSES)
    assert joined.splits == ["train"] * len(joined)


def test_it_applies_to_few_labels_tuned_in_stages_or_on_text_pairs_with_a_pool():
    pool = _dataset(10, "pool")
    assert pseudo_label_tuning.applies("image", "staged", 150, pool)
    assert pseudo_label_tuning.applies("text", "contrastive", 150, pool)
    assert not pseudo_label_tuning.applies("text", "staged", 150, pool)  # text in stages: not measured
    assert not pseudo_label_tuning.applies("image", "staged", 150, None)
    assert not pseudo_label_tuning.applies("image", "staged", 150, _dataset(0, "empty"))
    assert not pseudo_label_tuning.applies("image", "staged", pseudo_label_tuning.PSEUDO_LABELS, pool)


@pytest.mark.parametrize("mode", ["finetune", "auto"])
def test_the_fine_tune_learns_the_pool_probes_labels_and_is_judged_on_real_labels(mode, tmp_path, write_images,
                                                                                 monkeypatch):
    """The staged fine-tune receives the labels plus pool items labeled by the probe trained on the
    pool; validation and the pool's own training of the head still see the real splits only."""
    data = headstart.prepare(write_images(tmp_path / "labeled", per_class=6, seed=1), seed=0)
    train_set, val_set = data.split("train"), data.split("val")
    pool = replace(headstart.prepare(write_images(tmp_path / "pool", per_class=8, seed=2), seed=0), labels=None,
                   splits=None)
    true_pool_labels = [path.split("/")[-2] for path in pool.items]
    seen = {}
    staged = trainer.FINETUNE_STRATEGIES["staged"]

    def watched(splits, config, start):
        seen["train"], seen["val"], seen["epochs"] = splits.train, splits.val, config.epochs
        return staged(splits, config, start)

    monkeypatch.setitem(trainer.FINETUNE_STRATEGIES, "staged", watched)
    backbone = create_backbone("effnet-lite0", pretrained=False, image_size=32)
    result = trainer.train(backbone, train_set, val_set, train_set.classes, mode=mode, engine="torch", pool=pool,
                           config=FinetuneConfig(min_steps=2, lr=1e-3), seed=0)
    record = result.config["pseudo_labels"]
    n_labeled = len(train_set)
    assert record["items"] > 0 and len(seen["train"]) == n_labeled + record["items"]
    assert seen["train"].items[:n_labeled] == train_set.items and seen["val"].items == val_set.items
    assert set(seen["train"].items[n_labeled:]) <= set(pool.items)
    # colours decide the class, so a probe that learned them labels the pool right
    pseudo = dict(zip(seen["train"].items[n_labeled:], seen["train"].labels[n_labeled:]))
    right = sum(pseudo[item] == label for item, label in zip(pool.items, true_pool_labels) if item in pseudo)
    assert right / len(pseudo) >= 0.8
    assert "unlabeled" in result.config  # the pool trained the heads too
    # the teacher's own use of the pool is on record (the kept model's head may have chosen otherwise)
    assert record["teacher_pool_method"] in ("none", "self-train", "propagation")


def test_contrastive_settings_keep_the_strategy_and_about_the_labels_steps():
    config = FinetuneConfig()
    joined = pseudo_label_tuning.settings(config, "contrastive", 160, 2160)
    assert joined.strategy == "contrastive" and config.strategy == "auto"  # the caller's settings untouched
    # 20 passes over 160 labels are about 1.5 over 2,160 items: two at least, so the judged run has one
    assert joined.epochs == pseudo_label_tuning.MIN_CONTRASTIVE_PASSES == 2
    assert pseudo_label_tuning.settings(config, "contrastive", 400, 1000).epochs == 8
    # a user's epochs count over the labels too: 30 over 400 labels are 12 over 1,000 items; one at least
    assert pseudo_label_tuning.settings(FinetuneConfig(epochs=30), "contrastive", 400, 1000).epochs == 12
    assert pseudo_label_tuning.settings(FinetuneConfig(epochs=5), "contrastive", 160, 2160).epochs == 1
    assert pseudo_label_tuning.settings(config, "staged", 160, 2160).epochs is None  # staged: sized by steps


def test_a_contrastive_text_fine_tune_learns_pseudo_labels_and_is_judged_on_real_labels(tmp_path, write_csv,
                                                                                      tiny_bert_name, monkeypatch):
    data = headstart.prepare(write_csv(tmp_path / "topics.csv", n_per_class=10, seed=2), seed=0)
    train_set, val_set = data.split("train"), data.split("val")
    pool = replace(data.split("test"), labels=None, splits=None)
    seen = {}
    contrastive, teacher = trainer.FINETUNE_STRATEGIES["contrastive"], trainer._teacher
    backbone = create_backbone(tiny_bert_name)
    pretrained = {name: value.clone() for name, value in backbone.module.state_dict().items()}

    def watched(splits, config, start):  # the student: it starts from the pretrained encoder, not the teacher's
        seen["train"], seen["val"], seen["strategy"] = splits.train, splits.val, config.strategy
        seen["starts_pretrained"] = all(torch.equal(value, pretrained[name])
                                        for name, value in splits.backbone.module.state_dict().items())
        return contrastive(splits, config, start)

    def watched_teacher(splits, *args):
        made = teacher(splits, *args)
        seen["teacher_proba"], seen["teacher_tuned"] = made.pool_proba, made.tuned
        return made

    monkeypatch.setitem(trainer.FINETUNE_STRATEGIES, "contrastive", watched)
    monkeypatch.setattr(trainer, "_teacher", watched_teacher)
    result = trainer.train(backbone, train_set, val_set, data.classes, mode="finetune",
                           engine="torch", pool=pool, config=FinetuneConfig(strategy="contrastive", lr=1e-3))
    record, n_labeled = result.config["pseudo_labels"], len(train_set)
    # the teacher is the fine-tune on the labels alone, and its labels are the ones the student learns
    assert seen["teacher_tuned"] and record["teacher"] == "fine-tune" and seen["starts_pretrained"]
    pseudo = dict(zip(seen["train"].items[n_labeled:], seen["train"].labels[n_labeled:]))
    teacher_labels = dict(zip(pool.items, np.asarray(data.classes)[seen["teacher_proba"].argmax(1)]))
    assert all(teacher_labels[item] == label for item, label in pseudo.items())
    assert record["items"] > 0 and len(seen["train"]) == n_labeled + record["items"]
    assert seen["train"].items[:n_labeled] == train_set.items and seen["val"].items == val_set.items
    assert set(seen["train"].items[n_labeled:]) <= set(pool.items) and seen["strategy"] == "contrastive"
    assert result.config["finetune"]["epochs"] == pseudo_label_tuning.settings(
        FinetuneConfig(), "contrastive", n_labeled, len(seen["train"])).epochs


def test_text_fine_tunes_in_stages_take_no_pseudo_labels(tmp_path, write_csv, tiny_bert_name):
    data = headstart.prepare(write_csv(tmp_path / "topics.csv", n_per_class=10, seed=2), seed=0)
    pool = replace(data.split("test"), labels=None, splits=None)
    result = trainer.train(create_backbone(tiny_bert_name), data.split("train"), data.split("val"), data.classes,
                           mode="finetune", engine="torch", pool=pool,
                           config=FinetuneConfig(strategy="staged", epochs=1, lr=1e-3))
    assert "pseudo_labels" not in result.config


@pytest.mark.parametrize("winner", ["student", "teacher"])
def test_the_text_fine_tune_on_the_labels_alone_is_kept_when_it_beats_the_self_trained_one(
        tmp_path, write_csv, tiny_bert_name, monkeypatch, encoder_copies, winner):
    data = headstart.prepare(write_csv(tmp_path / "topics.csv", n_per_class=10, seed=2), seed=0)
    pool = replace(data.split("test"), labels=None, splits=None)
    teacher, scored = trainer._teacher, trainer.validation_accuracy
    seen = {}

    def watched_teacher(*args):
        seen["teacher"] = teacher(*args)
        seen["teacher_encoder"] = {name: value.clone() for name, value in seen["teacher"].weights.items()}
        return seen["teacher"]

    def validation(outcome, val_y):  # the comparison's result set here; the rest scored as usual
        if outcome is seen.get("teacher") and seen.get("teacher_scored") is None:
            seen["teacher_scored"] = True
            return 0.9 if winner == "teacher" else 0.1
        return scored(outcome, val_y)

    monkeypatch.setattr(trainer, "_teacher", watched_teacher)
    monkeypatch.setattr(trainer, "validation_accuracy", validation)
    backbone = create_backbone(tiny_bert_name)
    copies = encoder_copies(backbone)
    result = trainer.train(backbone, data.split("train"), data.split("val"), data.classes, mode="finetune",
                           engine="torch", pool=pool, refit=False,
                           config=FinetuneConfig(strategy="contrastive", lr=1e-3))
    record, kept = result.config["pseudo_labels"], seen["teacher"]
    assert record["kept"] == (winner == "student") and set(record["validation"]) == {"student", "teacher"}
    same_encoder = all(torch.equal(value, seen["teacher_encoder"][name])
                       for name, value in backbone.module.state_dict().items())
    # one copy of the pretrained encoder serves every step that goes back to it, one holds the teacher's
    assert len(copies) == 2
    if winner == "teacher":  # its encoder, head and settings, not the student's
        assert same_encoder and np.array_equal(result.head.weight, kept.head.weight)
        assert result.config["finetune"] == record["teacher_finetune"]
    else:  # the teacher's encoder is let go once the student wins
        assert kept.weights is None
        assert not same_encoder and not np.array_equal(result.head.weight, kept.head.weight)
        n_labeled = len(data.split("train"))
        assert result.config["finetune"]["epochs"] == pseudo_label_tuning.settings(
            FinetuneConfig(), "contrastive", n_labeled, n_labeled + record["items"]).epochs

"""The trainer: no strategy trains on validation items, auto's fallback rule, the final refit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import headstart
from headstart.backbones import create_backbone
from headstart.errors import HeadstartError
from headstart.learn import auto_choice, trainer
from headstart.learn.config import FinetuneConfig
from headstart.learn.probe import final_probe

# Selection pinned where it reads validation: few items (the probe's strength by cross-validation on
# the training split), one epoch (the only one kept), mode finetune (no fallback). What is left to
# differ between two runs is what was trained on.
PINNED = {
    "probe": None,
    "contrastive": FinetuneConfig(strategy="contrastive", pairs_per_item=4, lr=1e-3),
    "staged": FinetuneConfig(strategy="staged", epochs=1, lr=1e-3),
}


@pytest.fixture(scope="module")
def splits(tmp_path_factory, write_csv):
    path = write_csv(tmp_path_factory.mktemp("trainer") / "topics.csv", n_per_class=14, seed=5)
    data = headstart.prepare(path, seed=0)
    return data.split("train"), data.split("val")


def _flipped(val):
    """The validation split with every label moved to the next class."""
    classes = val.classes
    return replace(val, labels=[classes[(classes.index(label) + 1) % len(classes)] for label in val.labels])


def _run(name, tiny_bert_name, train_set, val_set):
    backbone = create_backbone(tiny_bert_name)
    mode = "probe" if name == "probe" else "finetune"
    result = trainer.train(backbone, train_set, val_set, train_set.classes, mode=mode, config=PINNED[name],
                           engine="torch", refit=False, seed=3)
    return result, {k: v.clone() for k, v in backbone.module.state_dict().items()}


@pytest.mark.parametrize("name", ["probe", "contrastive", "staged"])
def test_validation_labels_never_train(name, splits, tiny_bert_name):
    train_set, val_set = splits
    flipped = _flipped(val_set)
    assert all(a != b for a, b in zip(val_set.labels, flipped.labels))
    first, weights = _run(name, tiny_bert_name, train_set, val_set)
    second, flipped_weights = _run(name, tiny_bert_name, train_set, flipped)
    assert first.finetuned == (name != "probe")
    np.testing.assert_array_equal(first.head.weight, second.head.weight)
    np.testing.assert_array_equal(first.head.bias, second.head.bias)
    assert all(torch.equal(weights[k], flipped_weights[k]) for k in weights)
    # The validation scores did see the flip: validation was read, for scoring only.
    assert first.history[0]["val_accuracy"] != second.history[0]["val_accuracy"]


def test_fine_tuning_strategies_feed_only_training_items(splits, tiny_bert_name, monkeypatch):
    """Contrastive pairs are drawn from training texts; staged batches are training items."""
    train_set, val_set = splits
    paired: list[str] = []
    real_tune = trainer.contrastive_tune

    def recording_tune(backbone, items, *args, **kwargs):
        paired.extend(items)
        return real_tune(backbone, items, *args, **kwargs)

    monkeypatch.setattr(trainer, "contrastive_tune", recording_tune)
    trainer.train(create_backbone(tiny_bert_name), train_set, val_set, train_set.classes, mode="finetune",
                  config=PINNED["contrastive"], engine="torch", refit=False)
    assert sorted(paired) == sorted(train_set.items)

    backbone, batches = create_backbone(tiny_bert_name), []
    preprocess = backbone.preprocess

    def recording(items, *args, train=False, **kwargs):
        if train:
            batches.extend(items)
        return preprocess(items, *args, train=train, **kwargs)

    monkeypatch.setattr(backbone, "preprocess", recording)
    trainer.train(backbone, train_set, val_set, train_set.classes, mode="finetune", config=PINNED["staged"],
                  engine="torch")
    assert sorted(batches) == sorted(train_set.items)  # one epoch: every training item once, nothing else


@pytest.mark.parametrize("pairing", ["in_batch", "sampled"])
def test_the_final_refit_tunes_the_pretrained_encoder_on_every_label(splits, tiny_bert_name, monkeypatch, pairing):
    """Once auto has judged on validation, contrastive tuning is redone from the pretrained weights on
    pairs of train+validation texts; the validation figures reported are the held-out run's."""
    train_set, val_set = splits
    calls: list[tuple[list[str], dict]] = []
    real_tune = trainer.contrastive_tune

    def recording_tune(backbone, items, labels, config, **kwargs):
        calls.append((list(items), {k: v.clone() for k, v in backbone.module.state_dict().items()},
                      config.pairs_per_item if pairing == "sampled" else config.epochs))
        return real_tune(backbone, items, labels, config, **kwargs)

    monkeypatch.setattr(trainer, "contrastive_tune", recording_tune)
    config = FinetuneConfig(strategy="contrastive", pairing=pairing, pairs_per_item=12,
                            epochs=12 if pairing == "in_batch" else None, lr=1e-3)
    result = trainer.train(create_backbone(tiny_bert_name), train_set, val_set, train_set.classes, mode="auto",
                           config=config, engine="torch")
    assert result.finetuned and result.config["refit"] == "train+validation"
    (held_out, start, judged_pairs), (final, restart, final_pairs) = calls
    # the judged run is shorter: a quarter of the sampled pairs, half the in-batch passes
    assert (judged_pairs, final_pairs) == ((3, 12) if pairing == "sampled" else (6, 12))
    assert sorted(held_out) == sorted(train_set.items)
    assert sorted(final) == sorted(train_set.items + val_set.items)
    assert all(torch.equal(start[k], restart[k]) for k in start)  # both from the pretrained weights
    assert result.config["validation"]["finetuned"] == result.history[-1]["val_accuracy"]


def test_auto_keeps_the_fine_tune_unless_the_probe_is_ahead_beyond_noise():
    assert auto_choice.keeps_finetuned(0.80, 0.80, 500)
    assert auto_choice.keeps_finetuned(0.79, 0.80, 500)       # 1 point behind: within the noise (2.6 points)
    assert not auto_choice.keeps_finetuned(0.75, 0.80, 500)   # 5 points behind
    assert auto_choice.keeps_finetuned(0.50, 0.75, 4)         # one item of four tells nothing
    assert auto_choice.keeps_finetuned(0.75, 1.0, 4)          # nor does a perfect probe on four
    assert not auto_choice.keeps_finetuned(0.25, 1.0, 4)      # three of four does
    assert auto_choice.keeps_finetuned(0.0, 1.0, 0)           # nothing to judge on


def test_with_few_image_labels_and_no_pool_a_tie_keeps_the_probe():
    assert not auto_choice.favours_finetune("image", 200, 10, pool=False)   # 20 a class
    assert auto_choice.favours_finetune("image", 300, 10, pool=False)       # 30 a class
    assert auto_choice.favours_finetune("image", 200, 10, pool=True)        # the fine-tune learns the pool too
    assert auto_choice.favours_finetune("text", 20, 10, pool=False)
    # within the noise the favoured model stays; beyond it the one ahead, whichever is favoured
    assert not auto_choice.keeps_finetuned(0.65, 0.52, 23, favoured=False)  # 13 points ahead of 23 items: noise
    assert auto_choice.keeps_finetuned(0.65, 0.52, 23)
    assert auto_choice.keeps_finetuned(0.90, 0.50, 40, favoured=False)
    assert not auto_choice.keeps_finetuned(0.50, 0.90, 40)
    assert not auto_choice.keeps_finetuned(1.0, 0.0, 0, favoured=False)     # nothing to judge on


@pytest.fixture(scope="module")
def image_splits(tmp_path_factory, write_images):
    data = headstart.prepare(write_images(tmp_path_factory.mktemp("trainer-images") / "images", per_class=10), seed=0)
    return data.split("train"), data.split("val")


@pytest.mark.parametrize("modality", ["image", "text"])
def test_auto_breaks_a_validation_tie_by_modality_and_labels_a_class(modality, image_splits, splits,
                                                                    tiny_bert_name, monkeypatch):
    """A fine-tune that scores what the probe scores on validation (it moves the weights): with 10 images
    a class and no pool ``auto`` keeps the probe, and says why; with text it keeps the fine-tune."""
    train_set, val_set = image_splits if modality == "image" else splits
    backbone = (create_backbone("effnet-lite0", pretrained=False, image_size=32) if modality == "image"
                else create_backbone(tiny_bert_name))
    pretrained = {k: v.clone() for k, v in backbone.module.state_dict().items()}

    def tied(splits_, config, start):
        with torch.no_grad():
            next(splits_.backbone.module.parameters()).add_(1.0)
        return replace(start, tuned=True, history=[], record={"finetune": {"scripted": True}}, refit=None)

    monkeypatch.setitem(trainer.FINETUNE_STRATEGIES, "staged", tied)
    result = trainer.train(backbone, train_set, val_set, train_set.classes, mode="auto", engine="torch",
                           config=FinetuneConfig(strategy="staged"), refit=False)
    validation = result.config["validation"]
    assert validation["finetuned"] == validation["probe"]
    same_weights = all(torch.equal(pretrained[k], v) for k, v in backbone.module.state_dict().items())
    if modality == "image":
        assert not result.finetuned and same_weights
        assert "below 30 labels a class" in result.config["auto"]
    else:
        assert result.finetuned and not same_weights and "auto" not in result.config


def test_the_chosen_probe_is_refit_on_train_and_validation(splits, tiny_bert_name):
    train_set, val_set = splits
    backbone = create_backbone(tiny_bert_name)
    result = trainer.train(backbone, train_set, val_set, train_set.classes, mode="probe", engine="torch",
                           zero_shot_prior=False)  # with the prior: tests/learn/test_prior.py
    split = trainer.Splits(backbone, train_set, val_set, train_set.classes, engine="torch")
    expected, _ = final_probe(split.features(train_set), split.train_y, split.features(val_set), split.val_y,
                              len(train_set.classes), result.config["probe"]["C"])
    np.testing.assert_allclose(result.head.weight, expected.weight, atol=1e-6)
    assert result.config["mode"] == "probe" and not result.finetuned


def test_unknown_mode_and_strategy_are_clear_errors(splits, tiny_bert_name):
    train_set, val_set = splits
    backbone = create_backbone(tiny_bert_name)
    with pytest.raises(HeadstartError, match="--mode"):
        trainer.train(backbone, train_set, val_set, train_set.classes, mode="linear")
    with pytest.raises(HeadstartError, match="strategy"):
        trainer.train(backbone, train_set, val_set, train_set.classes, mode="finetune",
                      config=FinetuneConfig(strategy="magic"), engine="torch")


def test_with_a_pool_auto_compares_the_two_models_as_they_ship(splits, tiny_bert_name, monkeypatch):
    """The probe learns from the pool before the fine-tune and the two are judged after both did: a
    probe that only the pool lifts above the fine-tune is kept, and the backbone's pretrained weights
    come back."""
    train_set, val_set = splits
    pool = replace(train_set, labels=None)
    val_y = val_set.label_ids(train_set.classes)
    seen = []

    def scripted_pool(splits_, outcome, *args, **kwargs):  # the pool fixes every validation item of the probe only
        seen.append(outcome.tuned)
        right = np.eye(len(train_set.classes))[val_y]
        proba = right if not outcome.tuned else np.roll(right, 1, axis=1)
        return replace(outcome, val_proba=proba, record={**outcome.record, "unlabeled": {"method": "scripted"}})

    monkeypatch.setattr(trainer, "with_pool", scripted_pool)
    backbone = create_backbone(tiny_bert_name)
    pretrained = {k: v.clone() for k, v in backbone.module.state_dict().items()}
    result = trainer.train(backbone, train_set, val_set, train_set.classes, mode="auto", config=PINNED["staged"],
                           engine="torch", pool=pool, refit=False)
    assert seen == [False, True]  # the probe's pool first, on pretrained features
    validation = result.config["validation"]
    assert validation["probe_with_pool"] == 1.0 and validation["finetuned_with_pool"] == 0.0
    assert not result.finetuned and "with the unlabeled pool" in result.config["auto"]
    assert all(torch.equal(pretrained[k], v) for k, v in backbone.module.state_dict().items())


def test_with_a_pool_auto_judges_the_models_with_the_pool_and_keeps_the_probe_only_beyond_noise():
    pooled = {"probe": 0.9, "finetuned": 0.5}  # without the pool: the probe far ahead
    assert not auto_choice._auto_keeps_tuned(pooled, 50)
    assert auto_choice._auto_keeps_tuned({**pooled, "probe_with_pool": 0.70, "finetuned_with_pool": 0.70}, 50)
    # one item of 44 ahead is noise; the fine-tune stays
    assert auto_choice._auto_keeps_tuned({**pooled, "probe_with_pool": 29 / 44, "finetuned_with_pool": 28 / 44}, 44)
    assert not auto_choice._auto_keeps_tuned({**pooled, "probe_with_pool": 0.9, "finetuned_with_pool": 0.6}, 50)
    assert auto_choice._auto_keeps_tuned({**pooled, "probe_with_pool": 0.9, "finetuned_with_pool": 0.1}, 0)


@pytest.mark.parametrize("mode, strategy, copies", [("finetune", "staged", 0), ("auto", "staged", 1),
                                                    ("finetune", "contrastive", 1), ("probe", "staged", 0)])
def test_the_pretrained_weights_are_copied_only_where_a_step_goes_back_to_them(
        splits, tiny_bert_name, encoder_copies, mode, strategy, copies):
    train_set, val_set = splits
    backbone = create_backbone(tiny_bert_name)
    seen = encoder_copies(backbone)
    trainer.train(backbone, train_set, val_set, train_set.classes, mode=mode, config=PINNED[strategy],
                  engine="torch", seed=3)
    assert len(seen) == copies

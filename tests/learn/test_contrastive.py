"""Contrastive tuning: cached tokens, in-batch pairs, sampled pairs encoded once, frozen embeddings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import headstart
from headstart.backbones import create_backbone
from headstart.learn.config import CONTRASTIVE_PASSES, CONTRASTIVE_STEPS, FinetuneConfig
from headstart.learn.contrastive import (contrastive_tune, in_batch_pair_loss, sampled_steps, step_loss,
                                         text_batches)
from headstart.learn.token_cache import TokenCache

TEXTS = ["the cat sat", "a much longer sentence about dogs and cats and birds", "x", "",
         "birds sing in the morning light", "the cat sat"]


@pytest.fixture(scope="module")
def topics(tmp_path_factory, write_csv):
    path = write_csv(tmp_path_factory.mktemp("contrastive") / "topics.csv", n_per_class=8, seed=4)
    train = headstart.prepare(path, seed=0).split("train")
    return train.items, train.label_ids(train.classes)


def test_cached_tokens_are_what_preprocess_gives_and_embed_the_same(tiny_bert_backbone):
    cache = TokenCache(tiny_bert_backbone, TEXTS)
    for indices in ([0, 1, 2], [3, 2], [4, 0, 5, 1]):
        expected = tiny_bert_backbone.preprocess([TEXTS[i] for i in indices])
        got = cache.batch(indices)
        for name in ("input_ids", "attention_mask"):
            assert torch.equal(got[name], expected[name])  # padded to this batch's longest, not further
        with torch.no_grad():
            torch.testing.assert_close(tiny_bert_backbone.module(**got), tiny_bert_backbone.module(**expected))
    assert cache.longest == cache.batch(range(len(TEXTS)))["input_ids"].shape[1]


def test_text_batches_cover_every_text_once_with_classmates_in_each_batch():
    labels = np.repeat(np.arange(5), 7)  # 35 texts, 5 classes
    batches = text_batches(labels, 16, np.random.default_rng(0))
    seen = np.concatenate(batches)
    assert sorted(seen) == list(range(len(labels)))
    assert all(2 <= len(b) <= 16 for b in batches)
    assert all(len(np.unique(labels[b])) < len(b) for b in batches)  # a same-class pair in every batch
    small = text_batches(np.array([0, 1, 0, 1, 1]), 16, np.random.default_rng(1))
    assert len(small) == 1 and sorted(small[0]) == [0, 1, 2, 3, 4]  # fewer texts than a batch: one batch
    assert not any(len(b) < 2 for b in text_batches(np.arange(9) % 3, 4, np.random.default_rng(2)))


def test_in_batch_loss_weighs_same_and_other_class_pairs_half_each():
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # pairs: (0,1) same, cos 1; (2,3) same, cos .707; others differ: (0,2) 0, (0,3) .707, (1,2) 0, (1,3) .707
    c = 2 ** -0.5
    same = ((1 - 1) ** 2 + (c - 1) ** 2) / 2
    other = (0 + c ** 2 + 0 + c ** 2) / 4
    torch.testing.assert_close(in_batch_pair_loss(embeddings, labels), torch.tensor((same + other) / 2))
    perfect = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    assert in_batch_pair_loss(perfect, labels).item() == pytest.approx(0.0, abs=1e-6)
    one_kind = in_batch_pair_loss(embeddings[:2], labels[:2])  # only a same-class pair
    assert one_kind.item() == pytest.approx(0.0, abs=1e-6)


def test_sampled_pairs_encode_each_distinct_text_once_and_lose_the_same(tiny_bert_backbone, topics):
    items, labels = topics
    config = FinetuneConfig(pairing="sampled", pairs_per_item=6, batch_size=8, epochs=1)
    (steps,) = sampled_steps(labels, config, np.random.default_rng(0))
    cache = TokenCache(tiny_bert_backbone, items)
    with torch.no_grad():
        for texts, (first, second, target) in steps[:3]:
            assert len(np.unique(texts)) == len(texts)
            once = step_loss(tiny_bert_backbone.module(**cache.batch(texts)), (first, second, target), None)
            pairs = [items[i] for i in texts[first]] + [items[i] for i in texts[second]]
            each = tiny_bert_backbone.module(**tiny_bert_backbone.preprocess(pairs))
            similarity = torch.nn.functional.cosine_similarity(each[:len(first)], each[len(first):])
            torch.testing.assert_close(once, torch.nn.functional.mse_loss(similarity, target))


@pytest.mark.parametrize("pairing", ["in_batch", "sampled"])
def test_in_batch_tuning_trains_the_unfrozen_groups_only_and_pulls_classmates_together(tiny_bert_name, topics, pairing):
    items, labels = topics
    backbone = create_backbone(tiny_bert_name)
    config = FinetuneConfig(strategy="contrastive", pairing=pairing, lr=1e-3, min_steps=20, pairs_per_item=16)
    config = config.resolved(backbone, len(items), int(labels.max()) + 1)
    groups = backbone.layer_groups()
    assert config.unfreeze == len(groups) - 1  # all but the embeddings
    before = {name: p.detach().clone() for name, p in backbone.module.named_parameters()}
    cache = TokenCache(backbone, items)
    everything = np.arange(len(items))
    with torch.no_grad():
        loss_before = in_batch_pair_loss(backbone.module(**cache.batch(everything)), torch.from_numpy(labels))
    history = contrastive_tune(backbone, items, labels, config, seed=0)
    with torch.no_grad():
        loss_after = in_batch_pair_loss(backbone.module(**cache.batch(everything)), torch.from_numpy(labels))
    assert loss_after < loss_before and len(history) == config.epochs
    embeddings = {id(p) for p in groups[0].parameters()}
    for name, parameter in backbone.module.named_parameters():
        unchanged = torch.equal(parameter, before[name])
        if id(parameter) in embeddings:
            assert unchanged == (pairing == "in_batch"), name  # sampled pairs train the whole encoder
        assert not parameter.requires_grad  # left frozen for feature extraction
    assert any(not torch.equal(p, before[n]) for n, p in backbone.module.named_parameters())


def test_in_batch_epochs_aim_at_the_step_and_pass_counts_and_the_judged_run_is_half():
    backbone = create_backbone_stub(groups=4)
    small = FinetuneConfig(strategy="contrastive", pairing="in_batch").resolved(backbone, 12, 2)  # one batch an epoch
    assert (small.pairing, small.epochs, small.held_out_epochs) == ("in_batch", CONTRASTIVE_STEPS, CONTRASTIVE_STEPS // 2)
    assert CONTRASTIVE_STEPS > CONTRASTIVE_PASSES  # few texts: the step count decides
    many_steps = FinetuneConfig(strategy="contrastive", min_steps=500).resolved(backbone, 12, 2)
    assert many_steps.epochs == 100  # at most 100 passes
    large = FinetuneConfig(strategy="contrastive").resolved(backbone, 160, 2)  # ten an epoch; in-batch by default
    assert large.pairing == "in_batch"
    assert large.epochs == max(math.ceil(CONTRASTIVE_STEPS / 10), CONTRASTIVE_PASSES) == CONTRASTIVE_PASSES
    assert large.held_out_epochs == large.epochs // 2
    sampled = FinetuneConfig(strategy="contrastive", pairing="sampled").resolved(backbone, 160, 2)
    assert sampled.epochs == 1 and sampled.held_out_pairs_per_item == 10
    with pytest.raises(headstart.errors.HeadstartError, match="pairing"):
        FinetuneConfig(strategy="contrastive", pairing="every").resolved(backbone, 12, 2)


def create_backbone_stub(groups: int):
    """What FinetuneConfig.resolved reads of a text backbone: its modality and layer groups."""
    class Stub:
        modality = "text"

        def layer_groups(self):
            return [torch.nn.Linear(1, 1) for _ in range(groups)]

    return Stub()

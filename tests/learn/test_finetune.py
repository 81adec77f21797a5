"""Staged fine-tuning: the unfreezing schedule, resolved defaults, what trains, history, early stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import headstart
from headstart.backbones import create_backbone
from headstart.features.extract import compute_features
from headstart.learn import finetune as finetune_module
from headstart.errors import HeadstartError
from headstart.learn.config import CONTRASTIVE_PASSES, CONTRASTIVE_STEPS, FinetuneConfig
from headstart.learn.finetune import finetune as finetune_resolved
from headstart.learn.finetune import first_annealed_epoch, groups_unfrozen, predict_logits
from headstart.learn.head import LinearHead
from headstart.learn.probe import fit_probe


def finetune(backbone, train, val, classes, head, config, **options):
    """Fine-tune with ``config`` resolved first, as the trainer does; returns the resolved config too."""
    resolved = config.resolved(backbone, len(train), len(classes))
    model, history = finetune_resolved(backbone, train, val, classes, head, resolved, **options)
    return model, history, resolved


# -- the schedule ----------------------------------------------------------------------------------

@pytest.mark.parametrize("total, stages, fraction, expected", [
    (10, 2, 0.4, [1, 1, 2, 2, 2, 2, 2, 2, 2, 2]),       # stages of 2 steps over the first 4
    (12, 3, 0.5, [1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3]),
    (6, 1, 0.5, [1] * 6),
    (10, 4, 0.0, [4] * 10),                             # fraction 0: everything from the start
    (3, 6, 0.3, [6, 6, 6]),                             # stages shorter than a step: all at once
])
def test_groups_unfrozen_schedule(total, stages, fraction, expected):
    assert [groups_unfrozen(step, total, stages, fraction) for step in range(total)] == expected


def test_groups_unfrozen_is_monotone_and_reaches_all_stages_within_the_fraction():
    for total in (5, 40, 333):
        for stages in range(1, 8):
            for fraction in (0.1, 0.3, 1.0):
                counts = [groups_unfrozen(step, total, stages, fraction) for step in range(total)]
                assert counts == sorted(counts) and counts[0] >= 1
                assert counts[min(total - 1, int(fraction * total))] == stages


@pytest.mark.parametrize("epochs, steps_per_epoch, expected", [
    (10, 141, 6),   # Fashion-MNIST's 4,500 images: the rate is below half its peak from step 747
    (3, 4210, 2),   # SST-2's full train split: epochs 2 and 3 may be kept
    (2, 1, 2),
    (1, 5, 1),      # a single epoch is always kept
    (12, 1, 8),
])
def test_first_annealed_epoch(epochs, steps_per_epoch, expected):
    assert first_annealed_epoch(epochs, steps_per_epoch) == expected


def test_first_annealed_epoch_is_past_the_midpoint_and_never_past_the_end():
    for epochs in range(1, 31):
        for steps_per_epoch in (1, 3, 50):
            first = first_annealed_epoch(epochs, steps_per_epoch)
            assert 1 <= first <= epochs and first >= epochs / 2


# -- resolved defaults -----------------------------------------------------------------------------

def test_resolved_defaults_for_text(tiny_bert_backbone):
    config = FinetuneConfig(strategy="staged")
    resolved = config.resolved(tiny_bert_backbone, 64, 3)  # 3 groups; 2 steps an epoch
    assert resolved is not config and config.epochs is None and config.lr is None  # the original is untouched
    assert resolved.unfreeze == 2  # all but the embeddings
    assert resolved.epochs == 30  # ceil(150 / 2) steps, capped at 30
    assert resolved.lr == 5e-5 and resolved.batch_size == 16 and resolved.batchnorm == "frozen"
    assert resolved.min_steps == 150 and resolved.patience == 30 // 4 + 1  # a quarter of the epochs
    big = FinetuneConfig(batch_size=32).resolved(tiny_bert_backbone, 3200, 3)  # 100 steps an epoch
    assert big.epochs == 3 and big.patience == 2 and big.lr == 1e-4  # more text, a higher rate
    assert FinetuneConfig(batch_size=32, strategy="staged").resolved(tiny_bert_backbone, 32 * 15, 3).epochs == 10
    # Explicit settings are kept; unfreeze is clipped to the groups there are.
    explicit = FinetuneConfig(epochs=4, lr=3e-3, unfreeze=99, patience=1).resolved(tiny_bert_backbone, 64, 3)
    assert (explicit.epochs, explicit.lr, explicit.unfreeze, explicit.patience) == (4, 3e-3, 3, 1)
    assert FinetuneConfig(unfreeze=0).resolved(tiny_bert_backbone, 64, 3).unfreeze == 1
    # strategy "auto": contrastive pairs for few text items a class (in-batch pairs, epochs enough
    # for the step count, at 2e-5 by default), staged cross-entropy otherwise
    few = FinetuneConfig().resolved(tiny_bert_backbone, 64, 3)  # 4 batches of 16 an epoch
    assert (few.strategy, few.pairing, few.lr) == ("contrastive", "in_batch", 2e-5)
    epochs = max(math.ceil(CONTRASTIVE_STEPS / 4), CONTRASTIVE_PASSES)
    assert (few.epochs, few.held_out_epochs) == (epochs, epochs // 2)
    sampled = FinetuneConfig(pairing="sampled").resolved(tiny_bert_backbone, 64, 3)
    assert sampled.epochs == 1  # one pass over the sampled pairs
    assert big.strategy == "staged"
    with pytest.raises(HeadstartError, match="strategy"):
        FinetuneConfig(strategy="magic").resolved(tiny_bert_backbone, 64, 3)


def test_resolved_defaults_for_images():
    backbone = create_backbone("effnet-lite0", pretrained=False, image_size=32)
    groups = len(backbone.layer_groups())
    assert groups == 6  # stem, four chunks of blocks, head
    resolved = FinetuneConfig().resolved(backbone, 40, 4)
    assert resolved.unfreeze == 3  # the top half of an image model's groups
    assert resolved.lr == 1e-3 and resolved.batch_size == 32
    assert resolved.batchnorm == "adapt"  # images unlike the pretraining ones need their own statistics
    assert resolved.min_steps == 1650 and resolved.epochs == 30 and resolved.patience == 8
    # 4,500 images: 141 steps an epoch, 12 epochs for 1,650 steps, patience 3
    tuned = FinetuneConfig().resolved(backbone, 4500, 10)
    assert tuned.epochs == 12 and tuned.patience == 3
    assert FinetuneConfig().resolved(backbone, 3890, 10).epochs == 14
    with pytest.raises(HeadstartError, match="batchnorm"):
        FinetuneConfig(batchnorm="magic").resolved(backbone, 40, 4)
    assert resolved.strategy == "staged"  # contrastive pairs are for text


# -- fine-tuning the tiny BERT -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def topics(tmp_path_factory, tiny_bert_name, write_csv):
    """Train/val splits of the learnable CSV and a probe head on the tiny BERT's features."""
    path = write_csv(tmp_path_factory.mktemp("finetune") / "topics.csv", n_per_class=12, seed=3)
    data = headstart.prepare(path, seed=0)
    train, val = data.split("train"), data.split("val")
    classes = train.classes
    backbone = create_backbone(tiny_bert_name)
    head, _ = fit_probe(compute_features(backbone, train.items, engine="torch"), train.label_ids(classes),
                        compute_features(backbone, val.items, engine="torch"), val.label_ids(classes),
                        len(classes))
    return train, val, classes, head


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, module: nn.Module) -> bool:
    after = module.state_dict()
    return any(not torch.equal(before[k], after[k]) for k in before)


def _kept_row(history: list[dict], n_val: int) -> dict:
    """The epoch the fine-tune keeps: the last annealed one within a standard error of the best
    annealed accuracy up to it."""
    best, kept = -1.0, None
    for row in history:
        if row["annealed"]:
            best = max(best, row["val_accuracy"])
            if row["val_accuracy"] >= best - math.sqrt(best * (1 - best) / n_val):
                kept = row
    assert [row["kept"] for row in history] == [row is kept for row in history]
    return kept


def _val_scores(model, backbone, val, classes) -> tuple[float, float]:
    logits = predict_logits(model, backbone, val.items)
    y = val.label_ids(classes)
    loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)))
    return float((logits.argmax(1) == y).mean()), loss


def test_finetune_trains_the_top_groups_and_keeps_the_best_epoch(topics, tiny_bert_name):
    train, val, classes, head = topics
    backbone = create_backbone(tiny_bert_name)
    embeddings, lower, top = backbone.layer_groups()
    before = {name: _snapshot(group) for name, group in (("embeddings", embeddings), ("lower", lower),
                                                          ("top", top))}
    model, history, resolved = finetune(backbone, train, val, classes, head,
                                        FinetuneConfig(epochs=2, lr=1e-3, patience=5, unfreeze_fraction=1.0),
                                        seed=0)
    assert resolved.epochs == 2 and resolved.unfreeze == 2
    # Two stages over all the steps: the top group alone in epoch 1, the top two in epoch 2.
    assert [row["epoch"] for row in history] == [1, 2]
    assert [row["groups_trained"] for row in history] == [1, 2]
    for row in history:
        assert 0.0 <= row["val_accuracy"] <= 1.0 and np.isfinite(row["val_loss"])
        assert np.isfinite(row["train_loss"]) and row["lr"] >= 0 and row["seconds"] >= 0
    # The features module is the backbone's own module, fine-tuned in place.
    assert model.features is backbone.module
    assert not _changed(before["embeddings"], embeddings)  # never unfrozen
    assert _changed(before["top"], top)  # trained in both epochs
    # The second group trains only in epoch 2, so it moved exactly when epoch 2 is the one kept.
    best = _kept_row(history, len(val))
    assert _changed(before["lower"], lower) == (best["epoch"] == 2)
    # The returned model scores what the kept epoch scored.
    accuracy, loss = _val_scores(model, backbone, val, classes)
    assert accuracy == pytest.approx(best["val_accuracy"], abs=1e-9)
    assert loss == pytest.approx(best["val_loss"], abs=1e-4)
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training


def _validation_scripted(monkeypatch, val, classes, script):
    """Make the validation after epoch e score as ``script(e)`` says: "real" logits, every item
    confidently "right" or "wrong", or an int k: the first k items right, the others wrong.
    Returns the weights seen at each scoring."""
    real = finetune_module.predict_logits
    val_y = val.label_ids(classes)
    states = []

    def scored(model, backbone_, items, batch_size=64, split=None, device=None):
        logits = real(model, backbone_, items, batch_size, split, device)
        states.append(_snapshot(model))
        kind = script(len(states))
        if kind == "real":
            return logits
        right = np.arange(len(val_y)) < (kind if isinstance(kind, int) else len(val_y) * (kind == "right"))
        scripted = np.full_like(logits, -8.0)
        scripted[np.arange(len(val_y)), np.where(right, val_y, (val_y + 1) % logits.shape[1])] = 8.0
        return scripted

    monkeypatch.setattr(finetune_module, "predict_logits", scored)
    return states


def test_early_stopping_restores_the_best_annealed_epoch(topics, tiny_bert_name, monkeypatch):
    """An epoch of the schedule's first half is never kept, however well it scores; among the
    annealed ones the best is restored, and patience stops the run."""
    train, val, classes, head = topics
    backbone = create_backbone(tiny_bert_name)
    config = FinetuneConfig(epochs=8, lr=1e-3, unfreeze=2, patience=1, batch_size=16)
    kept = first_annealed_epoch(8, math.ceil(len(train) / 16))
    assert kept > 2
    states = _validation_scripted(monkeypatch, val, classes,
                                  lambda epoch: "right" if epoch == 1 else "real" if epoch == kept else "wrong")
    model, history, _ = finetune(backbone, train, val, classes, head, config, seed=0)
    assert history[0]["val_accuracy"] == 1.0 and not history[0]["annealed"]  # mid-schedule luck
    assert [row["annealed"] for row in history] == [row["epoch"] >= kept for row in history]
    assert len(history) == kept + 1  # the annealed epoch after it was worse, and patience is 1
    final = model.state_dict()
    assert all(torch.equal(final[k], states[kept - 1][k]) for k in final)
    assert any(not torch.equal(states[0][k], final[k]) for k in final)  # not epoch 1's weights
    monkeypatch.undo()
    accuracy, loss = _val_scores(model, backbone, val, classes)
    assert accuracy == pytest.approx(history[kept - 1]["val_accuracy"], abs=1e-9)
    assert loss == pytest.approx(history[kept - 1]["val_loss"], abs=1e-4)


def test_a_later_epoch_within_a_standard_error_of_the_best_is_kept(topics, tiny_bert_name, monkeypatch):
    """On few validation items, a later annealed epoch that scores a little lower is kept (its lower
    learning rate is the better bet); epochs far behind count towards patience."""
    train, val, classes, head = topics
    n = len(val)
    first = first_annealed_epoch(10, math.ceil(len(train) / 16))
    # best 3 of 6 right, then 2 (within a standard error on 6 items: 0.20), then none, twice (far behind).
    assert n == 6 and 3 / 6 - 2 / 6 < math.sqrt(0.5 * 0.5 / 6) < 3 / 6
    scores = {first: 3, first + 1: 2, first + 2: 0, first + 3: 0}
    states = _validation_scripted(monkeypatch, val, classes, lambda epoch: scores.get(epoch, "wrong"))
    model, history, _ = finetune(create_backbone(tiny_bert_name), train, val, classes, head,
                                 FinetuneConfig(epochs=10, lr=1e-3, unfreeze=2, patience=2, batch_size=16), seed=0)
    assert [row["val_accuracy"] for row in history[first - 1:]] == [3 / 6, 2 / 6, 0, 0]
    assert [row["epoch"] for row in history if row["kept"]] == [first + 1]
    final = model.state_dict()
    assert all(torch.equal(final[k], states[first][k]) for k in final)


def test_patience_counts_annealed_epochs_only(topics, tiny_bert_name, monkeypatch):
    """Validation that falls behind the first annealed epoch and stays there stops training
    ``patience`` epochs later; the bad epochs before it use none of the patience, and a flat
    score, never behind, stops nothing."""
    train, val, classes, head = topics
    first = first_annealed_epoch(12, math.ceil(len(train) / 64))
    assert first > 3  # more bad epochs before it than the patience
    config = FinetuneConfig(epochs=12, lr=1e-4, unfreeze=1, patience=2, batch_size=64)
    for script, epochs in ((lambda epoch: "right" if epoch == first else "wrong", first + 2),
                           (lambda epoch: "wrong", 12)):
        _validation_scripted(monkeypatch, val, classes, script)
        _, history, _ = finetune(create_backbone(tiny_bert_name), train, val, classes, head, config, seed=0)
        assert len(history) == epochs
        monkeypatch.undo()


# -- images: batch-norm statistics of frozen groups ----------------------------------------------

def _batchnorm_stats(group: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{name}.{buffer}": getattr(module, buffer).clone()
            for name, module in group.named_modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)
            for buffer in ("running_mean", "running_var")}


def _calibrate_batchnorm(module: nn.Module, image_size: int) -> None:
    """Give a random-init network's batch-norm layers realistic running statistics (not 0 and 1), as a
    pretrained network has: then "unchanged" means something, and activations do not shrink to
    denormal floats (which makes CPU convolutions a hundred times slower)."""
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [layer.momentum for layer in layers]
    module.train()
    for layer in layers:
        layer.momentum = 1.0
    with torch.no_grad():
        module(torch.randn(8, 3, image_size, image_size, generator=torch.Generator().manual_seed(0)))
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    module.eval()


def _image_finetune(backbone, folder):
    _calibrate_batchnorm(backbone.module, backbone.image_size)
    data = headstart.prepare(folder, seed=0)
    train, val = data.split("train"), data.split("val")
    classes = train.classes
    head = LinearHead(np.zeros((len(classes), backbone.feature_dim), np.float32), np.zeros(len(classes), np.float32))
    groups = backbone.layer_groups()
    stats = [_batchnorm_stats(group) for group in groups]
    params = [_snapshot(group) for group in groups]
    _, history, resolved = finetune(backbone, train, val, classes, head,
                                    FinetuneConfig(epochs=2, unfreeze=2, batch_size=4, patience=5), seed=0)
    return groups, stats, params, history, resolved


def _assert_frozen_groups_kept(groups, stats, params, resolved):
    frozen = len(groups) - resolved.unfreeze
    assert frozen >= 1
    for group, before_stats, before_params in zip(groups[:frozen], stats[:frozen], params[:frozen]):
        after = _batchnorm_stats(group)
        assert before_stats, "a frozen group without batch-norm layers tests nothing"
        for key in before_stats:
            assert torch.equal(before_stats[key], after[key]), key
        assert not _changed(before_params, group)
    assert _changed(params[-1], groups[-1])  # the top group trained in both epochs


def test_adapting_batchnorm_statistics_follow_the_data_within_a_few_steps():
    """Layers pretrained with a slow momentum (EfficientNet-Lite's 0.01) would keep most of their old
    statistics through a short fine-tune; an adapting group's follow at ADAPT_MOMENTUM, a frozen one's stay."""
    from headstart.learn.finetune import ADAPT_MOMENTUM, _set_trainable

    bottom, top = nn.BatchNorm1d(4, momentum=0.01), nn.BatchNorm1d(4, momentum=0.01)
    model = nn.Sequential(bottom, top)
    _set_trainable(model, [bottom, top], n_top=1, batchnorm="adapt")
    assert top.training and not bottom.training
    assert top.momentum == ADAPT_MOMENTUM and bottom.momentum == 0.01
    shifted = torch.randn(256, 4, generator=torch.Generator().manual_seed(0)) + 3.0  # the old mean is 0
    for _ in range(30):  # 30 steps: 96% of the way at 0.1, 26% at 0.01
        model(shifted)
    assert torch.allclose(top.running_mean, shifted.mean(0), atol=0.2)  # the bottom, frozen, passes x through
    assert torch.equal(bottom.running_mean, torch.zeros(4))


@pytest.fixture
def small_image_folder(tmp_path, write_images):
    """Four 32x32 images a class: two train, one validation and one test image each."""
    return write_images(tmp_path / "images", per_class=4)


def test_frozen_batchnorm_statistics_are_kept_effnet(small_image_folder):
    from headstart.learn.finetune import ADAPT_MOMENTUM

    backbone = create_backbone("effnet-lite0", pretrained=False, image_size=32)
    momenta = [m.momentum for m in backbone.module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    groups, stats, params, history, resolved = _image_finetune(backbone, small_image_folder)
    assert len(history) == 2
    _assert_frozen_groups_kept(groups, stats, params, resolved)
    # the run raised the adapting layers' slow momentum, and put it back after
    assert min(momenta) < ADAPT_MOMENTUM
    assert [m.momentum for m in backbone.module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] == momenta


def test_frozen_batchnorm_statistics_are_kept_timm(small_image_folder):
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=32)
    groups, stats, params, history, resolved = _image_finetune(backbone, small_image_folder)
    _assert_frozen_groups_kept(groups, stats, params, resolved)


def test_image_finetune_with_one_seed_gives_the_same_weights_twice(small_image_folder):
    """Augmentation draws from its own per-batch seeds, not from the generator dropout uses in the
    other thread, so a run depends on its seed only."""
    runs = []
    for _ in range(2):
        backbone = create_backbone("effnet-lite0", pretrained=False, image_size=32)
        torch.manual_seed(123)  # same initial weights for both runs' fresh backbones
        for parameter in backbone.module.parameters():
            torch.nn.init.normal_(parameter, std=0.05)
        data = headstart.prepare(small_image_folder, seed=0)
        train, val = data.split("train"), data.split("val")
        head = LinearHead(np.zeros((len(train.classes), backbone.feature_dim), np.float32),
                          np.zeros(len(train.classes), np.float32))
        model, _, _ = finetune(backbone, train, val, train.classes, head,
                               FinetuneConfig(epochs=2, unfreeze=3, batch_size=2, patience=5), seed=7, engine="torch")
        runs.append(_snapshot(model))
    assert all(torch.equal(runs[0][name], runs[1][name]) for name in runs[0])


def test_text_finetune_with_one_seed_gives_the_same_weights_twice(topics, tiny_bert_name):
    train, val, classes, head = topics
    runs = []
    for _ in range(2):
        model, _, _ = finetune(create_backbone(tiny_bert_name), train, val, classes, head,
                               FinetuneConfig(epochs=2, lr=1e-3, patience=5, dropout=0.3), seed=5)
        runs.append(_snapshot(model))
    assert all(torch.equal(runs[0][name], runs[1][name]) for name in runs[0])


def test_contrastive_tuning_with_one_seed_gives_the_same_weights_twice(topics, tiny_bert_name):
    from headstart.learn.contrastive import contrastive_tune

    train, _, classes, _ = topics
    runs = []
    for seed in (5, 5, 6):
        backbone = create_backbone(tiny_bert_name)
        config = FinetuneConfig(pairs_per_item=4, lr=1e-3).resolved(backbone, len(train), len(classes))
        contrastive_tune(backbone, train.items, train.label_ids(classes), config, seed=seed)
        runs.append(_snapshot(backbone.module))
    same = [all(torch.equal(run[name], runs[0][name]) for name in runs[0]) for run in runs[1:]]
    assert same == [True, False]  # the same seed repeats; another seed draws other pairs


def test_training_augmentation_is_a_function_of_its_seed(small_image_folder):
    backbone = create_backbone("effnet-lite0", pretrained=False, image_size=32)
    paths = [str(p) for p in sorted(small_image_folder.rglob("*.png"))[:6]]
    first, again = (backbone.preprocess(paths, train=True, seed=3)["pixels"] for _ in range(2))
    other = backbone.preprocess(paths, train=True, seed=4)["pixels"]
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.dtype == torch.uint8 and first.shape == (6, 3, 32, 32)


def test_augmentation_flips_only_images_that_may_be_mirrored(tmp_path):
    from PIL import Image

    pixels = np.zeros((40, 40, 3), np.uint8)
    pixels[:, :20] = 255  # bright left half, dark right half
    Image.fromarray(pixels).save(tmp_path / "sided.png")

    def left_brighter(backbone, seed):
        image = backbone.preprocess([str(tmp_path / "sided.png")], train=True, seed=seed)["pixels"][0].float()
        return bool(image[..., :16].mean() > image[..., 16:].mean())

    for mirror, expected in ((True, {True, False}), (False, {True})):
        backbone = create_backbone("effnet-lite0", pretrained=False, image_size=32, mirror=mirror)
        assert {left_brighter(backbone, seed) for seed in range(30)} == expected

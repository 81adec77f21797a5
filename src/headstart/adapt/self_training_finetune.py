"""Self-training of a fine-tuned model: its backbone tuned again on the source and confident target items.

The head-level self-training of :mod:`headstart.adapt.self_training` refits the head on fixed
features; a model whose backbone was fine-tuned can learn the target's pseudo-labels in the backbone
too. One round, as the fine-tune is the expensive part: the model labels the target, the most
confident half of each predicted class joins the training split with those labels, and the fine-tune
runs again from the model's weights with its resolved settings, judged epoch by epoch on the source's
validation split as the first one was (Xie et al. 2020, "Self-training with noisy student": the
student learns from the teacher's labels with the augmentation the fine-tune applies to images).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from headstart.adapt.self_training import confident_items
from headstart.data.dataset import Dataset
from headstart.learn.config import FinetuneConfig
from headstart.learn.finetune import finetune
from headstart.learn.head import LinearHead
from headstart.learn.pseudo_label_tuning import joined
from headstart.model import Model

CONFIDENT_SHARE = 0.5  # of each predicted class's target items


def self_train_finetuned(model: Model, train_set: Dataset, val_set: Dataset, target: Dataset, settings: dict, *,
                         seed: int = 0, engine: str = "auto", cache_dir: str | Path | None = None) -> dict:
    """Fine-tune ``model`` (in place) on the training split and its confident target pseudo-labels.

    Args:
        model: a fine-tuned model.
        train_set: the labeled source training split.
        val_set: the labeled source validation split (the kept epoch is chosen on it).
        target: the unlabeled target.
        settings: the first fine-tune's resolved settings (the trainer's ``config["finetune"]``).
        seed: seeds the fine-tune.
        engine: where frozen forward passes run.
        cache_dir: the features cache.

    Returns:
        ``{"pseudo_labeled": n, "history": [...]}`` for the adaptation's record.
    """
    positions, labels = confident_items(model.predict_proba(target, engine=engine, cache_dir=cache_dir),
                                        CONFIDENT_SHARE)
    config = replace(FinetuneConfig(**settings), epochs=max(1, settings.get("epochs") or 1))
    with_pseudo = joined(train_set, target, positions, labels, model.classes)
    tuned, history = finetune(model.backbone, with_pseudo, val_set, model.classes, model.head, config,
                              seed=seed, engine=engine, cache_dir=cache_dir)
    model.head = LinearHead(tuned.head.weight.detach().numpy().copy(), tuned.head.bias.detach().numpy().copy())
    return {"pseudo_labeled": len(positions), "history": history}

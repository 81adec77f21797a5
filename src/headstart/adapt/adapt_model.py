"""Adapt a trained model to an unlabeled target: the method chosen or given, applied to the model itself.

Every method leaves an ordinary model: CORAL, the prior correction and self-training (alone or after
CORAL) give it a new head on the same features; AdaBN gives its backbone the target's batch-norm
statistics, moved so that the target lands where the source was, saved with its weights. Predicting, saving and exporting are then those of any model.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from headstart.adapt.adabn import align_batch_norm
from headstart.adapt.choose import Choice, DomainViews, choose, domain_auc
from headstart.adapt.label_shift import prior_corrected
from headstart.adapt.methods import DESCRIPTIONS, FEATURE_METHODS
from headstart.adapt.self_training import self_trained
from headstart.adapt.target import require_batch_norm
from headstart.data.dataset import Dataset
from headstart.learn.head import fit_head
from headstart.model import Model
from headstart.progress import say


def adapt_model(model: Model, train_set: Dataset, val_set: Dataset, target: Dataset, *, method: str = "auto",
                c: float = 1.0, finetune: dict | None = None, seed: int = 0, engine: str = "auto",
                cache_dir: str | Path | None = None) -> dict:
    """Adapt ``model`` to ``target`` in place and return what was done, for the model's info and report.

    Args:
        model: the model trained on the source (its head, and its backbone when AdaBN is applied, change).
        train_set: the labeled source training split.
        val_set: the labeled source validation split (``auto`` chooses on it).
        target: the unlabeled target items (see :func:`headstart.adapt.target.read_target`).
        method: ``auto`` or one of :data:`headstart.adapt.methods.METHODS`.
        c: the probe's regularization strength, for heads refitted here.
        finetune: the resolved settings of the model's fine-tune, when it was fine-tuned: ``self-train``
            asked for by name then tunes the backbone on the pseudo-labels too
            (:mod:`headstart.adapt.self_training_finetune`); ``auto`` judges the head-level version.
        seed: seeds the heads and the domain classifier.
        engine: where frozen forward passes run.
        cache_dir: the features cache.

    Returns:
        ``{"method", "requested", "reason", "description", "target_items", "domain_auc", ...}``.
    """
    require_batch_norm(method, model.backbone)
    classes = model.classes
    fit = partial(fit_head, n_classes=len(classes), c=c, seed=seed)
    features = partial(model.features, engine=engine, cache_dir=cache_dir)
    say(f"adapting to the target ({len(target)} items), --adapt {method}")
    views = DomainViews(features(train_set), train_set.label_ids(classes), features(val_set),
                        val_set.label_ids(classes), features(target))
    if method == "auto":
        choice = choose(fit, views, seed=seed)
    else:
        auc = domain_auc(np.vstack([views.train_x, views.val_x]), views.target_x, seed=seed)
        choice = Choice(method, f"{method}: as asked (--adapt {method})", auc)
    say(f"adaptation: {choice.reason}")
    record = {**choice.to_dict(), "requested": method, "description": DESCRIPTIONS[choice.method],
              "target_items": len(target), "target": target.source}
    if (choice.method == method == "self-train" and model.finetuned and finetune
            and finetune.get("strategy") == "staged"):
        from headstart.adapt.self_training_finetune import self_train_finetuned

        record.update(self_train_finetuned(model, train_set, val_set, target, finetune, seed=seed, engine=engine,
                                           cache_dir=cache_dir))
        return record
    if choice.method == "adabn":
        align_batch_norm(model.backbone, train_set.items + val_set.items, target.items)
    record.update(_apply(model, choice.method, fit, views))
    return record


def _apply(model: Model, method: str, fit, views: DomainViews) -> dict:
    """Change ``model`` by ``method``; returns what the record should add."""
    all_x, all_y = np.vstack([views.train_x, views.val_x]), np.concatenate([views.train_y, views.val_y])
    if method in ("coral", "coral-self-train"):
        model.head = FEATURE_METHODS[method](fit, all_x, all_y, views.target_x)
    elif method == "prior":
        model.head, priors = prior_corrected(model.head, views.target_x)
        return {"target_priors": dict(zip(model.classes, map(float, priors)))}
    elif method == "self-train":
        model.head = self_trained(fit, all_x, all_y, views.target_x, start=model.head)
    elif method == "adabn":  # the backbone's statistics were aligned: the head reads the target where it learned the source
        if not model.finetuned:
            # The head learned unmirrored features: a model tuned here averages mirror images, this one must not.
            model.backbone.mirror = False
            model.backbone_options["mirror"] = False
        model.finetuned = True  # the statistics differ from the registry's: the weights are saved
    return {}

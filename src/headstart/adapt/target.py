"""The unlabeled target of ``headstart fit --target``: read, checked and capped before any training."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from headstart.adapt.adabn import has_batch_norm
from headstart.adapt.methods import METHODS
from headstart.backbones.base import Backbone
from headstart.data.dataset import Dataset
from headstart.data.sources import read_dataset
from headstart.errors import DataError, HeadstartError, ModelError

CHOICES = ("auto", *METHODS)
MIN_TARGET_ITEMS = 30  # fewer, and neither a domain classifier's folds nor target statistics mean anything
MAX_TARGET_ITEMS = 5000  # a larger target is subsampled: statistics and pseudo-labels need no more


def check_adapt(method: str) -> None:
    """Raise a clear error naming the option and the choices unless ``method`` is one."""
    if method not in CHOICES:
        raise HeadstartError(f"unknown adaptation '{method}'", where="--adapt", fix=f"use one of {', '.join(CHOICES)}")


def read_target(target: str | Path | Dataset | None, method: str, modality: str, *, seed: int = 0,
                **columns) -> Dataset | None:
    """The target's items (labels, if any, are dropped: adaptation never sees them), or None without a target.

    Args:
        target: a CSV/TSV/JSONL file or image folder, or a Dataset; None for no target.
        method: the ``--adapt`` choice.
        modality: the source's, ``"text"`` or ``"image"``.
        seed: draws the subset of a target above :data:`MAX_TARGET_ITEMS` items.
        **columns: column names as for the source.

    Raises:
        DataError: a method but no target; a target that is empty, too small or of the other modality.
        ModelError: ``adabn`` for text (text backbones have layer norm, not batch norm).
    """
    check_adapt(method)
    if target is None:
        if method not in ("auto", "none"):
            raise DataError(f"--adapt {method} needs an unlabeled target", where="--target",
                            fix="give --target FILE (the data the model will meet), or leave --adapt out")
        return None
    dataset = target if isinstance(target, Dataset) else read_dataset(target, require_labels=False, **columns)
    where = dataset.source or str(target)
    if dataset.modality != modality:
        raise DataError(f"the target holds {dataset.modality}, the source {modality}", where=where,
                        fix="give a target of the same kind of items as the training data")
    if len(dataset) < MIN_TARGET_ITEMS:
        raise DataError(f"the target has {len(dataset)} items; adaptation needs at least {MIN_TARGET_ITEMS} "
                        f"to estimate anything", where=where, fix=f"give at least {MIN_TARGET_ITEMS} unlabeled items")
    if method == "adabn" and modality == "text":
        raise ModelError("adabn re-estimates batch-norm statistics, and text backbones have none", where="--adapt",
                         fix="choose coral, prior, self-train, coral-self-train or auto")
    keep = np.arange(len(dataset))
    if len(dataset) > MAX_TARGET_ITEMS:
        keep = np.sort(np.random.default_rng(seed).choice(len(dataset), MAX_TARGET_ITEMS, replace=False))
    return replace(dataset.subset(keep), labels=None, splits=None)


def require_batch_norm(method: str, backbone: Backbone) -> None:
    """Raise a ModelError when ``method`` is ``adabn`` and ``backbone`` has no batch norm (a ViT, say)."""
    if method == "adabn" and not has_batch_norm(backbone):
        raise ModelError(f"adabn re-estimates batch-norm statistics, and {backbone.name} has no batch norm",
                         where="--adapt", fix="choose coral, prior, self-train, coral-self-train or auto")

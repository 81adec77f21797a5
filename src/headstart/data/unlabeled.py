"""An unlabeled pool of the task's items, read for training beside the labels (``fit --unlabeled``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from headstart.data.dataset import Dataset
from headstart.data.sources import read_dataset
from headstart.errors import DataError


def read_unlabeled(source: str | Path | Dataset, modality: str, *, exclude=(), where: str = "--unlabeled",
                   **columns) -> Dataset:
    """The pool's items, labels (if any) dropped, without the items whose hash is in ``exclude``.

    Args:
        source: a CSV/TSV/JSONL file or image folder, or a Dataset.
        modality: the labeled data's, ``"text"`` or ``"image"``.
        exclude: content hashes to leave out (the labeled and test items: a pool that repeats them
            adds nothing, and a test item would make the test figure transductive).
        where: the option that gave it, for messages.
        **columns: column names as for the labeled data.

    Raises:
        DataError: a pool of the other modality, or one with no items (left).
    """
    dataset = source if isinstance(source, Dataset) else read_dataset(source, require_labels=False, **columns)
    name = dataset.source or str(source)
    if dataset.modality != modality:
        raise DataError(f"the unlabeled pool holds {dataset.modality}, the labeled data {modality}", where=name,
                        fix=f"give {where} items of the same kind as the training data")
    excluded = set(exclude)
    keep = [i for i, item_hash in enumerate(dataset.hashes) if item_hash not in excluded]
    if not keep:
        reason = "has no items" if len(dataset) == 0 else "holds only items of the labeled data"
        raise DataError(f"the unlabeled pool {reason}", where=name,
                        fix=f"give {where} a file or folder of unlabeled items of the task, or leave it out")
    return replace(dataset.subset(keep), labels=None, splits=None)

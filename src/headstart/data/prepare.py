"""Reading a labeled data set and giving every item a split: the first step of a fit and of each study."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from headstart.data.dataset import Dataset
from headstart.data.sources import read_dataset
from headstart.data.splits import assign_splits, concat
from headstart.errors import DataError


def read(data: str | Path | Dataset, **columns) -> Dataset:
    """A Dataset from a path (CSV, TSV, JSONL or image folder), or ``data`` itself."""
    return data if isinstance(data, Dataset) else read_dataset(data, **columns)


def prepare(data, *, test=None, val=None, ratios: Sequence[float] | None = None, seed: int = 0,
            **columns) -> Dataset:
    """Read the sources and give every item a split.

    A split column is respected, a separate validation or test file is used as such, and the rest
    is split stratified by ``ratios``.

    Args:
        data: a CSV/TSV/JSONL file or image folder (or a Dataset) with labels.
        test: a separate labeled file (or Dataset) for testing.
        val: a separate labeled file (or Dataset) for validation.
        ratios: train/val/test fractions (see :func:`headstart.data.splits.assign_splits`).
        seed: the same seed gives the same split.
        **columns: column names: ``text_column``, ``label_column``, ``split_column``, ``path_column``.

    Returns:
        One Dataset of every item, each with its split.

    Raises:
        DataError: both a split column and a separate validation file, or unreadable or unsplittable data.
    """
    dataset = read(data, **columns)
    if val is not None:
        val_set = read(val, **columns)
        if dataset.splits is not None:
            raise DataError("the data has a split column and a separate validation file was given",
                            where=dataset.source, fix="use one or the other")
        dataset = concat(replace(dataset, splits=["train"] * len(dataset)),
                         replace(val_set, splits=["val"] * len(val_set)))
    return assign_splits(dataset, ratios=ratios, seed=seed, test=None if test is None else read(test, **columns))

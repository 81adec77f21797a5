"""Train/val/test splits: keep the ones the data gives, or make stratified, seeded ones."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Sequence

import numpy as np

from headstart.data.dataset import Dataset
from headstart.errors import DataError

_SPLIT_FIX = "e.g. --split 0.7,0.2,0.1 for train,val,test, or --split 0.8,0.2,0 with a separate test file"
DEFAULT_RATIOS = (0.7, 0.2, 0.1)
# With a separate test file and no --split, validation only has to pick the kept epoch and the
# probe's strength: a few hundred items do that, and the rest train, which tests better than
# holding more out (benchmarks/README.md).
VAL_ITEMS_ENOUGH = 250
MIN_VAL_SHARE = 0.05


def default_val_share(n_items: int) -> float:
    """Validation's share of ``n_items`` labeled items when a separate test file is given and no ratios.

    It is 70:20 (2/9) up to VAL_ITEMS_ENOUGH validation items, then VAL_ITEMS_ENOUGH items, and
    never below MIN_VAL_SHARE.
    """
    share = DEFAULT_RATIOS[1] / (DEFAULT_RATIOS[0] + DEFAULT_RATIOS[1])
    if n_items * share <= VAL_ITEMS_ENOUGH:
        return share
    return max(MIN_VAL_SHARE, VAL_ITEMS_ENOUGH / n_items)


def assign_splits(dataset: Dataset, *, ratios: Sequence[float] | None = None, seed: int = 0,
                  test: Dataset | None = None) -> Dataset:
    """The labeled ``dataset`` with ``splits`` filled in; item order is unchanged.

    Args:
        dataset: labeled items. When ``dataset.splits`` is set it is kept; if it has no val rows,
            val is carved out of train (stratified, share val/(train+val) of ``ratios``).
        ratios: (train, val, test) fractions; train and val > 0, test >= 0, summing to 1. None:
            70/20/10, and with a separate test file :func:`default_val_share` for validation.
        seed: the same seed gives the same split.
        test: a separate labeled test set. The data is then split into train/val only and the
            test items are appended with split ``"test"`` (``source`` stays the training file).

    Every class gets at least one train and one val item (and one test item when the test
    fraction is above 0 and there is no separate test file); within a class the fractions
    are rounded to whole items.

    Raises:
        DataError: bad ratios (option ``--split``), no labels, fewer than two classes, a class too
            small to split, no train rows in a split column, or a val/test label never seen in train.
    """
    train_ratio, val_ratio, test_ratio = _check_ratios(DEFAULT_RATIOS if ratios is None else ratios)
    if dataset.labels is None:
        raise DataError("the data has no labels, so it cannot be split for training", where=dataset.source,
                        fix="add a label column (see --label-column) or put images in class subfolders")
    classes = dataset.classes
    if len(classes) < 2:
        raise DataError(f"only one class ({', '.join(repr(c) for c in classes)}) in the data; "
                        "a classifier needs at least two", where=dataset.source, fix="add items of another class")
    if test is not None:
        _check_test_set(dataset, test)
    val_share = val_ratio / (train_ratio + val_ratio)

    if dataset.splits is not None:
        splits = _complete_given_splits(dataset, val_share, seed, has_test_file=test is not None)
    elif test is not None:
        if ratios is None:
            val_share = default_val_share(len(dataset))
        splits = _stratified(dataset.labels, val_share, 0.0, seed, dataset.source)
    else:
        splits = _stratified(dataset.labels, val_ratio, test_ratio, seed, dataset.source)

    result = replace(dataset, splits=splits)
    if test is not None:
        result = concat(result, replace(test, splits=["test"] * len(test)))
    _check_seen_in_train(result)
    return result


def concat(first: Dataset, second: Dataset) -> Dataset:
    """Items of ``first`` followed by those of ``second``; ``source`` stays ``first.source``.

    ``labels``/``splits`` are None only when both are None; one None and one set is a ValueError.
    """
    if first.modality != second.modality:
        raise DataError(f"cannot combine {first.modality} data with {second.modality} data",
                        where=second.source, fix="give files of the same kind (both texts or both images)")

    def join(name: str) -> list[str] | None:
        a, b = getattr(first, name), getattr(second, name)
        if a is None and b is None:
            return None
        if a is None or b is None:
            raise ValueError(f"concat: Dataset.{name} is set on one dataset only")
        return a + b

    return Dataset(modality=first.modality, items=first.items + second.items,
                   hashes=first.hashes + second.hashes, labels=join("labels"), splits=join("splits"),
                   origins=first.origins + second.origins, source=first.source)


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """(train, val, test) as floats, or a DataError naming ``--split``."""
    shown = ",".join(str(r) for r in ratios) if isinstance(ratios, (list, tuple)) else repr(ratios)
    try:
        values = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        values = ()
    ok = (len(values) == 3 and all(math.isfinite(v) for v in values)
          and values[0] > 0 and values[1] > 0 and values[2] >= 0 and abs(sum(values) - 1) < 1e-6)
    if not ok:
        raise DataError(f"invalid split fractions {shown}: need three numbers train,val,test with train and "
                        "val above 0, test 0 or above, summing to 1", where="option --split", fix=_SPLIT_FIX)
    return values  # type: ignore[return-value]


def _check_test_set(dataset: Dataset, test: Dataset) -> None:
    """The separate test set must be labeled and of the same modality."""
    if test.labels is None:
        raise DataError("the test file has no labels", where=test.source,
                        fix="add a label column to the test file (same name as in the training file)")
    if test.modality != dataset.modality:
        raise DataError(f"the test file holds {test.modality} data but the training data is {dataset.modality}",
                        where=test.source, fix="give a test file of the same kind as the training file")


def _complete_given_splits(dataset: Dataset, val_share: float, seed: int, *, has_test_file: bool) -> list[str]:
    """The dataset's own splits, with val carved out of train when there are no val rows."""
    splits = list(dataset.splits)
    if has_test_file and "test" in splits:
        # Two sources of test rows would silently mix; make the user pick one.
        raise DataError("the split column marks test rows and a separate test file was also given",
                        where=dataset.source,
                        fix="drop the test rows from the split column, or leave out the test file")
    train_rows = [i for i, split in enumerate(splits) if split == "train"]
    if not train_rows:
        raise DataError("the split column has no train rows", where=dataset.source,
                        fix="mark the rows to learn from as 'train' in the split column")
    if "val" not in splits:
        carved = _stratified([dataset.labels[i] for i in train_rows], val_share, 0.0, seed, dataset.source,
                             fix="add val rows to the split column, or add train items to the classes named")
        for row, split in zip(train_rows, carved):
            splits[row] = split
    return splits


def _stratified(labels: list[str], val_ratio: float, test_ratio: float, seed: int, source: str,
                fix: str = "add items to the classes named, drop them, or give a split column") -> list[str]:
    """A split name per label: each class is shuffled with ``seed`` and cut by the fractions.

    We cut per class rather than with sklearn's ``train_test_split(stratify=...)``: that can leave
    a small class out of val/test entirely, or refuse when val has fewer items than there are classes.
    """
    counts = Counter(labels)
    minimum = 3 if test_ratio > 0 else 2
    small = [(label, counts[label]) for label in sorted(counts) if counts[label] < minimum]
    if small:
        listed = ", ".join(f"class '{label}' has {n} item{'s' if n != 1 else ''}" for label, n in small)
        needed = "train, val and test" if minimum == 3 else "train and val"
        raise DataError(f"too few items to split: {listed}; each class needs at least {minimum} "
                        f"(one each for {needed})", where=source, fix=fix)

    rng = np.random.default_rng(seed)
    splits = ["train"] * len(labels)
    members: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        members.setdefault(label, []).append(index)
    for label in sorted(members):  # sorted, so the random stream does not depend on row order of classes
        order = rng.permutation(members[label])
        n_val, n_test = _class_sizes(len(order), val_ratio, test_ratio)
        for index in order[:n_val]:
            splits[index] = "val"
        for index in order[n_val:n_val + n_test]:
            splits[index] = "test"
    return splits


def _class_sizes(n: int, val_ratio: float, test_ratio: float) -> tuple[int, int]:
    """(val, test) item counts for a class of ``n``: rounded fractions, at least 1 each, leaving 1+ for train."""
    half_up = lambda x: math.floor(x + 0.5)  # noqa: E731  (round() rounds 2.5 to 2)
    n_val = max(1, half_up(val_ratio * n))
    n_test = max(1, half_up(test_ratio * n)) if test_ratio > 0 else 0
    while n - n_val - n_test < 1:
        if n_val >= n_test and n_val > 1:
            n_val -= 1
        elif n_test > 1:
            n_test -= 1
        else:
            break  # unreachable: the caller checked n >= 2 (3 with a test split)
    return n_val, n_test


def _check_seen_in_train(dataset: Dataset) -> None:
    """Every val/test label must occur in train; the error names the first offending row."""
    train_classes = {label for label, split in zip(dataset.labels, dataset.splits) if split == "train"}
    for label, split, origin in zip(dataset.labels, dataset.splits, dataset.origins):
        if split != "train" and label not in train_classes:
            listed = ", ".join(f"'{c}'" for c in sorted(train_classes))
            raise DataError(f"{split} label '{label}' never occurs in the training data (training classes: {listed})",
                            where=origin, fix="fix the label, or add training items of this class")

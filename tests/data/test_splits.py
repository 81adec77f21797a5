"""assign_splits: stratified seeded splits, given split columns, separate test files, and their errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from headstart.data import TEXT, Dataset, assign_splits, read_dataset
from headstart.data.dataset import text_hash
from headstart.data.splits import concat
from headstart.errors import DataError


def make(labels: list[str], splits: list[str] | None = None, source: str = "train.csv") -> Dataset:
    items = [f"{source} item {i}" for i in range(len(labels))]
    return Dataset(modality=TEXT, items=items, hashes=[text_hash(t) for t in items], labels=list(labels),
                   splits=splits, origins=[f"{source} row {i + 2}" for i in range(len(labels))], source=source)


def counts(data: Dataset, split: str) -> Counter:
    return Counter(label for label, s in zip(data.labels, data.splits) if s == split)


def test_stratified_split_keeps_class_ratios():
    data = make(["a"] * 100 + ["b"] * 50 + ["c"] * 10)
    result = assign_splits(data, ratios=(0.7, 0.2, 0.1), seed=0)
    assert result.items == data.items  # order unchanged, only splits added
    assert counts(result, "train") == {"a": 70, "b": 35, "c": 7}
    assert counts(result, "val") == {"a": 20, "b": 10, "c": 2}
    assert counts(result, "test") == {"a": 10, "b": 5, "c": 1}


def test_every_class_gets_train_val_and_test():
    data = make(["big"] * 200 + ["tiny"] * 3)
    result = assign_splits(data, seed=1)
    for split in ("train", "val", "test"):
        assert counts(result, split)["tiny"] == 1


def test_seed_determinism():
    data = make(["a"] * 30 + ["b"] * 30)
    first = assign_splits(data, seed=7).splits
    assert assign_splits(data, seed=7).splits == first
    assert assign_splits(data, seed=8).splits != first


def test_zero_test_ratio_gives_train_and_val_only():
    result = assign_splits(make(["a"] * 10 + ["b"] * 10), ratios=(0.8, 0.2, 0.0))
    assert set(result.splits) == {"train", "val"}
    assert counts(result, "val") == {"a": 2, "b": 2}


@pytest.mark.parametrize("ratios", [(0.5, 0.2, 0.1), (1.0, 0.0, 0.0), (0.7, 0.3), (0.9, 0.2, -0.1)])
def test_bad_ratios_name_the_option(ratios):
    with pytest.raises(DataError) as info:
        assign_splits(make(["a"] * 10 + ["b"] * 10), ratios=ratios)
    assert "--split" in str(info.value)


def test_too_few_items_names_class_count_and_minimum():
    with pytest.raises(DataError) as info:
        assign_splits(make(["a"] * 10 + ["rare"] * 2))
    message = str(info.value)
    assert "'rare' has 2 items" in message and "at least 3" in message
    assert "split column" in info.value.fix and "add items" in info.value.fix
    # Without a test split two items are enough.
    assert counts(assign_splits(make(["a"] * 10 + ["rare"] * 2), ratios=(0.8, 0.2, 0)), "val")["rare"] == 1


def test_single_class_is_an_error():
    with pytest.raises(DataError, match="one class"):
        assign_splits(make(["a"] * 10))


def test_unlabeled_data_cannot_be_split():
    data = make(["a", "b"])
    data.labels = None
    with pytest.raises(DataError, match="no labels"):
        assign_splits(data)


def test_split_column_respected(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label,split\na,x,train\nb,y,train\nc,x,val\nd,y,test\ne,y,val\n", encoding="utf-8")
    data = read_dataset(path)
    result = assign_splits(data, seed=3)
    assert result.splits == ["train", "train", "val", "test", "val"]


def test_split_column_without_val_carves_val_from_train():
    data = make(["a"] * 10 + ["b"] * 10 + ["a", "b"], splits=["train"] * 20 + ["test", "test"])
    result = assign_splits(data, ratios=(0.7, 0.2, 0.1), seed=0)
    assert result.splits[20:] == ["test", "test"]  # given test rows untouched
    # val share = 0.2 / 0.9 of each class's 10 train rows, rounded: 2.
    assert counts(result, "val") == {"a": 2, "b": 2}
    assert counts(result, "train") == {"a": 8, "b": 8}


def test_split_column_without_train_rows():
    with pytest.raises(DataError, match="no train rows"):
        assign_splits(make(["a", "b"], splits=["val", "test"]))


def test_val_label_missing_from_train_is_an_error():
    data = make(["a", "b", "a", "c"], splits=["train", "train", "val", "val"])
    with pytest.raises(DataError) as info:
        assign_splits(data)
    assert "train.csv row 5" in str(info.value) and "'c'" in str(info.value)


def test_separate_test_file():
    train = make(["a"] * 10 + ["b"] * 10)
    test = make(["b", "a", "a"], source="test.csv")
    result = assign_splits(train, ratios=(0.7, 0.2, 0.1), test=test, seed=0)
    assert len(result) == 23
    assert result.source == "train.csv"
    assert result.splits[20:] == ["test"] * 3
    assert "test" not in result.splits[:20]  # the data is only cut into train/val
    assert counts(result, "val") == {"a": 2, "b": 2}  # 0.2 / 0.9 of 10, rounded
    assert result.origins[20] == "test.csv row 2" and result.origins[0] == "train.csv row 2"
    assert result.items[20:] == test.items


def test_separate_test_file_with_unseen_label():
    train = make(["a"] * 5 + ["b"] * 5)
    test = make(["a", "b", "zebra"], source="test.csv")
    with pytest.raises(DataError) as info:
        assign_splits(train, test=test)
    message = str(info.value)
    assert "test.csv row 4" in message and "'zebra'" in message
    assert "'a'" in message and "'b'" in message  # training classes are listed


def test_separate_test_file_and_test_rows_conflict():
    train = make(["a"] * 5 + ["b"] * 5, splits=["train"] * 8 + ["test"] * 2)
    with pytest.raises(DataError, match="test file"):
        assign_splits(train, test=make(["a", "b"], source="test.csv"))


def test_separate_test_file_needs_labels():
    test = make(["a", "b"], source="test.csv")
    test.labels = None
    with pytest.raises(DataError, match="no labels"):
        assign_splits(make(["a"] * 5 + ["b"] * 5), test=test)


def test_concat_keeps_first_source():
    joined = concat(make(["a"], ["train"]), make(["b"], ["test"], source="t.csv"))
    assert joined.labels == ["a", "b"] and joined.splits == ["train", "test"]
    assert joined.source == "train.csv" and joined.origins == ["train.csv row 2", "t.csv row 2"]


def test_read_then_split_end_to_end(tmp_path: Path):
    rows = "".join(f"text {i},{'pos' if i % 3 else 'neg'}\n" for i in range(30))
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + rows, encoding="utf-8")
    result = assign_splits(read_dataset(path), seed=0)
    assert len(result.split("train")) + len(result.split("val")) + len(result.split("test")) == 30
    assert set(result.split("test").labels) == {"pos", "neg"}


def test_with_a_test_file_and_no_ratios_validation_is_capped_for_large_data():
    from headstart.data.splits import VAL_ITEMS_ENOUGH, default_val_share

    small_train, small_test = make(["a"] * 60 + ["b"] * 60), make(["a"] * 5 + ["b"] * 5, source="test.csv")
    # small data: the same 70:20 as the default ratios given explicitly
    assert assign_splits(small_train, test=small_test).splits == \
        assign_splits(small_train, ratios=(0.7, 0.2, 0.1), test=small_test).splits
    large_train, large_test = make(["a"] * 2500 + ["b"] * 2500), make(["a"] * 5 + ["b"] * 5, source="test.csv")
    result = assign_splits(large_train, test=large_test)
    assert sum(counts(result, "val").values()) == VAL_ITEMS_ENOUGH
    assert sum(counts(result, "train").values()) == 5000 - VAL_ITEMS_ENOUGH
    explicit = assign_splits(large_train, ratios=(0.7, 0.2, 0.1), test=large_test)  # given ratios are kept
    assert sum(counts(explicit, "val").values()) == 2 * round(2500 * 2 / 9)
    assert default_val_share(100_000) == 0.05

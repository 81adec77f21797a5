"""The in-memory dataset every later step reads: items, labels, splits and content hashes."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

TEXT = "text"
IMAGE = "image"
SPLITS = ("train", "val", "test")

# The longest text a reader keeps, in characters: backbones read a few hundred tokens of each text,
# and tokenizing a whole 50 MB cell first takes minutes. Longer texts are cut, with a warning.
MAX_TEXT_CHARS = 100_000


def text_hash(text: str) -> str:
    """Content hash of a text item (its UTF-8 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hash(path: str | Path) -> str:
    """Content hash of a file item (its bytes), so a renamed image keeps its cached features."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Dataset:
    """Items of one modality with optional labels and split names.

    Attributes:
        modality: ``"text"`` or ``"image"``.
        items: texts, or image file paths (as strings), length n.
        hashes: sha256 hex digest of each item's content, length n.
        labels: label name of each item, or None for an unlabeled pool.
        splits: ``"train"``/``"val"``/``"test"`` of each item, or None when the source had no split column.
        origins: where each item came from, for error messages (``"reviews.csv row 12"``).
        source: the file or folder the dataset was read from.
    """

    modality: str
    items: list[str]
    hashes: list[str]
    labels: list[str] | None = None
    splits: list[str] | None = None
    origins: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.items)
        if not self.origins:
            self.origins = [f"{self.source or 'item'} #{i}" for i in range(n)]
        for name in ("hashes", "labels", "splits", "origins"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"Dataset.{name} has {len(value)} entries for {n} items")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def classes(self) -> list[str]:
        """Sorted label names present in the dataset."""
        return sorted(set(self.labels)) if self.labels is not None else []

    def subset(self, index) -> "Dataset":
        """The items at ``index`` (a boolean mask or integer positions), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        pick = lambda values: None if values is None else [values[i] for i in index]  # noqa: E731
        return Dataset(
            modality=self.modality,
            items=pick(self.items),
            hashes=pick(self.hashes),
            labels=pick(self.labels),
            splits=pick(self.splits),
            origins=pick(self.origins),
            source=self.source,
        )

    def split(self, name: str) -> "Dataset":
        """The items of one split (``"train"``, ``"val"`` or ``"test"``)."""
        if self.splits is None:
            raise ValueError("dataset has no splits; call headstart.data.assign_splits first")
        return self.subset([s == name for s in self.splits])

    def label_ids(self, classes: list[str]) -> np.ndarray:
        """Labels as integer ids into ``classes``, shape (n,)."""
        lookup = {name: i for i, name in enumerate(classes)}
        return np.array([lookup[label] for label in self.labels], dtype=np.int64)

    def content_hash(self) -> str:
        """One hash for the whole labeled dataset (items, labels, splits), for manifests."""
        digest = hashlib.sha256()
        for i, item_hash in enumerate(self.hashes):
            digest.update(item_hash.encode())
            digest.update(b"\0" + (self.labels[i] if self.labels else "").encode())
            digest.update(b"\0" + (self.splits[i] if self.splits else "").encode() + b"\n")
        return digest.hexdigest()


def items_of(data: Dataset | Sequence[str] | str | os.PathLike) -> list[str]:
    """The items of what a user passes to predict, as strings.

    A Dataset's items, a list's, or one text or image path as one item (never its characters).
    """
    if isinstance(data, Dataset):
        return data.items
    if isinstance(data, (str, os.PathLike)):
        return [os.fspath(data)]
    return [os.fspath(item) for item in data]

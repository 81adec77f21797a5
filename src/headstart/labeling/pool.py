"""The pool a labeling project starts from: its items, their ids and given labels, and the label set.

Image files stay where they are: a table's image paths are relative to the table's folder and an
image folder's files are inside it. That folder is the pool's root, checked at init and again each
time the page serves an image (:func:`image_inside`), so neither an absolute path, a ``..``, nor a
symbolic link reaches a file outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from headstart.data import read_dataset
from headstart.data.sources import parse_table, read_utf8
from headstart.errors import DataError, LabelingError


@dataclass
class Pool:
    """A pool read from a file or folder: ids, items, content hashes, origins and given labels."""

    modality: str
    ids: list[str]
    items: list[str]
    hashes: list[str]
    origins: list[str]
    labels: list[str]  # "" where none was given
    source: str  # the file or folder, absolute: a server started elsewhere still finds the images


def read_pool(path: str | Path, *, id_column: str = "id", text_column: str = "text", path_column: str = "path",
              label_column: str = "label") -> Pool:
    """Read a pool (CSV/TSV/JSONL or image folder). Raises DataError on duplicate or empty ids, and
    on an image path that leads outside the table's folder."""
    path = Path(path)
    dataset = read_dataset(path, require_labels=False, text_column=text_column, path_column=path_column,
                           label_column=label_column, split_column="\0no split column")
    if path.is_dir():
        ids = [Path(item).relative_to(path.absolute()).as_posix() for item in dataset.items]
        given = [""] * len(ids)
    else:
        rows, columns = parse_table(path, read_utf8(path))
        kind = "field" if path.suffix.lower() == ".jsonl" else "column"
        if dataset.modality == "image":
            for origin, record in rows:
                _check_inside(path.parent, str(record.get(path_column)).strip(), f"{origin}, {kind} '{path_column}'")
        if id_column in columns:
            ids = []
            for origin, record in rows:
                value = record.get(id_column)
                value = "" if value is None else str(value).strip()
                if not value:
                    raise DataError("the id is empty", where=f"{origin}, {kind} '{id_column}'",
                                    fix="give every item an id, or remove the id column to number rows")
                ids.append(value)
        else:
            ids = [origin.rsplit(" ", 1)[-1] for origin, _ in rows]
        given = [("" if record.get(label_column) is None else str(record.get(label_column)).strip())
                 for _, record in rows]
    first: dict[str, str] = {}
    for item_id, origin in zip(ids, dataset.origins):
        if item_id in first:
            raise DataError(f"id '{item_id}' appears twice: {first[item_id]} and {origin}", where=str(path),
                            fix="make the ids unique")
        first[item_id] = origin
    return Pool(dataset.modality, ids, dataset.items, dataset.hashes, dataset.origins, given, str(path.absolute()))


def parse_label_set(labels: str | Sequence[str] | None, given: Iterable[str]) -> list[str]:
    """The label set: given (a list or 'a,b,c'), else the labels the pool has (``given``, its label
    column's values, repeats and empty ones allowed)."""
    if labels is None:
        names = sorted({label for label in given if label})
        source = "the pool's label column"
    else:
        names = [part.strip() for part in (labels.split(",") if isinstance(labels, str) else labels)]
        names = [name for name in names if name]
        source = "--labels"
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise LabelingError(f"label '{repeated[0]}' is given twice", where=source, fix="list each label once")
    if len(names) < 2:
        raise LabelingError(f"a label set needs at least two labels, got {len(names)}", where=source,
                            fix="give them with --labels a,b,c")
    return names


# -- where images may be ----------------------------------------------------------------------------

def image_root(source: str | Path) -> Path:
    """The folder a pool's images must stay in: an image folder itself, or a table's folder."""
    source = Path(source)
    return (source if source.is_dir() else source.parent).resolve()


def image_inside(root: Path, image: str | Path) -> Path | None:
    """The real path of ``image`` when it is a file inside ``root`` (links followed), else None."""
    try:
        target = Path(image).resolve()
    except (OSError, ValueError):  # a loop of links, a NUL byte
        return None
    return target if target.is_relative_to(root) and target.is_file() else None


def _check_inside(folder: Path, value: str, where: str) -> None:
    fix = "give image paths relative to the table's folder, and keep the images (not links to them) inside it"
    if Path(value).is_absolute():
        raise DataError(f"the image path '{value}' is absolute", where=where, fix=fix)
    root = folder.resolve()
    if image_inside(root, folder / value) is None:
        raise DataError(f"the image path '{value}' leads outside the table's folder {root}", where=where, fix=fix)

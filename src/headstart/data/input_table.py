"""The input of a prediction with all its columns, so that each prediction can be joined back to its row.

A table keeps every column of every row (an id, the text or image path, anything else), each cell as
the file has it; a folder of images has one column, the image's path relative to the folder. The
predictions go beside them, one output row per input row, in the input's order.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from headstart.data.dataset import Dataset
from headstart.data.sources import column_kind, listed, read_dataset, read_table, rows_to_dataset, shown
from headstart.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class InputTable:
    """Items to predict with the input's own columns.

    Attributes:
        dataset: the items, one a row.
        columns: the input's column names, the id column (where one was named) first.
        rows: each item's cells, in ``columns`` order.
    """

    dataset: Dataset
    columns: list[str]
    rows: list[list[str]]

    def with_predictions(self, classes: Sequence[str], proba: np.ndarray) -> tuple[list[str], list[list[str]]]:
        """The prediction table: the input's columns, then ``prediction``, ``confidence`` and ``p_<class>``.

        An input column of the same name as one of the prediction's is left out (with a warning),
        as when a file of earlier predictions is predicted again.

        Args:
            classes: label names, in the columns' order of ``proba``.
            proba: class probabilities (n, k), one row per input row.

        Returns:
            (header, rows), every cell a string.
        """
        predicted = ["prediction", "confidence", *[f"p_{name}" for name in classes]]
        kept = [i for i, name in enumerate(self.columns) if name not in predicted]
        replaced = [name for name in self.columns if name in predicted]
        if replaced:
            log.warning("%s: the input's %s %s replaced by this prediction's", self.dataset.source,
                        ", ".join(shown(name) for name in replaced), "is" if len(replaced) == 1 else "are")
        header = [self.columns[i] for i in kept] + predicted
        rows = [[cells[i] for i in kept] + [classes[int(p.argmax())], f"{p.max():.6f}", *[f"{v:.6f}" for v in p]]
                for cells, p in zip(self.rows, proba)]
        return header, rows


def read_input_table(path: str | Path, *, id_column: str | None = None, text_column: str = "text",
                     path_column: str = "path") -> InputTable:
    """Read items to predict (labels not needed) with all their columns.

    Args:
        path: a ``.csv``/``.tsv``/``.jsonl`` file, or a folder of images (searched as a pool).
        id_column: the column that names each row; it goes first, and must be filled in and unique.
        text_column: the column of the texts.
        path_column: the column of image paths in a table; a folder's one column is named so.

    Returns:
        The items and their cells.

    Raises:
        DataError: what :func:`~headstart.data.sources.read_dataset` raises, or an id column that is
            missing, empty in a row or repeated.
    """
    path = Path(path)
    if path.is_dir():
        dataset = read_dataset(path, require_labels=False)
        folder = path.absolute()
        columns = [path_column]
        rows = [[Path(item).relative_to(folder).as_posix()] for item in dataset.items]
    else:
        records, columns = read_table(path)
        dataset = rows_to_dataset(path, records, columns, text_column=text_column, label_column="label",
                                  split_column="split", path_column=path_column, require_labels=False)
        rows = [[_cell_text(record.get(name)) for name in columns] for _, record in records]
    if id_column is not None:
        columns, rows = _id_first(path, columns, rows, dataset.origins, id_column)
    return InputTable(dataset, list(columns), rows)


def _cell_text(value: Any) -> str:
    """A cell as the output writes it: text as it is, nothing as empty, numbers and JSON values as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _id_first(path: Path, columns: list[str], rows: list[list[str]], origins: list[str],
              id_column: str) -> tuple[list[str], list[list[str]]]:
    """The columns and rows with ``id_column`` moved first, after checking every row has its own id."""
    kind = "column" if path.is_dir() else column_kind(path)
    if id_column not in columns:
        raise DataError(f"no '{id_column}' {kind} for --id-column; {kind}s found: {listed(columns)}",
                        where=str(path), fix="name one of those with --id-column, or leave --id-column out")
    at = columns.index(id_column)
    first_seen: dict[str, str] = {}
    for cells, origin in zip(rows, origins):
        value = cells[at]
        where = f"{origin}, {kind} '{id_column}'"
        if not value.strip():
            raise DataError("the id is empty", where=where, fix="fill in the id or delete the row")
        if value in first_seen:
            raise DataError(f"the id {shown(value)} is also at {first_seen[value]}", where=where,
                            fix="give every row its own id")
        first_seen[value] = origin
    order = [at] + [i for i in range(len(columns)) if i != at]
    return [columns[i] for i in order], [[cells[i] for i in order] for cells in rows]

"""A text pool read a batch at a time, for pools too big to hold as Python rows (a million lines).

:func:`headstart.labeling.pool.read_pool` reads the whole file and keeps every row (about 1 KB an
item as dicts and strings); ``headstart label init`` on a CSV/TSV/JSONL of texts reads it through
:func:`stream_pool` instead, which holds one batch of rows at a time, so that init's memory stays
flat whatever the pool's size. The rules are read_pool's: the same ids (the ``id`` column, else the
row numbers as a spreadsheet shows them, JSONL: line numbers), the same checks and messages (an
empty text or id, a NUL, bytes that are not UTF-8), texts cut to ``MAX_TEXT_CHARS``. Ids that
appear twice are found by the store's unique index, not here (a set of a million ids is what this
module avoids); :func:`find_duplicate` names the two rows afterwards.

Image tables and image folders go through read_pool: each image is opened at init to prove it is
readable, which dwarfs holding the rows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from headstart.data.dataset import MAX_TEXT_CHARS, text_hash
from headstart.data.sources import TABLE_SUFFIXES, cell, column_kind, listed
from headstart.errors import DataError

# What no text holds (as the core's reader): NUL, which PostgreSQL refuses, and halves of UTF-16 surrogate pairs
BATCH_ROWS = 10_000  # rows a batch: the store writes each batch with one executemany / COPY

log = logging.getLogger(__name__)


@dataclass
class PoolBatch:
    """Consecutive rows of a pool: ids, texts, content hashes, origins, given labels ("" where none)."""

    ids: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def streamable(path: str | Path, text_column: str = "text") -> bool:
    """Whether ``path`` is a CSV/TSV/JSONL table of texts (a header, or a first record, with ``text_column``)."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in TABLE_SUFFIXES:
        return False
    try:
        return text_column in _columns(path)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError):
        return False  # read_pool reads it again and names the problem


def stream_pool(path: str | Path, *, id_column: str = "id", text_column: str = "text",
                label_column: str = "label", batch_rows: int | None = None, **_ignored) -> Iterator[PoolBatch]:
    """Batches of a text table's rows, in file order, ``batch_rows`` (default BATCH_ROWS) at a time.

    Raises:
        DataError: naming the row and field, as read_pool does, when a row is bad; the batches
            before it were already yielded (the caller writes them in one transaction and rolls
            it back).
    """
    path, batch_rows = Path(path), batch_rows or BATCH_ROWS
    kind = column_kind(path)
    columns = _columns(path)
    if text_column not in columns:
        raise DataError(f"no '{text_column}' {kind} (for texts); {kind}s found: {listed(columns)}", where=str(path),
                        fix="name the text column with --text-column")
    has_ids = id_column in columns
    batch, too_long = PoolBatch(), []
    for origin, record in _records(path):
        text = cell(record.get(text_column), origin, text_column)
        if not text.strip():
            raise DataError("the text is empty", where=f"{origin}, {kind} '{text_column}'",
                            fix="write the text or delete the row")
        if len(text) > MAX_TEXT_CHARS:
            too_long.append((origin, len(text)))
            text = text[:MAX_TEXT_CHARS]
        if has_ids:
            item_id = cell(record.get(id_column), origin, id_column).strip()
            if not item_id:
                raise DataError("the id is empty", where=f"{origin}, {kind} '{id_column}'",
                                fix="give every item an id, or remove the id column to number rows")
        else:
            item_id = origin.rsplit(" ", 1)[-1]
        batch.ids.append(item_id)
        batch.items.append(text)
        batch.hashes.append(text_hash(text))
        batch.origins.append(origin)
        batch.labels.append(cell(record.get(label_column), origin, label_column).strip())
        if len(batch) >= batch_rows:
            yield batch
            batch = PoolBatch()
    if len(batch):
        yield batch
    if too_long:
        origin, length = too_long[0]
        log.warning("%s, %s '%s': the text has %s characters; only its first %s are used%s", origin, kind,
                    text_column, f"{length:,}", f"{MAX_TEXT_CHARS:,}",
                    f" (and {len(too_long) - 1} more rows)" if len(too_long) > 1 else "")


def count_lines(path: str | Path, block: int = 1 << 22) -> int:
    """Lines in the file (its rows, header included, for a table without line breaks in its cells):
    the total of init's progress bar, counted in blocks without decoding."""
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            lines += chunk.count(b"\n")
    return lines


def find_duplicate(path: str | Path, *, id_column: str = "id", **columns) -> DataError | None:
    """The DataError read_pool gives for the first id that appears twice (a second pass over the
    file, after the store's unique index refused one); None when every id is unique."""
    first: dict[str, str] = {}
    for batch in stream_pool(path, id_column=id_column, **columns):
        for item_id, origin in zip(batch.ids, batch.origins):
            if item_id in first:
                return DataError(f"id '{item_id}' appears twice: {first[item_id]} and {origin}", where=str(path),
                                 fix="make the ids unique")
            first[item_id] = origin
    return None




# -- reading the file a record at a time ------------------------------------------------------------

def _open(path: Path):
    # utf-8-sig drops Excel's byte-order mark, as read_utf8 does
    return open(path, encoding="utf-8-sig", newline="\n" if path.suffix.lower() == ".jsonl" else "")


def _columns(path: Path) -> list[str]:
    """A CSV/TSV's header; a JSONL's fields of its first record (enough to tell texts from images)."""
    with _open(path) as handle:
        if path.suffix.lower() == ".jsonl":
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    return list(record) if isinstance(record, dict) else []
            return []
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
        return [name.strip() for name in next(csv.reader(handle, dialect), [])]


def _records(path: Path) -> Iterator[tuple[str, dict]]:
    """(origin, field -> value) of each data row, read lazily; the same rows and origins as parse_table."""
    from headstart.data.sources import parse_delimited, parse_jsonl

    suffix = path.suffix.lower()
    number = 1
    try:
        with _open(path) as handle:
            if suffix == ".jsonl":
                # parse_jsonl on one line at a time: the same checks and messages, with this line's number
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    origin = f"{path.name} line {number}"
                    try:
                        (_, record), = parse_jsonl(path, line)[0]
                    except DataError as error:
                        raise DataError(error.message, where=origin, fix=error.fix) from error
                    yield origin, record
                return
            dialect = csv.excel_tab if suffix == ".tsv" else csv.excel
            reader = csv.reader(handle, dialect)
            header_fields = next(reader, None)
            if header_fields is None:
                raise DataError("the file is empty", where=str(path), fix="add a header line and at least one row")
            # the header's checks (a column named twice) are parse_delimited's
            parse_delimited(path, _line(header_fields, dialect), suffix)
            header = [name.strip() for name in header_fields]
            for number, fields in enumerate(reader, start=2):
                if not any(value.strip() for value in fields):
                    continue
                origin = f"{path.name} row {number}"
                if len(fields) > len(header) and any(value.strip() for value in fields[len(header):]):
                    raise DataError(f"the row has {len(fields)} fields but the header has {len(header)} columns",
                                    where=origin, fix="quote fields that contain the delimiter, or fix the header")
                yield origin, {name: (fields[i] if i < len(fields) else "") for i, name in enumerate(header)}
    except csv.Error as error:
        raise DataError(f"cannot parse the file ({error})", where=f"{path.name} line {number}",
                        fix="check the quoting on that row") from error
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text: byte 0x{error.object[error.start:error.start + 1].hex().upper()} "
                        f"near line {number}", where=str(path),
                        fix="re-save the file as UTF-8, e.g. Excel's 'CSV UTF-8' format") from error


def _line(fields: list[str], dialect) -> str:
    out = io.StringIO()
    csv.writer(out, dialect).writerow(fields)
    return out.getvalue()

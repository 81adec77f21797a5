"""Read a labeled (or unlabeled) dataset from a CSV/TSV/JSONL file or a folder of images.

Every problem is a ``DataError`` naming the file, the row and the field, raised before
anything is returned, so a bad row never reaches training.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from headstart.data.dataset import IMAGE, MAX_TEXT_CHARS, TEXT, Dataset, file_hash, text_hash
from headstart.data.images import IMAGE_EXTENSIONS, is_image_file, load_image
from headstart.errors import DataError

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")

# Split names people write, mapped to ours.
SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "valid": "val", "dev": "val", "test": "test"}
_ALLOWED_SPLITS = "train, val (or validation, valid, dev), test"

# Long texts (whole documents in one cell) exceed csv's default 128 KiB field limit.
# sys.maxsize overflows a C long on Windows, hence the cap.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

Row = tuple[str, dict[str, Any]]  # (origin such as "reviews.csv row 12", field name -> value)

# What no text holds: NUL (PostgreSQL refuses it) and halves of UTF-16 surrogate pairs, which
# JSON's \ud800 escapes can produce and which cannot be written as UTF-8.
FORBIDDEN_CHARACTER = re.compile("[\x00\ud800-\udfff]")

log = logging.getLogger(__name__)


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for quoting a bad cell in an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def read_dataset(path: str | Path, *, text_column: str = "text", label_column: str = "label",
                 split_column: str = "split", path_column: str = "path", require_labels: bool = True) -> Dataset:
    """Read ``path`` into a ``Dataset`` (items, hashes, labels, splits, origins).

    Args:
        path: a ``.csv``/``.tsv``/``.jsonl`` file, or a folder of images.
            A table is text when it has ``text_column``, else images when it has ``path_column``
            (image paths relative to the table's folder). A folder holds one subfolder per class;
            subfolders named train/val/test that each hold class subfolders also fill ``splits``.
        text_column: the column (JSONL: field) of the texts.
        label_column: the column of the labels.
        split_column: the column of each row's split (train, val, test), where the data has one.
        path_column: the column of image paths, for a table of images.
        require_labels: when False, a missing label column, or any empty label, gives
            ``labels=None`` (an unlabeled pool), and a folder is read as a flat pool of images.

    Returns:
        A Dataset whose ``splits`` is set only when the source had a split column (or split folders).

    Raises:
        DataError: missing/unreadable/empty file, non-UTF-8 bytes, missing column, empty text
            or label, bad split name, malformed JSON, missing or corrupt image.
    """
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, require_labels)
    rows, columns = read_table(path)
    return rows_to_dataset(path, rows, columns, text_column=text_column, label_column=label_column,
                           split_column=split_column, path_column=path_column, require_labels=require_labels)


def read_table(path: Path) -> tuple[list[Row], list[str]]:
    """The rows and columns of a CSV/TSV/JSONL file, as :func:`parse_table` gives them.

    Raises:
        DataError: the file is missing, of another type, unreadable, not UTF-8, empty or without data rows.
    """
    if not path.exists():
        raise DataError("file or folder not found", where=str(path), fix="check the path and its spelling")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"unsupported file type '{suffix or path.name}'", where=str(path),
                        fix="give a .csv, .tsv or .jsonl file, or a folder of images in class subfolders")
    text = read_utf8(path)
    if not text.strip():
        raise DataError("the file is empty", where=str(path), fix="add a header line and at least one row")
    rows, columns = parse_table(path, text)
    if not rows:
        raise DataError("the file has no data rows", where=str(path), fix="add at least one row below the header")
    return rows, columns


def read_utf8(path: Path) -> str:
    """The file's text; a UTF-8 byte-order mark (Excel's "CSV UTF-8") is dropped."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read the file ({error.strerror or error})", where=str(path),
                        fix="check that the file exists and is readable") from error
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        bad = data[error.start:error.start + 1].hex().upper()
        raise DataError(f"not UTF-8 text: byte 0x{bad} at byte offset {error.start} (line {line})",
                        where=str(path), fix="re-save the file as UTF-8, e.g. Excel's 'CSV UTF-8' format") from error


def parse_table(path: Path, text: str) -> tuple[list[Row], list[str]]:
    """Rows and columns of a table's text, parsed by the file's suffix: JSONL, else CSV or TSV.

    Args:
        path: the file (its suffix picks the format; its name goes into each row's origin).
        text: the file's text, as :func:`read_utf8` returns it.

    Returns:
        (rows, columns): each row is (origin such as "pool.csv row 12", field name -> value).
    """
    suffix = path.suffix.lower()
    return parse_jsonl(path, text) if suffix == ".jsonl" else parse_delimited(path, text, suffix)


def parse_delimited(path: Path, text: str, suffix: str) -> tuple[list[Row], list[str]]:
    """Rows of a CSV/TSV; the header is row 1 and row numbers count records, as a spreadsheet shows them."""
    dialect = csv.excel_tab if suffix == ".tsv" else csv.excel
    records = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = [name.strip() for name in next(records)]
        duplicates = sorted({name for name in header if header.count(name) > 1 and name})
        if duplicates:
            raise DataError(f"column '{duplicates[0]}' appears more than once in the header",
                            where=f"{path.name} row 1", fix="give every column a distinct name")
        rows: list[Row] = []
        for number, fields in enumerate(records, start=2):
            if not any(field.strip() for field in fields):
                continue  # blank lines and rows of bare delimiters that spreadsheets leave at the end
            origin = f"{path.name} row {number}"
            if len(fields) > len(header) and any(f.strip() for f in fields[len(header):]):
                raise DataError(f"the row has {len(fields)} fields but the header has {len(header)} columns",
                                where=origin, fix="quote fields that contain the delimiter, or fix the header")
            # Short rows are padded: a missing trailing field reads as empty.
            rows.append((origin, {name: (fields[i] if i < len(fields) else "") for i, name in enumerate(header)}))
    except csv.Error as error:
        raise DataError(f"cannot parse the file ({error})", where=f"{path.name} line {records.line_num}",
                        fix="check the quoting on that row") from error
    return rows, header


def parse_jsonl(path: Path, text: str) -> tuple[list[Row], list[str]]:
    """Rows of a JSONL file (one JSON object per line; blank lines skipped); columns in first-seen order."""
    rows: list[Row] = []
    columns: dict[str, None] = {}
    # Lines end at "\n" (a "\r" before it is JSON whitespace): splitlines() would also cut at
    # U+2028 and the other Unicode line breaks, which JSON strings may hold as they are.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        origin = f"{path.name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"malformed JSON ({error.msg} at column {error.colno})", where=origin,
                            fix="write one complete JSON object per line") from error
        except RecursionError as error:
            raise DataError("the JSON is nested too deeply to read", where=origin,
                            fix="write one flat JSON object per line") from error
        except ValueError as error:  # an integer of more digits than Python converts
            raise DataError(f"cannot read the JSON ({str(error).partition(':')[0]})", where=origin,
                            fix="write long numbers as strings") from error
        if not isinstance(record, dict):
            names = {list: "an array", str: "a string", bool: "true/false", type(None): "null"}
            got = names.get(type(record), "a number")
            raise DataError(f"expected a JSON object, got {got}", where=origin,
                            fix='write one JSON object per line, like {"text": "...", "label": "..."}')
        columns.update(dict.fromkeys(record))
        rows.append((origin, record))
    return rows, list(columns)


def column_kind(path: Path) -> str:
    """What a table's columns are called in messages: JSONL has fields, CSV and TSV columns."""
    return "field" if path.suffix.lower() == ".jsonl" else "column"


def listed(columns: list[str]) -> str:
    """The column names a message lists as found: the first 20, quoted."""
    return ", ".join(shown(c) for c in columns[:20]) + (", ..." if len(columns) > 20 else "") or "none"


def cell(value: Any, origin: str, field: str) -> str:
    """A field as a string: None is empty, numbers and booleans (JSONL labels like 0/1) their text.

    A NUL or a lone surrogate, or an object, is a DataError naming the row.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        bad = FORBIDDEN_CHARACTER.search(value)
        if bad:
            what = "a NUL character" if bad.group() == "\x00" else "half of a UTF-16 surrogate pair"
            raise DataError(f"field '{field}' holds {what} ({shown(bad.group())}), which no text may hold",
                            where=origin, fix="remove it from the file")
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    raise DataError(f"field '{field}' is a {type(value).__name__}, expected a string", where=origin,
                    fix="write the value as a plain string")


def rows_to_dataset(path: Path, rows: list[Row], columns: list[str], *, text_column: str, label_column: str,
                    split_column: str, path_column: str, require_labels: bool) -> Dataset:
    """Check the columns and every row of a table, then build the Dataset: one item a row, in order.

    Arguments as for :func:`read_dataset`; ``rows`` and ``columns`` as :func:`read_table` gives them.
    """
    kind = column_kind(path)
    found = listed(columns)
    if text_column in columns:
        modality, item_column = TEXT, text_column
    elif path_column in columns:
        modality, item_column = IMAGE, path_column
    else:
        raise DataError(f"no '{text_column}' {kind} (for texts) or '{path_column}' {kind} (for image files); "
                        f"{kind}s found: {found}", where=str(path),
                        fix="name the text column with --text-column, or add a path column of image files")
    has_labels = label_column in columns
    if require_labels and not has_labels:
        raise DataError(f"no '{label_column}' {kind}; {kind}s found: {found}", where=str(path),
                        fix="name the label column with --label-column")

    items: list[str] = []
    hashes: list[str] = []
    labels: list[str] = []
    splits: list[str] | None = [] if split_column in columns else None
    origins: list[str] = []
    too_long: list[tuple[str, int]] = []  # (origin, length) of each text cut to MAX_TEXT_CHARS
    for origin, record in rows:
        value = cell(record.get(item_column), origin, item_column)
        where = f"{origin}, {kind} '{item_column}'"
        if modality == TEXT:
            if not value.strip():
                raise DataError("the text is empty", where=where, fix="write the text or delete the row")
            if len(value) > MAX_TEXT_CHARS:
                too_long.append((origin, len(value)))
                value = value[:MAX_TEXT_CHARS]
            items.append(value)
            hashes.append(text_hash(value))
        else:
            items.append(_check_image(path, value, where))
            hashes.append(file_hash(items[-1]))
        label = cell(record.get(label_column), origin, label_column).strip() if has_labels else ""
        if require_labels and not label:
            raise DataError("the label is empty", where=f"{origin}, {kind} '{label_column}'",
                            fix="fill in the label or delete the row")
        labels.append(label)
        if splits is not None:
            splits.append(_normalize_split(cell(record.get(split_column), origin, split_column),
                                           f"{origin}, {kind} '{split_column}'"))
        origins.append(origin)
    if too_long:
        _warn_cut(too_long, kind, item_column)
    # Without require_labels a partly labeled file is an unlabeled pool: a label is all or nothing.
    keep_labels = has_labels and all(labels)
    return Dataset(modality=modality, items=items, hashes=hashes, labels=labels if keep_labels else None,
                   splits=splits, origins=origins, source=str(path))


def _warn_cut(too_long: list[tuple[str, int]], kind: str, column: str) -> None:
    """One warning for all the texts cut to MAX_TEXT_CHARS, naming the first."""
    origin, length = too_long[0]
    others = f" (and {len(too_long) - 1} more rows)" if len(too_long) > 1 else ""
    log.warning("%s, %s '%s': the text has %s characters; only its first %s are used%s", origin, kind, column,
                f"{length:,}", f"{MAX_TEXT_CHARS:,}", others)


def _check_image(table: Path, value: str, where: str) -> str:
    """Absolute path of the image named in a table cell, after loading it once to prove it is readable."""
    if not value.strip():
        raise DataError("the image path is empty", where=where, fix="fill in the path or delete the row")
    image_path = os.path.abspath(os.path.join(table.parent, value.strip()))
    try:
        load_image(image_path)
    except DataError as error:
        raise DataError(f"{error.message}: {shown(image_path, 300)}", where=where, fix=error.fix) from error
    return image_path


def _normalize_split(value: str, where: str) -> str:
    """``train``/``val``/``test`` from a split cell (case-insensitive, aliases accepted)."""
    split = SPLIT_ALIASES.get(value.strip().lower())
    if split is None:
        found = shown(value) if value.strip() else "empty"
        raise DataError(f"split is {found}; allowed values: {_ALLOWED_SPLITS}", where=where,
                        fix="fix the value, or remove the split column to let headstart split the data")
    return split


def _read_folder(folder: Path, require_labels: bool) -> Dataset:
    """Images under ``folder``: class subfolders (label = subfolder name), or a pool when labels are optional."""
    images = sorted(_image_files(folder), key=lambda p: p.relative_to(folder).as_posix())
    if not images:
        raise DataError("no image files found", where=str(folder),
                        fix="add images in one subfolder per class; image files end in "
                        + ", ".join(sorted(IMAGE_EXTENSIONS)))
    labels: list[str] | None = None
    splits: list[str] | None = None
    if require_labels:
        parts = [p.relative_to(folder).parts for p in images]
        loose = [p for p, rel in zip(images, parts) if len(rel) < 2]
        if loose:
            raise DataError("image is not in a class subfolder", where=str(loose[0]),
                            fix="put each image in a subfolder named after its class")
        # folder/train/cat/1.jpg layout: the top level names splits, the next level classes.
        tops = {rel[0].lower() for rel in parts}
        if tops <= set(SPLIT_ALIASES) and all(len(rel) >= 3 for rel in parts):
            splits = [SPLIT_ALIASES[rel[0].lower()] for rel in parts]
            labels = [rel[1] for rel in parts]
        else:
            labels = [rel[0] for rel in parts]
    for image in images:
        load_image(image)  # raises DataError naming the image
    return Dataset(modality=IMAGE, items=[str(p.absolute()) for p in images],
                   hashes=[file_hash(p) for p in images], labels=labels, splits=splits,
                   origins=[str(p) for p in images], source=str(folder))


def _image_files(folder: Path) -> list[Path]:
    """Image files anywhere under ``folder``, skipping hidden files and folders (.DS_Store, .ipynb_checkpoints)."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if path.is_file() and is_image_file(path):
            found.append(path)
    return found

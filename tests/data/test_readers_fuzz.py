"""The data readers under random input: any bytes, rows, encodings and image files give a Dataset or a
DataError, never another exception.

Hypothesis draws the inputs; each test is bounded by its number of examples (no deadline: a busy
machine must not fail a test), and a failure prints the smallest input that shows it.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from headstart.data import read_dataset  # noqa: E402
from headstart.data.dataset import MAX_TEXT_CHARS, TEXT  # noqa: E402
from headstart.errors import DataError  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = (".csv", ".tsv", ".jsonl")
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252")
FIELDS = ("text", "label", "split", "path", "other")

# Cells: any code point, with the ones readers trip on drawn often: NUL, a lone surrogate (JSON
# escapes it; other encodings replace it), line breaks, quotes and delimiters.
characters = st.sampled_from(["a", " ", ",", "\t", '"', "\n", "\r", "\x00", "\ud800", "\u2028", "\x85", "é"]) \
    | st.characters(codec=None, exclude_categories=())
# (long values are built by .map, so that the strategies' own repr stays short)
cells = st.text(characters, max_size=30) | st.sampled_from(["", " ", "train", "Validation", "test", "[[[["]) \
    | st.just(MAX_TEXT_CHARS + 1).map(lambda length: "x" * length)
values = cells | st.integers() | st.floats() | st.booleans() | st.none() | st.lists(st.integers(), max_size=2)
rows = st.lists(st.dictionaries(st.sampled_from(FIELDS) | cells, values, max_size=5), max_size=8)

# JSON-like lines from pieces: nesting past Python's recursion limit, integers past its 4300 digits.
PIECES = ['{"text": ', '{"label": ', '"label": ', '"a"', '"\\ud800"', '"\\u0000"', ", ", "}", "[" * 5000, "9" * 5000,
          "1e999", "\n", "\r\n", "\u2028"]
pieces = st.integers(0, len(PIECES) - 1).map(PIECES.__getitem__)
json_lines = st.lists(pieces, max_size=12).map("".join).map(lambda text: text.encode("utf-8", "surrogatepass"))


def read(folder: Path, name: str, data: bytes, require_labels: bool):
    """read_dataset of ``data`` written to ``folder/name``: the Dataset, or None after a DataError."""
    path = folder / name
    path.write_bytes(data)
    try:
        dataset = read_dataset(path, require_labels=require_labels)
    except DataError as error:
        assert str(error)  # a message to print
        return None
    check(dataset)
    return dataset


def check(dataset) -> None:
    """What every reader's Dataset holds: one hash and origin an item, texts a database can store."""
    assert len(dataset.items) == len(dataset.hashes) == len(dataset.origins) > 0
    for item in dataset.items:
        item.encode("utf-8")  # no lone surrogate
        assert "\x00" not in item
        if dataset.modality == TEXT:
            assert item.strip() and len(item) <= MAX_TEXT_CHARS


def as_table(records: list[dict], suffix: str) -> str:
    """``records`` as the text of a JSONL file, or of a CSV/TSV with the union of their keys as header."""
    if suffix == ".jsonl":
        return "\n".join(json.dumps(record) for record in records)
    header = list(dict.fromkeys(key for record in records for key in record))
    out = io.StringIO()
    writer = csv.writer(out, csv.excel_tab if suffix == ".tsv" else csv.excel)
    writer.writerow(header)
    writer.writerows([str(record.get(key, "")) for key in header] for record in records)
    return out.getvalue()


@FUZZ
@given(data=st.binary(max_size=400) | json_lines, suffix=st.sampled_from(SUFFIXES), require_labels=st.booleans())
def test_random_bytes_give_a_dataset_or_a_data_error(data, suffix, require_labels):
    with tempfile.TemporaryDirectory() as folder:
        read(Path(folder), f"data{suffix}", data, require_labels)


@FUZZ
@given(records=rows, suffix=st.sampled_from(SUFFIXES), encoding=st.sampled_from(ENCODINGS),
       require_labels=st.booleans())
def test_random_rows_in_any_encoding_give_a_dataset_or_a_data_error(records, suffix, encoding, require_labels):
    text = as_table(records, suffix)
    data = text.encode(encoding, errors="surrogatepass" if encoding.startswith("utf") else "replace")
    with tempfile.TemporaryDirectory() as folder:
        read(Path(folder), f"data{suffix}", data, require_labels)


PNG = b"\x89PNG\r\n\x1a\n"


@settings(FUZZ, max_examples=60)
@given(images=st.lists(st.tuples(st.sampled_from(["a", "b", "train", ".hidden"]), st.binary(max_size=200),
                                 st.booleans()), min_size=1, max_size=4),
       cells=st.lists(cells, max_size=4), require_labels=st.booleans())
def test_random_image_files_and_paths_give_a_dataset_or_a_data_error(images, cells, require_labels):
    """A folder of class subfolders whose 'images' are random bytes (some behind a PNG signature), and a
    table of image paths, some of them random text."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for number, (label, data, signed) in enumerate(images):
            (folder / "pool" / label).mkdir(parents=True, exist_ok=True)
            (folder / "pool" / label / f"{number}.png").write_bytes((PNG if signed else b"") + data)
        try:
            check(read_dataset(folder / "pool", require_labels=require_labels))
        except DataError:
            pass
        paths = [f"pool/{label}/{number}.png" for number, (label, _, _) in enumerate(images)] + cells
        table = as_table([{"path": path, "label": "a"} for path in paths], ".csv")
        read(folder, "images.csv", table.encode("utf-8", errors="surrogatepass"), require_labels)

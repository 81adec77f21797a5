"""read_dataset and load_image: tables, image folders, and the errors users hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from headstart.data import IMAGE, TEXT, load_image, read_dataset
from headstart.data.dataset import file_hash, text_hash
from headstart.errors import DataError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def png(path: Path, color=(255, 0, 0), size=(4, 4), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


# --- text tables ---------------------------------------------------------------------------------

def test_csv_text_dataset(tmp_path):
    path = write(tmp_path / "reviews.csv", 'text,label\ngreat film,pos\n"bad, long film",neg\ngreat film,pos\n')
    data = read_dataset(path)
    assert data.modality == TEXT
    assert data.items == ["great film", "bad, long film", "great film"]
    assert data.labels == ["pos", "neg", "pos"]
    assert data.splits is None
    assert data.origins == ["reviews.csv row 2", "reviews.csv row 3", "reviews.csv row 4"]
    assert data.hashes[0] == data.hashes[2] == text_hash("great film")
    assert data.hashes[0] != data.hashes[1]
    assert data.source == str(path)


def test_tsv_custom_columns_and_multiline_field(tmp_path):
    path = write(tmp_path / "d.tsv", 'review\tsentiment\n"two\nlines"\tpos\nplain\tneg\n')
    data = read_dataset(path, text_column="review", label_column="sentiment")
    assert data.items == ["two\nlines", "plain"]
    # A quoted field spanning two lines is still one row, as a spreadsheet shows it.
    assert data.origins == ["d.tsv row 2", "d.tsv row 3"]


def test_jsonl_text_dataset_with_numeric_labels(tmp_path):
    lines = [json.dumps({"text": "a", "label": 1}), "", json.dumps({"text": "b", "label": 0})]
    data = read_dataset(write(tmp_path / "d.jsonl", "\n".join(lines) + "\n"))
    assert data.items == ["a", "b"]
    assert data.labels == ["1", "0"]
    assert data.origins == ["d.jsonl line 1", "d.jsonl line 3"]


def test_utf8_bom_and_blank_trailing_rows_ignored(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufefftext,label\ncafé,x\n,\n\n".encode("utf-8"))
    data = read_dataset(path)
    assert data.items == ["café"] and data.labels == ["x"]


def test_split_column_normalized(tmp_path):
    path = write(tmp_path / "d.csv", "text,label,split\na,x,Train\nb,y,validation\nc,x,dev\nd,y,TEST\n")
    assert read_dataset(path).splits == ["train", "val", "val", "test"]


def test_bad_split_value_names_row_and_allowed_values(tmp_path):
    path = write(tmp_path / "d.csv", "text,label,split\na,x,train\nb,y,holdout\n")
    with pytest.raises(DataError) as info:
        read_dataset(path)
    message = str(info.value)
    assert "d.csv row 3" in message and "'split'" in message and "holdout" in message
    assert "train" in message and "val" in message and "test" in message


def test_unlabeled_text_when_labels_not_required(tmp_path):
    path = write(tmp_path / "d.csv", "text\nhello\nworld\n")
    assert read_dataset(path, require_labels=False).labels is None
    partly = write(tmp_path / "p.csv", "text,label\nhello,x\nworld,\n")
    assert read_dataset(partly, require_labels=False).labels is None


# --- text table errors ---------------------------------------------------------------------------

def test_file_not_found(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_dataset(tmp_path / "missing.csv")


def test_not_utf8_reports_offset_and_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nok,x\ncaf\u00e9,y\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_dataset(path)
    message = str(info.value)
    assert "UTF-8" in message and "line 3" in message and "0xE9" in message
    assert "byte offset 19" in message  # len("text,label\nok,x\ncaf")
    assert "re-save" in info.value.fix


@pytest.mark.parametrize("content", ["", "  \n\n"])
def test_empty_file(tmp_path, content):
    with pytest.raises(DataError, match="empty"):
        read_dataset(write(tmp_path / "d.csv", content))


def test_header_without_rows(tmp_path):
    with pytest.raises(DataError, match="no data rows"):
        read_dataset(write(tmp_path / "d.csv", "text,label\n"))


def test_missing_text_column_lists_columns_and_option(tmp_path):
    with pytest.raises(DataError) as info:
        read_dataset(write(tmp_path / "d.csv", "review,label\nhi,x\n"))
    message = str(info.value)
    assert "'review'" in message and "'label'" in message and "--text-column" in message


def test_missing_label_column_names_option(tmp_path):
    with pytest.raises(DataError) as info:
        read_dataset(write(tmp_path / "d.csv", "text,sentiment\nhi,x\n"))
    assert "'sentiment'" in str(info.value) and "--label-column" in str(info.value)


def test_whitespace_text_names_row_and_column(tmp_path):
    with pytest.raises(DataError) as info:
        read_dataset(write(tmp_path / "reviews.csv", "text,label\nfine,x\n   ,y\n"))
    message = str(info.value)
    assert "reviews.csv row 3" in message and "'text'" in message and "empty" in message


def test_empty_label_names_row_and_column(tmp_path):
    with pytest.raises(DataError) as info:
        read_dataset(write(tmp_path / "d.csv", "text,label\na,x\nb,x\nc, \n"))
    assert "d.csv row 4" in str(info.value) and "'label'" in str(info.value)


def test_too_many_fields_in_row(tmp_path):
    with pytest.raises(DataError) as info:
        read_dataset(write(tmp_path / "d.csv", "text,label\nI liked it, a lot,pos\n"))
    assert "row 2" in str(info.value) and "3 fields" in str(info.value)


def test_malformed_jsonl_line(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(DataError) as info:
        read_dataset(path)
    assert "d.jsonl line 2" in str(info.value) and "JSON" in str(info.value)


def test_jsonl_line_not_an_object(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n')
    with pytest.raises(DataError) as info:
        read_dataset(path)
    assert "d.jsonl line 2" in str(info.value) and "object" in str(info.value)


def test_unsupported_suffix(tmp_path):
    with pytest.raises(DataError, match="unsupported"):
        read_dataset(write(tmp_path / "d.txt", "hello\n"))


# --- images --------------------------------------------------------------------------------------

def test_load_image_converts_to_rgb(tmp_path):
    image = load_image(png(tmp_path / "a.png", color=(0, 0, 0, 0), mode="RGBA"))
    assert image.mode == "RGB" and image.size == (4, 4)
    assert image.getpixel((0, 0)) == (255, 255, 255)  # transparent becomes white, not black


def test_load_image_missing(tmp_path):
    with pytest.raises(DataError) as info:
        load_image(tmp_path / "nope.png")
    assert "nope.png" in info.value.where and "not found" in str(info.value)


def test_load_image_corrupt_and_truncated(tmp_path):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a png")
    truncated = png(tmp_path / "trunc.png", size=(64, 64))
    truncated.write_bytes(truncated.read_bytes()[:-40])
    for path in (garbage, truncated):
        with pytest.raises(DataError) as info:
            load_image(path)
        assert str(path) in info.value.where
        assert "remove or replace" in info.value.fix


def test_image_folder_with_class_subfolders(tmp_path):
    root = tmp_path / "photos"
    png(root / "dog" / "b.png", (0, 0, 255))
    png(root / "cat" / "z.png")
    png(root / "cat" / "A.PNG")  # upper-case extension counts
    png(root / "dog" / "same.png")  # same pixels as cat/z.png
    write(root / "cat" / "notes.txt", "ignored")
    write(root / ".hidden" / "x.png", "ignored")
    data = read_dataset(root)
    assert data.modality == IMAGE
    assert [Path(item).name for item in data.items] == ["A.PNG", "z.png", "b.png", "same.png"]
    assert all(Path(item).is_absolute() for item in data.items)
    assert data.labels == ["cat", "cat", "dog", "dog"]
    assert data.hashes[1] == data.hashes[3] == file_hash(root / "cat" / "z.png")
    assert data.hashes[0] != data.hashes[2]
    assert data.origins[0] == str(root / "cat" / "A.PNG")


def test_image_folder_with_split_subfolders(tmp_path):
    png(tmp_path / "train" / "cat" / "1.png")
    png(tmp_path / "validation" / "dog" / "2.png")
    data = read_dataset(tmp_path)
    assert data.labels == ["cat", "dog"] and data.splits == ["train", "val"]


def test_unlabeled_image_pool(tmp_path):
    png(tmp_path / "b.png")
    png(tmp_path / "a.png")
    png(tmp_path / "sub" / "c.png")
    data = read_dataset(tmp_path, require_labels=False)
    assert data.labels is None
    assert [Path(item).name for item in data.items] == ["a.png", "b.png", "c.png"]
    with pytest.raises(DataError, match="class subfolder"):
        read_dataset(tmp_path)  # a.png, b.png have no class


def test_empty_image_folder(tmp_path):
    write(tmp_path / "readme.txt", "no images")
    with pytest.raises(DataError, match="no image files"):
        read_dataset(tmp_path, require_labels=False)


def test_corrupt_image_in_folder(tmp_path):
    png(tmp_path / "cat" / "ok.png")
    (tmp_path / "cat" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(DataError) as info:
        read_dataset(tmp_path)
    assert "bad.png" in str(info.value)


def test_image_table_paths_relative_to_file(tmp_path):
    png(tmp_path / "img" / "a.png")
    png(tmp_path / "img" / "b.png", (0, 255, 0))
    path = write(tmp_path / "labels.csv", "path,label\nimg/a.png,red\nimg/b.png,green\n")
    data = read_dataset(path)
    assert data.modality == IMAGE
    assert data.items == [str(tmp_path / "img" / "a.png"), str(tmp_path / "img" / "b.png")]
    assert data.hashes[0] == file_hash(tmp_path / "img" / "a.png")
    assert data.origins == ["labels.csv row 2", "labels.csv row 3"]


def test_image_table_missing_image_names_row(tmp_path):
    png(tmp_path / "img" / "a.png")
    path = write(tmp_path / "labels.csv", "path,label\nimg/a.png,red\nimg/gone.png,red\n")
    with pytest.raises(DataError) as info:
        read_dataset(path)
    message = str(info.value)
    assert "labels.csv row 3" in message and "'path'" in message and "gone.png" in message


def test_jsonl_lines_end_at_newline_only(tmp_path):
    """U+2028 and the other Unicode line breaks may stand in a JSON string as they are."""
    path = write(tmp_path / "d.jsonl", '{"text": "one\u2028two\x85three", "label": "a"}\r\n{"text": "b", "label": "b"}\n')
    data = read_dataset(path)
    assert data.items == ["one\u2028two\x85three", "b"]
    assert data.origins == ["d.jsonl line 1", "d.jsonl line 2"]


def test_a_text_over_the_limit_is_cut_with_one_warning_naming_the_row(tmp_path, caplog):
    from headstart.data.dataset import MAX_TEXT_CHARS

    long = "word " * (MAX_TEXT_CHARS // 5 + 1000)
    path = write(tmp_path / "d.csv", f"text,label\nshort,a\n{long},b\n{long}x,b\n")
    with caplog.at_level("WARNING"):
        data = read_dataset(path)
    assert [len(item) for item in data.items] == [5, MAX_TEXT_CHARS, MAX_TEXT_CHARS]
    assert data.hashes[1] == text_hash(long[:MAX_TEXT_CHARS])
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warnings == [f"d.csv row 3, column 'text': the text has {len(long):,} characters; only its first "
                        f"{MAX_TEXT_CHARS:,} are used (and 1 more rows)"]

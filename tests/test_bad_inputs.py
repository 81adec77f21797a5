"""Damaged and hostile inputs to the ``headstart`` command: one line on stderr, exit code 2, no traceback.

Each case is a file a user could hand the command by mistake (a model folder cut short by a copy,
a JSONL line of 200,000 brackets, some other program's SQLite file). They run through the command's
own entry point, ``headstart.cli:app``, in-process.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headstart.cli import app

runner = CliRunner()


def one_line_error(*args) -> str:
    """Run the command; assert exit code 2 and a single ``error:`` line on stderr; return that line."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# -- predict: a model folder damaged on its way -------------------------------------------------------

@pytest.fixture
def model_copy(probe_run, tmp_path):
    _, folder = probe_run
    return shutil.copytree(folder, tmp_path / "model")


def test_predict_with_a_corrupt_config_names_the_file(model_copy, learnable_csv):
    _write(model_copy / "config.json", '{"format": "headstart-model/1", "backbone": ')
    line = one_line_error("predict", model_copy, learnable_csv)
    assert str(model_copy / "config.json") in line and "not readable JSON" in line


def test_predict_with_a_config_of_the_wrong_shape_names_the_field(model_copy, learnable_csv):
    config = json.loads((model_copy / "config.json").read_text())
    _write(model_copy / "config.json", json.dumps({**config, "classes": "positive"}))
    line = one_line_error("predict", model_copy, learnable_csv)
    assert "config.json" in line and "field 'classes'" in line and "'positive'" in line


def test_predict_with_a_truncated_head_names_the_file(model_copy, learnable_csv):
    head = model_copy / "head.safetensors"
    _write(head, head.read_bytes()[: head.stat().st_size // 2])
    line = one_line_error("predict", model_copy, learnable_csv)
    assert str(head) in line and "cannot read the head weights" in line


def test_predict_with_a_head_of_another_model_says_it_does_not_fit(model_copy, learnable_csv):
    config = json.loads((model_copy / "config.json").read_text())
    _write(model_copy / "config.json", json.dumps({**config, "classes": [*config["classes"], "extra"]}))
    line = one_line_error("predict", model_copy, learnable_csv)
    assert "head.safetensors" in line and "does not fit the model's 4 classes" in line


# -- fit: data files that break JSON and Unicode -----------------------------------------------------

GOOD_LINES = '{"text": "the team won", "label": "sports"}\n{"text": "sweet soup", "label": "food"}\n'


@pytest.mark.parametrize("bad_line, expected", [
    ("[" * 200_000, "nested too deeply"),
    ('{"text": "a", "label": ' + "9" * 5000 + "}", "4300 digits"),
    ('{"text": "half a pair \\ud83d here", "label": "food"}', "surrogate pair ('\\ud83d')"),
    ('{"text": "a \\u0000 NUL", "label": "food"}', "NUL character ('\\x00')"),
], ids=["nested", "long-int", "lone-surrogate", "nul"])
def test_fit_on_a_jsonl_line_python_cannot_take_names_the_line(tmp_path, bad_line, expected):
    data = _write(tmp_path / "data.jsonl", GOOD_LINES + bad_line + "\n")
    line = one_line_error("fit", data, "--out", tmp_path / "out")
    assert "data.jsonl line 3" in line and expected in line
    assert not (tmp_path / "out").exists()


def test_fit_on_a_csv_cell_with_a_nul_names_the_row_and_field(tmp_path):
    data = _write(tmp_path / "data.csv", "text,label\nthe team,sports\nsweet\x00soup,food\n")
    line = one_line_error("fit", data, "--out", tmp_path / "out")
    assert "data.csv row 3" in line and "field 'text'" in line and "NUL" in line


# -- label status: files that are not a labeling project ----------------------------------------------

def test_label_status_on_a_file_that_is_not_a_database(tmp_path):
    db = _write(tmp_path / "labels.db", b"just some bytes, not SQLite " * 40)
    line = one_line_error("label", "status", "--db", db)
    assert str(db) in line and "file is not a database" in line


def test_label_status_on_another_programs_sqlite_file_leaves_it_untouched(tmp_path):
    db = tmp_path / "photos.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE albums (name TEXT)")
    connection.close()
    line = one_line_error("label", "status", "--db", db)
    assert str(db) in line and "not a headstart labeling database" in line
    with sqlite3.connect(db) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    connection.close()
    assert tables == ["albums"]  # no alembic_version, items, labels... written into it

"""The input of a prediction keeps every column of every row, so predictions join back to it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from headstart.data.input_table import read_input_table
from headstart.errors import DataError


def test_jsonl_cells_are_kept_as_the_file_has_them(tmp_path):
    data = tmp_path / "pool.jsonl"
    data.write_text('{"id": 7, "text": "the team", "meta": {"lang": "en"}, "ok": true}\n\n'
                    '{"id": 8, "text": "some soup", "extra": null}\n', encoding="utf-8")
    table = read_input_table(data, id_column="id")
    assert table.columns == ["id", "text", "meta", "ok", "extra"]
    assert table.rows == [["7", "the team", '{"lang": "en"}', "true", ""], ["8", "some soup", "", "", ""]]
    assert table.dataset.items == ["the team", "some soup"]


def test_blank_rows_are_skipped_in_the_cells_as_in_the_items(tmp_path):
    data = tmp_path / "pool.tsv"
    data.write_text("note\ttext\nfirst\tthe team\n\t\n\tsome soup\n", encoding="utf-8")
    table = read_input_table(data)
    assert table.rows == [["first", "the team"], ["", "some soup"]]
    assert table.dataset.items == ["the team", "some soup"]


def test_an_input_column_named_like_a_prediction_column_is_replaced_with_a_warning(tmp_path, caplog):
    data = tmp_path / "again.csv"
    data.write_text("text,prediction,p_b,note\nthe team,a,0.1,x\n", encoding="utf-8")
    table = read_input_table(data)
    with caplog.at_level(logging.WARNING):
        header, rows = table.with_predictions(["a", "b"], np.array([[0.25, 0.75]]))
    assert header == ["text", "note", "prediction", "confidence", "p_a", "p_b"]
    assert rows == [["the team", "x", "b", "0.750000", "0.250000", "0.750000"]]
    assert "'prediction', 'p_b' are replaced" in caplog.text


def test_an_id_column_of_a_folder_can_only_be_the_path(tmp_path, image_folder):
    with pytest.raises(DataError, match="no 'name' column for --id-column; columns found: 'path'"):
        read_input_table(image_folder, id_column="name")
    table = read_input_table(image_folder, id_column="path")
    assert table.rows[0] == ["blue/blue_00.png"] and len(table.rows) == len(table.dataset) == 36

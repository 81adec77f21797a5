"""Atomic writes: a file appears whole or not at all, and nothing temporary is left behind."""

from __future__ import annotations

import csv
import json
import stat

import numpy as np
import pytest

from headstart import output

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_text_creates_the_folder_and_replaces_the_file(tmp_path):
    path = tmp_path / "deep" / "er" / "notes.txt"
    assert output.write_text(path, "first\n") == path
    output.write_text(path, "second: caf\u00e9\n")
    assert path.read_text(encoding="utf-8") == "second: caf\u00e9\n"
    assert names(path.parent) == ["notes.txt"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # shareable, not mkstemp's 0600


def test_a_write_that_raises_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("the old report", encoding="utf-8")
    with pytest.raises(RuntimeError, match="crash"), output.atomic_open(path) as handle:
        handle.write("half of a new rep")
        raise RuntimeError("crash while writing")
    assert path.read_text(encoding="utf-8") == "the old report"
    assert names(tmp_path) == ["report.html"]


def test_a_failed_first_write_leaves_nothing(tmp_path):
    path = tmp_path / "predictions.csv"
    def failing_rows():
        yield from [["a", 1], ["b", 2]]
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        output.write_csv(path, ["item", "n"], failing_rows())
    assert names(tmp_path) == []


def test_json_that_cannot_be_written_leaves_the_old_file(tmp_path):
    path = tmp_path / "metrics.json"
    output.write_json(path, {"accuracy": 0.5})
    with pytest.raises(TypeError, match="object"):
        output.write_json(path, {"accuracy": 0.9, "model": object()})
    assert json.loads(path.read_text()) == {"accuracy": 0.5}
    assert names(tmp_path) == ["metrics.json"]


def test_write_json_writes_numpy_values_as_plain_numbers(tmp_path):
    path = output.write_json(tmp_path / "m.json", {"n": np.int64(3), "acc": np.float32(0.25),
                                                   "counts": np.array([1, 2]), "where": tmp_path})
    assert json.loads(path.read_text()) == {"n": 3, "acc": 0.25, "counts": [1, 2], "where": str(tmp_path)}
    assert path.read_text().endswith("}\n")


def test_write_csv_round_trips(tmp_path):
    path = output.write_csv(tmp_path / "out.csv", ["item", "label"], [["a, with comma", "x"], ["b\nnewline", "y"]])
    with path.open(newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [["item", "label"], ["a, with comma", "x"], ["b\nnewline", "y"]]


def test_write_bytes_and_atomic_path(tmp_path):
    path = output.write_bytes(tmp_path / "plot.png", PNG_MAGIC + b"data")
    assert path.read_bytes() == PNG_MAGIC + b"data"
    # atomic_path hands out a name for tools that write files themselves (an ONNX export)
    with output.atomic_path(tmp_path / "model.onnx") as temporary:
        assert temporary.parent == tmp_path and temporary.name != "model.onnx"
        temporary.write_bytes(b"graph")
        assert not (tmp_path / "model.onnx").exists()
    assert (tmp_path / "model.onnx").read_bytes() == b"graph"
    with pytest.raises(KeyboardInterrupt), output.atomic_path(tmp_path / "model.onnx") as temporary:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt
    assert (tmp_path / "model.onnx").read_bytes() == b"graph"
    assert names(tmp_path) == ["model.onnx", "plot.png"]


def test_atomic_open_refuses_appending(tmp_path):
    with pytest.raises(ValueError, match="whole files"), output.atomic_open(tmp_path / "log.txt", "a"):
        pass
    assert names(tmp_path) == []


def test_figures_become_png_bytes_and_base64():
    fig = output.new_figure(3.0, 2.0)
    fig.add_subplot().plot([0, 1], [1, 0])
    png = output.figure_png(fig)
    assert png.startswith(PNG_MAGIC)
    text = output.png_base64(png)
    assert isinstance(text, str) and text.startswith("iVBORw0KGgo")
    assert output.png_base64(None) is None

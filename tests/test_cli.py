"""The headstart command: fit, predict, report, and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from headstart.backbones import create_backbone
from headstart.cli import app
from headstart.data import read_dataset
from headstart.learn.head import LinearHead
from headstart.model import Model

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# -- the happy paths ---------------------------------------------------------------------------------

def test_fit_writes_the_folder_and_prints_the_accuracy(text_csv, tiny_bert_name, tmp_path):
    data = text_csv(n_per_class=12, seed=11)
    out = tmp_path / "runs" / "topics"
    result = invoke("fit", data, "--backbone", tiny_bert_name, "--mode", "probe", "--out", out, "--split",
                    "60/20/20")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"test accuracy {metrics['accuracy']:.4f}" in result.stdout
    assert f"macro-F1 {metrics['macro_f1']:.4f}" in result.stdout
    assert f"({metrics['n']} items" in result.stdout and metrics["n"] == 6  # 20% of 12, rounded: 2 a class
    assert str(out / "report.html") in result.stdout
    assert {"config.json", "head.safetensors", "report.html"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["counts"] == {"train": 24, "val": 6, "test": 6}


@pytest.mark.requires_effnet  # the default image backbone: the packaged EfficientNet-Lite0
def test_fit_no_mirror_fine_tunes_images_that_stay_unmirrored(image_folder, tmp_path):
    out = tmp_path / "unmirrored"
    result = invoke("fit", image_folder, "--mode", "finetune", "--no-mirror", "--image-size", 32, "--epochs", 1,
                    "--no-baseline", "--out", out)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"]["options"] == {"image_size": 32, "mirror": False}
    assert config["finetune"]["batch_size"] == 32  # the image default: the command sets none of its own
    loaded = Model.load(out)
    assert loaded.finetuned and not loaded.sees_mirror_images


@pytest.mark.parametrize("quiet", ["1", "0"])
def test_fit_states_the_scratch_verdict_once(text_csv, tiny_bert_name, tmp_path, monkeypatch, quiet):
    monkeypatch.setenv("HEADSTART_QUIET", quiet)
    data = text_csv(n_per_class=12, seed=11)
    out = tmp_path / "run"
    result = invoke("fit", data, "--backbone", tiny_bert_name, "--mode", "probe", "--out", out)
    assert result.exit_code == 0, result.output
    verdict = json.loads((out / "metrics.json").read_text())["baseline"]["verdict"]
    assert verdict.startswith("Verdict: transfer")
    # quiet: in the summary on stdout; otherwise in fit's status lines on stderr, and not again
    assert result.stdout.count("Verdict:") == (1 if quiet == "1" else 0)
    assert (result.stdout + result.stderr).count("Verdict:") == 1


NEW_TEXTS = ["the coach and the team win the match", "spicy pasta with cheese", "my laptop screen", "a robot chip"]


def test_predict_writes_one_row_an_item_with_probabilities(probe_run, tmp_path):
    _, folder = probe_run
    data = tmp_path / "new.csv"
    data.write_text("text\n" + "\n".join(NEW_TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "predictions" / "new.csv"
    result = invoke("predict", folder, data, "--out", out)
    assert result.exit_code == 0, result.output
    assert "4 predictions written" in result.stderr
    rows = _read_csv(out.read_text(encoding="utf-8"))
    classes = json.loads((folder / "labels.json").read_text())
    assert list(rows[0]) == ["text", "prediction", "confidence", *[f"p_{c}" for c in classes]]
    assert [row["text"] for row in rows] == NEW_TEXTS  # was an 'item' column: "new.csv row 2"...
    proba = np.array([[float(row[f"p_{c}"]) for c in classes] for row in rows])
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    expected = Model.load(folder).predict_proba(read_dataset(data, require_labels=False))
    np.testing.assert_allclose(proba, expected, atol=2e-6)
    assert [row["prediction"] for row in rows] == [classes[i] for i in expected.argmax(1)]
    np.testing.assert_allclose([float(row["confidence"]) for row in rows], expected.max(1), atol=2e-6)
    assert [p.name for p in out.parent.iterdir()] == ["new.csv"]  # no temporary file left

    # Without --out the CSV goes to stdout, the same rows.
    result = invoke("predict", folder, data)
    assert result.exit_code == 0, result.output
    assert _read_csv(result.stdout) == rows


def test_predict_keeps_the_input_columns_and_puts_the_id_first(probe_run, tmp_path):
    _, folder = probe_run
    data = _write(tmp_path / "tickets.csv", "text,channel,ticket\n" + "".join(
        f'"{text}",{channel},T-{i}\n' for i, (text, channel) in enumerate(zip(NEW_TEXTS, "ewew"))))
    out = tmp_path / "predictions.csv"
    result = invoke("predict", folder, data, "--id-column", "ticket", "--out", out)
    assert result.exit_code == 0, result.output
    rows = _read_csv(out.read_text(encoding="utf-8"))
    classes = json.loads((folder / "labels.json").read_text())
    assert list(rows[0]) == ["ticket", "text", "channel", "prediction", "confidence", *[f"p_{c}" for c in classes]]
    assert [(row["ticket"], row["text"], row["channel"]) for row in rows] == \
        [(f"T-{i}", text, channel) for i, (text, channel) in enumerate(zip(NEW_TEXTS, "ewew"))]
    expected = Model.load(folder).predict_proba(NEW_TEXTS)
    assert [row["prediction"] for row in rows] == [classes[i] for i in expected.argmax(1)]


@pytest.mark.parametrize("content, expected", [
    ("text,ticket\nthe team,1\nsome soup,2\n", ["--id-column", "'id'", "'text'", "'ticket'"]),
    ("text,id\nthe team,1\nsome soup,\n", ["tickets.csv row 3", "column 'id'", "empty"]),
    ("text,id\nthe team,7\nsome soup,8\nthe chip,7\n", ["tickets.csv row 4", "column 'id'", "'7'", "row 2"]),
], ids=["missing", "empty", "repeated"])
def test_a_bad_id_column_is_one_line_and_writes_nothing(probe_run, tmp_path, content, expected):
    _, folder = probe_run
    data = _write(tmp_path / "tickets.csv", content)
    out = tmp_path / "out" / "predictions.csv"
    result = invoke("predict", folder, data, "--id-column", "id", "--out", out)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in expected:
        assert part in lines[0], (part, lines[0])
    assert not out.parent.exists()


def test_predict_on_a_folder_of_images_names_each_image_relative_to_the_folder(image_folder, tmp_path):
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=32)
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.1, (3, 512)).astype(np.float32), np.zeros(3, np.float32))
    folder = Model(backbone, head, ["blue", "dark", "red"], backbone_options={"image_size": 32}).save(tmp_path / "m")
    result = invoke("predict", folder, image_folder, "--id-column", "path")
    assert result.exit_code == 0, result.output
    rows = _read_csv(result.stdout)
    assert list(rows[0])[:2] == ["path", "prediction"]
    paths = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.rglob("*.png"))
    assert [row["path"] for row in rows] == paths and paths[0] == "blue/blue_00.png"


def test_report_prints_the_metrics(probe_run):
    _, folder = probe_run
    metrics = json.loads((folder / "metrics.json").read_text())
    result = invoke("report", folder)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
                        f"ECE {metrics['ece']:.4f}  n {metrics['n']}")
    for name, row in metrics["per_class"].items():
        assert any(line.startswith(name) and f"{row['f1']:.4f}" in line and line.endswith(str(row["support"]))
                   for line in lines), name
    assert lines[-1] == f"report: {folder / 'report.html'}"


def test_backbones_lists_the_registry():
    result = invoke("backbones")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.stdout.splitlines()[:-1]]
    assert names == ["minilm-l6", "mpnet-base", "effnet-lite0", "effnet-lite1", "effnet-lite2"]


# -- errors a user can fix: exit code 2, one line naming the place, nothing written --------------------

def _write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _non_utf8(tmp, text_csv, image_folder):
    return [_write(tmp / "data.csv", b"text,label\nthe team,sports\ncaf\xe9 pasta,food\n")], ["data.csv", "line 3",
                                                                                           "UTF-8"]


def _empty_text(tmp, text_csv, image_folder):
    rows = "text,label\nthe team,sports\nsweet soup,food\n   ,tech\nthe chip,tech\n"
    return [_write(tmp / "data.csv", rows)], ["data.csv row 4", "column 'text'", "empty"]


def _missing_label_column(tmp, text_csv, image_folder):
    return [_write(tmp / "data.csv", "text,category\nthe team,sports\nsoup,food\n")], ["data.csv", "'label'",
                                                                                       "'category'"]


def _class_with_one_item(tmp, text_csv, image_folder):
    return [text_csv(n_per_class=5, extra_rows=[("a lonely sentence", "weather")])], ["data.csv", "'weather'",
                                                                                       "1 item"]


def _unseen_test_label(tmp, text_csv, image_folder):
    test = _write(tmp / "test.csv", "text,label\nthe team won,sports\nit will rain today,weather\n")
    return [text_csv(n_per_class=6), "--test", test], ["test.csv row 3", "'weather'"]


def _missing_image(tmp, text_csv, image_folder):
    table = _write(image_folder / "images.csv", "path,label\nred/red_00.png,red\nblue/gone.png,blue\n")
    return [table], ["images.csv row 3", "column 'path'", "gone.png"]


def _corrupt_image(tmp, text_csv, image_folder):
    _write(image_folder / "blue" / "blue_03.png", b"\x89PNG\r\n\x1a\n this is not an image")
    return [image_folder], ["blue_03.png", "cannot read image"]


def _unknown_backbone(tmp, text_csv, image_folder):
    return [text_csv(n_per_class=6), "--backbone", "bert-gigantic"], ["--backbone", "'bert-gigantic'", "minilm-l6"]


def _bad_split(tmp, text_csv, image_folder):
    return [text_csv(n_per_class=6), "--split", "70/30"], ["--split", "70/30"]


def _missing_file(tmp, text_csv, image_folder):
    return [tmp / "nowhere.csv"], ["nowhere.csv", "not found"]


BAD_INPUTS = [_non_utf8, _empty_text, _missing_label_column, _class_with_one_item, _unseen_test_label,
              _missing_image, _corrupt_image, _unknown_backbone, _bad_split, _missing_file]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[case.__name__.strip("_") for case in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_code_2(case, tmp_path, text_csv, image_folder):
    args, expected = case(tmp_path, text_csv, image_folder)
    out = tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke("fit", *args, "--out", out)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for part in expected:
        assert part in lines[0], (part, lines[0])
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no staging or report file left either


@pytest.mark.requires_effnet
def test_max_length_with_an_image_backbone_does_not_apply(image_folder, tmp_path):
    out = tmp_path / "out"
    result = invoke("fit", image_folder, "--backbone", "effnet-lite0", "--max-length", "64", "--image-size", 32,
                    "--mode", "probe", "--no-baseline", "--out", out)
    assert result.exit_code == 0, result.output
    assert Model.load(out).backbone.image_size == 32  # the image option applies; the text one is left out


def test_report_of_a_folder_that_is_not_a_model(tmp_path):
    result = invoke("report", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and str(tmp_path) in result.stderr
    result = invoke("predict", tmp_path, _write(tmp_path / "x.csv", "text\nthe team\n"))
    assert result.exit_code == 2 and "config.json" in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    """--debug lets the error through: the installed command prints a traceback and exits with 1.

    (One real process: the exit codes and one-line messages of all other cases are checked in-process.)
    """
    command = Path(sys.executable).parent / "headstart"
    data = _write(tmp_path / "data.csv", "text,label\nthe team,sports\n,food\n")
    done = subprocess.run([command, "--debug", "fit", data, "--out", tmp_path / "out"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "DataError" in done.stderr and "the text is empty" in done.stderr
    assert not (tmp_path / "out").exists()
    # The same input without --debug, in-process: one line, exit code 2.
    result = invoke("fit", data, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: data.csv row 3, column 'text': the text is empty "
                                          "(write the text or delete the row)"]


# -- without the labeling extra ----------------------------------------------------------------------

LABEL_EXTRA = {name: name for name in ("sqlalchemy", "alembic", "fastapi", "uvicorn", "cleanlab")}


def _run_without(tmp_path, blocked: dict, *args):
    """Run the installed ``headstart`` where importing a module of ``blocked`` (or a submodule) fails
    as if the package it names were not installed: a sitecustomize.py on PYTHONPATH puts a finder
    that refuses them first on sys.meta_path."""
    (tmp_path / "sitecustomize.py").write_text(f"""
import importlib.abc
import sys

BLOCKED = {blocked!r}


class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        missing = BLOCKED.get(name) or BLOCKED.get(name.partition(".")[0])
        if missing:
            raise ModuleNotFoundError(f"No module named {{missing!r}}", name=missing)
        return None


sys.meta_path.insert(0, Absent())
""", encoding="utf-8")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    return subprocess.run([Path(sys.executable).parent / "headstart", *args], capture_output=True, text=True,
                          check=False, timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": path, "COLUMNS": "200"})


def _one_install_line(done, package: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    expected = f"error: this command needs {package}, which is not installed (pip install 'headstart[label]')"
    assert done.stderr.splitlines() == [expected]


def test_without_the_labeling_extra_the_other_commands_work(tmp_path, text_csv, tiny_bert_name):
    done = _run_without(tmp_path, LABEL_EXTRA, "--help")
    assert done.returncode == 0, done.stderr
    assert "fit" in done.stdout and "label" in done.stdout
    done = _run_without(tmp_path, LABEL_EXTRA, "backbones")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "minilm-l6"
    out = tmp_path / "run"
    done = _run_without(tmp_path, LABEL_EXTRA, "fit", text_csv(n_per_class=8), "--backbone", tiny_bert_name,
                        "--mode", "probe", "--no-baseline", "--out", out)
    assert done.returncode == 0, done.stderr
    assert (out / "report.html").is_file()


@pytest.mark.parametrize("args", [["label", "status"], ["label", "init", "pool.csv", "--labels", "a,b"]])
def test_without_the_labeling_extra_a_label_command_says_what_to_install(tmp_path, args):
    done = _run_without(tmp_path, LABEL_EXTRA, *args, "--db", tmp_path / "labels.db")
    _one_install_line(done, "sqlalchemy")
    assert not (tmp_path / "labels.db").exists()


def test_a_labeling_cli_that_cannot_be_imported_leaves_a_label_command_that_says_what_to_install(tmp_path):
    blocked = {"headstart.labeling.cli": "fastapi"}  # as if importing the labeling commands needed fastapi
    done = _run_without(tmp_path, blocked, "--help")
    assert done.returncode == 0, done.stderr
    assert "fit" in done.stdout and "not installed: pip install 'headstart[label]'" in done.stdout
    for args in (["label", "--help"], ["label", "init", "pool.csv", "--labels", "a,b"]):
        _one_install_line(_run_without(tmp_path, blocked, *args), "fastapi")


def test_a_missing_headstart_module_is_a_bug_not_a_missing_extra(tmp_path):
    # headstart.labeling itself: the labeling commands import nothing else of headstart's before they are run
    done = _run_without(tmp_path, {"headstart.labeling": "headstart.labeling"}, "--help")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "No module named 'headstart.labeling'" in done.stderr

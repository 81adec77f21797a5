"""``headstart shift``: the command on a tiny backbone, its JSON, its page, and its one-line refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headstart.cli import app
from headstart.evaluate.shift import MIN_ITEMS
from cli_helpers import one_error_line

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_pool(path: Path, texts: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([t] for t in texts)
    return path


def one_class_texts(write_csv, path: Path, label: str, n: int, seed: int) -> list[str]:
    """``n`` distinct texts of one class of the shared test vocabulary."""
    rows = csv.DictReader(open(write_csv(path, n_per_class=n, classes=(label,), seed=seed), encoding="utf-8"))
    return [row["text"] for row in rows]


def test_shift_prints_json_and_writes_the_page(text_csv, tiny_bert_name, tmp_path, write_csv):
    source = text_csv("source.csv", n_per_class=30)                    # sports, food, tech: a third each
    target = write_pool(tmp_path / "target.csv", one_class_texts(write_csv, tmp_path / "t.csv", "tech", 60, seed=5))  # tech only, unlabeled
    out = tmp_path / "shift-out"
    result = invoke("-q", "shift", source, target, "--backbone", tiny_bert_name, "--json", "--out", out)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) >= {"auc", "p_value", "shifted", "priors", "typical", "report"}
    assert 0.0 <= summary["auc"] <= 1.0 and 0.0 < summary["p_value"] <= 1.0
    assert isinstance(summary["shifted"], bool)
    priors = summary["priors"]
    assert set(priors) == {"sports", "food", "tech"}
    assert priors["tech"]["source"] == pytest.approx(1 / 3)
    # all of the target is tech: the EM estimate moves towards it, the others away
    assert priors["tech"]["target"] > 0.6
    assert priors["tech"]["labeled"] is None                              # the target has no labels
    assert len(summary["typical"]["target"]) == 5
    assert "map" not in summary                                            # the map is in shift.json
    saved = json.loads((out / "shift.json").read_text(encoding="utf-8"))
    assert len(saved["map"]["target"]) == summary["items_per_side"]
    html = (out / "shift.html").read_text(encoding="utf-8")
    assert "Most typical of the target" in html and "data:image/png;base64," in html
    assert (out / "shift.png").read_bytes()[:4] == b"\x89PNG"


def test_shift_without_json_prints_a_table_and_the_sentence(text_csv, tiny_bert_name, tmp_path):
    source = text_csv("source.csv", n_per_class=20)
    target = text_csv("target.csv", n_per_class=20, seed=1)
    result = invoke("-q", "shift", source, target, "--backbone", tiny_bert_name, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "domain AUC" in result.output and "prior of food" in result.output
    assert "report:" in result.output and (tmp_path / "o" / "shift.html").is_file()


def test_a_target_of_another_modality_is_one_line_and_exit_2(text_csv, image_folder, tmp_path):
    result = invoke("shift", text_csv("source.csv"), image_folder, "--out", tmp_path / "o")
    one_error_line(result, "the target is image, the source text")
    assert not (tmp_path / "o").exists()


def test_an_empty_target_is_one_line_and_exit_2(text_csv, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text\n", encoding="utf-8")
    result = invoke("shift", text_csv("source.csv"), empty, "--out", tmp_path / "o")
    one_error_line(result, "empty.csv")
    assert not (tmp_path / "o").exists()


def test_a_target_too_small_says_how_many_items_are_needed(text_csv, tmp_path, write_csv):
    small = write_pool(tmp_path / "small.csv", one_class_texts(write_csv, tmp_path / "f.csv", "food", 7, seed=2))
    result = invoke("shift", text_csv("source.csv"), small, "--out", tmp_path / "o")
    one_error_line(result, "small.csv", "the target has 7 item(s)", f"at least {MIN_ITEMS} items on each side")


def test_too_few_items_a_side_or_no_permutations_are_refused(text_csv, tmp_path):
    source = text_csv("source.csv")
    one_error_line(invoke("shift", source, source, "--max-items", 5), "--max-items", str(MIN_ITEMS))
    one_error_line(invoke("shift", source, source, "--permutations", 19), "--permutations", "at least 99")

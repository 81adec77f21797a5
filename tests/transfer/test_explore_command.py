"""``headstart explore``: the command on a tiny backbone, its JSON, its page, and its one-line refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from headstart.cli import app
from cli_helpers import one_error_line

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_explore_prints_json_and_writes_the_page_with_its_plot(text_csv, tiny_bert_name, tmp_path):
    data = text_csv("pool.csv", n_per_class=12, extra_rows=[("<script>alert(1)</script> goal", "sports")])
    out = tmp_path / "explore-out"
    result = invoke("-q", "explore", data, "--backbone", tiny_bert_name, "--json", "--out", out)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) >= {"k", "criterion", "silhouettes", "clusters", "merges", "splits", "report"}
    assert "map" not in summary                                   # the map is in explore.json
    assert summary["items"] == 37 and summary["classes"] == ["food", "sports", "tech"]
    assert sum(c["size"] for c in summary["clusters"]) == 37 and len(summary["clusters"]) == summary["k"]
    assert 2 <= summary["k"] <= 12 and str(summary["k"]) in summary["silhouettes"]
    assert isinstance(summary["merges"], list) and isinstance(summary["splits"], list)
    saved = json.loads((out / "explore.json").read_text(encoding="utf-8"))
    assert len(saved["map"]["points"]) == 37
    html = (out / "explore.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "Cluster 1: its most typical items" in html
    assert "<script>alert" not in html                            # items are escaped
    assert (out / "explore.png").read_bytes()[:4] == b"\x89PNG"


def test_explore_of_an_unlabeled_pool_prints_the_clusters_table(tiny_bert_name, tmp_path, write_csv):
    labeled = write_csv(tmp_path / "l.csv", n_per_class=8)
    pool = tmp_path / "pool.csv"
    with open(labeled, encoding="utf-8") as source, open(pool, "w", newline="", encoding="utf-8") as target:
        csv.writer(target).writerows([[row["text"]] for row in [{"text": "text"}, *csv.DictReader(source)]])
    result = invoke("-q", "explore", pool, "--backbone", tiny_bert_name, "--clusters", 3, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "most typical" in result.output and "3 clusters" in result.output and "merge" not in result.output
    saved = json.loads((tmp_path / "o" / "explore.json").read_text(encoding="utf-8"))
    assert saved["k"] == 3 and saved["merges"] is None


def test_an_empty_pool_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text\n", encoding="utf-8")
    one_error_line(invoke("explore", empty, "--out", tmp_path / "o"), "empty.csv")
    assert not (tmp_path / "o").exists()


def test_a_pool_of_one_item_is_one_line_and_exit_2(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("text\nonly one\n", encoding="utf-8")
    one_error_line(invoke("explore", one, "--out", tmp_path / "o"), "one.csv", "1 item(s)", "at least 3")
    assert not (tmp_path / "o").exists()


def test_an_unreadable_or_missing_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text\n\xff\xfe\x00 not utf-8\n")
    one_error_line(invoke("explore", bad, "--out", tmp_path / "o"), "bad.csv")
    one_error_line(invoke("explore", tmp_path / "missing.csv"), "missing.csv", "not found")
    one_error_line(invoke("explore", Path(__file__)), "unsupported file type")


def test_an_image_folder_of_class_subfolders_is_a_labeled_pool_with_thumbnails(image_folder, tmp_path):
    from headstart.backbones import create_backbone
    from headstart.transfer.explore import explore_pool, read_pool

    pool = read_pool(image_folder)
    assert pool.labels is not None and len(set(pool.labels)) >= 2      # the subfolders are its classes
    report = explore_pool(pool, create_backbone("timm:resnet18", pretrained=False, image_size=32))
    assert report.summary["modality"] == "image" and report.summary["classes"] == sorted(set(pool.labels))
    html = (report.save(tmp_path / "o") / "explore.html").read_text(encoding="utf-8")
    assert html.count('<img class="thumb"') >= report.summary["k"]      # the typical items as thumbnails
    assert "iVBOR" not in json.dumps(report.summary)                    # PNGs are made for the page, not kept in the JSON


def test_more_clusters_than_items_or_none_is_one_line_and_exit_2(text_csv, tmp_path):
    data = text_csv("pool.csv", n_per_class=3)
    one_error_line(invoke("explore", data, "--clusters", 10, "--out", tmp_path / "o"), "--clusters",
                    "10 clusters of 9 items", "give 1 to 9")
    one_error_line(invoke("explore", data, "--clusters", 0, "--out", tmp_path / "o"), "--clusters")
    assert not (tmp_path / "o").exists()

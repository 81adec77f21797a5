"""Benchmark results files: a rerun on the same day gets a file of its own and keeps rewriting it."""

from __future__ import annotations

import json

from labeling.labeling_helpers import load_benchmark


def test_a_second_run_on_the_same_day_never_overwrites_the_first(tmp_path, monkeypatch):
    common = load_benchmark("common")
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(common, "_WRITING", {})
    first = common.write_results("speed", {"rows": [1]})
    assert common.write_results("speed", {"rows": [1, 2]}) == first  # a run rewrites its own file as it goes
    monkeypatch.setattr(common, "_WRITING", {})  # another process, later that day
    second = common.write_results("speed", {"rows": [3]})
    assert second != first and second.name.startswith(first.stem + "T")
    assert json.loads(first.read_text())["rows"] == [1, 2] and json.loads(second.read_text())["rows"] == [3]
    assert sorted(tmp_path.glob("speed-2*.json"))[-1] == second  # the newest sorts last, as --resume reads it


def test_a_resumed_run_continues_todays_newest_file(tmp_path, monkeypatch):
    """label_budget.py --resume merges the rows on disk before each save, so runs of several methods share a file."""
    common = load_benchmark("common")
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(common, "_WRITING", {})
    first = common.write_results("budget", {"rows": [1]})
    monkeypatch.setattr(common, "_WRITING", {})
    second = common.write_results("budget", {"rows": [2]})  # a fresh run: a file of its own
    monkeypatch.setattr(common, "_WRITING", {})
    assert common.write_results("budget", {"rows": [2, 3]}, continue_today=True) == second != first
    assert json.loads(first.read_text())["rows"] == [1] and json.loads(second.read_text())["rows"] == [2, 3]

"""The model folder a fit writes: the report, and the target's shift page beside it when a target is given."""

from __future__ import annotations

import csv
import json

import headstart
from headstart.data import read_dataset


def _unlabeled(path, texts):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["text"], *([t] for t in texts)])
    return path


def test_a_fit_with_a_target_keeps_the_shift_page_beside_the_report(text_csv, tiny_bert_name, tmp_path):
    data = read_dataset(text_csv("target_source.csv", n_per_class=40, seed=5))
    tech = [t for t, label in zip(data.items, data.labels) if label == "tech"]
    target = _unlabeled(tmp_path / "target.csv", tech)
    out = tmp_path / "adapted"
    model = headstart.fit(text_csv("source.csv"), backbone=tiny_bert_name, mode="probe", target=target,
                          adapt="none", out=out, baseline=False)
    saved = json.loads((out / "shift.json").read_text(encoding="utf-8"))
    assert saved["auc"] == model.info["shift"]["auc"]
    assert saved["items_per_side"] >= 20
    # An all-tech target: the estimated prior of tech rises above the source's third.
    assert saved["priors"]["tech"]["target"] > saved["priors"]["tech"]["source"]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert 'href="shift.html"' in report
    assert "<html" in (out / "shift.html").read_text(encoding="utf-8").lower()


def test_a_fit_without_a_target_writes_no_shift_page(probe_run):
    model, folder = probe_run
    assert "shift" not in model.info
    assert not (folder / "shift.html").exists()
    assert "shift.html" not in (folder / "report.html").read_text(encoding="utf-8")

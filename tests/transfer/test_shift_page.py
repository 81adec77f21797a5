"""The shift page, from a summary alone: as files in a folder, and as texts for a model folder."""

from __future__ import annotations

import json

import numpy as np
from markupsafe import escape

from headstart.evaluate.priors import prior_summary
from headstart.evaluate.shift import shift_test
from headstart.transfer.shift_page import PAGE, shift_page_files, summary_sentence, write_shift_page


def synthetic_summary() -> dict:
    rng = np.random.default_rng(0)
    source, target = rng.normal(size=(60, 6)), rng.normal(size=(60, 6)) + 1.5
    test = shift_test(source, target, progress=False)
    items = [f"item {i}" for i in range(60)]
    summary = test.summary(items, [f"s.csv row {i}" for i in range(60)], items, [f"t.csv row {i}" for i in range(60)])
    proba = np.tile([0.2, 0.8], (60, 1))
    summary.update(prior_summary(["a", "b"], np.array([0, 1] * 30), proba))
    return summary


def test_the_page_in_a_folder_and_as_texts_say_the_same():
    summary = synthetic_summary()
    files = shift_page_files(summary)
    assert set(files) == {PAGE, "shift.json"}
    assert json.loads(files["shift.json"])["auc"] == summary["auc"]
    html = files[PAGE]
    assert str(escape(summary_sentence(summary))) in html and "data:image/png;base64," in html
    assert "t.csv row" in html and "Class priors" in html


def test_write_shift_page_leaves_json_png_and_html(tmp_path):
    summary = synthetic_summary()
    folder = write_shift_page(tmp_path / "out", summary)
    assert json.loads((folder / "shift.json").read_text())["shifted"] == summary["shifted"]
    assert (folder / "shift.png").read_bytes()[:4] == b"\x89PNG"
    assert "The target is shifted" in (folder / PAGE).read_text(encoding="utf-8")


def test_the_sentence_tells_no_shift_from_a_weak_one():
    base = {"auc": 0.52, "p_value": 0.4, "shifted": False}
    assert summary_sentence(base).startswith("No shift that matters")
    assert summary_sentence({**base, "auc": 0.7, "p_value": 0.03}).startswith("No shift shown: the difference is "
                                                                             "not significant")

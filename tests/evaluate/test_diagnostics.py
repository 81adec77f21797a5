"""The report's view of the test split: the mistakes, most confident first; the CSV of every prediction."""

import base64
import csv
import io
import re

import numpy as np
from PIL import Image

from headstart.evaluate import classification_metrics, write_report
from headstart.evaluate.diagnostics import TestPredictions, mistakes, predictions_csv

CLASSES = ["cat", "<b>dog</b>", "bird"]
PROBA = np.array([[0.7, 0.2, 0.1],   # right
                  [0.1, 0.3, 0.6],   # wrong at 0.6
                  [0.05, 0.9, 0.05],  # wrong at 0.9
                  [0.2, 0.45, 0.35],  # wrong at 0.45
                  [0.1, 0.1, 0.8]])  # right
Y = np.array([0, 0, 2, 2, 2])
TEXTS = ["a cat", "<script>alert(1)</script>", "a bird", "another bird", "bird bird"]


def test_mistakes_come_most_confident_first():
    rows = mistakes(TestPredictions(TEXTS, "text", Y, PROBA, CLASSES))
    assert [row["index"] for row in rows] == [2, 1, 3]
    assert [row["confidence"] for row in rows] == [0.9, 0.6, 0.45]
    assert rows[0]["true"] == "bird" and rows[0]["predicted"] == "<b>dog</b>" and rows[0]["true_proba"] == 0.05
    assert all(row["image"] is None for row in rows)


def test_the_report_table_is_ordered_and_escaped(tmp_path):
    test = TestPredictions(TEXTS, "text", Y, PROBA, CLASSES)
    path = write_report(tmp_path / "r.html", title="t", metrics=classification_metrics(Y, PROBA, CLASSES),
                        history=[], config={}, test=test)
    html = path.read_text(encoding="utf-8")
    section = html[html.index('id="mistakes"'):html.index('id="config"')]
    assert re.findall(r'<td class="num">(\d+\.\d)%</td><td class="num">', section) == ["90.0", "60.0", "45.0"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "<script>" not in html
    assert "3 test items misclassified" in section
    assert 'alt="Reliability diagram"' in html and 'alt="Precision-recall curves"' in html


def test_image_mistakes_get_inline_thumbnails(tmp_path):
    paths = []
    for i in range(5):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", (300, 200), (40 * i, 100, 200)).save(paths[-1])
    rows = mistakes(TestPredictions(paths, "image", Y, PROBA, CLASSES))
    thumb = Image.open(io.BytesIO(base64.b64decode(rows[0]["image"])))
    assert thumb.format == "PNG" and max(thumb.size) == 96


def test_the_csv_holds_every_test_item_with_its_probabilities():
    text = predictions_csv(TestPredictions(TEXTS, "text", Y, PROBA, CLASSES))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["item"] for row in rows] == TEXTS
    assert [row["true"] for row in rows] == [CLASSES[i] for i in Y]
    assert [row["predicted"] for row in rows] == [CLASSES[i] for i in PROBA.argmax(1)]
    np.testing.assert_allclose([[float(row[f"p_{c}"]) for c in CLASSES] for row in rows], PROBA)

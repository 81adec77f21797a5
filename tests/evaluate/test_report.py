import base64
import os
import re

import numpy as np
import pytest

from headstart.evaluate import classification_metrics, write_report
from headstart.evaluate.report import plot_confusion, plot_history, plot_per_class

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES = ["cat", "<b>x</b>", "dog $5$"]


@pytest.fixture(scope="module")
def metrics():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 30)
    proba = rng.dirichlet(np.ones(3), size=30)
    proba[np.arange(30), y] += 1.0
    proba /= proba.sum(1, keepdims=True)
    return classification_metrics(y, proba, CLASSES)


HISTORY = [
    {"epoch": 1, "stage": "head", "train_loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.6, "lr": 1e-3, "seconds": 2.0},
    {"epoch": 2, "stage": "head", "train_loss": 0.7, "val_loss": 0.8, "val_accuracy": 0.7, "lr": 1e-3, "seconds": 2.0},
    {"epoch": 3, "stage": "unfreeze 1/2", "train_loss": 0.5, "val_loss": 0.7, "val_accuracy": 0.75, "lr": 1e-4},
    {"epoch": 4, "stage": "unfreeze 2/2", "train_loss": 0.4, "val_loss": 0.7, "val_accuracy": 0.8, "lr": 1e-4},
]
CONFIG = {"backbone": "tiny<net>", "mode": "finetune", "seed": 0, "n_train": 30, "aug": {"flip": True}}


def embedded_pngs(html):
    blobs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    return [base64.b64decode(b) for b in blobs]


def test_report_contents(tmp_path, metrics):
    notes = ["Only <30> test images & one seed."]
    path = write_report(tmp_path / "report.html", title="Run <1>", metrics=metrics, history=HISTORY,
                        config=CONFIG, notes=notes)
    assert path == tmp_path / "report.html"
    html = path.read_text(encoding="utf-8")
    assert "cat" in html and "dog $5$" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "Run &lt;1&gt;" in html and "Only &lt;30&gt; test images &amp; one seed." in html
    assert "tiny&lt;net&gt;" in html and "aug.flip" in html
    pngs = embedded_pngs(html)
    assert len(pngs) == 3
    assert all(p.startswith(PNG_MAGIC) for p in pngs)
    assert "unfreeze 2/2" in html  # per-epoch table
    assert "http://" not in html and "https://" not in html  # opens offline
    assert os.listdir(tmp_path) == ["report.html"]  # no temp file left behind


def test_report_with_empty_history_and_overwrite(tmp_path, metrics):
    path = tmp_path / "sub" / "report.html"
    write_report(path, title="t", metrics=metrics, history=HISTORY, config=CONFIG)
    write_report(path, title="t", metrics=metrics, history=[], config={})
    html = path.read_text(encoding="utf-8")
    assert len(embedded_pngs(html)) == 2
    assert "Training curves" not in html  # no history, no curves section
    assert os.listdir(path.parent) == ["report.html"]


def test_a_probe_gets_its_validation_scores_and_no_curve(tmp_path, metrics):
    """A probe is one fit, not a curve: no training plot (a single dot before), its scores in words."""
    path = write_report(tmp_path / "r.html", title="probe", metrics=metrics,
                        history=[{"stage": "head (probe)", "val_accuracy": 0.8, "val_loss": 0.51}], config=CONFIG)
    html = path.read_text(encoding="utf-8")
    assert len(embedded_pngs(html)) == 2  # the confusion matrix and the per-class bars only
    assert 'alt="Training curves"' not in html
    assert "Head (probe) is fitted in one step, so there is no training curve: validation accuracy 80.0%" in html
    assert "validation loss 0.510" in html


def test_failed_write_leaves_no_temp_file(tmp_path, metrics, monkeypatch):
    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_report(tmp_path / "r.html", title="t", metrics=metrics, history=[], config={})
    assert os.listdir(tmp_path) == []


def test_plot_functions_return_png_bytes(metrics):
    assert plot_confusion(metrics["confusion_matrix"], CLASSES).startswith(PNG_MAGIC)
    assert plot_per_class(metrics["per_class"], CLASSES).startswith(PNG_MAGIC)
    assert plot_history(HISTORY).startswith(PNG_MAGIC)
    # epochs that restart in each stage, and a row with a missing value
    restarting = [{"epoch": 1, "stage": "a", "val_loss": 1.0}, {"epoch": 1, "stage": "b"}]
    assert plot_history(restarting).startswith(PNG_MAGIC)
    assert plot_history([]) is None
    assert plot_history([{"epoch": 1, "lr": 0.1}]) is None  # nothing to plot
